#pragma once
// Integer lookup-table ±1 GEMV (T-MAC style, PSHUFB): an optional, NOT exact
// kernel. The input (already α-scaled) is quantized per call to int16 with one
// scale s; for each group of 4 columns the 16 sums ±q_a ±q_b ±q_c ±q_d form an
// int16 table held as two 16-byte planes (low and high bytes), and one PSHUFB
// pair looks up 32 rows × 4 columns at once (128 weights, against 24 per
// VPERMPS in the float kernel, BitGemvLut.h). Every chunk of 8 groups (32
// columns, kI16ChunkCols) has its own scale s_k = Σ_chunk |x| / 32735 (so its
// int16 sums cannot overflow, and an outlier column only coarsens its own
// chunk); the chunk's int16 sum is converted to float and accumulated as
// y = fma(sum_k, s_k, y), chunk by chunk, in the reference and the SIMD paths
// alike (they agree bit for bit). The error against the float product is the
// quantization of x: about s_k/√12 per column. (Chunks of 64 columns spend
// fewer uops converting sums to float, 24 % faster from cache but only ~3 %
// from DRAM, and double the error: 8.5e-4 instead of ~5e-4 against LibTorch on
// the tests' tiny models, too close to the 1e-3 bound.)
//
// AVX-512 (BW) replaces the two byte-plane PSHUFBs and their unpacks with one
// VPERMW per group on a 16-entry int16 table ("word tables", also in the
// scratch): 32 rows of one group per instruction, sums already int16.
//
// Layout: blocks of 32 rows; block b, group pair p (groups 2p, 2p+1 = columns
// 8p..8p+7) is 32 bytes at offset 32·(b·P + p), P = ceil(groups/2); byte r
// holds row 32b+r: low nibble = group 2p, high nibble = group 2p+1; nibble bit
// j = sign bit (1 = −1) of column 4g+j. Padding rows/columns are 0 (and padding
// columns read x = 0).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace bimamba::kernels {

constexpr int kI16ChunkCols = 32;  // columns per int16 chunk (one scale each)

struct I16LutMatrix {
    int rows = 0, cols = 0, blocks = 0, groups = 0, pairs = 0;
    std::vector<uint8_t> data;
    bool neg(int r, int c) const {
        const int b = r / 32, g = c / 4, p = g / 2;
        const uint8_t byte = data[((size_t)b * pairs + p) * 32 + r % 32];
        return ((g % 2 ? byte >> 4 : byte) >> (c % 4)) & 1;
    }
};

// From the row-major packing of Gemv.h.
I16LutMatrix repack_i16lut(const uint8_t* signs, int rows, int cols);

// Quantized input inside `scratch` (i16lut_scratch_bytes(cols) bytes, no
// alignment needed): q (int16, 8·pairs entries, zero padded), the tables (32
// bytes per group: 16 low bytes, 16 high bytes), the chunk scales (float,
// ceil(cols/32)), the word tables (16 int16 per group, entry i = Σ_j ±q_j with
// bit j of i set = −). Every ISA writes the same bytes. Returns the largest
// chunk scale.
size_t i16lut_scratch_bytes(int cols);
float i16lut_prepare(const float* x, int cols, uint8_t* scratch);
const int16_t* i16lut_word_tables(const uint8_t* scratch, int cols);
// Reference: per row, y = fma((float)Σ_chunk ±q, s_k, y) over the chunks in order.
void bitgemv_i16lut_ref(const I16LutMatrix& m, const float* x, float* y);
// q[c] = round-to-nearest-even(x[c]·inv[c/32]) for c < cols, 0 up to n (as std::lrint in the default mode).
void i16lut_quantize_avx2(const float* x, int cols, const float* inv, int16_t* q, int n);
// Byte-plane tables and word tables, the same bytes as the scalar build.
void i16lut_tables_avx2(const int16_t* q, int groups, uint8_t* tables, int16_t* words);
void bitgemv_i16lut_blocks_avx2(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y);
void bitgemv_i16lut_blocks_avx512(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y);
// Dispatching (AVX-512, AVX2 or the reference: Gemv.h active_isa()),
// multi-threaded. Every path gives the reference's result bit for bit.
void bitgemv_i16lut(const I16LutMatrix& m, const float* x, float* y, uint8_t* scratch);

}  // namespace bimamba::kernels
