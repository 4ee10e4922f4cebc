#include <immintrin.h>

#include "kernels/cpu/SsmStep.h"

namespace bimamba::kernels {

void ssm_head_step_avx2(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B, const float* C,
                        float D, float* y) {
    const __m256 vdA = _mm256_set1_ps(dA);
    const int full = ns & ~7;
    for (int p = 0; p < hd; ++p) {
        const float dx = dt * x[p];
        const __m256 vdx = _mm256_set1_ps(dx);
        float* sp = s + (size_t)p * ns;
        __m256 acc = _mm256_setzero_ps();
        for (int n = 0; n < full; n += 8) {
            const __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(sp + n), vdA, _mm256_mul_ps(vdx, _mm256_loadu_ps(B + n)));
            _mm256_storeu_ps(sp + n, v);
            acc = _mm256_fmadd_ps(v, _mm256_loadu_ps(C + n), acc);
        }
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float t = _mm_cvtss_f32(h);
        for (int n = full; n < ns; ++n) {
            sp[n] = sp[n] * dA + dx * B[n];
            t += sp[n] * C[n];
        }
        y[p] = t + D * x[p];
    }
}

}  // namespace bimamba::kernels
