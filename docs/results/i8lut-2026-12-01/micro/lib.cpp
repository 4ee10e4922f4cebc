// i16lut vs i8lut through the library dispatchers, L layers from DRAM, alternated reps.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>
#include "kernels/cpu/BitGemvI16.h"
#include "kernels/cpu/BitGemvI8.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/HugePages.h"
#include "kernels/cpu/ThreadPool.h"
using namespace bimamba::kernels;
using clk = std::chrono::steady_clock;
volatile long sink;
int main(int argc, char** argv) {
    const int rows = atoi(argv[1]), cols = atoi(argv[2]), reps = atoi(argv[3]), threads = atoi(argv[4]),
              layers = atoi(argv[5]);
    const bool warm = argc > 6 && atoi(argv[6]);
    auto cx = CpuContext::make("auto", threads);
    std::mt19937 rng(1);
    std::vector<uint8_t> signs(rows * bit_row_stride(cols));
    std::vector<I16LutMatrix> A;
    std::vector<I8LutMatrix> B;
    for (int l = 0; l < layers; ++l) {
        for (auto& b : signs) b = rng();
        A.push_back(repack_i16lut(signs.data(), rows, cols));
        B.push_back(repack_i8lut(signs.data(), rows, cols));
    }
    const size_t ab = A[0].data.size(), bb = B[0].data.size();
    HugeBuffer HA(layers * ab), HB(layers * bb);
    for (int l = 0; l < layers; ++l) {
        memcpy(HA.data() + l * ab, A[l].data.data(), ab);
        A[l].place(HA.data() + l * ab);
        memcpy(HB.data() + l * bb, B[l].data.data(), bb);
        B[l].place(HB.data() + l * bb);
    }
    std::vector<float> x(cols), y(rows + 64);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    std::vector<uint8_t> s16(i16lut_scratch_bytes(cols) + 64), s8(i8lut_scratch_bytes(cols) + 64);
    std::vector<char> fl(256 << 20, 1);
    auto flush = [&] {
        long a = 0;
        for (size_t i = 0; i < fl.size(); i += 64) a += fl[i];
        sink = sink + a;
    };
    std::vector<double> ta, tb, tp, tc;
    for (int r = 0; r < reps; ++r) {
        if (!warm) flush();
        auto t0 = clk::now();
        for (int l = 0; l < layers; ++l) bitgemv_i16lut(cx, A[l], x.data(), y.data(), s16.data());
        auto t1 = clk::now();
        if (!warm) flush();
        auto t2 = clk::now();
        for (int l = 0; l < layers; ++l) bitgemv_i8lut(cx, B[l], x.data(), y.data(), s8.data());
        auto t3 = clk::now();
        for (int l = 0; l < layers; ++l) i8lut_prepare(cx, x.data(), cols, s8.data());
        auto t4 = clk::now();
        if (!warm) flush();
        auto t5 = clk::now();
        for (int l = 0; l < layers; ++l) {  // the caller prepares, the pool reads its tables (8f111ce)
            i8lut_prepare(cx, x.data(), cols, s8.data());
            const int grain = cols >= kI8WideCols && B[l].blocks >= ThreadPool::kChunksPerThread * 4 * threads ? 4 : 1;
            cx.threads().parallel_for(B[l].blocks, grain, [&](int a, int b) {
                bitgemv_i8lut_blocks_avx512(B[l], s8.data(), a, b, y.data());
            });
        }
        auto t6 = clk::now();
        tc.push_back(std::chrono::duration<double, std::micro>(t6 - t5).count() / layers);
        ta.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / layers);
        tb.push_back(std::chrono::duration<double, std::micro>(t3 - t2).count() / layers);
        tp.push_back(std::chrono::duration<double, std::micro>(t4 - t3).count() / layers);
    }
    std::vector<double> ra, rc;
    for (int r = 0; r < reps; ++r) ra.push_back(tb[r] / ta[r]);
    for (int r = 0; r < reps; ++r) rc.push_back(tb[r] / tc[r]);
    std::sort(tc.begin(), tc.end());
    std::sort(rc.begin(), rc.end());
    printf("  i8 caller-prepared %.2f us/layer; own/caller ratio med %.3f q1 %.3f q3 %.3f\n", tc[reps / 2],
           rc[reps / 2], rc[reps / 4], rc[3 * reps / 4]);
    std::sort(ta.begin(), ta.end());
    std::sort(tb.begin(), tb.end());
    std::sort(ra.begin(), ra.end());
    std::sort(tp.begin(), tp.end());
    printf("%dx%d t%d %s: us/layer i16 %.2f i8 %.2f (prepare %.2f) ratio med %.3f q1 %.3f q3 %.3f\n", rows, cols,
           threads, warm ? "warm" : "DRAM", ta[reps / 2], tb[reps / 2], tp[reps / 2], ra[reps / 2], ra[reps / 4],
           ra[3 * reps / 4]);
}
