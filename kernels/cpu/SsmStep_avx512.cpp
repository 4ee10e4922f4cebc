// AVX-512 path of the SSM step (SsmStep.h; compiled with -mavx512f/bw/vl/dq,
// called only when the CPU has AVX-512): SsmStep_avx2.cpp at 16 lanes.
// Decode reads the state from memory, but batched prefill runs a head's
// tokens with its state in L1, where the step is bound by instructions
// (load, widen, update, round, store, y) rather than by memory: on the Xeon
// it was 15 % of a 2.7B fp16 prompt and a quarter of a binary one.
//
// Every state value is computed and rounded as in the AVX2 path and the
// reference (the same fp32 operations per element), so the stored state is
// the same; y's sum over d_state runs in 16 lanes (halves added, then the
// AVX2 path's 8-lane order), so y differs from the AVX2 path's in the last
// bits. Decode and batched prefill both call this kernel, so prefill stays
// bit-identical to decoding token by token under this ISA.
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/Avx512Reduce.h"
#include "kernels/cpu/Half.h"
#include "kernels/cpu/SsmState16.h"
#include "kernels/cpu/SsmStep.h"

namespace bimamba::kernels {

namespace {
inline __m512 load_state16(const uint16_t* p, bool bf) {
    const __m256i raw = _mm256_loadu_si256((const __m256i*)p);
    return bf ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16)) : _mm512_cvtph_ps(raw);
}

inline void store_state16(uint16_t* p, __m512 v, bool bf) {
    if (!bf) {
        _mm256_storeu_si256((__m256i*)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        return;
    }
    // bf16, round to nearest even: (x + 0x7fff + lsb) >> 16; NaN keeps its top half with the quiet bit.
    const __m512i xi = _mm512_castps_si512(v);
    const __m512i top = _mm512_srli_epi32(xi, 16);
    const __m512i lsb = _mm512_and_si512(top, _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(xi, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(top, _mm512_set1_epi32(0x40)));
    _mm256_storeu_si256((__m256i*)p, _mm512_cvtepi32_epi16(r));
}
}  // namespace

void ssm_head_step_avx512(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B, const float* C,
                          float D, float* y) {
    const __m512 vdA = _mm512_set1_ps(dA);
    const int full = ns & ~15;
    for (int p = 0; p < hd; ++p) {
        const float dx = dt * x[p];
        const __m512 vdx = _mm512_set1_ps(dx);
        float* sp = s + (size_t)p * ns;
        __m512 acc = _mm512_setzero_ps();
        for (int n = 0; n < full; n += 16) {
            const __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(sp + n), vdA, _mm512_mul_ps(vdx, _mm512_loadu_ps(B + n)));
            _mm512_storeu_ps(sp + n, v);
            acc = _mm512_fmadd_ps(v, _mm512_loadu_ps(C + n), acc);
        }
        float t = hsum16(acc);
        for (int n = full; n < ns; ++n) {
            sp[n] = sp[n] * dA + dx * B[n];
            t += sp[n] * C[n];
        }
        y[p] = t + D * x[p];
    }
}

namespace {
// The element type, and d_state where it is the paper models' 128, as
// template arguments: with a run-time flag GCC kept the f16/bf16 choice in the
// loop. Zen 4 VM, one core, a 64 x 128 f16 head state in L1: 7.2 cycles per 16
// elements before, 6.7 with both (a 780M token's 2304 head steps from DRAM:
// 2.5-2.9 ms before, 2.5 ms). The operations and their order are unchanged.
// MAX = false leaves out the max |h| (2 of the loop's ~9 vector ops; 13-16 %
// of a 780M layer's 48 heads in cache): the caller holds a bound (SsmStep.h).
template <bool BF, int NS, bool MAX>
float head_step16(uint16_t* s, int hd, int ns_, float dA, float dt, const float* x, const float* B, const float* C,
                  float D, float* y) {
    constexpr bool bf = BF;
    const int ns = NS ? NS : ns_;
    const __m512 vdA = _mm512_set1_ps(dA);
    __m512 vmax = _mm512_setzero_ps();
    float smax = 0;
    const int full = ns & ~15;
    for (int p = 0; p < hd; ++p) {
        const float dx = dt * x[p];
        const __m512 vdx = _mm512_set1_ps(dx);
        uint16_t* sp = s + (size_t)p * ns;
        __m512 acc = _mm512_setzero_ps();
        for (int n = 0; n < full; n += 16) {
            const __m512 v = _mm512_fmadd_ps(load_state16(sp + n, bf), vdA, _mm512_mul_ps(vdx, _mm512_loadu_ps(B + n)));
            store_state16(sp + n, v, bf);
            if (MAX)
                vmax = _mm512_max_ps(vmax, _mm512_abs_ps(v));  // (a NaN v is dropped here; the range is what matters)
            acc = _mm512_fmadd_ps(v, _mm512_loadu_ps(C + n), acc);
        }
        float tsum = hsum16(acc);
        for (int n = full; n < ns; ++n) {
            const float v = ssm_state16_update(sp[n], bf, dA, dx, B[n]);
            if (MAX) smax = std::fmax(smax, std::fabs(v));
            tsum += v * C[n];
        }
        y[p] = tsum + D * x[p];
    }
    alignas(64) float m[16];
    _mm512_store_ps(m, vmax);
    for (float v : m) smax = std::fmax(smax, v);
    return smax;
}
}  // namespace

float ssm_head_step16_avx512(uint16_t* s, StateType t, int hd, int ns, float dA, float dt, const float* x,
                             const float* B, const float* C, float D, float* y, bool max_abs) {
    if (t == StateType::BF16)
        return max_abs ? head_step16<true, 0, true>(s, hd, ns, dA, dt, x, B, C, D, y)
                       : head_step16<true, 0, false>(s, hd, ns, dA, dt, x, B, C, D, y);
    if (ns == 128)
        return max_abs ? head_step16<false, 128, true>(s, hd, ns, dA, dt, x, B, C, D, y)
                       : head_step16<false, 128, false>(s, hd, ns, dA, dt, x, B, C, D, y);
    return max_abs ? head_step16<false, 0, true>(s, hd, ns, dA, dt, x, B, C, D, y)
                   : head_step16<false, 0, false>(s, hd, ns, dA, dt, x, B, C, D, y);
}

}  // namespace bimamba::kernels
