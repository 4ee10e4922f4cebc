// RMSNorm kernels: the plain pre-norm and the gated, grouped norm.
// Everything accumulates in fp32; activations may be fp32, bf16 or fp16. The
// LibTorch-ops reference lives in core/model; tests/test_cuda_kernels.cpp
// compares the two.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
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

}  // namespace

int64_t rmsnorm_max_group() {
    return (int64_t)kNormPer * kNormMaxThreads;
}

void rmsnorm_fwd(const void* x, DType tx, const float* w, void* out, DType to, float* rstd, int64_t m, int64_t d,
                 float eps, cudaStream_t s) {
    if (m * d == 0) return;
    if (d > rmsnorm_max_group()) throw std::runtime_error("rmsnorm: row too wide");
    const int threads = norm_threads(d);
    dispatch(tx, [&](auto ti) {
        dispatch(to, [&](auto tout) {
            using Ti = decltype(ti);
            using To = decltype(tout);
            rms_fwd_kernel<Ti, To>
                <<<(unsigned)m, threads, 0, s>>>(static_cast<const Ti*>(x), w, static_cast<To*>(out), rstd, d, eps);
        });
    });
    check_launch("rmsnorm_fwd");
}

void rmsnorm_bwd(const void* x, DType tx, const float* w, const float* rstd, const void* g, DType tg, void* dx,
                 float* dw_part, int64_t m, int64_t d, int row_blocks, cudaStream_t s) {
    if (m * d == 0) return;
    if (d > rmsnorm_max_group()) throw std::runtime_error("rmsnorm: row too wide");
    const int threads = norm_threads(d);
    const int64_t rpb = (m + row_blocks - 1) / row_blocks;
    dispatch(tx, [&](auto ti) {
        dispatch(tg, [&](auto tgr) {
            using Ti = decltype(ti);
            using Tg = decltype(tgr);
            rms_bwd_kernel<Ti, Tg><<<(unsigned)row_blocks, threads, 0, s>>>(static_cast<const Ti*>(x), w, rstd,
                                                                            static_cast<const Tg*>(g),
                                                                            static_cast<Ti*>(dx), dw_part, m, d, rpb);
        });
    });
    check_launch("rmsnorm_bwd");
}

void gated_rmsnorm_fwd(const void* y, const void* z, DType t, int64_t sy, int64_t sz, const float* w, void* out,
                       float* rstd, int64_t m, int64_t ngroups, int64_t gs, float eps, cudaStream_t s) {
    if (m * ngroups * gs == 0) return;
    if (gs > rmsnorm_max_group()) throw std::runtime_error("gated_rmsnorm: group too large");
    const int threads = norm_threads(gs);
    dim3 grid((unsigned)m, (unsigned)ngroups);
    dispatch(t, [&](auto tag) {
        using T = decltype(tag);
        grms_fwd_kernel<T><<<grid, threads, 0, s>>>(static_cast<const T*>(y), static_cast<const T*>(z), sy, sz, w,
                                                    static_cast<T*>(out), rstd, ngroups, gs, eps);
    });
    check_launch("gated_rmsnorm_fwd");
}

void gated_rmsnorm_bwd(const void* y, const void* z, DType t, int64_t sy, int64_t sz, const float* w, const float* rstd,
                       const void* g, void* dy, void* dz, float* dw_part, int64_t m, int64_t ngroups, int64_t gs,
                       int row_blocks, cudaStream_t s) {
    if (m * ngroups * gs == 0) return;
    if (gs > rmsnorm_max_group()) throw std::runtime_error("gated_rmsnorm: group too large");
    const int threads = norm_threads(gs);
    const int64_t rpb = (m + row_blocks - 1) / row_blocks;
    dim3 grid((unsigned)row_blocks, (unsigned)ngroups);
    dispatch(t, [&](auto tag) {
        using T = decltype(tag);
        grms_bwd_kernel<T><<<grid, threads, 0, s>>>(static_cast<const T*>(y), static_cast<const T*>(z), sy, sz, w, rstd,
                                                    static_cast<const T*>(g), static_cast<T*>(dy), static_cast<T*>(dz),
                                                    dw_part, m, ngroups, gs, rpb);
    });
    check_launch("gated_rmsnorm_bwd");
}

}  // namespace bimamba::cuda::k
