#pragma once
// The non-matmul pieces of the chunked SSD scan (kernels in Ssd.cu).
// Raw-pointer launcher; no torch headers (nvcc stays fast). CudaOps.cpp wraps
// it into an autograd op. Throws std::runtime_error if the launch fails.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/DType.h"

namespace bimamba::cuda::k {

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
void ssd_m_bwd(const void* dM, DType t, const float* CB, const float* acum, const float* dt, float* dCB, float* da_row,
               float* ucol, bool deterministic, int64_t bc, int64_t g, int64_t hg, int64_t T, cudaStream_t s);
// out[r, t, hh, q] = in[r, hh, t, q] · w[r, hh, t]: the heads layout
// (r, hg, T, p) in `t` to the group layout (r, T, hg, p) in `t`, scaled by the
// fp32 w (r, hg, T) (math in fp32). What at::mul_out into a permuted view does,
// in one coalesced pass.
void ssd_heads_to_group(const void* in, DType t, const float* w, void* out, int64_t r, int64_t hg, int64_t T, int64_t p,
                        cudaStream_t s);
// The D skip folded into ssd_combine_chunks: out += D[h] · src[b, pos, h, q]
// (src in the output dtype, element strides (sb, sl, sh, 1); D fp32 (h)).
// With dD_part: also dD_part[row, hh] = Σ_q src · x2 (x2 likewise strided),
// rows = the (b, c, g, T) blocks, zero past l; the caller sums the rows
// (fixed order). src null: no skip.
struct SsdSkip {
    const void* src = nullptr;
    int64_t sb = 0, sl = 0, sh = 0;
    const float* D = nullptr;
    const void* x2 = nullptr;
    int64_t xb = 0, xl = 0, xh = 0;
    float* dD_part = nullptr;
};
// The SSD output assembled from its chunks: Yh (b, c, g, hg, T, p) fp32 in the
// heads layout, Q (b, c, g, T, hg, p) fp32 in the group layout, w (b, c, g, hg, T):
//   out[b, c·T + t, g, hh, q] = Yh[b,c,g,hh,t,q] + Q[b,c,g,t,hh,q] · w[b,c,g,hh,t] (+ the skip)
// for c·T + t < l; out (b, l, g·hg, p) contiguous in `to`. Replaces an
// addcmul into a strided view plus the un-chunking copy and cast.
void ssd_combine_chunks(const float* Yh, const float* Q, const float* w, void* out, DType to, int64_t b, int64_t c,
                        int64_t l, int64_t g, int64_t hg, int64_t T, int64_t p, const SsdSkip& skip, cudaStream_t s);
// Whether dD_part can be asked for (p a multiple of 8, 16-byte aligned rows of src and x2).
bool ssd_combine_chunks_dD_ok(int64_t p, const SsdSkip& skip);
// Per-head dot products over p between a tensor in `a`'s layout and an fp32
// one, both stored either in the heads layout (bcg, hg, T, p) or the group
// layout (bcg, T, hg, p) (a_group / b_group); out (bcg, hg, T) fp32, written
// or (accumulate) added to: out[r, hh, t] (+)= Σ_q a[r, hh, t, q] · b[r, hh, t, q].
// What (x * y).sum(-1) does in LibTorch without the (…, p) fp32 product.
void ssd_head_dot(const void* a, DType ta, bool a_group, const float* b, bool b_group, float* out, bool accumulate,
                  int64_t bcg, int64_t hg, int64_t T, int64_t p, cudaStream_t s);
// The chunked layout: in (b, l, X, Y) with element strides (sb, sl, sx, 1)
// -> out (b, c, X, T, Y) contiguous, c = ceil(l / T), zero past l; and back:
// in (b, c, X, T, Y) contiguous -> out (b, l, X, Y) contiguous (positions < l).
// Both cast from `ti` to `to` (math in fp32). Need Y and the strides
// multiples of 8 and both pointers 16-byte aligned (ssd_chunks_vec_ok; the
// launchers throw otherwise: callers fall back to a LibTorch copy).
bool ssd_chunks_vec_ok(const void* in, const void* out, int64_t sb, int64_t sl, int64_t sx, int64_t Y);
void ssd_to_chunks(const void* in, DType ti, int64_t sb, int64_t sl, int64_t sx, void* out, DType to, int64_t b,
                   int64_t l, int64_t X, int64_t Y, int64_t T, cudaStream_t s);
void ssd_from_chunks(const void* in, DType ti, void* out, DType to, int64_t b, int64_t l, int64_t X, int64_t Y,
                     int64_t T, cudaStream_t s);
// Inclusive cumulative sum of each contiguous row of T floats (reverse: from
// the row's end, suffix sums), in a fixed order (LibTorch's CUDA cumsum has
// no deterministic mode). in and out may be the same buffer.
void chunk_cumsum(const float* in, float* out, int64_t rows, int64_t T, bool reverse, cudaStream_t s);
// Inter-chunk state passing over states (b, c, H, P) fp32 (H = heads, P = p*n):
//   S_prev[c] = S_{c-1},  S_c = exp(alast[b,c,h]) * S_{c-1} + states[c],  S_{-1} = init (or 0)
// writes S_prev (b, c, H, P) in fp32 and/or (S_prev_cd) in `tcd` (either may be
// null), and final (b, H, P).
void ssd_state_scan(const float* states, const float* alast, const float* init, float* S_prev, void* S_prev_cd,
                    DType tcd, float* final_state, int64_t b, int64_t c, int64_t H, int64_t P, cudaStream_t s);
// Reverse: G_{C-1} = dfinal (or 0); G_{c-1} = dS_prev[c] + exp(alast[c]) * G_c.
// writes G (b, c, H, P) (gradient of each chunk's end state) in fp32 and/or
// (G_cd) in `tcd` (either may be null), and dinit (b, H, P). With dal_part
// (needs P a multiple of 256, ssd_state_scan_bwd_dal_parts(P) > 0): also
// dal_part (b, c, H, parts) = per 256-wide slice of P, Σ G · S_prev (S_prev
// fp32, (b, c, H, P)), in a fixed order; the caller sums the parts.
int64_t ssd_state_scan_bwd_dal_parts(int64_t P);
void ssd_state_scan_bwd(const float* dS_prev, const float* alast, const float* dfinal, float* G, void* G_cd, DType tcd,
                        const float* S_prev, float* dal_part, float* dinit, int64_t b, int64_t c, int64_t H, int64_t P,
                        cudaStream_t s);

}  // namespace bimamba::cuda::k
