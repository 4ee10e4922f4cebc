#pragma once
// Energy of a span of work, for "joules per generated token".
//
// CPU: RAPL package energy through Linux powercap (/sys/class/powercap/
// intel-rapl:N, also what AMD's driver exposes), summed over packages and
// corrected for counter wrap. Where no counter is readable (most VMs and
// containers) the figure is an ESTIMATE: this process's CPU-seconds times an
// assumed power per busy core, and says so in `source`.
// GPU: NVML's total-energy counter (Volta and newer), through core/base/Nvml.h.
#include <string>
#include <vector>

#include "core/base/Nvml.h"

namespace bimamba::base {

struct EnergySample {
    double joules = 0;       // measured, or estimated when !measured
    double cpu_seconds = 0;  // this process's user+system time over the span (CPU meter)
    double wall_seconds = 0;
    bool measured = false;  // true: hardware counter; false: estimate
    std::string source;     // e.g. "RAPL package energy" or "estimate: CPU-s x 5 W/core"
};

class CpuEnergyMeter {
public:
    explicit CpuEnergyMeter(double watts_per_core = 5.0);
    // Reads zones under `powercap_root` instead of /sys/class/powercap (tests).
    CpuEnergyMeter(double watts_per_core, const std::string& powercap_root);
    void start();
    EnergySample elapsed() const;  // since start(); can be called repeatedly
    bool has_rapl() const { return !zones_.empty(); }
    double watts_per_core() const { return watts_per_core_; }
    // One line for reports: which method, with the estimate's assumptions.
    std::string describe() const;

private:
    struct Zone {
        std::string energy_path;
        double max_uj = 0;
        double start_uj = 0;
    };
    std::vector<Zone> zones_;
    double watts_per_core_;
    double cpu0_ = 0, wall0_ = 0;
};

class GpuEnergyMeter {
public:
    // `nvml_index` is NVML's numbering (physical order, not CUDA_VISIBLE_DEVICES').
    explicit GpuEnergyMeter(unsigned nvml_index = 0);
    bool available() const { return error_.empty(); }
    const std::string& error() const { return error_; }  // why not available
    void start();
    EnergySample elapsed() const;

private:
    unsigned long long read_mj() const;
    NvmlDevice device_;
    std::string error_;
    unsigned long long start_mj_ = 0;
    double wall0_ = 0;
};

double process_cpu_seconds();  // user + system time of this process
double monotonic_seconds();

}  // namespace bimamba::base
