#include "kernels/cpu/SsmStep.h"

#include <cstring>

#include "kernels/cpu/Gemv.h"

namespace bimamba::kernels {

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

void ssm_head_step(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B, const float* C,
                   float D, float* y) {
    if (std::strcmp(active_isa(), "avx2") == 0) return ssm_head_step_avx2(s, hd, ns, dA, dt, x, B, C, D, y);
    ssm_head_step_ref(s, hd, ns, dA, dt, x, B, C, D, y);
}

}  // namespace bimamba::kernels
