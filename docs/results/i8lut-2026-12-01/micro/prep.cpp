#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include "kernels/cpu/BitGemvI8.h"
using namespace bimamba::kernels;
using clk = std::chrono::steady_clock;
int main(int argc, char** argv) {
    int cols = atoi(argv[1]);
    auto cx = CpuContext::make("auto", 1);
    std::vector<float> x(cols);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    I8LutScratch L(cols);
    std::vector<uint8_t> s(L.bytes);
    for (int rep = 0; rep < 3; ++rep) {
        auto t0 = clk::now();
        for (int i = 0; i < 10000; ++i) i8lut_prepare(cx, x.data(), cols, s.data());
        auto t1 = clk::now();
        for (int i = 0; i < 10000; ++i) i8lut_quantize_avx2(x.data(), cols, s.data() + L.mult, (int8_t*)s.data() + L.q);
        auto t2 = clk::now();
        for (int i = 0; i < 10000; ++i)
            i8lut_tables_avx512((int8_t*)s.data() + L.q, 8 * L.chunks, (int8_t*)s.data() + L.tables);
        auto t3 = clk::now();
        auto us = [](auto a, auto b) { return std::chrono::duration<double, std::micro>(b - a).count() / 10000; };
        printf("%d cols: prepare %.3f us, quantize %.3f, tables %.3f\n", cols, us(t0, t1), us(t1, t2), us(t2, t3));
    }
}
