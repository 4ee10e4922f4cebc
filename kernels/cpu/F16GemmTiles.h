#pragma once
// The fp16 GEMM's register tiling, shared by the AVX2 and AVX-512 paths: each
// includes this header in its own translation unit (compiled with its own
// flags) and instantiates it with its vector traits V (Gemv_avx2.cpp,
// Gemv_avx512.cpp):
//
//   V::reg, V::width (floats per register), V::tokens (token tile width),
//   V::zero(), V::load_x(const float*), V::load_w(const uint16_t*) (halves to
//   floats), V::fma(w, x, acc), V::hsum(reg) (the GEMV's reduction),
//   V::prefetch_rows(p, cols) (a cache line of each of 4 rows), V::gemv_rows
//   (rows per tile of a single token).
//
// Tiles of R rows (<= 4; V::gemv_rows for a single token) × N tokens: R·N
// accumulators in registers, each converted weight vector used for N tokens,
// each x vector for R rows. A tile of rows is read from memory once for the
// whole block of tokens (its first token tile prefetches the next rows), then
// from L1. Every (row, token) output is one V::width-lane chain over the
// columns in order, V::hsum, then FMA tails: exactly what the GEMV of that ISA
// computes, so batched prefill is bit-identical to token-by-token decoding.
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace bimamba::kernels::f16tiles {

template <class V, int R, int N, bool Prefetch>
inline void tile(const uint16_t* p, int cols, const float* x, size_t xstride, float* y, size_t ystride) {
    const int full = cols - cols % V::width;
    typename V::reg a[R][N];
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < N; ++j) a[i][j] = V::zero();
    constexpr int ahead = R > 4 ? R : 4;  // rows prefetched: the next tile (at least 4 rows)
    const uint16_t* pf = p + ahead * (size_t)cols;
    for (int c = 0; c < full; c += V::width) {
        if (Prefetch && (c & 31) == 0)
            for (int i = 0; i < ahead; i += 4) V::prefetch_rows(pf + (size_t)i * cols + c, cols);
        typename V::reg xv[N];
        for (int j = 0; j < N; ++j) xv[j] = V::load_x(x + j * xstride + c);
        for (int i = 0; i < R; ++i) {
            const typename V::reg wv = V::load_w(p + (size_t)i * cols + c);
            for (int j = 0; j < N; ++j) a[i][j] = V::fma(wv, xv[j], a[i][j]);
        }
    }
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < N; ++j) {
            const uint16_t* row = p + (size_t)i * cols;
            const float* xx = x + j * xstride;
            float t = V::hsum(a[i][j]);
            for (int c = full; c < cols; ++c) t = std::fma(_cvtsh_ss(row[c]), xx[c], t);
            y[j * ystride + i] = t;
        }
}

// The widest token tile (at most N) that fits n tokens; returns its width.
template <class V, int R, bool Prefetch, int N = V::tokens>
inline int tile_upto(int n, const uint16_t* p, int cols, const float* x, size_t xstride, float* y, size_t ystride) {
    if constexpr (N == 1) {
        tile<V, R, 1, Prefetch>(p, cols, x, xstride, y, ystride);
        return 1;
    } else {
        if (n >= N) {
            tile<V, R, N, Prefetch>(p, cols, x, xstride, y, ystride);
            return N;
        }
        return tile_upto<V, R, Prefetch, N - 1>(n, p, cols, x, xstride, y, ystride);
    }
}

// R rows for all T tokens: the first token tile reads the rows from memory
// and prefetches the next ones; the other tiles read the rows from L1.
template <class V, int R>
inline void rows_all_tokens(const uint16_t* p, int cols, const float* x, size_t xstride, int T, float* y,
                            size_t ystride) {
    if (T <= 0) return;
    int j = tile_upto<V, R, true>(T, p, cols, x, xstride, y, ystride);
    while (j < T) j += tile_upto<V, R, false>(T - j, p, cols, x + j * xstride, xstride, y + j * ystride, ystride);
}

// Rows [r0, r1) of w for T tokens. One token (the GEMV) runs tiles of
// V::gemv_rows rows: with nothing to reuse across tokens, more rows in flight
// is what keeps memory busy (8 rows against 4: 29 against 25 GB/s on 2 Zen 4
// cores at the 780M in_proj, the pure streaming read 30-33). Each output's
// order of operations does not depend on the tile, so the GEMV stays
// bit-identical to the GEMM's tiles of 4 rows.
template <class V>
inline void gemm_rows(const uint16_t* w, int r0, int r1, int cols, const float* x, size_t xstride, int T, float* y,
                      size_t ystride) {
    int r = r0;
    if constexpr (V::gemv_rows > 4)
        if (T == 1)
            for (; r + V::gemv_rows <= r1; r += V::gemv_rows)
                tile<V, V::gemv_rows, 1, true>(w + (size_t)r * cols, cols, x, xstride, y + r, ystride);
    for (; r + 4 <= r1; r += 4) rows_all_tokens<V, 4>(w + (size_t)r * cols, cols, x, xstride, T, y + r, ystride);
    switch (r1 - r) {
        case 3:
            rows_all_tokens<V, 3>(w + (size_t)r * cols, cols, x, xstride, T, y + r, ystride);
            break;
        case 2:
            rows_all_tokens<V, 2>(w + (size_t)r * cols, cols, x, xstride, T, y + r, ystride);
            break;
        case 1:
            rows_all_tokens<V, 1>(w + (size_t)r * cols, cols, x, xstride, T, y + r, ystride);
            break;
        default:
            break;
    }
}

}  // namespace bimamba::kernels::f16tiles
