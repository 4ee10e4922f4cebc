#include "kernels/cpu/SsmStep.h"

#include <cmath>
#include <limits>
#include <cstring>
#include <stdexcept>

#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/Half.h"
#include "kernels/cpu/SsmState16.h"

namespace bimamba::kernels {

StateType state_type_from_string(const std::string& s) {
    if (s == "f32" || s == "fp32" || s == "float32") return StateType::F32;
    if (s == "bf16") return StateType::BF16;
    if (s == "f16" || s == "fp16") return StateType::F16;
    throw std::invalid_argument("unknown state precision '" + s + "' (f32, bf16, f16)");
}

const char* state_type_name(StateType t) {
    switch (t) {
        case StateType::BF16:
            return "bf16";
        case StateType::F16:
            return "f16";
        default:
            return "f32";
    }
}

void ssm_head_step_ref(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B, const float* C,
                       float D, float* y) {
    for (int p = 0; p < hd; ++p) {
        const float dx = dt * x[p];
        float* sp = s + (size_t)p * ns;
        float acc = 0;
        for (int n = 0; n < ns; ++n) {
            sp[n] = sp[n] * dA + dx * B[n];
            acc += sp[n] * C[n];
        }
        y[p] = acc + D * x[p];
    }
}

float ssm_head_step16_ref(uint16_t* s, StateType t, int hd, int ns, float dA, float dt, const float* x, const float* B,
                          const float* C, float D, float* y) {
    const bool bf = t == StateType::BF16;
    float vmax = 0;
    for (int p = 0; p < hd; ++p) {
        const float dx = dt * x[p];
        uint16_t* sp = s + (size_t)p * ns;
        float acc = 0;
        for (int n = 0; n < ns; ++n) {
            const float v = ssm_state16_update(sp[n], bf, dA, dx, B[n]);
            vmax = std::fmax(vmax, std::fabs(v));
            acc += v * C[n];
        }
        y[p] = acc + D * x[p];
    }
    return vmax;
}

void ssm_head_step(const CpuContext& cx, float* s, int hd, int ns, float dA, float dt, const float* x, const float* B,
                   const float* C, float D, float* y) {
    if (cx.avx512()) return ssm_head_step_avx512(s, hd, ns, dA, dt, x, B, C, D, y);
    if (cx.avx2()) return ssm_head_step_avx2(s, hd, ns, dA, dt, x, B, C, D, y);
    ssm_head_step_ref(s, hd, ns, dA, dt, x, B, C, D, y);
}

float ssm_head_step16(const CpuContext& cx, uint16_t* s, StateType t, int hd, int ns, float dA, float dt,
                      const float* x, const float* B, const float* C, float D, float* y, bool max_abs) {
    if (cx.avx512()) return ssm_head_step16_avx512(s, t, hd, ns, dA, dt, x, B, C, D, y, max_abs);
    if (cx.avx2()) return ssm_head_step16_avx2(s, t, hd, ns, dA, dt, x, B, C, D, y);
    return ssm_head_step16_ref(s, t, hd, ns, dA, dt, x, B, C, D, y);
}

float max_abs_ref(const float* x, int n) {
    float m = 0;
    for (int i = 0; i < n; ++i) {
        if (std::isnan(x[i])) return std::numeric_limits<float>::quiet_NaN();
        m = std::max(m, std::fabs(x[i]));
    }
    return m;
}

float max_abs(const CpuContext& cx, const float* x, int n) {
    return cx.avx2() ? max_abs_avx2(x, n) : max_abs_ref(x, n);
}

}  // namespace bimamba::kernels
