#pragma once
// The 16-lane float sum of the AVX-512 kernels (Gemv_avx512.cpp, the fp16
// GEMV/GEMM; SsmStep_avx512.cpp, the SSM step's y): the two 8-lane halves
// added, then the AVX2 paths' 8-lane order. Include it only from *_avx512.cpp
// files (and their SIMDe-emulated test builds). The function is static, so
// each translation unit keeps its own copy: no copy compiled under one file's
// ISA flags can stand in for another's at link time.
#include <immintrin.h>

namespace bimamba::kernels {

static inline float hsum16(__m512 v) {
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

}  // namespace bimamba::kernels
