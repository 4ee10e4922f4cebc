// AVX2 paths (compiled with -mavx2 -mfma -mf16c; called only when the CPU has them).
//
// bitgemv uses the sign-flip trick: a table maps each packed byte to eight
// lane masks holding 0x80000000 where the bit is set, so s·x for 8 columns is
// one XOR of x with the mask, then an add. Four rows share each load of x.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/F16GemmTiles.h"
#include "kernels/cpu/Gemv.h"

namespace bimamba::kernels {

namespace {
struct SignTable {
    alignas(32) uint32_t m[256][8];
    SignTable() {
        for (int b = 0; b < 256; ++b)
            for (int j = 0; j < 8; ++j) m[b][j] = ((b >> j) & 1) ? 0x80000000u : 0u;
    }
};
const SignTable& sign_table() {
    static const SignTable t;
    return t;
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
// One cache line of each of 4 consecutive rows (harmless past the matrix's end: a prefetch does not fault),
// into L2 (T1), not L1: on the Zen 4 development VM, T0 prefetches of a weight stream held back
// the demand misses behind them (the 780M fp16 in_proj at 25-27 GB/s on 2 threads against 31-32
// with T1, the streaming read 33), and a line in L2 is close enough for the loads that follow.
inline void prefetch_rows(const uint16_t* p, int cols) {
    _mm_prefetch((const char*)p, _MM_HINT_T1);
    _mm_prefetch((const char*)(p + cols), _MM_HINT_T1);
    _mm_prefetch((const char*)(p + 2 * (size_t)cols), _MM_HINT_T1);
    _mm_prefetch((const char*)(p + 3 * (size_t)cols), _MM_HINT_T1);
}
inline float sgn_tail(const uint8_t* row, int c, const float* x) {
    return ((row[c >> 3] >> (c & 7)) & 1) ? -x[c] : x[c];
}
}  // namespace

void bitgemv_rows_avx2(const uint8_t* s, int r0, int r1, int cols, const float* x, float* y) {
    const auto& T = sign_table();
    const size_t stride = bit_row_stride(cols);
    const int full = cols / 8;  // whole bytes handled by SIMD
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint8_t* p0 = s + r * stride;
        const uint8_t *p1 = p0 + stride, *p2 = p1 + stride, *p3 = p2 + stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < full; ++b) {
            const __m256 xv = _mm256_loadu_ps(x + 8 * b);
            a0 = _mm256_add_ps(a0, _mm256_xor_ps(xv, _mm256_load_ps((const float*)T.m[p0[b]])));
            a1 = _mm256_add_ps(a1, _mm256_xor_ps(xv, _mm256_load_ps((const float*)T.m[p1[b]])));
            a2 = _mm256_add_ps(a2, _mm256_xor_ps(xv, _mm256_load_ps((const float*)T.m[p2[b]])));
            a3 = _mm256_add_ps(a3, _mm256_xor_ps(xv, _mm256_load_ps((const float*)T.m[p3[b]])));
        }
        float t0 = hsum(a0), t1 = hsum(a1), t2 = hsum(a2), t3 = hsum(a3);
        for (int c = full * 8; c < cols; ++c) {
            t0 += sgn_tail(p0, c, x);
            t1 += sgn_tail(p1, c, x);
            t2 += sgn_tail(p2, c, x);
            t3 += sgn_tail(p3, c, x);
        }
        y[r] = t0;
        y[r + 1] = t1;
        y[r + 2] = t2;
        y[r + 3] = t3;
    }
    for (; r < r1; ++r) {
        const uint8_t* p = s + r * stride;
        __m256 a = _mm256_setzero_ps();
        for (int b = 0; b < full; ++b)
            a = _mm256_add_ps(a, _mm256_xor_ps(_mm256_loadu_ps(x + 8 * b), _mm256_load_ps((const float*)T.m[p[b]])));
        float t = hsum(a);
        for (int c = full * 8; c < cols; ++c) t += sgn_tail(p, c, x);
        y[r] = t;
    }
}

double binary_input_avx2(const float* alpha, const float* beta, const float* x, float* ax, int cols) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    int c = 0;
    for (; c + 8 <= cols; c += 8) {
        const __m256 xv = _mm256_loadu_ps(x + c), bv = _mm256_loadu_ps(beta + c);
        _mm256_storeu_ps(ax + c, _mm256_mul_ps(_mm256_loadu_ps(alpha + c), xv));
        // β·x in double: each float product is exact in double, as in the reference.
        s0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(bv)), _mm256_cvtps_pd(_mm256_castps256_ps128(xv)),
                             s0);
        s1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(bv, 1)),
                             _mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1)), s1);
    }
    alignas(32) double t[4];
    _mm256_store_pd(t, _mm256_add_pd(s0, s1));
    double b = (t[0] + t[1]) + (t[2] + t[3]);
    for (; c < cols; ++c) {
        ax[c] = alpha[c] * x[c];
        b += (double)beta[c] * x[c];
    }
    return b;
}

