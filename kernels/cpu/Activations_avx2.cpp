// AVX2 conv + SiLU and SiLU gate (Activations.h).
#include <immintrin.h>

#include "kernels/cpu/Activations.h"

namespace bimamba::kernels {

namespace {
// exp(x) for 8 floats: x = n·ln2 + r (Cody–Waite), e^r by a degree-6
// polynomial on |r| <= ln2/2, scaled by 2^n. Inputs are clamped to
// [-87.3, 88.3] (below: ~0 instead of a subnormal; silu does not need more).
inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
inline __m256 silu8(__m256 v) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}
// Lanes [0, m) of a vector (the last partial vector of a range).
inline __m256i lanes(int m) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
}  // namespace

void conv_silu_avx2(const float* const* taps, int K, const float* wT, int ldw, const float* bias, int n, float* out) {
    for (int c = 0; c < n; c += 8) {
        const int m = n - c;
        if (m >= 8) {
            __m256 acc = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
            for (int k = 0; k < K; ++k)
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(taps[k] + c), _mm256_loadu_ps(wT + (size_t)k * ldw + c), acc);
            _mm256_storeu_ps(out + c, silu8(acc));
        } else {
            const __m256i mk = lanes(m);
            __m256 acc = bias ? _mm256_maskload_ps(bias + c, mk) : _mm256_setzero_ps();
            for (int k = 0; k < K; ++k)
                acc = _mm256_fmadd_ps(_mm256_maskload_ps(taps[k] + c, mk),
                                      _mm256_maskload_ps(wT + (size_t)k * ldw + c, mk), acc);
            _mm256_maskstore_ps(out + c, mk, silu8(acc));
        }
    }
}

void silu_mul_avx2(float* y, const float* z, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), silu8(_mm256_loadu_ps(z + i))));
    if (i < n) {
        const __m256i mk = lanes(n - i);
        _mm256_maskstore_ps(y + i, mk,
                            _mm256_mul_ps(_mm256_maskload_ps(y + i, mk), silu8(_mm256_maskload_ps(z + i, mk))));
    }
}

}  // namespace bimamba::kernels
