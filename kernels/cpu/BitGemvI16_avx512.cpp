// AVX-512 (F+BW) kernel of the integer lookup-table ±1 GEMV (BitGemvI16.h).
//
// The weight layout and the chunk scales are those of the AVX2 kernel; the
// difference is the lookup. A block's 32 bytes of a group pair (byte r = row r:
// low nibble group 2p, high nibble group 2p+1) are widened to 32 words; the
// low nibble indexes words 0-15 and the high nibble (+16) words 16-31 of the
// pair's two word tables, which lie next to each other in the scratch, so one
// 64-byte load is the whole VPERMW table. Per 256 weights: a widening load,
// and/shift/or, a table load, two VPERMW and two adds, about half the AVX2
// kernel's uops (two PSHUFB per group plus unpacks to rebuild int16).
// Chunk sums are exact int16 (mod 2^16, and the true sums fit), combined two
// chunks per VPMADDWD with their multipliers into exact int32 totals, as in
// the AVX2 kernel: the result equals the reference bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/BitGemvI16.h"

namespace bimamba::kernels {

namespace {
// The int16 sums of one chunk (pairs [p0, pe)) of block `d`, word r = row r.
inline __m512i chunk_sums(const uint8_t* d, const int16_t* words, int p0, int pe) {
    constexpr int kPrefetchBytes = 2048;  // as the AVX2 kernel
    const __m512i nib = _mm512_set1_epi16(0x000f), second = _mm512_set1_epi16(0x0010);
    __m512i acc = _mm512_setzero_si512();
    for (int p = p0; p < pe; ++p) {
        _mm_prefetch((const char*)(d + (size_t)p * 32) + kPrefetchBytes, _MM_HINT_T0);
        const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)(d + (size_t)p * 32)));
        const __m512i t = _mm512_loadu_si512((const void*)(words + (size_t)p * 32));
        const __m512i lo = _mm512_and_si512(w, nib);
        const __m512i hi = _mm512_or_si512(_mm512_srli_epi16(w, 4), second);  // w <= 255: no bits from the high byte
        acc = _mm512_add_epi16(acc, _mm512_add_epi16(_mm512_permutexvar_epi16(lo, t), _mm512_permutexvar_epi16(hi, t)));
    }
    return acc;
}
}  // namespace

void bitgemv_i16lut_blocks_avx512(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y) {
    constexpr int kPairs = kI16ChunkCols / 8;
    const I16LutScratch L(m.cols);
    const int P = m.pairs;
    const int16_t* words = i16lut_word_tables(scratch, m.cols);
    const uint8_t* mult = scratch + L.mult;
    float G;
    std::memcpy(&G, scratch + L.g, 4);
    for (int b = b0; b < b1; ++b) {
        const uint8_t* d = m.bytes() + (size_t)b * P * 32;
        // int32 totals: per 128-bit lane L (rows 8L..8L+7), A0 holds rows 8L..8L+3, A1 rows 8L+4..8L+7.
        __m512i A0 = _mm512_setzero_si512(), A1 = A0;
        for (int k = 0; k < L.chunks; k += 2) {
            const __m512i s0 = chunk_sums(d, words, kPairs * k, std::min(P, kPairs * (k + 1)));
            const __m512i s1 = k + 1 < L.chunks ? chunk_sums(d, words, kPairs * (k + 1), std::min(P, kPairs * (k + 2)))
                                                : _mm512_setzero_si512();
            int32_t mm;
            std::memcpy(&mm, mult + 2 * (size_t)k, 4);
            const __m512i mk = _mm512_set1_epi32(mm);
            A0 = _mm512_add_epi32(A0, _mm512_madd_epi16(_mm512_unpacklo_epi16(s0, s1), mk));
            A1 = _mm512_add_epi32(A1, _mm512_madd_epi16(_mm512_unpackhi_epi16(s0, s1), mk));
        }
        const __m512 g = _mm512_set1_ps(G);
        alignas(64) float o[2][16];
        _mm512_store_ps(o[0], _mm512_mul_ps(_mm512_cvtepi32_ps(A0), g));
        _mm512_store_ps(o[1], _mm512_mul_ps(_mm512_cvtepi32_ps(A1), g));
        float out[32];
        for (int l = 0; l < 4; ++l) {
            std::memcpy(out + 8 * l, o[0] + 4 * l, 16);
            std::memcpy(out + 8 * l + 4, o[1] + 4 * l, 16);
        }
        const int n = m.rows - 32 * b < 32 ? m.rows - 32 * b : 32;
        std::memcpy(y + 32 * b, out, sizeof(float) * n);
    }
}

}  // namespace bimamba::kernels
