// The non-matmul pieces of the chunked SSD scan (Mamba-2), forward and
// backward. The matmuls themselves go to cuBLAS from CudaOps.cpp; these kernels
// fuse what the LibTorch-ops reference does in many launches and (T×T)-sized
// temporaries: the decay mask exp(segsum) times C·Bᵀ times dt, its backward
// with all the reductions (with atomics, or in a fixed order), the sequential
// pass of states across chunks, and the chunk-wise cumulative sums.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/DeviceUtil.cuh"
#include "kernels/cuda/Ssd.h"

namespace bimamba::cuda::k {

namespace {

// M[bc,h,t,s] = CB[bc,g,t,s] * exp(acum[t] - acum[s]) * dt[s]  (s <= t), 0 above the diagonal.
// A block owns kBuildRows rows of one (bc, h); thread j owns columns j,
// j + blockDim, … and keeps their acum[s] and dt[s] in registers across the
// rows, so an element costs one coalesced load of CB, one exp and one store.
// 32-bit index arithmetic inside a (T×T) tile (64-bit division per element
// made the first version ~6× slower than the memory allows).
constexpr int kBuildRows = 8;
constexpr int kBuildThreads = 128;
constexpr int kBuildCols = 4;  // columns per thread: T ≤ kBuildThreads · kBuildCols (checked by the launcher)
template <typename T>
__global__ void build_m_kernel(const float* __restrict__ CB, const float* __restrict__ acum,
                               const float* __restrict__ dt, T* __restrict__ M, int g, int hg, int Tn, int row_tiles) {
    const int64_t bch = blockIdx.x / row_tiles;  // (bc, h) flattened
    const int t0 = (blockIdx.x % row_tiles) * kBuildRows;
    const int64_t H = (int64_t)g * hg;
    const int64_t bc = bch / H;
    const int h = (int)(bch % H), gi = h / hg;
    const float* a = acum + bch * Tn;
    const float* d = dt + bch * Tn;
    const float* cb = CB + (bc * g + gi) * (int64_t)Tn * Tn;
    T* out = M + bch * (int64_t)Tn * Tn;
    float as[kBuildCols], ds[kBuildCols];
#pragma unroll
    for (int k = 0; k < kBuildCols; ++k) {
        const int s = threadIdx.x + k * kBuildThreads;
        as[k] = s < Tn ? a[s] : 0.f;
        ds[k] = s < Tn ? d[s] : 0.f;
    }
    const int t1 = min(t0 + kBuildRows, Tn);
    for (int t = t0; t < t1; ++t) {
        const float at = a[t];
#pragma unroll
        for (int k = 0; k < kBuildCols; ++k) {
            const int s = threadIdx.x + k * kBuildThreads;
            if (s >= Tn) break;
            float v = 0.f;
            if (s <= t) v = cb[t * Tn + s] * __expf(at - as[k]) * ds[k];
            out[t * Tn + s] = from_f<T>(v);
        }
    }
}

constexpr int kRows = 16;       // rows of the T×T tile per block in the backward
constexpr int kMThreads = 256;  // threads per block of m_bwd_kernel
constexpr int kMWarps = kMThreads / 32;

// Backward through M (see Ssd.h). A block owns kRows rows of one
// (batch·chunk, group) and walks the group's heads; dCB for its rows
// accumulates in shared memory. Column sums over the block's rows:
//   Det = false: shared-memory atomics, then one global atomic per column and
//     head (fast, but the order of the float additions varies);
//   Det = true: each warp keeps its own column partial (a warp walks its rows
//     in order, lanes own distinct columns: no races), the block adds the
//     kMWarps partials in warp order and writes its row tile's partial.
template <typename T, bool Det>
__global__ void m_bwd_kernel(const T* __restrict__ dM, const float* __restrict__ CB, const float* __restrict__ acum,
                             const float* __restrict__ dt, float* __restrict__ dCB, float* __restrict__ da_row,
                             float* __restrict__ ucol, int64_t g, int64_t hg, int64_t Tn) {
    extern __shared__ float smem[];
    constexpr int ncol = Det ? kMWarps : 1;
    float* dcb = smem;              // kRows * Tn
    float* col = dcb + kRows * Tn;  // ncol * Tn
    float* a_sh = col + ncol * Tn;  // Tn
    float* dt_sh = a_sh + Tn;       // Tn
    const int64_t bcg = blockIdx.x, bc = bcg / g, gi = bcg % g, H = g * hg;
    const int64_t t0 = (int64_t)blockIdx.y * kRows;
    const int nrows = (int)min((int64_t)kRows, Tn - t0);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    const float* cb = CB + bcg * Tn * Tn;
    for (int64_t i = threadIdx.x; i < kRows * Tn; i += blockDim.x) dcb[i] = 0.f;

    for (int64_t hh = 0; hh < hg; ++hh) {
        const int64_t bch = bc * H + gi * hg + hh;
        for (int64_t i = threadIdx.x; i < Tn; i += blockDim.x) {
            a_sh[i] = acum[bch * Tn + i];
            dt_sh[i] = dt[bch * Tn + i];
        }
        for (int64_t i = threadIdx.x; i < ncol * Tn; i += blockDim.x) col[i] = 0.f;
        __syncthreads();
        for (int r = warp; r < nrows; r += nwarps) {
            const int64_t t = t0 + r;
            const float at = a_sh[t];
            const T* dmr = dM + (bch * Tn + t) * Tn;
            const float* cbr = cb + t * Tn;
            float rowacc = 0.f;
            for (int64_t s = lane; s <= t; s += 32) {
                const float e = to_f(dmr[s]) * __expf(at - a_sh[s]);  // dM·E
                const float u = e * cbr[s];
                dcb[r * Tn + s] += e * dt_sh[s];  // same thread for every head: no race
                rowacc += u * dt_sh[s];
                if (Det)
                    col[warp * Tn + s] += u;
                else
                    atomicAdd(&col[s], u);
            }
            rowacc = warp_sum(rowacc);
            if (lane == 0) da_row[bch * Tn + t] = rowacc;
        }
        __syncthreads();
        if (Det) {
            float* part = ucol + (bch * gridDim.y + blockIdx.y) * Tn;  // (bc, h, tile, T)
            for (int64_t s = threadIdx.x; s < Tn; s += blockDim.x) {
                float v = 0.f;
#pragma unroll
                for (int w = 0; w < kMWarps; ++w) v += col[w * Tn + s];
                part[s] = v;
            }
        } else {
            for (int64_t s = threadIdx.x; s < Tn; s += blockDim.x)
                if (col[s] != 0.f) atomicAdd(&ucol[bch * Tn + s], col[s]);
        }
        __syncthreads();
    }
    for (int64_t i = threadIdx.x; i < (int64_t)nrows * Tn; i += blockDim.x) dCB[bcg * Tn * Tn + t0 * Tn + i] = dcb[i];
}

// out[r, t, hh, q] = in[r, hh, t, q] · w[r, hh, t]: from the heads layout to
// the group layout with a per-(head, position) scale, one block per (r, t).
// Reads are 64-element runs of one head, writes one contiguous row.
template <typename T>
__global__ void heads_to_group_kernel(const T* __restrict__ in, const float* __restrict__ w, T* __restrict__ out,
                                      int hg, int Tn, int p) {
    const int64_t rt = blockIdx.x, r = rt / Tn;
    const int t = (int)(rt % Tn), row = hg * p;
    const T* src = in + r * (int64_t)row * Tn;
    const float* wr = w + r * (int64_t)hg * Tn;
    T* dst = out + rt * row;
    for (int i = threadIdx.x; i < row; i += blockDim.x) {
        const int hh = i / p, q = i - hh * p;
        dst[i] = from_f<T>(to_f(src[(hh * Tn + t) * p + q]) * wr[hh * Tn + t]);
    }
}

// out[b, c·T + t, gi, hh, q] = Yh[b, c, gi, hh, t, q] + Q[b, c, gi, t, hh, q] · w[b, c, gi, hh, t]
//                               (+ D[h] · skip[b, c·T + t, h, q], h = gi·hg + hh)
// for c·T + t < l (the padded tail is dropped), cast to the output dtype. One
// block per (b, c, gi, t).
template <typename To>
__global__ void combine_chunks_kernel(const float* __restrict__ Yh, const float* __restrict__ Q,
                                      const float* __restrict__ w, To* __restrict__ out, int64_t l, int C, int g,
                                      int hg, int Tn, int p, SsdSkip sk) {
    int64_t idx = blockIdx.x;
    const int t = (int)(idx % Tn);
    idx /= Tn;
    const int gi = (int)(idx % g);
    idx /= g;
    const int c = (int)(idx % C);
    const int64_t b = idx / C;
    const int64_t pos = (int64_t)c * Tn + t;
    if (pos >= l) return;
    const int row = hg * p;
    const int64_t rg = (b * C + c) * g + gi;
    const float* yr = Yh + rg * (int64_t)row * Tn;
    const float* qr = Q + (rg * Tn + t) * (int64_t)row;
    const float* wr = w + rg * (int64_t)hg * Tn;
    To* dst = out + ((b * l + pos) * g + gi) * (int64_t)row;
    const To* sr = static_cast<const To*>(sk.src);
    for (int i = threadIdx.x; i < row; i += blockDim.x) {
        const int hh = i / p, q = i - hh * p;
        float v = yr[(hh * Tn + t) * p + q] + qr[i] * wr[hh * Tn + t];
        if (sr) {
            const int h = gi * hg + hh;
            v += sk.D[h] * to_f(sr[b * sk.sb + pos * sk.sl + h * sk.sh + q]);
        }
        dst[i] = from_f<To>(v);
    }
}

// build_m_kernel for T a multiple of 8 (≤ 256·NV): a warp writes one row, a
// lane 8 consecutive columns (one 16-byte store of bf16); a block owns
// kBuildVecRows rows of one (bc, h). Same values, bit for bit.
constexpr int kBuildVecRows = 32;
template <typename T, int NV>
__global__ void __launch_bounds__(256)
    build_m_vec_kernel(const float* __restrict__ CB, const float* __restrict__ acum, const float* __restrict__ dt,
                       T* __restrict__ M, int g, int hg, int Tn, int row_tiles) {
    const int64_t bch = blockIdx.x / row_tiles;
    const int t0 = (blockIdx.x % row_tiles) * kBuildVecRows;
    const int64_t H = (int64_t)g * hg;
    const int64_t bc = bch / H;
    const int h = (int)(bch % H), gi = h / hg;
    const float* a = acum + bch * Tn;
    const float* d = dt + bch * Tn;
    const float* cb = CB + (bc * g + gi) * (int64_t)Tn * Tn;
    T* out = M + bch * (int64_t)Tn * Tn;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float as[NV][8], ds[NV][8];
#pragma unroll
    for (int v = 0; v < NV; ++v) {
        const int s0 = (v * 32 + lane) * 8;
        if (s0 < Tn) {
            load8(a + s0, as[v]);
            load8(d + s0, ds[v]);
        } else {
#pragma unroll
            for (int j = 0; j < 8; ++j) as[v][j] = ds[v][j] = 0.f;
        }
    }
    const int t1 = min(t0 + kBuildVecRows, Tn);
    for (int t = t0 + warp; t < t1; t += 8) {
        const float at = a[t];
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            const int s0 = (v * 32 + lane) * 8;
            if (s0 >= Tn) continue;
            float o[8];
            if (s0 <= t) {
                float c[8];
                load8(cb + t * Tn + s0, c);
#pragma unroll
                for (int j = 0; j < 8; ++j) o[j] = s0 + j <= t ? c[j] * __expf(at - as[v][j]) * ds[v][j] : 0.f;
            } else {
#pragma unroll
                for (int j = 0; j < 8; ++j) o[j] = 0.f;
            }
            store8(out + t * Tn + s0, o);
        }
    }
}

// head_dot_kernel for p a multiple of 8: 8 lanes per output, a lane 8
// consecutive elements (16-byte loads).
template <typename T>
__global__ void head_dot_vec_kernel(const T* __restrict__ a, bool a_group, const float* __restrict__ b, bool b_group,
                                    float* __restrict__ out, bool accumulate, int64_t n_out, int hg, int Tn, int p) {
    const int64_t o = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 8;
    const int sub = threadIdx.x & 7;
    const bool valid = o < n_out;  // the 8 lanes of an output agree; all lanes reach the shuffles
    float acc = 0.f;
    if (valid) {
        const int t = (int)(o % Tn);
        const int hh = (int)((o / Tn) % hg);
        const int64_t r = o / ((int64_t)Tn * hg);
        const int64_t grp = ((r * Tn + t) * hg + hh) * p;
        const T* ar = a + (a_group ? grp : o * p);
        const float* br = b + (b_group ? grp : o * p);
        for (int q0 = sub * 8; q0 < p; q0 += 64) {
            float x[8], y[8];
            load8(ar + q0, x);
            load8(br + q0, y);
#pragma unroll
            for (int j = 0; j < 8; ++j) acc += x[j] * y[j];
        }
    }
    acc += __shfl_xor_sync(0xffffffffu, acc, 4);
    acc += __shfl_xor_sync(0xffffffffu, acc, 2);
    acc += __shfl_xor_sync(0xffffffffu, acc, 1);
    if (valid && sub == 0) out[o] = accumulate ? out[o] + acc : acc;
}

// heads_to_group_kernel for p a multiple of 8: 8 elements per thread.
template <typename T>
__global__ void heads_to_group_vec_kernel(const T* __restrict__ in, const float* __restrict__ w, T* __restrict__ out,
                                          int hg, int Tn, int p) {
    const int64_t rt = blockIdx.x, r = rt / Tn;
    const int t = (int)(rt % Tn), row = hg * p;
    const T* src = in + r * (int64_t)row * Tn;
    const float* wr = w + r * (int64_t)hg * Tn;
    T* dst = out + rt * row;
    for (int i = threadIdx.x * 8; i < row; i += blockDim.x * 8) {
        const int hh = i / p, q = i - hh * p;
        float x[8];
        load8(src + (hh * Tn + t) * p + q, x);
        const float wv = wr[hh * Tn + t];
#pragma unroll
        for (int j = 0; j < 8; ++j) x[j] *= wv;
        store8(dst + i, x);
    }
}

// combine_chunks_kernel for p a multiple of 8: 8 elements per thread (16-byte
// accesses; the skip's rows 16-byte aligned). kDD: also the per-(row, head)
// partials of Σ_q skip · x2 (the backward's ∂D: skip = ∂y, x2 = x), summed in
// a fixed order through shared memory; rows past l write zero partials.
template <typename To, bool kDD>
__global__ void combine_chunks_vec_kernel(const float* __restrict__ Yh, const float* __restrict__ Q,
                                          const float* __restrict__ w, To* __restrict__ out, int64_t l, int C, int g,
                                          int hg, int Tn, int p, SsdSkip sk) {
    extern __shared__ float part[];  // kDD: one partial per 8-element vector of the row
    int64_t idx = blockIdx.x;
    const int t = (int)(idx % Tn);
    idx /= Tn;
    const int gi = (int)(idx % g);
    idx /= g;
    const int c = (int)(idx % C);
    const int64_t b = idx / C;
    const int64_t pos = (int64_t)c * Tn + t;
    if (pos >= l) {
        if (kDD)
            for (int hh = threadIdx.x; hh < hg; hh += blockDim.x) sk.dD_part[blockIdx.x * (int64_t)hg + hh] = 0.f;
        return;
    }
    const int row = hg * p;
    const int64_t rg = (b * C + c) * g + gi;
    const float* yr = Yh + rg * (int64_t)row * Tn;
    const float* qr = Q + (rg * Tn + t) * (int64_t)row;
    const float* wr = w + rg * (int64_t)hg * Tn;
    To* dst = out + ((b * l + pos) * g + gi) * (int64_t)row;
    const To* sr = static_cast<const To*>(sk.src);
    for (int i = threadIdx.x * 8; i < row; i += blockDim.x * 8) {
        const int hh = i / p, q = i - hh * p;
        float y[8], qq[8];
        load8(yr + (hh * Tn + t) * p + q, y);
        load8(qr + i, qq);
        const float wv = wr[hh * Tn + t];
#pragma unroll
        for (int j = 0; j < 8; ++j) y[j] += qq[j] * wv;
        if (sr) {
            const int h = gi * hg + hh;
            float sv[8];
            load8(sr + b * sk.sb + pos * sk.sl + h * sk.sh + q, sv);
            const float dh = sk.D[h];
#pragma unroll
            for (int j = 0; j < 8; ++j) y[j] += dh * sv[j];
            if constexpr (kDD) {
                float xv[8];
                load8(static_cast<const To*>(sk.x2) + b * sk.xb + pos * sk.xl + h * sk.xh + q, xv);
                float acc = 0.f;
#pragma unroll
                for (int j = 0; j < 8; ++j) acc += sv[j] * xv[j];
                part[i / 8] = acc;
            }
        }
        store8(dst + i, y);
    }
    if constexpr (kDD) {
        __syncthreads();
        const int per = p / 8;
        for (int hh = threadIdx.x; hh < hg; hh += blockDim.x) {
            float acc = 0.f;
            for (int v = 0; v < per; ++v) acc += part[hh * per + v];
            sk.dD_part[blockIdx.x * (int64_t)hg + hh] = acc;
        }
    }
}

// m_bwd_kernel for T a multiple of 8 (≤ 256·NV): the same tiles, sums and
// outputs, but a lane owns 8 consecutive columns (one 16-byte load of dM per
// row) and keeps C·Bᵀ, its dCB partial and its column sums in registers;
// only the column sums cross warps (per head, through shared memory in warp
// order).
template <typename T, bool Det, int NV>
__global__ void __launch_bounds__(kMThreads)
    m_bwd_vec_kernel(const T* __restrict__ dM, const float* __restrict__ CB, const float* __restrict__ acum,
                     const float* __restrict__ dt, float* __restrict__ dCB, float* __restrict__ da_row,
                     float* __restrict__ ucol, int g, int hg, int Tn) {
    constexpr int RW = kRows / kMWarps;  // rows per warp
    __shared__ float col_sh[kMWarps][NV * 256];
    const int64_t bcg = blockIdx.x, bc = bcg / g;
    const int gi = (int)(bcg % g);
    const int64_t H = (int64_t)g * hg;
    const int t0 = blockIdx.y * kRows;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float* cb = CB + bcg * (int64_t)Tn * Tn;
    float cbv[RW][NV][8], dcb[RW][NV][8];
#pragma unroll
    for (int rr = 0; rr < RW; ++rr) {
        const int t = t0 + warp + rr * kMWarps;
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            const int s0 = (v * 32 + lane) * 8;
            if (t < Tn && s0 <= t)
                load8(cb + t * Tn + s0, cbv[rr][v]);
            else
#pragma unroll
                for (int j = 0; j < 8; ++j) cbv[rr][v][j] = 0.f;
#pragma unroll
            for (int j = 0; j < 8; ++j) dcb[rr][v][j] = 0.f;
        }
    }
    for (int hh = 0; hh < hg; ++hh) {
        const int64_t bch = bc * H + gi * hg + hh;
        const float* a = acum + bch * Tn;
        const float* d = dt + bch * Tn;
        float as[NV][8], ds[NV][8], col[NV][8];
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            const int s0 = (v * 32 + lane) * 8;
            if (s0 < Tn) {
                load8(a + s0, as[v]);
                load8(d + s0, ds[v]);
            } else {
#pragma unroll
                for (int j = 0; j < 8; ++j) as[v][j] = ds[v][j] = 0.f;
            }
#pragma unroll
            for (int j = 0; j < 8; ++j) col[v][j] = 0.f;
        }
#pragma unroll
        for (int rr = 0; rr < RW; ++rr) {
            const int t = t0 + warp + rr * kMWarps;
            if (t >= Tn) break;  // the same for the whole warp
            const float at = a[t];
            const T* dmr = dM + (bch * Tn + t) * (int64_t)Tn;
            float rowacc = 0.f;
#pragma unroll
            for (int v = 0; v < NV; ++v) {
                const int s0 = (v * 32 + lane) * 8;
                if (s0 <= t) {
                    float m[8];
                    load8(dmr + s0, m);
#pragma unroll
                    for (int j = 0; j < 8; ++j) {
                        if (s0 + j <= t) {
                            const float e = m[j] * __expf(at - as[v][j]);  // dM·E
                            const float u = e * cbv[rr][v][j];
                            dcb[rr][v][j] += e * ds[v][j];
                            rowacc += u * ds[v][j];
                            col[v][j] += u;
                        }
                    }
                }
            }
            rowacc = warp_sum(rowacc);
            if (lane == 0) da_row[bch * Tn + t] = rowacc;
        }
#pragma unroll
        for (int v = 0; v < NV; ++v)
#pragma unroll
            for (int j = 0; j < 8; ++j) col_sh[warp][(v * 32 + lane) * 8 + j] = col[v][j];
        __syncthreads();
        for (int s = threadIdx.x; s < Tn; s += kMThreads) {
            float v = 0.f;
#pragma unroll
            for (int w = 0; w < kMWarps; ++w) v += col_sh[w][s];
            if (Det)
                ucol[(bch * gridDim.y + blockIdx.y) * Tn + s] = v;
            else if (v != 0.f)
                atomicAdd(&ucol[bch * Tn + s], v);
        }
        __syncthreads();
    }
