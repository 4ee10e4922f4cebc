// The ±1 GEMV and the fp16/fp32 GEMVs: scalar references against a float64
// computation from the unpacked matrix, SIMD and threaded paths against the
// scalar reference, on random inputs of odd sizes.
#include <gtest/gtest.h>
#include <sched.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <random>
#include <tuple>
#include <vector>

#include "core/base/Safetensors.h"
#include "kernels/cpu/Activations.h"
#include "kernels/cpu/Bandwidth.h"
#include "kernels/cpu/BitGemvI16.h"
#include "kernels/cpu/BitGemvI8.h"
#include "kernels/cpu/BitGemvLut.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/HugePages.h"
#include "kernels/cpu/Q8Gemv.h"
#include "kernels/cpu/RmsNorm.h"
#include "kernels/cpu/SsmStep.h"
#include "kernels/cpu/ThreadPool.h"

using namespace bimamba;
using namespace bimamba::kernels;

// Kernels on the best ISA and all cores (what an engine gets by default).
const CpuContext& auto_cx() {
    static const CpuContext cx = CpuContext::make();
    return cx;
}

#ifdef BIMAMBA_HAVE_AVX512_EMULATION
namespace bimamba::kernels {
// kernels/cpu/BitGemvI16_avx512.cpp compiled on SIMDe (tests/CMakeLists.txt).
void bitgemv_i16lut_blocks_avx512_emulated(const I16LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y);
void i16lut_word_tables_avx512_emulated(const int16_t* q, int pairs, int16_t* words);
// kernels/cpu/BitGemvI8_avx512vnni.cpp, the same way.
void bitgemv_i8lut_blocks_avx512_emulated(const I8LutMatrix& m, const uint8_t* scratch, int b0, int b1, float* y);
void i8lut_tables_avx512_emulated(const int8_t* q, int groups, int8_t* tables);
// kernels/cpu/Gemv_avx512.cpp and Q8Gemv_avx512.cpp, the same way.
void f16gemv_rows_avx512_emulated(const uint16_t* w, int r0, int r1, int cols, const float* x, float* y);
void f16gemm_rows_avx512_emulated(const uint16_t* w, int r0, int r1, int cols, const float* x, size_t xstride, int T,
                                  float* y, size_t ystride);
void ssm_head_step_avx512_emulated(float* s, int hd, int ns, float dA, float dt, const float* x, const float* B,
                                   const float* C, float D, float* y);
float ssm_head_step16_avx512_emulated(uint16_t* s, StateType t, int hd, int ns, float dA, float dt, const float* x,
                                      const float* B, const float* C, float D, float* y, bool max_abs = true);
void q8gemv_rows_avx512_emulated(const int8_t* q, const float* scale, int r0, int r1, int cols, const int16_t* xq,
                                 float sx, float* y);
}  // namespace bimamba::kernels
#endif

namespace {
const int kSizes[][2] = {{1, 1},  {3, 7},   {5, 8},    {7, 9},      {13, 31},
                         {4, 33}, {37, 64}, {61, 127}, {129, 1531}, {515, 700}};

struct Case {
    int rows, cols;
    std::vector<float> w, x;
    std::vector<uint8_t> packed;
    std::vector<double> want;  // Σ sign(w)·x in float64
    double scale = 0;          // Σ|x|: the size of the rounding error to expect
};

Case make_case(int rows, int cols, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n;
    Case c{rows, cols, std::vector<float>((size_t)rows * cols), std::vector<float>(cols), {}, {}, 0};
    for (auto& v : c.w) v = n(rng);
    for (auto& v : c.x) v = n(rng);
    c.packed.assign(bit_row_stride(cols) * rows + 3, 0xA5);  // guard bytes after the matrix
    pack_signs(c.w.data(), rows, cols, c.packed.data());
    c.want.assign(rows, 0);
    for (int r = 0; r < rows; ++r)
        for (int k = 0; k < cols; ++k) c.want[r] += (c.w[(size_t)r * cols + k] < 0 ? -1.0 : 1.0) * c.x[k];
    for (float v : c.x) c.scale += std::fabs(v);
    return c;
}
}  // namespace

TEST(BitGemv, PackLayoutIsLsbFirstWithOneMeaningMinus) {
    std::vector<float> w = {1, -1, -1, 1, 1, 1, 1, 1, -1, 1};  // 10 columns: 2 bytes
    std::vector<uint8_t> p(2);
    pack_signs(w.data(), 1, 10, p.data());
    EXPECT_EQ(p[0], 0b00000110);
    EXPECT_EQ(p[1], 0b00000001);
}

TEST(BitGemv, ScalarReferenceMatchesFloat64) {
    uint32_t seed = 1;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        std::vector<float> y(c.rows);
        bitgemv_ref(c.packed.data(), c.rows, c.cols, c.x.data(), y.data());
        for (int r = 0; r < c.rows; ++r)
            ASSERT_NEAR(y[r], c.want[r], 1e-5 * c.scale + 1e-6) << c.rows << "x" << c.cols << " row " << r;
    }
}

TEST(BitGemv, Avx2MatchesScalarOnOddSizes) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "CPU has no AVX2/FMA/F16C";
    uint32_t seed = 100;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        std::vector<float> ref(c.rows), got(c.rows, 12345.f);
        bitgemv_ref(c.packed.data(), c.rows, c.cols, c.x.data(), ref.data());
        // A sub-range too: the threaded dispatch hands out row ranges.
        const int r0 = c.rows / 3;
        bitgemv_rows_avx2(c.packed.data(), r0, c.rows, c.cols, c.x.data(), got.data());
        for (int r = 0; r < r0; ++r) ASSERT_EQ(got[r], 12345.f) << "row outside the range was written";
        for (int r = r0; r < c.rows; ++r)
            ASSERT_NEAR(got[r], ref[r], 1e-5 * c.scale + 1e-6) << c.rows << "x" << c.cols << " row " << r;
    }
}

TEST(BitGemv, ThreadedDispatchMatchesScalarForEveryIsaAndThreadCount) {
    for (int threads : {1, 2, 3}) {
        for (const char* isa : {"scalar", "auto"}) {
            const CpuContext cx = CpuContext::make(isa, threads);
            Case c = make_case(1031, 257, 7 + threads);  // large enough to be split across threads
            std::vector<float> ref(c.rows), got(c.rows);
            bitgemv_ref(c.packed.data(), c.rows, c.cols, c.x.data(), ref.data());
            bitgemv(cx, c.packed.data(), c.rows, c.cols, c.x.data(), got.data());
            for (int r = 0; r < c.rows; ++r)
                ASSERT_NEAR(got[r], ref[r], 1e-5 * c.scale) << isa << " threads " << threads;
        }
    }
}

TEST(Gemv, F16AndF32MatchFloat64) {
    uint32_t seed = 300;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        std::vector<uint16_t> w16(c.w.size());
        std::vector<float> w16f(c.w.size());
        for (size_t i = 0; i < c.w.size(); ++i) {
            w16[i] = base::f32_to_f16(c.w[i]);
            w16f[i] = base::f16_to_f32(w16[i]);
        }
        std::vector<double> want32(c.rows, 0), want16(c.rows, 0);
        double scale = 0;
        for (int r = 0; r < c.rows; ++r)
            for (int k = 0; k < c.cols; ++k) {
                want32[r] += (double)c.w[(size_t)r * c.cols + k] * c.x[k];
                want16[r] += (double)w16f[(size_t)r * c.cols + k] * c.x[k];
            }
        for (size_t i = 0; i < c.w.size(); ++i) scale = std::max(scale, (double)std::fabs(c.w[i]));
        scale *= c.scale;
        std::vector<float> y(c.rows);
        auto check = [&](const std::vector<double>& want, const char* what) {
            for (int r = 0; r < c.rows; ++r)
                ASSERT_NEAR(y[r], want[r], 1e-5 * scale + 1e-6)
                    << what << " " << c.rows << "x" << c.cols << " row " << r;
        };
        f32gemv_ref(c.w.data(), c.rows, c.cols, c.x.data(), y.data());
        check(want32, "f32 ref");
        f16gemv_ref(w16.data(), c.rows, c.cols, c.x.data(), y.data());
        check(want16, "f16 ref");
        if (cpu_has_avx2()) {
            f32gemv_rows_avx2(c.w.data(), 0, c.rows, c.cols, c.x.data(), y.data());
            check(want32, "f32 avx2");
            f16gemv_rows_avx2(w16.data(), 0, c.rows, c.cols, c.x.data(), y.data());
            check(want16, "f16 avx2");
        }
        f16gemv(auto_cx(), w16.data(), c.rows, c.cols, c.x.data(), y.data());
        check(want16, "f16 dispatch");
    }
}

// The int8 head: the weight quantizer and the activation quantizer against
// their definitions; the reference GEMV against float64 of the dequantized
// matrix and the float vector, within what the int16 activation steps allow;
// every SIMD path and the threaded dispatch equal to the reference bit for bit
// (the sums are integers, exact on every path).
namespace {
std::vector<float> q8_paths_equal_to_ref(const std::vector<int8_t>& q, const std::vector<float>& scale, int rows,
                                         int cols, const std::vector<float>& x) {
    std::vector<float> ref(rows, -1.f), y(rows);
    q8gemv_ref(q.data(), scale.data(), rows, cols, x.data(), ref.data());
    std::vector<int16_t> xq(cols);
    const float sx = quantize_vector_i16(x.data(), cols, xq.data());
    if (cpu_has_avx2()) {  // the AVX2 quantizer writes the same bytes and scale
        std::vector<int16_t> xq2(cols, 555);
        const float sx2 = quantize_vector_i16_avx2(x.data(), cols, xq2.data());
        EXPECT_TRUE(sx2 == sx || (std::isnan(sx) && std::isnan(sx2))) << sx << " vs " << sx2;
        EXPECT_EQ(xq2, xq) << "AVX2 quantizer, " << cols << " columns";
    }
    auto same = [&](const char* what) {
        for (int r = 0; r < rows; ++r) {
            if (std::isnan(ref[r])) {
                EXPECT_TRUE(std::isnan(y[r])) << what << " row " << r;
            } else {
                EXPECT_EQ(y[r], ref[r]) << what << " " << rows << "x" << cols << " row " << r;
            }
        }
    };
    if (cpu_has_avx2()) {
        std::fill(y.begin(), y.end(), -1.f);
        q8gemv_rows_avx2(q.data(), scale.data(), 0, rows, cols, xq.data(), sx, y.data());
        same("avx2");
    }
    if (cpu_has_avx512()) {
        std::fill(y.begin(), y.end(), -1.f);
        q8gemv_rows_avx512(q.data(), scale.data(), 0, rows, cols, xq.data(), sx, y.data());
        same("avx512");
    }
#ifdef BIMAMBA_HAVE_AVX512_EMULATION
    std::fill(y.begin(), y.end(), -1.f);
    q8gemv_rows_avx512_emulated(q.data(), scale.data(), 0, rows, cols, xq.data(), sx, y.data());
    same("avx512 (emulated)");
#endif
    for (int threads : {1, 2})
        for (const char* isa : {"auto", "scalar"}) {
            std::fill(y.begin(), y.end(), -1.f);
            q8gemv(CpuContext::make(isa, threads), q.data(), scale.data(), rows, cols, x.data(), y.data());
            same(isa);
        }
    return ref;
}
}  // namespace

