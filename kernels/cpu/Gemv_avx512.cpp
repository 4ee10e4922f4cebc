// AVX-512 path of the fp16 GEMV and GEMM (compiled with -mavx512f/bw/vl/dq and
// F16C; called only when the CPU has AVX-512). The AVX2 path at twice the
// width: 16 halves converted per VCVTPH2PS, 16-lane FMA chains. Prefill is
// compute-bound (each weight is used for every token of the block), so on a
// CPU with two 512-bit FMA units this doubles the multiply-adds per cycle;
// decode (one token) is bound by memory either way.
//
// Register tiles of 4 rows × 4 tokens (16 accumulators, 4 x vectors, the
// converted weights: 21 of the 32 zmm registers); a tile of 4 rows is read
// from memory once for the whole block (the next tile prefetched meanwhile),
// then from L1. The GEMV is the same tile with one token, so every output is
// accumulated in one order (a 16-lane chain over the columns, the fixed
// reduction below, FMA tails) and batched prefill stays bit-identical to
// token-by-token decoding under this ISA too.
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/Gemv.h"

namespace bimamba::kernels {

namespace {
// The 16 lanes: halves added, then the AVX2 path's 8-lane reduction.
inline float hsum16(__m512 v) {
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
inline __m512 w16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
}
// One cache line of each of 4 consecutive rows (a prefetch past the matrix's end does not fault).
inline void prefetch_rows(const uint16_t* p, int cols) {
    for (int i = 0; i < 4; ++i) _mm_prefetch((const char*)(p + (size_t)i * cols), _MM_HINT_T0);
}

template <int R, int N, bool Prefetch>
inline void f16_tile(const uint16_t* p, int cols, const float* x, size_t xstride, float* y, size_t ystride) {
    const int full = cols & ~15;
    __m512 a[R][N];
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < N; ++j) a[i][j] = _mm512_setzero_ps();
    const uint16_t* pf = p + 4 * (size_t)cols;  // the next tile of 4 rows
    for (int c = 0; c < full; c += 16) {
        if (Prefetch && (c & 31) == 0) prefetch_rows(pf + c, cols);
        __m512 xv[N];
        for (int j = 0; j < N; ++j) xv[j] = _mm512_loadu_ps(x + j * xstride + c);
        for (int i = 0; i < R; ++i) {
            const __m512 wv = w16(p + (size_t)i * cols + c);
            for (int j = 0; j < N; ++j) a[i][j] = _mm512_fmadd_ps(wv, xv[j], a[i][j]);
        }
    }
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < N; ++j) {
            const uint16_t* row = p + (size_t)i * cols;
            const float* xx = x + j * xstride;
            float t = hsum16(a[i][j]);
            for (int c = full; c < cols; ++c) t = std::fma(_cvtsh_ss(row[c]), xx[c], t);
            y[j * ystride + i] = t;
        }
}

template <int R>
inline void f16_rows_all_tokens(const uint16_t* p, int cols, const float* x, size_t xstride, int T, float* y,
                                size_t ystride) {
    // The first token tile reads the R rows from memory and prefetches the
    // next R; the other tiles read these from L1.
    int j = 0;
    switch (T < 4 ? T : 4) {
        case 4:
            f16_tile<R, 4, true>(p, cols, x, xstride, y, ystride);
            break;
        case 3:
            f16_tile<R, 3, true>(p, cols, x, xstride, y, ystride);
            break;
        case 2:
            f16_tile<R, 2, true>(p, cols, x, xstride, y, ystride);
            break;
        case 1:
            f16_tile<R, 1, true>(p, cols, x, xstride, y, ystride);
            break;
        default:
            return;
    }
    j = T < 4 ? T : 4;
    for (; j + 4 <= T; j += 4) f16_tile<R, 4, false>(p, cols, x + j * xstride, xstride, y + j * ystride, ystride);
    switch (T - j) {
        case 3:
            f16_tile<R, 3, false>(p, cols, x + j * xstride, xstride, y + j * ystride, ystride);
            break;
        case 2:
            f16_tile<R, 2, false>(p, cols, x + j * xstride, xstride, y + j * ystride, ystride);
            break;
        case 1:
            f16_tile<R, 1, false>(p, cols, x + j * xstride, xstride, y + j * ystride, ystride);
            break;
        default:
            break;
    }
}
}  // namespace

void f16gemm_rows_avx512(const uint16_t* w, int r0, int r1, int cols, const float* x, size_t xstride, int T, float* y,
                         size_t ystride) {
    int r = r0;
    for (; r + 4 <= r1; r += 4) f16_rows_all_tokens<4>(w + (size_t)r * cols, cols, x, xstride, T, y + r, ystride);
    switch (r1 - r) {
        case 3:
            f16_rows_all_tokens<3>(w + (size_t)r * cols, cols, x, xstride, T, y + r, ystride);
            break;
        case 2:
            f16_rows_all_tokens<2>(w + (size_t)r * cols, cols, x, xstride, T, y + r, ystride);
            break;
        case 1:
            f16_rows_all_tokens<1>(w + (size_t)r * cols, cols, x, xstride, T, y + r, ystride);
            break;
        default:
            break;
    }
}

void f16gemv_rows_avx512(const uint16_t* w, int r0, int r1, int cols, const float* x, float* y) {
    f16gemm_rows_avx512(w, r0, r1, cols, x, 0, 1, y, 0);
}

}  // namespace bimamba::kernels
