// AVX-512 path of the int8-row GEMV (compiled with -mavx512f/bw/vl/dq; called
// only when the CPU has them): four rows share each load of x; 16 int8
// weights per load, widened to one 16-lane float vector, one FMA.
#include <immintrin.h>

#include "kernels/cpu/Q8Gemv.h"

namespace bimamba::kernels {

namespace {
template <int R>
inline void rows_avx512(const int8_t* p, const float* scale, int cols, const float* x, float* y) {
    const int full16 = cols & ~15;
    __m512 a[R];
    for (int i = 0; i < R; ++i) a[i] = _mm512_setzero_ps();
    for (int c = 0; c < full16; c += 16) {
        const __m512 xv = _mm512_loadu_ps(x + c);
        for (int i = 0; i < R; ++i) {
            const __m128i v = _mm_loadu_si128((const __m128i*)(p + (size_t)i * cols + c));
            a[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)), xv, a[i]);
        }
    }
    for (int i = 0; i < R; ++i) {
        const int8_t* row = p + (size_t)i * cols;
        float t = _mm512_reduce_add_ps(a[i]);
        for (int k = full16; k < cols; ++k) t += (float)row[k] * x[k];
        y[i] = scale[i] * t;
    }
}
}  // namespace

void q8gemv_rows_avx512(const int8_t* q, const float* scale, int r0, int r1, int cols, const float* x, float* y) {
    int r = r0;
    for (; r + 4 <= r1; r += 4) rows_avx512<4>(q + (size_t)r * cols, scale + r, cols, x, y + r);
    for (; r < r1; ++r) rows_avx512<1>(q + (size_t)r * cols, scale + r, cols, x, y + r);
}

}  // namespace bimamba::kernels