#pragma unroll
    for (int rr = 0; rr < RW; ++rr) {
        const int t = t0 + warp + rr * kMWarps;
        if (t >= Tn) break;
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            const int s0 = (v * 32 + lane) * 8;
            if (s0 >= Tn) continue;
            float4* o = reinterpret_cast<float4*>(dCB + bcg * (int64_t)Tn * Tn + (int64_t)t * Tn + s0);
            o[0] = make_float4(dcb[rr][v][0], dcb[rr][v][1], dcb[rr][v][2], dcb[rr][v][3]);
            o[1] = make_float4(dcb[rr][v][4], dcb[rr][v][5], dcb[rr][v][6], dcb[rr][v][7]);
        }
    }
}

// Inclusive scan of one row per warp: the row is walked in tiles of 32, each
// tile scanned with shuffles (Hillis–Steele, a fixed order) and the running
// total of the tiles before it added.
__global__ void chunk_cumsum_kernel(const float* in, float* out, int64_t rows, int64_t Tn, bool reverse) {
    const int lane = threadIdx.x & 31;
    const int64_t row = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;  // the whole warp leaves together
    const float* r = in + row * Tn;
    float* o = out + row * Tn;
    float carry = 0.f;
    for (int64_t base = 0; base < Tn; base += 32) {
        const int64_t j = base + lane;
        const int64_t idx = reverse ? Tn - 1 - j : j;
        float v = j < Tn ? r[idx] : 0.f;
#pragma unroll
        for (int off = 1; off < 32; off <<= 1) {
            const float u = __shfl_up_sync(0xffffffffu, v, off);
            if (lane >= off) v += u;
        }
        v += carry;
        if (j < Tn) o[idx] = v;
        carry = __shfl_sync(0xffffffffu, v, 31);
    }
}