TEST(Q8Gemv, QuantizersAndEveryPathMatchFloat64) {
    uint32_t seed = 700;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        if (c.rows > 2) std::fill(c.w.begin() + c.cols, c.w.begin() + 2 * c.cols, 0.0f);  // a zero row
        std::vector<int8_t> q(c.w.size());
        std::vector<float> scale(c.rows);
        quantize_rows_q8(c.w.data(), c.rows, c.cols, q.data(), scale.data());

        // The activations: within half a step of x (plus x/sx's float rounding,
        // 32767·2^-24 steps), the largest at ±32767.
        std::vector<int16_t> xq(c.cols);
        const float sx = quantize_vector_i16(c.x.data(), c.cols, xq.data());
        double xmax = 0;
        for (float v : c.x) xmax = std::max(xmax, (double)std::fabs(v));
        ASSERT_NEAR(sx, xmax / 32767, 1e-7 * xmax);
        int xqmax = 0;
        for (int k = 0; k < c.cols; ++k) {
            ASSERT_LE(std::fabs((double)sx * xq[k] - c.x[k]), 0.505 * sx) << k;
            xqmax = std::max(xqmax, std::abs((int)xq[k]));
        }
        ASSERT_EQ(xqmax, 32767);

        std::vector<double> want(c.rows, 0), bound(c.rows, 0);
        for (int r = 0; r < c.rows; ++r) {
            double m = 0, dot = 0, qabs = 0;
            for (int k = 0; k < c.cols; ++k) m = std::max(m, (double)std::fabs(c.w[(size_t)r * c.cols + k]));
            ASSERT_NEAR(scale[r], m / 127, 1e-7 * m) << "row " << r;
            int qmax = 0;
            for (int k = 0; k < c.cols; ++k) {
                const size_t i = (size_t)r * c.cols + k;
                ASSERT_LE(std::abs((int)q[i]), 127);
                qmax = std::max(qmax, std::abs((int)q[i]));
                if (m > 0) {
                    ASSERT_LE(std::fabs((double)scale[r] * q[i] - c.w[i]), 0.5001 * scale[r]) << r << "," << k;
                } else {
                    ASSERT_EQ(q[i], 0);
                }
                dot += (double)q[i] * c.x[k];
                qabs += std::abs((int)q[i]);
            }
            if (m > 0) {
                ASSERT_EQ(qmax, 127) << "row " << r;
            }
            // Float64 of the dequantized matrix times the float x; the int16
            // steps move each product by at most |q|·sx/2, then float rounding.
            want[r] = (double)scale[r] * dot;
            bound[r] = scale[r] * (0.505 * sx * qabs + 1e-6 * 127.0 * c.scale) + 1e-12;
        }
        const std::vector<float> y = q8_paths_equal_to_ref(q, scale, c.rows, c.cols, c.x);
        for (int r = 0; r < c.rows; ++r)
            ASSERT_NEAR(y[r], want[r], bound[r]) << c.rows << "x" << c.cols << " row " << r;
    }
}

// Sums far beyond int32 (every weight ±127, every activation at ±32767, 5000
// columns: |dot| = 2.08e10), so a path that let its int32 lanes overflow
// fails; a zero vector gives zeros, a NaN in x gives NaN rows.
// Several inputs at once (the head of every position of a window): each
// output row equals q8gemv of its own input bit for bit, on every ISA and
// thread count, with strides wider than the rows and sizes off the tiles.
TEST(Q8Gemv, GemmEqualsGemvOfEachInputBitForBit) {
    std::mt19937 rng(91);
    std::normal_distribution<float> nd;
    for (auto [rows, cols, T] : {std::array<int, 3>{37, 40, 3}, {1000, 256, 5}, {4099, 768, 7}, {300, 2560, 2}}) {
        std::vector<float> w((size_t)rows * cols);
        for (auto& v : w) v = nd(rng);
        std::vector<int8_t> q(w.size());
        std::vector<float> scale(rows);
        quantize_rows_q8(w.data(), rows, cols, q.data(), scale.data());
        const size_t xs = cols + 3, ys = rows + 5;
        std::vector<float> x(xs * T);
        for (auto& v : x) v = nd(rng) * 3;
        x[xs + 1] = 40.0f;  // an outlier in one input only: each input has its own scale
        for (int threads : {1, 2, 3})
            for (const char* isa : {"auto", "avx2", "scalar"}) {
                if (std::string(isa) == "avx2" && !cpu_has_avx2()) continue;
                const CpuContext cx = CpuContext::make(isa, threads);
                std::vector<float> y(ys * T, -7.f), one(rows);
                q8gemm(cx, q.data(), scale.data(), rows, cols, x.data(), xs, T, y.data(), ys);
                for (int t = 0; t < T; ++t) {
                    q8gemv(cx, q.data(), scale.data(), rows, cols, x.data() + t * xs, one.data());
                    for (int r = 0; r < rows; ++r)
                        ASSERT_EQ(y[t * ys + r], one[r]) << rows << "x" << cols << " input " << t << " row " << r << " "
                                                         << isa << " " << threads << " threads";
                    for (size_t r = rows; r < ys; ++r) ASSERT_EQ(y[t * ys + r], -7.f) << "wrote past the rows";
                }
            }
    }
}

TEST(Q8Gemv, LongRowsOfExtremeValuesSumExactlyAndNaNPropagates) {
    const int rows = 11, cols = 5000;
    std::vector<int8_t> q((size_t)rows * cols);
    std::vector<float> scale(rows), x(cols);
    for (int r = 0; r < rows; ++r) {
        scale[r] = 0.25f * (r + 1);
        for (int k = 0; k < cols; ++k) q[(size_t)r * cols + k] = (r % 2 ? -127 : 127);
    }
    for (int k = 0; k < cols; ++k) x[k] = 3.0f;  // every xq = 32767, sx = 3/32767
    const std::vector<float> y = q8_paths_equal_to_ref(q, scale, rows, cols, x);
    const double sx = 3.0f / 32767.0f;
    for (int r = 0; r < rows; ++r) {
        const double want = (r % 2 ? -1.0 : 1.0) * 127.0 * 32767.0 * cols * scale[r] * sx;
        ASSERT_NEAR(y[r], want, 1e-6 * std::fabs(want)) << "row " << r;
    }
    std::fill(x.begin(), x.end(), 0.0f);
    for (float v : q8_paths_equal_to_ref(q, scale, rows, cols, x)) ASSERT_EQ(v, 0.0f);
    x[1234] = std::numeric_limits<float>::quiet_NaN();
    for (float v : q8_paths_equal_to_ref(q, scale, rows, cols, x)) ASSERT_TRUE(std::isnan(v));
}

// α⊙x exactly (one float multiply, as the reference), β·x against float64 on
// odd sizes: the AVX2 path sums in another order, so within double rounding.
TEST(Gemv, BinaryInputScalesAndDotsLikeFloat64) {
    for (int cols : {1, 7, 8, 9, 31, 1531, 3072}) {
        std::mt19937 rng(cols);
        std::normal_distribution<float> n;
        std::vector<float> a(cols), b(cols), x(cols), ax_ref(cols), ax(cols, 7.f);
        for (int i = 0; i < cols; ++i) a[i] = n(rng), b[i] = n(rng), x[i] = 100.f * n(rng);
        long double want = 0, mag = 0;
        for (int i = 0; i < cols; ++i) want += (long double)b[i] * x[i], mag += std::fabs((long double)b[i] * x[i]);
        const double r = binary_input_ref(a.data(), b.data(), x.data(), ax_ref.data(), cols);
        for (int i = 0; i < cols; ++i) ASSERT_EQ(ax_ref[i], a[i] * x[i]);
        EXPECT_NEAR(r, (double)want, 1e-15 * (double)mag * cols);
        if (!cpu_has_avx2()) continue;
        const double v = binary_input_avx2(a.data(), b.data(), x.data(), ax.data(), cols);
        EXPECT_EQ(ax, ax_ref) << cols;
        EXPECT_NEAR(v, (double)want, 1e-15 * (double)mag * cols) << cols;
    }
}

TEST(Gemv, UnknownIsaIsRefusedByName) {
    try {
        CpuContext::make("avx9000");
        FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("avx9000"), std::string::npos);
    }
    // An ISA the CPU lacks is refused, naming what is missing; "auto" picks the
    // best present (the highest capability score).
    if (!cpu_has_avx512()) {
        EXPECT_EQ(isa_score(Isa::Avx512), 0);
        try {
            CpuContext::make("avx512");
            FAIL() << "no exception";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find("AVX-512"), std::string::npos);
        }
    }
    EXPECT_EQ(isa_score(Isa::Scalar), 1);
    const CpuContext a = CpuContext::make("auto", 2);
    EXPECT_STREQ(isa_name(a.isa), cpu_has_avx512() ? "avx512" : cpu_has_avx2() ? "avx2" : "scalar");
    EXPECT_EQ(a.avx2(), cpu_has_avx2());
    EXPECT_EQ(a.avx512(), cpu_has_avx512());
    EXPECT_EQ(a.thread_count(), 2);
    if (cpu_has_avx2()) {
        const CpuContext b = CpuContext::make("avx2", 1);
        EXPECT_TRUE(b.avx2());
        EXPECT_FALSE(b.avx512());
        EXPECT_EQ(b.thread_count(), 1);
        EXPECT_TRUE(a.avx2()) << "contexts are independent";
    }
    // Pools are shared between equal thread counts, separate otherwise.
    EXPECT_EQ(CpuContext::make("auto", 2).pool, a.pool);
    EXPECT_NE(CpuContext::make("scalar", 3).pool, a.pool);
}

