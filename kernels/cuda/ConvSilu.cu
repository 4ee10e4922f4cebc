// Causal depthwise conv1d + SiLU kernels.
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
#include "kernels/cuda/ConvSilu.h"

namespace bimamba::cuda::k {

namespace {

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

template <int K>
struct ConvK {
    static constexpr int value_k = K;
};
template <typename F>
bool dispatch_k(int k, F&& f) {
    switch (k) {
        case 2:
            f(ConvK<2>{});
            return true;
        case 3:
            f(ConvK<3>{});
            return true;
        case 4:
            f(ConvK<4>{});
            return true;
        default:
            return false;
    }
}

}  // namespace

int conv_tile_len() {
    return kTile;
}
bool conv_supported_k(int k) {
    return k >= 2 && k <= 4;
}

void conv1d_silu_fwd(const void* x, DType t, int64_t sxb, int64_t sxl, const float* w, const float* bias, void* out,
                     int64_t b, int64_t l, int64_t c, int k, cudaStream_t s) {
    if (b * l * c == 0) return;
    const int threads = 128;
    dim3 grid((unsigned)((c + threads - 1) / threads), (unsigned)((l + kTile - 1) / kTile), (unsigned)b);
    bool ok = dispatch_k(k, [&](auto ktag) {
        constexpr int K = decltype(ktag)::value_k;
        dispatch(t, [&](auto tag) {
            using T = decltype(tag);
            conv_fwd_kernel<T, K>
                <<<grid, threads, 0, s>>>(static_cast<const T*>(x), sxb, sxl, w, bias, static_cast<T*>(out), l, c);
        });
    });
    if (!ok) throw std::runtime_error("conv1d_silu: kernel width must be 2..4");
    check_launch("conv1d_silu_fwd");
}

void conv1d_silu_bwd(const void* x, DType t, int64_t sxb, int64_t sxl, const float* w, const float* bias,
                     const void* gout, void* dx, float* dw_part, float* db_part, int64_t b, int64_t l, int64_t c, int k,
                     cudaStream_t s) {
    if (b * l * c == 0) return;
    const int threads = 128;
    dim3 grid((unsigned)((c + threads - 1) / threads), (unsigned)((l + kTile - 1) / kTile), (unsigned)b);
    bool ok = dispatch_k(k, [&](auto ktag) {
        constexpr int K = decltype(ktag)::value_k;
        dispatch(t, [&](auto tag) {
            using T = decltype(tag);
            conv_bwd_kernel<T, K><<<grid, threads, 0, s>>>(static_cast<const T*>(x), sxb, sxl, w, bias,
                                                           static_cast<const T*>(gout), static_cast<T*>(dx), dw_part,
                                                           db_part, l, c);
        });
    });
    if (!ok) throw std::runtime_error("conv1d_silu: kernel width must be 2..4");
    check_launch("conv1d_silu_bwd");
}

}  // namespace bimamba::cuda::k
