// AVX2 path of the int8-row GEMV (compiled with -mavx2 -mfma; called only when
// the CPU has them): eight rows share each load of x; 8 int8 weights per
// load, sign-extended and converted to one 8-lane float vector, one FMA. Each
// row keeps two accumulators (even and odd 8-column groups): with one, the
// FMA latency chain, not memory, bounded the kernel (11 GB/s from cache on one
// core; 17 GB/s with 8 rows x 2 chains).
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
// 8 int8 weights at p as floats (vpmovsxbd straight from memory: no shuffle of a wider load).
inline __m256 w8(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)));
}

template <int R>
inline void rows_avx2(const int8_t* p, const float* scale, int cols, const float* x, float* y) {
    const int full16 = cols & ~15;
    __m256 a[R], b[R];
    for (int i = 0; i < R; ++i) a[i] = b[i] = _mm256_setzero_ps();
    int c = 0;
    for (; c < full16; c += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
        for (int i = 0; i < R; ++i) {
            const int8_t* q = p + (size_t)i * cols + c;
            a[i] = _mm256_fmadd_ps(w8(q), x0, a[i]);
            b[i] = _mm256_fmadd_ps(w8(q + 8), x1, b[i]);
        }
    }
    if (c + 8 <= cols) {
        const __m256 x0 = _mm256_loadu_ps(x + c);
        for (int i = 0; i < R; ++i) a[i] = _mm256_fmadd_ps(w8(p + (size_t)i * cols + c), x0, a[i]);
        c += 8;
    }
    for (int i = 0; i < R; ++i) {
        const int8_t* row = p + (size_t)i * cols;
        float t = hsum(_mm256_add_ps(a[i], b[i]));
        for (int k = c; k < cols; ++k) t += (float)row[k] * x[k];
        y[i] = scale[i] * t;
    }
}
}  // namespace

void q8gemv_rows_avx2(const int8_t* q, const float* scale, int r0, int r1, int cols, const float* x, float* y) {
    int r = r0;
    for (; r + 8 <= r1; r += 8) rows_avx2<8>(q + (size_t)r * cols, scale + r, cols, x, y + r);
    for (; r < r1; ++r) rows_avx2<1>(q + (size_t)r * cols, scale + r, cols, x, y + r);
}

}  // namespace bimamba::kernels
