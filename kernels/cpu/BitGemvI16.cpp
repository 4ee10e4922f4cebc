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
    const size_t pairs = ((cols + 3) / 4 + 1) / 2;
    return pairs * 8 * 2 + pairs * 2 * 32 + 64;
}

namespace {
// Scale: the largest Σ|x| over a chunk of 32 columns must fit int16 after rounding.
// (Four partial sums per chunk for speed; the result only has to be an upper
// bound within float rounding, hence the margin in 32735 < 32767 - 16.)
float quant_scale(const float* x, int cols) {
    float worst = 0;
    for (int c0 = 0; c0 < cols; c0 += 32) {
        const int e = std::min(cols, c0 + 32);
        float a[4] = {0, 0, 0, 0};
        int c = c0;
        for (; c + 4 <= e; c += 4)
            for (int j = 0; j < 4; ++j) a[j] += std::fabs(x[c + j]);
        for (; c < e; ++c) a[0] += std::fabs(x[c]);
        worst = std::max(worst, (a[0] + a[1]) + (a[2] + a[3]));
    }
    return worst > 0 ? worst * (1.0f / 32735.0f) * 1.0001f : 1.0f;
}
}  // namespace

float i16lut_prepare(const float* x, int cols, uint8_t* scratch) {
    const int groups = (cols + 3) / 4, pairs = (groups + 1) / 2;
    const float s = quant_scale(x, cols), inv = 1.0f / s;
    int16_t* q = reinterpret_cast<int16_t*>(scratch);
    uint8_t* tab = scratch + (size_t)pairs * 16;
    if (cpu_has_avx2() && std::string(active_isa()) == "avx2") {
        i16lut_quantize_avx2(x, cols, inv, q, pairs * 8);
        i16lut_tables_avx2(q, 2 * pairs, tab);
        return s;
    }
    for (int c = 0; c < pairs * 8; ++c) q[c] = c < cols ? (int16_t)std::lrint(x[c] * inv) : 0;
    for (int g = 0; g < 2 * pairs; ++g) {
        const int16_t* v = q + 4 * g;
        for (int i = 0; i < 16; ++i) {
            int t = 0;
            for (int j = 0; j < 4; ++j) t += ((i >> j) & 1) ? -v[j] : v[j];
            tab[32 * g + i] = (uint8_t)(t & 0xff);
            tab[32 * g + 16 + i] = (uint8_t)((t >> 8) & 0xff);
        }
    }
    return s;
}

void bitgemv_i16lut_ref(const I16LutMatrix& m, const float* x, float* y) {
    std::vector<uint8_t> scratch(i16lut_scratch_bytes(m.cols));
    const float s = i16lut_prepare(x, m.cols, scratch.data());
    const int16_t* q = reinterpret_cast<const int16_t*>(scratch.data());
    for (int r = 0; r < m.rows; ++r) {
        long long acc = 0;
        for (int c = 0; c < m.cols; ++c) acc += m.neg(r, c) ? -q[c] : q[c];
        y[r] = (float)acc * s;
    }
}

void bitgemv_i16lut(const I16LutMatrix& m, const float* x, float* y, uint8_t* scratch) {
    if (!cpu_has_avx2() || std::string(active_isa()) != "avx2") return bitgemv_i16lut_ref(m, x, y);
    const float s = i16lut_prepare(x, m.cols, scratch);
    if ((long long)m.rows * m.cols < (1 << 16)) return bitgemv_i16lut_blocks_avx2(m, scratch, s, 0, m.blocks, y);
    ThreadPool::global().parallel_for(m.blocks, 1, [&](int a, int b) { bitgemv_i16lut_blocks_avx2(m, scratch, s, a, b, y); });
}

}  // namespace bimamba::kernels