TEST(BitGemvLut3, TiledLayoutMatchesRowMajorAndAvx2MatchesScalar) {
    uint32_t seed = 500;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        auto m = repack_lut3(c.packed.data(), c.rows, c.cols);
        std::vector<float> ref(c.rows), got(c.rows, 777.f), tables(8 * m.groups);
        bitgemv_lut3_ref(m, c.x.data(), ref.data());
        for (int r = 0; r < c.rows; ++r)
            ASSERT_NEAR(ref[r], c.want[r], 1e-5 * c.scale + 1e-6)
                << "tiled ref " << c.rows << "x" << c.cols << " row " << r;
        if (!cpu_has_avx2()) continue;
        for (int threads : {1, 2}) {
            const CpuContext cx = CpuContext::make("auto", threads);
            bitgemv_lut3(cx, m, c.x.data(), got.data(), tables.data());
            for (int r = 0; r < c.rows; ++r)
                ASSERT_NEAR(got[r], c.want[r], 1e-5 * c.scale + 1e-6)
                    << "lut3 avx2 " << c.rows << "x" << c.cols << " row " << r;
        }
    }
}

TEST(SsmStep, Avx2MatchesFloat64Recurrence) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "CPU has no AVX2";
    std::mt19937 rng(9);
    std::normal_distribution<float> n;
    for (auto [hd, ns] : std::vector<std::pair<int, int>>{{1, 1}, {3, 7}, {16, 16}, {15, 33}, {64, 128}}) {
        std::vector<float> s(hd * ns), x(hd), B(ns), C(ns), y(hd);
        for (auto& v : s) v = n(rng);
        for (auto& v : x) v = n(rng);
        for (auto& v : B) v = n(rng);
        for (auto& v : C) v = n(rng);
        const float dA = 0.9f, dt = 0.3f, D = 0.7f;
        std::vector<double> s2(s.begin(), s.end()), want(hd);
        for (int p = 0; p < hd; ++p) {
            double acc = 0;
            for (int k = 0; k < ns; ++k) {
                s2[p * ns + k] = s2[p * ns + k] * dA + (double)dt * x[p] * B[k];
                acc += s2[p * ns + k] * C[k];
            }
            want[p] = acc + (double)D * x[p];
        }
        ssm_head_step_avx2(s.data(), hd, ns, dA, dt, x.data(), B.data(), C.data(), D, y.data());
        for (int p = 0; p < hd; ++p) ASSERT_NEAR(y[p], want[p], 1e-4 * ns) << hd << "x" << ns;
        for (int i = 0; i < hd * ns; ++i) ASSERT_NEAR(s[i], s2[i], 1e-5) << "state " << i;
    }
}

// Prefill runs the projections as GEMMs over a block of tokens; they must give
// exactly what T separate GEMVs give (the engine's batched prefill is tested
// for bit-identical logits on top of this).
TEST(BitGemmLut3, BlockOfTokensIsBitIdenticalToSeparateGemvs) {
    uint32_t seed = 900;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        auto m = repack_lut3(c.packed.data(), c.rows, c.cols);
        for (int T : {1, 3, 8, 11}) {
            std::mt19937 rng(seed * 7 + T);
            std::normal_distribution<float> n;
            const size_t xs = c.cols + 5, ys = c.rows + 3;  // strides wider than the vectors
            std::vector<float> x(T * xs), got(T * ys, 555.f), want(T * ys, 555.f),
                tables(T * lut3_table_floats(c.cols));
            for (auto& v : x) v = n(rng);
            for (int threads : {1, 2}) {
                for (const char* isa : {"auto", "scalar"}) {
                    const CpuContext cx = CpuContext::make(isa, threads);
                    for (int j = 0; j < T; ++j)
                        bitgemv_lut3(cx, m, x.data() + j * xs, want.data() + j * ys, tables.data());
                    bitgemm_lut3(cx, m, x.data(), xs, T, got.data(), ys, tables.data());
                    ASSERT_EQ(got, want) << isa << " " << c.rows << "x" << c.cols << " T=" << T << " threads "
                                         << threads;
                    // And against the float64 definition.
                    for (int j = 0; j < T; ++j)
                        for (int r = 0; r < c.rows; ++r) {
                            double w = 0, sc = 0;
                            for (int k = 0; k < c.cols; ++k) {
                                w += (c.w[(size_t)r * c.cols + k] < 0 ? -1.0 : 1.0) * x[j * xs + k];
                                sc += std::fabs(x[j * xs + k]);
                            }
                            ASSERT_NEAR(got[j * ys + r], w, 1e-5 * sc + 1e-6);
                        }
                }
            }
        }
    }
}

// Batched prefill through the i16lut kernel: one call for T tokens gives
// what T calls of the GEMV give, bit for bit, on every ISA and thread count
// (and the scalar reference), with strides wider than the vectors.
TEST(BitGemmI16Lut, BlockOfTokensIsBitIdenticalToSeparateGemvs) {
    uint32_t seed = 950;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        auto m = repack_i16lut(c.packed.data(), c.rows, c.cols);
        const size_t sb = i16lut_scratch_bytes(c.cols) + 24;  // an odd area stride
        for (int T : {1, 3, 8, 11}) {
            std::mt19937 rng(seed * 11 + T);
            std::normal_distribution<float> n;
            const size_t xs = c.cols + 5, ys = c.rows + 3;
            std::vector<float> x(T * xs), got(T * ys, 555.f), want(T * ys, 555.f);
            std::vector<uint8_t> scratch(T * sb), one(i16lut_scratch_bytes(c.cols));
            for (auto& v : x) v = n(rng);
            for (int threads : {1, 2, 3}) {
                for (const char* isa : {"auto", "avx2", "scalar"}) {
                    if (std::string(isa) == "avx2" && !cpu_has_avx2()) continue;
                    const CpuContext cx = CpuContext::make(isa, threads);
                    for (int j = 0; j < T; ++j)
                        bitgemv_i16lut(cx, m, x.data() + j * xs, want.data() + j * ys, one.data());
                    std::fill(got.begin(), got.end(), 555.f);
                    bitgemm_i16lut(cx, m, x.data(), xs, T, got.data(), ys, scratch.data(), sb);
                    ASSERT_EQ(got, want) << isa << " " << c.rows << "x" << c.cols << " T=" << T << " threads "
                                         << threads;
                }
            }
        }
    }
}

// A decode projection with its input made and its rows finished inside the
// hand-off (bitgemv_i16lut_in_pool): every thread makes the input itself and
// the result is what the steps give on one thread around bitgemv_i16lut (the
// input, the GEMV, the returned value added to every row, then rows_done),
// bit for bit, with every row finished once, on every ISA and thread count;
// one width past kI16WideTableCols for the AVX-512 grain.
TEST(BitGemvI16InPool, InputAndRowsInsideTheHandOffEqualTheStepsAroundTheGemv) {
    uint32_t seed = 970;
    std::vector<std::array<int, 2>> sizes;
    for (auto& s : kSizes) sizes.push_back({s[0], s[1]});
    sizes.push_back({200, kI16WideTableCols + 28});
    for (auto& s : sizes) {
        Case c = make_case(s[0], s[1], seed++);
        auto m = repack_i16lut(c.packed.data(), c.rows, c.cols);
        std::vector<float> alpha(c.cols);
        for (int i = 0; i < c.cols; ++i) alpha[i] = 0.5f + 0.01f * (i % 37);
        // A norm-like input: w = x · 1/rms (a sum over all of x), x' = α⊙w, offset = Σ w.
        std::atomic<int> inputs{0};
        auto input = [&](float* w, float* x) {
            ++inputs;
            double ss = 0, sum = 0;
            for (float v : c.x) ss += (double)v * v;
            const float r = 1.0f / std::sqrt((float)(ss / c.cols) + 1e-5f);
            for (int i = 0; i < c.cols; ++i) {
                w[i] = c.x[i] * r;
                x[i] = alpha[i] * w[i];
                sum += w[i];
            }
            return (float)sum;
        };
        std::vector<float> res0(c.rows);
        for (int r = 0; r < c.rows; ++r) res0[r] = 0.25f * r - 3.0f;
        std::vector<uint8_t> scratch(i16lut_in_pool_scratch_bytes(c.cols) + 7);
        for (int threads : {1, 2, 3}) {
            for (const char* isa : {"auto", "avx2", "scalar"}) {
                if (std::string(isa) == "avx2" && !cpu_has_avx2()) continue;
                const CpuContext cx = CpuContext::make(isa, threads);
                const std::string what = std::string(isa) + " " + std::to_string(c.rows) + "x" +
                                         std::to_string(c.cols) + " threads " + std::to_string(threads);
                // The steps on this thread.
                std::vector<float> w(c.cols), x(c.cols), want(c.rows, 555.f), want_res = res0;
                const float offset = input(w.data(), x.data());
                std::vector<uint8_t> one(i16lut_scratch_bytes(c.cols));
                bitgemv_i16lut(cx, m, x.data(), want.data(), one.data());
                for (int r = 0; r < c.rows; ++r) {
                    want[r] += offset;
                    want_res[r] += 0.5f * want[r];
                }
                // In the hand-off.
                std::vector<float> got(c.rows, 555.f), got_res = res0;
                std::vector<int> finished(c.rows, 0);
                inputs = 0;
                bitgemv_i16lut_in_pool(
                    cx, m, input,
                    [&](float* y, int r0, int r1) {
                        for (int r = r0; r < r1; ++r) {
                            got_res[r] += 0.5f * y[r];
                            ++finished[r];
                        }
                    },
                    got.data(), scratch.data());
                ASSERT_EQ(got, want) << what;
                ASSERT_EQ(got_res, want_res) << what;
                ASSERT_EQ(finished, std::vector<int>(c.rows, 1)) << what;
                EXPECT_GE(inputs.load(), 1) << what;
                EXPECT_LE(inputs.load(), threads) << what << ": the input made more than once per thread";
            }
        }
    }
}

TEST(Gemm, F16BlockOfTokensIsBitIdenticalToSeparateGemvs) {
    uint32_t seed = 1000;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        std::vector<uint16_t> w16(c.w.size());
        for (size_t i = 0; i < c.w.size(); ++i) w16[i] = base::f32_to_f16(c.w[i]);
        for (int T : {1, 2, 3, 8, 13, 32, 37}) {
            std::mt19937 rng(seed * 5 + T);
            std::normal_distribution<float> n;
            const size_t xs = c.cols + 3, ys = c.rows + 1;
            std::vector<float> x(T * xs), got(T * ys, 1.f), want(T * ys, 1.f);
            for (auto& v : x) v = n(rng);
            for (int threads : {1, 2}) {
                for (const char* isa : {"auto", "scalar"}) {
                    const CpuContext cx = CpuContext::make(isa, threads);
                    for (int j = 0; j < T; ++j)
                        f16gemv(cx, w16.data(), c.rows, c.cols, x.data() + j * xs, want.data() + j * ys);
                    f16gemm(cx, w16.data(), c.rows, c.cols, x.data(), xs, T, got.data(), ys);
                    ASSERT_EQ(got, want) << isa << " " << c.rows << "x" << c.cols << " T=" << T;
                }
            }
        }
    }
}