// S_prev in fp32 and/or the activation dtype (what the GEMMs read: no cast pass).
template <typename Tc>
__global__ void state_scan_kernel(const float* __restrict__ states, const float* __restrict__ alast,
                                  const float* __restrict__ init, float* __restrict__ S_prev,
                                  Tc* __restrict__ S_prev_cd, float* __restrict__ final_state, int64_t C, int64_t H,
                                  int64_t P) {
    const int64_t b = blockIdx.y;
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;  // over H*P
    if (i >= H * P) return;
    const int64_t h = i / P;
    float S = init ? init[b * H * P + i] : 0.f;
    for (int64_t c = 0; c < C; ++c) {
        const int64_t o = ((b * C + c) * H) * P + i;
        if (S_prev) S_prev[o] = S;
        if (S_prev_cd) S_prev_cd[o] = from_f<Tc>(S);
        S = __expf(alast[(b * C + c) * H + h]) * S + states[o];
    }
    final_state[b * H * P + i] = S;
}
// G in fp32 and/or the activation dtype; with dal_part (P a multiple of the
// block size: a block within one head), also each block's Σ G·S_prev per
// chunk, (b, C, H·P/blockDim), summed in a fixed order (block_sum).
template <typename Tc>
__global__ void state_scan_bwd_kernel(const float* __restrict__ dS_prev, const float* __restrict__ alast,
                                      const float* __restrict__ dfinal, float* __restrict__ G, Tc* __restrict__ G_cd,
                                      const float* __restrict__ S_prev, float* __restrict__ dal_part,
                                      float* __restrict__ dinit, int64_t C, int64_t H, int64_t P) {
    __shared__ float sh[32];
    const int64_t b = blockIdx.y;
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    const bool valid = i < H * P;
    if (!valid && !dal_part) return;
    const int64_t h = valid ? i / P : 0;
    float Gc = valid && dfinal ? dfinal[b * H * P + i] : 0.f;
    for (int64_t c = C - 1; c >= 0; --c) {
        const int64_t o = ((b * C + c) * H) * P + i;
        if (valid) {
            if (G) G[o] = Gc;
            if (G_cd) G_cd[o] = from_f<Tc>(Gc);
        }
        if (dal_part) {
            const float v = block_sum(valid ? Gc * S_prev[o] : 0.f, sh);
            if (threadIdx.x == 0) dal_part[(b * C + c) * gridDim.x + blockIdx.x] = v;
        }
        if (valid) Gc = dS_prev[o] + __expf(alast[(b * C + c) * H + h]) * Gc;
    }
    if (valid) dinit[b * H * P + i] = Gc;
}

