#include "kernels/cpu/CpuContext.h"

#include <stdexcept>

#include "kernels/cpu/ThreadPool.h"
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace bimamba::kernels {

#if defined(__x86_64__) || defined(__i386__)
namespace {
// F16C from CPUID leaf 1, ECX bit 29: clang before 15 knows no "f16c" for
// __builtin_cpu_supports (the fuzz build, tests/fuzz, uses clang 14).
bool cpu_has_f16c() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
}  // namespace
#endif

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
    static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    return has;
#else
    return false;
#endif
}

bool cpu_is_intel() {
#if defined(__x86_64__) || defined(__i386__)
    static const bool is = __builtin_cpu_is("intel");
    return is;
#else
    return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
    static const bool has = cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    return has;
#else
    return false;
#endif
}

bool cpu_has_avx512_vbmi_vnni() {
#if defined(__x86_64__) || defined(__i386__)
    static const bool has =
        cpu_has_avx512() && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vnni");
    return has;
#else
    return false;
#endif
}

int isa_score(Isa isa) {
    switch (isa) {
        case Isa::Avx512:
            return cpu_has_avx512() ? 3 : 0;
        case Isa::Avx2:
            return cpu_has_avx2() ? 2 : 0;
        case Isa::Scalar:
            return 1;
    }
    return 0;
}

Isa best_isa() {
    Isa best = Isa::Scalar;
    for (Isa i : {Isa::Avx2, Isa::Avx512})
        if (isa_score(i) > isa_score(best)) best = i;
    return best;
}

Isa isa_from_string(const std::string& n) {
    if (n == "auto" || n.empty()) return best_isa();
    if (n == "avx512") {
        if (!isa_score(Isa::Avx512)) throw std::runtime_error("this CPU lacks AVX-512 F/BW/VL/DQ");
        return Isa::Avx512;
    }
    if (n == "avx2") {
        if (!isa_score(Isa::Avx2)) throw std::runtime_error("this CPU lacks AVX2/FMA/F16C");
        return Isa::Avx2;
    }
    if (n == "scalar") return Isa::Scalar;
    throw std::invalid_argument("unknown ISA '" + n + "' (auto, avx512, avx2, scalar)");
}

const char* isa_name(Isa isa) {
    return isa == Isa::Avx512 ? "avx512" : isa == Isa::Avx2 ? "avx2" : "scalar";
}

int CpuContext::thread_count() const {
    return pool ? pool->threads() : 1;
}

CpuContext CpuContext::make(Isa isa, int threads) {
    if (!isa_score(isa)) throw std::runtime_error(std::string("this CPU cannot run the ") + isa_name(isa) + " kernels");
    CpuContext c;
    c.isa = isa;
    c.pool = ThreadPool::shared(threads);
    return c;
}

CpuContext CpuContext::make(const std::string& isa, int threads) {
    return make(isa_from_string(isa), threads);
}

}  // namespace bimamba::kernels
