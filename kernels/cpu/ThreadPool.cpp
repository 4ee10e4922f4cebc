#include "kernels/cpu/ThreadPool.h"

#include <algorithm>
#include <memory>

namespace bimamba::kernels {

ThreadPool::ThreadPool(int threads) {
    threads = std::max(1, threads);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int id) {
    unsigned long long seen = 0;
    for (;;) {
        std::pair<int, int> chunk;
        const std::function<void(int, int)>* fn;
        {
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            chunk = chunks_[id];
            fn = fn_;
        }
        if (chunk.first < chunk.second) (*fn)(chunk.first, chunk.second);
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (--pending_ == 0) done_cv_.notify_one();
        }
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
    std::vector<std::pair<int, int>> chunks(t);
    for (int i = 0; i < t; ++i) {
        const int b = std::min(n, (int)((long long)units * i / t) * grain);
        const int e = std::min(n, (int)((long long)units * (i + 1) / t) * grain);
        chunks[i] = {b, e};
    }
    {
        std::lock_guard<std::mutex> lk(mu_);
        chunks_ = chunks;
        fn_ = &fn;
        pending_ = t - 1;
        ++generation_;
    }
    cv_.notify_all();
    if (chunks[0].first < chunks[0].second) fn(chunks[0].first, chunks[0].second);
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
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
