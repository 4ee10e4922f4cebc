// AVX2 path of the int8-row GEMV (compiled with -mavx2 -mfma; called only when
// the CPU has them). Per 16 columns: one sign-extending load of the int8
// weights to int16 (vpmovsxbw from memory), one vpmaddwd with the int16
// activations (16 products summed in pairs into 8 int32 lanes), one add. The
// float path it replaces (widen to int32, convert, FMA) spent twice the
// instructions per weight.
//
// One row at a time, so each thread reads its rows as one sequential stream:
// with 8 rows per pass (8 streams of 1536 bytes each at 780M, too short for the
// hardware prefetcher to ramp up on) the same kernel read 18–20 GB/s on two
// EPYC cores; one stream reads 26–29 GB/s (the activations, 3 kB, stay in L1).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/Q8Gemv.h"

namespace bimamba::kernels {

float quantize_vector_i16_avx2(const float* x, int cols, int16_t* xq) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    int c = 0;
    for (; c + 8 <= cols; c += 8) {
        const __m256 v = _mm256_loadu_ps(x + c);
        m = _mm256_max_ps(m, _mm256_and_ps(v, abs_mask));
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_setzero_ps(), _CMP_UNORD_Q));  // Inf, NaN
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    float mx = 0;
    for (float v : lanes) mx = std::max(mx, v);
    bool finite = _mm256_movemask_ps(bad) == 0;
    for (int k = c; k < cols; ++k) {
        finite = finite && std::isfinite(x[k]);
        mx = std::max(mx, std::fabs(x[k]));
    }
    if (!finite) return quantize_vector_i16(x, cols, xq);  // the reference's NaN result
    const float s = mx / 32767.0f;
    if (!(s > 0)) {
        std::fill(xq, xq + cols, (int16_t)0);
        return s;
    }
    // x / s rounded to nearest even (the default MXCSR mode, as nearbyint);
    // |x / s| <= 32767 by construction, so the saturating pack never clips.
    const __m256 vs = _mm256_set1_ps(s);
    for (c = 0; c + 16 <= cols; c += 16) {
        const __m256i a = _mm256_cvtps_epi32(_mm256_div_ps(_mm256_loadu_ps(x + c), vs));
        const __m256i b = _mm256_cvtps_epi32(_mm256_div_ps(_mm256_loadu_ps(x + c + 8), vs));
        _mm256_storeu_si256((__m256i*)(xq + c), _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8));
    }
    for (; c < cols; ++c) xq[c] = (int16_t)_mm_cvtss_si32(_mm_set_ss(x[c] / s));
    return s;
}

namespace {
// A chunk of 512 columns sums to at most 512·127·32767 < 2^31 in total, so its
// lanes can be added in int32; the chunks then add in int64.
constexpr int kChunk = 512;
// Software prefetch this far ahead in the stream (rows are contiguous, so past
// a row's end it fetches the next row), as the i16lut kernel does; into L2 (T1),
// as the AVX-512 path (Q8Gemv_avx512.cpp says why).
constexpr int kPrefetchBytes = 2048;

inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

inline __m256i madd16(const int8_t* w, const int16_t* x) {
    return _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)w)),
                             _mm256_loadu_si256((const __m256i*)x));
}

inline int64_t row_dot(const int8_t* row, int cols, const int16_t* xq) {
    int64_t dot = 0;
    const int full16 = cols & ~15;
    int c = 0;
    while (c < full16) {
        const int end = std::min(full16, c + kChunk);
        __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
        for (; c + 32 <= end; c += 32) {
            if ((c & 63) == 0) _mm_prefetch((const char*)(row + c) + kPrefetchBytes, _MM_HINT_T1);
            a = _mm256_add_epi32(a, madd16(row + c, xq + c));
            b = _mm256_add_epi32(b, madd16(row + c + 16, xq + c + 16));
        }
        if (c < end) a = _mm256_add_epi32(a, madd16(row + c, xq + c)), c += 16;
        dot += hsum_epi32(_mm256_add_epi32(a, b));
    }
    for (; c < cols; ++c) dot += (int32_t)row[c] * xq[c];
    return dot;
}
}  // namespace

void q8gemv_rows_avx2(const int8_t* q, const float* scale, int r0, int r1, int cols, const int16_t* xq, float sx,
                      float* y) {
    for (int r = r0; r < r1; ++r) y[r] = q8_output(row_dot(q + (size_t)r * cols, cols, xq), scale[r], sx);
}

}  // namespace bimamba::kernels
