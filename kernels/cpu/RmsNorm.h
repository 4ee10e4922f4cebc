#pragma once
// RMSNorm on the CPU engine's decode path: out = x · w / sqrt(mean(x²) + eps).
// The sum of squares is accumulated in double (as the scalar reference) in an
// order fixed by n alone, so a result never depends on which thread computed
// it; the engine sums it per head inside its per-head parallel region and adds
// the heads up in order (core/engine/Engine.cpp), which keeps decode, batched
// prefill and every thread count bit-identical.
#include "kernels/cpu/CpuContext.h"

namespace bimamba::kernels {

// Σ x[i]², in double.
double sum_squares_ref(const float* x, int n);
double sum_squares_avx2(const float* x, int n);
double sum_squares(const CpuContext& cx, const float* x, int n);

// out[i] = x[i] · r · w[i] with r = 1 / sqrt(ss / n + eps), ss = Σ x² over the n values.
float rms_scale(double ss, int n, float eps);
void scale_rows(const float* x, float r, const float* w, int n, float* out);
// Both steps in one call.
void rmsnorm(const CpuContext& cx, const float* x, const float* w, int n, float eps, float* out);

}  // namespace bimamba::kernels
