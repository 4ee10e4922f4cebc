// EnergyMeter: RAPL zone discovery and counter wrap on a fake powercap tree,
// the labelled CPU-time estimate, and NVML's absence handled cleanly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/base/EnergyMeter.h"
#include "core/base/FileUtil.h"
#include "core/base/Nvml.h"

#include <dlfcn.h>

using namespace bimamba;
using namespace bimamba::base;
namespace fs = std::filesystem;

namespace {

struct FakePowercap : ::testing::Test {
    fs::path root = fs::temp_directory_path() / ("bimamba_powercap_" + std::to_string(::getpid()));
    void SetUp() override { fs::create_directories(root); }
    void TearDown() override { remove_tree(root); }
    void zone(const std::string& name, long long uj, long long max_uj) {
        fs::create_directories(root / name);
        std::ofstream(root / name / "energy_uj") << uj << "\n";
        std::ofstream(root / name / "max_energy_range_uj") << max_uj << "\n";
    }
};

void burn_cpu(double seconds) {
    const double t0 = process_cpu_seconds();
    volatile double x = 0;
    while (process_cpu_seconds() - t0 < seconds)
        for (int i = 0; i < 100000; ++i) x = x + 1e-9 * i;
}

}  // namespace

TEST_F(FakePowercap, SumsPackagesIgnoresSubzonesAndHandlesWrap) {
    zone("intel-rapl:0", 1'000'000, 2'000'000);
    zone("intel-rapl:0:0", 5, 2'000'000);  // core sub-zone: already inside package 0
    zone("intel-rapl:1", 100, 2'000'000);
    CpuEnergyMeter m(5.0, root.string());
    ASSERT_TRUE(m.has_rapl());
    zone("intel-rapl:0", 500'000, 2'000'000);  // wrapped: 1.0 J to the top, then 0.5 J
    zone("intel-rapl:0:0", 1'000'000'000, 2'000'000);
    zone("intel-rapl:1", 250'100, 2'000'000);  // +0.25 J
    const EnergySample s = m.elapsed();
    EXPECT_TRUE(s.measured);
    EXPECT_NEAR(s.joules, 1.0 + 0.5 + 0.25, 1e-9);
    EXPECT_NE(s.source.find("RAPL"), std::string::npos);
}

TEST_F(FakePowercap, UnreadableCountersFallBackToALabelledEstimate) {
    CpuEnergyMeter m(7.5, root.string());  // empty tree: no zones
    ASSERT_FALSE(m.has_rapl());
    burn_cpu(0.2);
    const EnergySample s = m.elapsed();
    EXPECT_FALSE(s.measured);
    EXPECT_GE(s.cpu_seconds, 0.2);
    EXPECT_LT(s.cpu_seconds, 2.0);
    EXPECT_NEAR(s.joules, 7.5 * s.cpu_seconds, 1e-9);
    EXPECT_NE(s.source.find("estimate"), std::string::npos);
    EXPECT_NE(s.source.find("7.5 W"), std::string::npos);
}

TEST(GpuEnergyMeter, ReportsWhyWhenUnavailableAndCountsWhenPresent) {
    GpuEnergyMeter g(0);
    if (!g.available()) {
        EXPECT_FALSE(g.error().empty());
        const EnergySample s = g.elapsed();
        EXPECT_FALSE(s.measured);
        EXPECT_EQ(s.joules, 0);
        GTEST_SKIP() << "no NVML energy here: " << g.error();
    }
    const EnergySample s = g.elapsed();
    EXPECT_TRUE(s.measured);
    EXPECT_GE(s.joules, 0);
}

// The NVML loader says why it is unusable instead of failing: a library that
// does not exist, and here (no NVIDIA driver) libnvidia-ml.so.1 itself, whose
// presence the test checks with its own dlopen.
TEST(Nvml, UnavailableLibraryIsReportedNotFatal) {
    const std::string missing = nvml_error("libnvidia-ml-does-not-exist.so.1");
    EXPECT_NE(missing.find("NVML not found"), std::string::npos) << missing;
    EXPECT_NE(missing.find("libnvidia-ml-does-not-exist.so.1"), std::string::npos) << missing;

    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    NvmlDevice gpu = NvmlDevice::for_cuda_device(0);
    if (lib) {
        dlclose(lib);
        if (!nvml_error().empty()) GTEST_SKIP() << "NVML present but not initialised: " << nvml_error();
        ASSERT_TRUE(gpu.available()) << gpu.error();
        const GpuReading r = gpu.read();
        EXPECT_GE(r.util_percent, 0);
        EXPECT_LE(r.util_percent, 100);
        EXPECT_GT(r.mem_total_mb, 0);
        EXPECT_GE(r.mem_used_mb, 0);
        EXPECT_LE(r.mem_used_mb, r.mem_total_mb);
        return;
    }
    EXPECT_NE(nvml_error().find("NVML not found"), std::string::npos) << nvml_error();
    EXPECT_FALSE(gpu.available());
    EXPECT_EQ(gpu.error(), nvml_error());
    const GpuReading r = gpu.read();  // every figure absent, nothing thrown
    EXPECT_EQ(r.util_percent, -1);
    EXPECT_EQ(r.mem_used_mb, -1);
    EXPECT_EQ(r.power_w, -1);
    unsigned long long mj = 0;
    EXPECT_FALSE(gpu.total_energy_mj(mj));
}

// CUDA_VISIBLE_DEVICES maps CUDA's numbering onto NVML's.
TEST(Nvml, CudaVisibleDevicesNamesTheGpu) {
    if (!nvml_error().empty()) {
        // Without NVML every device reports the loader's reason, whatever the list says.
        setenv("CUDA_VISIBLE_DEVICES", "3,GPU-0123", 1);
        EXPECT_EQ(NvmlDevice::for_cuda_device(1).error(), nvml_error());
        unsetenv("CUDA_VISIBLE_DEVICES");
        GTEST_SKIP() << nvml_error();
    }
    setenv("CUDA_VISIBLE_DEVICES", "0", 1);
    const NvmlDevice beyond = NvmlDevice::for_cuda_device(1);
    EXPECT_FALSE(beyond.available());
    EXPECT_NE(beyond.error().find("not in CUDA_VISIBLE_DEVICES"), std::string::npos) << beyond.error();
    EXPECT_TRUE(NvmlDevice::for_cuda_device(0).available());
    unsetenv("CUDA_VISIBLE_DEVICES");
}
