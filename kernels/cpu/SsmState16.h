#pragma once
// One element of the 16-bit-state SSM step (SsmStep.h), as the reference
// computes it: widen the stored value, s·dA + dx·B in fp32, round to nearest
// even on store. Used by the reference and by the d_state tails of the AVX2
// and AVX-512 paths, whose vector loops perform the same operations per
// element. Static: each translation unit keeps its own copy, compiled under
// its own ISA flags, as the code it replaced was.
#include <cstdint>

#include "kernels/cpu/Half.h"

namespace bimamba::kernels {

// Updates `s` in place and returns the new value before rounding (the step's
// largest |value| and its y use that, not the stored bits).
static inline float ssm_state16_update(uint16_t& s, bool bf16, float dA, float dx, float b) {
    const float old = bf16 ? bf16_to_float(s) : half_to_float(s);
    const float v = old * dA + dx * b;
    s = bf16 ? float_to_bf16(v) : float_to_half(v);
    return v;
}

}  // namespace bimamba::kernels
