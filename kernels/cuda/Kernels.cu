// Elementwise / reduction kernels for Mamba-2 training: FBI binarized weight,
// causal depthwise conv1d + SiLU, gated RMSNorm. Forward and backward.
// Everything accumulates in fp32; activations may be fp32, bf16 or fp16.
// The LibTorch-ops references live in core/model (BinaryLinear.cpp,
// Mamba2Model.cpp); tests/test_cuda_kernels.cpp compares the two.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/DeviceUtil.cuh"
#include "kernels/cuda/Launch.h"

namespace bimamba::cuda::k {

namespace {


__device__ __forceinline__ float sigmoidf_(float v) { return 1.f / (1.f + __expf(-v)); }


// Sum over the block; every thread gets the result. `sh` holds >= 32 floats.
__device__ __forceinline__ float block_sum(float v, float* sh) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();  // sh may still be read by a previous call
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float r = lane < nw ? sh[lane] : 0.f;
    return warp_sum(r);
}

// ============================================================================
// FBI binarized weight
// ============================================================================

template <typename T>
__global__ void binarize_fwd_kernel(const float* __restrict__ W, const float* __restrict__ alpha,
                                    const float* __restrict__ beta, T* __restrict__ out, int64_t rows, int64_t cols) {
    const int64_t n = rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t c = i % cols;
        const float w = W[i];
        const float sgn = (w > 0.f) - (w < 0.f);  // sign(0) = 0, as torch.sign
        out[i] = from_f<T>(alpha[c] * sgn + beta[c]);
    }
}

// Block (32, 8): x walks 32 columns, y rows. Each block owns a slice of rows
// and writes one partial column sum; the caller adds the row_blocks partials.
template <typename T>
__global__ void binarize_bwd_kernel(const T* __restrict__ g, const float* __restrict__ W,
                                    const float* __restrict__ alpha, float* __restrict__ gW,
                                    float* __restrict__ ga_part, float* __restrict__ gb_part, int64_t rows,
                                    int64_t cols, int64_t rows_per_block) {
    __shared__ float sa[8][33], sb[8][33];
    const int64_t c = blockIdx.x * 32 + threadIdx.x;
    const int64_t r0 = blockIdx.y * rows_per_block;
    const int64_t r1 = min(rows, r0 + rows_per_block);
    float acc_a = 0.f, acc_b = 0.f;
    if (c < cols) {
        const float a = alpha[c];
        for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
            const int64_t i = r * cols + c;
            const float gv = to_f(g[i]);
            const float w = W[i];
            gW[i] = a * gv;  // straight-through: d(alpha*sign(W))/dW := alpha
            acc_a += gv * (float)((w > 0.f) - (w < 0.f));
            acc_b += gv;
        }
    }
    sa[threadIdx.y][threadIdx.x] = acc_a;
    sb[threadIdx.y][threadIdx.x] = acc_b;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        float ta = 0.f, tb = 0.f;
#pragma unroll
        for (int y = 0; y < 8; ++y) {
            ta += sa[y][threadIdx.x];
            tb += sb[y][threadIdx.x];
        }
        ga_part[blockIdx.y * cols + c] = ta;
        gb_part[blockIdx.y * cols + c] = tb;
    }
}

// ============================================================================
// Causal depthwise conv1d + bias + SiLU
//   pre[t, c] = bias[c] + sum_j w[c, j] * x[t - (K-1) + j, c]     (x < 0 is 0)
//   out = silu(pre)
// One thread per (batch, channel, tile of kTile positions): it slides a
// K-wide window down the sequence, so every x is read once. Channels are the
// fastest-varying index across the warp (coalesced).
// ============================================================================

constexpr int kTile = 64;

template <typename T, int K>
__global__ void conv_fwd_kernel(const T* __restrict__ x, int64_t sxb, int64_t sxl, const float* __restrict__ w,
                                const float* __restrict__ bias, T* __restrict__ out, int64_t L, int64_t Cn) {
    const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (c >= Cn) return;
    const int64_t b = blockIdx.z, t0 = (int64_t)blockIdx.y * kTile;
    const T* xb = x + b * sxb + c;
    float wr[K], win[K];
#pragma unroll
    for (int j = 0; j < K; ++j) wr[j] = w[c * K + j];
    const float bs = bias[c];
#pragma unroll
    for (int j = 0; j < K - 1; ++j) {  // window slots 1..K-1 hold x[t0-K+1 .. t0-1]
        const int64_t t = t0 - (K - 1) + j;
        win[j + 1] = t >= 0 ? to_f(xb[t * sxl]) : 0.f;
    }
    const int64_t t1 = min(L, t0 + kTile);
    T* ob = out + b * L * Cn + c;
    for (int64_t t = t0; t < t1; ++t) {
#pragma unroll
        for (int j = 0; j < K - 1; ++j) win[j] = win[j + 1];
        win[K - 1] = to_f(xb[t * sxl]);
        float acc = bs;
#pragma unroll
        for (int j = 0; j < K; ++j) acc += wr[j] * win[j];
        ob[t * Cn] = from_f<T>(acc * sigmoidf_(acc));
    }
}

