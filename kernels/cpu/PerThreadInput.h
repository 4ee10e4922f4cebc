#pragma once
// A pool hand-off where every thread works from its own copy of a prepared
// input (the lookup-table kernels' quantized input and tables, BitGemvI16.h
// and BitGemvI8.h). Tables that one core wrote cost every other core a
// cache-to-cache transfer per line (768 lines for i16lut at 3072 columns: on
// the Zen 4 VM the 780M out_proj with weights in cache took 26 µs shared,
// 19 µs so), so each thread prepares the input itself, at its first chunk of
// the call and at the same time as the others.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "kernels/cpu/ThreadPool.h"

namespace bimamba::kernels {

// body(s, a, b) over [0, n) in the pool's chunks of `grain`; s is this
// thread's input, filled by prepare(s) once per call: the caller's is
// `scratch`, another thread's a buffer of `bytes` it keeps between calls.
// Each call site (an instantiation) has its own buffers and call counter.
template <class Prepare, class Body>
void parallel_for_own_input(ThreadPool& pool, int n, int grain, uint8_t* scratch, size_t bytes, Prepare prepare,
                            Body body) {
    static std::atomic<uint64_t> calls{0};
    const uint64_t call = ++calls;
    const std::thread::id caller = std::this_thread::get_id();
    pool.parallel_for(n, grain, [&](int a, int b) {
        thread_local uint64_t prepared = 0;  // the call this thread's input is for
        thread_local std::vector<uint8_t> own;
        uint8_t* s = scratch;
        if (std::this_thread::get_id() != caller) {
            if (own.size() < bytes) own.resize(bytes);
            s = own.data();
        }
        if (prepared != call) {
            prepare(s);
            prepared = call;
        }
        body(s, a, b);
    });
}

}  // namespace bimamba::kernels
