// AVX2 kernel of the lookup-table ±1 GEMV (layout in BitGemvLut.h).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/BitGemvLut.h"

namespace bimamba::kernels {

namespace {
inline void store_tile(const Lut3Matrix& m, int t, __m256 acc, float* y) {
    if (8 * t + 8 <= m.rows) {
        _mm256_storeu_ps(y + 8 * t, acc);
    } else if (8 * t < m.rows) {
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

void bitgemv_lut3_quads_avx2(const Lut3Matrix& m, const float* tables, int q0, int q1, float* y) {
    const __m256i shifts = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21);
    const int G = m.groups;
    // The four tiles of a quad share each table load and give four
    // independent add chains (one chain alone would wait on the add latency).
    for (int q = q0; q < q1; ++q) {
        const uint8_t* p = m.bytes() + (size_t)q * G * 12;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int g = 0; g < G; ++g, p += 12) {
            _mm_prefetch((const char*)p + 512, _MM_HINT_T0);
            const __m256 tab = _mm256_loadu_ps(tables + 8 * g);
            a0 = _mm256_add_ps(a0, _mm256_permutevar8x32_ps(tab, indices(p, shifts)));
            a1 = _mm256_add_ps(a1, _mm256_permutevar8x32_ps(tab, indices(p + 3, shifts)));
            a2 = _mm256_add_ps(a2, _mm256_permutevar8x32_ps(tab, indices(p + 6, shifts)));
            a3 = _mm256_add_ps(a3, _mm256_permutevar8x32_ps(tab, indices(p + 9, shifts)));
        }
        store_tile(m, 4 * q, a0, y);
        store_tile(m, 4 * q + 1, a1, y);
        store_tile(m, 4 * q + 2, a2, y);
        store_tile(m, 4 * q + 3, a3, y);
    }
}

namespace {
// One tile (k-th of quad q) against N tokens (N accumulators, one index vector per group).
template <int N>
inline void tile_tokens(const Lut3Matrix& m, int q, int k, const float* tables, size_t ts, float* y, size_t ystride,
                        __m256i shifts) {
    const int G = m.groups;
    const uint8_t* p = m.bytes() + (size_t)q * G * 12 + 3 * k;
    __m256 a[N];
    for (int j = 0; j < N; ++j) a[j] = _mm256_setzero_ps();
    for (int g = 0; g < G; ++g) {
        const __m256i idx = indices(p + 12 * g, shifts);
        for (int j = 0; j < N; ++j)
            a[j] = _mm256_add_ps(a[j], _mm256_permutevar8x32_ps(_mm256_loadu_ps(tables + j * ts + 8 * g), idx));
    }
    for (int j = 0; j < N; ++j) store_tile(m, 4 * q + k, a[j], y + j * ystride);
}
}  // namespace

void bitgemm_lut3_quads_avx2(const Lut3Matrix& m, const float* tables, size_t ts, int T, int q0, int q1, float* y,
                             size_t ystride) {
    const __m256i shifts = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21);
    for (int q = q0; q < q1; ++q)
        for (int k = 0; k < 4; ++k) {
            if (8 * (4 * q + k) >= m.rows) break;
            for (int j0 = 0; j0 < T; j0 += 8) {
                const float* tb = tables + j0 * ts;
                float* yb = y + j0 * ystride;
                switch (std::min(8, T - j0)) {
                    case 8:
                        tile_tokens<8>(m, q, k, tb, ts, yb, ystride, shifts);
                        break;
                    case 7:
                        tile_tokens<7>(m, q, k, tb, ts, yb, ystride, shifts);
                        break;
                    case 6:
                        tile_tokens<6>(m, q, k, tb, ts, yb, ystride, shifts);
                        break;
                    case 5:
                        tile_tokens<5>(m, q, k, tb, ts, yb, ystride, shifts);
                        break;
                    case 4:
                        tile_tokens<4>(m, q, k, tb, ts, yb, ystride, shifts);
                        break;
                    case 3:
                        tile_tokens<3>(m, q, k, tb, ts, yb, ystride, shifts);
                        break;
                    case 2:
                        tile_tokens<2>(m, q, k, tb, ts, yb, ystride, shifts);
                        break;
                    default:
                        tile_tokens<1>(m, q, k, tb, ts, yb, ystride, shifts);
                        break;
                }
            }
        }
}

}  // namespace bimamba::kernels
