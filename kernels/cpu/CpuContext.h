#pragma once
// What the dispatching kernels run on: an instruction set and a thread pool.
// Every dispatching kernel (Gemv.h, BitGemvLut.h, BitGemvI16.h, SsmStep.h,
// Activations.h) takes one as its first argument; there is no process-wide
// ISA or thread-count setting, so engines with different choices can run side
// by side in one process (core/engine/Engine.h: EngineOptions).
//
// "auto" picks the ISA by a capability score, as ggml's CPU backend scores its
// variants: each ISA scores 0 where this CPU cannot run it, else higher the
// wider it is; the highest score wins. Under Avx512 the kernels that have an
// AVX-512 version use it (the i16lut ±1 GEMV, BitGemvI16.h, compute-bound
// under AVX2; the int8 head, Q8Gemv.h; the fp16 GEMV/GEMM, Gemv.h, whose
// batched prefill is compute-bound) and the rest run their AVX2 version
// (bound by memory).
#include <memory>
#include <string>

namespace bimamba::kernels {

class ThreadPool;

enum class Isa { Scalar, Avx2, Avx512 };

bool cpu_has_avx2();              // AVX2 + FMA + F16C, checked once at run time
bool cpu_has_avx512();            // AVX-512 F + BW + VL + DQ (and AVX2), checked once at run time
bool cpu_has_avx512_vbmi_vnni();  // and VBMI + VNNI (the i8lut kernel, BitGemvI8.h)
// The vendor is Intel (checked once). It picks a cache level where the two
// vendors' measurements disagree: the AVX-512 fp16 GEMV/GEMM's weight
// prefetches (Gemv_avx512.cpp).
bool cpu_is_intel();

// 0: this CPU cannot run `isa`; otherwise 1 (scalar), 2 (AVX2), 3 (AVX-512).
int isa_score(Isa isa);
// The runnable ISA of the highest score.
Isa best_isa();
// "auto" (best_isa()), "avx512", "avx2" (throw if this CPU lacks it) or "scalar"; throws on other names.
Isa isa_from_string(const std::string& name);
const char* isa_name(Isa isa);  // "avx512" | "avx2" | "scalar"

struct CpuContext {
    Isa isa = Isa::Scalar;
    std::shared_ptr<ThreadPool> pool;  // never null in a context from make()

    bool avx2() const { return isa != Isa::Scalar; }  // the AVX2 (or AVX-512) paths
    bool avx512() const { return isa == Isa::Avx512; }
    ThreadPool& threads() const { return *pool; }
    int thread_count() const;

    // `isa` as isa_from_string; `threads` 0 = hardware concurrency. The pool
    // is shared with every other context of the same thread count
    // (ThreadPool::shared).
    static CpuContext make(const std::string& isa = "auto", int threads = 0);
    static CpuContext make(Isa isa, int threads = 0);
};

}  // namespace bimamba::kernels
