#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include "kernels/cpu/BitGemvI16.h"
using namespace bimamba::kernels;
using clk = std::chrono::steady_clock;
int main() {
    int cols = 3072;
    auto cx = CpuContext::make("auto", 1);
    std::vector<float> x(cols), inv(cols / 32, 1.0f);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    std::vector<uint8_t> s(i16lut_scratch_bytes(cols));
    I16LutScratch L(cols);
    int16_t* q = (int16_t*)(s.data() + L.q);
    for (int rep = 0; rep < 3; ++rep) {
        auto t0 = clk::now();
        for (int i = 0; i < 10000; ++i) i16lut_prepare(cx, x.data(), cols, s.data());
        auto t1 = clk::now();
        for (int i = 0; i < 10000; ++i) i16lut_quantize_avx2(x.data(), cols, inv.data(), q, L.pairs * 8);
        auto t2 = clk::now();
        for (int i = 0; i < 10000; ++i)
            i16lut_tables_avx2(q, 2 * L.pairs, s.data() + L.tables, (int16_t*)(s.data() + L.words));
        auto t3 = clk::now();
        auto t4 = clk::now();
        for (int i = 0; i < 10000; ++i) i16lut_word_tables_avx512(q, L.pairs, (int16_t*)(s.data() + L.words));
        auto t5 = clk::now();
        std::vector<float> sk(96);
        for (int i = 0; i < 10000; ++i) i16lut_chunk_scales_avx2(x.data(), 96, sk.data());
        auto t6 = clk::now();
        auto us = [](auto a, auto b) { return std::chrono::duration<double, std::micro>(b - a).count() / 10000; };
        printf("prepare %.3f us, quantize %.3f, tables %.3f words512 %.3f scales %.3f\n", us(t0, t1), us(t1, t2),
               us(t2, t3), us(t4, t5), us(t5, t6));
    }
}
