#pragma once
// Int8 lookup-table ±1 GEMV ("i8lut"): an opt-in, LOSSIER sibling of the
// i16lut kernel (BitGemvI16.h) for CPUs where that one is bound by compute.
// The input (already α-scaled) is quantized to int8 per chunk of 32 columns;
// for each group of 4 columns the 16 sums ±q_a ±q_b ±q_c ±q_d form an int8
// table, and on AVX-512 VBMI + VNNI one VPERMB looks up 16 rows × 4 groups
// (64 lookups of 4 weights) in the tables of 4 groups at once, and one
// VPDPBUSD adds each row's 4 lookups times the chunk's multiplier into int32:
// 7 vector ops per 512 weights, against 14 in the i16lut AVX-512 kernel.
//
// Scales. Chunk k (columns 32k..32k+31, groups of 4 within it) needs
// s ≥ n_k = max_g (Σ_g |x|) / 125 (each group's sum as (|x0| + |x1|) + (|x2| + |x3|)), so that every group's Σ|q| ≤ 127
// after rounding and every table entry fits in int8. With S = max(max_k n_k, 2^-100) and G = S / 255, chunk k gets the
// integer multiplier m_k = clamp(ceil(n_k / G), 1, 255) and the scale s_k = G·m_k, q = clamp( round(x / s_k), ±127). A
// row's result is then an integer: y = G · Σ_k m_k · Σ_g T_g[index], summed exactly in int32 (|Σ| ≤ 259,080 per chunk;
// the matrix is limited to 2^18 columns), converted to float once and multiplied by G. The reference and the SIMD path
// compute exactly this, so they agree bit for bit.
//
// Error: about s_k/√12 per column, s_k ≈ (largest group's Σ|x| in the chunk) /
// 125: ~1 % of a product's RMS on Gaussian inputs (the i16lut kernel: 0.02 %),
// comparable with int8 activations quantized per token. Never chosen by
// "auto"; measure its perplexity on your model first (`bimamba eval
// --binary-kernel i16lut,i8lut`).
//
// Layout: blocks of 16 rows; block b, chunk k is 64 bytes at offset
// 64·(b·chunks + k); byte 4r+j holds row 16b+r: low nibble = group j of the
// chunk, high nibble = group 4+j; nibble bit i = sign bit (1 = −1) of column
// 32k+4g+i. Padding rows/columns are 0 (padding columns read x = 0).
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/CpuContext.h"
#include "kernels/cpu/RepackedBits.h"

namespace bimamba::kernels {

constexpr int kI8ChunkCols = 32;
constexpr int kI8BlockRows = 16;
constexpr int kI8MaxCols = 1 << 18;  // keeps the int32 row sums exact
constexpr int kI8WideCols = 3072;    // from here on the SIMD kernel runs kI8WideBlocks per table load
constexpr int kI8WideBlocks = 4;     // blocks per table load there

struct I8LutMatrix : RepackedBits {
    int rows = 0, cols = 0, blocks = 0, chunks = 0;
    bool neg(int r, int c) const {
        const int b = r / kI8BlockRows, k = c / kI8ChunkCols, g = (c % kI8ChunkCols) / 4;
        const uint8_t byte = bytes()[((size_t)b * chunks + k) * 64 + 4 * (r % kI8BlockRows) + g % 4];
        return ((g < 4 ? byte : byte >> 4) >> (c % 4)) & 1;
    }
};

// From the row-major packing of Gemv.h. Throws past kI8MaxCols columns.
I8LutMatrix repack_i8lut(const uint8_t* signs, int rows, int cols);

// The prepared input inside `scratch` (i8lut_scratch_bytes(cols) bytes, no
// alignment needed): the tables (int8, 128 bytes per chunk: group g's 16
// entries at 16g, entry i = Σ_j ±q_j with bit j of i set = −), the chunk
// multipliers m_k (uint8, one per chunk), G (float), then the quantized
// input q (int8, 32 per chunk, zero padded).
struct I8LutScratch {
    size_t tables = 0, mult = 0, g = 0, q = 0, bytes = 0;
    int chunks = 0;
    explicit I8LutScratch(int cols);
};
size_t i8lut_scratch_bytes(int cols);
// True where the SIMD kernel runs: an AVX-512 context on a CPU with VBMI and VNNI.
bool i8lut_simd(const CpuContext& cx);
// Quantizes x (cols floats) and writes the tables, the multipliers and G: the
// same bytes on every ISA. Returns G.
float i8lut_prepare(const CpuContext& cx, const float* x, int cols, uint8_t* scratch);
// G = S / 255, or NaN where an input was NaN (`nan`): a NaN then reaches every
// output row, as in a float product, rather than vanishing in the scales.
inline float i8lut_unit(float S, bool nan) {
    return nan ? __builtin_nanf("") : S / 255.0f;
}
// m_k = clamp(ceil(n_k / G), 1, 255), written so that a NaN ratio gives 1
// (a float-to-int conversion of NaN is undefined).
inline int i8lut_multiplier(float need, float G) {
    const float r = need / G;
    return r >= 1.0f ? (r < 255.0f ? (int)__builtin_ceilf(r) : 255) : 1;
}
// The multipliers (at `mult`) and q (32 per chunk) of x, the reference's
// bits, on AVX2; returns G.
float i8lut_quantize_avx2(const float* x, int cols, uint8_t* mult, int8_t* q);
// The tables of `groups` groups from their quantized inputs q (4 per group).
void i8lut_tables_ref(const int8_t* q, int groups, int8_t* tables);
void i8lut_tables_avx512(const int8_t* q, int groups, int8_t* tables);  // VBMI; groups a multiple of 4
// Reference: per row, y = (float)(Σ_k m_k · Σ_g T_g[index]) · G, from prepared scratch.
void bitgemv_i8lut_blocks_ref(const I8LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y);
void bitgemv_i8lut_blocks_avx512(const I8LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y);
// Dispatching, multi-threaded: the caller prepares the input once, then the
// pool's threads run blocks of 16 rows. Every path gives the reference's
// result bit for bit.
void bitgemv_i8lut(const CpuContext& cx, const I8LutMatrix& m, const float* x, float* y, uint8_t* scratch);
// T inputs x_j = x + j·xstride: bitgemv_i8lut per token (scratch: one area).
void bitgemm_i8lut(const CpuContext& cx, const I8LutMatrix& m, const float* x, size_t xstride, int T, float* y,
                   size_t ystride, uint8_t* scratch);

}  // namespace bimamba::kernels
