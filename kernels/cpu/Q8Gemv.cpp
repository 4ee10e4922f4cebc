// Scalar reference of the int8-row GEMV, the quantizer and the dispatcher.
#include "kernels/cpu/Q8Gemv.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ThreadPool.h"

namespace bimamba::kernels {

void quantize_rows_q8(const float* w, int rows, int cols, int8_t* q, float* scale) {
    for (int r = 0; r < rows; ++r) {
        const float* row = w + (size_t)r * cols;
        float m = 0;
        for (int c = 0; c < cols; ++c) m = std::max(m, std::fabs(row[c]));
        const float s = m / 127.0f;
        scale[r] = s;
        for (int c = 0; c < cols; ++c) {
            const float v = s > 0 ? std::nearbyint(row[c] / s) : 0.0f;
            q[(size_t)r * cols + c] = (int8_t)std::max(-127.0f, std::min(127.0f, v));
        }
    }
}

void q8gemv_rows_scalar(const int8_t* q, const float* scale, int r0, int r1, int cols, const float* x, float* y) {
    for (int r = r0; r < r1; ++r) {
        const int8_t* row = q + (size_t)r * cols;
        float acc = 0;
        for (int c = 0; c < cols; ++c) acc += (float)row[c] * x[c];
        y[r] = scale[r] * acc;
    }
}

void q8gemv_ref(const int8_t* q, const float* scale, int rows, int cols, const float* x, float* y) {
    q8gemv_rows_scalar(q, scale, 0, rows, cols, x, y);
}

void q8gemv(const CpuContext& cx, const int8_t* q, const float* scale, int rows, int cols, const float* x, float* y) {
    auto f = cx.avx512() ? q8gemv_rows_avx512 : cx.avx2() ? q8gemv_rows_avx2 : q8gemv_rows_scalar;
    if ((long long)rows * cols < (1 << 15)) return f(q, scale, 0, rows, cols, x, y);
    cx.threads().parallel_for(rows, 8, [&](int a, int b) { f(q, scale, a, b, cols, x, y); });
}

}  // namespace bimamba::kernels
