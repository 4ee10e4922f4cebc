// AVX2 sum of squares in double (RmsNorm.h): four independent accumulators of
// four doubles (the FMA latency chain of one would bound it), added up in a
// fixed order.
#include <immintrin.h>

#include "kernels/cpu/RmsNorm.h"

namespace bimamba::kernels {

double sum_squares_avx2(const float* x, int n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
        const __m256d u0 = _mm256_cvtps_pd(_mm256_castps256_ps128(u)),
                      u1 = _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1));
        const __m256d v0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                      v1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        a0 = _mm256_fmadd_pd(u0, u0, a0);
        a1 = _mm256_fmadd_pd(u1, u1, a1);
        a2 = _mm256_fmadd_pd(v0, v0, a2);
        a3 = _mm256_fmadd_pd(v1, v1, a3);
    }
    for (; i + 4 <= n; i += 4) {
        const __m256d u = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        a0 = _mm256_fmadd_pd(u, u, a0);
    }
    const __m256d s = _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3));
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double ss = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; ++i) ss += (double)x[i] * x[i];
    return ss;
}

}  // namespace bimamba::kernels
