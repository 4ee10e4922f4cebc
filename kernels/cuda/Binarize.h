#pragma once
// FBI-Linear binarized weight, forward and backward (kernels in Binarize.cu).
// Raw-pointer launcher; no torch headers (nvcc stays fast). CudaOps.cpp wraps
// it into an autograd op. Throws std::runtime_error if the launch fails.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/DType.h"

namespace bimamba::cuda::k {

// ---- binarized weight (FBI-Linear) -----------------------------------------
// out[o,i] = alpha[i]*sign(W[o,i]) + beta[i], W (rows, cols) fp32.
void binarize_fwd(const float* W, const float* alpha, const float* beta, void* out, DType out_t, int64_t rows,
                  int64_t cols, cudaStream_t s);
// gW = alpha*g; galpha_part/gbeta_part (row_blocks, cols): per-block column
// sums of g*sign(W) and g (summed by the caller).
void binarize_bwd(const void* g, DType g_t, const float* W, const float* alpha, float* gW, float* galpha_part,
                  float* gbeta_part, int64_t rows, int64_t cols, int row_blocks, cudaStream_t s);

}  // namespace bimamba::cuda::k
