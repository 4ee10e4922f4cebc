// AVX2 kernel of the integer lookup-table ±1 GEMV (BitGemvI16.h).
#include <immintrin.h>

#include <algorithm>
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

void i16lut_chunk_scales_avx2(const float* x, int chunks, float* sk) {
    // Chunk k's four partial sums a[j] = Σ |x[32k + 4i + j]| in one SSE register,
    // added in the reference's order (chunk_scale in BitGemvI16.cpp), so the
    // same bits; chunks are independent, so their chains overlap.
    const __m128 abs = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    for (int k = 0; k < chunks; ++k) {
        const float* c = x + (size_t)k * kI16ChunkCols;
        __m128 a = _mm_and_ps(_mm_loadu_ps(c), abs);
        for (int i = 4; i < kI16ChunkCols; i += 4) a = _mm_add_ps(a, _mm_and_ps(_mm_loadu_ps(c + i), abs));
        const __m128 s = _mm_add_ps(a, _mm_shuffle_ps(a, a, _MM_SHUFFLE(2, 3, 0, 1)));  // a0+a1, ., a2+a3, .
        const float t = _mm_cvtss_f32(_mm_add_ss(s, _mm_movehl_ps(s, s)));              // (a0+a1)+(a2+a3)
        sk[k] = t * (1.0f / 32735.0f) * 1.0001f;
    }
}

void i16lut_multipliers_avx2(const float* sk, int chunks, float G, int M, uint8_t* mult, float* inv) {
    // The reference's operations lane by lane (i16lut_prepare): a double
    // division rounded up, converted with truncation (a NaN gives INT_MIN, as
    // the scalar conversion does), clamped to [1, 2^M], then 1 / (G·m) in float.
    const __m256d g = _mm256_set1_pd((double)G);
    const __m128 gf = _mm_set1_ps(G);
    const __m128i one = _mm_set1_epi32(1), top = _mm_set1_epi32(1 << M);
    for (int k = 0; k + 4 <= chunks; k += 4) {
        const __m256d d = _mm256_div_pd(_mm256_cvtps_pd(_mm_loadu_ps(sk + k)), g);
        __m128i m = _mm256_cvttpd_epi32(_mm256_round_pd(d, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC));
        m = _mm_min_epi32(_mm_max_epi32(m, one), top);
        _mm_storeu_ps(inv + k, _mm_div_ps(_mm_set1_ps(1.0f), _mm_mul_ps(gf, _mm_cvtepi32_ps(m))));
        _mm_storel_epi64((__m128i*)(mult + 2 * (size_t)k), _mm_packs_epi32(m, m));  // m <= 2^14: no saturation
    }
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
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12,
                                           14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int g = 0; g < groups; ++g) {
        const int16_t* v = q + 4 * g;
        __m256i t = _mm256_sign_epi16(_mm256_set1_epi16(v[0]), s0);
        t = _mm256_add_epi16(t, _mm256_sign_epi16(_mm256_set1_epi16(v[1]), s1));
        t = _mm256_add_epi16(t, _mm256_sign_epi16(_mm256_set1_epi16(v[2]), s2));
        t = _mm256_add_epi16(t, _mm256_sign_epi16(_mm256_set1_epi16(v[3]), s3));
        _mm256_storeu_si256((__m256i*)(words + 16 * (size_t)(g ^ 1)), t);   // the word table (AVX-512 kernel)
        t = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(t, split), 0xD8);  // lo 0-7, lo 8-15, hi 0-7, hi 8-15
        _mm256_storeu_si256((__m256i*)(tab + 32 * (size_t)g), t);
    }
}

namespace {
// The int16 sums of one chunk (pairs [p0, pe)) for the 32 rows of block `d`:
// a = rows 0-7 | 16-23, c = rows 8-15 | 24-31 (128-bit halves).
inline void chunk_sums(const uint8_t* d, const uint8_t* tab, int p0, int pe, __m256i& a, __m256i& c) {
    // Software prefetch this far ahead of the weight stream: from DRAM, 2 KB
    // ran 2 threads ~10 % faster than 512 B (hardware prefetch alone: ~5 % slower still).
    constexpr int kPrefetchBytes = 2048;
    const __m256i nib = _mm256_set1_epi8(0x0f);
    a = _mm256_setzero_si256();
    c = a;
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
}
}  // namespace

void bitgemv_i16lut_blocks_avx2(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y) {
    constexpr int kPairs = kI16ChunkCols / 8;
    const I16LutScratch L(m.cols);
    const int P = m.pairs;
    const uint8_t* tab = scratch + L.tables;
    const uint8_t* mult = scratch + L.mult;
    float G;
    std::memcpy(&G, scratch + L.g, 4);
    for (int b = b0; b < b1; ++b) {
        const uint8_t* d = m.bytes() + (size_t)b * P * 32;
        // int32 row totals Σ_k m_k·sum_k: A0 rows 0-3|16-19, A1 4-7|20-23, A2 8-11|24-27, A3 12-15|28-31.
        __m256i A0 = _mm256_setzero_si256(), A1 = A0, A2 = A0, A3 = A0;
        for (int k = 0; k < L.chunks; k += 2) {  // two chunks per VPMADDWD: (sum_k, sum_k+1)·(m_k, m_k+1)
            __m256i a0, c0, a1 = _mm256_setzero_si256(), c1 = a1;
            chunk_sums(d, tab, kPairs * k, std::min(P, kPairs * (k + 1)), a0, c0);
            if (k + 1 < L.chunks) chunk_sums(d, tab, kPairs * (k + 1), std::min(P, kPairs * (k + 2)), a1, c1);
            int32_t mm;
            std::memcpy(&mm, mult + 2 * (size_t)k, 4);  // m_k low, m_k+1 high (0 past the last chunk)
            const __m256i mk = _mm256_set1_epi32(mm);
            A0 = _mm256_add_epi32(A0, _mm256_madd_epi16(_mm256_unpacklo_epi16(a0, a1), mk));
            A1 = _mm256_add_epi32(A1, _mm256_madd_epi16(_mm256_unpackhi_epi16(a0, a1), mk));
            A2 = _mm256_add_epi32(A2, _mm256_madd_epi16(_mm256_unpacklo_epi16(c0, c1), mk));
            A3 = _mm256_add_epi32(A3, _mm256_madd_epi16(_mm256_unpackhi_epi16(c0, c1), mk));
        }
        const __m256 g = _mm256_set1_ps(G);
        alignas(32) float o[4][8];
        _mm256_store_ps(o[0], _mm256_mul_ps(_mm256_cvtepi32_ps(A0), g));
        _mm256_store_ps(o[1], _mm256_mul_ps(_mm256_cvtepi32_ps(A1), g));
        _mm256_store_ps(o[2], _mm256_mul_ps(_mm256_cvtepi32_ps(A2), g));
        _mm256_store_ps(o[3], _mm256_mul_ps(_mm256_cvtepi32_ps(A3), g));
        float out[32];
        for (int k = 0; k < 4; ++k) {
            std::memcpy(out + 4 * k, o[k], 16);
            std::memcpy(out + 16 + 4 * k, o[k] + 4, 16);
        }
        const int n = m.rows - 32 * b < 32 ? m.rows - 32 * b : 32;
        std::memcpy(y + 32 * b, out, sizeof(float) * n);
    }
}

}  // namespace bimamba::kernels
