#pragma once
// NVIDIA's management library (NVML), the one place it is loaded: at run time
// with dlopen("libnvidia-ml.so.1"), so nothing links against the driver and a
// machine without one builds and runs the same (every reading is then absent,
// with the reason in error()).
#include <string>

namespace bimamba::base {

// Why NVML from `soname` cannot be used, or "" when it loaded and initialised.
// The default library is loaded once per process; another name (tests) is
// tried afresh.
std::string nvml_error(const std::string& soname = "libnvidia-ml.so.1");

// What NVML says about one GPU at one moment; -1: not reported.
struct GpuReading {
    double util_percent = -1;  // share of the last sample period a kernel ran
    double mem_used_mb = -1;   // device memory in use, all processes (MiB)
    double mem_total_mb = -1;
    double power_w = -1;  // board power draw
};

class NvmlDevice {
public:
    // NVML numbers GPUs in physical order; `nvml_index` is that number.
    explicit NvmlDevice(unsigned nvml_index);
    // The GPU a CUDA device index names in this process, through
    // CUDA_VISIBLE_DEVICES (indices or GPU-UUIDs) when it is set.
    static NvmlDevice for_cuda_device(int cuda_index);

    bool available() const { return error_.empty(); }
    const std::string& error() const { return error_; }  // why not available
    GpuReading read() const;
    // The board's energy counter since the driver loaded (mJ), false when
    // unavailable or not reported (before Volta).
    bool total_energy_mj(unsigned long long& mj) const;

private:
    NvmlDevice() = default;
    void* device_ = nullptr;
    std::string error_;
};

}  // namespace bimamba::base
