#pragma once
// Memory bandwidth of this machine, measured the way decoding uses it: a
// streaming read of a buffer much larger than the caches, on huge pages like
// the engine's weights (HugePages.h), split across the given thread pool (the
// engine's: ThreadPool::shared of its thread count).
// The benchmark divides achieved weight traffic by it.
#include <cstddef>
#include <memory>

namespace bimamba::kernels {

class ThreadPool;

struct BandwidthResult {
    double best_gbps = 0;  // best of the repetitions (GB/s, 1e9 bytes)
    double median_gbps = 0;
    size_t bytes = 0;
    int threads = 0;
};

// read(): the streaming read, `repetitions` passes over the buffer.
// update(): an in-place update (read a word, write it back changed), the
// access pattern of the SSM state in decoding; GB/s counts bytes read plus
// bytes written. DRAM serves this mix faster than reads alone (on the 2-core
// development VM ~41 against ~29 GB/s), so the state's share of the bound uses it.
//
// The buffer is kept, so both can be measured again beside every timed run:
// a VM's memory speed moves within seconds (the 2-core development VM read at
// 25 to 47 GB/s within one minute, and ~57 when its two vCPUs shared a core),
// so a bandwidth taken once at the start does not describe a decode measured
// a minute later.
class BandwidthProbe {
public:
    BandwidthProbe(ThreadPool& pool, size_t bytes);
    ~BandwidthProbe();
    BandwidthProbe(const BandwidthProbe&) = delete;
    BandwidthProbe& operator=(const BandwidthProbe&) = delete;
    BandwidthResult read(int repetitions);
    BandwidthResult update(int repetitions);

private:
    struct Buffer;
    ThreadPool& pool_;
    std::unique_ptr<Buffer> buf_;
};

// The memory-bound time of one decoded token: its weight bytes read at
// `read_gbps`, its recurrent state (`state_bytes`) read and written once at
// `update_gbps`. For a decode rate `tok_per_s`:
//   bw_fraction     = weight bytes per second over the read bandwidth,
//   roofline        = that memory-bound time × tok_per_s (1 = at the bound),
//   weights_ceiling = the largest bw_fraction the roofline allows (the rest of
//                     every token's memory time is state traffic).
struct MemoryBound {
    double bw_fraction = 0, roofline = 0, weights_ceiling = 0;
};
MemoryBound memory_bound(double weight_bytes, double state_bytes, double read_gbps, double update_gbps,
                         double tok_per_s);

// Whether `threads` threads get a core each: an integer-multiply loop (bound
// by one execution port) runs on one thread alone, then on `threads` threads
// at once; `ratio` is their mean rate over the lone thread's. About 1 where
// each has a core of its own, about 0.5 where two share one: SMT siblings, or
// two vCPUs of a VM that the host runs on one core's two hardware threads at
// times (the 2-core development VM does: 0.51 and 0.83 in 2 of 12 probes, 1.00
// otherwise), and then compute-bound kernels run at half speed. Thread t is
// pinned to the t-th CPU the process may use. ~50 ms.
// `lone_per_ns`: the lone thread's multiplies per nanosecond. The loop's
// cycles per multiply are fixed by the core's design, so this follows its
// clock: it tells a run on a slowed-down host from one on a fast one (measured
// also for one thread).
struct CoreShareResult {
    double ratio = 1;
    int threads = 1;
    double lone_per_ns = 0;
};
CoreShareResult measure_core_share(int threads);

}  // namespace bimamba::kernels
