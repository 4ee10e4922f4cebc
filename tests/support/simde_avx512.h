#pragma once
// Runs an AVX-512 kernel source on a CPU without AVX-512, for the tests:
// SIMDe (SIMD Everywhere, libsimde-dev) implements the _mm512_* intrinsics
// with AVX2 or scalar code under their Intel names (native aliases). The
// kernel file is compiled a second time with this header force-included
// (tests/CMakeLists.txt), so the tests run the same source that the engine
// runs natively on AVX-512 machines.
//
// SIMDe 0.7.4 (Debian 12) lacks three conversions the i16lut kernel uses (and
// one the fp16 GEMM uses); they
// are defined here from AVX2 halves, as Intel's pseudo-code defines them (each
// 512-bit result is its two 256-bit halves converted independently). Its
// native alias of _mm512_madd_epi16 takes the masked form's 4 arguments (a
// SIMDe bug); the 2-argument function itself is right and is aliased here.
#include <immintrin.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

namespace bimamba_test_simde {
inline simde__m512i cvtepu8_epi16(__m256i a) {
    const __m256i lo = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(a));
    const __m256i hi = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(a, 1));
    return simde_mm512_inserti64x4(simde_mm512_castsi256_si512(lo), hi, 1);
}
inline simde__m512i cvtepi16_epi32(__m256i a) {
    const __m256i lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a));
    const __m256i hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1));
    return simde_mm512_inserti64x4(simde_mm512_castsi256_si512(lo), hi, 1);
}
inline simde__m512 cvtepi32_ps(simde__m512i a) {
    const __m256 lo = _mm256_cvtepi32_ps(simde_mm512_castsi512_si256(a));
    const __m256 hi = _mm256_cvtepi32_ps(simde_mm512_extracti64x4_epi64(a, 1));
    return simde_mm512_insertf32x8(simde_mm512_castps256_ps512(lo), hi, 1);
}
// And one the fp16 GEMM uses (Gemv_avx512.cpp): 16 halves to floats, per 8-lane half.
inline simde__m512 cvtph_ps(__m256i a) {
    const __m256 lo = _mm256_cvtph_ps(_mm256_castsi256_si128(a));
    const __m256 hi = _mm256_cvtph_ps(_mm256_extracti128_si256(a, 1));
    return simde_mm512_insertf32x8(simde_mm512_castps256_ps512(lo), hi, 1);
}
// And two the SSM step's 16-bit state uses (SsmStep_avx512.cpp): floats to
// halves (rounding as given, per 8-lane half) and int32 to int16 by truncation.
inline __m256i cvtps_ph(simde__m512 a, int rounding) {
    alignas(64) float v[16];
    simde_mm512_store_ps(v, a);
    const bool nearest = rounding == (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 lo8 = _mm256_load_ps(v), hi8 = _mm256_load_ps(v + 8);
    const __m128i lo = nearest ? _mm256_cvtps_ph(lo8, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
                               : _mm256_cvtps_ph(lo8, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m128i hi = nearest ? _mm256_cvtps_ph(hi8, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
                               : _mm256_cvtps_ph(hi8, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}
inline simde__m512i cvtepu16_epi32(__m256i a) {
    const __m256i lo = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(a));
    const __m256i hi = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(a, 1));
    return simde_mm512_inserti64x4(simde_mm512_castsi256_si512(lo), hi, 1);
}
inline __m256i cvtepi32_epi16(simde__m512i a) {
    alignas(64) int32_t v[16];
    alignas(32) int16_t r[16];
    simde_mm512_store_si512(v, a);
    for (int i = 0; i < 16; ++i) r[i] = (int16_t)v[i];
    return _mm256_load_si256((const __m256i*)r);
}
}  // namespace bimamba_test_simde

#define _mm512_cvtepu8_epi16(a) bimamba_test_simde::cvtepu8_epi16(a)
#define _mm512_cvtepi16_epi32(a) bimamba_test_simde::cvtepi16_epi32(a)
#define _mm512_cvtepi32_ps(a) bimamba_test_simde::cvtepi32_ps(a)
#define _mm512_cvtph_ps(a) bimamba_test_simde::cvtph_ps(a)
#define _mm512_cvtps_ph(a, r) bimamba_test_simde::cvtps_ph(a, r)
#define _mm512_cvtepi32_epi16(a) bimamba_test_simde::cvtepi32_epi16(a)
#define _mm512_cvtepu16_epi32(a) bimamba_test_simde::cvtepu16_epi32(a)

#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
