// RMSNorm kernels: the plain pre-norm and the gated, grouped norm.
// Everything accumulates in fp32; activations may be fp32, bf16 or fp16. The
// LibTorch-ops reference lives in core/model; tests/test_cuda_kernels.cpp
// compares the two.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "kernels/cuda/DeviceUtil.cuh"
#include "kernels/cuda/RmsNorm.h"

namespace bimamba::cuda::k {

namespace {

// ============================================================================
// Gated RMSNorm, norm_before_gate=False, per group of gs channels:
//   v = y * silu(z);  rstd = rsqrt(mean(v^2) + eps);  out = v * rstd * w
// One block per (row, group) in the forward; values stay in registers.
// ============================================================================

constexpr int kNormPer = 16;  // values per thread: gs <= kNormPer * blockDim

template <typename T>
__global__ void grms_fwd_kernel(const T* __restrict__ y, const T* __restrict__ z, int64_t sy, int64_t sz,
                                const float* __restrict__ w, T* __restrict__ out, float* __restrict__ rstd,
                                int64_t ngroups, int64_t gs, float eps) {
    __shared__ float sh[32];
    const int64_t m = blockIdx.x, gi = blockIdx.y;
    const T* yr = y + m * sy + gi * gs;
    const T* zr = z + m * sz + gi * gs;
    float v[kNormPer];
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < kNormPer; ++i) {
        const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
        v[i] = 0.f;
        if (j < gs) {
            const float zv = to_f(zr[j]);
            v[i] = to_f(yr[j]) * zv * sigmoidf_(zv);
            ss += v[i] * v[i];
        }
    }
    ss = block_sum(ss, sh);
    const float r = rsqrtf(ss / (float)gs + eps);
    if (threadIdx.x == 0) rstd[m * ngroups + gi] = r;
    T* orow = out + m * ngroups * gs + gi * gs;
    const float* wg = w + gi * gs;
#pragma unroll
    for (int i = 0; i < kNormPer; ++i) {
        const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
        if (j < gs) orow[j] = from_f<T>(v[i] * r * wg[j]);
    }
}

// ============================================================================
// Plain RMSNorm, the blocks' pre-norm: out = x * rstd * w, rstd =
// rsqrt(mean(x^2) + eps). x is the float32 residual stream; out is written in
// the matmul's dtype (bf16 under autocast), folding in the cast that would
// otherwise be a separate pass. One block per row.
// ============================================================================

template <typename Ti, typename To>
__global__ void rms_fwd_kernel(const Ti* __restrict__ x, const float* __restrict__ w, To* __restrict__ out,
                               float* __restrict__ rstd, int64_t d, float eps) {
    __shared__ float sh[32];
    const int64_t m = blockIdx.x;
    const Ti* xr = x + m * d;
    float v[kNormPer];
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < kNormPer; ++i) {
        const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
        v[i] = j < d ? to_f(xr[j]) : 0.f;
        ss += v[i] * v[i];
    }
    ss = block_sum(ss, sh);
    const float r = rsqrtf(ss / (float)d + eps);
    if (threadIdx.x == 0) rstd[m] = r;
    To* orow = out + m * d;
#pragma unroll
    for (int i = 0; i < kNormPer; ++i) {
        const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
        if (j < d) orow[j] = from_f<To>(v[i] * r * w[j]);
    }
}

// Backward: n = v*rstd, dn = g*w,
//   dv = rstd * (dn - n * mean(dn*n));  dy = dv*silu(z);  dz = dv*y*silu'(z);  dw += g*n
// A block walks a range of rows of one group, keeping its dw partial in registers.
constexpr int kNormMaxThreads = 512;  // the backward's register arrays: at most 128 registers a thread

