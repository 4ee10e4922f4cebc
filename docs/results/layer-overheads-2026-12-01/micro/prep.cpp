// Session 21: i16lut_prepare alone (AVX-512), 1 thread and THREADS threads at once, per width.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cpu/BitGemvI16.h"
using namespace bimamba::kernels;
using clk = std::chrono::steady_clock;
int main(int argc, char** argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 16;
    auto cx = CpuContext::make("auto", 1);
    for (int cols : {2560, 5120}) {
        std::vector<float> x(cols);
        std::mt19937 r(1);
        std::normal_distribution<float> nd;
        for (auto& v : x) v = nd(r);
        auto run = [&](double* med) {
            std::vector<uint8_t> s(i16lut_scratch_bytes(cols));
            std::vector<double> t;
            for (int i = 0; i < 3000; ++i) {
                auto t0 = clk::now();
                i16lut_prepare(cx, x.data(), cols, s.data());
                if (i >= 500) t.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
            }
            std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
            *med = t[t.size() / 2];
        };
        double one;
        run(&one);
        std::vector<double> each(threads);
        std::vector<std::thread> th;
        for (int i = 0; i < threads; ++i) th.emplace_back([&, i] { run(&each[i]); });
        for (auto& h : th) h.join();
        std::sort(each.begin(), each.end());
        std::printf("i16lut_prepare %d cols: 1 thread %.2f us; %d at once: median %.2f us, worst %.2f us\n", cols, one,
                    threads, each[threads / 2], each.back());
    }
}
