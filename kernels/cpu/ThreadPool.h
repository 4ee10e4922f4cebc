#pragma once
// A small fixed pool of std::threads for splitting one GEMV across cores.
// parallel_for(n, fn) calls fn(begin, end) on disjoint chunks covering [0, n)
// and returns when all are done; the calling thread takes the first chunk.
//
// Decode calls it about three times per layer (150 times per token at the
// 780M shape), so hand-off latency matters: workers spin on an atomic
// generation counter for a short while (kSpinMicros) before sleeping on a
// condition variable. Between tokens of an interactive chat they fall asleep.
//
// The range is cut into about 4 chunks per thread. Each thread has a home
// run of consecutive chunks, claimed from a counter of its own (tagged with
// the generation, in a cache line of its own), and then takes what is left
// of the others' runs; so a thread that the OS deschedules on a busy machine
// holds up at most its current chunk. The caller waits only for the chunks,
// not for every worker to wake. Which thread runs a chunk does not change its
// result. (One shared counter for every claim, beside the generation word the
// workers spin on, cost 12.7-15.7 µs per hand-off of 64 empty chunks on 16 Xeon
// threads: every claim and every completion moved that line between cores.)
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
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
    // Hand-offs so far (each parallel_for that woke workers counts once).
    uint64_t dispatches() const { return dispatches_; }

    // A pool of `threads` threads (0: hardware concurrency) shared by every
    // caller asking for the same count while any of them holds it; kernels
    // get theirs from a CpuContext (CpuContext.h), engines from their options.
    static std::shared_ptr<ThreadPool> shared(int threads = 0);
    static int hardware_threads();  // hardware concurrency, at least 1

    static constexpr int kSpinMicros = 200;
    static constexpr int kChunksPerThread = 4;  // parallel_for cuts its range into about this many per thread
    // The grain for a kernel that runs `group` units at a time: whole groups
    // only where each of `threads` still gets kChunksPerThread of them (else 1,
    // so no thread idles while others hold several groups).
    static int whole_groups_grain(int units, int group, int threads) {
        return units >= kChunksPerThread * group * threads ? group : 1;
    }

    // The cost of one hand-off: the median wall time of `jobs` parallel_for
    // calls, each over kChunksPerThread chunks per thread (what a decode step's
    // GEMV hands out) whose chunks each spin for `work_micros`, minus the
    // kChunksPerThread × work_micros a thread has to do itself; in microseconds,
    // 0 for a pool of one thread. The two show different costs: with empty
    // chunks every thread spends the job claiming chunks and looking through the
    // others' runs; with work, claims hide behind it, and what shows is the
    // woken threads' later start and uneven finish, which a decode GEMV pays
    // (16 Xeon threads: 5.5-6.3 µs empty, 2.2-2.7 µs beyond chunks of 1.5 µs,
    // docs/deploy-format.md session 21; 2 EPYC threads: 0.15 µs empty, 0.83 µs
    // beyond chunks of 5 µs). bench cpu prints both: the engine hands off about
    // three times per layer.
    double measure_handoff_micros(int jobs = 200, double work_micros = 0);

private:
    void worker(int id);
    void run_chunks(int id, uint64_t gen);            // claims and runs chunks of `gen`, its own run first
    bool claim(int owner, uint64_t gen, int* chunk);  // the next chunk of `owner`'s run, if any is left
    int run_begin(int owner) const { return (int)((long long)nchunks_ * owner / threads()); }
    static uint64_t next_tag(uint64_t gen) { return (gen & 0xffffffu) << 40; }    // Run::next's generation bits
    static uint64_t done_tag(uint64_t gen) { return (gen & 0xffffffffu) << 32; }  // Run::done's generation bits
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_;
    // The job: written by the caller before it publishes the generation.
    const std::function<void(int, int)>* fn_ = nullptr;
    int n_ = 0, grain_ = 1, units_ = 0, nchunks_ = 0;
    alignas(64) std::atomic<uint64_t> generation_{0};  // the workers spin on it
    alignas(64) std::atomic<int> sleepers_{0};
    std::atomic<bool> stop_{false};
    struct alignas(64) Run {
        std::atomic<uint64_t> next{0};  // generation << 40 | the run's end << 20 | its next chunk
        std::atomic<uint64_t> done{0};  // generation << 32 | chunks this thread finished (its own word)
    };
    std::unique_ptr<Run[]> runs_;  // one per thread (the caller is thread 0)
    uint64_t dispatches_ = 0;
};

}  // namespace bimamba::kernels
