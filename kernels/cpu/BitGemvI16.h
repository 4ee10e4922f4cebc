#pragma once
// Integer lookup-table ±1 GEMV (T-MAC style, PSHUFB): the engine's default
// ±1 kernel, NOT exact (it quantizes the input). The input (already α-scaled)
// is quantized per call to int16; for each group of 4 columns the 16 sums
// ±q_a ±q_b ±q_c ±q_d form an int16 table held as two 16-byte planes (low and
// high bytes), and one PSHUFB pair looks up 32 rows × 4 columns at once (128
// weights, against 24 per VPERMPS in the float kernel, BitGemvLut.h).
//
// Scales. Every chunk of 8 groups (32 columns, kI16ChunkCols) has its own
// scale, so an outlier column only coarsens its own chunk, and no chunk's
// int16 sum can overflow: with S = max_k Σ_chunk k |x| / 32735 (at least
// 2^-100, so G below stays a normal float) and 2^M the
// multiplier range (i16lut_multiplier_bits), chunk k gets the integer
// multiplier m_k = ceil(2^M · (Σ_k |x| / 32735) / S) in [1, 2^M] and the scale
// s_k = G·m_k, G = S / 2^M, so q = round(x / s_k) keeps Σ_k |q| <= 32767.
// A row's result is then an integer: y = G · Σ_k m_k · (Σ_chunk k ±q), summed
// exactly in int32 (M is chosen so it cannot overflow), converted to float
// once and multiplied by G. The reference and the SIMD paths compute exactly
// this, so they agree bit for bit. (Converting every chunk's int16 sum to
// float instead cost a third of the AVX2 kernel's time; the integer
// multipliers pair two chunks per VPMADDWD.) The error against the float
// product is the quantization of x: about s_k/√12 per column, s_k at most
// G above the chunk's own Σ|x|/32735.
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
#include <functional>
#include <vector>

#include "kernels/cpu/CpuContext.h"
#include "kernels/cpu/RepackedBits.h"

