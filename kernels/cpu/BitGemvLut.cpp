#include "kernels/cpu/BitGemvLut.h"

#include <algorithm>
#include <string>

#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/ThreadPool.h"

namespace bimamba::kernels {

Lut3Matrix repack_lut3(const uint8_t* signs, int rows, int cols) {
    Lut3Matrix m;
    m.rows = rows;
    m.cols = cols;
    m.tiles = (rows + 7) / 8;
    m.quads = (m.tiles + 3) / 4;
    m.groups = (cols + 2) / 3;
    m.data.assign((size_t)m.quads * m.groups * 12 + 4, 0);
    const size_t stride = bit_row_stride(cols);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            if ((signs[r * stride + c / 8] >> (c % 8)) & 1) {
                const int t = r / 8, g = c / 3, bit = 3 * (r % 8) + c % 3;
                m.data[((size_t)(t / 4) * m.groups + g) * 12 + 3 * (t % 4) + bit / 8] |= (uint8_t)(1u << (bit % 8));
            }
    return m;
}

void build_lut3_tables(const float* x, int cols, float* tables) {
    const int groups = (cols + 2) / 3;
    for (int g = 0; g < groups; ++g) {
        float v[3];
        for (int j = 0; j < 3; ++j) v[j] = 3 * g + j < cols ? x[3 * g + j] : 0.0f;
        for (int idx = 0; idx < 8; ++idx)
            tables[8 * g + idx] = ((idx & 1) ? -v[0] : v[0]) + ((idx & 2) ? -v[1] : v[1]) + ((idx & 4) ? -v[2] : v[2]);
    }
}

void bitgemv_lut3_ref(const Lut3Matrix& m, const float* x, float* y) {
    for (int r = 0; r < m.rows; ++r) {
        float acc = 0;
        for (int c = 0; c < m.cols; ++c) acc += m.neg(r, c) ? -x[c] : x[c];
        y[r] = acc;
    }
}

void bitgemv_lut3(const CpuContext& cx, const Lut3Matrix& m, const float* x, float* y, float* tables) {
    if (!cx.avx2()) return bitgemv_lut3_ref(m, x, y);
    build_lut3_tables(x, m.cols, tables);
    if ((long long)m.rows * m.cols < (1 << 16)) return bitgemv_lut3_quads_avx2(m, tables, 0, m.quads, y);
    cx.threads().parallel_for(m.quads, 1, [&](int a, int b) { bitgemv_lut3_quads_avx2(m, tables, a, b, y); });
}

void bitgemm_lut3(const CpuContext& cx, const Lut3Matrix& m, const float* x, size_t xstride, int T, float* y,
                  size_t ystride, float* tables) {
    if (T <= 0) return;
    if (!cx.avx2()) {
        for (int j = 0; j < T; ++j) bitgemv_lut3_ref(m, x + j * xstride, y + j * ystride);
        return;
    }
    const size_t ts = lut3_table_floats(m.cols);
    for (int j = 0; j < T; ++j) build_lut3_tables(x + j * xstride, m.cols, tables + j * ts);
    if ((long long)m.rows * m.cols < (1 << 16))
        return bitgemm_lut3_quads_avx2(m, tables, ts, T, 0, m.quads, y, ystride);
    cx.threads().parallel_for(m.quads, 1,
                              [&](int a, int b) { bitgemm_lut3_quads_avx2(m, tables, ts, T, a, b, y, ystride); });
}

}  // namespace bimamba::kernels