template <typename T>
__global__ void __launch_bounds__(kNormMaxThreads)
    grms_bwd_kernel(const T* __restrict__ y, const T* __restrict__ z, int64_t sy, int64_t sz,
                    const float* __restrict__ w, const float* __restrict__ rstd, const T* __restrict__ g,
                    T* __restrict__ dy, T* __restrict__ dz, float* __restrict__ dw_part, int64_t m_total,
                    int64_t ngroups, int64_t gs, int64_t rows_per_block) {
    __shared__ float sh[32];
    const int64_t gi = blockIdx.y;
    const int64_t d = ngroups * gs;
    const float* wg = w + gi * gs;
    float wr[kNormPer], dwacc[kNormPer];
#pragma unroll
    for (int i = 0; i < kNormPer; ++i) {
        const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
        wr[i] = j < gs ? wg[j] : 0.f;
        dwacc[i] = 0.f;
    }
    const int64_t m0 = blockIdx.x * rows_per_block, m1 = min(m_total, m0 + rows_per_block);
    for (int64_t m = m0; m < m1; ++m) {
        const T* yr = y + m * sy + gi * gs;
        const T* zr = z + m * sz + gi * gs;
        const T* gr = g + m * d + gi * gs;
        const float r = rstd[m * ngroups + gi];
        float yv[kNormPer], zv[kNormPer], n[kNormPer], dn[kNormPer];
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < kNormPer; ++i) {
            const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
            yv[i] = zv[i] = n[i] = dn[i] = 0.f;
            if (j < gs) {
                yv[i] = to_f(yr[j]);
                zv[i] = to_f(zr[j]);
                const float gv = to_f(gr[j]);
                n[i] = yv[i] * zv[i] * sigmoidf_(zv[i]) * r;
                dn[i] = gv * wr[i];
                dot += dn[i] * n[i];
                dwacc[i] += gv * n[i];
            }
        }
        dot = block_sum(dot, sh) / (float)gs;
        T* dyr = dy + m * d + gi * gs;
        T* dzr = dz + m * d + gi * gs;
#pragma unroll
        for (int i = 0; i < kNormPer; ++i) {
            const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
            if (j < gs) {
                const float dv = r * (dn[i] - n[i] * dot);
                const float sg = sigmoidf_(zv[i]);
                dyr[j] = from_f<T>(dv * zv[i] * sg);
                dzr[j] = from_f<T>(dv * yv[i] * sg * (1.f + zv[i] * (1.f - sg)));
            }
        }
    }
#pragma unroll
    for (int i = 0; i < kNormPer; ++i) {
        const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
        if (j < gs) dw_part[blockIdx.x * d + gi * gs + j] = dwacc[i];
    }
}

int norm_threads(int64_t gs) {
    int t = 32;
    while (t < kNormMaxThreads && (int64_t)t * kNormPer < gs) t *= 2;
    // Small groups: fewer, fuller threads.
    while (t > 32 && (int64_t)(t / 2) * 4 >= gs) t /= 2;
    return t;
}

// Backward of the plain RMSNorm: n = x*rstd, dn = g*w,
//   dx = rstd * (dn - n * mean(dn*n));  dw += g*n (per-block partials).
template <typename Ti, typename Tg>
__global__ void __launch_bounds__(kNormMaxThreads)
    rms_bwd_kernel(const Ti* __restrict__ x, const float* __restrict__ w, const float* __restrict__ rstd,
                   const Tg* __restrict__ g, Ti* __restrict__ dx, float* __restrict__ dw_part, int64_t m_total,
                   int64_t d, int64_t rows_per_block) {
    __shared__ float sh[32];
    float wr[kNormPer], dwacc[kNormPer];
#pragma unroll
    for (int i = 0; i < kNormPer; ++i) {
        const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
        wr[i] = j < d ? w[j] : 0.f;
        dwacc[i] = 0.f;
    }
    const int64_t m0 = blockIdx.x * rows_per_block, m1 = min(m_total, m0 + rows_per_block);
    for (int64_t m = m0; m < m1; ++m) {
        const Ti* xr = x + m * d;
        const Tg* gr = g + m * d;
        const float r = rstd[m];
        float n[kNormPer], dn[kNormPer];
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < kNormPer; ++i) {
            const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
            n[i] = dn[i] = 0.f;
            if (j < d) {
                const float gv = to_f(gr[j]);
                n[i] = to_f(xr[j]) * r;
                dn[i] = gv * wr[i];
                dot += dn[i] * n[i];
                dwacc[i] += gv * n[i];
            }
        }
        dot = block_sum(dot, sh) / (float)d;
        Ti* dxr = dx + m * d;
#pragma unroll
        for (int i = 0; i < kNormPer; ++i) {
            const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
            if (j < d) dxr[j] = from_f<Ti>(r * (dn[i] - n[i] * dot));
        }
    }
#pragma unroll
    for (int i = 0; i < kNormPer; ++i) {
        const int64_t j = threadIdx.x + (int64_t)i * blockDim.x;
        if (j < d) dw_part[blockIdx.x * d + j] = dwacc[i];
    }
}

