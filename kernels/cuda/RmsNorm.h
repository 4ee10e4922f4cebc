#pragma once
// RMSNorm: the blocks' plain pre-norm and the gated, grouped norm before
// out_proj, forward and backward (kernels in RmsNorm.cu).
// Raw-pointer launcher; no torch headers (nvcc stays fast). CudaOps.cpp wraps
// it into an autograd op. Throws std::runtime_error if the launch fails.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/DType.h"

namespace bimamba::cuda::k {

// ---- gated RMSNorm (norm_before_gate=False) --------------------------------
// y, z rows of d = ngroups*gs channels (row strides sy, sz; channel stride 1),
// w (d) fp32. out (m, d) contiguous in y's dtype; rstd (m, ngroups) fp32.
int64_t rmsnorm_max_group();
void gated_rmsnorm_fwd(const void* y, const void* z, DType t, int64_t sy, int64_t sz, const float* w, void* out,
                       float* rstd, int64_t m, int64_t ngroups, int64_t gs, float eps, cudaStream_t s);
// dy, dz (m, d) contiguous; dw_part (row_blocks, d).
void gated_rmsnorm_bwd(const void* y, const void* z, DType t, int64_t sy, int64_t sz, const float* w, const float* rstd,
                       const void* g, void* dy, void* dz, float* dw_part, int64_t m, int64_t ngroups, int64_t gs,
                       int row_blocks, cudaStream_t s);

// ---- plain RMSNorm (the blocks' pre-norm) ----------------------------------
// x (m, d) contiguous in tx, w (d) fp32; out (m, d) in `to`; rstd (m) fp32.
void rmsnorm_fwd(const void* x, DType tx, const float* w, void* out, DType to, float* rstd, int64_t m, int64_t d,
                 float eps, cudaStream_t s);
// g (m, d) contiguous in tg; dx (m, d) in tx; dw_part (row_blocks, d).
void rmsnorm_bwd(const void* x, DType tx, const float* w, const float* rstd, const void* g, DType tg, void* dx,
                 float* dw_part, int64_t m, int64_t d, int row_blocks, cudaStream_t s);

// ---- residual add + pre-norm (the next block's, or norm_f) -----------------
// r_out = res + delta (res fp32, delta in td; (m, d) contiguous), out =
// rmsnorm(r_out) * w in `to`, rstd (m). Needs d a multiple of 8 and 16-byte
// aligned rows (add_rmsnorm_supported); the caller falls back otherwise.
bool add_rmsnorm_supported(const void* res, const void* delta, const void* g_r, int64_t d);
void add_rmsnorm_fwd(const float* res, const void* delta, DType td, const float* w, float* r_out, void* out, DType to,
                     float* rstd, int64_t m, int64_t d, float eps, cudaStream_t s);
// x = r_out of the forward; g (m, d) in tg: the normed output's gradient; g_r
// (m, d) fp32 or null: r_out's own. d_res (m, d) fp32 = g_r + the norm's
// backward; d_delta the same values in td; dw_part (row_blocks, d).
void add_rmsnorm_bwd(const float* x, const float* w, const float* rstd, const void* g, DType tg, const float* g_r,
                     float* d_res, void* d_delta, DType td, float* dw_part, int64_t m, int64_t d, int row_blocks,
                     cudaStream_t s);

}  // namespace bimamba::cuda::k
