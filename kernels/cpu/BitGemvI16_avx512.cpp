// AVX-512 (F+BW) kernel of the integer lookup-table ±1 GEMV (BitGemvI16.h).
//
// The weight layout and the chunk scales are those of the AVX2 kernel; the
// difference is the lookup. A block's 32 bytes of a group pair (byte r = row r:
// low nibble group 2p, high nibble group 2p+1) are widened to 32 words. The
// pair's two word tables lie next to each other in the scratch, group 2p+1's
// first (words 0-15), so one 64-byte load is the whole VPERMW table, and the
// indices cost one op each: VPERMW reads bits 0-4 of a word, so `w | 16` is
// the low nibble + 16 (bits 5-7 ignored) and `w >> 4` the high nibble (bit 4
// is 0). Per 256 weights: a widening load, an or and a shift, a table load,
// two VPERMW and two adds, about half the AVX2 kernel's uops (two PSHUFB per
// group plus unpacks to rebuild int16). Micro-benchmark on the Zen 4 VM, one
// core, weights in L2: 6448 x 1536 at 21.1 GB/s with the and/shift/or indices,
// 22.9 with these.
// Chunk sums are exact int16 (mod 2^16, and the true sums fit), combined two
// chunks per VPMADDWD with their multipliers into exact int32 totals, as in
// the AVX2 kernel: the result equals the reference bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/BitGemvI16.h"

namespace bimamba::kernels {

namespace {
// The int16 sums of one chunk (pairs [p0, pe)) of NB consecutive blocks, the
// first at `d`, one table load per pair for all of them; sums[j] word r = row r
// of block j.
template <int NB>
inline void chunk_sums(const uint8_t* d, size_t block_bytes, const int16_t* words, int p0, int pe, __m512i* sums) {
    constexpr int kPrefetchBytes = 2048;  // as the AVX2 kernel
    // Several blocks at once (wide tables): prefetch to L2, not L1, where the
    // 24 KB of tables would share 32 KB with 4 weight streams. Zen 4 VM, 48
    // out_proj of 780M from DRAM, 2 threads, 40 alternated reps: 0.88-0.90 of
    // the time with L1 prefetch.
    constexpr auto kHint = NB >= kI16WideBlocks ? _MM_HINT_T1 : _MM_HINT_T0;
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
            _mm_prefetch((const char*)dj + kPrefetchBytes, kHint);
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
template <int NB>
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
        chunk_sums<NB>(d, block_bytes, words, kPairs * k, std::min(P, kPairs * (k + 1)), s0);
        if (k + 1 < L.chunks)
            chunk_sums<NB>(d, block_bytes, words, kPairs * (k + 1), std::min(P, kPairs * (k + 2)), s1);
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
}  // namespace

void i16lut_word_tables_avx512(const int16_t* q, int pairs, int16_t* words) {
    // Pair p's 32 words in one register: words 0-15 group 2p+1 (q[8p+4..8p+7]),
    // words 16-31 group 2p (q[8p..8p+3]); entry i adds q_j, or subtracts it
    // where bit j of i is set. Per group, 16 int32 lanes (entry i in lane i)
    // of two VPMADDWD: the broadcast (q_0, q_1) times the signs (s_0, s_1) of
    // lane i, plus (q_2, q_3) times (s_2, s_3). The int32 sums are exact, and
    // their low words are the reference's int16 truncation (any q: a VPMOVDW
    // would also do, a saturating pack would not). 7 vector ops per pair,
    // against 15 for the four VPERMW and add/subtract/blend steps it replaces.
    alignas(64) int16_t s01[32], s23[32], low[32];
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 2; ++j) {
            s01[2 * i + j] = (int16_t)(((i >> j) & 1) ? -1 : 1);
            s23[2 * i + j] = (int16_t)(((i >> (j + 2)) & 1) ? -1 : 1);
        }
    for (int l = 0; l < 32; ++l)
        low[l] = (int16_t)(l < 16 ? 2 * l : 32 + 2 * (l - 16));  // the low words: A's, then B's
    const __m512i S01 = _mm512_load_si512((const void*)s01), S23 = _mm512_load_si512((const void*)s23);
    const __m512i lows = _mm512_load_si512((const void*)low);
    for (int p = 0; p < pairs; ++p) {
        int32_t d[4];  // (q_0, q_1) and (q_2, q_3) of group 2p, then of group 2p+1
        std::memcpy(d, q + 8 * (size_t)p, 16);
        const __m512i a = _mm512_add_epi32(_mm512_madd_epi16(_mm512_set1_epi32(d[2]), S01),
                                           _mm512_madd_epi16(_mm512_set1_epi32(d[3]), S23));  // group 2p+1
        const __m512i b = _mm512_add_epi32(_mm512_madd_epi16(_mm512_set1_epi32(d[0]), S01),
                                           _mm512_madd_epi16(_mm512_set1_epi32(d[1]), S23));  // group 2p
        _mm512_storeu_si512((void*)(words + 32 * (size_t)p), _mm512_permutex2var_epi16(a, lows, b));
    }
}

void bitgemv_i16lut_blocks_avx512(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y) {
    // Word tables of 24 KB and more (3072 columns: the out_proj of 780M and
    // up) no longer sit in L1 beside the weight stream, so 4 blocks share each
    // table load. Narrower tables stay in L1 and run one block at a time,
    // which measured faster there (780M in_proj: 2.59 vs 3.16 ms, 48 layers).
    int b = b0;
    if (m.cols >= kI16WideTableCols)
        for (; b + kI16WideBlocks <= b1; b += kI16WideBlocks) blocks<kI16WideBlocks>(m, scratch, b, y);
    for (; b < b1; ++b) blocks<1>(m, scratch, b, y);
}

}  // namespace bimamba::kernels
