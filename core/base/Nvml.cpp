#include "core/base/Nvml.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

namespace bimamba::base {

namespace {

// NVML's structs, as nvml.h declares them.
struct NvmlUtilization {
    unsigned int gpu, memory;
};
struct NvmlMemory {
    unsigned long long total, free, used;
};

// The entry points we use, resolved from the library; the optional ones stay
// null where an old driver lacks them.
struct NvmlApi {
    int (*init)() = nullptr;
    int (*handle_by_index)(unsigned, void**) = nullptr;
    int (*handle_by_uuid)(const char*, void**) = nullptr;
    int (*utilization)(void*, NvmlUtilization*) = nullptr;
    int (*memory)(void*, NvmlMemory*) = nullptr;
    int (*power_mw)(void*, unsigned*) = nullptr;
    int (*energy_mj)(void*, unsigned long long*) = nullptr;
    std::string error;

    explicit NvmlApi(const std::string& soname) {
        void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            error = "NVML not found (" + soname + ": no NVIDIA driver on this machine)";
            return;
        }
        auto sym = [&](auto& fn, const char* name) {
            fn = reinterpret_cast<std::decay_t<decltype(fn)>>(dlsym(lib, name));
        };
        sym(init, "nvmlInit_v2");
        sym(handle_by_index, "nvmlDeviceGetHandleByIndex_v2");
        sym(handle_by_uuid, "nvmlDeviceGetHandleByUUID");
        sym(utilization, "nvmlDeviceGetUtilizationRates");
        sym(memory, "nvmlDeviceGetMemoryInfo");
        sym(power_mw, "nvmlDeviceGetPowerUsage");
        sym(energy_mj, "nvmlDeviceGetTotalEnergyConsumption");
        if (!init || !handle_by_index) {
            error = "NVML is too old (" + soname + " has no nvmlInit_v2 / nvmlDeviceGetHandleByIndex_v2)";
            return;
        }
        if (int rc = init(); rc != 0) error = "nvmlInit failed (NVML error " + std::to_string(rc) + ")";
    }
};

const NvmlApi& nvml() {
    static const NvmlApi api("libnvidia-ml.so.1");
    return api;
}

}  // namespace

std::string nvml_error(const std::string& soname) {
    if (soname == "libnvidia-ml.so.1") return nvml().error;
    return NvmlApi(soname).error;
}

NvmlDevice::NvmlDevice(unsigned nvml_index) {
    const NvmlApi& n = nvml();
    if (!n.error.empty()) {
        error_ = n.error;
        return;
    }
    if (int rc = n.handle_by_index(nvml_index, &device_); rc != 0)
        error_ = "NVML has no GPU " + std::to_string(nvml_index) + " (NVML error " + std::to_string(rc) + ")";
}

NvmlDevice NvmlDevice::for_cuda_device(int cuda_index) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    if (!visible || !*visible) return NvmlDevice(unsigned(cuda_index));
    // The cuda_index-th entry of the comma-separated list: an index or a GPU-UUID.
    std::vector<std::string> entries(1);
    for (const char* c = visible; *c; ++c) {
        if (*c == ',')
            entries.emplace_back();
        else
            entries.back().push_back(*c);
    }
    const std::string entry = cuda_index >= 0 && size_t(cuda_index) < entries.size() ? entries[cuda_index] : "";
    const std::string list = visible;
    if (!entry.empty() && entry.find_first_not_of("0123456789") == std::string::npos)
        return NvmlDevice(unsigned(std::stoul(entry)));
    NvmlDevice d;
    const NvmlApi& n = nvml();
    if (!n.error.empty()) {
        d.error_ = n.error;
    } else if (entry.empty()) {
        d.error_ = "CUDA device " + std::to_string(cuda_index) + " is not in CUDA_VISIBLE_DEVICES=" + list;
    } else if (!n.handle_by_uuid) {
        d.error_ = "NVML cannot look up " + entry + " (no nvmlDeviceGetHandleByUUID)";
    } else if (int rc = n.handle_by_uuid(entry.c_str(), &d.device_); rc != 0) {
        d.error_ = "NVML has no GPU " + entry + " (NVML error " + std::to_string(rc) + ")";
    }
    return d;
}

GpuReading NvmlDevice::read() const {
    GpuReading r;
    if (!available()) return r;
    const NvmlApi& n = nvml();
    if (NvmlUtilization u{}; n.utilization && n.utilization(device_, &u) == 0) r.util_percent = u.gpu;
    if (NvmlMemory m{}; n.memory && n.memory(device_, &m) == 0) {
        r.mem_used_mb = m.used / 1048576.0;
        r.mem_total_mb = m.total / 1048576.0;
    }
    if (unsigned mw = 0; n.power_mw && n.power_mw(device_, &mw) == 0) r.power_w = mw / 1000.0;
    return r;
}

bool NvmlDevice::total_energy_mj(unsigned long long& mj) const {
    const NvmlApi& n = nvml();
    return available() && n.energy_mj && n.energy_mj(device_, &mj) == 0;
}

}  // namespace bimamba::base
