#pragma once
// Lookup-table ±1 GEMV (T-MAC-style, float tables): the engine repacks the
// row-major sign matrix of the file into tiles of 8 rows × groups of 3
// columns. For each group the 8 possible sums ±x_a ±x_b ±x_c form a table of
// one AVX2 register; one VPERMPS then looks up 8 rows × 3 columns at once, so
// 24 weights cost a broadcast, a shift, a permute and an add instead of three
// XOR/add pairs.
//
// Tiled layout: tiles are taken four at a time ("quads", 32 rows); quad q,
// group g (columns 3g..3g+2) is 12 bytes at offset 12·(q·G + g), G =
// ceil(cols/3), tile 4q+k's 3 bytes at +3k; bit 3r+j of those 3 bytes is the
// sign bit (1 = −1) of row 8(4q+k)+r, column 3g+j. Padding rows/columns/tiles
// are 0 and padding columns read x = 0. The kernel therefore reads one
// sequential stream per thread (four interleaved per-tile streams were
// 1.45× slower from DRAM). Four spare bytes at the end let it load 4 bytes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cpu/CpuContext.h"
#include "kernels/cpu/RepackedBits.h"

namespace bimamba::kernels {

struct Lut3Matrix : RepackedBits {
    int rows = 0, cols = 0, tiles = 0, quads = 0, groups = 0;
    // Sign bit of (r, c) in the tiled layout (the definition; used by the reference).
    bool neg(int r, int c) const {
        const int t = r / 8, g = c / 3, bit = 3 * (r % 8) + c % 3;
        return (bytes()[((size_t)(t / 4) * groups + g) * 12 + 3 * (t % 4) + bit / 8] >> (bit % 8)) & 1;
    }
};

// From the row-major packing of Gemv.h.
Lut3Matrix repack_lut3(const uint8_t* signs, int rows, int cols);
// Scalar reference on the tiled layout (the definition).
void bitgemv_lut3_ref(const Lut3Matrix& m, const float* x, float* y);
// AVX2, quads [q0, q1); `tables` = 8·groups floats from build_lut3_tables.
void build_lut3_tables(const float* x, int cols, float* tables);
void bitgemv_lut3_quads_avx2(const Lut3Matrix& m, const float* tables, int q0, int q1, float* y);
// Dispatching, multi-threaded; scalar fallback without AVX2. `tables` scratch: 8·groups floats.
void bitgemv_lut3(const CpuContext& cx, const Lut3Matrix& m, const float* x, float* y, float* tables);

// The same product for T input vectors at once (prompt prefill): token j reads
// x + j·xstride and writes y + j·ystride. Each weight tile is loaded once for
// all T tokens; every output is accumulated in exactly the order of
// bitgemv_lut3, so the results are bit-identical to T separate GEMVs.
// `tables` scratch: T·8·groups floats.
inline size_t lut3_table_floats(int cols) {
    return 8 * (size_t)((cols + 2) / 3);
}
void bitgemm_lut3_quads_avx2(const Lut3Matrix& m, const float* tables, size_t tstride, int T, int q0, int q1, float* y,
                             size_t ystride);
void bitgemm_lut3(const CpuContext& cx, const Lut3Matrix& m, const float* x, size_t xstride, int T, float* y,
                  size_t ystride, float* tables);

}  // namespace bimamba::kernels
