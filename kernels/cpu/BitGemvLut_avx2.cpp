// AVX2 kernel of the lookup-table ±1 GEMV (layout in BitGemvLut.h).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/BitGemvLut.h"

namespace bimamba::kernels {

namespace {
inline void store_tile(const Lut3Matrix& m, int t, __m256 acc, float* y) {
    if (8 * t + 8 <= m.rows) {
        _mm256_storeu_ps(y + 8 * t, acc);
    } else {
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, acc);
        for (int r = 8 * t; r < m.rows; ++r) y[r] = tmp[r - 8 * t];
    }
}
inline __m256i indices(const uint8_t* p, __m256i shifts) {
    // 24 bits used: 8 rows × 3-bit index; VPERMPS reads the low 3 bits of each
    // lane. VBROADCASTSS loads and broadcasts the 4 bytes in one instruction.
    float w;
    std::memcpy(&w, p, 4);
    return _mm256_srlv_epi32(_mm256_castps_si256(_mm256_set1_ps(w)), shifts);
}
}  // namespace

void bitgemv_lut3_tiles_avx2(const Lut3Matrix& m, const float* tables, int t0, int t1, float* y) {
    const __m256i shifts = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21);
    const int G = m.groups;
    int t = t0;
    // Four tiles share each table load and give four independent add chains
    // (one chain alone would wait on the add latency).
    for (; t + 4 <= t1; t += 4) {
        const uint8_t* p0 = m.data.data() + (size_t)t * G * 3;
        const uint8_t* p1 = p0 + (size_t)G * 3;
        const uint8_t* p2 = p1 + (size_t)G * 3;
        const uint8_t* p3 = p2 + (size_t)G * 3;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int g = 0; g < G; ++g) {
            const __m256 tab = _mm256_loadu_ps(tables + 8 * g);
            a0 = _mm256_add_ps(a0, _mm256_permutevar8x32_ps(tab, indices(p0 + 3 * g, shifts)));
            a1 = _mm256_add_ps(a1, _mm256_permutevar8x32_ps(tab, indices(p1 + 3 * g, shifts)));
            a2 = _mm256_add_ps(a2, _mm256_permutevar8x32_ps(tab, indices(p2 + 3 * g, shifts)));
            a3 = _mm256_add_ps(a3, _mm256_permutevar8x32_ps(tab, indices(p3 + 3 * g, shifts)));
        }
        store_tile(m, t, a0, y);
        store_tile(m, t + 1, a1, y);
        store_tile(m, t + 2, a2, y);
        store_tile(m, t + 3, a3, y);
    }
    for (; t < t1; ++t) {
        const uint8_t* p0 = m.data.data() + (size_t)t * G * 3;
        __m256 a0 = _mm256_setzero_ps();
        for (int g = 0; g < G; ++g)
            a0 = _mm256_add_ps(a0, _mm256_permutevar8x32_ps(_mm256_loadu_ps(tables + 8 * g), indices(p0 + 3 * g, shifts)));
        store_tile(m, t, a0, y);
    }
}

}  // namespace bimamba::kernels
