#include "kernels/cpu/BitGemvI16.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/PerThreadInput.h"
#include "kernels/cpu/ThreadPool.h"

namespace bimamba::kernels {

I16LutMatrix repack_i16lut(const uint8_t* signs, int rows, int cols) {
    I16LutMatrix m;
    m.rows = rows;
    m.cols = cols;
    m.blocks = (rows + 31) / 32;
    m.groups = (cols + 3) / 4;
    m.pairs = (m.groups + 1) / 2;
    m.data.assign((size_t)m.blocks * m.pairs * 32, 0);
    const size_t stride = bit_row_stride(cols);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            if ((signs[r * stride + c / 8] >> (c % 8)) & 1) {
                const int g = c / 4, shift = (g % 2) * 4 + c % 4;
                m.data[((size_t)(r / 32) * m.pairs + g / 2) * 32 + r % 32] |= (uint8_t)(1u << shift);
            }
    return m;
}

I16LutScratch::I16LutScratch(int cols) {
    pairs = ((cols + 3) / 4 + 1) / 2;
    chunks = (pairs * 8 + kI16ChunkCols - 1) / kI16ChunkCols;
    chunks_even = chunks + (chunks & 1);
    q = 0;
    tables = q + (size_t)pairs * 8 * 2;
    mult = tables + (size_t)pairs * 64;
    g = mult + (size_t)chunks_even * 2;
    words = g + 4;
    bytes = words + (size_t)pairs * 64 + 64;
}

size_t i16lut_scratch_bytes(int cols) {
    return I16LutScratch(cols).bytes;
}

int i16lut_multiplier_bits(int chunks) {
    int M = 14;  // m_k fits int16, and m_k·(an int16 sum) fits int32
    while (M > 0 && ((int64_t)32767 << M) * std::max(chunks, 1) >= ((int64_t)1 << 31)) --M;
    return M;
}

const int16_t* i16lut_word_tables(const uint8_t* scratch, int cols) {
    return reinterpret_cast<const int16_t*>(scratch + I16LutScratch(cols).words);
}

namespace {
// Σ|x| over chunk [c0, c0+32) / 32735 as an upper bound within float rounding
// (four partial sums for speed; the 1.0001 and 32735 < 32767 - 16 leave the
// margin: each of the 32 rounded q is at most 0.5 above its exact value, and
// s_k = G·m_k is at least this up to float rounding). 0 for an all-zero chunk.
float chunk_scale(const float* x, int c0, int cols) {
    const int e = std::min(cols, c0 + kI16ChunkCols);
    float a[4] = {0, 0, 0, 0};
    int c = c0;
    for (; c + 4 <= e; c += 4)
        for (int j = 0; j < 4; ++j) a[j] += std::fabs(x[c + j]);
    for (; c < e; ++c) a[0] += std::fabs(x[c]);
    const float t = (a[0] + a[1]) + (a[2] + a[3]);
    return t * (1.0f / 32735.0f) * 1.0001f;
}
}  // namespace

float i16lut_prepare(const CpuContext& cx, const float* x, int cols, uint8_t* scratch) {
    const I16LutScratch L(cols);
    int16_t* q = reinterpret_cast<int16_t*>(scratch + L.q);
    uint8_t* tab = scratch + L.tables;
    int16_t* words = reinterpret_cast<int16_t*>(scratch + L.words);
    float raw[8192 / kI16ChunkCols], inv[8192 / kI16ChunkCols];  // on the stack up to 8192 columns
    std::vector<float> big;
    float* sk = raw;
    float* iv = inv;
    if (L.chunks > (int)(sizeof(raw) / sizeof(float))) {
        big.resize(2 * (size_t)L.chunks);
        sk = big.data();
        iv = big.data() + L.chunks;
    }
    int k0 = 0;  // chunks whose scale is computed
    if (cx.avx2()) {
        k0 = cols / kI16ChunkCols;  // the full chunks
        i16lut_chunk_scales_avx2(x, k0, sk);
    }
    for (int k = k0; k < L.chunks; ++k) sk[k] = chunk_scale(x, kI16ChunkCols * k, cols);
    float S = 0;
    bool nan = false;  // a NaN input: every output NaN, as in a float product (the max would drop it)
    for (int k = 0; k < L.chunks; ++k) {
        S = std::max(S, sk[k]);
        nan |= sk[k] != sk[k];
    }
    // At least 2^-100, so that G = S / 2^M and every 1 / (G·m_k) stay normal
    // floats: below it (Σ|x| of a chunk under ~1e-26, all zero included) the
    // inputs quantize to 0 and y to 0, on every ISA alike.
    S = std::max(S, 0x1p-100f);
    const int M = i16lut_multiplier_bits(L.chunks);
    const float G = nan ? std::numeric_limits<float>::quiet_NaN() : std::ldexp(S, -M);  // exact: a power of two
    int k1 = 0;  // chunks whose multiplier is set
    if (cx.avx2()) {
        k1 = L.chunks & ~3;
        i16lut_multipliers_avx2(sk, k1, G, M, scratch + L.mult, iv);
    }
    for (int k = k1; k < L.chunks_even; ++k) {
        int m = 0;
        if (k < L.chunks) {
            const double r = (double)sk[k] / G;  // NaN (a NaN input) gives 1: no conversion of NaN
            m = r >= 1 ? (r < (1 << M) ? (int)std::ceil(r) : 1 << M) : 1;
            iv[k] = 1.0f / (G * (float)m);
        }
        const int16_t m16 = (int16_t)m;
        std::memcpy(scratch + L.mult + 2 * (size_t)k, &m16, 2);
    }
    std::memcpy(scratch + L.g, &G, 4);
    if (cx.avx2()) {
        i16lut_quantize_avx2(x, cols, iv, q, L.pairs * 8);
        if (cx.avx512())
            i16lut_word_tables_avx512(q, L.pairs, words);  // its kernel reads no byte planes
        else
            i16lut_tables_avx2(q, 2 * L.pairs, tab, words);
        return G;
    }
    for (int c = 0; c < L.pairs * 8; ++c) q[c] = c < cols ? (int16_t)std::lrint(x[c] * iv[c / kI16ChunkCols]) : 0;
    for (int g = 0; g < 2 * L.pairs; ++g) {
        const int16_t* v = q + 4 * g;
        for (int i = 0; i < 16; ++i) {
            int t = 0;
            for (int j = 0; j < 4; ++j) t += ((i >> j) & 1) ? -v[j] : v[j];
            tab[32 * g + i] = (uint8_t)(t & 0xff);
            tab[32 * g + 16 + i] = (uint8_t)((t >> 8) & 0xff);
            const int16_t w = (int16_t)t;
            std::memcpy(words + 16 * (g ^ 1) + i, &w, 2);
        }
    }
    return G;
}

void bitgemv_i16lut_ref(const I16LutMatrix& m, const float* x, float* y) {
    std::vector<uint8_t> scratch(i16lut_scratch_bytes(m.cols));
    const float G = i16lut_prepare(CpuContext{}, x, m.cols, scratch.data());
    const I16LutScratch L(m.cols);
    const int16_t* q = reinterpret_cast<const int16_t*>(scratch.data() + L.q);
    for (int r = 0; r < m.rows; ++r) {
        int64_t total = 0;
        for (int c0 = 0, k = 0; c0 < m.cols; c0 += kI16ChunkCols, ++k) {
            int sum = 0;
            for (int c = c0; c < std::min(m.cols, c0 + kI16ChunkCols); ++c) sum += m.neg(r, c) ? -q[c] : q[c];
            int16_t mk;
            std::memcpy(&mk, scratch.data() + L.mult + 2 * (size_t)k, 2);
            total += (int64_t)mk * sum;
        }
        y[r] = (float)(int32_t)total * G;  // |total| < 2^31 by the choice of M
    }
}

// From this width on each thread builds its own tables (bitgemv_i16lut); the
// 780M in_proj (1536 columns) showed no gain in the engine. (The engine's
// decode now calls bitgemv_i16lut_in_pool, where each thread does so at any
// width, since it makes the input too.)
constexpr int kOwnTablesCols = 3072;

// The pool's grain where each thread prepares its own input. Under AVX-512,
// whole groups of kI16WideBlocks blocks per chunk, not the pool's 8 chunks of
// 6 blocks (4 + 1 + 1) at 780M on 2 threads: 0.90 of the old time against 0.93
// with the L2 prefetch (BitGemvI16_avx512.cpp), 40 reps. Only where every
// thread still gets its 4 chunks: the 780M out_proj has 48 blocks, 12 groups
// for 16 threads would idle 4.
static int own_input_grain(const CpuContext& cx, const I16LutMatrix& m) {
    return cx.avx512() && m.cols >= kI16WideTableCols
               ? ThreadPool::whole_groups_grain(m.blocks, kI16WideBlocks, cx.thread_count())
               : 1;
}

// Whether a GEMV of m stays on the calling thread: too small for a hand-off, or a pool of one.
static bool on_calling_thread(const CpuContext& cx, const I16LutMatrix& m) {
    return (long long)m.rows * m.cols < (1 << 16) || cx.thread_count() == 1;
}

void bitgemv_i16lut(const CpuContext& cx, const I16LutMatrix& m, const float* x, float* y, uint8_t* scratch) {
    if (!cx.avx2()) return bitgemv_i16lut_ref(m, x, y);
    auto f = cx.avx512() ? bitgemv_i16lut_blocks_avx512 : bitgemv_i16lut_blocks_avx2;
    if (on_calling_thread(cx, m)) {
        i16lut_prepare(cx, x, m.cols, scratch);
        return f(m, scratch, 0, m.blocks, y);
    }
    if (m.cols < kOwnTablesCols) {
        i16lut_prepare(cx, x, m.cols, scratch);
        cx.threads().parallel_for(m.blocks, 1, [&](int a, int b) { f(m, scratch, a, b, y); });
        return;
    }
    // Wide matrices: every thread prepares the input and tables itself (PerThreadInput.h).
    parallel_for_own_input(
        cx.threads(), m.blocks, own_input_grain(cx, m), scratch, i16lut_scratch_bytes(m.cols),
        [&](uint8_t* s) { i16lut_prepare(cx, x, m.cols, s); }, [&](uint8_t* s, int a, int b) { f(m, s, a, b, y); });
}

size_t i16lut_in_pool_scratch_bytes(int cols) {
    return 8 * (size_t)cols + i16lut_scratch_bytes(cols);
}

void bitgemv_i16lut_in_pool(const CpuContext& cx, const I16LutMatrix& m, const I16LutInput& input,
                            const I16LutRowsDone& rows_done, float* y, uint8_t* scratch) {
    const size_t xbytes = 4 * (size_t)m.cols;
    auto finish = [&](float offset, int r0, int r1) {
        for (int r = r0; r < r1; ++r) y[r] += offset;
        if (rows_done) rows_done(y, r0, r1);
    };
    if (!cx.avx2() || on_calling_thread(cx, m)) {
        float* x = reinterpret_cast<float*>(scratch + xbytes);
        const float offset = input(reinterpret_cast<float*>(scratch), x);
        bitgemv_i16lut(cx, m, x, y, scratch + 2 * xbytes);
        return finish(offset, 0, m.rows);
    }
    auto f = cx.avx512() ? bitgemv_i16lut_blocks_avx512 : bitgemv_i16lut_blocks_avx2;
    // The offset this thread's input returned, for its chunks of this call
    // (parallel_for_own_input prepares a thread's input before its first chunk).
    thread_local float offset = 0;
    parallel_for_own_input(
        cx.threads(), m.blocks, own_input_grain(cx, m), scratch, i16lut_in_pool_scratch_bytes(m.cols),
        [&](uint8_t* s) {
            float* x = reinterpret_cast<float*>(s + xbytes);
            offset = input(reinterpret_cast<float*>(s), x);
            i16lut_prepare(cx, x, m.cols, s + 2 * xbytes);
        },
        [&](uint8_t* s, int a, int b) {
            f(m, s + 2 * xbytes, a, b, y);
            finish(offset, 32 * a, std::min(m.rows, 32 * b));
        });
}

void bitgemm_i16lut(const CpuContext& cx, const I16LutMatrix& m, const float* x, size_t xstride, int T, float* y,
                    size_t ystride, uint8_t* scratch, size_t sstride) {
    if (T <= 0) return;
    if (!cx.avx2()) {
        for (int j = 0; j < T; ++j) bitgemv_i16lut_ref(m, x + j * xstride, y + j * ystride);
        return;
    }
    auto prepare = [&](int a, int b) {
        for (int j = a; j < b; ++j) i16lut_prepare(cx, x + j * xstride, m.cols, scratch + j * sstride);
    };
    auto f = cx.avx512() ? bitgemv_i16lut_blocks_avx512 : bitgemv_i16lut_blocks_avx2;
    auto blocks = [&](int a, int b) {
        for (int blk = a; blk < b; ++blk)
            for (int j = 0; j < T; ++j) f(m, scratch + j * sstride, blk, blk + 1, y + j * ystride);
    };
    if ((long long)m.rows * m.cols * T < (1 << 16)) {
        prepare(0, T);
        return blocks(0, m.blocks);
    }
    cx.threads().parallel_for(T, 1, prepare);
    cx.threads().parallel_for(m.blocks, 1, blocks);
}

}  // namespace bimamba::kernels
