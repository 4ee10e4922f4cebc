#pragma once
// One decode step of the SSM recurrence for one head (Mamba-2, scalar A per head):
//   s[p,n] = dA·s[p,n] + dt·x[p]·B[n],   y[p] = Σ_n s[p,n]·C[n] + D·x[p]
// s is headdim × d_state, row-major. At the 780M shape the state is 75 MB of
// float per token, read and written once: as much traffic as the packed weights,
// so it gets a SIMD path and is split across heads by the caller.
namespace bimamba::kernels {

void ssm_head_step_ref(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B, const float* C,
                       float D, float* y);
void ssm_head_step_avx2(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B, const float* C,
                        float D, float* y);
// Dispatches on the active ISA (Gemv.h).
void ssm_head_step(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B, const float* C,
                   float D, float* y);

}  // namespace bimamba::kernels