// One warp per output element (r, hh, t); lanes stride over p.
template <typename T>
__global__ void head_dot_kernel(const T* __restrict__ a, bool a_group, const float* __restrict__ b, bool b_group,
                                float* __restrict__ out, bool accumulate, int64_t n_out, int hg, int Tn, int p) {
    const int64_t o = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;  // (r, hh, t) in the heads layout
    if (o >= n_out) return;
    const int lane = threadIdx.x % 32;
    const int t = (int)(o % Tn);
    const int hh = (int)((o / Tn) % hg);
    const int64_t r = o / ((int64_t)Tn * hg);
    const int64_t grp = ((r * Tn + t) * hg + hh) * p;  // the same element's row in the group layout
    const T* ar = a + (a_group ? grp : o * p);
    const float* br = b + (b_group ? grp : o * p);
    float acc = 0.f;
    for (int q = lane; q < p; q += 32) acc += to_f(ar[q]) * br[q];
    acc = warp_sum(acc);
    if (lane == 0) out[o] = accumulate ? out[o] + acc : acc;
}

// (b, l, X, Y) strided -> (b, c, X, T, Y) contiguous (zero past l), and back
// with a cast: one thread per 8 consecutive elements of Y (16-byte accesses).
// Block x: one (b, c, X) plane; block y: a range of its T·Y/8 vectors.
template <typename Ti, typename To>
__global__ void to_chunks_vec_kernel(const Ti* __restrict__ in, int64_t sb, int64_t sl, int64_t sx,
                                     To* __restrict__ out, int64_t l, int c, int X, int T, int Y) {
    const int yv = Y / 8;
    const int v = blockIdx.y * blockDim.x + threadIdx.x;
    if (v >= T * yv) return;
    const int64_t plane = blockIdx.x;  // (bi, ci, xi)
    const int xi = (int)(plane % X);
    const int64_t bc = plane / X;
    const int ci = (int)(bc % c);
    const int64_t bi = bc / c;
    const int t = v / yv, q = (v - t * yv) * 8;
    const int64_t pos = (int64_t)ci * T + t;
    float f[8];
    if (pos < l) {
        load8(in + bi * sb + pos * sl + xi * sx + q, f);
    } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) f[e] = 0.f;
    }
    store8(out + plane * T * Y + (int64_t)t * Y + q, f);
}

