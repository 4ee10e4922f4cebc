// Scalar references (the definitions the SIMD paths are tested against),
// run-time ISA selection and the multi-threaded dispatchers.
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

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
    static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                            __builtin_cpu_supports("f16c");
    return has;
#else
    return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
    static const bool has = cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    return has;
#else
    return false;
#endif
}

namespace {
enum class Isa { Scalar, Avx2, Avx512 };
Isa best_isa() { return cpu_has_avx512() ? Isa::Avx512 : cpu_has_avx2() ? Isa::Avx2 : Isa::Scalar; }
Isa g_isa = best_isa();
bool g_use_avx2 = g_isa != Isa::Scalar;
}  // namespace

const char* active_isa() { return g_isa == Isa::Avx512 ? "avx512" : g_isa == Isa::Avx2 ? "avx2" : "scalar"; }
bool use_avx2() { return g_isa != Isa::Scalar; }
bool use_avx512() { return g_isa == Isa::Avx512; }

void set_isa(const char* name) {
    const std::string n = name ? name : "auto";
    if (n == "auto") {
        g_isa = best_isa();
    } else if (n == "avx512") {
        if (!cpu_has_avx512()) throw std::runtime_error("this CPU lacks AVX-512 F/BW/VL/DQ");
        g_isa = Isa::Avx512;
    } else if (n == "avx2") {
        if (!cpu_has_avx2()) throw std::runtime_error("this CPU lacks AVX2/FMA/F16C");
        g_isa = Isa::Avx2;
    } else if (n == "scalar") {
        g_isa = Isa::Scalar;
    } else {
        throw std::invalid_argument("unknown ISA '" + n + "' (auto, avx512, avx2, scalar)");
    }
    g_use_avx2 = g_isa != Isa::Scalar;
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

double binary_input(const float* alpha, const float* beta, const float* x, float* ax, int cols) {
    return g_use_avx2 ? binary_input_avx2(alpha, beta, x, ax, cols) : binary_input_ref(alpha, beta, x, ax, cols);
}

void bitgemv(const uint8_t* s, int rows, int cols, const float* x, float* y) {
    auto f = g_use_avx2 ? bitgemv_rows_avx2 : bitgemv_rows_scalar;
    if ((long long)rows * cols < (1 << 16)) return f(s, 0, rows, cols, x, y);
    ThreadPool::global().parallel_for(rows, 8, [&](int a, int b) { f(s, a, b, cols, x, y); });
}
void f16gemv(const uint16_t* w, int rows, int cols, const float* x, float* y) {
    auto f = g_use_avx2 ? f16gemv_rows_avx2 : f16gemv_rows_scalar;
    if ((long long)rows * cols < (1 << 14)) return f(w, 0, rows, cols, x, y);
    ThreadPool::global().parallel_for(rows, 8, [&](int a, int b) { f(w, a, b, cols, x, y); });
}
void f16gemm(const uint16_t* w, int rows, int cols, const float* x, size_t xstride, int T, float* y, size_t ystride) {
    if (T <= 0) return;
    if (!g_use_avx2) {
        for (int j = 0; j < T; ++j) f16gemv_rows_scalar(w, 0, rows, cols, x + j * xstride, y + j * ystride);
        return;
    }
    if ((long long)rows * cols < (1 << 14)) return f16gemm_rows_avx2(w, 0, rows, cols, x, xstride, T, y, ystride);
    ThreadPool::global().parallel_for(rows, 8, [&](int a, int b) { f16gemm_rows_avx2(w, a, b, cols, x, xstride, T, y, ystride); });
}
void f32gemv(const float* w, int rows, int cols, const float* x, float* y) {
    auto f = g_use_avx2 ? f32gemv_rows_avx2 : f32gemv_rows_scalar;
    if ((long long)rows * cols < (1 << 14)) return f(w, 0, rows, cols, x, y);
    ThreadPool::global().parallel_for(rows, 8, [&](int a, int b) { f(w, a, b, cols, x, y); });
}

}  // namespace bimamba::kernels
