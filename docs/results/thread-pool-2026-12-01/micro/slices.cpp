// i16lut through the library dispatcher with BIMAMBA_I16_SLICES alternated
// per rep (1 = no column slices), L layers from DRAM, one process.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "kernels/cpu/BitGemvI16.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/HugePages.h"
#include "kernels/cpu/ThreadPool.h"
using namespace bimamba::kernels;
using clk = std::chrono::steady_clock;
volatile long sink;
int main(int argc, char** argv) {
    const int rows = atoi(argv[1]), cols = atoi(argv[2]), reps = atoi(argv[3]), threads = atoi(argv[4]),
              layers = atoi(argv[5]);
    std::vector<std::string> variants;
    for (int i = 6; i < argc; ++i) variants.push_back(argv[i]);
    auto cx = CpuContext::make("auto", threads);
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
    std::vector<float> x(cols), y(rows + 64), y0(rows + 64);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    std::vector<uint8_t> s16(i16lut_scratch_bytes(cols) + 64);
    std::vector<char> fl(512 << 20, 1);
    auto flush = [&] {
        long a = 0;
        for (size_t i = 0; i < fl.size(); i += 64) a += fl[i];
        sink = sink + a;
    };
    std::vector<std::vector<double>> t(variants.size());
    for (int r = 0; r < reps; ++r)
        for (size_t v = 0; v < variants.size(); ++v) {
            setenv("BIMAMBA_I16_SLICES", variants[v].c_str(), 1);
            flush();
            auto t0 = clk::now();
            for (int l = 0; l < layers; ++l) bitgemv_i16lut(cx, A[l], x.data(), y.data(), s16.data());
            auto t1 = clk::now();
            t[v].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / layers);
            if (v == 0)
                y0 = y;
            else if (memcmp(y.data(), y0.data(), rows * 4))
                printf("MISMATCH variant %s\n", variants[v].c_str());
        }
    printf("%dx%d t%d (%d layers, DRAM), slices=%d by default:", rows, cols, threads, layers,
           (unsetenv("BIMAMBA_I16_SLICES"), i16lut_column_slices(A[0], threads)));
    for (size_t v = 0; v < variants.size(); ++v) {
        std::vector<double> ratio;
        for (int r = 0; r < reps; ++r) ratio.push_back(t[v][r] / t[0][r]);
        std::sort(ratio.begin(), ratio.end());
        auto s = t[v];
        std::sort(s.begin(), s.end());
        printf("\n  slices %s: %.2f us/layer (%.1f GB/s) [%.2f-%.2f], /first med %.3f q1 %.3f q3 %.3f",
               variants[v].c_str(), s[reps / 2], ab / s[reps / 2] / 1e3, s[0], s[reps - 1], ratio[reps / 2],
               ratio[reps / 4], ratio[3 * reps / 4]);
    }
    printf("\n");
}