template <typename Ti, typename To>
__global__ void from_chunks_vec_kernel(const Ti* __restrict__ in, To* __restrict__ out, int64_t l, int c, int X, int T,
                                       int Y) {
    const int yv = Y / 8;
    const int v = blockIdx.y * blockDim.x + threadIdx.x;
    if (v >= T * yv) return;
    const int64_t plane = blockIdx.x;
    const int xi = (int)(plane % X);
    const int64_t bc = plane / X;
    const int ci = (int)(bc % c);
    const int64_t bi = bc / c;
    const int t = v / yv, q = (v - t * yv) * 8;
    const int64_t pos = (int64_t)ci * T + t;
    if (pos >= l) return;
    float f[8];
    load8(in + plane * T * Y + (int64_t)t * Y + q, f);
    store8(out + ((bi * l + pos) * X + xi) * Y + q, f);
}

}  // namespace

void ssd_head_dot(const void* a, DType ta, bool a_group, const float* b, bool b_group, float* out, bool accumulate,
                  int64_t bcg, int64_t hg, int64_t T, int64_t p, cudaStream_t s) {
    const int64_t n_out = bcg * hg * T;
    if (n_out == 0) return;
    const int threads = 256, per_block = threads / 32;
    const int64_t blocks = (n_out + per_block - 1) / per_block;
    if (blocks > INT32_MAX) throw std::runtime_error("ssd_head_dot: too many blocks");
    dispatch(ta, [&](auto tag) {
        using TT = decltype(tag);
        if (p % 8 == 0) {
            const int64_t vblocks = (n_out * 8 + threads - 1) / threads;
            head_dot_vec_kernel<TT><<<(unsigned)vblocks, threads, 0, s>>>(
                static_cast<const TT*>(a), a_group, b, b_group, out, accumulate, n_out, (int)hg, (int)T, (int)p);
        } else {
            head_dot_kernel<TT><<<(unsigned)blocks, threads, 0, s>>>(static_cast<const TT*>(a), a_group, b, b_group,
                                                                     out, accumulate, n_out, (int)hg, (int)T, (int)p);
        }
    });
    check_launch("ssd_head_dot");
}

