// AVX-512 path of the int8-row GEMV (compiled with -mavx512f/bw/vl/dq; called
// only when the CPU has them): the AVX2 path at twice the width. Per 32
// columns one sign-extending load (vpmovsxbw zmm, m256), one vpmaddwd, one
// add; one row at a time (one sequential stream per thread, as the AVX2 path
// explains); the columns short of 32 (none at the paper's widths) in scalar code.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/Q8Gemv.h"

namespace bimamba::kernels {

namespace {
// A lane adds one pair per 32 columns, |pair| < 2^23.1: 64 iterations stay below 2^31.
constexpr int kChunk = 2048;

// Once per row and chunk: the 16 lanes summed in int64 (stored and added: not in the loop).
inline int64_t hsum_epi32_wide(__m512i v) {
    alignas(64) int32_t t[16];
    _mm512_store_si512((void*)t, v);
    int64_t s = 0;
    for (int32_t e : t) s += e;
    return s;
}

inline __m512i madd32(const int8_t* w, const int16_t* x) {
    return _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)w)),
                             _mm512_loadu_si512((const void*)x));
}

inline int64_t row_dot(const int8_t* row, int cols, const int16_t* xq) {
    int64_t dot = 0;
    const int full32 = cols & ~31;
    int c = 0;
    while (c < full32) {
        const int end = std::min(full32, c + kChunk);
        __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
        for (; c + 64 <= end; c += 64) {
            a = _mm512_add_epi32(a, madd32(row + c, xq + c));
            b = _mm512_add_epi32(b, madd32(row + c + 32, xq + c + 32));
        }
        if (c < end) a = _mm512_add_epi32(a, madd32(row + c, xq + c)), c += 32;
        dot += hsum_epi32_wide(a) + hsum_epi32_wide(b);
    }
    for (; c < cols; ++c) dot += (int32_t)row[c] * xq[c];
    return dot;
}
}  // namespace

void q8gemv_rows_avx512(const int8_t* q, const float* scale, int r0, int r1, int cols, const int16_t* xq, float sx,
                        float* y) {
    for (int r = r0; r < r1; ++r) y[r] = q8_output(row_dot(q + (size_t)r * cols, cols, xq), scale[r], sx);
}

}  // namespace bimamba::kernels
