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

}  // namespace bimamba::kernels
