// SSM f16 step from DRAM: L layers x H heads of 64x128 f16 state, alternated prefetch distances.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "kernels/cpu/HugePages.h"
#include "kernels/cpu/SsmStep.h"
#include "kernels/cpu/ThreadPool.h"
namespace bimamba::kernels {
extern int ssm_prefetch_bytes_experiment;
}
using namespace bimamba::kernels;
using clk = std::chrono::steady_clock;
volatile long sink;
int main(int argc, char** argv) {
    const int L = atoi(argv[1]), H = atoi(argv[2]), reps = atoi(argv[3]), threads = atoi(argv[4]);
    std::vector<int> dist;
    for (int i = 5; i < argc; ++i) dist.push_back(atoi(argv[i]));
    const int hd = 64, ns = 128;
    auto cx = CpuContext::make("avx2", threads);
    HugeBuffer st((size_t)L * H * hd * ns * 2);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    std::vector<float> x(H * hd), B(ns), C(ns), y(H * hd);
    for (auto& v : x) v = nd(rng);
    for (auto& v : B) v = nd(rng);
    for (auto& v : C) v = nd(rng);
    std::vector<char> fl(256 << 20, 1);
    std::vector<std::vector<double>> t(dist.size());
    for (int r = 0; r < reps; ++r)
        for (size_t v = 0; v < dist.size(); ++v) {
            ssm_prefetch_bytes_experiment = dist[v];
            long a = 0;
            for (size_t i = 0; i < fl.size(); i += 64) a += fl[i];
            sink = sink + a;
            auto t0 = clk::now();
            for (int l = 0; l < L; ++l)
                cx.threads().parallel_for(H, 1, [&](int h0, int h1) {
                    for (int h = h0; h < h1; ++h)
                        ssm_head_step16(cx, (uint16_t*)st.data() + ((size_t)l * H + h) * hd * ns, StateType::F16, hd,
                                        ns, 0.9f, 0.01f, x.data() + h * hd, B.data(), C.data(), 1.0f, y.data() + h * hd,
                                        false);
                });
            t[v].push_back(std::chrono::duration<double, std::milli>(clk::now() - t0).count());
        }
    const double bytes = 2.0 * L * H * hd * ns * 2;
    for (size_t v = 0; v < dist.size(); ++v) {
        std::vector<double> ratio;
        for (int r = 0; r < reps; ++r) ratio.push_back(t[v][r] / t[0][r]);
        std::sort(ratio.begin(), ratio.end());
        auto s = t[v];
        std::sort(s.begin(), s.end());
        printf(
            "prefetch %5d B: %.3f ms per pass (%.1f GB/s read+written) [%.3f-%.3f]; /first med %.3f q1 %.3f q3 %.3f\n",
            dist[v], s[reps / 2], bytes / s[reps / 2] / 1e6, s[0], s[reps - 1], ratio[reps / 2], ratio[reps / 4],
            ratio[3 * reps / 4]);
    }
}