// The AVX-512 fp16 pair (natively where the CPU has AVX-512, on SIMDe's
// emulation otherwise): the GEMM over a block equals its GEMV token by token
// bit for bit, and both match float64 of the fp16 weights.
TEST(Gemm, F16Avx512GemmEqualsItsGemvAndFloat64) {
    using Gemv = void (*)(const uint16_t*, int, int, int, const float*, float*);
    using Gemm = void (*)(const uint16_t*, int, int, int, const float*, size_t, int, float*, size_t);
    std::vector<std::tuple<const char*, Gemv, Gemm>> paths;
    if (cpu_has_avx512()) paths.emplace_back("avx512", f16gemv_rows_avx512, f16gemm_rows_avx512);
#ifdef BIMAMBA_HAVE_AVX512_EMULATION
    paths.emplace_back("avx512 (emulated)", f16gemv_rows_avx512_emulated, f16gemm_rows_avx512_emulated);
#endif
    if (paths.empty()) GTEST_SKIP() << "no AVX-512 and no SIMDe emulation";
    uint32_t seed = 1100;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        std::vector<uint16_t> w16(c.w.size());
        for (size_t i = 0; i < c.w.size(); ++i) w16[i] = base::f32_to_f16(c.w[i]);
        for (int T : {1, 2, 3, 4, 5, 8, 13, 32, 37}) {
            std::mt19937 rng(seed * 5 + T);
            std::normal_distribution<float> n;
            const size_t xs = c.cols + 3, ys = c.rows + 1;
            std::vector<float> x(T * xs), got(T * ys, 1.f), want(T * ys, 1.f);
            for (auto& v : x) v = n(rng);
            for (auto& [name, gemv, gemm] : paths) {
                for (int j = 0; j < T; ++j)
                    gemv(w16.data(), 0, c.rows, c.cols, x.data() + j * xs, want.data() + j * ys);
                gemm(w16.data(), 0, c.rows, c.cols, x.data(), xs, T, got.data(), ys);
                ASSERT_EQ(got, want) << name << " " << c.rows << "x" << c.cols << " T=" << T;
                for (int j = 0; j < T; ++j)
                    for (int r = 0; r < c.rows; ++r) {
                        double d = 0, sc = 0;
                        for (int k = 0; k < c.cols; ++k) {
                            const double w = base::f16_to_f32(w16[(size_t)r * c.cols + k]);
                            d += w * x[j * xs + k];
                            sc += std::fabs(w * x[j * xs + k]);
                        }
                        ASSERT_NEAR(got[j * ys + r], d, 1e-5 * sc + 1e-6) << name << " row " << r << " token " << j;
                    }
            }
        }
    }
}

// 16-bit SSM state: the AVX2 path against the scalar reference (which rounds
// with the scalar converters), over many steps so rounding has to stay in step;
// the reference against a float64 recurrence within 16-bit precision.
TEST(SsmStep, SixteenBitStateAvx2MatchesReference) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "CPU has no AVX2";
    for (StateType t : {StateType::BF16, StateType::F16}) {
        std::mt19937 rng(11);
        std::normal_distribution<float> n;
        for (auto [hd, ns] : std::vector<std::pair<int, int>>{{1, 1}, {3, 7}, {16, 16}, {15, 33}, {64, 128}}) {
            std::vector<uint16_t> a(hd * ns, 0), b(hd * ns, 0);
            std::vector<double> s64(hd * ns, 0.0);
            double max_diff_y = 0, max_y = 0, max_err64 = 0, max_s = 0;
            int state_mismatch = 0;
            for (int step = 0; step < 20; ++step) {
                std::vector<float> x(hd), B(ns), C(ns), ya(hd), yb(hd);
                for (auto& v : x) v = n(rng);
                for (auto& v : B) v = n(rng);
                for (auto& v : C) v = n(rng);
                const float dA = 0.8f + 0.01f * step, dt = 0.3f, D = 0.7f;
                b = a;  // each step from the same state (one flipped rounding would otherwise carry on)
                // Both return the largest |new value| (the f16 range guard): against float64 of the old state.
                double want_max = 0;
                for (int p = 0; p < hd; ++p)
                    for (int k = 0; k < ns; ++k) {
                        const double old =
                            t == StateType::BF16 ? base::bf16_to_f32(a[p * ns + k]) : base::f16_to_f32(a[p * ns + k]);
                        want_max = std::max(want_max, std::fabs(old * dA + (double)dt * x[p] * B[k]));
                    }
                const float ma =
                    ssm_head_step16_ref(a.data(), t, hd, ns, dA, dt, x.data(), B.data(), C.data(), D, ya.data());
                const float mb =
                    ssm_head_step16_avx2(b.data(), t, hd, ns, dA, dt, x.data(), B.data(), C.data(), D, yb.data());
                EXPECT_NEAR(ma, want_max, 1e-5 * want_max + 1e-6);
                EXPECT_NEAR(mb, want_max, 1e-5 * want_max + 1e-6);
                for (int p = 0; p < hd; ++p) {
                    max_diff_y = std::max(max_diff_y, (double)std::fabs(ya[p] - yb[p]));
                    max_y = std::max(max_y, (double)std::fabs(ya[p]));
                    double acc = 0;
                    for (int k = 0; k < ns; ++k) {
                        s64[p * ns + k] = s64[p * ns + k] * dA + (double)dt * x[p] * B[k];
                        acc += s64[p * ns + k] * C[k];
                        max_s = std::max(max_s, std::fabs(s64[p * ns + k]));
                    }
                    max_err64 = std::max(max_err64, std::fabs(ya[p] - (acc + (double)D * x[p])));
                }
                for (int i = 0; i < hd * ns; ++i) {
                    const float fa = t == StateType::BF16 ? base::bf16_to_f32(a[i]) : base::f16_to_f32(a[i]);
                    const float fb = t == StateType::BF16 ? base::bf16_to_f32(b[i]) : base::f16_to_f32(b[i]);
                    // The FMA of the SIMD path can move the fp32 value by an ulp, which can
                    // flip a 16-bit rounding: allow one 16-bit ulp, and only rarely.
                    const float ulp = std::fabs(fa) * (t == StateType::BF16 ? 1.0f / 128 : 1.0f / 1024) + 1e-7f;
                    ASSERT_LE(std::fabs(fa - fb), ulp)
                        << state_type_name(t) << " " << hd << "x" << ns << " step " << step;
                    state_mismatch += a[i] != b[i];
                }
            }
            EXPECT_LE(max_diff_y, 1e-2 * max_y + 1e-5) << state_type_name(t) << " " << hd << "x" << ns;
            EXPECT_LE(state_mismatch, hd * ns * 20 / 20 + 1) << state_type_name(t);
            // Against float64: bounded by the 16-bit relative precision of the state.
            const double eps16 = t == StateType::BF16 ? 1.0 / 256 : 1.0 / 2048;
            EXPECT_LE(max_err64, 8 * eps16 * max_s * std::sqrt((double)ns) + 1e-5)
                << state_type_name(t) << " " << hd << "x" << ns;
        }
    }
    EXPECT_EQ(state_type_from_string("bf16"), StateType::BF16);
    EXPECT_THROW(state_type_from_string("f8"), std::invalid_argument);
}

// The AVX-512 step: every stored state value as the AVX2 path's, bit for bit
// (the same fp32 operations per element, the same rounding), over 20 steps
// that carry the state, in all three precisions, with d_state tails; y (its
// sum in 16 lanes instead of 8) within float rounding of the AVX2 path's and
// of a float64 sum over the same state; the same range guard. Without the
// range guard (max_abs false), the same state and y.
using SsmStepF32 = void (*)(float*, int, int, float, float, const float*, const float*, const float*, float, float*);
using SsmStep16 = float (*)(uint16_t*, StateType, int, int, float, float, const float*, const float*, const float*,
                            float, float*, bool);
static void expect_ssm_avx512_like_avx2(SsmStepF32 step32, SsmStep16 step16, const char* name) {
    SCOPED_TRACE(name);
    std::mt19937 rng(41);
    std::normal_distribution<float> n;
    for (auto [hd, ns] : std::vector<std::pair<int, int>>{{1, 1}, {3, 7}, {5, 16}, {15, 33}, {64, 128}, {4, 200}}) {
        for (StateType t : {StateType::F32, StateType::F16, StateType::BF16}) {
            std::vector<float> fa(hd * ns, 0.f), fb(hd * ns, 0.f);
            std::vector<uint16_t> ha(hd * ns, 0), hb(hd * ns, 0), hc(hd * ns, 0);
            for (int step = 0; step < 20; ++step) {
                std::vector<float> x(hd), B(ns), C(ns), ya(hd), yb(hd);
                for (auto& v : x) v = n(rng);
                for (auto& v : B) v = n(rng);
                for (auto& v : C) v = n(rng);
                const float dA = 0.8f + 0.01f * step, dt = 0.3f, D = 0.7f;
                if (t == StateType::F32) {
                    ssm_head_step_avx2(fa.data(), hd, ns, dA, dt, x.data(), B.data(), C.data(), D, ya.data());
                    step32(fb.data(), hd, ns, dA, dt, x.data(), B.data(), C.data(), D, yb.data());
                    ASSERT_EQ(0, std::memcmp(fa.data(), fb.data(), 4 * fa.size())) << hd << "x" << ns << " f32";
                } else {
                    const float ma =
                        ssm_head_step16_avx2(ha.data(), t, hd, ns, dA, dt, x.data(), B.data(), C.data(), D, ya.data());
                    const float mb =
                        step16(hb.data(), t, hd, ns, dA, dt, x.data(), B.data(), C.data(), D, yb.data(), true);
                    ASSERT_EQ(ha, hb) << hd << "x" << ns << " " << state_type_name(t) << " step " << step;
                    ASSERT_EQ(ma, mb) << state_type_name(t);
                    std::vector<float> yc(hd);
                    step16(hc.data(), t, hd, ns, dA, dt, x.data(), B.data(), C.data(), D, yc.data(), false);
                    ASSERT_EQ(hb, hc) << hd << "x" << ns << " " << state_type_name(t) << " without the max";
                    ASSERT_EQ(yb, yc) << hd << "x" << ns << " " << state_type_name(t) << " without the max";
                }
                for (int p = 0; p < hd; ++p) {
                    // float64 over the stored state: |Σ s·C| + D·x, and the scale of its terms
                    double want = (double)D * x[p], mag = std::fabs(want);
                    for (int k = 0; k < ns; ++k) {
                        const size_t i = (size_t)p * ns + k;
                        const double sv = t == StateType::F32   ? fb[i]
                                          : t == StateType::F16 ? base::f16_to_f32(hb[i])
                                                                : base::bf16_to_f32(hb[i]);
                        want += sv * C[k];
                        mag += std::fabs(sv * C[k]);
                    }
                    const double tol = 4e-7 * ns * mag + 1e-6;  // y comes from the unrounded fp32 values
                    const double tol16 = t == StateType::F32 ? tol : tol + mag / (t == StateType::F16 ? 1024 : 128);
                    ASSERT_NEAR(yb[p], ya[p], 2 * tol) << hd << "x" << ns << " " << state_type_name(t);
                    ASSERT_NEAR(yb[p], want, tol16) << hd << "x" << ns << " " << state_type_name(t);
                }
            }
        }
    }
}