void ssd_build_m(const float* CB, const float* acum, const float* dt, void* M, DType t, int64_t bc, int64_t g,
                 int64_t hg, int64_t T, cudaStream_t s) {
    if (bc * g * hg * T == 0) return;
    if (T > kBuildThreads * kBuildCols)
        throw std::runtime_error("ssd_build_m: chunk size " + std::to_string(T) + " above " +
                                 std::to_string(kBuildThreads * kBuildCols));
    const int64_t row_tiles = (T + kBuildRows - 1) / kBuildRows;
    const int64_t blocks = bc * g * hg * row_tiles;
    if (blocks > INT32_MAX) throw std::runtime_error("ssd_build_m: too many blocks");
    dispatch(t, [&](auto tag) {
        using TT = decltype(tag);
        if (T % 8 == 0) {
            const int64_t vtiles = (T + kBuildVecRows - 1) / kBuildVecRows;
            const unsigned vblocks = (unsigned)(bc * g * hg * vtiles);
            if (T <= 256)
                build_m_vec_kernel<TT, 1>
                    <<<vblocks, 256, 0, s>>>(CB, acum, dt, static_cast<TT*>(M), (int)g, (int)hg, (int)T, (int)vtiles);
            else
                build_m_vec_kernel<TT, 2>
                    <<<vblocks, 256, 0, s>>>(CB, acum, dt, static_cast<TT*>(M), (int)g, (int)hg, (int)T, (int)vtiles);
        } else {
            build_m_kernel<TT><<<(unsigned)blocks, kBuildThreads, 0, s>>>(CB, acum, dt, static_cast<TT*>(M), (int)g,
                                                                          (int)hg, (int)T, (int)row_tiles);
        }
    });
    check_launch("ssd_build_m");
}

