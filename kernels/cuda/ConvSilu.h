#pragma once
// Causal depthwise conv1d + SiLU, forward and backward (kernels in ConvSilu.cu).
// Raw-pointer launcher; no torch headers (nvcc stays fast). CudaOps.cpp wraps
// it into an autograd op. Throws std::runtime_error if the launch fails.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/DType.h"

namespace bimamba::cuda::k {

// ---- causal depthwise conv1d + SiLU ----------------------------------------
// x (b, l, c) with strides (sxb, sxl, 1), w (c, k) fp32, bias (c) fp32,
// out/dx contiguous (b, l, c) in x's dtype.
int conv_tile_len();
void conv1d_silu_fwd(const void* x, DType t, int64_t sxb, int64_t sxl, const float* w, const float* bias, void* out,
                     int64_t b, int64_t l, int64_t c, int k, cudaStream_t s);
// gout contiguous (b, l, c). dw_part (b*ntiles, c, k), db_part (b*ntiles, c),
// ntiles = ceil(l / conv_tile_len()).
void conv1d_silu_bwd(const void* x, DType t, int64_t sxb, int64_t sxl, const float* w, const float* bias,
                     const void* gout, void* dx, float* dw_part, float* db_part, int64_t b, int64_t l, int64_t c, int k,
                     cudaStream_t s);
bool conv_supported_k(int k);

}  // namespace bimamba::cuda::k
