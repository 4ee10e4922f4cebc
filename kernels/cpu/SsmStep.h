#pragma once
// One decode step of the SSM recurrence for one head (Mamba-2, scalar A per head):
//   s[p,n] = dA·s[p,n] + dt·x[p]·B[n],   y[p] = Σ_n s[p,n]·C[n] + D·x[p]
// s is headdim × d_state, row-major. At the 780M shape the state is 75 MB of
// float per token, read and written once: as much traffic as the packed weights,
// so it gets a SIMD path and is split across heads by the caller.
//
// The state may also be stored in 16 bits (bf16 or fp16) to halve that
// traffic: the arithmetic stays fp32 (load, widen, update, y from the fp32
// value, round to nearest even on store). The 16-bit steps return the largest
// |value| they stored (before rounding) so the caller can see an fp16 state
// approach its range (65504) and fall back to float32 (core/engine/Engine.h).
#include <cstdint>
#include <string>

#include "kernels/cpu/CpuContext.h"

namespace bimamba::kernels {

enum class StateType { F32, BF16, F16 };
StateType state_type_from_string(const std::string& s);  // "f32" | "bf16" | "f16", throws otherwise
const char* state_type_name(StateType t);
inline int state_type_bytes(StateType t) {
    return t == StateType::F32 ? 4 : 2;
}

void ssm_head_step_ref(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B, const float* C,
                       float D, float* y);
void ssm_head_step_avx2(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B, const float* C,
                        float D, float* y);
// 16-bit state (`t` = BF16 or F16); the reference rounds with the scalar
// converters of core/base/Safetensors.h (the AVX2 path must agree bit for bit).
float ssm_head_step16_ref(uint16_t* s, StateType t, int hd, int ns, float dA, float dt, const float* x, const float* B,
                          const float* C, float D, float* y);
float ssm_head_step16_avx2(uint16_t* s, StateType t, int hd, int ns, float dA, float dt, const float* x, const float* B,
                           const float* C, float D, float* y);
// AVX-512 (SsmStep_avx512.cpp): the same state bits as the AVX2 path; y
// summed in 16 lanes, so it differs from the AVX2 path's in the last bits.
void ssm_head_step_avx512(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B, const float* C,
                          float D, float* y);
float ssm_head_step16_avx512(uint16_t* s, StateType t, int hd, int ns, float dA, float dt, const float* x,
                             const float* B, const float* C, float D, float* y, bool max_abs = true);
// Dispatch on cx's ISA (CpuContext.h).
void ssm_head_step(const CpuContext& cx, float* s, int hd, int ns, float dA, float dt, const float* x, const float* B,
                   const float* C, float D, float* y);
// The 16-bit steps return the new state's max |h| (as float, before its
// rounding to 16 bits: the engine's guard against float16's range). With
// max_abs false a path may skip it (AVX-512 does, and returns 0), for a caller
// that holds a bound of its own: the state and y are the same either way.
float ssm_head_step16(const CpuContext& cx, uint16_t* s, StateType t, int hd, int ns, float dA, float dt,
                      const float* x, const float* B, const float* C, float D, float* y, bool max_abs = true);

// max |x[i]| over n values (0 for n = 0), NaN if any x[i] is NaN: the engine's
// bound on the f16 state's growth (Engine::ssm_heads).
float max_abs_ref(const float* x, int n);
float max_abs_avx2(const float* x, int n);
float max_abs(const CpuContext& cx, const float* x, int n);

}  // namespace bimamba::kernels