// ============================================================================
// Vectorized versions (both norms), for rows of a multiple of 8 channels with
// 16-byte aligned rows: a thread owns V chunks of 8 consecutive channels
// (one 16-byte load or store each: the scalar kernels above issue 2-byte
// accesses and left the backward at a quarter of the memory bandwidth).
// kGated: v = y * silu(z) (the gated norm); else v = y (the plain pre-norm,
// y = x, ngroups = 1). Same math, same order, as the scalar kernels.
// ============================================================================

template <typename Ti, typename To, bool kGated, int V>
__global__ void norm_fwd_vec_kernel(const Ti* __restrict__ y, const Ti* __restrict__ z, int64_t sy, int64_t sz,
                                    const float* __restrict__ w, To* __restrict__ out, float* __restrict__ rstd,
                                    int ngroups, int gs, float eps) {
    __shared__ float sh[32];
    const int64_t m = blockIdx.x;
    const int gi = blockIdx.y;
    const Ti* yr = y + m * sy + (int64_t)gi * gs;
    float v[V][8];
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const int j = (threadIdx.x + i * blockDim.x) * 8;
        if (j < gs) {
            load8(yr + j, v[i]);
            if constexpr (kGated) {
                float zv[8];
                load8(z + m * sz + (int64_t)gi * gs + j, zv);
#pragma unroll
                for (int e = 0; e < 8; ++e) v[i][e] = v[i][e] * zv[e] * sigmoidf_(zv[e]);
            }
#pragma unroll
            for (int e = 0; e < 8; ++e) ss += v[i][e] * v[i][e];
        }
    }
    ss = block_sum(ss, sh);
    const float r = rsqrtf(ss / (float)gs + eps);
    if (threadIdx.x == 0) rstd[m * ngroups + gi] = r;
    To* orow = out + m * ngroups * (int64_t)gs + (int64_t)gi * gs;
    const float* wg = w + (int64_t)gi * gs;
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const int j = (threadIdx.x + i * blockDim.x) * 8;
        if (j < gs) {
            float wv[8], o[8];
            load8(wg + j, wv);
#pragma unroll
            for (int e = 0; e < 8; ++e) o[e] = v[i][e] * r * wv[e];
            store8(orow + j, o);
        }
    }
}

