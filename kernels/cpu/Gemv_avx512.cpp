// AVX-512 path of the fp16 GEMV and GEMM (compiled with -mavx512f/bw/vl/dq and
// F16C; called only when the CPU has AVX-512). The AVX2 path at twice the
// width: 16 halves converted per VCVTPH2PS, 16-lane FMA chains. Prefill is
// compute-bound (each weight is used for every token of the block), so on a
// CPU with two 512-bit FMA units this doubles the multiply-adds per cycle;
// decode (one token) is bound by memory either way.
//
// The tiling is F16GemmTiles.h's (4 rows × 4 tokens here, 8 rows for one token). The GEMV is the
// GEMM with one token, so every output is accumulated in one order (a 16-lane
// chain over the columns, the fixed reduction below, FMA tails) and batched
// prefill stays bit-identical to token-by-token decoding under this ISA too.
#include <immintrin.h>

#include "kernels/cpu/Avx512Reduce.h"
#include "kernels/cpu/F16GemmTiles.h"
#include "kernels/cpu/Gemv.h"

namespace bimamba::kernels {

namespace {
// The fp16 GEMM's vector traits (F16GemmTiles.h): 16 lanes, tiles of 4 rows ×
// 4 tokens (16 accumulators, 4 x vectors, the converted weights: 21 of the
// 32 zmm registers).
struct Avx512F16 {
    using reg = __m512;
    static constexpr int width = 16, tokens = 4, gemv_rows = 8;
    static reg zero() { return _mm512_setzero_ps(); }
    // x goes through a register: without the empty asm GCC folds each x load
    // into the tile's FMAs as a memory operand, R loads of every x vector
    // where one is enough (20 loads per 16 FMAs). On the Zen 4 development VM
    // one core's GEMM went from 56-78 to 96 GFLOP/s; the Xeon did not change.
    static reg load_x(const float* p) {
        reg v = _mm512_loadu_ps(p);
#if defined(__AVX512F__)  // not in the tests' SIMDe build, where reg is a struct
        asm("" : "+v"(v));
#endif
        return v;
    }
    static reg load_w(const uint16_t* p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
    }
    static reg fma(reg w, reg x, reg a) {
        return _mm512_fmadd_ps(w, x, a);
    }
    // The GEMV's reduction (Avx512Reduce.h): halves added, then the AVX2 path's 8-lane order.
    static float hsum(reg v) {
        return hsum16(v);
    }
    // One cache line of each of 4 consecutive rows (a prefetch past the matrix's end does not
    // fault). Into L2 on AMD, as the AVX2 path (Gemv_avx2.cpp says why: on the Zen 4 VM the fp16
    // decode went 17-18 -> 20-21 tok/s); into L1 on Intel, where L2 measured slower: 16-core
    // Xeon, 2.7B, 2 threads, two alternated pairs, fp16 decode 3.66/3.84 (L2) vs 4.16/4.01 tok/s
    // (L1), batched prompt 20.8/20.7 vs 22.4/21.4. The branch is the same every call.
    static void prefetch_rows(const uint16_t* p, int cols) {
        static const bool l1 = cpu_is_intel();
        if (l1)
            for (int i = 0; i < 4; ++i) _mm_prefetch((const char*)(p + (size_t)i * cols), _MM_HINT_T0);
        else
            for (int i = 0; i < 4; ++i) _mm_prefetch((const char*)(p + (size_t)i * cols), _MM_HINT_T1);
    }
};
}  // namespace

void f16gemm_rows_avx512(const uint16_t* w, int r0, int r1, int cols, const float* x, size_t xstride, int T, float* y,
                         size_t ystride) {
    f16tiles::gemm_rows<Avx512F16>(w, r0, r1, cols, x, xstride, T, y, ystride);
}

void f16gemv_rows_avx512(const uint16_t* w, int r0, int r1, int cols, const float* x, float* y) {
    f16gemm_rows_avx512(w, r0, r1, cols, x, 0, 1, y, 0);
}

}  // namespace bimamba::kernels
