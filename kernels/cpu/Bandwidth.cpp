#include "kernels/cpu/Bandwidth.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "kernels/cpu/HugePages.h"
#include "kernels/cpu/ThreadPool.h"

namespace bimamba::kernels {

namespace {
// Sums 64-bit words with four independent accumulators (vectorised by the
// compiler); the result is kept so the loads cannot be optimised away.
uint64_t sum_words(const uint64_t* p, size_t n) {
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    for (; i < n; ++i) a += p[i];
    return a + b + c + d;
}
// Adds one to every word (a load and a store each; vectorised by the compiler).
void bump_words(uint64_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) p[i] += 1;
}

// Runs `pass(begin, end)` over the buffer split across the pool; GB/s of
// `bytes_per_pass` per repetition, sorted.
template <class F>
BandwidthResult timed_passes(ThreadPool& pool, size_t words, int repetitions, double bytes_per_pass, F pass) {
    const int blocks = 4096;
    std::vector<double> gbps;
    for (int r = 0; r < std::max(1, repetitions); ++r) {
        auto t0 = std::chrono::steady_clock::now();
        pool.parallel_for(blocks, 1, [&](int b0, int b1) { pass(words * b0 / blocks, words * b1 / blocks); });
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        gbps.push_back(bytes_per_pass / sec / 1e9);
    }
    std::sort(gbps.begin(), gbps.end());
    BandwidthResult res;
    res.best_gbps = gbps.back();
    res.median_gbps = gbps[gbps.size() / 2];
    res.bytes = words * 8;
    res.threads = pool.threads();
    return res;
}
}  // namespace

// A buffer of `words` words on huge pages, as the engine's weights and state
// (HugePages.h): the bound is measured under the same TLB conditions.
struct BandwidthProbe::Buffer {
    size_t words;
    HugeBuffer mem;
    Buffer(ThreadPool& pool, size_t n) : words(n), mem(n * 8) {
        pool.parallel_for(4096, 1, [&](int b0, int b1) {
            for (size_t i = words * b0 / 4096; i < words * b1 / 4096; ++i) get()[i] = i;
        });
    }
    uint64_t* get() const { return reinterpret_cast<uint64_t*>(mem.data()); }
};

BandwidthProbe::BandwidthProbe(ThreadPool& pool, size_t bytes)
    : pool_(pool), buf_(std::make_unique<Buffer>(pool, std::max<size_t>(bytes / 8, 4096))) {}
BandwidthProbe::~BandwidthProbe() = default;

BandwidthResult BandwidthProbe::update(int repetitions) {
    const size_t words = buf_->words;
    uint64_t* p = buf_->get();
    auto res =
        timed_passes(pool_, words, repetitions, 2.0 * words * 8, [&](size_t s, size_t e) { bump_words(p + s, e - s); });
    if (p[words / 2] == 0) res.best_gbps += 0;  // keep the stores observable
    return res;
}

BandwidthResult BandwidthProbe::read(int repetitions) {
    const size_t words = buf_->words;
    const uint64_t* p = buf_->get();
    std::atomic<uint64_t> sink{0};
    auto res = timed_passes(pool_, words, repetitions, 1.0 * words * 8,
                            [&](size_t s, size_t e) { sink += sum_words(p + s, e - s); });
    if (sink.load() == 42) res.best_gbps += 0;  // keep `sink` observable
    return res;
}

MemoryBound memory_bound(double weight_bytes, double state_bytes, double read_gbps, double update_gbps,
                         double tok_per_s) {
    MemoryBound b;
    if (read_gbps <= 0 || update_gbps <= 0) return b;
    const double t_weights = weight_bytes / (read_gbps * 1e9);
    const double t_state = 2.0 * state_bytes / (update_gbps * 1e9);
    b.bw_fraction = t_weights * tok_per_s;
    b.roofline = (t_weights + t_state) * tok_per_s;
    b.weights_ceiling = t_weights + t_state > 0 ? t_weights / (t_weights + t_state) : 0;
    return b;
}

namespace {
void pin_to(int cpu) {
    if (cpu < 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
}

// Eight independent multiply chains: the rate is the multiplier port's, which
// two hardware threads of one core share. Returns multiplies per second.
constexpr long kIters = 2'000'000;
constexpr double kMultiplies = 8.0 * kIters;
double multiply_rate(uint64_t seed, uint64_t* sink) {
    uint64_t a[8];
    for (int j = 0; j < 8; ++j) a[j] = seed + 2 * j + 1;
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < kIters; ++i)
        for (int j = 0; j < 8; ++j) a[j] = a[j] * 0x9E3779B97F4A7C15ull + (uint64_t)j;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t x = 0;
    for (uint64_t v : a) x ^= v;
    *sink = x;
    return kMultiplies / s;
}
}  // namespace

CoreShareResult measure_core_share(int threads) {
    CoreShareResult r;
    r.threads = std::max(1, threads);
    // Thread t runs on the t-th CPU this process may use (round robin where it
    // may use fewer): unpinned, new threads can start on their creator's CPU
    // and stay there for longer than the probe lasts.
    std::vector<int> cpus;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
    if (cpus.empty()) cpus.push_back(-1);
    uint64_t sink = 0;
    double alone = 0, together = 0;
    for (int rep = 0; rep < 3; ++rep) {  // best of 3 each: a moment's neighbour only lowers a rate
        std::thread([&] {
            pin_to(cpus[0]);
            alone = std::max(alone, multiply_rate(rep, &sink));
        }).join();
        if (r.threads == 1) continue;
        // All threads' work over the wall time until the last one ends (so
        // threads time-sliced on one CPU count as sharing it, whatever the slices).
        std::vector<uint64_t> sinks(r.threads);
        std::atomic<int> ready{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> ts;
        for (int t = 0; t < r.threads; ++t)
            ts.emplace_back([&, t] {
                pin_to(cpus[t % cpus.size()]);
                ready.fetch_add(1);
                while (!go.load()) std::this_thread::yield();
                multiply_rate(t, &sinks[t]);
            });
        while (ready.load() < r.threads) std::this_thread::yield();
        const auto t0 = std::chrono::steady_clock::now();
        go.store(true);
        for (auto& t : ts) t.join();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        together = std::max(together, kMultiplies / s);  // per thread: each did kMultiplies
        for (uint64_t v : sinks) sink ^= v;
    }
    static volatile uint64_t keep;
    keep = sink;
    r.lone_per_ns = alone / 1e9;
    r.ratio = alone > 0 && r.threads > 1 ? together / alone : 1;
    return r;
}

}  // namespace bimamba::kernels