// Backward, recomputing pre from x (nothing but x is saved):
//   gp[t] = gout[t] * silu'(pre[t])
//   dx[s] = sum_j w[j] * gp[s + K-1 - j]
//   dw[j] = sum_t gp[t] * x[t-K+1+j],  dbias = sum_t gp[t]   (per-tile partials)
// A tile needs gp on [t0, t0+kTile+K-1): the K-1 halo positions feed dx only.
template <typename T, int K>
__global__ void conv_bwd_kernel(const T* __restrict__ x, int64_t sxb, int64_t sxl, const float* __restrict__ w,
                                const float* __restrict__ bias, const T* __restrict__ gout, T* __restrict__ dx,
                                float* __restrict__ dw_part, float* __restrict__ db_part, int64_t L, int64_t Cn) {
    const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (c >= Cn) return;
    const int64_t b = blockIdx.z, t0 = (int64_t)blockIdx.y * kTile;
    const T* xb = x + b * sxb + c;
    const T* gb = gout + b * L * Cn + c;
    T* dxb = dx + b * L * Cn + c;
    float wr[K], win[K], gwin[K], dw[K];
#pragma unroll
    for (int j = 0; j < K; ++j) {
        wr[j] = w[c * K + j];
        dw[j] = 0.f;
        gwin[j] = 0.f;
    }
    const float bs = bias[c];
    float db = 0.f;
#pragma unroll
    for (int j = 0; j < K - 1; ++j) {
        const int64_t t = t0 - (K - 1) + j;
        win[j + 1] = t >= 0 ? to_f(xb[t * sxl]) : 0.f;
    }
    const int64_t tile_end = min(L, t0 + kTile);
    const int64_t t_end = min(L + K - 1, t0 + kTile + K - 1);
    for (int64_t t = t0; t < t_end; ++t) {
#pragma unroll
        for (int j = 0; j < K - 1; ++j) {
            win[j] = win[j + 1];
            gwin[j] = gwin[j + 1];
        }
        float gp = 0.f;
        if (t < L) {
            win[K - 1] = to_f(xb[t * sxl]);
            float pre = bs;
#pragma unroll
            for (int j = 0; j < K; ++j) pre += wr[j] * win[j];
            const float sg = sigmoidf_(pre);
            gp = to_f(gb[t * Cn]) * sg * (1.f + pre * (1.f - sg));
            if (t < tile_end) {
#pragma unroll
                for (int j = 0; j < K; ++j) dw[j] += gp * win[j];
                db += gp;
            }
        }
        gwin[K - 1] = gp;  // gwin[i] = gp[t-K+1+i]
        const int64_t s = t - (K - 1);
        if (s >= t0 && s < tile_end) {
            float acc = 0.f;
#pragma unroll
            for (int j = 0; j < K; ++j) acc += wr[j] * gwin[K - 1 - j];
            dxb[s * Cn] = from_f<T>(acc);
        }
    }
    const int64_t part = b * gridDim.y + blockIdx.y;
#pragma unroll
    for (int j = 0; j < K; ++j) dw_part[(part * Cn + c) * K + j] = dw[j];
    db_part[part * Cn + c] = db;
}