TEST(SsmStep, Avx512KeepsTheAvx2StateBitsAndItsY) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "CPU has no AVX2";
    if (cpu_has_avx512()) expect_ssm_avx512_like_avx2(ssm_head_step_avx512, ssm_head_step16_avx512, "avx512");
#ifdef BIMAMBA_HAVE_AVX512_EMULATION
    // The AVX-512 source on emulated intrinsics, on every machine.
    expect_ssm_avx512_like_avx2(ssm_head_step_avx512_emulated, ssm_head_step16_avx512_emulated, "avx512 (emulated)");
#endif
}

// max |x| for the engine's f16 state bound: the largest magnitude (infinities
// included, -0 as 0), and NaN wherever a NaN is, in the vector body or the tail.
TEST(SsmStep, MaxAbsFindsTheLargestMagnitudeAndEveryNaN) {
    std::mt19937 rng(77);
    std::normal_distribution<float> nd(0.f, 3.f);
    for (int n : {0, 1, 7, 8, 9, 64, 128, 1001}) {
        std::vector<float> x(n);
        for (auto& v : x) v = nd(rng);
        float want = 0;
        for (float v : x) want = std::max(want, std::fabs(v));
        EXPECT_EQ(max_abs_ref(x.data(), n), want) << n;
        if (cpu_has_avx2()) EXPECT_EQ(max_abs_avx2(x.data(), n), want) << n;
        if (n == 0) continue;
        x[n / 2] = -std::numeric_limits<float>::infinity();
        EXPECT_EQ(max_abs_ref(x.data(), n), std::numeric_limits<float>::infinity()) << n;
        if (cpu_has_avx2()) EXPECT_EQ(max_abs_avx2(x.data(), n), std::numeric_limits<float>::infinity()) << n;
        for (int at : {0, n / 2, n - 1}) {
            std::vector<float> y(x);
            y[at] = std::numeric_limits<float>::quiet_NaN();
            EXPECT_TRUE(std::isnan(max_abs_ref(y.data(), n))) << n << " NaN at " << at;
            if (cpu_has_avx2()) EXPECT_TRUE(std::isnan(max_abs_avx2(y.data(), n))) << n << " NaN at " << at;
        }
    }
}

TEST(Activations, Avx2ConvSiluAndSiluGateMatchReference) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "CPU has no AVX2";
    std::mt19937 rng(21);
    std::normal_distribution<float> n(0.0f, 4.0f);
    for (int len : {1, 7, 8, 9, 31, 3328}) {
        for (int K : {1, 2, 4}) {
            std::vector<std::vector<float>> rows(K, std::vector<float>(len));
            std::vector<const float*> taps;
            for (auto& r : rows) {
                for (auto& v : r) v = n(rng);
                taps.push_back(r.data());
            }
            std::vector<float> wT(K * len), bias(len), a(len), b(len);
            for (auto& v : wT) v = n(rng) * 0.25f;
            for (auto& v : bias) v = n(rng);
            for (const float* bp : {(const float*)bias.data(), (const float*)nullptr}) {
                conv_silu_ref(taps.data(), K, wT.data(), len, bp, len, a.data());
                conv_silu_avx2(taps.data(), K, wT.data(), len, bp, len, b.data());
                for (int i = 0; i < len; ++i)
                    ASSERT_NEAR(b[i], a[i], 2e-6 * (std::fabs(a[i]) + 1)) << len << " K=" << K << " i=" << i;
            }
        }
        std::vector<float> y(len), z(len), ya, yb;
        for (auto& v : y) v = n(rng);
        for (auto& v : z) v = n(rng) * 10;  // includes large |z| (exp clamping)
        z[0] = -100.f;
        ya = y;
        yb = y;
        silu_mul_ref(ya.data(), z.data(), len);
        silu_mul_avx2(yb.data(), z.data(), len);
        for (int i = 0; i < len; ++i) ASSERT_NEAR(yb[i], ya[i], 2e-6 * std::fabs(ya[i]) + 1e-30) << len << " i=" << i;
    }
}

// The engine convolves, gates and sums a layer's channels head by head on
// whichever thread takes the head: a range computed in pieces (cut anywhere,
// not only at multiples of 8) must equal the range computed whole, bit for bit.
TEST(Activations, Avx2RangeInPiecesEqualsTheWhole) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "CPU has no AVX2";
    std::mt19937 rng(5);
    std::normal_distribution<float> n(0.0f, 3.0f);
    const int len = 243, K = 4;  // 243 = 16 heads of 15 + 3
    std::vector<std::vector<float>> rows(K, std::vector<float>(len));
    std::vector<const float*> taps;
    for (auto& r : rows) {
        for (auto& v : r) v = n(rng);
        taps.push_back(r.data());
    }
    std::vector<float> wT(K * len), bias(len), whole(len), pieces(len), z(len), y(len);
    for (auto& v : wT) v = n(rng) * 0.25f;
    for (auto& v : bias) v = n(rng);
    for (auto& v : z) v = n(rng);
    for (auto& v : y) v = n(rng);
    conv_silu_avx2(taps.data(), K, wT.data(), len, bias.data(), len, whole.data());
    std::vector<float> gw = y, gp = y;
    silu_mul_avx2(gw.data(), z.data(), len);
    for (int piece : {1, 5, 8, 15, 16, 100}) {
        std::fill(pieces.begin(), pieces.end(), 0.0f);
        gp = y;
        for (int c0 = 0; c0 < len; c0 += piece) {
            const int m = std::min(piece, len - c0);
            std::vector<const float*> t;
            for (auto* p : taps) t.push_back(p + c0);
            conv_silu_avx2(t.data(), K, wT.data() + c0, len, bias.data() + c0, m, pieces.data() + c0);
            silu_mul_avx2(gp.data() + c0, z.data() + c0, m);
        }
        EXPECT_EQ(pieces, whole) << "pieces of " << piece;
        EXPECT_EQ(gp, gw) << "pieces of " << piece;
    }
    // And each element is the reference's up to the polynomial exp.
    std::vector<float> ref(len);
    conv_silu_ref(taps.data(), K, wT.data(), len, bias.data(), len, ref.data());
    for (int i = 0; i < len; ++i) ASSERT_NEAR(whole[i], ref[i], 2e-6 * (std::fabs(ref[i]) + 1)) << i;
}

// Σx² in double against a long-double sum; the AVX2 order is fixed by n, so
// the same values give the same sum at any address.
TEST(RmsNorm, SumOfSquaresAndScalingMatchFloat64) {
    std::mt19937 rng(8);
    std::normal_distribution<float> n(0.0f, 2.0f);
    for (int len : {1, 3, 4, 15, 16, 17, 64, 1536, 3075}) {
        std::vector<float> x(len + 1), w(len), out(len);
        for (auto& v : x) v = n(rng);
        for (auto& v : w) v = n(rng);
        long double want = 0;
        for (int i = 0; i < len; ++i) want += (long double)x[i] * x[i];
        EXPECT_NEAR(sum_squares_ref(x.data(), len), (double)want, 1e-13 * (double)want) << len;
        if (cpu_has_avx2()) {
            const double a = sum_squares_avx2(x.data(), len);
            EXPECT_NEAR(a, (double)want, 1e-13 * (double)want) << len;
            std::vector<float> moved(x.begin(), x.begin() + len);  // another address
            moved.insert(moved.begin(), 0.0f);
            EXPECT_EQ(sum_squares_avx2(moved.data() + 1, len), a) << len;
        }
        const float eps = 1e-5f;
        rmsnorm(CpuContext::make("auto", 1), x.data(), w.data(), len, eps, out.data());
        const double r = 1.0 / std::sqrt((double)want / len + eps);
        for (int i = 0; i < len; ++i)
            ASSERT_NEAR(out[i], x[i] * r * w[i], 1e-5 * (std::fabs(x[i] * r * w[i]) + 1e-6)) << len;
    }
}

