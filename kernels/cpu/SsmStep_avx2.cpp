#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/Half.h"
#include "kernels/cpu/SsmState16.h"
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

namespace bimamba::kernels {

namespace {
inline __m256 load_state8(const uint16_t* p, bool bf) {
    const __m128i raw = _mm_loadu_si128((const __m128i*)p);
    return bf ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16)) : _mm256_cvtph_ps(raw);
}
inline void store_state8(uint16_t* p, __m256 v, bool bf) {
    if (!bf) {
        _mm_storeu_si128((__m128i*)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        return;
    }
    // bf16, round to nearest even: (x + 0x7fff + lsb) >> 16; NaN keeps its top half with the quiet bit.
    const __m256i xi = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(xi, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(xi, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(xi, 16), _mm256_set1_epi32(0x40)), nan);
    _mm_storeu_si128((__m128i*)p, _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
}
}  // namespace

float ssm_head_step16_avx2(uint16_t* s, StateType t, int hd, int ns, float dA, float dt, const float* x, const float* B,
                           const float* C, float D, float* y) {
    const bool bf = t == StateType::BF16;
    const __m256 vdA = _mm256_set1_ps(dA), absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vmax = _mm256_setzero_ps();
    float smax = 0;
    const int full = ns & ~7;
    for (int p = 0; p < hd; ++p) {
        const float dx = dt * x[p];
        const __m256 vdx = _mm256_set1_ps(dx);
        uint16_t* sp = s + (size_t)p * ns;
        __m256 acc = _mm256_setzero_ps();
        for (int n = 0; n < full; n += 8) {
            const __m256 v = _mm256_fmadd_ps(load_state8(sp + n, bf), vdA, _mm256_mul_ps(vdx, _mm256_loadu_ps(B + n)));
            store_state8(sp + n, v, bf);
            vmax =
                _mm256_max_ps(vmax, _mm256_and_ps(v, absmask));  // (a NaN v is dropped here; the range is what matters)
            acc = _mm256_fmadd_ps(v, _mm256_loadu_ps(C + n), acc);
        }
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float tsum = _mm_cvtss_f32(h);
        for (int n = full; n < ns; ++n) {
            const float v = ssm_state16_update(sp[n], bf, dA, dx, B[n]);
            smax = std::fmax(smax, std::fabs(v));
            tsum += v * C[n];
        }
        y[p] = tsum + D * x[p];
    }
    alignas(32) float m[8];
    _mm256_store_ps(m, vmax);
    for (float v : m) smax = std::fmax(smax, v);
    return smax;
}

float max_abs_avx2(const float* x, int n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        m = _mm256_max_ps(m, _mm256_and_ps(v, absmask));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    if (_mm256_movemask_ps(nan)) return std::numeric_limits<float>::quiet_NaN();
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    float r = 0;
    for (float v : lanes) r = std::max(r, v);
    const float tail = max_abs_ref(x + i, n - i);
    return std::isnan(tail) ? tail : std::max(r, tail);
}

}  // namespace bimamba::kernels
