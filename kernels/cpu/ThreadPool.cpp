#include "kernels/cpu/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <memory>

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
    chunks_.resize(threads);
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
        const std::pair<int, int> chunk = chunks_[id];
        if (chunk.first < chunk.second) (*fn_)(chunk.first, chunk.second);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
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
    for (int i = 0; i < t; ++i) {
        const int b = std::min(n, (int)((long long)units * i / t) * grain);
        const int e = std::min(n, (int)((long long)units * (i + 1) / t) * grain);
        chunks_[i] = {b, e};
    }
    fn_ = &fn;
    pending_.store(t - 1, std::memory_order_relaxed);
    ++dispatches_;
    generation_.fetch_add(1);  // seq_cst: publishes chunks_/fn_ and orders against sleepers_
    if (sleepers_.load() > 0) {
        std::lock_guard<std::mutex> lk(mu_);
        cv_.notify_all();
    }
    if (chunks_[0].first < chunks_[0].second) fn(chunks_[0].first, chunks_[0].second);
    for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
        if (i < 4096)
            BIMAMBA_PAUSE();
        else
            std::this_thread::yield();  // a worker was descheduled (busy machine)
    }
}

namespace {
std::unique_ptr<ThreadPool>& global_slot() {
    static std::unique_ptr<ThreadPool> p;
    return p;
}
}  // namespace

ThreadPool& ThreadPool::global() {
    auto& p = global_slot();
    if (!p) p = std::make_unique<ThreadPool>((int)std::max(1u, std::thread::hardware_concurrency()));
    return *p;
}

void ThreadPool::set_global_threads(int threads) {
    auto& p = global_slot();
    p.reset();
    p = std::make_unique<ThreadPool>(threads);
}

}  // namespace bimamba::kernels
