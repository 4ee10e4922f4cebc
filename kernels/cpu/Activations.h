#pragma once
// Element-wise parts of a decode step that are not matrix products: the
// causal depthwise conv + SiLU over the conv state, and the SiLU gate.
// Scalar references use std::exp; the AVX2 paths use a polynomial exp
// (relative error < 2e-7 over the float range used) and are chosen at run
// time like the GEMVs (from a CpuContext, CpuContext.h). The AVX2 paths
// compute every element the same way wherever it sits (the last partial
// vector goes through masked loads, not a scalar tail), so a range computed
// in pieces, e.g. per head on different threads, equals the whole.
#include "kernels/cpu/CpuContext.h"

namespace bimamba::kernels {

// out[c] = silu(bias[c] + Σ_k taps[k][c] · wT[k·ldw + c]), c = 0..n-1, k =
// 0..K-1 from the oldest input to the newest; bias may be null. wT is the conv
// weight transposed to tap-major (K rows of ldw >= n channels; a range of
// channels passes pointers offset into all of them).
void conv_silu_ref(const float* const* taps, int K, const float* wT, int ldw, const float* bias, int n, float* out);
void conv_silu_avx2(const float* const* taps, int K, const float* wT, int ldw, const float* bias, int n, float* out);
void conv_silu(const CpuContext& cx, const float* const* taps, int K, const float* wT, int ldw, const float* bias,
               int n, float* out);

// y[i] *= silu(z[i])
void silu_mul_ref(float* y, const float* z, int n);
void silu_mul_avx2(float* y, const float* z, int n);
void silu_mul(const CpuContext& cx, float* y, const float* z, int n);

}  // namespace bimamba::kernels
