#include "core/base/EnergyMeter.h"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace bimamba::base {

double process_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double monotonic_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

namespace {

bool read_number(const std::string& path, double& v) {
    std::ifstream in(path);
    long long x;
    if (!(in >> x)) return false;
    v = (double)x;
    return true;
}

}  // namespace

// ---------------------------------------------------------------- CPU (RAPL)

CpuEnergyMeter::CpuEnergyMeter(double watts_per_core) : CpuEnergyMeter(watts_per_core, "/sys/class/powercap") {}

CpuEnergyMeter::CpuEnergyMeter(double watts_per_core, const std::string& powercap_root)
    : watts_per_core_(watts_per_core) {
    // Top-level package zones only (intel-rapl:0, intel-rapl:1, ...): their
    // sub-zones (core, uncore, dram) are already inside the package figure.
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const std::string& root : {powercap_root, powercap_root + "/intel-rapl"}) {
        for (const auto& e : fs::directory_iterator(root, ec)) {
            const std::string name = e.path().filename().string();
            if (name.rfind("intel-rapl:", 0) != 0 || name.find(':', 11) != std::string::npos) continue;
            Zone z;
            z.energy_path = (e.path() / "energy_uj").string();
            double v;
            if (!read_number(z.energy_path, v)) continue;  // present but not readable (needs root on newer kernels)
            if (!read_number((e.path() / "max_energy_range_uj").string(), z.max_uj)) z.max_uj = 0;
            bool dup = false;
            for (const auto& o : zones_) dup |= fs::equivalent(o.energy_path, z.energy_path, ec);
            if (!dup) zones_.push_back(z);
        }
        if (!zones_.empty()) break;
    }
    start();
}

void CpuEnergyMeter::start() {
    for (auto& z : zones_) read_number(z.energy_path, z.start_uj);
    cpu0_ = process_cpu_seconds();
    wall0_ = monotonic_seconds();
}

EnergySample CpuEnergyMeter::elapsed() const {
    EnergySample s;
    s.cpu_seconds = process_cpu_seconds() - cpu0_;
    s.wall_seconds = monotonic_seconds() - wall0_;
    if (!zones_.empty()) {
        double uj = 0;
        bool ok = true;
        for (const auto& z : zones_) {
            double now;
            if (!read_number(z.energy_path, now)) {
                ok = false;
                break;
            }
            double d = now - z.start_uj;
            if (d < 0 && z.max_uj > 0) d += z.max_uj;  // the counter wrapped once
            uj += d;
        }
        if (ok) {
            s.joules = uj * 1e-6;
            s.measured = true;
            s.source = "RAPL package energy";
            return s;
        }
    }
    s.joules = s.cpu_seconds * watts_per_core_;
    s.source = describe();
    return s;
}

std::string CpuEnergyMeter::describe() const {
    if (!zones_.empty()) return "RAPL package energy (whole package, all processes)";
    char buf[200];
    std::snprintf(
        buf, sizeof buf,
        "estimate: CPU-seconds x %.1f W per busy core (no readable RAPL counter; excludes DRAM and idle power)",
        watts_per_core_);
    return buf;
}

// ---------------------------------------------------------------- GPU (NVML)

GpuEnergyMeter::GpuEnergyMeter(unsigned nvml_index) : device_(nvml_index) {
    if (!device_.available()) {
        error_ = device_.error();
        return;
    }
    unsigned long long mj;
    if (!device_.total_energy_mj(mj)) {
        error_ = "this GPU does not report total energy through NVML";
        return;
    }
    start();
}

unsigned long long GpuEnergyMeter::read_mj() const {
    unsigned long long mj = 0;
    if (available()) device_.total_energy_mj(mj);
    return mj;
}

void GpuEnergyMeter::start() {
    start_mj_ = read_mj();
    wall0_ = monotonic_seconds();
}

EnergySample GpuEnergyMeter::elapsed() const {
    EnergySample s;
    s.wall_seconds = monotonic_seconds() - wall0_;
    if (!available()) {
        s.source = error_;
        return s;
    }
    s.joules = (read_mj() - start_mj_) * 1e-3;
    s.measured = true;
    s.source = "NVML total GPU energy (whole board)";
    return s;
}

}  // namespace bimamba::base