void f16gemv_rows_avx2(const uint16_t* w, int r0, int r1, int cols, const float* x, float* y) {
    const int full = cols & ~7;
    int r = r0;
    // Tails as explicit FMAs: f16gemm_rows_avx2 must round exactly like this.
    auto tail = [&](float t, const uint16_t* row, int c) { return std::fma(_cvtsh_ss(row[c]), x[c], t); };
    for (; r + 4 <= r1; r += 4) {
        const uint16_t* p0 = w + (size_t)r * cols;
        const uint16_t *p1 = p0 + cols, *p2 = p1 + cols, *p3 = p2 + cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        // Software prefetch of the next 4 rows at the same column (one tile, 4·cols·2 bytes, ahead).
        const uint16_t* pf = p0 + 4 * (size_t)cols;
        for (int c = 0; c < full; c += 8) {
            if ((c & 31) == 0) prefetch_rows(pf + c, cols);
            const __m256 xv = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p0 + c))), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p1 + c))), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p2 + c))), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p3 + c))), xv, a3);
        }
        float t0 = hsum(a0), t1 = hsum(a1), t2 = hsum(a2), t3 = hsum(a3);
        for (int c = full; c < cols; ++c) {
            t0 = tail(t0, p0, c);
            t1 = tail(t1, p1, c);
            t2 = tail(t2, p2, c);
            t3 = tail(t3, p3, c);
        }
        y[r] = t0;
        y[r + 1] = t1;
        y[r + 2] = t2;
        y[r + 3] = t3;
    }
    for (; r < r1; ++r) {
        const uint16_t* p = w + (size_t)r * cols;
        __m256 a = _mm256_setzero_ps();
        for (int c = 0; c < full; c += 8)
            a = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p + c))), _mm256_loadu_ps(x + c), a);
        float t = hsum(a);
        for (int c = full; c < cols; ++c) t = tail(t, p, c);
        y[r] = t;
    }
}

namespace {
// The fp16 GEMM's vector traits (F16GemmTiles.h): 8 lanes, tiles of 4 rows ×
// 3 tokens (12 accumulators + 3 x + 1 weight = the 16 ymm registers), the
// reduction and prefetch of f16gemv_rows_avx2 above.
struct Avx2F16 {
    using reg = __m256;
    static constexpr int width = 8, tokens = 3, gemv_rows = 4;  // the GEMV is f16gemv_rows_avx2
    static reg zero() { return _mm256_setzero_ps(); }
    static reg load_x(const float* p) { return _mm256_loadu_ps(p); }
    static reg load_w(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
    static reg fma(reg w, reg x, reg a) { return _mm256_fmadd_ps(w, x, a); }
    static float hsum(reg v) { return kernels::hsum(v); }
    static void prefetch_rows(const uint16_t* p, int cols) { kernels::prefetch_rows(p, cols); }
};
}  // namespace

void f16gemm_rows_avx2(const uint16_t* w, int r0, int r1, int cols, const float* x, size_t xstride, int T, float* y,
                       size_t ystride) {
    f16tiles::gemm_rows<Avx2F16>(w, r0, r1, cols, x, xstride, T, y, ystride);
}

void f32gemv_rows_avx2(const float* w, int r0, int r1, int cols, const float* x, float* y) {
    const int full = cols & ~7;
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float* p0 = w + (size_t)r * cols;
        const float *p1 = p0 + cols, *p2 = p1 + cols, *p3 = p2 + cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < full; c += 8) {
            const __m256 xv = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + c), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + c), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + c), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(p3 + c), xv, a3);
        }
        float t0 = hsum(a0), t1 = hsum(a1), t2 = hsum(a2), t3 = hsum(a3);
        for (int c = full; c < cols; ++c) {
            t0 += p0[c] * x[c];
            t1 += p1[c] * x[c];
            t2 += p2[c] * x[c];
            t3 += p3[c] * x[c];
        }
        y[r] = t0;
        y[r + 1] = t1;
        y[r + 2] = t2;
        y[r + 3] = t3;
    }
    for (; r < r1; ++r) {
        const float* p = w + (size_t)r * cols;
        __m256 a = _mm256_setzero_ps();
        for (int c = 0; c < full; c += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(p + c), _mm256_loadu_ps(x + c), a);
        float t = hsum(a);
        for (int c = full; c < cols; ++c) t += p[c] * x[c];
        y[r] = t;
    }
}

}  // namespace bimamba::kernels
