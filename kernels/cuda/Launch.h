#pragma once
// Raw-pointer launchers for the kernels in *.cu. No torch headers here or in
// the .cu files (nvcc stays fast); CudaOps.cpp wraps them into autograd ops.
// Every launcher checks the launch and throws std::runtime_error on failure.
#include <cuda_runtime.h>

#include <cstdint>

namespace bimamba::cuda::k {

enum class DType : int { F32 = 0, BF16 = 1, F16 = 2 };

// ---- binarized weight (FBI-Linear) -----------------------------------------
// out[o,i] = alpha[i]*sign(W[o,i]) + beta[i], W (rows, cols) fp32.
void binarize_fwd(const float* W, const float* alpha, const float* beta, void* out, DType out_t, int64_t rows,
                  int64_t cols, cudaStream_t s);
// gW = alpha*g; galpha_part/gbeta_part (row_blocks, cols): per-block column
// sums of g*sign(W) and g (summed by the caller).
void binarize_bwd(const void* g, DType g_t, const float* W, const float* alpha, float* gW, float* galpha_part,
                  float* gbeta_part, int64_t rows, int64_t cols, int row_blocks, cudaStream_t s);

// ---- causal depthwise conv1d + SiLU ----------------------------------------
// x (b, l, c) with strides (sxb, sxl, 1), w (c, k) fp32, bias (c) fp32,
// out/dx contiguous (b, l, c) in x's dtype.
int conv_tile_len();
void conv1d_silu_fwd(const void* x, DType t, int64_t sxb, int64_t sxl, const float* w, const float* bias, void* out,
                     int64_t b, int64_t l, int64_t c, int k, cudaStream_t s);
// gout contiguous (b, l, c). dw_part (b*ntiles, c, k), db_part (b*ntiles, c),
// ntiles = ceil(l / conv_tile_len()).
void conv1d_silu_bwd(const void* x, DType t, int64_t sxb, int64_t sxl, const float* w, const float* bias,
                     const void* gout, void* dx, float* dw_part, float* db_part, int64_t b, int64_t l, int64_t c,
                     int k, cudaStream_t s);
bool conv_supported_k(int k);

// ---- gated RMSNorm (norm_before_gate=False) --------------------------------
// y, z rows of d = ngroups*gs channels (row strides sy, sz; channel stride 1),
// w (d) fp32. out (m, d) contiguous in y's dtype; rstd (m, ngroups) fp32.
int64_t rmsnorm_max_group();
void gated_rmsnorm_fwd(const void* y, const void* z, DType t, int64_t sy, int64_t sz, const float* w, void* out,
                       float* rstd, int64_t m, int64_t ngroups, int64_t gs, float eps, cudaStream_t s);
// dy, dz (m, d) contiguous; dw_part (row_blocks, d).
void gated_rmsnorm_bwd(const void* y, const void* z, DType t, int64_t sy, int64_t sz, const float* w,
                       const float* rstd, const void* g, void* dy, void* dz, float* dw_part, int64_t m,
                       int64_t ngroups, int64_t gs, int row_blocks, cudaStream_t s);

// ---- plain RMSNorm (the blocks' pre-norm) ----------------------------------
// x (m, d) contiguous in tx, w (d) fp32; out (m, d) in `to`; rstd (m) fp32.
void rmsnorm_fwd(const void* x, DType tx, const float* w, void* out, DType to, float* rstd, int64_t m, int64_t d,
                 float eps, cudaStream_t s);
// g (m, d) contiguous in tg; dx (m, d) in tx; dw_part (row_blocks, d).
void rmsnorm_bwd(const void* x, DType tx, const float* w, const float* rstd, const void* g, DType tg, void* dx,
                 float* dw_part, int64_t m, int64_t d, int row_blocks, cudaStream_t s);

// ---- SSD chunked scan pieces -----------------------------------------------
// All per-chunk tensors are laid out (b, c, h, T[, ...]) contiguous; CB is
// (b, c, g, T, T) fp32 with heads h = g*hg sharing group g.
// M[b,c,h,t,s] = CB[b,c,g(h),t,s] * exp(acum[t]-acum[s]) * dt[s] for s <= t, else 0; M in `t`.
void ssd_build_m(const float* CB, const float* acum, const float* dt, void* M, DType t, int64_t bc, int64_t g,
                 int64_t hg, int64_t T, cudaStream_t s);
// Backward through M: u = dM*CB*exp(acum[t]-acum[s]) (s <= t).
//   dCB[t,s] = sum_h dM*exp(..)*dt[s];  da_row[h,t] = sum_s u*dt[s];  ucol[h,s] = sum_t u
// The column sums ucol span the row tiles of several blocks:
//   deterministic = false: ucol (bc, h, T), zeroed by the caller, accumulated
//     with float atomics (the order, and so the last bits, vary run to run);
//   deterministic = true: no atomics; ucol is (bc, h, ssd_m_bwd_row_tiles(T), T),
//     one partial per row tile, every element written; the caller sums over the
//     tile dim in a fixed order.
int64_t ssd_m_bwd_row_tiles(int64_t T);
void ssd_m_bwd(const void* dM, DType t, const float* CB, const float* acum, const float* dt, float* dCB,
               float* da_row, float* ucol, bool deterministic, int64_t bc, int64_t g, int64_t hg, int64_t T,
               cudaStream_t s);
// Per-head dot products over p between a tensor in `a`'s layout and an fp32
// one, both stored either in the heads layout (bcg, hg, T, p) or the group
// layout (bcg, T, hg, p) (a_group / b_group); out (bcg, hg, T) fp32, written
// or (accumulate) added to: out[r, hh, t] (+)= Σ_q a[r, hh, t, q] · b[r, hh, t, q].
// What (x * y).sum(-1) does in LibTorch without the (…, p) fp32 product.
void ssd_head_dot(const void* a, DType ta, bool a_group, const float* b, bool b_group, float* out, bool accumulate,
                  int64_t bcg, int64_t hg, int64_t T, int64_t p, cudaStream_t s);
// Inclusive cumulative sum of each contiguous row of T floats (reverse: from
// the row's end, suffix sums), in a fixed order (LibTorch's CUDA cumsum has
// no deterministic mode). in and out may be the same buffer.
void chunk_cumsum(const float* in, float* out, int64_t rows, int64_t T, bool reverse, cudaStream_t s);
// Inter-chunk state passing over states (b, c, H, P) fp32 (H = heads, P = p*n):
//   S_prev[c] = S_{c-1},  S_c = exp(alast[b,c,h]) * S_{c-1} + states[c],  S_{-1} = init (or 0)
// writes S_prev (b, c, H, P) and final (b, H, P).
void ssd_state_scan(const float* states, const float* alast, const float* init, float* S_prev, float* final_state,
                    int64_t b, int64_t c, int64_t H, int64_t P, cudaStream_t s);
// Reverse: G_{C-1} = dfinal (or 0); G_{c-1} = dS_prev[c] + exp(alast[c]) * G_c.
// writes G (b, c, H, P) (gradient of each chunk's end state) and dinit (b, H, P).
void ssd_state_scan_bwd(const float* dS_prev, const float* alast, const float* dfinal, float* G, float* dinit,
                        int64_t b, int64_t c, int64_t H, int64_t P, cudaStream_t s);

}  // namespace bimamba::cuda::k
