#include "kernels/cpu/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>

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

bool ThreadPool::run_chunks(uint64_t gen) {
    bool ran = false;
    for (;;) {
        // Ticket: generation (bits 40..63) | chunk count (20..39) | next chunk (0..19);
        // everything the claim checks is in the one atomic word.
        uint64_t t = ticket_.load(std::memory_order_acquire);
        for (;;) {
            if ((t >> 40) != (gen & 0xffffffu) || (t & 0xfffffu) >= ((t >> 20) & 0xfffffu)) return ran;
            if (ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) break;
        }
        // Claimed chunk c of `gen`: the caller cannot start another job before it is done,
        // so fn_ and the bounds are still this job's.
        const int c = (int)(t & 0xfffffu);
        const int b = std::min(n_, (int)((long long)units_ * c / nchunks_) * grain_);
        const int e = std::min(n_, (int)((long long)units_ * (c + 1) / nchunks_) * grain_);
        if (b < e) (*fn_)(b, e);
        done_.fetch_add(1, std::memory_order_acq_rel);
        ran = true;
    }
}

void ThreadPool::worker(int id) {
    (void)id;
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
        run_chunks(g);
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
    done_.store(0, std::memory_order_relaxed);
    ++dispatches_;
    const uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
    ticket_.store(((gen & 0xffffffu) << 40) | ((uint64_t)nchunks_ << 20), std::memory_order_release);
    generation_.store(gen);  // seq_cst: publishes the job and orders against sleepers_
    if (sleepers_.load() > 0) {
        std::lock_guard<std::mutex> lk(mu_);
        cv_.notify_all();
    }
    run_chunks(gen);
    for (int i = 0; done_.load(std::memory_order_acquire) != nchunks_; ++i) {
        if (i < 4096)
            BIMAMBA_PAUSE();
        else
            std::this_thread::yield();  // a worker holding a chunk was descheduled (busy machine)
    }
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