// The spinning hand-off: many small jobs in a row, every index covered exactly
// once; 8 threads on this machine's fewer cores leave late workers meeting
// the next job (each thread's run of chunks, then the others' leftovers).
TEST(ThreadPool, ManyHandOffsCoverEveryIndexOnce) {
    for (int threads : {1, 2, 3, 8}) {
        ThreadPool pool(threads);
        std::vector<int> hits(1000);
        for (int rep = 0; rep < 3000; ++rep) {
            const int n = 1 + rep % 997;
            std::fill(hits.begin(), hits.begin() + n, 0);
            pool.parallel_for(n, 1 + rep % 5, [&](int a, int b) {
                for (int i = a; i < b; ++i) ++hits[i];
            });
            for (int i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "threads " << threads << " rep " << rep << " i " << i;
        }
        // After the workers have gone to sleep, a hand-off still wakes them.
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        std::atomic<int> sum{0};
        pool.parallel_for(100, 1, [&](int a, int b) { sum += b - a; });
        EXPECT_EQ(sum.load(), 100);
    }
}

// bench cpu's hand-off probe: one empty job after another over every chunk,
// each job a dispatch of its own; a pool of one thread hands nothing off.
TEST(ThreadPool, HandOffProbeRunsEveryJobThroughThePool) {
    ThreadPool one(1);
    EXPECT_EQ(one.measure_handoff_micros(50), 0.0);
    EXPECT_EQ(one.dispatches(), 0u);
    for (int threads : {2, 3}) {
        ThreadPool pool(threads);
        const double us = pool.measure_handoff_micros(50);
        EXPECT_EQ(pool.dispatches(), 50u) << threads;
        EXPECT_GT(us, 0.0) << threads;
        EXPECT_LT(us, 1e6) << threads;  // an idle hand-off is microseconds, even on a busy machine not a second
        // With work: each chunk spins 20 µs of wall time, and every thread has its kChunksPerThread of
        // them to do at least, so the job cannot end before that: the cost beyond it is not negative.
        const double beyond = pool.measure_handoff_micros(20, 20.0);
        EXPECT_EQ(pool.dispatches(), 70u) << threads;
        EXPECT_GE(beyond, -0.5) << threads;
        EXPECT_LT(beyond, 1e6) << threads;
    }
    EXPECT_EQ(one.measure_handoff_micros(5, 20.0), 0.0);
}

// The integer-table kernel: the AVX2 path equals its reference bit for bit
// (integer sums, then the same FMAs chunk by chunk), and the reference is
// within the quantization error of the float product (s_k/2 per column at most,
// bounded here with the largest chunk scale).
TEST(BitGemvI16, Avx2EqualsReferenceAndStaysWithinQuantizationError) {
    uint32_t seed = 1300;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        auto m = repack_i16lut(c.packed.data(), c.rows, c.cols);
        for (int r = 0; r < c.rows; ++r)
            for (int k = 0; k < c.cols; ++k) ASSERT_EQ(m.neg(r, k), c.w[(size_t)r * c.cols + k] < 0) << r << "," << k;
        std::vector<float> ref(c.rows), got(c.rows, 9.f);
        std::vector<uint8_t> scratch(i16lut_scratch_bytes(c.cols));
        bitgemv_i16lut_ref(m, c.x.data(), ref.data());
        double worst = 0;  // the scale the kernel picks
        for (int c0 = 0; c0 < c.cols; c0 += kI16ChunkCols) {
            double t = 0;
            for (int k = c0; k < std::min(c.cols, c0 + kI16ChunkCols); ++k) t += std::fabs(c.x[k]);
            worst = std::max(worst, t);
        }
        const double sc = worst / 32735.0;
        for (int r = 0; r < c.rows; ++r)
            ASSERT_NEAR(ref[r], c.want[r], 0.5 * sc * c.cols + 1e-5 * c.scale)
                << c.rows << "x" << c.cols << " row " << r;
        for (const char* isa : {"avx2", "avx512"}) {
            if (!(std::string(isa) == "avx2" ? cpu_has_avx2() : cpu_has_avx512())) continue;
            for (int threads : {1, 2}) {
                const CpuContext cx = CpuContext::make(isa, threads);
                std::fill(got.begin(), got.end(), 9.f);
                bitgemv_i16lut(cx, m, c.x.data(), got.data(), scratch.data());
                ASSERT_EQ(got, ref) << c.rows << "x" << c.cols << " " << isa << " threads " << threads;
            }
        }
    }
#ifdef BIMAMBA_HAVE_AVX512_EMULATION
    // The AVX-512 source on emulated intrinsics, on every machine: the same
    // bits as the reference, per block range too (as the thread pool splits).
    seed = 1300;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        auto m = repack_i16lut(c.packed.data(), c.rows, c.cols);
        std::vector<float> ref(c.rows), got(c.rows, 9.f);
        std::vector<uint8_t> scratch(i16lut_scratch_bytes(c.cols));
        bitgemv_i16lut_ref(m, c.x.data(), ref.data());
        i16lut_prepare(auto_cx(), c.x.data(), c.cols, scratch.data());
        const int mid = m.blocks / 2;
        bitgemv_i16lut_blocks_avx512_emulated(m, scratch.data(), mid, m.blocks, got.data());
        bitgemv_i16lut_blocks_avx512_emulated(m, scratch.data(), 0, mid, got.data());
        ASSERT_EQ(got, ref) << c.rows << "x" << c.cols << " (AVX-512 source, emulated)";
    }
#else
    if (!cpu_has_avx512())
        std::printf("note: no AVX-512 on this CPU and no SIMDe: the avx512 i16lut kernel was not run\n");
#endif
    // The SIMD input preparation gives the scalar build's bytes: under AVX2
    // all of them, under AVX-512 all but the byte-plane tables, which it
    // leaves as they were (its kernel reads the word tables). Widths with a
    // partial last chunk and a partial pair, and chunks of very different
    // size (the multipliers span their whole range) and an all-zero chunk.
    for (int cols : {1, 5, 8, 33, 1536, 3072, 3100, 5120}) {
        std::vector<float> x(cols);
        std::mt19937 r2(cols);
        std::normal_distribution<float> nd;
        for (int k = 0; k < cols; ++k) x[k] = nd(r2) * (k / 32 % 5 == 2 ? 300.f : k / 32 % 5 == 4 ? 0.001f : 1.f);
        if (cols >= 96) std::fill(x.begin() + 64, x.begin() + 96, 0.f);
        if (cols == 33 || cols == 3100)  // scales near and below the smallest normal float: G underflows
            for (auto& v : x) v *= cols == 33 ? 1e-38f : 1e-36f;
        std::vector<uint8_t> a(i16lut_scratch_bytes(cols), 1);
        const float sa = i16lut_prepare(CpuContext::make("scalar", 1), x.data(), cols, a.data());
        const I16LutScratch L(cols);
        for (const char* isa : {"avx2", "avx512"}) {
            if (!(std::string(isa) == "avx2" ? cpu_has_avx2() : cpu_has_avx512())) continue;
            std::vector<uint8_t> b(i16lut_scratch_bytes(cols), 1), want(a);
            const float sb = i16lut_prepare(CpuContext::make(isa, 1), x.data(), cols, b.data());
            EXPECT_EQ(sa, sb) << isa;
            if (std::string(isa) == "avx512") std::fill(want.begin() + L.tables, want.begin() + L.mult, 1);
            EXPECT_EQ(want, b) << cols << " " << isa;
        }
#ifdef BIMAMBA_HAVE_AVX512_EMULATION
        // The AVX-512 word tables on emulated intrinsics.
        std::vector<int16_t> words(32 * (size_t)L.pairs, 7);
        i16lut_word_tables_avx512_emulated(reinterpret_cast<const int16_t*>(a.data() + L.q), L.pairs, words.data());
        EXPECT_EQ(0, std::memcmp(words.data(), a.data() + L.words, words.size() * 2)) << cols << " (emulated)";
#endif
    }
    // The worst case for the integer sums: rows whose signs follow sign(x) (every
    // chunk sum at its bound, the int32 total near 2^31 at 5120 columns, the
    // 2.7B out_proj width), and the opposite row; chunks of very different size.
    {
        const int cols = 5120, rows = 64;
        std::mt19937 r3(9);
        std::normal_distribution<float> nd;
        std::vector<float> x(cols), w((size_t)rows * cols);
        for (int k = 0; k < cols; ++k) x[k] = nd(r3) * (k / 32 % 7 == 3 ? 50.f : 1.f);
        for (int r = 0; r < rows; ++r)
            for (int k = 0; k < cols; ++k) w[(size_t)r * cols + k] = r == 0 ? x[k] : r == 1 ? -x[k] : nd(r3);
        std::vector<uint8_t> packed(bit_row_stride(cols) * rows);
        pack_signs(w.data(), rows, cols, packed.data());
        auto m = repack_i16lut(packed.data(), rows, cols);
        std::vector<float> ref(rows), got(rows);
        std::vector<uint8_t> scratch(i16lut_scratch_bytes(cols));
        bitgemv_i16lut_ref(m, x.data(), ref.data());
        double l1 = 0;
        for (float v : x) l1 += std::fabs(v);
        EXPECT_NEAR(ref[0], l1, 1e-4 * l1);
        EXPECT_NEAR(ref[1], -l1, 1e-4 * l1);
        if (cpu_has_avx2()) {
            bitgemv_i16lut(auto_cx(), m, x.data(), got.data(), scratch.data());
            EXPECT_EQ(got, ref);
        }
#ifdef BIMAMBA_HAVE_AVX512_EMULATION
        i16lut_prepare(auto_cx(), x.data(), cols, scratch.data());
        std::fill(got.begin(), got.end(), 0.f);
        bitgemv_i16lut_blocks_avx512_emulated(m, scratch.data(), 0, m.blocks, got.data());
        EXPECT_EQ(got, ref);
#endif
    }
    // Wide matrices (word tables of 24 KB and more, the out_proj widths), odd
    // row counts and block ranges split at odd places, natively and on
    // emulated intrinsics: the reference's bits.
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{97, 3072}, {64, 3100}, {33, 5120}, {160, 4097}}) {
        Case c = make_case(rows, cols, seed++);
        auto m = repack_i16lut(c.packed.data(), c.rows, c.cols);
        std::vector<float> ref(c.rows), got(c.rows, 9.f);
        std::vector<uint8_t> scratch(i16lut_scratch_bytes(c.cols));
        bitgemv_i16lut_ref(m, c.x.data(), ref.data());
        i16lut_prepare(auto_cx(), c.x.data(), c.cols, scratch.data());
        std::vector<std::pair<const char*, decltype(&bitgemv_i16lut_blocks_avx512)>> paths;
        if (cpu_has_avx512()) paths.emplace_back("avx512", bitgemv_i16lut_blocks_avx512);
#ifdef BIMAMBA_HAVE_AVX512_EMULATION
        paths.emplace_back("avx512 (emulated)", bitgemv_i16lut_blocks_avx512_emulated);
#endif
        for (auto& [name, f] : paths)
            for (int mid : {0, 1, m.blocks / 2 | 1}) {
                std::fill(got.begin(), got.end(), 9.f);
                f(m, scratch.data(), 0, std::min(mid, m.blocks), got.data());
                f(m, scratch.data(), std::min(mid, m.blocks), m.blocks, got.data());
                ASSERT_EQ(got, ref) << c.rows << "x" << c.cols << " " << name << " split at block " << mid;
            }
    }
    // The dispatcher on wide matrices: the pool's chunks cut the groups of 4
    // blocks anywhere (17 and 40 blocks; 1, 2 and 3 threads), and from 3072
    // columns every thread builds its own tables (two calls in a row: the
    // second must not reuse the first's), under AVX-512 and AVX2.
    for (const char* isa : {"avx512", "avx2"}) {
        if (!(std::string(isa) == "avx2" ? cpu_has_avx2() : cpu_has_avx512())) continue;
        for (auto [rows, cols] : std::vector<std::pair<int, int>>{{544, 3072}, {1280, 5120}}) {
            Case c = make_case(rows, cols, seed++);
            auto m = repack_i16lut(c.packed.data(), c.rows, c.cols);
            std::vector<float> ref(c.rows), ref2(c.rows), got(c.rows, 9.f), x2(c.x);
            for (auto& v : x2) v = -0.5f * v + 0.25f;
            std::vector<uint8_t> scratch(i16lut_scratch_bytes(c.cols));
            bitgemv_i16lut_ref(m, c.x.data(), ref.data());
            bitgemv_i16lut_ref(m, x2.data(), ref2.data());
            for (int threads : {1, 2, 3}) {
                const CpuContext cx = CpuContext::make(isa, threads);
                std::fill(got.begin(), got.end(), 9.f);
                bitgemv_i16lut(cx, m, c.x.data(), got.data(), scratch.data());
                ASSERT_EQ(got, ref) << c.rows << "x" << c.cols << " " << isa << " threads " << threads;
                bitgemv_i16lut(cx, m, x2.data(), got.data(), scratch.data());
                ASSERT_EQ(got, ref2) << c.rows << "x" << c.cols << " " << isa << " threads " << threads << ", 2nd";
            }
        }
    }
    // Columns of very different size in one chunk (the scale follows the largest chunk sum).
    std::vector<float> w(64 * 100), x(100);
    std::mt19937 rng(5);
    std::normal_distribution<float> n;
    for (auto& v : w) v = n(rng);
    for (int k = 0; k < 100; ++k) x[k] = (k == 37 ? 1e4f : 1e-3f) * n(rng);
    std::vector<uint8_t> packed(bit_row_stride(100) * 64);
    pack_signs(w.data(), 64, 100, packed.data());
    auto m = repack_i16lut(packed.data(), 64, 100);
    std::vector<float> ref(64), got(64);
    std::vector<uint8_t> scratch(i16lut_scratch_bytes(100));
    bitgemv_i16lut_ref(m, x.data(), ref.data());
    if (cpu_has_avx2()) {
        bitgemv_i16lut(auto_cx(), m, x.data(), got.data(), scratch.data());
        EXPECT_EQ(got, ref);
    }
    for (int r = 0; r < 64; ++r) {
        double want = 0;
        for (int k = 0; k < 100; ++k) want += (w[r * 100 + k] < 0 ? -1.0 : 1.0) * x[k];
        EXPECT_NEAR(ref[r], want, 1e-3 * std::fabs(x[37]));
    }
}

