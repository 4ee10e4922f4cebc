// AVX2 kernel of the integer lookup-table ±1 GEMV (BitGemvI16.h).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/BitGemvI16.h"

namespace bimamba::kernels {

void i16lut_quantize_avx2(const float* x, int cols, const float* inv, int16_t* q, int n) {
    int c = 0;
    for (; c + 16 <= cols; c += 16) {  // (16 divides kI16ChunkCols: one scale per step)
        const __m256 vi = _mm256_set1_ps(inv[c / kI16ChunkCols]);
        const __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + c), vi));
        const __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + c + 8), vi));
        _mm256_storeu_si256((__m256i*)(q + c), _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8));
    }
    for (; c < cols; ++c) q[c] = (int16_t)_mm_cvtss_si32(_mm_set_ss(x[c] * inv[c / kI16ChunkCols]));
    for (; c < n; ++c) q[c] = 0;
}

void i16lut_tables_avx2(const int16_t* q, int groups, uint8_t* tab, int16_t* words) {
    // Lane i of S_j is -1 where bit j of i is set (that column enters negated).
    auto signs = [](int j) {
        alignas(32) int16_t v[16];
        for (int i = 0; i < 16; ++i) v[i] = ((i >> j) & 1) ? -1 : 1;
        return _mm256_load_si256((const __m256i*)v);
    };
    const __m256i s0 = signs(0), s1 = signs(1), s2 = signs(2), s3 = signs(3);
    // Per 128-bit lane: low bytes of the 8 entries, then their high bytes.
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int g = 0; g < groups; ++g) {
        const int16_t* v = q + 4 * g;
        __m256i t = _mm256_sign_epi16(_mm256_set1_epi16(v[0]), s0);
        t = _mm256_add_epi16(t, _mm256_sign_epi16(_mm256_set1_epi16(v[1]), s1));
        t = _mm256_add_epi16(t, _mm256_sign_epi16(_mm256_set1_epi16(v[2]), s2));
        t = _mm256_add_epi16(t, _mm256_sign_epi16(_mm256_set1_epi16(v[3]), s3));
        _mm256_storeu_si256((__m256i*)(words + 16 * (size_t)g), t);  // the word table (AVX-512 kernel)
        t = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(t, split), 0xD8);  // lo 0-7, lo 8-15, hi 0-7, hi 8-15
        _mm256_storeu_si256((__m256i*)(tab + 32 * (size_t)g), t);
    }
}

void bitgemv_i16lut_blocks_avx2(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y) {
    constexpr int kPairs = kI16ChunkCols / 8;
    // Software prefetch this far ahead of the weight stream: from DRAM, 2 KB
    // ran 2 threads ~10 % faster than 512 B (hardware prefetch alone: ~5 % slower still).
    constexpr int kPrefetchBytes = 2048;
    const int P = m.pairs;
    const uint8_t* tab = scratch + (size_t)P * 16;
    const float* scales = reinterpret_cast<const float*>(tab + (size_t)P * 64);  // (unaligned loads only)
    const __m256i nib = _mm256_set1_epi8(0x0f);
    for (int b = b0; b < b1; ++b) {
        const uint8_t* d = m.data.data() + (size_t)b * P * 32;
        __m256 r0 = _mm256_setzero_ps(), r1 = r0, r2 = r0, r3 = r0;  // rows 0-7, 16-23, 8-15, 24-31
        for (int p0 = 0; p0 < P; p0 += kPairs) {  // one chunk: int16 cannot overflow
            __m256i a = _mm256_setzero_si256(), c = a;  // int16: rows 0-7|16-23, rows 8-15|24-31
            const int pe = p0 + kPairs < P ? p0 + kPairs : P;
            for (int p = p0; p < pe; ++p) {
                _mm_prefetch((const char*)(d + (size_t)p * 32) + kPrefetchBytes, _MM_HINT_T0);
                const __m256i v = _mm256_loadu_si256((const __m256i*)(d + (size_t)p * 32));
                const __m256i lo = _mm256_and_si256(v, nib);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
                const uint8_t* t0 = tab + (size_t)(2 * p) * 32;
                const __m256i tl0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)t0));
                const __m256i th0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(t0 + 16)));
                const __m256i tl1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(t0 + 32)));
                const __m256i th1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(t0 + 48)));
                const __m256i l0 = _mm256_shuffle_epi8(tl0, lo), h0 = _mm256_shuffle_epi8(th0, lo);
                const __m256i l1 = _mm256_shuffle_epi8(tl1, hi), h1 = _mm256_shuffle_epi8(th1, hi);
                a = _mm256_add_epi16(a, _mm256_add_epi16(_mm256_unpacklo_epi8(l0, h0), _mm256_unpacklo_epi8(l1, h1)));
                c = _mm256_add_epi16(c, _mm256_add_epi16(_mm256_unpackhi_epi8(l0, h0), _mm256_unpackhi_epi8(l1, h1)));
            }
            float sk;
            std::memcpy(&sk, scales + p0 / kPairs, 4);
            const __m256 vs = _mm256_set1_ps(sk);
            r0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(a))), vs, r0);
            r1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1))), vs, r1);
            r2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(c))), vs, r2);
            r3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(c, 1))), vs, r3);
        }
        alignas(32) float out[32];
        _mm256_store_ps(out, r0);
        _mm256_store_ps(out + 16, r1);
        _mm256_store_ps(out + 8, r2);
        _mm256_store_ps(out + 24, r3);
        const int n = m.rows - 32 * b < 32 ? m.rows - 32 * b : 32;
        for (int i = 0; i < n; ++i) y[32 * b + i] = out[i];
    }
}

}  // namespace bimamba::kernels
