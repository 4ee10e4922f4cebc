// AVX-512 path of the int8-row GEMV (compiled with -mavx512f/bw/vl/dq; called
// only when the CPU has them): eight rows share each load of x; 16 int8
// weights per load, widened to one 16-lane float vector, one FMA; two
// accumulators per row (alternate 16-column groups), as the AVX2 path, so the
// FMA latency chain does not bound it.
#include <immintrin.h>

#include "kernels/cpu/Q8Gemv.h"

namespace bimamba::kernels {

namespace {
inline __m512 w16(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p)));
}

template <int R>
inline void rows_avx512(const int8_t* p, const float* scale, int cols, const float* x, float* y) {
    const int full32 = cols & ~31;
    __m512 a[R], b[R];
    for (int i = 0; i < R; ++i) a[i] = b[i] = _mm512_setzero_ps();
    int c = 0;
    for (; c < full32; c += 32) {
        const __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
        for (int i = 0; i < R; ++i) {
            const int8_t* q = p + (size_t)i * cols + c;
            a[i] = _mm512_fmadd_ps(w16(q), x0, a[i]);
            b[i] = _mm512_fmadd_ps(w16(q + 16), x1, b[i]);
        }
    }
    if (c + 16 <= cols) {
        const __m512 x0 = _mm512_loadu_ps(x + c);
        for (int i = 0; i < R; ++i) a[i] = _mm512_fmadd_ps(w16(p + (size_t)i * cols + c), x0, a[i]);
        c += 16;
    }
    for (int i = 0; i < R; ++i) {
        const int8_t* row = p + (size_t)i * cols;
        float t = _mm512_reduce_add_ps(_mm512_add_ps(a[i], b[i]));
        for (int k = c; k < cols; ++k) t += (float)row[k] * x[k];
        y[i] = scale[i] * t;
    }
}
}  // namespace

void q8gemv_rows_avx512(const int8_t* q, const float* scale, int r0, int r1, int cols, const float* x, float* y) {
    int r = r0;
    for (; r + 8 <= r1; r += 8) rows_avx512<8>(q + (size_t)r * cols, scale + r, cols, x, y + r);
    for (; r < r1; ++r) rows_avx512<1>(q + (size_t)r * cols, scale + r, cols, x, y + r);
}

}  // namespace bimamba::kernels
