// Scalar references (the definitions the SIMD paths are tested against),
// and the multi-threaded dispatchers (ISA and pool from a CpuContext).
#include "kernels/cpu/Gemv.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cpu/Half.h"
#include "kernels/cpu/ThreadPool.h"

namespace bimamba::kernels {

void pack_signs(const float* w, int rows, int cols, uint8_t* out) {
    const size_t stride = bit_row_stride(cols);
    std::memset(out, 0, stride * rows);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            if (w[(size_t)r * cols + c] < 0) out[r * stride + c / 8] |= (uint8_t)(1u << (c % 8));
}

void bitgemv_rows_scalar(const uint8_t* s, int r0, int r1, int cols, const float* x, float* y) {
    const size_t stride = bit_row_stride(cols);
    for (int r = r0; r < r1; ++r) {
        const uint8_t* row = s + r * stride;
        float acc = 0;
        for (int c = 0; c < cols; ++c) acc += ((row[c >> 3] >> (c & 7)) & 1) ? -x[c] : x[c];
        y[r] = acc;
    }
}
void f16gemv_rows_scalar(const uint16_t* w, int r0, int r1, int cols, const float* x, float* y) {
    for (int r = r0; r < r1; ++r) {
        const uint16_t* row = w + (size_t)r * cols;
        float acc = 0;
        for (int c = 0; c < cols; ++c) acc += half_to_float(row[c]) * x[c];
        y[r] = acc;
    }
}
void f32gemv_rows_scalar(const float* w, int r0, int r1, int cols, const float* x, float* y) {
    for (int r = r0; r < r1; ++r) {
        const float* row = w + (size_t)r * cols;
        float acc = 0;
        for (int c = 0; c < cols; ++c) acc += row[c] * x[c];
        y[r] = acc;
    }
}

void bitgemv_ref(const uint8_t* s, int rows, int cols, const float* x, float* y) {
    bitgemv_rows_scalar(s, 0, rows, cols, x, y);
}
void f16gemv_ref(const uint16_t* w, int rows, int cols, const float* x, float* y) {
    f16gemv_rows_scalar(w, 0, rows, cols, x, y);
}
void f32gemv_ref(const float* w, int rows, int cols, const float* x, float* y) {
    f32gemv_rows_scalar(w, 0, rows, cols, x, y);
}

// Rows go to threads in multiples of 8 (the SIMD paths do 4 rows at a time);
// small products stay on the calling thread, where waking workers costs more.
double binary_input_ref(const float* alpha, const float* beta, const float* x, float* ax, int cols) {
    double b = 0;
    for (int i = 0; i < cols; ++i) {
        ax[i] = alpha[i] * x[i];
        b += (double)beta[i] * x[i];
    }
    return b;
}

double binary_input(const CpuContext& cx, const float* alpha, const float* beta, const float* x, float* ax, int cols) {
    return cx.avx2() ? binary_input_avx2(alpha, beta, x, ax, cols) : binary_input_ref(alpha, beta, x, ax, cols);
}

void bitgemv(const CpuContext& cx, const uint8_t* s, int rows, int cols, const float* x, float* y) {
    auto f = cx.avx2() ? bitgemv_rows_avx2 : bitgemv_rows_scalar;
    if ((long long)rows * cols < (1 << 16)) return f(s, 0, rows, cols, x, y);
    cx.threads().parallel_for(rows, 8, [&](int a, int b) { f(s, a, b, cols, x, y); });
}
void f16gemv(const CpuContext& cx, const uint16_t* w, int rows, int cols, const float* x, float* y) {
    auto f = cx.avx512() ? f16gemv_rows_avx512 : cx.avx2() ? f16gemv_rows_avx2 : f16gemv_rows_scalar;
    if ((long long)rows * cols < (1 << 14)) return f(w, 0, rows, cols, x, y);
    cx.threads().parallel_for(rows, 8, [&](int a, int b) { f(w, a, b, cols, x, y); });
}
void f16gemm(const CpuContext& cx, const uint16_t* w, int rows, int cols, const float* x, size_t xstride, int T,
             float* y, size_t ystride) {
    if (T <= 0) return;
    if (!cx.avx2()) {
        for (int j = 0; j < T; ++j) f16gemv_rows_scalar(w, 0, rows, cols, x + j * xstride, y + j * ystride);
        return;
    }
    auto f = cx.avx512() ? f16gemm_rows_avx512 : f16gemm_rows_avx2;
    if ((long long)rows * cols < (1 << 14)) return f(w, 0, rows, cols, x, xstride, T, y, ystride);
    cx.threads().parallel_for(rows, 8, [&](int a, int b) { f(w, a, b, cols, x, xstride, T, y, ystride); });
}
void f32gemv(const CpuContext& cx, const float* w, int rows, int cols, const float* x, float* y) {
    auto f = cx.avx2() ? f32gemv_rows_avx2 : f32gemv_rows_scalar;
    if ((long long)rows * cols < (1 << 14)) return f(w, 0, rows, cols, x, y);
    cx.threads().parallel_for(rows, 8, [&](int a, int b) { f(w, a, b, cols, x, y); });
}

}  // namespace bimamba::kernels
