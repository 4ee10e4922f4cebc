#include <immintrin.h>
#include <algorithm>
#include <cstring>
#include "kernels/cpu/BitGemvI16.h"
using namespace bimamba::kernels;
namespace var {
// The int16 sums of one chunk (pairs [p0, pe)) of NB consecutive blocks, the
// first at `d`, one table load per pair for all of them; sums[j] word r = row r
// of block j.
template <int NB, int PF, int HINT>
inline void chunk_sums(const uint8_t* d, size_t block_bytes, const int16_t* words, int p0, int pe, __m512i* sums) {
    constexpr int kPrefetchBytes = PF;
    const __m512i second = _mm512_set1_epi16(0x0010);
    for (int j = 0; j < NB; ++j) sums[j] = _mm512_setzero_si512();
    for (int p = p0; p < pe; ++p) {
        __m512i t = _mm512_loadu_si512((const void*)(words + (size_t)p * 32));
        // One load of the table into a register: GCC would otherwise fold it into
        // both VPERMWs as a memory operand, two 64-byte loads per pair.
#if defined(__AVX512F__)  // not in the tests' SIMDe build, where __m512i is a struct
        asm("" : "+v"(t));
#endif
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j) {
            const uint8_t* dj = d + j * block_bytes + (size_t)p * 32;
            if (PF) _mm_prefetch((const char*)dj + kPrefetchBytes, (_mm_hint)HINT);
            const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)dj));
            const __m512i lo = _mm512_or_si512(w, second);  // bits 5-7 are ignored by VPERMW
            const __m512i hi = _mm512_srli_epi16(w, 4);     // w <= 255: bit 4 is 0
            sums[j] = _mm512_add_epi16(
                sums[j], _mm512_add_epi16(_mm512_permutexvar_epi16(lo, t), _mm512_permutexvar_epi16(hi, t)));
        }
    }
}

// Blocks b .. b+NB-1. Each block's operations are those of NB = 1 in the same
// order, so the grouping changes no bit.
template <int NB, int PF, int HINT>
inline void blocks(const I16LutMatrix& m, const uint8_t* scratch, int b, float* y) {
    constexpr int kPairs = kI16ChunkCols / 8;
    const I16LutScratch L(m.cols);
    const int P = m.pairs;
    const int16_t* words = i16lut_word_tables(scratch, m.cols);
    const uint8_t* mult = scratch + L.mult;
    float G;
    std::memcpy(&G, scratch + L.g, 4);
    const size_t block_bytes = (size_t)P * 32;
    const uint8_t* d = m.bytes() + (size_t)b * block_bytes;
    // int32 totals: per 128-bit lane L (rows 8L..8L+7), A0 holds rows 8L..8L+3, A1 rows 8L+4..8L+7.
    __m512i A0[NB], A1[NB];
    for (int j = 0; j < NB; ++j) A0[j] = A1[j] = _mm512_setzero_si512();
    for (int k = 0; k < L.chunks; k += 2) {
        __m512i s0[NB], s1[NB];
        chunk_sums<NB, PF, HINT>(d, block_bytes, words, kPairs * k, std::min(P, kPairs * (k + 1)), s0);
        if (k + 1 < L.chunks)
            chunk_sums<NB, PF, HINT>(d, block_bytes, words, kPairs * (k + 1), std::min(P, kPairs * (k + 2)), s1);
        else
            for (int j = 0; j < NB; ++j) s1[j] = _mm512_setzero_si512();
        int32_t mm;
        std::memcpy(&mm, mult + 2 * (size_t)k, 4);
        const __m512i mk = _mm512_set1_epi32(mm);
        for (int j = 0; j < NB; ++j) {
            A0[j] = _mm512_add_epi32(A0[j], _mm512_madd_epi16(_mm512_unpacklo_epi16(s0[j], s1[j]), mk));
            A1[j] = _mm512_add_epi32(A1[j], _mm512_madd_epi16(_mm512_unpackhi_epi16(s0[j], s1[j]), mk));
        }
    }
    const __m512 g = _mm512_set1_ps(G);
    for (int j = 0; j < NB; ++j) {
        alignas(64) float o[2][16];
        _mm512_store_ps(o[0], _mm512_mul_ps(_mm512_cvtepi32_ps(A0[j]), g));
        _mm512_store_ps(o[1], _mm512_mul_ps(_mm512_cvtepi32_ps(A1[j]), g));
        float out[32];
        for (int l = 0; l < 4; ++l) {
            std::memcpy(out + 8 * l, o[0] + 4 * l, 16);
            std::memcpy(out + 8 * l + 4, o[1] + 4 * l, 16);
        }
        const int bj = b + j;
        const int n = m.rows - 32 * bj < 32 ? m.rows - 32 * bj : 32;
        std::memcpy(y + 32 * bj, out, sizeof(float) * n);
    }
}
}  // namespace var

template <int NB, int PF, int HINT>
void kern(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y) {
    int b = b0;
    for (; b + NB <= b1; b += NB) var::blocks<NB, PF, HINT>(m, scratch, b, y);
    for (; b < b1; ++b) var::blocks<1, PF, HINT>(m, scratch, b, y);
}
