#pragma once
// The int8 head/embedding of a deployment file (`bimamba export --head q8`):
// rows quantized to int8 with one float scale per row,
//
//   W[r, c] ≈ scale[r] · q[r, c],  scale[r] = max_c |W[r, c]| / 127,
//   q[r, c] = round-to-nearest-even(W[r, c] / scale[r]) ∈ [-127, 127].
//
// The product with a float vector quantizes the vector to int16 with one scale
// for the whole vector (the steps are 1/32767 of its largest value: ~15 bits,
// more than the 11 of the fp16 head it replaces),
//
//   sx = max_c |x[c]| / 32767,  xq[c] = round-to-nearest-even(x[c] / sx),
//   y[r] = scale[r] · sx · Σ_c q[r, c]·xq[c]   (the sum exact, in integers),
//
// so a SIMD path multiplies and adds integers (one multiply-add per two
// weights, no float conversion of the weights) and every path, ISA and thread
// count gives the same bits. Half the bytes of fp16 per weight, the head being
// the largest single matrix a binary token reads.
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/CpuContext.h"

namespace bimamba::kernels {

// Per-row quantization of a rows × cols float matrix (a zero row gets scale 0, q 0).
void quantize_rows_q8(const float* w, int rows, int cols, int8_t* q, float* scale);

// The vector's int16 quantization above; returns sx (0 for a zero vector, NaN
// when x holds a NaN or an infinity, so that every output is NaN as a float
// product's would be).
float quantize_vector_i16(const float* x, int cols, int16_t* xq);
// The same bytes with AVX2 (the dispatcher's quantizer on AVX2 and AVX-512 CPUs:
// at 16 threads a scalar quantizer on the calling thread cost a tenth of the head).
float quantize_vector_i16_avx2(const float* x, int cols, int16_t* xq);

// Rows [r0, r1) of y = scale · sx · (q · xq), per ISA; the integer sums are
// exact (int32 sums of 512-column chunks, which cannot overflow, added in int64), so every path
// equals the scalar one bit for bit.
void q8gemv_rows_scalar(const int8_t* q, const float* scale, int r0, int r1, int cols, const int16_t* xq, float sx,
                        float* y);
void q8gemv_rows_avx2(const int8_t* q, const float* scale, int r0, int r1, int cols, const int16_t* xq, float sx,
                      float* y);
void q8gemv_rows_avx512(const int8_t* q, const float* scale, int r0, int r1, int cols, const int16_t* xq, float sx,
                        float* y);

// The final scaling every path shares: the exact integer sum times the two scales, in double.
inline float q8_output(int64_t dot, float scale, float sx) {
    return (float)((double)dot * ((double)scale * (double)sx));
}

// Scalar reference (the definition): quantize x, then q8gemv_rows_scalar.
void q8gemv_ref(const int8_t* q, const float* scale, int rows, int cols, const float* x, float* y);
// Dispatching, multi-threaded (on cx's ISA and pool); x is quantized once, on the calling thread.
void q8gemv(const CpuContext& cx, const int8_t* q, const float* scale, int rows, int cols, const float* x, float* y);
// T inputs (x + t·xstride) at once, y + t·ystride = q8gemv of each, bit for bit:
// the rows go in tiles that stay in cache while every input passes over them
// (the head of every position of a window, `Engine::prefill_logits`).
void q8gemm(const CpuContext& cx, const int8_t* q, const float* scale, int rows, int cols, const float* x,
            size_t xstride, int T, float* y, size_t ystride);

}  // namespace bimamba::kernels
