#include "kernels/cpu/BitGemvI16.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/cpu/Gemv.h"
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

size_t i16lut_scratch_bytes(int cols) {
    const size_t pairs = ((cols + 3) / 4 + 1) / 2, chunks = (pairs * 8 + kI16ChunkCols - 1) / kI16ChunkCols;
    return pairs * 8 * 2 + pairs * 2 * 32 + chunks * 4 + pairs * 2 * 32 + 64;
}

namespace {
// Byte offset of the word tables: after q, the byte-plane tables and the scales.
size_t word_table_offset(int cols) {
    const size_t pairs = ((cols + 3) / 4 + 1) / 2, chunks = (pairs * 8 + kI16ChunkCols - 1) / kI16ChunkCols;
    return pairs * 16 + pairs * 64 + chunks * 4;
}
}  // namespace

const int16_t* i16lut_word_tables(const uint8_t* scratch, int cols) {
    return reinterpret_cast<const int16_t*>(scratch + word_table_offset(cols));
}

namespace {
// Σ|x| over chunk [c0, c0+32) as an upper bound within float rounding (four
// partial sums for speed; the 1.0001 and 32735 < 32767 - 16 leave the margin:
// each of the 32 rounded q is at most 0.5 above its exact value).
float chunk_scale(const float* x, int c0, int cols) {
    const int e = std::min(cols, c0 + kI16ChunkCols);
    float a[4] = {0, 0, 0, 0};
    int c = c0;
    for (; c + 4 <= e; c += 4)
        for (int j = 0; j < 4; ++j) a[j] += std::fabs(x[c + j]);
    for (; c < e; ++c) a[0] += std::fabs(x[c]);
    const float t = (a[0] + a[1]) + (a[2] + a[3]);
    return t > 0 ? t * (1.0f / 32735.0f) * 1.0001f : 1.0f;
}
}  // namespace

float i16lut_prepare(const float* x, int cols, uint8_t* scratch) {
    const int groups = (cols + 3) / 4, pairs = (groups + 1) / 2;
    const int chunks = (pairs * 8 + kI16ChunkCols - 1) / kI16ChunkCols;
    int16_t* q = reinterpret_cast<int16_t*>(scratch);
    uint8_t* tab = scratch + (size_t)pairs * 16;
    float* scales = reinterpret_cast<float*>(tab + (size_t)pairs * 64);
    int16_t* words = reinterpret_cast<int16_t*>(scratch + word_table_offset(cols));
    float inv[4096 / kI16ChunkCols + 1];
    std::vector<float> inv_big;
    float* iv = chunks <= (int)(sizeof(inv) / sizeof(float)) ? inv : (inv_big.resize(chunks), inv_big.data());
    float smax = 0;
    for (int k = 0; k < chunks; ++k) {
        float sk = chunk_scale(x, kI16ChunkCols * k, cols);
        std::memcpy(scales + k, &sk, 4);
        iv[k] = 1.0f / sk;
        smax = std::max(smax, sk);
    }
    if (use_avx2()) {
        i16lut_quantize_avx2(x, cols, iv, q, pairs * 8);
        i16lut_tables_avx2(q, 2 * pairs, tab, words);
        return smax;
    }
    for (int c = 0; c < pairs * 8; ++c) q[c] = c < cols ? (int16_t)std::lrint(x[c] * iv[c / kI16ChunkCols]) : 0;
    for (int g = 0; g < 2 * pairs; ++g) {
        const int16_t* v = q + 4 * g;
        for (int i = 0; i < 16; ++i) {
            int t = 0;
            for (int j = 0; j < 4; ++j) t += ((i >> j) & 1) ? -v[j] : v[j];
            tab[32 * g + i] = (uint8_t)(t & 0xff);
            tab[32 * g + 16 + i] = (uint8_t)((t >> 8) & 0xff);
            const int16_t w = (int16_t)t;
            std::memcpy(words + 16 * g + i, &w, 2);
        }
    }
    return smax;
}

void bitgemv_i16lut_ref(const I16LutMatrix& m, const float* x, float* y) {
    std::vector<uint8_t> scratch(i16lut_scratch_bytes(m.cols));
    i16lut_prepare(x, m.cols, scratch.data());
    const int16_t* q = reinterpret_cast<const int16_t*>(scratch.data());
    const uint8_t* sc = scratch.data() + (size_t)m.pairs * 16 + (size_t)m.pairs * 64;
    for (int r = 0; r < m.rows; ++r) {
        float acc = 0;
        for (int c0 = 0; c0 < m.cols; c0 += kI16ChunkCols) {
            int sum = 0;
            for (int c = c0; c < std::min(m.cols, c0 + kI16ChunkCols); ++c) sum += m.neg(r, c) ? -q[c] : q[c];
            float sk;
            std::memcpy(&sk, sc + 4 * (c0 / kI16ChunkCols), 4);
            acc = std::fma((float)sum, sk, acc);
        }
        y[r] = acc;
    }
}

void bitgemv_i16lut(const I16LutMatrix& m, const float* x, float* y, uint8_t* scratch) {
    if (!use_avx2()) return bitgemv_i16lut_ref(m, x, y);
    i16lut_prepare(x, m.cols, scratch);
    auto f = use_avx512() ? bitgemv_i16lut_blocks_avx512 : bitgemv_i16lut_blocks_avx2;
    if ((long long)m.rows * m.cols < (1 << 16)) return f(m, scratch, 0, m.blocks, y);
    ThreadPool::global().parallel_for(m.blocks, 1, [&](int a, int b) { f(m, scratch, a, b, y); });
}

}  // namespace bimamba::kernels
