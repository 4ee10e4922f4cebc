// The ±1 GEMV and the fp16/fp32 GEMVs: scalar references against a float64
// computation from the unpacked matrix, SIMD and threaded paths against the
// scalar reference, on random inputs of odd sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/base/Safetensors.h"
#include "kernels/cpu/BitGemvLut.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/SsmStep.h"
#include "kernels/cpu/ThreadPool.h"

using namespace bimamba;
using namespace bimamba::kernels;

namespace {
const int kSizes[][2] = {{1, 1}, {3, 7}, {5, 8}, {7, 9}, {13, 31}, {4, 33}, {37, 64}, {61, 127}, {129, 1531}, {515, 700}};

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
        ThreadPool::set_global_threads(threads);
        for (const char* isa : {"scalar", "auto"}) {
            set_isa(isa);
            Case c = make_case(1031, 257, 7 + threads);  // large enough to be split across threads
            std::vector<float> ref(c.rows), got(c.rows);
            bitgemv_ref(c.packed.data(), c.rows, c.cols, c.x.data(), ref.data());
            bitgemv(c.packed.data(), c.rows, c.cols, c.x.data(), got.data());
            for (int r = 0; r < c.rows; ++r) ASSERT_NEAR(got[r], ref[r], 1e-5 * c.scale) << isa << " threads " << threads;
        }
    }
    set_isa("auto");
}

TEST(Gemv, F16AndF32MatchFloat64) {
    uint32_t seed = 300;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        std::vector<uint16_t> w16(c.w.size());
        std::vector<float> w16f(c.w.size());
        for (size_t i = 0; i < c.w.size(); ++i) {
            w16[i] = st::f32_to_f16(c.w[i]);
            w16f[i] = st::f16_to_f32(w16[i]);
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
                ASSERT_NEAR(y[r], want[r], 1e-5 * scale + 1e-6) << what << " " << c.rows << "x" << c.cols << " row " << r;
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
        f16gemv(w16.data(), c.rows, c.cols, c.x.data(), y.data());
        check(want16, "f16 dispatch");
    }
}

TEST(Gemv, UnknownIsaIsRefusedByName) {
    try {
        set_isa("avx9000");
        FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("avx9000"), std::string::npos);
    }
    set_isa("auto");
}

TEST(BitGemvLut3, TiledLayoutMatchesRowMajorAndAvx2MatchesScalar) {
    uint32_t seed = 500;
    for (auto& s : kSizes) {
        Case c = make_case(s[0], s[1], seed++);
        auto m = repack_lut3(c.packed.data(), c.rows, c.cols);
        std::vector<float> ref(c.rows), got(c.rows, 777.f), tables(8 * m.groups);
        bitgemv_lut3_ref(m, c.x.data(), ref.data());
        for (int r = 0; r < c.rows; ++r)
            ASSERT_NEAR(ref[r], c.want[r], 1e-5 * c.scale + 1e-6) << "tiled ref " << c.rows << "x" << c.cols << " row " << r;
        if (!cpu_has_avx2()) continue;
        for (int threads : {1, 2}) {
            ThreadPool::set_global_threads(threads);
            bitgemv_lut3(m, c.x.data(), got.data(), tables.data());
            for (int r = 0; r < c.rows; ++r)
                ASSERT_NEAR(got[r], c.want[r], 1e-5 * c.scale + 1e-6) << "lut3 avx2 " << c.rows << "x" << c.cols << " row " << r;
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