// The AVX-512 word tables against their definition for any int16 input,
// extremes included: entry i of a group (q_0..q_3) is the sum of +-q_j, minus
// where bit j of i is set, truncated to int16 (the sums of 4 extremes wrap).
TEST(BitGemvI16, WordTablesAvx512MatchTheirDefinitionForAnyInput) {
    std::vector<int16_t> q(8 * 300);
    std::mt19937 r(21);
    const int16_t extremes[] = {-32768, -32767, -1, 0, 1, 32766, 32767};
    for (size_t k = 0; k < q.size(); ++k) q[k] = k < 8 * 100 ? extremes[r() % 7] : (int16_t)(r() & 0xffff);
    const int pairs = (int)q.size() / 8;
    std::vector<int16_t> want(32 * (size_t)pairs);
    for (int p = 0; p < pairs; ++p)
        for (int g = 0; g < 2; ++g)  // group 2p + g: words 32p + 16 (1 - g) + i
            for (int i = 0; i < 16; ++i) {
                int t = 0;
                for (int j = 0; j < 4; ++j) t += ((i >> j) & 1) ? -q[8 * p + 4 * g + j] : q[8 * p + 4 * g + j];
                want[32 * (size_t)p + 16 * (1 - g) + i] = (int16_t)(uint16_t)(t & 0xffff);
            }
    int checked = 0;
    if (cpu_has_avx512()) {
        std::vector<int16_t> got(want.size(), 7);
        i16lut_word_tables_avx512(q.data(), pairs, got.data());
        EXPECT_EQ(want, got);
        ++checked;
    }
#ifdef BIMAMBA_HAVE_AVX512_EMULATION
    std::vector<int16_t> got(want.size(), 7);
    i16lut_word_tables_avx512_emulated(q.data(), pairs, got.data());
    EXPECT_EQ(want, got) << "(emulated)";
    ++checked;
#endif
    if (!checked) GTEST_SKIP() << "no AVX-512 here and no SIMDe emulation in this build";
}

// The core-share probe of bench cpu: two threads made to share one CPU (the
// process pinned to it; new threads inherit the mask) each run at about half
// the lone rate, as SMT siblings' port-bound loops do. One thread is 1 by definition.
TEST(CoreShare, TwoThreadsOnOneCpuRunAtHalfRate) {
    const CoreShareResult alone = measure_core_share(1);
    EXPECT_EQ(alone.ratio, 1.0);
    // A multiply loop's rate: between 0.3 and 8 per ns on any machine that runs this.
    EXPECT_GT(alone.lone_per_ns, 0.3);
    EXPECT_LT(alone.lone_per_ns, 8.0);
    cpu_set_t old;
    ASSERT_EQ(sched_getaffinity(0, sizeof old, &old), 0);
    int cpu = -1;
    for (int c = 0; c < CPU_SETSIZE && cpu < 0; ++c)
        if (CPU_ISSET(c, &old)) cpu = c;
    ASSERT_GE(cpu, 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    const CoreShareResult r = measure_core_share(2);
    ASSERT_EQ(sched_setaffinity(0, sizeof old, &old), 0);
    EXPECT_EQ(r.threads, 2);
    EXPECT_GT(r.ratio, 0.2);
    EXPECT_LT(r.ratio, 0.75) << "two threads on one CPU did not slow down";
}

// The roofline of bench cpu, against the bound worked by hand: 143 MB of
// weights at 33 GB/s = 4.3333 ms, 40.3 MB of state read and written at
// 50 GB/s = 1.612 ms; at 125 tok/s a token takes 8 ms.
TEST(MemoryBound, MatchesTheBoundWorkedByHand) {
    const MemoryBound b = memory_bound(143e6, 40.3e6, 33, 50, 125);
    EXPECT_NEAR(b.bw_fraction, 4.33333e-3 * 125, 1e-5);
    EXPECT_NEAR(b.roofline, (4.33333e-3 + 1.612e-3) * 125, 1e-5);
    EXPECT_NEAR(b.weights_ceiling, 4.33333 / (4.33333 + 1.612), 1e-5);
    // Twice the read bandwidth halves the weights' time only.
    EXPECT_NEAR(memory_bound(143e6, 40.3e6, 66, 50, 125).roofline, (2.166667e-3 + 1.612e-3) * 125, 1e-5);
    const MemoryBound none = memory_bound(143e6, 40.3e6, 0, 50, 125);  // no bandwidth measured: no fraction
    EXPECT_EQ(none.roofline, 0.0);
    EXPECT_EQ(none.bw_fraction, 0.0);
}

// One probe measures again and again on its buffer (bench cpu: before every
// decode rep), split across the pool's threads.
TEST(BandwidthProbe, MeasuresRepeatedlyOnOneBuffer) {
    ThreadPool pool(2);
    BandwidthProbe probe(pool, size_t(64) << 20);
    for (int i = 0; i < 2; ++i) {
        const BandwidthResult r = probe.read(3), u = probe.update(2);
        EXPECT_EQ(r.bytes, size_t(64) << 20);
        EXPECT_EQ(u.bytes, size_t(64) << 20);
        EXPECT_EQ(r.threads, 2);
        EXPECT_GT(r.median_gbps, 0.1);
        EXPECT_GE(r.best_gbps, r.median_gbps);
        EXPECT_GT(u.median_gbps, 0.1);
        EXPECT_GE(u.best_gbps, u.median_gbps);
        EXPECT_TRUE(std::isfinite(r.best_gbps) && std::isfinite(u.best_gbps));
    }
}

// Huge-page buffers: zeroed, 2 MiB aligned from 1 MiB up (64-byte below),
// movable; huge_vector holds data like a vector.
TEST(HugePages, BuffersAreZeroedAlignedAndMovable) {
    for (size_t n : {size_t(1), size_t(4095), size_t(1) << 20, (size_t(5) << 20) + 3}) {
        HugeBuffer b(n);
        ASSERT_NE(b.data(), nullptr);
        EXPECT_EQ(b.size(), n);
        const size_t align = n >= (size_t(1) << 20) ? kHugePage : 64;
        EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % align, 0u) << n;
        EXPECT_EQ(b.huge_aligned(), n >= (size_t(1) << 20));
        for (size_t i = 0; i < n; i += 4093) ASSERT_EQ(b.data()[i], 0) << i;
        b.data()[n - 1] = 7;
        HugeBuffer c(std::move(b));
        EXPECT_EQ(b.data(), nullptr);
        EXPECT_EQ(c.data()[n - 1], 7);
        HugeBuffer d;
        d = std::move(c);
        EXPECT_EQ(d.size(), n);
    }
    huge_vector<float> v(3 << 20, 1.5f);
    v.push_back(2.5f);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePage, 0u);
    EXPECT_EQ(v.back(), 2.5f);
    EXPECT_EQ(v[12345], 1.5f);
}

