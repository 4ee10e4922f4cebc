#pragma once
// Matrix–vector products of the CPU engine (decode is one token at a time, so
// every linear layer is a GEMV and the run time is the weight bytes streamed).
//
//   bitgemv:  y[r] = Σ_c s[r,c]·x[c] with s = ±1 packed 1 bit per weight.
//             Row r occupies row_stride = ceil(cols/8) bytes; column c is bit
//             (c % 8) of byte c / 8 (LSB first); bit 1 means −1, bit 0 means +1.
//             The Bi-Mamba layer is then y = S·(α⊙x) + (β·x): the caller scales
//             x by α and adds the scalar β·x (see core/engine/Engine.cpp).
//   f16gemv:  y = W·x, W row-major IEEE half (the fp16 baseline, the head).
//   f32gemv:  y = W·x, W row-major float (the fp32 reference mode).
//
// Each has a scalar reference (`*_ref`, the definition) and an AVX2 path
// chosen at run time; `*_rows` variants work on the row range [r0, r1) so the
// thread pool can split a product across cores.
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/CpuContext.h"

namespace bimamba::kernels {

inline size_t bit_row_stride(int cols) {
    return (size_t)(cols + 7) / 8;
}

// Packs a ±1 matrix given as floats (sign taken; 0 counts as +1) into the layout above.
void pack_signs(const float* w, int rows, int cols, uint8_t* out);

// Scalar references.
void bitgemv_ref(const uint8_t* s, int rows, int cols, const float* x, float* y);
void f16gemv_ref(const uint16_t* w, int rows, int cols, const float* x, float* y);
void f32gemv_ref(const float* w, int rows, int cols, const float* x, float* y);

// Fast paths on rows [r0, r1); implemented per ISA, selected by the CpuContext.
void bitgemv_rows_avx2(const uint8_t* s, int r0, int r1, int cols, const float* x, float* y);
void f16gemv_rows_avx2(const uint16_t* w, int r0, int r1, int cols, const float* x, float* y);
void f32gemv_rows_avx2(const float* w, int r0, int r1, int cols, const float* x, float* y);
void bitgemv_rows_scalar(const uint8_t* s, int r0, int r1, int cols, const float* x, float* y);
void f16gemv_rows_scalar(const uint16_t* w, int r0, int r1, int cols, const float* x, float* y);
void f32gemv_rows_scalar(const float* w, int r0, int r1, int cols, const float* x, float* y);

// The ISA checks and the choice of path and threads: CpuContext.h. Every
// dispatching function below takes the context to run on.

// fp16 products for T input vectors at once (prompt prefill): token j reads
// x + j·xstride and writes y + j·ystride. Register tiles of 4 rows × 3 tokens
// (each converted weight vector used 3 times, each x vector 4 times); a tile
// of 4 rows is read from memory once for all T tokens (then from L1). Every
// output is accumulated in the order of f16gemv_rows_avx2, so the results are
// bit-identical to T separate GEMVs (tests/test_bitgemv.cpp).
void f16gemm_rows_avx2(const uint16_t* w, int r0, int r1, int cols, const float* x, size_t xstride, int T, float* y,
                       size_t ystride);
void f16gemm(const CpuContext& cx, const uint16_t* w, int rows, int cols, const float* x, size_t xstride, int T,
             float* y, size_t ystride);
// AVX-512 fp16 GEMV and GEMM (Gemv_avx512.cpp): 16-lane chains, tiles of 4 rows
// × 4 tokens; the GEMV is the GEMM with one token, so the two agree bit for
// bit (as the AVX2 pair does). The dispatchers use them under Isa::Avx512.
void f16gemv_rows_avx512(const uint16_t* w, int r0, int r1, int cols, const float* x, float* y);
void f16gemm_rows_avx512(const uint16_t* w, int r0, int r1, int cols, const float* x, size_t xstride, int T, float* y,
                         size_t ystride);

// The O(cols) part of the Bi-Mamba identity y = S·(α⊙x) + (β·x): writes
// ax = α⊙x and returns β·x accumulated in double. The reference sums in
// column order; the AVX2 path keeps 4 double partial sums (a different order,
// so the two agree to double rounding, ~1e-16 relative, not bit for bit).
double binary_input_ref(const float* alpha, const float* beta, const float* x, float* ax, int cols);
double binary_input_avx2(const float* alpha, const float* beta, const float* x, float* ax, int cols);
double binary_input(const CpuContext& cx, const float* alpha, const float* beta, const float* x, float* ax, int cols);

// Dispatching, multi-threaded (on cx's pool) versions.
void bitgemv(const CpuContext& cx, const uint8_t* s, int rows, int cols, const float* x, float* y);
void f16gemv(const CpuContext& cx, const uint16_t* w, int rows, int cols, const float* x, float* y);
void f32gemv(const CpuContext& cx, const float* w, int rows, int cols, const float* x, float* y);

}  // namespace bimamba::kernels