int64_t ssd_m_bwd_row_tiles(int64_t T) {
    return (T + kRows - 1) / kRows;
}

void ssd_m_bwd(const void* dM, DType t, const float* CB, const float* acum, const float* dt, float* dCB, float* da_row,
               float* ucol, bool deterministic, int64_t bc, int64_t g, int64_t hg, int64_t T, cudaStream_t s) {
    if (bc * g * hg * T == 0) return;
    const size_t smem = (size_t)(kRows * T + (deterministic ? kMWarps : 1) * T + 2 * T) * sizeof(float);
    dim3 grid((unsigned)(bc * g), (unsigned)ssd_m_bwd_row_tiles(T));
    dispatch(t, [&](auto tag) {
        using TT = decltype(tag);
        auto launch = [&](auto kernel) {
            if (smem > 48 * 1024) {
                cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
                if (e != cudaSuccess)
                    throw std::runtime_error(std::string("ssd_m_bwd: chunk too large: ") + cudaGetErrorString(e));
            }
            kernel<<<grid, kMThreads, smem, s>>>(static_cast<const TT*>(dM), CB, acum, dt, dCB, da_row, ucol, g, hg, T);
        };
        // The vectorized kernel where T allows it (rows 16-byte aligned), else the general one.
        if (T % 8 == 0 && T <= 512) {
            auto vec = [&](auto kernel) {
                kernel<<<grid, kMThreads, 0, s>>>(static_cast<const TT*>(dM), CB, acum, dt, dCB, da_row, ucol, (int)g,
                                                  (int)hg, (int)T);
            };
            if (T <= 256)
                deterministic ? vec(m_bwd_vec_kernel<TT, true, 1>) : vec(m_bwd_vec_kernel<TT, false, 1>);
            else
                deterministic ? vec(m_bwd_vec_kernel<TT, true, 2>) : vec(m_bwd_vec_kernel<TT, false, 2>);
        } else if (deterministic) {
            launch(m_bwd_kernel<TT, true>);
        } else {
            launch(m_bwd_kernel<TT, false>);
        }
    });
    check_launch("ssd_m_bwd");
}

void ssd_heads_to_group(const void* in, DType t, const float* w, void* out, int64_t r, int64_t hg, int64_t T, int64_t p,
                        cudaStream_t s) {
    if (r * hg * T * p == 0) return;
    if (r * T > INT32_MAX || hg * T * p > INT32_MAX) throw std::runtime_error("ssd_heads_to_group: too large");
    dispatch(t, [&](auto tag) {
        using TT = decltype(tag);
        if (p % 8 == 0)
            heads_to_group_vec_kernel<TT><<<(unsigned)(r * T), 128, 0, s>>>(
                static_cast<const TT*>(in), w, static_cast<TT*>(out), (int)hg, (int)T, (int)p);
        else
            heads_to_group_kernel<TT><<<(unsigned)(r * T), 256, 0, s>>>(static_cast<const TT*>(in), w,
                                                                        static_cast<TT*>(out), (int)hg, (int)T, (int)p);
    });
    check_launch("ssd_heads_to_group");
}

void ssd_combine_chunks(const float* Yh, const float* Q, const float* w, void* out, DType to, int64_t b, int64_t c,
                        int64_t l, int64_t g, int64_t hg, int64_t T, int64_t p, const SsdSkip& skip, cudaStream_t s) {
    if (b * c * g * hg * T * p == 0) return;
    if (b * c * g * T > INT32_MAX || hg * T * p > INT32_MAX) throw std::runtime_error("ssd_combine_chunks: too large");
    const bool skip_vec =
        !skip.src ||
        (aligned16(skip.src) && skip.sb % 8 == 0 && skip.sl % 8 == 0 && skip.sh % 8 == 0 &&
         (!skip.dD_part || (aligned16(skip.x2) && skip.xb % 8 == 0 && skip.xl % 8 == 0 && skip.xh % 8 == 0)));
    const bool vec = p % 8 == 0 && skip_vec;
    if (skip.dD_part && !vec) throw std::runtime_error("ssd_combine_chunks: dD partials need the vectorized kernel");
    dispatch(to, [&](auto tag) {
        using TT = decltype(tag);
        const unsigned blocks = (unsigned)(b * c * g * T);
        if (vec && skip.dD_part)
            combine_chunks_vec_kernel<TT, true><<<blocks, 128, (size_t)(hg * p / 8) * sizeof(float), s>>>(
                Yh, Q, w, static_cast<TT*>(out), l, (int)c, (int)g, (int)hg, (int)T, (int)p, skip);
        else if (vec)
            combine_chunks_vec_kernel<TT, false><<<blocks, 128, 0, s>>>(Yh, Q, w, static_cast<TT*>(out), l, (int)c,
                                                                        (int)g, (int)hg, (int)T, (int)p, skip);
        else
            combine_chunks_kernel<TT><<<blocks, 256, 0, s>>>(Yh, Q, w, static_cast<TT*>(out), l, (int)c, (int)g,
                                                             (int)hg, (int)T, (int)p, skip);
    });
    check_launch("ssd_combine_chunks");
}

