// Session 22: one decode projection, the old steps around the GEMV (norm, α⊙x and β·x,
// tables, on the calling thread; the β term and the residual add after) against the
// same work inside the hand-off (bitgemv_i16lut_in_pool), alternated call by call.
// usage: proj ROWS COLS THREADS LAYERS REPS NORM(0/1)
// L2: one layer over and over; DRAM: LAYERS layers after a 512 MB read.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/BitGemvI16.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/HugePages.h"
#include "kernels/cpu/RmsNorm.h"
#include "kernels/cpu/ThreadPool.h"
using namespace bimamba::kernels;
using clk = std::chrono::steady_clock;
volatile long sink;

static double med(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

int main(int argc, char** argv) {
    const int rows = atoi(argv[1]), cols = atoi(argv[2]), threads = atoi(argv[3]), layers = atoi(argv[4]),
              reps = atoi(argv[5]), norm = atoi(argv[6]);
    std::mt19937 rng(1);
    std::vector<uint8_t> signs(rows * bit_row_stride(cols));
    std::vector<I16LutMatrix> A;
    for (int l = 0; l < layers; ++l) {
        for (auto& b : signs) b = rng();
        A.push_back(repack_i16lut(signs.data(), rows, cols));
    }
    const size_t ab = A[0].data.size();
    HugeBuffer HA(layers * ab);
    for (int l = 0; l < layers; ++l) {
        memcpy(HA.data() + l * ab, A[l].data.data(), ab);
        A[l].place(HA.data() + l * ab);
    }
    std::normal_distribution<float> nd;
    std::vector<float> in(cols), nw(cols), alpha(cols), beta(cols), res(rows), y(rows + 64), h(cols), ax(cols);
    for (auto& v : in) v = nd(rng);
    for (auto& v : nw) v = 1 + 0.1f * nd(rng);
    for (auto& v : alpha) v = 0.02f + 0.001f * nd(rng);
    for (auto& v : beta) v = 0.001f * nd(rng);
    for (auto& v : res) v = nd(rng);
    std::vector<uint8_t> s(i16lut_in_pool_scratch_bytes(cols) + 64);
    std::vector<char> fl(512 << 20, 1);
    auto flush = [&] {
        long a = 0;
        for (size_t i = 0; i < fl.size(); i += 64) a += fl[i];
        sink = sink + a;
    };
    auto cx = CpuContext::make("auto", threads);
    const float r = 0.7f;
    auto old_call = [&](const I16LutMatrix& m) {
        const float* x = in.data();
        if (norm) {
            rmsnorm(cx, in.data(), nw.data(), cols, 1e-5f, h.data());
            x = h.data();
        }
        const float b = (float)binary_input(cx, alpha.data(), beta.data(), x, ax.data(), cols);
        bitgemv_i16lut(cx, m, ax.data(), y.data(), s.data());
        for (int i = 0; i < rows; ++i) y[i] += b;
        if (!norm)
            for (int i = 0; i < rows; ++i) res[i] += r * y[i];
    };
    auto new_call = [&](const I16LutMatrix& m) {
        auto input = [&](float* w, float* x) {
            const float* src = in.data();
            if (norm) {
                rmsnorm(cx, in.data(), nw.data(), cols, 1e-5f, w);
                src = w;
            }
            return (float)binary_input(cx, alpha.data(), beta.data(), src, x, cols);
        };
        I16LutRowsDone done;
        if (!norm)
            done = [&](float* yy, int r0, int r1) {
                for (int i = r0; i < r1; ++i) res[i] += r * yy[i];
            };
        bitgemv_i16lut_in_pool(cx, m, input, done, y.data(), s.data());
    };
    std::printf("%dx%d, %d threads, %d layers of %.2f MB, %s\n", rows, cols, threads, layers, ab / 1e6,
                norm ? "in_proj (norm before)" : "out_proj (residual after)");
    for (int i = 0; i < 100; ++i) {
        old_call(A[0]);
        new_call(A[0]);
    }
    std::vector<double> l2[2], dr[2];
    for (int i = 0; i < reps * 40; ++i)
        for (int v = 0; v < 2; ++v) {
            auto t0 = clk::now();
            if (v)
                new_call(A[0]);
            else
                old_call(A[0]);
            l2[v].push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
        }
    for (int i = 0; i < reps; ++i)
        for (int v0 = 0; v0 < 2; ++v0) {
            const int v = (i + v0) % 2;
            flush();
            auto t0 = clk::now();
            for (int l = 0; l < layers; ++l) {
                if (v)
                    new_call(A[l]);
                else
                    old_call(A[l]);
            }
            dr[v].push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count() / layers);
        }
    std::printf("L2   per call: old %7.2f us, in pool %7.2f us (median of %zu each)\n", med(l2[0]), med(l2[1]),
                l2[0].size());
    std::printf("DRAM per call: old %7.2f us, in pool %7.2f us (median of %zu each)\n", med(dr[0]), med(dr[1]),
                dr[0].size());
    std::fflush(stdout);
}
