// AVX-512 path of the int8-row GEMV (compiled with -mavx512f/bw/vl/dq; called
// only when the CPU has them): the AVX2 path at twice the width. Per row and
// 32 columns one sign-extending load (vpmovsxbw zmm, m256), one vpmaddwd, one
// add; four rows per pass share each load of the activations, and the next
// tile of four rows is prefetched in software meanwhile, as the fp16 GEMV
// does: without it (one row per pass or four) the Xeon read the head from its
// L3 at ~6 GB/s per core, with it at ~11 (head 4.13 -> 2.30 ms per 780M token
// on 2 threads). The prefetch goes to L2 (T1): with T0 the Zen 4 development VM
// read the 780M head from DRAM at ~20 GB/s on 2 threads, with T1 at 37-44 (head
// 2.16 -> 1.2-1.7 ms per token in the engine). The columns short of 32 (none at
// the paper's widths) in scalar code.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/Q8Gemv.h"

namespace bimamba::kernels {

namespace {
// A chunk of 512 columns sums to less than 2^31 in total (512·127·32767), so
// its lanes add in int32; the chunks then add in int64.
constexpr int kChunk = 512;

inline int32_t hsum_epi32(__m512i v) {
    const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

template <int R>
inline void rows_avx512(const int8_t* p, const float* scale, int cols, const int16_t* xq, float sx, float* y) {
    int64_t dot[R] = {};
    const int full32 = cols & ~31;
    int c = 0;
    while (c < full32) {
        const int end = std::min(full32, c + kChunk);
        __m512i a[R];
        for (int i = 0; i < R; ++i) a[i] = _mm512_setzero_si512();
        for (; c < end; c += 32) {
            if ((c & 63) == 0)  // the next tile of rows, a cache line per row (as the fp16 GEMV)
                for (int i = 0; i < R; ++i) _mm_prefetch((const char*)(p + (size_t)(R + i) * cols + c), _MM_HINT_T1);
            const __m512i x = _mm512_loadu_si512((const void*)(xq + c));
            for (int i = 0; i < R; ++i) {
                const __m512i w = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)(p + (size_t)i * cols + c)));
                a[i] = _mm512_add_epi32(a[i], _mm512_madd_epi16(w, x));
            }
        }
        for (int i = 0; i < R; ++i) dot[i] += hsum_epi32(a[i]);
    }
    for (int i = 0; i < R; ++i) {
        const int8_t* row = p + (size_t)i * cols;
        for (int k = c; k < cols; ++k) dot[i] += (int32_t)row[k] * xq[k];
        y[i] = q8_output(dot[i], scale[i], sx);
    }
}
}  // namespace

void q8gemv_rows_avx512(const int8_t* q, const float* scale, int r0, int r1, int cols, const int16_t* xq, float sx,
                        float* y) {
    int r = r0;
    for (; r + 4 <= r1; r += 4) rows_avx512<4>(q + (size_t)r * cols, scale + r, cols, xq, sx, y + r);
    for (; r < r1; ++r) rows_avx512<1>(q + (size_t)r * cols, scale + r, cols, xq, sx, y + r);
}

}  // namespace bimamba::kernels