// Backward: a block walks a range of rows of one group, R rows at a time (one
// barrier per R rows: the R row sums cross warps together, through
// double-buffered shared memory), keeping its dw partial in registers.
// g (m, d) and the outputs dy (= dx for the plain norm), dz (m, d) contiguous.
template <typename T, typename Tg, bool kGated, int V, int R>
__global__ void __launch_bounds__(kNormMaxThreads)
    norm_bwd_vec_kernel(const T* __restrict__ y, const T* __restrict__ z, int64_t sy, int64_t sz,
                        const float* __restrict__ w, const float* __restrict__ rstd, const Tg* __restrict__ g,
                        T* __restrict__ dy, T* __restrict__ dz, float* __restrict__ dw_part, int64_t m_total,
                        int ngroups, int gs, int64_t rows_per_block) {
    __shared__ float sh[2][R][32];
    const int gi = blockIdx.y;
    const int64_t d = (int64_t)ngroups * gs;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    float wr[V][8], dwacc[V][8];
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const int j = (threadIdx.x + i * blockDim.x) * 8;
#pragma unroll
        for (int e = 0; e < 8; ++e) wr[i][e] = dwacc[i][e] = 0.f;
        if (j < gs) load8(w + (int64_t)gi * gs + j, wr[i]);
    }
    const int64_t m0 = blockIdx.x * rows_per_block, m1 = min(m_total, m0 + rows_per_block);
    int buf = 0;
    for (int64_t mb = m0; mb < m1; mb += R, buf ^= 1) {
        Raw8<T> yv[R][V], zv[R][V];
        Raw8<Tg> gv[R][V];
        float r[R], dot[R];
#pragma unroll
        for (int k = 0; k < R; ++k) {
            const int64_t m = mb + k;
            dot[k] = 0.f;
            r[k] = m < m1 ? rstd[m * ngroups + gi] : 0.f;
#pragma unroll
            for (int i = 0; i < V; ++i) {
                const int j = (threadIdx.x + i * blockDim.x) * 8;
                if (m < m1 && j < gs) {
                    yv[k][i].load(y + m * sy + (int64_t)gi * gs + j);
                    if constexpr (kGated) zv[k][i].load(z + m * sz + (int64_t)gi * gs + j);
                    gv[k][i].load(g + m * d + (int64_t)gi * gs + j);
                }
            }
        }
#pragma unroll
        for (int k = 0; k < R; ++k) {
            const int64_t m = mb + k;
#pragma unroll
            for (int i = 0; i < V; ++i) {
                const int j = (threadIdx.x + i * blockDim.x) * 8;
                if (m < m1 && j < gs) {
#pragma unroll
                    for (int e = 0; e < 8; ++e) {
                        float n = yv[k][i][e];
                        if constexpr (kGated) n = n * zv[k][i][e] * sigmoidf_(zv[k][i][e]);
                        n *= r[k];
                        const float gg = gv[k][i][e];
                        dot[k] += gg * wr[i][e] * n;
                        dwacc[i][e] += gg * n;
                    }
                }
            }
        }
#pragma unroll
        for (int k = 0; k < R; ++k) {
            const float s = warp_sum(dot[k]);
            if (lane == 0) sh[buf][k][warp] = s;
        }
        __syncthreads();  // the other buffer, written next, was last read before this barrier
#pragma unroll
        for (int k = 0; k < R; ++k) {
            float s = 0.f;
            for (int q = 0; q < nw; ++q) s += sh[buf][k][q];
            dot[k] = s / (float)gs;
        }
#pragma unroll
        for (int k = 0; k < R; ++k) {
            const int64_t m = mb + k;
#pragma unroll
            for (int i = 0; i < V; ++i) {
                const int j = (threadIdx.x + i * blockDim.x) * 8;
                if (m < m1 && j < gs) {
                    float o[8], o2[8];
#pragma unroll
                    for (int e = 0; e < 8; ++e) {
                        if constexpr (kGated) {
                            const float zz = zv[k][i][e], sg = sigmoidf_(zz);
                            const float n = yv[k][i][e] * zz * sg * r[k];
                            const float dv = r[k] * (gv[k][i][e] * wr[i][e] - n * dot[k]);
                            o[e] = dv * zz * sg;
                            o2[e] = dv * yv[k][i][e] * sg * (1.f + zz * (1.f - sg));
                        } else {
                            const float n = yv[k][i][e] * r[k];
                            o[e] = r[k] * (gv[k][i][e] * wr[i][e] - n * dot[k]);
                        }
                    }
                    store8(dy + m * d + (int64_t)gi * gs + j, o);
                    if constexpr (kGated) store8(dz + m * d + (int64_t)gi * gs + j, o2);
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const int j = (threadIdx.x + i * blockDim.x) * 8;
        if (j < gs) store8(dw_part + blockIdx.x * d + (int64_t)gi * gs + j, dwacc[i]);
    }
}

// Threads for the vectorized kernels: a multiple of 32 covering gs/8/V chunks.
int vec_threads(int64_t gs, int V) {
    const int64_t chunks = (gs / 8 + V - 1) / V;
    return (int)((chunks + 31) / 32 * 32);
}
// Chunks per thread: 1 up to 4096 channels (512 threads), 2 up to 8192.
int vec_chunks(int64_t gs) {
    return gs <= 8 * kNormMaxThreads ? 1 : 2;
}
bool vec_ok(int64_t gs, std::initializer_list<const void*> ptrs, std::initializer_list<int64_t> strides) {
    if (gs % 8 != 0 || gs > 16 * kNormMaxThreads) return false;
    for (auto p : ptrs)
        if (p && !aligned16(p)) return false;
    for (auto st : strides)
        if (st % 8 != 0) return false;
    return true;
}

// ============================================================================
// Residual add fused with the next pre-norm (vectorized only):
//   r = res + delta (fp32, the new residual, written);  out = r * rstd * w
// backward, with g_r the gradient reaching r from later (may be null) and g
// the normed output's:  dr = g_r + rstd * (dn - n * mean(dn*n)), n = r*rstd,
// dn = g*w;  d_res = dr (fp32), d_delta = dr in delta's dtype, dw partials.
// One pass each way instead of an add, a norm and (backward) a norm, an
// accumulation and a cast.
// ============================================================================

template <typename Td, typename To, int V>
__global__ void add_rms_fwd_vec_kernel(const float* __restrict__ res, const Td* __restrict__ delta,
                                       const float* __restrict__ w, float* __restrict__ r_out, To* __restrict__ out,
                                       float* __restrict__ rstd, int d, float eps) {
    __shared__ float sh[32];
    const int64_t m = blockIdx.x;
    float v[V][8];
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const int j = (threadIdx.x + i * blockDim.x) * 8;
        if (j < d) {
            float dv[8];
            load8(res + m * d + j, v[i]);
            load8(delta + m * d + j, dv);
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                v[i][e] += dv[e];
                ss += v[i][e] * v[i][e];
            }
            store8(r_out + m * d + j, v[i]);
        }
    }
    ss = block_sum(ss, sh);
    const float r = rsqrtf(ss / (float)d + eps);
    if (threadIdx.x == 0) rstd[m] = r;
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const int j = (threadIdx.x + i * blockDim.x) * 8;
        if (j < d) {
            float wv[8], o[8];
            load8(w + j, wv);
#pragma unroll
            for (int e = 0; e < 8; ++e) o[e] = v[i][e] * r * wv[e];
            store8(out + m * d + j, o);
        }
    }
}

