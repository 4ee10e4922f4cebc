#pragma once
// The int8 head/embedding of a deployment file (`bimamba export --head q8`):
// rows quantized to int8 with one float scale per row,
//
//   W[r, c] ≈ scale[r] · q[r, c],  scale[r] = max_c |W[r, c]| / 127,
//   q[r, c] = round-to-nearest-even(W[r, c] / scale[r]) ∈ [-127, 127],
//
// and the product with a float vector, y[r] = scale[r] · Σ_c q[r, c]·x[c]
// (x stays float: no activation quantization). Half the bytes of fp16 per
// weight, the head being the largest single matrix a binary token reads.
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/CpuContext.h"

namespace bimamba::kernels {

// Per-row quantization of a rows × cols float matrix (a zero row gets scale 0, q 0).
void quantize_rows_q8(const float* w, int rows, int cols, int8_t* q, float* scale);

// Scalar reference (the definition): float accumulation in column order, then the row's scale.
void q8gemv_ref(const int8_t* q, const float* scale, int rows, int cols, const float* x, float* y);
// Rows [r0, r1), per ISA. The SIMD paths keep 8 (16) lane partial sums: equal to
// the reference within float rounding, not bit for bit.
void q8gemv_rows_scalar(const int8_t* q, const float* scale, int r0, int r1, int cols, const float* x, float* y);
void q8gemv_rows_avx2(const int8_t* q, const float* scale, int r0, int r1, int cols, const float* x, float* y);
void q8gemv_rows_avx512(const int8_t* q, const float* scale, int r0, int r1, int cols, const float* x, float* y);

// Dispatching, multi-threaded (on cx's ISA and pool).
void q8gemv(const CpuContext& cx, const int8_t* q, const float* scale, int rows, int cols, const float* x, float* y);

}  // namespace bimamba::kernels