namespace bimamba::kernels {

constexpr int kI16ChunkCols = 32;  // columns per int16 chunk (one scale each)
// From this width on (word tables of 24 KB: the 780M out_proj and up) the
// AVX-512 kernel runs kI16WideBlocks blocks per table load, and the
// dispatcher hands out blocks in multiples of it.
constexpr int kI16WideTableCols = 3072;
constexpr int kI16WideBlocks = 4;

struct I16LutMatrix : RepackedBits {
    int rows = 0, cols = 0, blocks = 0, groups = 0, pairs = 0;
    bool neg(int r, int c) const {
        const int b = r / 32, g = c / 4, p = g / 2;
        const uint8_t byte = bytes()[((size_t)b * pairs + p) * 32 + r % 32];
        return ((g % 2 ? byte >> 4 : byte) >> (c % 4)) & 1;
    }
};

// From the row-major packing of Gemv.h.
I16LutMatrix repack_i16lut(const uint8_t* signs, int rows, int cols);

// Quantized input inside `scratch` (i16lut_scratch_bytes(cols) bytes, no
// alignment needed), at the offsets of I16LutScratch: q (int16, 8·pairs
// entries, zero padded), the byte-plane tables (32 bytes per group: 16 low
// bytes, 16 high bytes), the chunk multipliers m_k (int16, an even count: a
// padding chunk has m = 0), G (float), the word tables (16 int16 per group,
// entry i = Σ_j ±q_j with bit j of i set = −; the two groups of a pair in
// swapped order, group 2p+1 at words 32p, group 2p at 32p + 16). Every ISA
// writes the same bytes, except that on AVX-512 (cx.avx512()) the byte-plane
// tables, which its kernel does not read, are not written. Returns G.
struct I16LutScratch {
    size_t q = 0, tables = 0, mult = 0, g = 0, words = 0, bytes = 0;
    int pairs = 0, chunks = 0, chunks_even = 0;
    explicit I16LutScratch(int cols);
};
size_t i16lut_scratch_bytes(int cols);
// log2 of the largest chunk multiplier for `chunks` chunks: 2^M · 32767 · chunks < 2^31, at most 14.
int i16lut_multiplier_bits(int chunks);
float i16lut_prepare(const CpuContext& cx, const float* x, int cols, uint8_t* scratch);
const int16_t* i16lut_word_tables(const uint8_t* scratch, int cols);
// Reference: per row, y = (float)(Σ_k m_k · Σ_chunk k ±q) · G.
void bitgemv_i16lut_ref(const I16LutMatrix& m, const float* x, float* y);
// q[c] = round-to-nearest-even(x[c]·inv[c/32]) for c < cols, 0 up to n (as std::lrint in the default mode).
void i16lut_quantize_avx2(const float* x, int cols, const float* inv, int16_t* q, int n);
// Byte-plane tables and word tables, the same bytes as the scalar build.
void i16lut_tables_avx2(const int16_t* q, int groups, uint8_t* tables, int16_t* words);
// The word tables alone (all the AVX-512 kernel reads), the same bytes.
void i16lut_word_tables_avx512(const int16_t* q, int pairs, int16_t* words);
// The chunk multipliers m_k (int16 at `mult`, unaligned) and 1/(G·m_k) of
// chunks [0, chunks & ~3) from their scales sk, the reference's bits.
void i16lut_multipliers_avx2(const float* sk, int chunks, float G, int M, uint8_t* mult, float* inv);
// sk[k] = chunk k's Σ|x| / 32735 (with the margin), the reference's bits, for `chunks` full chunks of 32 columns.
void i16lut_chunk_scales_avx2(const float* x, int chunks, float* sk);
void bitgemv_i16lut_blocks_avx2(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y);
void bitgemv_i16lut_blocks_avx512(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y);
// Dispatching (AVX-512, AVX2 or the reference: the CpuContext),
// multi-threaded. Every path gives the reference's result bit for bit.
void bitgemv_i16lut(const CpuContext& cx, const I16LutMatrix& m, const float* x, float* y, uint8_t* scratch);
// T inputs x_j = x + j·xstride (batched prefill): each input is prepared as
// bitgemv_i16lut prepares it (in parallel over the tokens), then one hand-off
// to the pool, each thread running its blocks of 32 rows for every token in
// turn, so a block's weights come from memory once for the T tokens (then from
// L1) and the pool is woken twice per call, not T times. Each y_j is
// bitgemv_i16lut's for x_j, bit for bit. `scratch` holds T areas of
// i16lut_scratch_bytes(cols), token j's at j·sstride bytes.
void bitgemm_i16lut(const CpuContext& cx, const I16LutMatrix& m, const float* x, size_t xstride, int T, float* y,
                    size_t ystride, uint8_t* scratch, size_t sstride);

// A decode projection in one hand-off, with the work around the GEMV inside
// it: each thread, before its first chunk of blocks, writes the input itself,
// input(w, x) writing the cols floats of x (w: cols floats of working space)
// and returning a value added to every output row, then prepares its own
// tables from it (PerThreadInput.h); after each chunk it adds that value to
// the chunk's rows of y and calls rows_done(y, r0, r1) (if set) on them. So
// what would run on one thread before the call (the input's RMSNorm, α⊙x and
// the β·x term, the tables) and after it (the β term, a residual add) runs on
// all of them at once; the input is computed once per thread, so input()
// must give the same bits on every thread, and neither callback may hand
// work to the pool (it is running this call). y is bit for bit that of
// input() on one thread, bitgemv_i16lut, the value added to every row, and
// rows_done(y, 0, rows). Small matrices and one thread run just so. `scratch`
// holds i16lut_in_pool_scratch_bytes(cols): w, x (at 4·cols bytes), then the
// prepared input (at 8·cols bytes).
using I16LutInput = std::function<float(float* w, float* x)>;
using I16LutRowsDone = std::function<void(float* y, int r0, int r1)>;
size_t i16lut_in_pool_scratch_bytes(int cols);
void bitgemv_i16lut_in_pool(const CpuContext& cx, const I16LutMatrix& m, const I16LutInput& input,
                            const I16LutRowsDone& rows_done, float* y, uint8_t* scratch);

}  // namespace bimamba::kernels
