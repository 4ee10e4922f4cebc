#include "kernels/cpu/RmsNorm.h"

#include <cmath>

namespace bimamba::kernels {

double sum_squares_ref(const float* x, int n) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += (double)x[i] * x[i];
    return ss;
}

double sum_squares(const CpuContext& cx, const float* x, int n) {
    return cx.avx2() ? sum_squares_avx2(x, n) : sum_squares_ref(x, n);
}

float rms_scale(double ss, int n, float eps) {
    return 1.0f / std::sqrt((float)(ss / n) + eps);
}

void scale_rows(const float* x, float r, const float* w, int n, float* out) {
    for (int i = 0; i < n; ++i) out[i] = x[i] * r * w[i];
}

void rmsnorm(const CpuContext& cx, const float* x, const float* w, int n, float eps, float* out) {
    scale_rows(x, rms_scale(sum_squares(cx, x, n), n, eps), w, n, out);
}

}  // namespace bimamba::kernels
