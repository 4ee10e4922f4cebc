// `bimamba bench cpu`: decode and prefill speed, resident memory, weight bytes
// per token and the achieved fraction of the machine's memory bandwidth
// (measured in the same run) for the bit-packed engine and the fp16 baseline,
// at a paper shape with random weights and on given deployment files; energy
// per token from RAPL where exposed, otherwise CPU-seconds and a labelled estimate.
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/cli/Command.h"
#include "core/engine/DeployFile.h"
#include "core/engine/Engine.h"
#include "kernels/cpu/Bandwidth.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/ThreadPool.h"

using namespace bimamba;
using namespace bimamba::cli;
namespace fs = std::filesystem;

namespace {

const char* kHelp =
    "usage: bimamba bench cpu [options]\n"
    "  --shape NAME        paper shape benchmarked with random weights (default 780m; 'none' skips)\n"
    "  --model FILES       deployment files to benchmark as well (comma-separated), e.g. a trained model\n"
    "                      exported binary and fp16\n"
    "  --tokens N          decoded tokens per measurement (default 32)\n"
    "  --prompt N          prompt tokens for the prefill measurement (default 16)\n"
    "  --threads N         worker threads (default: all cores)\n"
    "  --isa auto|scalar   kernel path (default auto: AVX2 where present)\n"
    "  --dir DIR           where the random-weight files are written/reused (default /tmp/bimamba-bench)\n"
    "  --bandwidth-mb N    buffer of the bandwidth measurement (default 1024)\n"
    "  --binary-kernel K   lut3 (default) or xor, for --model files; the shape runs both\n"
    "  --watts-per-core W  assumption of the energy estimate where RAPL is absent (default 5)\n";

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu_s() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
long rss_kb() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}
std::string load_avg() {
    std::ifstream in("/proc/loadavg");
    std::string a;
    in >> a;
    return a.empty() ? "?" : a;
}

// RAPL package energy in joules (intel-rapl:0, also used by AMD's powercap
// driver); < 0 where not readable.
double rapl_joules() {
    for (const char* p : {"/sys/class/powercap/intel-rapl:0/energy_uj", "/sys/class/powercap/intel-rapl/intel-rapl:0/energy_uj"}) {
        std::ifstream in(p);
        long long uj;
        if (in >> uj) return uj * 1e-6;
    }
    return -1;
}

struct Row {
    std::string label, kind;
    double file_gb = 0, resident_mb = 0, decode_tps = 0, prefill_tps = 0, mb_per_token = 0, achieved_gbps = 0;
    double bw_fraction = 0, cpu_s_per_token = 0, joules_per_token = -1;
    double state_mb = 0;  // recurrent state (conv + SSM), read and written once per token
};

