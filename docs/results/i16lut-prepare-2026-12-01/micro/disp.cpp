// Wide i16lut dispatch variants, alternated per rep in one process.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>
#include <immintrin.h>
#include "kernels/cpu/BitGemvI16.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/ThreadPool.h"
#include "kern.h"
#include "kernels/cpu/HugePages.h"
#include <map>
#include <string>
typedef void (*KF)(const I16LutMatrix&, const uint8_t*, int, int, float*);
using namespace bimamba::kernels;
using clk = std::chrono::steady_clock;
volatile long sink;

static void run(const CpuContext& cx, const I16LutMatrix& m, const float* x, float* y, uint8_t* scratch, int grain,
                int pf, KF kf) {
    static std::atomic<uint64_t> calls{0};
    const uint64_t call = ++calls;
    const std::thread::id caller = std::this_thread::get_id();
    const size_t bytes = i16lut_scratch_bytes(m.cols);
    cx.threads().parallel_for(m.blocks, grain, [&](int a, int b) {
        thread_local uint64_t prepared = 0;
        thread_local std::vector<uint8_t> own;
        uint8_t* s = scratch;
        if (std::this_thread::get_id() != caller) {
            if (own.size() < bytes) own.resize(bytes);
            s = own.data();
        }
        if (prepared != call) {
            if (pf) {
                const size_t bb = (size_t)m.pairs * 32;
                const uint8_t* d = m.bytes() + (size_t)a * bb;
                const int nb = std::min(4, b - a);
                for (int j = 0; j < nb; ++j)
                    for (int o = 0; o < pf; o += 64)
                        if (getenv("PFT2"))
                            _mm_prefetch((const char*)d + j * bb + o, _MM_HINT_T2);
                        else
                            _mm_prefetch((const char*)d + j * bb + o, _MM_HINT_T0);
            }
            i16lut_prepare(cx, x, m.cols, s);
            prepared = call;
        }
        kf(m, s, a, b, y);
    });
}

int main(int argc, char** argv) {
    int rows = atoi(argv[1]), cols = atoi(argv[2]), layers = atoi(argv[3]), reps = atoi(argv[4]);
    auto cx = CpuContext::make("auto", 2);
    std::mt19937 rng(1);
    std::vector<I16LutMatrix> ms;
    size_t stride = bit_row_stride(cols);
    std::vector<uint8_t> signs(rows * stride);
    for (int l = 0; l < layers; ++l) {
        for (auto& b : signs) b = rng();
        ms.push_back(repack_i16lut(signs.data(), rows, cols));
    }
    size_t mbytes = ms[0].data.size();
    static HugeBuffer hb(layers * ((mbytes + 63) / 64 * 64));
    {
        size_t off = 0;
        for (auto& m : ms) {
            memcpy(hb.data() + off, m.data.data(), m.data.size());
            m.place(hb.data() + off);
            off += (mbytes + 63) / 64 * 64;
        }
    }
    printf("huge %d\n", (int)hb.huge_aligned());
    std::vector<float> x(cols), y(rows);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    uint8_t* scratch = (uint8_t*)aligned_alloc(64, (i16lut_scratch_bytes(cols) + 63) / 64 * 64);
    struct V {
        const char* name;
        int grain, pf;
        KF kf;
    };
    std::map<std::string, KF> K = {
        {"lib", bitgemv_i16lut_blocks_avx512}, {"n4p2k0", kern<4, 2048, 3>}, {"n4p1k0", kern<4, 1024, 3>},
        {"n4p4k0", kern<4, 4096, 3>},          {"n4p2k1", kern<4, 2048, 2>}, {"n4p4k1", kern<4, 4096, 2>},
        {"n4p8k1", kern<4, 8192, 2>},          {"n4p0", kern<4, 0, 3>},      {"n2p2k0", kern<2, 2048, 3>},
        {"n1p2k0", kern<1, 2048, 3>},          {"n8p2k0", kern<8, 2048, 3>}, {"n4p4k2", kern<4, 4096, 1>},
        {"n4p1k1", kern<4, 1024, 2>},          {"n4p2k2", kern<4, 2048, 1>}, {"n1p2k1", kern<1, 2048, 2>},
        {"n1p4k1", kern<1, 4096, 2>},          {"n2p2k1", kern<2, 2048, 2>}, {"n8p2k1", kern<8, 2048, 2>},
        {"n4p2nta", kern<4, 2048, 0>},         {"n1p1k0", kern<1, 1024, 3>}, {"n1p4k0", kern<1, 4096, 3>},
        {"n1p3k0", kern<1, 3072, 3>},          {"n1p0", kern<1, 0, 3>}};
    std::vector<V> vs;
    for (int i = 5; i + 3 < argc; i += 4)
        vs.push_back({argv[i], atoi(argv[i + 1]), atoi(argv[i + 2]), K.at(argv[i + 3])});
    std::vector<std::vector<double>> t(vs.size());
    std::vector<char> flush(layers > 8 ? 256 << 20 : 0, 1);
    for (int r = 0; r < reps; ++r)
        for (size_t v = 0; v < vs.size(); ++v) {
            {
                long acc = 0;
                for (size_t i = 0; i < flush.size(); i += 64) acc += flush[i];
                sink += acc;
            }
            for (int l = 0; l < (layers > 8 ? 0 : 3); ++l)
                run(cx, ms[l % layers], x.data(), y.data(), scratch, vs[v].grain, vs[v].pf, vs[v].kf);
            auto t0 = clk::now();
            for (int l = 0; l < layers; ++l)
                run(cx, ms[l], x.data(), y.data(), scratch, vs[v].grain, vs[v].pf, vs[v].kf);
            t[v].push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count() / layers);
        }
    for (size_t v = 0; v < vs.size(); ++v) {
        auto s = t[v];
        std::sort(s.begin(), s.end());
        std::vector<double> ratio;
        for (int r = 0; r < reps; ++r) ratio.push_back(t[v][r] / t[0][r]);
        std::sort(ratio.begin(), ratio.end());
        printf(
            "%-10s us/layer min %.2f q1 %.2f med %.2f  ratio-to-first med %.3f (q1 %.3f q3 %.3f)  %.1f GB/s at med\n",
            vs[v].name, s[0], s[reps / 4], s[reps / 2], ratio[reps / 2], ratio[reps / 4], ratio[3 * reps / 4],
            mbytes / s[reps / 2] / 1e3);
    }
}
