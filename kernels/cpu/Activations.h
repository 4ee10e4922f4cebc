#pragma once
// Element-wise parts of a decode step that are not matrix products: the
// causal depthwise conv + SiLU over the conv state, and the SiLU gate.
// Scalar references use std::exp; the AVX2 paths use a polynomial exp
// (relative error < 2e-7 over the float range used) and are chosen at run
// time like the GEMVs (from a CpuContext, CpuContext.h).
#include "kernels/cpu/CpuContext.h"

namespace bimamba::kernels {

// out[c] = silu(bias[c] + Σ_k taps[k][c] · wT[k·n + c]), k = 0..K-1 from the
// oldest input to the newest; bias may be null. wT is the conv weight
// transposed to tap-major (K × n).
void conv_silu_ref(const float* const* taps, int K, const float* wT, const float* bias, int n, float* out);
void conv_silu_avx2(const float* const* taps, int K, const float* wT, const float* bias, int n, float* out);
void conv_silu(const CpuContext& cx, const float* const* taps, int K, const float* wT, const float* bias, int n,
               float* out);

// y[i] *= silu(z[i])
void silu_mul_ref(float* y, const float* z, int n);
void silu_mul_avx2(float* y, const float* z, int n);
void silu_mul(const CpuContext& cx, float* y, const float* z, int n);

}  // namespace bimamba::kernels
