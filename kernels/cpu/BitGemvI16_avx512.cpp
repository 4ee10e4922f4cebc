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
// Integer sums are exact (mod 2^16, and the true sums fit), and each chunk is
// converted and FMA-accumulated in the reference's order: the result equals
// the reference bit for bit.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/BitGemvI16.h"

namespace bimamba::kernels {

void bitgemv_i16lut_blocks_avx512(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y) {
    constexpr int kPairs = kI16ChunkCols / 8;
    constexpr int kPrefetchBytes = 2048;  // as the AVX2 kernel
    const int P = m.pairs;
    const float* scales = reinterpret_cast<const float*>(scratch + (size_t)P * 16 + (size_t)P * 64);
    const int16_t* words = i16lut_word_tables(scratch, m.cols);
    const __m512i nib = _mm512_set1_epi16(0x000f), second = _mm512_set1_epi16(0x0010);
    for (int b = b0; b < b1; ++b) {
        const uint8_t* d = m.data.data() + (size_t)b * P * 32;
        __m512 r0 = _mm512_setzero_ps(), r1 = r0;  // rows 0-15, 16-31
        for (int p0 = 0; p0 < P; p0 += kPairs) {
            __m512i acc = _mm512_setzero_si512();  // int16, word r = row r
            const int pe = p0 + kPairs < P ? p0 + kPairs : P;
            for (int p = p0; p < pe; ++p) {
                _mm_prefetch((const char*)(d + (size_t)p * 32) + kPrefetchBytes, _MM_HINT_T0);
                const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)(d + (size_t)p * 32)));
                const __m512i t = _mm512_loadu_si512((const void*)(words + (size_t)p * 32));
                const __m512i lo = _mm512_and_si512(w, nib);
                const __m512i hi = _mm512_or_si512(_mm512_srli_epi16(w, 4), second);  // w <= 255: no bits from the high byte
                acc = _mm512_add_epi16(acc, _mm512_add_epi16(_mm512_permutexvar_epi16(lo, t), _mm512_permutexvar_epi16(hi, t)));
            }
            float sk;
            std::memcpy(&sk, scales + p0 / kPairs, 4);
            const __m512 vs = _mm512_set1_ps(sk);
            r0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(acc))), vs, r0);
            r1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(acc, 1))), vs, r1);
        }
        const int n = m.rows - 32 * b < 32 ? m.rows - 32 * b : 32;
        if (n == 32) {
            _mm512_storeu_ps(y + 32 * b, r0);
            _mm512_storeu_ps(y + 32 * b + 16, r1);
        } else {
            alignas(64) float out[32];
            _mm512_store_ps(out, r0);
            _mm512_store_ps(out + 16, r1);
            for (int i = 0; i < n; ++i) y[32 * b + i] = out[i];
        }
    }
}

}  // namespace bimamba::kernels