bool ssd_combine_chunks_dD_ok(int64_t p, const SsdSkip& skip) {
    return p % 8 == 0 && aligned16(skip.src) && skip.sb % 8 == 0 && skip.sl % 8 == 0 && skip.sh % 8 == 0 &&
           aligned16(skip.x2) && skip.xb % 8 == 0 && skip.xl % 8 == 0 && skip.xh % 8 == 0;
}

bool ssd_chunks_vec_ok(const void* in, const void* out, int64_t sb, int64_t sl, int64_t sx, int64_t Y) {
    return Y % 8 == 0 && sb % 8 == 0 && sl % 8 == 0 && sx % 8 == 0 && aligned16(in) && aligned16(out);
}

void ssd_to_chunks(const void* in, DType ti, int64_t sb, int64_t sl, int64_t sx, void* out, DType to, int64_t b,
                   int64_t l, int64_t X, int64_t Y, int64_t T, cudaStream_t s) {
    const int64_t c = (l + T - 1) / T;
    if (b * c * X * T * Y == 0) return;
    if (!ssd_chunks_vec_ok(in, out, sb, sl, sx, Y)) throw std::runtime_error("ssd_to_chunks: unaligned");
    if (T * Y / 8 > INT32_MAX || b * c * X > INT32_MAX) throw std::runtime_error("ssd_to_chunks: too large");
    const int threads = 256;
    dim3 grid((unsigned)(b * c * X), (unsigned)((T * Y / 8 + threads - 1) / threads));
    dispatch(ti, [&](auto a) {
        dispatch(to, [&](auto o) {
            using Ti = decltype(a);
            using To = decltype(o);
            to_chunks_vec_kernel<Ti, To><<<grid, threads, 0, s>>>(
                static_cast<const Ti*>(in), sb, sl, sx, static_cast<To*>(out), l, (int)c, (int)X, (int)T, (int)Y);
        });
    });
    check_launch("ssd_to_chunks");
}

void ssd_from_chunks(const void* in, DType ti, void* out, DType to, int64_t b, int64_t l, int64_t X, int64_t Y,
                     int64_t T, cudaStream_t s) {
    const int64_t c = (l + T - 1) / T;
    if (b * c * X * T * Y == 0) return;
    if (!ssd_chunks_vec_ok(in, out, 0, 0, 0, Y)) throw std::runtime_error("ssd_from_chunks: unaligned");
    if (T * Y / 8 > INT32_MAX || b * c * X > INT32_MAX) throw std::runtime_error("ssd_from_chunks: too large");
    const int threads = 256;
    dim3 grid((unsigned)(b * c * X), (unsigned)((T * Y / 8 + threads - 1) / threads));
    dispatch(ti, [&](auto a) {
        dispatch(to, [&](auto o) {
            using Ti = decltype(a);
            using To = decltype(o);
            from_chunks_vec_kernel<Ti, To><<<grid, threads, 0, s>>>(static_cast<const Ti*>(in), static_cast<To*>(out),
                                                                    l, (int)c, (int)X, (int)T, (int)Y);
        });
    });
    check_launch("ssd_from_chunks");
}

void chunk_cumsum(const float* in, float* out, int64_t rows, int64_t T, bool reverse, cudaStream_t s) {
    if (rows * T == 0) return;
    const int threads = 256, per_block = threads / 32;
    chunk_cumsum_kernel<<<(unsigned)((rows + per_block - 1) / per_block), threads, 0, s>>>(in, out, rows, T, reverse);
    check_launch("chunk_cumsum");
}

void ssd_state_scan(const float* states, const float* alast, const float* init, float* S_prev, void* S_prev_cd,
                    DType tcd, float* final_state, int64_t b, int64_t c, int64_t H, int64_t P, cudaStream_t s) {
    if (b * H * P == 0) return;
    dim3 grid((unsigned)((H * P + 255) / 256), (unsigned)b);
    dispatch(tcd, [&](auto tag) {
        using TT = decltype(tag);
        state_scan_kernel<TT>
            <<<grid, 256, 0, s>>>(states, alast, init, S_prev, static_cast<TT*>(S_prev_cd), final_state, c, H, P);
    });
    check_launch("ssd_state_scan");
}

int64_t ssd_state_scan_bwd_dal_parts(int64_t P) {
    return P % 256 == 0 ? P / 256 : 0;
}

void ssd_state_scan_bwd(const float* dS_prev, const float* alast, const float* dfinal, float* G, void* G_cd, DType tcd,
                        const float* S_prev, float* dal_part, float* dinit, int64_t b, int64_t c, int64_t H, int64_t P,
                        cudaStream_t s) {
    if (b * H * P == 0) return;
    if (dal_part && ssd_state_scan_bwd_dal_parts(P) == 0)
        throw std::runtime_error("ssd_state_scan_bwd: dal_part needs P a multiple of 256");
    dim3 grid((unsigned)((H * P + 255) / 256), (unsigned)b);
    dispatch(tcd, [&](auto tag) {
        using TT = decltype(tag);
        state_scan_bwd_kernel<TT>
            <<<grid, 256, 0, s>>>(dS_prev, alast, dfinal, G, static_cast<TT*>(G_cd), S_prev, dal_part, dinit, c, H, P);
    });
    check_launch("ssd_state_scan_bwd");
}

}  // namespace bimamba::cuda::k