Row bench_file(const std::string& label, const std::string& path, int prompt_n, int tokens, double bw_gbps) {
    Row r;
    r.label = label;
    const long rss0 = rss_kb();
    auto eng = engine::Engine::load(path);
    r.kind = eng->weight_kind();
    r.file_gb = eng->file_bytes() / 1e9;
    const int vocab = eng->config().vocab_size;
    std::mt19937 rng(1);
    std::vector<int> prompt(prompt_n);
    for (auto& t : prompt) t = (int)(rng() % vocab);
    // Warm-up: pulls the mapped weights into the page cache / memory.
    eng->prefill({1, 2});
    eng->reset();
    double t0 = now_s();
    eng->prefill(prompt);
    r.prefill_tps = prompt_n / (now_s() - t0);
    std::vector<float> logits = eng->step(prompt.back());
    const double e0 = rapl_joules(), c0 = cpu_s();
    t0 = now_s();
    for (int i = 0; i < tokens; ++i) {
        const int t = (int)(std::max_element(logits.begin(), logits.end()) - logits.begin());
        logits = eng->step(t);
    }
    const double dt = now_s() - t0;
    const double e1 = rapl_joules(), c1 = cpu_s();
    r.decode_tps = tokens / dt;
    r.cpu_s_per_token = (c1 - c0) / tokens;
    if (e0 >= 0 && e1 >= e0) r.joules_per_token = (e1 - e0) / tokens;
    r.mb_per_token = eng->weight_bytes_per_token() / 1e6;
    const auto& c = eng->config();
    r.state_mb = 4.0 * c.n_layer * ((double)c.nheads() * c.ssm.headdim * c.ssm.d_state + (double)c.conv_dim() * c.ssm.d_conv) / 1e6;
    r.achieved_gbps = eng->weight_bytes_per_token() * r.decode_tps / 1e9;
    r.bw_fraction = r.achieved_gbps / bw_gbps;
    r.resident_mb = (rss_kb() - rss0) / 1024.0;
    return r;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

int run_bench_cpu(const Args& args) {
    Options opt(args, {"help"});
    if (opt.has("help")) {
        std::fputs(kHelp, stdout);
        return 0;
    }
    opt.check_known({"shape", "model", "tokens", "prompt", "threads", "isa", "dir", "bandwidth-mb", "watts-per-core", "binary-kernel", "help"});
    const int tokens = (int)opt.get_int("tokens", 32), prompt_n = (int)opt.get_int("prompt", 16);
    if (tokens < 1 || prompt_n < 1) throw std::invalid_argument("--tokens and --prompt must be >= 1");
    const double wpc = opt.get_double("watts-per-core", 5.0);
    if (opt.has("threads")) {
        const long long n = opt.get_int("threads", 1);
        if (n < 1 || n > 1024) throw std::invalid_argument("--threads must be in [1, 1024]");
        kernels::ThreadPool::set_global_threads((int)n);
    }
    kernels::set_isa(opt.get("isa", "auto").c_str());
    const std::string shape = opt.get("shape", "780m");
    const std::string kernel = opt.get("binary-kernel", "lut3");
    engine::set_binary_kernel(kernel);
    const fs::path dir = opt.get("dir", "/tmp/bimamba-bench");

    std::printf("bimamba bench cpu: %u hardware threads, %d engine threads, kernels %s, load average %s%s\n",
                std::thread::hardware_concurrency(), kernels::ThreadPool::global().threads(), kernels::active_isa(),
                load_avg().c_str(), std::stod(load_avg()) > 1.5 ? " (machine busy: figures are noisy)" : "");
    const long long bw_mb = opt.get_int("bandwidth-mb", 1024);
    if (bw_mb < 64) throw std::invalid_argument("--bandwidth-mb must be >= 64");
    auto bw = kernels::measure_read_bandwidth((size_t)bw_mb << 20, 5);
    std::printf("memory bandwidth (streaming read, %lld MB, %d threads): best %.2f GB/s, median %.2f GB/s\n", bw_mb,
                bw.threads, bw.best_gbps, bw.median_gbps);

    std::vector<Row> rows;
    if (shape != "none") {
        auto cfg = Mamba2Config::preset(shape);
        fs::create_directories(dir);
        for (bool binary : {true, false}) {
            const fs::path f = dir / (shape + (binary ? "-binary.bmd" : "-f16.bmd"));
            if (!fs::exists(f)) {
                std::printf("writing %s (random weights) ...\n", f.c_str());
                std::fflush(stdout);
                engine::write_random_deploy(cfg, binary, engine::FloatStorage::F16, f.string());
            }
            if (binary) {  // both ±1 kernels, lookup tables first (the default)
                for (const char* k : {"lut3", "xor"}) {
                    engine::set_binary_kernel(k);
                    rows.push_back(bench_file(shape + " binary " + k, f.string(), prompt_n, tokens, bw.best_gbps));
                }
                engine::set_binary_kernel(kernel);
            } else {
                rows.push_back(bench_file(shape + " fp16", f.string(), prompt_n, tokens, bw.best_gbps));
            }
        }
    }
    for (const auto& m : split(opt.get("model"), ','))
        rows.push_back(bench_file(fs::path(m).filename().string(), m, prompt_n, tokens, bw.best_gbps));

    std::printf("\n%-22s %-15s %8s %10s %10s %10s %10s %9s %7s %9s\n", "model", "weights", "file GB", "resident MB",
                "decode t/s", "prefill t/s", "MB/token", "GB/s", "% of BW", "CPU-s/tok");
    for (const auto& r : rows)
        std::printf("%-22s %-15s %8.3f %11.1f %10.2f %11.2f %10.1f %9.2f %6.1f%% %9.4f\n", r.label.c_str(), r.kind.c_str(),
                    r.file_gb, r.resident_mb, r.decode_tps, r.prefill_tps, r.mb_per_token, r.achieved_gbps,
                    100 * r.bw_fraction, r.cpu_s_per_token);
    std::printf("(MB/token and %% of BW count weight bytes only; the recurrent state adds this much read + written per token:");
    for (const auto& r : rows) std::printf(" %s %.1f MB;", r.label.c_str(), r.state_mb);
    std::printf(")\n");
    if (rows.size() >= 3 && shape != "none") {
        const Row &b = rows[0].decode_tps >= rows[1].decode_tps ? rows[0] : rows[1], &f = rows[2];
        std::printf("\nfastest binary kernel: %s\n", b.label.c_str());
        std::printf("\n%s binary vs fp16: decode %.2fx faster (target >= 5x), resident memory %.2fx smaller (target >= 5x), "
                    "file %.2fx smaller; binary at %.0f %% of the bandwidth bound (target >= 60 %%)\n",
                    shape.c_str(), b.decode_tps / f.decode_tps, f.resident_mb / std::max(b.resident_mb, 1e-9),
                    f.file_gb / b.file_gb, 100 * b.bw_fraction);
    }
    std::printf("\nenergy per generated token:\n");
    bool any_rapl = false;
    for (const auto& r : rows)
        if (r.joules_per_token >= 0) {
            any_rapl = true;
            std::printf("  %-22s %.3f J/token (RAPL package energy, whole package)\n", r.label.c_str(), r.joules_per_token);
        }
    if (!any_rapl) {
        std::printf("  RAPL is not exposed on this machine (no readable /sys/class/powercap/intel-rapl:0/energy_uj);\n"
                    "  measured: CPU-seconds per token above. ESTIMATE (not a measurement): CPU-s/token x %.1f W per busy\n"
                    "  core (assumed server-core share of package power; excludes DRAM, uncore idle and the rest of the system):\n",
                    wpc);
        for (const auto& r : rows)
            std::printf("  %-22s ~%.3f J/token (estimate)\n", r.label.c_str(), r.cpu_s_per_token * wpc);
    }
    return 0;
}

CommandRegistrar reg{"bench cpu", "CPU engine speed, memory, bandwidth fraction and energy: binary vs fp16", run_bench_cpu};

}  // namespace
