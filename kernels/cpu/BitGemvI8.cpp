// Int8 lookup-table ±1 GEMV: repacking, input preparation, the reference and
// the dispatcher (BitGemvI8.h). The SIMD kernel is in BitGemvI8_avx512vnni.cpp.
#include "kernels/cpu/BitGemvI8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/PerThreadInput.h"
#include "kernels/cpu/ThreadPool.h"

namespace bimamba::kernels {

I8LutMatrix repack_i8lut(const uint8_t* signs, int rows, int cols) {
    if (cols > kI8MaxCols)
        throw std::invalid_argument("i8lut: " + std::to_string(cols) + " columns, at most " +
                                    std::to_string(kI8MaxCols));
    I8LutMatrix m;
    m.rows = rows;
    m.cols = cols;
    m.blocks = (rows + kI8BlockRows - 1) / kI8BlockRows;
    m.chunks = (cols + kI8ChunkCols - 1) / kI8ChunkCols;
    m.data.assign((size_t)m.blocks * m.chunks * 64, 0);
    const size_t stride = bit_row_stride(cols);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            if ((signs[r * stride + c / 8] >> (c % 8)) & 1) {
                const int k = c / kI8ChunkCols, g = (c % kI8ChunkCols) / 4;
                const size_t at = ((size_t)(r / kI8BlockRows) * m.chunks + k) * 64 + 4 * (r % kI8BlockRows) + g % 4;
                m.data[at] |= (uint8_t)(1u << ((g / 4) * 4 + c % 4));
            }
    return m;
}

I8LutScratch::I8LutScratch(int cols) {
    chunks = (cols + kI8ChunkCols - 1) / kI8ChunkCols;
    tables = 0;
    mult = tables + (size_t)chunks * 128;
    g = mult + ((size_t)chunks + 3) / 4 * 4;
    q = g + 4;
    bytes = q + (size_t)chunks * kI8ChunkCols;
}

size_t i8lut_scratch_bytes(int cols) {
    return I8LutScratch(cols).bytes;
}

bool i8lut_simd(const CpuContext& cx) {
    return cx.avx512() && cpu_has_avx512_vbmi_vnni();
}

void i8lut_tables_ref(const int8_t* q, int groups, int8_t* tables) {
    for (int g = 0; g < groups; ++g)
        for (int i = 0; i < 16; ++i) {
            int s = 0;
            for (int j = 0; j < 4; ++j) s += (i >> j & 1) ? -q[4 * g + j] : q[4 * g + j];
            tables[16 * g + i] = (int8_t)s;
        }
}

float i8lut_prepare(const CpuContext& cx, const float* x, int cols, uint8_t* scratch) {
    const I8LutScratch L(cols);
    uint8_t* mult = scratch + L.mult;
    int8_t* q = reinterpret_cast<int8_t*>(scratch + L.q);
    int8_t* tables = reinterpret_cast<int8_t*>(scratch + L.tables);
    float G;
    if (i8lut_simd(cx)) {
        G = i8lut_quantize_avx2(x, cols, mult, q);
        i8lut_tables_avx512(q, 8 * L.chunks, tables);
    } else {
        // n_k: the chunk's largest group Σ|x|, as (|x0| + |x1|) + (|x2| + |x3|), / 125.
        float need[kI8MaxCols / kI8ChunkCols];
        float S = 0x1p-100f;
        bool nan = false;
        auto ax = [&](int c) { return c < cols ? std::fabs(x[c]) : 0.0f; };
        for (int k = 0; k < L.chunks; ++k) {
            float a = 0;
            for (int c = kI8ChunkCols * k; c < kI8ChunkCols * (k + 1); c += 4) {
                const float g = (ax(c) + ax(c + 1)) + (ax(c + 2) + ax(c + 3));
                nan |= g != g;
                a = std::max(a, g);
            }
            need[k] = a / 125.0f;
            S = std::max(S, need[k]);
        }
        G = i8lut_unit(S, nan);
        for (int k = 0; k < L.chunks; ++k) {
            const int mk = i8lut_multiplier(need[k], G);
            mult[k] = (uint8_t)mk;
            const float inv = 1.0f / (G * (float)mk);
            for (int c = 0; c < kI8ChunkCols; ++c) {
                const int col = kI8ChunkCols * k + c;
                q[col] = col < cols ? (int8_t)std::clamp((int)std::lrint(x[col] * inv), -127, 127) : 0;
            }
        }
        i8lut_tables_ref(q, 8 * L.chunks, tables);
    }
    std::memcpy(scratch + L.g, &G, 4);
    return G;
}

void bitgemv_i8lut_blocks_ref(const I8LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y) {
    const I8LutScratch L(m.cols);
    const int8_t* tables = reinterpret_cast<const int8_t*>(scratch + L.tables);
    const uint8_t* mult = scratch + L.mult;
    float G;
    std::memcpy(&G, scratch + L.g, 4);
    for (int b = b0; b < b1; ++b)
        for (int r = 0; r < kI8BlockRows && kI8BlockRows * b + r < m.rows; ++r) {
            int32_t acc = 0;
            for (int k = 0; k < m.chunks; ++k) {
                const uint8_t* d = m.bytes() + ((size_t)b * m.chunks + k) * 64 + 4 * r;
                int32_t s = 0;
                for (int g = 0; g < 8; ++g) s += tables[128 * k + 16 * g + ((d[g % 4] >> (g / 4 * 4)) & 15)];
                acc += s * mult[k];
            }
            y[kI8BlockRows * b + r] = (float)acc * G;
        }
}

void bitgemv_i8lut(const CpuContext& cx, const I8LutMatrix& m, const float* x, float* y, uint8_t* scratch) {
    const bool simd = i8lut_simd(cx);
    const auto blocks = simd ? bitgemv_i8lut_blocks_avx512 : bitgemv_i8lut_blocks_ref;
    if ((long long)m.rows * m.cols < (1 << 16) || cx.thread_count() == 1) {
        i8lut_prepare(cx, x, m.cols, scratch);
        return blocks(m, scratch, 0, m.blocks, y);
    }
    auto body = [&](uint8_t* s, int a, int b) { blocks(m, s, a, b, y); };
    // The reference (CPUs without VBMI + VNNI) shares one prepared input.
    if (!simd || m.cols < kI8WideCols) {
        i8lut_prepare(cx, x, m.cols, scratch);
        cx.threads().parallel_for(m.blocks, 1, [&](int a, int b) { body(scratch, a, b); });
        return;
    }
    // Wide matrices: every thread prepares the input itself (PerThreadInput.h),
    // in whole groups of the kernel's blocks where every thread still gets
    // enough of them (the 2.7B out_proj has 160 blocks, 40 groups for 16 threads).
    const int grain = ThreadPool::whole_groups_grain(m.blocks, kI8WideBlocks, cx.thread_count());
    parallel_for_own_input(
        cx.threads(), m.blocks, grain, scratch, i8lut_scratch_bytes(m.cols),
        [&](uint8_t* s) { i8lut_prepare(cx, x, m.cols, s); }, body);
}

void bitgemm_i8lut(const CpuContext& cx, const I8LutMatrix& m, const float* x, size_t xstride, int T, float* y,
                   size_t ystride, uint8_t* scratch) {
    for (int j = 0; j < T; ++j) bitgemv_i8lut(cx, m, x + j * xstride, y + j * ystride, scratch);
}

}  // namespace bimamba::kernels
