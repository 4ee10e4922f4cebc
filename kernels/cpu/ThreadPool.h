#pragma once
// A small fixed pool of std::threads for splitting one GEMV across cores.
// parallel_for(n, fn) calls fn(begin, end) on disjoint chunks covering [0, n)
// and returns when all are done; the calling thread takes the first chunk.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bimamba::kernels {

class ThreadPool {
public:
    explicit ThreadPool(int threads);
    ~ThreadPool();
    int threads() const { return (int)workers_.size() + 1; }
    // `grain`: chunk boundaries are multiples of it (except the end).
    void parallel_for(int n, int grain, const std::function<void(int, int)>& fn);

    // The pool the dispatching kernels use; resized by set_global_threads
    // (default: hardware concurrency).
    static ThreadPool& global();
    static void set_global_threads(int threads);

private:
    void worker(int id);
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_, done_cv_;
    const std::function<void(int, int)>* fn_ = nullptr;
    std::vector<std::pair<int, int>> chunks_;
    unsigned long long generation_ = 0;
    int pending_ = 0;
    bool stop_ = false;
};

}  // namespace bimamba::kernels
