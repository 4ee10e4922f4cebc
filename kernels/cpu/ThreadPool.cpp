#include "kernels/cpu/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BIMAMBA_PAUSE() _mm_pause()
#else
#define BIMAMBA_PAUSE() std::this_thread::yield()
#endif

namespace bimamba::kernels {

namespace {
using Clock = std::chrono::steady_clock;
}

ThreadPool::ThreadPool(int threads) {
    threads = std::max(1, threads);
    runs_.reset(new Run[threads]);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
}

bool ThreadPool::claim(int owner, uint64_t gen, int* chunk) {
    // Everything the claim checks is in the one word (generation, end, next):
    // a late worker of an ended job must not read the next job's bounds.
    std::atomic<uint64_t>& next = runs_[owner].next;
    uint64_t t = next.load(std::memory_order_acquire);
    for (;;) {
        if ((t & ~0xffffffffffull) != next_tag(gen) || (t & 0xfffffu) >= ((t >> 20) & 0xfffffu)) return false;
        if (next.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) break;
    }
    *chunk = (int)(t & 0xfffffu);
    return true;
}

void ThreadPool::run_chunks(int id, uint64_t gen) {
    // Claimed chunks of `gen`: the caller cannot start another job before they
    // are done, so fn_ and the bounds are still this job's.
    // Finished chunks are counted in this thread's own word (tagged with the
    // generation: a late store of an ended job counts for nothing), after its
    // own run and after each chunk taken from another run.
    const int T = threads();
    const uint64_t tag = done_tag(gen);
    uint64_t ran = 0;
    int c;
    for (int k = 0; k < T; ++k) {
        const int owner = (id + k) % T;  // its own run first, then the next threads' leftovers
        while (claim(owner, gen, &c)) {
            const int b = std::min(n_, (int)((long long)units_ * c / nchunks_) * grain_);
            const int e = std::min(n_, (int)((long long)units_ * (c + 1) / nchunks_) * grain_);
            if (b < e) (*fn_)(b, e);
            ++ran;
            if (k > 0) runs_[id].done.store(tag | ran, std::memory_order_release);
        }
        if (k == 0 && ran) runs_[id].done.store(tag | ran, std::memory_order_release);
    }
}

void ThreadPool::worker(int id) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = generation_.load(std::memory_order_acquire);
        if (g == seen && !stop_.load(std::memory_order_relaxed)) {
            // Spin a short while: the next hand-off of a decode step is microseconds away.
            const auto until = Clock::now() + std::chrono::microseconds(kSpinMicros);
            for (int i = 0; (g = generation_.load(std::memory_order_acquire)) == seen; ++i) {
                BIMAMBA_PAUSE();
                if ((i & 255) == 255 && (stop_.load(std::memory_order_relaxed) || Clock::now() > until)) break;
            }
            if (g == seen) {  // sleep (sleepers_/generation_ are seq_cst: a hand-off either sees us or we see it)
                std::unique_lock<std::mutex> lk(mu_);
                sleepers_.fetch_add(1);
                cv_.wait(lk, [&] { return stop_.load() || generation_.load() != seen; });
                sleepers_.fetch_sub(1);
                g = generation_.load(std::memory_order_acquire);
            }
        }
        if (stop_.load()) return;
        seen = g;
        run_chunks(id, g);
    }
}

void ThreadPool::parallel_for(int n, int grain, const std::function<void(int, int)>& fn) {
    if (n <= 0) return;
    const int t = threads();
    grain = std::max(1, grain);
    const int units = (n + grain - 1) / grain;
    if (t == 1 || units < 2) {
        fn(0, n);
        return;
    }
    fn_ = &fn;
    n_ = n;
    grain_ = grain;
    units_ = units;
    nchunks_ = std::min(units, kChunksPerThread * t);
    ++dispatches_;
    const uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
    for (int i = 0; i < t; ++i) {
        runs_[i].next.store(next_tag(gen) | ((uint64_t)run_begin(i + 1) << 20) | (uint64_t)run_begin(i),
                            std::memory_order_relaxed);
        runs_[i].done.store(0, std::memory_order_relaxed);
    }
    generation_.store(gen);  // seq_cst: publishes the job and the runs, and orders against sleepers_
    if (sleepers_.load() > 0) {
        std::lock_guard<std::mutex> lk(mu_);
        cv_.notify_all();
    }
    run_chunks(0, gen);
    const uint64_t tag = done_tag(gen);
    auto finished = [&] {
        uint64_t sum = 0;
        for (int i = 0; i < t; ++i) {
            const uint64_t d = runs_[i].done.load(std::memory_order_acquire);
            if ((d & ~0xffffffffull) == tag) sum += d & 0xffffffffu;
        }
        return sum == (uint64_t)nchunks_;
    };
    for (int i = 0; !finished(); ++i) {
        if (i < 4096)
            BIMAMBA_PAUSE();
        else
            std::this_thread::yield();  // a worker holding a chunk was descheduled (busy machine)
    }
}

double ThreadPool::measure_handoff_micros(int jobs, double work_micros) {
    if (threads() == 1 || jobs <= 0) return 0;
    const int n = kChunksPerThread * threads();
    work_micros = std::max(0.0, work_micros);
    const auto work =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::micro>(work_micros));
    std::vector<double> us;
    us.reserve(jobs);
    std::atomic<int> covered{0};
    for (int j = 0; j < jobs; ++j) {
        const auto t0 = Clock::now();
        parallel_for(n, 1, [&](int a, int b) {
            covered.fetch_add(b - a, std::memory_order_relaxed);
            if (work.count() > 0)  // wall time: a chunk takes its work even if its thread is descheduled
                for (const auto until = Clock::now() + work * (b - a); Clock::now() < until;) {
                }
        });
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    if (covered.load() != n * jobs) throw std::logic_error("thread pool: a hand-off missed part of its range");
    std::nth_element(us.begin(), us.begin() + jobs / 2, us.end());
    return us[jobs / 2] - kChunksPerThread * work_micros;
}

int ThreadPool::hardware_threads() {
    return (int)std::max(1u, std::thread::hardware_concurrency());
}

std::shared_ptr<ThreadPool> ThreadPool::shared(int threads) {
    if (threads < 0 || threads > 1024) throw std::invalid_argument("thread count must be in [0, 1024] (0: all cores)");
    if (threads == 0) threads = hardware_threads();
    // Pools stay alive while someone holds them; the registry only lets
    // equal requests share one (the workers of two pools would compete for cores).
    static std::mutex mu;
    static std::map<int, std::weak_ptr<ThreadPool>> pools;
    std::lock_guard<std::mutex> lk(mu);
    auto& w = pools[threads];
    auto p = w.lock();
    if (!p) {
        p = std::make_shared<ThreadPool>(threads);
        w = p;
    }
    return p;
}

}  // namespace bimamba::kernels