template <typename Tg, typename Td, int V, int R>
__global__ void __launch_bounds__(kNormMaxThreads)
    add_rms_bwd_vec_kernel(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ rstd,
                           const Tg* __restrict__ g, const float* __restrict__ g_r, float* __restrict__ d_res,
                           Td* __restrict__ d_delta, float* __restrict__ dw_part, int64_t m_total, int d,
                           int64_t rows_per_block) {
    __shared__ float sh[2][R][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    float wr[V][8], dwacc[V][8];
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const int j = (threadIdx.x + i * blockDim.x) * 8;
#pragma unroll
        for (int e = 0; e < 8; ++e) wr[i][e] = dwacc[i][e] = 0.f;
        if (j < d) load8(w + j, wr[i]);
    }
    const int64_t m0 = blockIdx.x * rows_per_block, m1 = min(m_total, m0 + rows_per_block);
    int buf = 0;
    for (int64_t mb = m0; mb < m1; mb += R, buf ^= 1) {
        Raw8<float> xv[R][V];
        Raw8<Tg> gv[R][V];
        float r[R], dot[R];
#pragma unroll
        for (int k = 0; k < R; ++k) {
            const int64_t m = mb + k;
            dot[k] = 0.f;
            r[k] = m < m1 ? rstd[m] : 0.f;
#pragma unroll
            for (int i = 0; i < V; ++i) {
                const int j = (threadIdx.x + i * blockDim.x) * 8;
                if (m < m1 && j < d) {
                    xv[k][i].load(x + m * d + j);
                    gv[k][i].load(g + m * d + j);
#pragma unroll
                    for (int e = 0; e < 8; ++e) {
                        const float n = xv[k][i][e] * r[k], gg = gv[k][i][e];
                        dot[k] += gg * wr[i][e] * n;
                        dwacc[i][e] += gg * n;
                    }
                }
            }
        }
#pragma unroll
        for (int k = 0; k < R; ++k) {
            const float s = warp_sum(dot[k]);
            if (lane == 0) sh[buf][k][warp] = s;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < R; ++k) {
            float s = 0.f;
            for (int q = 0; q < nw; ++q) s += sh[buf][k][q];
            dot[k] = s / (float)d;
        }
#pragma unroll
        for (int k = 0; k < R; ++k) {
            const int64_t m = mb + k;
#pragma unroll
            for (int i = 0; i < V; ++i) {
                const int j = (threadIdx.x + i * blockDim.x) * 8;
                if (m < m1 && j < d) {
                    float o[8], gr[8];
                    if (g_r) load8(g_r + m * d + j, gr);
#pragma unroll
                    for (int e = 0; e < 8; ++e) {
                        const float n = xv[k][i][e] * r[k];
                        o[e] = r[k] * (gv[k][i][e] * wr[i][e] - n * dot[k]);
                        if (g_r) o[e] += gr[e];
                    }
                    store8(d_res + m * d + j, o);
                    store8(d_delta + m * d + j, o);
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const int j = (threadIdx.x + i * blockDim.x) * 8;
        if (j < d) store8(dw_part + blockIdx.x * (int64_t)d + j, dwacc[i]);
    }
}

}  // namespace

int64_t rmsnorm_max_group() {
    return (int64_t)kNormPer * kNormMaxThreads;
}

void rmsnorm_fwd(const void* x, DType tx, const float* w, void* out, DType to, float* rstd, int64_t m, int64_t d,
                 float eps, cudaStream_t s) {
    if (m * d == 0) return;
    if (d > rmsnorm_max_group()) throw std::runtime_error("rmsnorm: row too wide");
    const bool vec = vec_ok(d, {x, out, w}, {d});
    dispatch(tx, [&](auto ti) {
        dispatch(to, [&](auto tout) {
            using Ti = decltype(ti);
            using To = decltype(tout);
            const Ti* xp = static_cast<const Ti*>(x);
            To* op = static_cast<To*>(out);
            if (vec) {
                const int V = vec_chunks(d);
                auto kernel = V == 1 ? norm_fwd_vec_kernel<Ti, To, false, 1> : norm_fwd_vec_kernel<Ti, To, false, 2>;
                kernel<<<dim3((unsigned)m, 1), vec_threads(d, V), 0, s>>>(xp, nullptr, d, 0, w, op, rstd, 1, (int)d,
                                                                          eps);
            } else {
                rms_fwd_kernel<Ti, To><<<(unsigned)m, norm_threads(d), 0, s>>>(xp, w, op, rstd, d, eps);
            }
        });
    });
    check_launch("rmsnorm_fwd");
}

void rmsnorm_bwd(const void* x, DType tx, const float* w, const float* rstd, const void* g, DType tg, void* dx,
                 float* dw_part, int64_t m, int64_t d, int row_blocks, cudaStream_t s) {
    if (m * d == 0) return;
    if (d > rmsnorm_max_group()) throw std::runtime_error("rmsnorm: row too wide");
    const int64_t rpb = (m + row_blocks - 1) / row_blocks;
    const bool vec = vec_ok(d, {x, w, g, dx, dw_part}, {d});
    dispatch(tx, [&](auto ti) {
        dispatch(tg, [&](auto tgr) {
            using Ti = decltype(ti);
            using Tg = decltype(tgr);
            const Ti* xp = static_cast<const Ti*>(x);
            const Tg* gp = static_cast<const Tg*>(g);
            Ti* dxp = static_cast<Ti*>(dx);
            if (vec) {
                const int V = vec_chunks(d);
                auto kernel =
                    V == 1 ? norm_bwd_vec_kernel<Ti, Tg, false, 1, 2> : norm_bwd_vec_kernel<Ti, Tg, false, 2, 1>;
                kernel<<<dim3((unsigned)row_blocks, 1), vec_threads(d, V), 0, s>>>(xp, nullptr, d, 0, w, rstd, gp, dxp,
                                                                                   nullptr, dw_part, m, 1, (int)d, rpb);
            } else {
                rms_bwd_kernel<Ti, Tg>
                    <<<(unsigned)row_blocks, norm_threads(d), 0, s>>>(xp, w, rstd, gp, dxp, dw_part, m, d, rpb);
            }
        });
    });
    check_launch("rmsnorm_bwd");
}

void gated_rmsnorm_fwd(const void* y, const void* z, DType t, int64_t sy, int64_t sz, const float* w, void* out,
                       float* rstd, int64_t m, int64_t ngroups, int64_t gs, float eps, cudaStream_t s) {
    if (m * ngroups * gs == 0) return;
    if (gs > rmsnorm_max_group()) throw std::runtime_error("gated_rmsnorm: group too large");
    dim3 grid((unsigned)m, (unsigned)ngroups);
    const bool vec = vec_ok(gs, {y, z, w, out}, {sy, sz});
    dispatch(t, [&](auto tag) {
        using T = decltype(tag);
        const T* yp = static_cast<const T*>(y);
        const T* zp = static_cast<const T*>(z);
        T* op = static_cast<T*>(out);
        if (vec) {
            const int V = vec_chunks(gs);
            auto kernel = V == 1 ? norm_fwd_vec_kernel<T, T, true, 1> : norm_fwd_vec_kernel<T, T, true, 2>;
            kernel<<<grid, vec_threads(gs, V), 0, s>>>(yp, zp, sy, sz, w, op, rstd, (int)ngroups, (int)gs, eps);
        } else {
            grms_fwd_kernel<T><<<grid, norm_threads(gs), 0, s>>>(yp, zp, sy, sz, w, op, rstd, ngroups, gs, eps);
        }
    });
    check_launch("gated_rmsnorm_fwd");
}

void gated_rmsnorm_bwd(const void* y, const void* z, DType t, int64_t sy, int64_t sz, const float* w, const float* rstd,
                       const void* g, void* dy, void* dz, float* dw_part, int64_t m, int64_t ngroups, int64_t gs,
                       int row_blocks, cudaStream_t s) {
    if (m * ngroups * gs == 0) return;
    if (gs > rmsnorm_max_group()) throw std::runtime_error("gated_rmsnorm: group too large");
    const int64_t rpb = (m + row_blocks - 1) / row_blocks;
    dim3 grid((unsigned)row_blocks, (unsigned)ngroups);
    const bool vec = vec_ok(gs, {y, z, w, g, dy, dz, dw_part}, {sy, sz});
    dispatch(t, [&](auto tag) {
        using T = decltype(tag);
        const T* yp = static_cast<const T*>(y);
        const T* zp = static_cast<const T*>(z);
        const T* gp = static_cast<const T*>(g);
        if (vec) {
            const int V = vec_chunks(gs);
            auto kernel = V == 1 ? norm_bwd_vec_kernel<T, T, true, 1, 1> : norm_bwd_vec_kernel<T, T, true, 2, 1>;
            kernel<<<grid, vec_threads(gs, V), 0, s>>>(yp, zp, sy, sz, w, rstd, gp, static_cast<T*>(dy),
                                                       static_cast<T*>(dz), dw_part, m, (int)ngroups, (int)gs, rpb);
        } else {
            grms_bwd_kernel<T><<<grid, norm_threads(gs), 0, s>>>(yp, zp, sy, sz, w, rstd, gp, static_cast<T*>(dy),
                                                                 static_cast<T*>(dz), dw_part, m, ngroups, gs, rpb);
        }
    });
    check_launch("gated_rmsnorm_bwd");
}

bool add_rmsnorm_supported(const void* res, const void* delta, const void* g_r, int64_t d) {
    return d % 8 == 0 && d <= rmsnorm_max_group() && aligned16(res) && aligned16(delta) && (!g_r || aligned16(g_r));
}

void add_rmsnorm_fwd(const float* res, const void* delta, DType td, const float* w, float* r_out, void* out, DType to,
                     float* rstd, int64_t m, int64_t d, float eps, cudaStream_t s) {
    if (m * d == 0) return;
    if (!add_rmsnorm_supported(res, delta, nullptr, d) || !aligned16(r_out) || !aligned16(out) || !aligned16(w))
        throw std::runtime_error("add_rmsnorm_fwd: unsupported shape or alignment");
    const int V = vec_chunks(d);
    dispatch(td, [&](auto a) {
        dispatch(to, [&](auto b) {
            using Td = decltype(a);
            using To = decltype(b);
            auto kernel = V == 1 ? add_rms_fwd_vec_kernel<Td, To, 1> : add_rms_fwd_vec_kernel<Td, To, 2>;
            kernel<<<(unsigned)m, vec_threads(d, V), 0, s>>>(res, static_cast<const Td*>(delta), w, r_out,
                                                             static_cast<To*>(out), rstd, (int)d, eps);
        });
    });
    check_launch("add_rmsnorm_fwd");
}

void add_rmsnorm_bwd(const float* x, const float* w, const float* rstd, const void* g, DType tg, const float* g_r,
                     float* d_res, void* d_delta, DType td, float* dw_part, int64_t m, int64_t d, int row_blocks,
                     cudaStream_t s) {
    if (m * d == 0) return;
    if (!add_rmsnorm_supported(x, g, g_r, d) || !aligned16(d_res) || !aligned16(d_delta) || !aligned16(dw_part))
        throw std::runtime_error("add_rmsnorm_bwd: unsupported shape or alignment");
    const int64_t rpb = (m + row_blocks - 1) / row_blocks;
    const int V = vec_chunks(d);
    dispatch(tg, [&](auto a) {
        dispatch(td, [&](auto b) {
            using Tg = decltype(a);
            using Td = decltype(b);
            auto kernel = V == 1 ? add_rms_bwd_vec_kernel<Tg, Td, 1, 2> : add_rms_bwd_vec_kernel<Tg, Td, 2, 1>;
            kernel<<<(unsigned)row_blocks, vec_threads(d, V), 0, s>>>(
                x, w, rstd, static_cast<const Tg*>(g), g_r, d_res, static_cast<Td*>(d_delta), dw_part, m, (int)d, rpb);
        });
    });
    check_launch("add_rmsnorm_bwd");
}

}  // namespace bimamba::cuda::k