// The int8-table kernel: the layout holds the signs, the reference stays
// within its quantization bound (half a step per column, the step G·m_k of
// the column's chunk) of the float64 product, and the SIMD path (native on
// VBMI + VNNI CPUs, emulated elsewhere) gives the reference's bits, per block
// range too and on 1 and 2 threads.
TEST(BitGemvI8, SimdEqualsReferenceAndStaysWithinQuantizationError) {
    uint32_t seed = 1800;
    std::vector<std::array<int, 2>> sizes;
    for (auto& s : kSizes) sizes.push_back({s[0], s[1]});
    sizes.push_back({70, 3072});
    sizes.push_back({33, 5120});
    for (auto& s : sizes) {
        Case c = make_case(s[0], s[1], seed++);
        // Chunks of very different size: the multipliers span their range.
        for (int k = 0; k < c.cols; ++k) c.x[k] *= k / 32 % 5 == 2 ? 300.f : k / 32 % 5 == 4 ? 0.001f : 1.f;
        c.want.assign(c.rows, 0);
        for (int r = 0; r < c.rows; ++r)
            for (int k = 0; k < c.cols; ++k) c.want[r] += (c.w[(size_t)r * c.cols + k] < 0 ? -1.0 : 1.0) * c.x[k];
        c.scale = 0;
        for (float v : c.x) c.scale += std::fabs(v);
        auto m = repack_i8lut(c.packed.data(), c.rows, c.cols);
        for (int r = 0; r < c.rows; ++r)
            for (int k = 0; k < c.cols; ++k) ASSERT_EQ(m.neg(r, k), c.w[(size_t)r * c.cols + k] < 0) << r << "," << k;
        const I8LutScratch L(c.cols);
        std::vector<uint8_t> scratch(L.bytes);
        const float G = i8lut_prepare(CpuContext::make("scalar", 1), c.x.data(), c.cols, scratch.data());
        double bound = 0;  // Σ over columns of half the column's step
        for (int k = 0; k < c.cols; ++k) bound += 0.5 * (double)G * scratch[L.mult + k / kI8ChunkCols];
        std::vector<float> ref(c.rows, 9.f), got(c.rows);
        bitgemv_i8lut_blocks_ref(m, scratch.data(), 0, m.blocks, ref.data());
        for (int r = 0; r < c.rows; ++r)
            ASSERT_NEAR(ref[r], c.want[r], bound + 1e-5 * c.scale) << c.rows << "x" << c.cols << " row " << r;
        // The scalar dispatcher is the reference.
        bitgemv_i8lut(CpuContext::make("scalar", 2), m, c.x.data(), got.data(), scratch.data());
        ASSERT_EQ(got, ref);
        if (cpu_has_avx512_vbmi_vnni())
            for (int threads : {1, 2}) {
                std::fill(got.begin(), got.end(), 9.f);
                bitgemv_i8lut(CpuContext::make("avx512", threads), m, c.x.data(), got.data(), scratch.data());
                ASSERT_EQ(got, ref) << c.rows << "x" << c.cols << " threads " << threads;
            }
#ifdef BIMAMBA_HAVE_AVX512_EMULATION
        std::fill(got.begin(), got.end(), 9.f);
        const int mid = m.blocks / 2;
        bitgemv_i8lut_blocks_avx512_emulated(m, scratch.data(), mid, m.blocks, got.data());
        bitgemv_i8lut_blocks_avx512_emulated(m, scratch.data(), 0, mid, got.data());
        ASSERT_EQ(got, ref) << c.rows << "x" << c.cols << " (emulated)";
#endif
    }
}

// The tables are the sums of their group's quantized inputs with every sign
// pattern, also at the int8 extremes (|Σ q| = 127), on every path; and the
// preparation bounds each group's Σ|q| by 127 (no table entry wraps) for
// inputs of every size, tiny ones and a lone huge column included.
TEST(BitGemvI8, TablesAndPreparationKeepEveryEntryInRange) {
    std::mt19937 rng(77);
    const int groups = 64;
    std::vector<int8_t> q(4 * groups);
    for (int g = 0; g < groups; ++g) {
        int left = 127;
        for (int j = 0; j < 4; ++j) {
            const int a = g % 3 == 0 ? (j == 3 ? left : (int)(rng() % (left + 1))) : (int)(rng() % 32);
            left -= g % 3 == 0 ? a : 0;
            q[4 * g + j] = (int8_t)((rng() & 1) ? -a : a);
        }
    }
    std::vector<int8_t> want(16 * groups);
    i8lut_tables_ref(q.data(), groups, want.data());
    for (int g = 0; g < groups; ++g)
        for (int i = 0; i < 16; ++i) {
            int s = 0;
            for (int j = 0; j < 4; ++j) s += (i >> j & 1) ? -q[4 * g + j] : q[4 * g + j];
            ASSERT_EQ(want[16 * g + i], s) << g << " " << i;
        }
    if (cpu_has_avx512_vbmi_vnni()) {
        std::vector<int8_t> got(16 * groups, 5);
        i8lut_tables_avx512(q.data(), groups, got.data());
        EXPECT_EQ(got, want);
    }
#ifdef BIMAMBA_HAVE_AVX512_EMULATION
    std::vector<int8_t> emu(16 * groups, 5);
    i8lut_tables_avx512_emulated(q.data(), groups, emu.data());
    EXPECT_EQ(emu, want);
#endif
    for (auto [size, cols] : {std::pair{1.f, 100}, {1e-36f, 100}, {1e-45f, 100}, {3e33f, 100}, {1.f, 3}, {1.f, 5120}}) {
        std::vector<float> x(cols);
        std::normal_distribution<float> nd;
        for (auto& v : x) v = nd(rng) * size;
        if (cols > 37) x[37] = 1e4f * size;  // an outlier in chunk 1
        if (cols >= 96) std::fill(x.begin() + 64, x.begin() + 96, 0.f);
        const I8LutScratch L(cols);
        std::vector<uint8_t> a(L.bytes), b(L.bytes);
        const float G = i8lut_prepare(CpuContext::make("scalar", 1), x.data(), cols, a.data());
        EXPECT_TRUE(std::isfinite(G) && G > 0) << size;
        const int8_t* t = reinterpret_cast<const int8_t*>(a.data() + L.tables);
        for (int g = 0; g < 8 * L.chunks; ++g) {
            // Entry 0 is Σq, entry 15 −Σq; entry 2^j differs from entry 0 by 2 q_j.
            int sum_abs = 0;
            for (int j = 0; j < 4; ++j) sum_abs += std::abs(t[16 * g] - t[16 * g + (1 << j)]) / 2;
            EXPECT_LE(sum_abs, 127) << size << " group " << g;
            EXPECT_EQ(t[16 * g + 15], -t[16 * g]) << size << " group " << g;
        }
        for (int k = 0; k < L.chunks; ++k) EXPECT_GE(a[L.mult + k], 1) << size;
        if (cpu_has_avx2()) {  // the SIMD quantization alone: the multipliers, q and G of the reference
            std::vector<uint8_t> mult(L.chunks);
            std::vector<int8_t> q(32 * (size_t)L.chunks, 9);
            EXPECT_EQ(G, i8lut_quantize_avx2(x.data(), cols, mult.data(), q.data())) << size;
            EXPECT_EQ(0, std::memcmp(mult.data(), a.data() + L.mult, mult.size())) << size;
            EXPECT_EQ(0, std::memcmp(q.data(), a.data() + L.q, q.size())) << size;
        }
        if (cpu_has_avx512_vbmi_vnni()) {
            EXPECT_EQ(G, i8lut_prepare(CpuContext::make("avx512", 1), x.data(), cols, b.data()));
            EXPECT_EQ(a, b) << size;
        }
    }
}

// From kI8WideCols columns on, every thread prepares its own input
// (PerThreadInput.h): calls in a row with different inputs, on 2 and 3
// threads, each give the reference's result for their own input (a thread
// that kept the previous call's tables would not).
TEST(BitGemvI8, ThreadsPrepareTheirOwnInputForEveryCall) {
    if (!cpu_has_avx512_vbmi_vnni()) GTEST_SKIP() << "CPU has no AVX-512 VBMI + VNNI";
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{544, 3072}, {1280, 5120}, {2000, 3100}}) {
        Case c = make_case(rows, cols, 1900 + cols);
        auto m = repack_i8lut(c.packed.data(), rows, cols);
        std::vector<uint8_t> scratch(i8lut_scratch_bytes(cols));
        for (int threads : {2, 3})
            for (int call = 0; call < 3; ++call) {
                std::vector<float> x(c.x);
                for (int k = 0; k < cols; ++k) x[k] *= 1.0f + 0.5f * call + (k % 7 == call ? -2.0f : 0.0f);
                std::vector<float> want(rows), got(rows, 9.f);
                i8lut_prepare(CpuContext::make("scalar", 1), x.data(), cols, scratch.data());
                bitgemv_i8lut_blocks_ref(m, scratch.data(), 0, m.blocks, want.data());
                bitgemv_i8lut(CpuContext::make("avx512", threads), m, x.data(), got.data(), scratch.data());
                ASSERT_EQ(got, want) << rows << "x" << cols << " threads " << threads << " call " << call;
            }
    }
}

// A NaN input makes every output NaN, and an infinite one every output
// non-finite, on every path, as in a float product: they must not vanish in
// the chunk scales and leave finite garbage.
TEST(BitGemvI8, NaNAndInfinityInTheInputReachEveryOutput) {
    const int rows = 70, cols = 3100;
    Case c = make_case(rows, cols, 2024);
    auto m = repack_i8lut(c.packed.data(), rows, cols);
    std::vector<uint8_t> scratch(i8lut_scratch_bytes(cols));
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        std::vector<float> x(c.x);
        x[1234] = bad;
        std::vector<std::string> isas{"scalar"};
        if (cpu_has_avx512_vbmi_vnni()) isas.push_back("avx512");
        for (const auto& isa : isas)
            for (int threads : {1, 2}) {
                std::vector<float> y(rows, 0.f);
                bitgemv_i8lut(CpuContext::make(isa, threads), m, x.data(), y.data(), scratch.data());
                for (int r = 0; r < rows; ++r) {
                    if (std::isnan(bad))
                        ASSERT_TRUE(std::isnan(y[r])) << isa << " threads " << threads << " row " << r;
                    else
                        ASSERT_FALSE(std::isfinite(y[r])) << isa << " threads " << threads << " row " << r;
                }
            }
    }
}

// The same for the default int16-table kernel, token by token and batched.
TEST(BitGemvI16, NaNAndInfinityInTheInputReachEveryOutput) {
    const int rows = 70, cols = 3100, T = 3;
    Case c = make_case(rows, cols, 2025);
    auto m = repack_i16lut(c.packed.data(), rows, cols);
    const size_t sb = i16lut_scratch_bytes(cols);
    std::vector<uint8_t> scratch(T * sb);
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        std::vector<float> x(T * (size_t)cols);
        for (int j = 0; j < T; ++j) std::copy(c.x.begin(), c.x.end(), x.begin() + (size_t)j * cols);
        x[1234] = bad;  // token 0 only
        std::vector<std::string> isas{"scalar"};
        if (cpu_has_avx2()) isas.push_back("avx2");
        if (cpu_has_avx512()) isas.push_back("avx512");
        for (const auto& isa : isas)
            for (int threads : {1, 2}) {
                const CpuContext cx = CpuContext::make(isa, threads);
                std::vector<float> y(rows, 0.f), yb(T * (size_t)rows, 0.f);
                bitgemv_i16lut(cx, m, x.data(), y.data(), scratch.data());
                bitgemm_i16lut(cx, m, x.data(), cols, T, yb.data(), rows, scratch.data(), sb);
                for (int r = 0; r < rows; ++r) {
                    for (float v : {y[r], yb[r]}) {
                        if (std::isnan(bad))
                            ASSERT_TRUE(std::isnan(v)) << isa << " threads " << threads << " row " << r;
                        else
                            ASSERT_FALSE(std::isfinite(v)) << isa << " threads " << threads << " row " << r;
                    }
                    ASSERT_TRUE(std::isfinite(yb[rows + r])) << "token 1 took token 0's NaN: " << isa;
                }
            }
    }
}
