// out_proj K-split prototype: each layer's 1536x3072 as two 1536x1536 column tiles
// (contiguous), chunks alternate tiles, per-thread per-tile tables, partial outputs summed.
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
static void split(const CpuContext& cx, const I16LutMatrix* t, const float* x, float* y, float* y1, uint8_t* scratch,
                  int cpt) {
    static std::atomic<uint64_t> calls{0};
    const uint64_t call = ++calls;
    const int hc = t[0].cols, blocks = t[0].blocks;
    const size_t bytes = i16lut_scratch_bytes(hc);
    const int per = (blocks + cpt - 1) / cpt;  // blocks per chunk
    cx.threads().parallel_for(2 * cpt, 1, [&](int a, int b) {
        thread_local uint64_t prepared[2] = {0, 0};
        thread_local std::vector<uint8_t> own[2];
        for (int u = a; u < b; ++u) {
            const int tile = u % 2, c = u / 2;
            if (own[tile].size() < bytes) own[tile].resize(bytes);
            if (prepared[tile] != call) {
                i16lut_prepare(cx, x + tile * hc, hc, own[tile].data());
                prepared[tile] = call;
            }
            bitgemv_i16lut_blocks_avx512(t[tile], own[tile].data(), c * per, std::min(blocks, (c + 1) * per),
                                         tile ? y1 : y);
        }
    });
    for (int r = 0; r < t[0].rows; ++r) y[r] += y1[r];
}
int main(int argc, char** argv) {
    int rows = 1536, cols = 3072, layers = 48, reps = atoi(argv[1]);
    auto cx = CpuContext::make("auto", 2);
    std::mt19937 rng(1);
    std::vector<I16LutMatrix> full, half;
    std::vector<uint8_t> signs(rows * bit_row_stride(cols)), hs(rows * bit_row_stride(cols / 2));
    for (int l = 0; l < layers; ++l) {
        for (auto& b : signs) b = rng();
        full.push_back(repack_i16lut(signs.data(), rows, cols));
        for (int t = 0; t < 2; ++t) {
            for (auto& b : hs) b = rng();
            half.push_back(repack_i16lut(hs.data(), rows, cols / 2));
        }
    }
    size_t fb = full[0].data.size(), hb = half[0].data.size();
    HugeBuffer A(layers * fb), B(layers * 2 * hb);
    for (int l = 0; l < layers; ++l) {
        memcpy(A.data() + l * fb, full[l].data.data(), fb);
        full[l].place(A.data() + l * fb);
    }
    for (int i = 0; i < 2 * layers; ++i) {
        memcpy(B.data() + i * hb, half[i].data.data(), hb);
        half[i].place(B.data() + i * hb);
    }
    std::vector<float> x(cols), y(rows), y1(rows);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    uint8_t* scratch = (uint8_t*)aligned_alloc(64, (i16lut_scratch_bytes(cols) + 63) / 64 * 64);
    std::vector<char> flush(256 << 20, 1);
    const char* names[] = {"lib", "ksplit4", "ksplit2", "ksplit8"};
    int cpts[] = {0, 4, 2, 8};
    std::vector<double> t[4];
    for (int r = 0; r < reps; ++r)
        for (int v = 0; v < 4; ++v) {
            {
                long acc = 0;
                for (size_t i = 0; i < flush.size(); i += 64) acc += flush[i];
                sink += acc;
            }
            auto t0 = clk::now();
            for (int l = 0; l < layers; ++l)
                if (v == 0)
                    bitgemv_i16lut(cx, full[l], x.data(), y.data(), scratch);
                else
                    split(cx, &half[2 * l], x.data(), y.data(), y1.data(), scratch, cpts[v]);
            t[v].push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count() / layers);
        }
    for (int v = 0; v < 4; ++v) {
        auto s = t[v];
        std::sort(s.begin(), s.end());
        std::vector<double> ratio;
        for (int r = 0; r < reps; ++r) ratio.push_back(t[v][r] / t[0][r]);
        std::sort(ratio.begin(), ratio.end());
        printf("%-8s us/layer min %.2f med %.2f  ratio med %.3f (q1 %.3f q3 %.3f)\n", names[v], s[0], s[reps / 2],
               ratio[reps / 2], ratio[reps / 4], ratio[3 * reps / 4]);
    }
}