template <int K> struct ConvK {
    static constexpr int value_k = K;
};
template <typename F> bool dispatch_k(int k, F&& f) {
    switch (k) {
        case 2: f(ConvK<2>{}); return true;
        case 3: f(ConvK<3>{}); return true;
        case 4: f(ConvK<4>{}); return true;
        default: return false;
    }
}

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
__global__ void __launch_bounds__(kNormMaxThreads) grms_bwd_kernel(const T* __restrict__ y, const T* __restrict__ z, int64_t sy, int64_t sz,
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
__global__ void __launch_bounds__(kNormMaxThreads) rms_bwd_kernel(const Ti* __restrict__ x, const float* __restrict__ w,
                                const float* __restrict__ rstd, const Tg* __restrict__ g, Ti* __restrict__ dx,
                                float* __restrict__ dw_part, int64_t m_total, int64_t d, int64_t rows_per_block) {
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

// ---- launchers ---------------------------------------------------------------

void binarize_fwd(const float* W, const float* alpha, const float* beta, void* out, DType out_t, int64_t rows,
                  int64_t cols, cudaStream_t s) {
    const int64_t n = rows * cols;
    if (n == 0) return;
    const int threads = 256;
    const int blocks = (int)std::min<int64_t>((n + threads - 1) / threads, 132 * 16);
    dispatch(out_t, [&](auto tag) {
        using T = decltype(tag);
        binarize_fwd_kernel<T><<<blocks, threads, 0, s>>>(W, alpha, beta, static_cast<T*>(out), rows, cols);
    });
    check_launch("binarize_fwd");
}

void binarize_bwd(const void* g, DType g_t, const float* W, const float* alpha, float* gW, float* galpha_part,
                  float* gbeta_part, int64_t rows, int64_t cols, int row_blocks, cudaStream_t s) {
    if (rows * cols == 0) return;
    const int64_t rpb = (rows + row_blocks - 1) / row_blocks;
    dim3 grid((unsigned)((cols + 31) / 32), (unsigned)row_blocks), block(32, 8);
    dispatch(g_t, [&](auto tag) {
        using T = decltype(tag);
        binarize_bwd_kernel<T><<<grid, block, 0, s>>>(static_cast<const T*>(g), W, alpha, gW, galpha_part,
                                                      gbeta_part, rows, cols, rpb);
    });
    check_launch("binarize_bwd");
}

int conv_tile_len() { return kTile; }
bool conv_supported_k(int k) { return k >= 2 && k <= 4; }

void conv1d_silu_fwd(const void* x, DType t, int64_t sxb, int64_t sxl, const float* w, const float* bias, void* out,
                     int64_t b, int64_t l, int64_t c, int k, cudaStream_t s) {
    if (b * l * c == 0) return;
    const int threads = 128;
    dim3 grid((unsigned)((c + threads - 1) / threads), (unsigned)((l + kTile - 1) / kTile), (unsigned)b);
    bool ok = dispatch_k(k, [&](auto ktag) {
        constexpr int K = decltype(ktag)::value_k;
        dispatch(t, [&](auto tag) {
            using T = decltype(tag);
            conv_fwd_kernel<T, K><<<grid, threads, 0, s>>>(static_cast<const T*>(x), sxb, sxl, w, bias,
                                                           static_cast<T*>(out), l, c);
        });
    });
    if (!ok) throw std::runtime_error("conv1d_silu: kernel width must be 2..4");
    check_launch("conv1d_silu_fwd");
}

void conv1d_silu_bwd(const void* x, DType t, int64_t sxb, int64_t sxl, const float* w, const float* bias,
                     const void* gout, void* dx, float* dw_part, float* db_part, int64_t b, int64_t l, int64_t c,
                     int k, cudaStream_t s) {
    if (b * l * c == 0) return;
    const int threads = 128;
    dim3 grid((unsigned)((c + threads - 1) / threads), (unsigned)((l + kTile - 1) / kTile), (unsigned)b);
    bool ok = dispatch_k(k, [&](auto ktag) {
        constexpr int K = decltype(ktag)::value_k;
        dispatch(t, [&](auto tag) {
            using T = decltype(tag);
            conv_bwd_kernel<T, K><<<grid, threads, 0, s>>>(static_cast<const T*>(x), sxb, sxl, w, bias,
                                                           static_cast<const T*>(gout), static_cast<T*>(dx),
                                                           dw_part, db_part, l, c);
        });
    });
    if (!ok) throw std::runtime_error("conv1d_silu: kernel width must be 2..4");
    check_launch("conv1d_silu_bwd");
}

int64_t rmsnorm_max_group() { return (int64_t)kNormPer * kNormMaxThreads; }

void rmsnorm_fwd(const void* x, DType tx, const float* w, void* out, DType to, float* rstd, int64_t m, int64_t d,
                 float eps, cudaStream_t s) {
    if (m * d == 0) return;
    if (d > rmsnorm_max_group()) throw std::runtime_error("rmsnorm: row too wide");
    const int threads = norm_threads(d);
    dispatch(tx, [&](auto ti) {
        dispatch(to, [&](auto tout) {
            using Ti = decltype(ti);
            using To = decltype(tout);
            rms_fwd_kernel<Ti, To><<<(unsigned)m, threads, 0, s>>>(static_cast<const Ti*>(x), w, static_cast<To*>(out),
                                                                  rstd, d, eps);
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
            rms_bwd_kernel<Ti, Tg><<<(unsigned)row_blocks, threads, 0, s>>>(
                static_cast<const Ti*>(x), w, rstd, static_cast<const Tg*>(g), static_cast<Ti*>(dx), dw_part, m, d, rpb);
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

void gated_rmsnorm_bwd(const void* y, const void* z, DType t, int64_t sy, int64_t sz, const float* w,
                       const float* rstd, const void* g, void* dy, void* dz, float* dw_part, int64_t m,
                       int64_t ngroups, int64_t gs, int row_blocks, cudaStream_t s) {
    if (m * ngroups * gs == 0) return;
    if (gs > rmsnorm_max_group()) throw std::runtime_error("gated_rmsnorm: group too large");
    const int threads = norm_threads(gs);
    const int64_t rpb = (m + row_blocks - 1) / row_blocks;
    dim3 grid((unsigned)row_blocks, (unsigned)ngroups);
    dispatch(t, [&](auto tag) {
        using T = decltype(tag);
        grms_bwd_kernel<T><<<grid, threads, 0, s>>>(static_cast<const T*>(y), static_cast<const T*>(z), sy, sz, w,
                                                    rstd, static_cast<const T*>(g), static_cast<T*>(dy),
                                                    static_cast<T*>(dz), dw_part, m, ngroups, gs, rpb);
    });
    check_launch("gated_rmsnorm_bwd");
}

}  // namespace bimamba::cuda::k
