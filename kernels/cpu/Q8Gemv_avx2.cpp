// AVX2 path of the int8-row GEMV (compiled with -mavx2 -mfma; called only when
// the CPU has them): four rows share each load of x; 16 int8 weights per
// load, widened to two 8-lane float vectors, two FMAs.
#include <immintrin.h>

#include "kernels/cpu/Q8Gemv.h"

namespace bimamba::kernels {

namespace {
inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
inline __m256 lo8(__m128i v) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}
inline __m256 hi8(__m128i v) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
}

template <int R>
inline void rows_avx2(const int8_t* p, const float* scale, int cols, const float* x, float* y) {
    const int full16 = cols & ~15;
    __m256 a[R];
    for (int i = 0; i < R; ++i) a[i] = _mm256_setzero_ps();
    int c = 0;
    for (; c < full16; c += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
        for (int i = 0; i < R; ++i) {
            const __m128i v = _mm_loadu_si128((const __m128i*)(p + (size_t)i * cols + c));
            a[i] = _mm256_fmadd_ps(lo8(v), x0, a[i]);
            a[i] = _mm256_fmadd_ps(hi8(v), x1, a[i]);
        }
    }
    if (c + 8 <= cols) {
        const __m256 x0 = _mm256_loadu_ps(x + c);
        for (int i = 0; i < R; ++i)
            a[i] = _mm256_fmadd_ps(lo8(_mm_loadl_epi64((const __m128i*)(p + (size_t)i * cols + c))), x0, a[i]);
        c += 8;
    }
    for (int i = 0; i < R; ++i) {
        const int8_t* row = p + (size_t)i * cols;
        float t = hsum(a[i]);
        for (int k = c; k < cols; ++k) t += (float)row[k] * x[k];
        y[i] = scale[i] * t;
    }
}
}  // namespace

void q8gemv_rows_avx2(const int8_t* q, const float* scale, int r0, int r1, int cols, const float* x, float* y) {
    int r = r0;
    for (; r + 4 <= r1; r += 4) rows_avx2<4>(q + (size_t)r * cols, scale + r, cols, x, y + r);
    for (; r < r1; ++r) rows_avx2<1>(q + (size_t)r * cols, scale + r, cols, x, y + r);
}

}  // namespace bimamba::kernels
