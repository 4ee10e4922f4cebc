// AVX-512 VBMI + VNNI kernel of the int8 lookup-table ±1 GEMV (BitGemvI8.h).
//
// Per chunk and block (16 rows × 32 columns, 64 weight bytes): the low nibbles
// with the byte's position j in its row (j << 4) index the 64-byte table of
// groups 0-3 (VPERMB reads bits 0-5), the high nibbles the table of groups
// 4-7; each VPDPBUSD multiplies the 4 lookups of a row by the chunk's
// multiplier (the unsigned operand) and adds them to the row's int32 total.
// Per 512 weights: a load, three index ops, two VPERMB, two VPDPBUSD. The
// tables of a chunk load once for kI8WideBlocks blocks. Integer sums: the result
// equals the reference bit for bit.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/BitGemvI8.h"

namespace bimamba::kernels {

namespace {

template <int NB>
inline void blocks(const I8LutMatrix& m, const uint8_t* scratch, int b, float* y) {
    const I8LutScratch L(m.cols);
    const int8_t* tables = reinterpret_cast<const int8_t*>(scratch + L.tables);
    const uint8_t* mult = scratch + L.mult;
    float G;
    std::memcpy(&G, scratch + L.g, 4);
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const __m512i position = _mm512_set1_epi32(0x30201000);  // byte j of a row: j << 4
    const size_t block_bytes = (size_t)m.chunks * 64;
    const uint8_t* d = m.bytes() + (size_t)b * block_bytes;
    __m512i acc[NB];
    for (int j = 0; j < NB; ++j) acc[j] = _mm512_setzero_si512();
    for (int k = 0; k < m.chunks; ++k) {
        const __m512i t_lo = _mm512_loadu_si512(tables + 128 * k);
        const __m512i t_hi = _mm512_loadu_si512(tables + 128 * k + 64);
        const __m512i mk = _mm512_set1_epi8((char)mult[k]);
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j) {
            const uint8_t* dj = d + j * block_bytes + 64 * (size_t)k;
            // Several streams: prefetch to L2, leaving L1 to the tables (as the i16lut wide kernel).
            _mm_prefetch((const char*)dj + 2048, NB > 1 ? _MM_HINT_T1 : _MM_HINT_T0);
            const __m512i w = _mm512_loadu_si512(dj);
            const __m512i lo = _mm512_ternarylogic_epi32(w, low4, position, 0xEA);  // (w & 0x0F) | position
            const __m512i hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(w, 4), low4, position, 0xEA);
            acc[j] = _mm512_dpbusd_epi32(acc[j], mk, _mm512_permutexvar_epi8(lo, t_lo));
            acc[j] = _mm512_dpbusd_epi32(acc[j], mk, _mm512_permutexvar_epi8(hi, t_hi));
        }
    }
    const __m512 g = _mm512_set1_ps(G);
    for (int j = 0; j < NB; ++j) {
        const int r0 = kI8BlockRows * (b + j);
        const int n = m.rows - r0 < kI8BlockRows ? m.rows - r0 : kI8BlockRows;
        alignas(64) float out[kI8BlockRows];
        _mm512_store_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(acc[j]), g));
        std::memcpy(y + r0, out, sizeof(float) * n);
    }
}
}  // namespace

void i8lut_tables_avx512(const int8_t* q, int groups, int8_t* tables) {
    // Entry 16g+i of 4 groups = Σ_j ±q[4g+j]: q[4g+j] spread over its group's
    // 16 entries (VPERMB), negated where bit j of i is set.
    static const __mmask64 kNeg[4] = {0xAAAAAAAAAAAAAAAAull, 0xCCCCCCCCCCCCCCCCull, 0xF0F0F0F0F0F0F0F0ull,
                                      0xFF00FF00FF00FF00ull};
    alignas(64) static const struct Spread {
        int8_t idx[4][64];
        Spread() {
            for (int j = 0; j < 4; ++j)
                for (int e = 0; e < 64; ++e) idx[j][e] = (int8_t)(4 * (e / 16) + j);
        }
    } spread;
    const __m512i zero = _mm512_setzero_si512();
    for (int g = 0; g < groups; g += 4) {
        const __m512i qv = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i*)(q + 4 * g)));
        __m512i t = zero;
        for (int j = 0; j < 4; ++j) {
            const __m512i v = _mm512_permutexvar_epi8(_mm512_load_si512(spread.idx[j]), qv);
            t = _mm512_add_epi8(t, _mm512_mask_sub_epi8(v, kNeg[j], zero, v));
        }
        _mm512_storeu_si512(tables + 16 * g, t);
    }
}

void bitgemv_i8lut_blocks_avx512(const I8LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y) {
    // Several blocks per table load from 3072 columns on (the 780M out_proj,
    // Zen 4 VM, one thread, weights in L2: 14.9 against 21.0 µs with one
    // block; even from DRAM); narrower, one block at a time (780M in_proj from
    // DRAM, 2 threads: 0.89 and 0.95 of i16lut's time so, 1.29 and 1.12 with 4).
    int b = b0;
    if (m.cols >= kI8WideCols)
        for (; b + kI8WideBlocks <= b1; b += kI8WideBlocks) blocks<kI8WideBlocks>(m, scratch, b, y);
    for (; b < b1; ++b) blocks<1>(m, scratch, b, y);
}

}  // namespace bimamba::kernels
