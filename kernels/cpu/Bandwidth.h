#pragma once
// Memory bandwidth of this machine, measured the way decoding uses it: a
// streaming read of a buffer much larger than the caches, on huge pages like
// the engine's weights (HugePages.h), split across the given thread pool (the
// engine's: ThreadPool::shared of its thread count).
// The benchmark divides achieved weight traffic by it.
#include <cstddef>

namespace bimamba::kernels {

class ThreadPool;

struct BandwidthResult {
    double best_gbps = 0;  // best of the repetitions (GB/s, 1e9 bytes)
    double median_gbps = 0;
    size_t bytes = 0;
    int threads = 0;
};

BandwidthResult measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t(1) << 30, int repetitions = 5);

// The same for an in-place update (read a word, write it back changed), the
// access pattern of the SSM state in decoding; GB/s counts bytes read plus
// bytes written. DRAM serves this mix faster than reads alone (on the 2-core
// development VM ~41 against ~29 GB/s), so the state's share of the bound uses it.
BandwidthResult measure_update_bandwidth(ThreadPool& pool, size_t bytes = size_t(1) << 29, int repetitions = 5);

// Whether `threads` threads get a core each: an integer-multiply loop (bound
// by one execution port) runs on one thread alone, then on `threads` threads
// at once; `ratio` is their mean rate over the lone thread's. About 1 where
// each has a core of its own, about 0.5 where two share one: SMT siblings, or
// two vCPUs of a VM that the host runs on one core's two hardware threads at
// times (the 2-core development VM does: 0.51 and 0.83 in 2 of 12 probes, 1.00
// otherwise), and then compute-bound kernels run at half speed. Thread t is
// pinned to the t-th CPU the process may use. ~50 ms.
struct CoreShareResult {
    double ratio = 1;
    int threads = 1;
};
CoreShareResult measure_core_share(int threads);

}  // namespace bimamba::kernels
