// AVX2 input quantization of the int8 lookup-table ±1 GEMV (BitGemvI8.h): the
// reference's operations in its order (each group's Σ|x| as (|x0| + |x1|) +
// (|x2| + |x3|), the chunk's largest / 125, the multipliers and 1/(G·m_k) in scalar
// float, q rounded to nearest even), so the same bytes.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/BitGemvI8.h"

namespace bimamba::kernels {

namespace {
// x[c0 .. c0+7], zeros past `cols`.
inline __m256 load8(const float* x, int c0, int cols) {
    if (c0 + 8 <= cols) return _mm256_loadu_ps(x + c0);
    alignas(32) float t[8] = {};
    if (c0 < cols) std::memcpy(t, x + c0, sizeof(float) * (cols - c0));
    return _mm256_load_ps(t);
}
}  // namespace

float i8lut_quantize_avx2(const float* x, int cols, uint8_t* mult, int8_t* q) {
    const int chunks = (cols + kI8ChunkCols - 1) / kI8ChunkCols;
    float need[kI8MaxCols / kI8ChunkCols];
    float S = 0x1p-100f;
    int nan = 0;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int k = 0; k < chunks; ++k) {
        __m256 a[4];
        for (int h = 0; h < 4; ++h) a[h] = _mm256_andnot_ps(sign, load8(x, kI8ChunkCols * k + 8 * h, cols));
        // Pair sums, then the groups' (|x0| + |x1|) + (|x2| + |x3|): all 8 groups in one register.
        const __m256 g = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
        nan |= _mm256_movemask_ps(_mm256_cmp_ps(g, g, _CMP_UNORD_Q));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(g), _mm256_extractf128_ps(g, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        need[k] = _mm_cvtss_f32(m) / 125.0f;
        S = std::max(S, need[k]);
    }
    const float G = i8lut_unit(S, nan != 0);
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int k = 0; k < chunks; ++k) {
        const int mk = i8lut_multiplier(need[k], G);
        mult[k] = (uint8_t)mk;
        const __m256 inv = _mm256_set1_ps(1.0f / (G * (float)mk));
        __m256i v[4];
        for (int h = 0; h < 4; ++h)
            v[h] = _mm256_min_epi32(
                hi,
                _mm256_max_epi32(lo, _mm256_cvtps_epi32(_mm256_mul_ps(load8(x, kI8ChunkCols * k + 8 * h, cols), inv))));
        const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256((__m256i*)(q + kI8ChunkCols * k), _mm256_permutevar8x32_epi32(b, order));
    }
    return G;
}

}  // namespace bimamba::kernels
