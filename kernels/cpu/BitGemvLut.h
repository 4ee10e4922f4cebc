#pragma once
// Lookup-table ±1 GEMV (T-MAC-style, float tables): the engine repacks the
// row-major sign matrix of the file into tiles of 8 rows × groups of 3
// columns. For each group the 8 possible sums ±x_a ±x_b ±x_c form a table of
// one AVX2 register; one VPERMPS then looks up 8 rows × 3 columns at once, so
// 24 weights cost a broadcast, a shift, a permute and an add instead of three
// XOR/add pairs.
//
// Tiled layout: tile t (rows 8t..8t+7), group g (columns 3g..3g+2) is 3 bytes
// at offset 3·(t·G + g), G = ceil(cols/3); bit 3r+j is the sign bit (1 = −1)
// of row 8t+r, column 3g+j; padding rows/columns are 0 and padding columns
// read x = 0. One spare byte at the end lets the kernel load 4 bytes.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace bimamba::kernels {

struct Lut3Matrix {
    int rows = 0, cols = 0, tiles = 0, groups = 0;
    std::vector<uint8_t> data;
};

// From the row-major packing of Gemv.h.
Lut3Matrix repack_lut3(const uint8_t* signs, int rows, int cols);
// Scalar reference on the tiled layout (the definition).
void bitgemv_lut3_ref(const Lut3Matrix& m, const float* x, float* y);
// AVX2, tiles [t0, t1); `tables` = 8·groups floats from build_lut3_tables.
void build_lut3_tables(const float* x, int cols, float* tables);
void bitgemv_lut3_tiles_avx2(const Lut3Matrix& m, const float* tables, int t0, int t1, float* y);
// Dispatching, multi-threaded; scalar fallback without AVX2. `tables` scratch: 8·groups floats.
void bitgemv_lut3(const Lut3Matrix& m, const float* x, float* y, float* tables);

}  // namespace bimamba::kernels
