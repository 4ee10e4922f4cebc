// Scalar reference of the int8-row GEMV, the quantizers and the dispatcher.
#include "kernels/cpu/Q8Gemv.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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

float quantize_vector_i16(const float* x, int cols, int16_t* xq) {
    float m = 0;
    bool finite = true;
    for (int c = 0; c < cols; ++c) {
        finite = finite && std::isfinite(x[c]);
        m = std::max(m, std::fabs(x[c]));
    }
    if (!finite) {
        std::fill(xq, xq + cols, (int16_t)0);
        return std::numeric_limits<float>::quiet_NaN();
    }
    const float s = m / 32767.0f;
    for (int c = 0; c < cols; ++c) {
        const float v = s > 0 ? std::nearbyint(x[c] / s) : 0.0f;
        xq[c] = (int16_t)std::max(-32767.0f, std::min(32767.0f, v));
    }
    return s;
}

void q8gemv_rows_scalar(const int8_t* q, const float* scale, int r0, int r1, int cols, const int16_t* xq, float sx,
                        float* y) {
    for (int r = r0; r < r1; ++r) {
        const int8_t* row = q + (size_t)r * cols;
        int64_t dot = 0;
        for (int c = 0; c < cols; ++c) dot += (int32_t)row[c] * xq[c];
        y[r] = q8_output(dot, scale[r], sx);
    }
}

void q8gemv_ref(const int8_t* q, const float* scale, int rows, int cols, const float* x, float* y) {
    std::vector<int16_t> xq(cols);
    const float sx = quantize_vector_i16(x, cols, xq.data());
    q8gemv_rows_scalar(q, scale, 0, rows, cols, xq.data(), sx, y);
}

namespace {
// The dispatch q8gemv and q8gemm share: the input quantizer and the rows kernel of cx's ISA.
float quantize_input(const CpuContext& cx, const float* x, int cols, int16_t* xq) {
    return cx.avx2() ? quantize_vector_i16_avx2(x, cols, xq) : quantize_vector_i16(x, cols, xq);
}
auto rows_kernel(const CpuContext& cx) {
    return cx.avx512() ? q8gemv_rows_avx512 : cx.avx2() ? q8gemv_rows_avx2 : q8gemv_rows_scalar;
}
}  // namespace

void q8gemv(const CpuContext& cx, const int8_t* q, const float* scale, int rows, int cols, const float* x, float* y) {
    thread_local std::vector<int16_t> xq;
    xq.resize(cols);
    const float sx = quantize_input(cx, x, cols, xq.data());
    const int16_t* xp = xq.data();
    auto f = rows_kernel(cx);
    if ((long long)rows * cols < (1 << 15)) return f(q, scale, 0, rows, cols, xp, sx, y);
    cx.threads().parallel_for(rows, 8, [&](int a, int b) { f(q, scale, a, b, cols, xp, sx, y); });
}

void q8gemm(const CpuContext& cx, const int8_t* q, const float* scale, int rows, int cols, const float* x,
            size_t xstride, int T, float* y, size_t ystride) {
    thread_local std::vector<int16_t> xq;
    thread_local std::vector<float> sx;
    xq.resize((size_t)T * cols);
    sx.resize(T);
    for (int t = 0; t < T; ++t) sx[t] = quantize_input(cx, x + t * xstride, cols, xq.data() + (size_t)t * cols);
    auto f = rows_kernel(cx);
    // Tiles of ~16 KB of weights (L1), each read from memory once for all T inputs.
    const int tile = std::max(8, (16384 / std::max(cols, 1)) / 8 * 8);
    const int16_t* xp = xq.data();
    const float* sp = sx.data();
    auto tiles = [&](int a, int b) {
        for (int r = a; r < b; r += tile) {
            const int e = std::min(b, r + tile);
            for (int t = 0; t < T; ++t) f(q, scale, r, e, cols, xp + (size_t)t * cols, sp[t], y + t * ystride);
        }
    };
    if ((long long)rows * cols < (1 << 15)) return tiles(0, rows);
    cx.threads().parallel_for(rows, tile, tiles);
}

}  // namespace bimamba::kernels
