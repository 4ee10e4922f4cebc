// Session 21: is the i16lut kernel compute- or memory-bound at 16 Xeon threads?
// usage: rate ROWS COLS THREADS LAYERS REPS
// lone-L2:   the blocks kernel alone on one thread, rows/THREADS rows, weights in L2 (no pool)
// each-L2:   THREADS plain std::threads at once, each its own rows/THREADS rows in L2 (no pool)
// pool-L2:   the dispatcher on one layer over and over (each thread's share in its L2)
// pool-L3:   LAYERS layers without a flush between reps (L3 where they fit)
// pool-DRAM: LAYERS layers with a 512 MB read between reps
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cpu/BitGemvI16.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/HugePages.h"
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
              reps = atoi(argv[5]);
    std::vector<int> chunk_list;
    for (int i = 6; i < argc; ++i) chunk_list.push_back(atoi(argv[i]));
    if (chunk_list.empty()) chunk_list.push_back(4);
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
    std::vector<float> x(cols);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    const size_t sb = i16lut_scratch_bytes(cols) + 64;
    std::vector<char> fl(512 << 20, 1);
    auto flush = [&] {
        long a = 0;
        for (size_t i = 0; i < fl.size(); i += 64) a += fl[i];
        sink = sink + a;
    };
    auto cx1 = CpuContext::make("auto", 1);
    auto cx = CpuContext::make("auto", threads);
    const int blocks_per = (A[0].blocks + threads - 1) / threads;
    const double share_mb = (double)ab * blocks_per / A[0].blocks / 1e6;
    std::printf("%dx%d, %d threads, %d layers of %.2f MB, a thread's share %.3f MB (%d blocks)\n", rows, cols, threads,
                layers, ab / 1e6, share_mb, blocks_per);
    // each thread's own prepared input; the kernel alone
    auto kern = cx1.avx512() ? bitgemv_i16lut_blocks_avx512 : bitgemv_i16lut_blocks_avx2;
    auto kernel_loop = [&](int t, int iters, double* us) {
        std::vector<uint8_t> s(sb);
        std::vector<float> y(rows + 64);
        i16lut_prepare(cx1, x.data(), cols, s.data());
        const int b0 = std::min(A[0].blocks, t * blocks_per), b1 = std::min(A[0].blocks, b0 + blocks_per);
        for (int i = 0; i < 20; ++i) kern(A[t % layers], s.data(), b0, b1, y.data());
        auto t0 = clk::now();
        for (int i = 0; i < iters; ++i) kern(A[t % layers], s.data(), b0, b1, y.data());
        *us = std::chrono::duration<double, std::micro>(clk::now() - t0).count() / iters;
    };
    for (int r = 0; r < 2; ++r) {
        double us;
        kernel_loop(0, 2000, &us);
        std::printf("lone-L2   : %8.2f us per share, %6.2f GB/s\n", us, share_mb * 1e3 / us);
        std::vector<double> each(threads);
        std::vector<std::thread> th;
        for (int t = 0; t < threads; ++t) th.emplace_back([&, t] { kernel_loop(t, 2000, &each[t]); });
        for (auto& h : th) h.join();
        const double worst = *std::max_element(each.begin(), each.end());
        std::printf("each-L2   : %8.2f us per share (median), worst %.2f; %6.2f GB/s per thread, %7.2f GB/s all\n",
                    med(each), worst, share_mb * 1e3 / med(each), share_mb * 1e3 / med(each) * threads);
        std::vector<float> y(rows + 64);
        std::vector<uint8_t> s(sb);
        for (int cpt : chunk_list) {
            cx.threads().chunks_per_thread_exp = cpt;
            std::printf("chunks per thread %d\n", cpt);
            std::vector<double> tl2, tl3, tdr;
            for (int i = 0; i < 50; ++i) bitgemv_i16lut(cx, A[0], x.data(), y.data(), s.data());
            for (int i = 0; i < reps * 20; ++i) {
                auto t0 = clk::now();
                bitgemv_i16lut(cx, A[0], x.data(), y.data(), s.data());
                tl2.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
            }
            for (int i = 0; i < reps; ++i) {
                for (int pass = 0; pass < 2; ++pass) {
                    if (pass == 1) flush();
                    auto t0 = clk::now();
                    for (int l = 0; l < layers; ++l) bitgemv_i16lut(cx, A[l], x.data(), y.data(), s.data());
                    (pass ? tdr : tl3)
                        .push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count() / layers);
                }
            }
            std::printf("pool-L2   : %8.2f us per layer, %7.2f GB/s\n", med(tl2), ab / 1e3 / med(tl2));
            std::printf("pool-L3   : %8.2f us per layer, %7.2f GB/s\n", med(tl3), ab / 1e3 / med(tl3));
            std::printf("pool-DRAM : %8.2f us per layer, %7.2f GB/s\n", med(tdr), ab / 1e3 / med(tdr));
            std::printf("hand-off  : %8.2f us (empty, median of 200)\n", cx.threads().measure_handoff_micros(200));
        }
        std::fflush(stdout);
    }
}
