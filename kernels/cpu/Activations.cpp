#include "kernels/cpu/Activations.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/Gemv.h"

namespace bimamba::kernels {

namespace {
inline float silu(float x) {
    return x / (1.0f + std::exp(-x));
}
}  // namespace

void conv_silu_ref(const float* const* taps, int K, const float* wT, int ldw, const float* bias, int n, float* out) {
    for (int c = 0; c < n; ++c) {
        float acc = bias ? bias[c] : 0.0f;
        for (int k = 0; k < K; ++k) acc += taps[k][c] * wT[(size_t)k * ldw + c];
        out[c] = silu(acc);
    }
}

void silu_mul_ref(float* y, const float* z, int n) {
    for (int i = 0; i < n; ++i) y[i] *= silu(z[i]);
}

void conv_silu(const CpuContext& cx, const float* const* taps, int K, const float* wT, int ldw, const float* bias,
               int n, float* out) {
    if (cx.avx2()) return conv_silu_avx2(taps, K, wT, ldw, bias, n, out);
    conv_silu_ref(taps, K, wT, ldw, bias, n, out);
}

void silu_mul(const CpuContext& cx, float* y, const float* z, int n) {
    if (cx.avx2()) return silu_mul_avx2(y, z, n);
    silu_mul_ref(y, z, n);
}

}  // namespace bimamba::kernels
