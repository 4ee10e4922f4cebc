// FBI binarized weight (BinaryLinear.cpp is the reference).
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
#include "kernels/cuda/Binarize.h"

namespace bimamba::cuda::k {

namespace {

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

}  // namespace

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
        binarize_bwd_kernel<T>
            <<<grid, block, 0, s>>>(static_cast<const T*>(g), W, alpha, gW, galpha_part, gbeta_part, rows, cols, rpb);
    });
    check_launch("binarize_bwd");
}

}  // namespace bimamba::cuda::k
