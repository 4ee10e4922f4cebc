// `bimamba bench cpu`: decode and prefill speed, resident memory, weight bytes
// per token and the achieved fraction of the machine's memory bandwidth
// (measured in the same run) for the bit-packed engine and the fp16 baseline,
// each with the exact float32 SSM state and with a 16-bit state, at a paper
// shape with random weights and on given deployment files; where decode time
// goes (per-part profile); the error of the 16-bit state against float32 on
// the given files; energy per token from RAPL where exposed, otherwise
// CPU-seconds and a labelled estimate (core/base/EnergyMeter.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <malloc.h>
#include <unistd.h>

#include "app/cli/Command.h"
#include "app/cli/JsonEvents.h"
#include "core/base/ModelSource.h"
#include "core/base/Process.h"
#include "core/eval/CliText.h"
#include "core/base/EnergyMeter.h"
#include "core/engine/DeployFile.h"
#include "core/engine/Engine.h"
#include "kernels/cpu/Bandwidth.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/SsmStep.h"
#include "kernels/cpu/ThreadPool.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::cli;
namespace fs = std::filesystem;

namespace {

const char* kHelp =
    "usage: bimamba bench cpu [options]\n"
    "  --shape NAME        paper shape benchmarked with random weights (default 780m; 'none' skips)\n"
    "  --model FILES       deployment files to benchmark as well (comma-separated), e.g. a trained model\n"
    "                      exported binary and fp16; their 16-bit-state error against float32 is measured\n"
    "  --tokens N          decoded tokens per measurement (default 32)\n"
    "  --reps N            decode measurements per row, continuing the same sequence; the median is\n"
    "                      reported with the range (default 5: robust to a busy neighbour for a moment)\n"
    "  --prompt N          prompt tokens for the prefill measurement (default 32; the batched prefill is\n"
    "                      measured --reps times from an empty state, the median reported)\n"
    "  --prefill-block N   tokens per block of batched prefill (default 32; compared with token by token)\n"
    "  --state LIST        SSM state precisions to run (f16, f32, bf16; default f16,f32: the engine's\n"
    "                      default first)\n"
    "  --error-tokens N    greedy tokens of the state-precision error measurement on --model files (default 64)\n"
    "  --threads N         worker threads (default: all cores)\n"
    "  --isa NAME          kernel path: auto (default: AVX-512 for the i16lut kernel where present,\n"
    "                      else AVX2), avx512, avx2 or scalar\n"
    "  --dir DIR           where the random-weight files are written/reused (default /tmp/bimamba-bench)\n"
    "  --bandwidth-mb N    buffer of the bandwidth measurement (default 1024), kept for the run: both\n"
    "                      bandwidths are measured again just before every decode rep, and each rep's\n"
    "                      % of the roofline uses its own (the median of the reps is reported)\n"
    "  --head H            head/embedding of the shape's binary file: q8 (default, int8 rows with a\n"
    "                      scale per row, as export writes a binary model) or f16\n"
    "  --kernels LIST      ±1 kernels run at the shape (i16lut, lut3, xor, i8lut; default i16lut,lut3);\n"
    "                      i16lut (the engine's default) quantizes the input to int16 per 32 columns,\n"
    "                      i8lut (opt-in; AVX-512 VBMI + VNNI, else its slow reference) to int8\n"
    "                      (neither exact): their error against the exact lut3 is measured on\n"
    "                      --model files\n"
    "  --binary-kernel K   i16lut (default), lut3, xor or i8lut, for --model files\n"
    "  --watts-per-core W  assumption of the energy estimate where RAPL is absent (default 5)\n"
    "  --json              machine-readable: JSON lines on stdout (the report goes to stderr instead;\n"
    "                      docs/cli-events.md):\n"
    "    {\"event\":\"machine\",\"hardware_threads\":N,\"threads\":T,\"isa\":I,\"load_average\":A,\"read_gbps\":B,\n"
    "     \"read_gbps_median\":B,\"update_gbps\":U,\"update_gbps_median\":U,\"core_share\":S,\"lone_multiplies_per_ns\":K,\n"
    "     \"handoff_us\":H,\"handoff_work_us\":HW,\"llc_mb\":C}\n"
    "    {\"event\":\"stats\",\"label\":L,\"weights\":W,\"binary_kernel\":K,\"head\":H,\"state\":S,\"tokens\":N,\"tok_per_s\":X,\n"
    "     \"tok_per_s_min\":X0,\"tok_per_s_max\":X1,\"prompt_tokens\":P,\"prefill_tok_per_s\":Y,\"prefill_tok_per_s_min\":Y0,\"prefill_tok_per_s_max\":Y1,\n"
    "     \"prefill1_tok_per_s\":Y1,\"rss_mb\":R,\"file_gb\":F,\"mb_per_token\":M,\"state_mb\":SM,\"gbps\":G,\n"
    "     \"bw_fraction\":BW,\"roofline\":RF,\"read_gbps_reps\":[..],\"update_gbps_reps\":[..],\"roofline_reps\":[..],\n"
    "     \"in_cache\":bool,\"joules_per_token\":J,\n"
    "     \"energy_source\":\"RAPL|estimate\",\"cpu_seconds_per_token\":C,\"profile_ms\":{\"embed\":..,\"total\":..},\n"
    "     \"prefill_profile_ms\":{..}}\n"
    "                      per measured row (tok_per_s: decode, the median of the reps; profile_ms: decode,\n"
    "                      ms per token; prefill_profile_ms: batched prefill, ms per prompt token)\n"
    "    {\"event\":\"logit_error\",\"model\":F,\"compared\":\"f16 state|bf16 state|i16lut\",\"max_rel\":E,\n"
    "     \"mean_rel\":E,\"argmax_agree\":N,\"steps\":N,\"free_identical\":N}\n"
    "    {\"event\":\"done\",\"rows\":N}\n";

double now_s() {
    return monotonic_seconds();
}
std::string load_avg() {
    std::ifstream in("/proc/loadavg");
    std::string a;
    in >> a;
    return a.empty() ? "?" : a;
}

// Last-level cache of cpu0 from sysfs ("32768K"); sysconf's figure can be the
// whole package's (256 MB on a 2-vCPU EPYC guest whose own L3 slice is 32 MB).
long llc_bytes() {
    for (int idx = 3; idx >= 2; --idx) {
        std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(idx) + "/size");
        long v = 0;
        std::string unit;
        if (in >> v) {
            in >> unit;
            return unit == "K" ? v << 10 : unit == "M" ? v << 20 : v;
        }
    }
    return sysconf(_SC_LEVEL3_CACHE_SIZE);
}

struct Row {
    std::string label, kind, state, kernel, head;  // kernel: the ±1 kernel ("-" for a file without packed projections)
    int prompt_tokens = 0;
    double file_gb = 0, resident_mb = 0, decode_tps = 0, prefill1_tps = 0, prefill_tps = 0, mb_per_token = 0;
    double state_mb = 0;  // recurrent state (conv + SSM) in memory; read and written once per token
    // bw_fraction: weight bytes per token × tok/s over the read bandwidth.
    // roofline: the memory-bound time per token (weights at the read
    // bandwidth + the state read and written at the update bandwidth) × tok/s.
    // weights_ceiling: the largest bw_fraction that roofline allows (the rest of
    // every token's memory time is state traffic).
    // Each decode rep gets the bandwidths measured just before it (rep_*), and
    // the three fractions are the medians of the reps' own: the memory speed
    // of a VM moves between reps.
    double achieved_gbps = 0, bw_fraction = 0, roofline = 0, weights_ceiling = 0;
    std::vector<double> rep_read_gbps, rep_update_gbps, rep_roofline;
    EnergySample energy;
    int tokens = 0;                           // decoded tokens in all (tokens per rep × reps)
    double decode_min = 0, decode_max = 0;    // range of the reps' tok/s (decode_tps is the median)
    double prefill_min = 0, prefill_max = 0;  // the same for batched prefill (prefill_tps is the median)
    engine::EngineProfile prof;               // decode, per part
    engine::EngineProfile pprof;              // batched prefill, per part (its tokens: prompt tokens of all reps)
};

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// A per-part profile as JSON, ms per token.
EventFields profile_ms(const engine::EngineProfile& p) {
    const double k = 1e3 / std::max(1L, p.tokens);
    return {{"embed", p.embed * k},       {"norm", p.norm * k},         {"in_proj", p.in_proj * k},
            {"conv", p.conv * k},         {"ssm", p.ssm * k},           {"gate_norm", p.gate_norm * k},
            {"out_proj", p.out_proj * k}, {"residual", p.residual * k}, {"head", p.head * k},
            {"total", p.total() * k}};
}

// `base`: the kernel, ISA and threads of the engine; its state and prefill block are set here.
Row bench_file(const std::string& label, const std::string& path, const engine::EngineOptions& base,
               kernels::StateType state, int prompt_n, int tokens, int reps, int block, kernels::BandwidthProbe& probe,
               double wpc) {
    Row r;
    r.label = label;
    r.state = kernels::state_type_name(state);
    malloc_trim(0);  // return memory freed by the previous row's engine, or it is reused unseen by the RSS delta
    const long rss0 = rss_kib();
    engine::EngineOptions eo = base;
    eo.state = state;
    eo.prefill_block = 1;
    auto eng = engine::Engine::load(path, eo);
    r.kind = eng->weight_kind();
    r.head = eng->head_storage();
    r.kernel = r.kind.rfind("binary", 0) == 0 ? eng->binary_kernel() : "-";
    if (r.kernel != "-" && std::string(eng->binary_kernel_path()) == "reference" &&
        eng->cpu().isa != kernels::Isa::Scalar)
        std::fprintf(stderr,
                     "note: %s runs its reference on this CPU (no AVX-512 VBMI + VNNI): its numbers, not its speed\n",
                     r.kernel.c_str());
    r.prompt_tokens = prompt_n;
    r.file_gb = eng->file_bytes() / 1e9;
    const int vocab = eng->config().vocab_size;
    std::mt19937 rng(1);
    std::vector<int> prompt(prompt_n);
    for (auto& t : prompt) t = (int)(rng() % vocab);
    // Warm-up: pulls the mapped weights into the page cache / memory.
    eng->prefill({1, 2});
    // Prefill token by token (the reference), then batched.
    eng->reset();
    double t0 = now_s();
    eng->prefill(prompt);
    r.prefill1_tps = prompt_n / (now_s() - t0);
    // Batched: `reps` times from an empty state (as llama-bench's pp), the median.
    eng->set_prefill_block(block);
    eng->set_profiling(true);
    std::vector<double> pps;
    std::vector<float> logits;
    for (int rep = 0; rep < reps; ++rep) {
        eng->reset();
        t0 = now_s();
        logits = eng->prefill(prompt);
        pps.push_back(prompt_n / (now_s() - t0));
    }
    std::sort(pps.begin(), pps.end());
    r.prefill_tps = pps[pps.size() / 2];
    r.prefill_min = pps.front();
    r.prefill_max = pps.back();
    r.pprof = eng->prefill_profile();
    eng->clear_profile();
    std::vector<double> tps;
    EnergySample energy;
    for (int rep = 0; rep < reps; ++rep) {
        // The bandwidths of this moment, best of two passes each (outside the
        // energy and the profile's time: the profile counts engine calls only).
        r.rep_read_gbps.push_back(probe.read(2).best_gbps);
        r.rep_update_gbps.push_back(probe.update(2).best_gbps);
        // The probe's buffer has just gone through the caches: one untimed step
        // brings a cache-resident model back before the rep (the sequence goes on).
        eng->set_profiling(false);
        logits = eng->step((int)(std::max_element(logits.begin(), logits.end()) - logits.begin()));
        eng->set_profiling(true);
        CpuEnergyMeter meter(wpc);
        t0 = now_s();
        for (int i = 0; i < tokens; ++i) {
            const int t = (int)(std::max_element(logits.begin(), logits.end()) - logits.begin());
            logits = eng->step(t);
        }
        tps.push_back(tokens / (now_s() - t0));
        const EnergySample e = meter.elapsed();
        energy.joules += e.joules;
        energy.cpu_seconds += e.cpu_seconds;
        energy.wall_seconds += e.wall_seconds;
        energy.measured = e.measured;
        energy.source = e.source;
    }
    r.energy = energy;
    r.tokens = tokens * reps;
    r.prof = eng->profile();
    r.mb_per_token = eng->weight_bytes_per_token() / 1e6;
    r.state_mb = eng->state_bytes() / 1e6;
    std::vector<double> fraction, ceiling;
    for (int rep = 0; rep < reps; ++rep) {
        const auto b = kernels::memory_bound(eng->weight_bytes_per_token(), eng->state_bytes(), r.rep_read_gbps[rep],
                                             r.rep_update_gbps[rep], tps[rep]);
        r.rep_roofline.push_back(b.roofline);
        fraction.push_back(b.bw_fraction);
        ceiling.push_back(b.weights_ceiling);
    }
    r.roofline = median(r.rep_roofline);
    r.bw_fraction = median(fraction);
    r.weights_ceiling = median(ceiling);
    std::sort(tps.begin(), tps.end());
    r.decode_tps = tps[tps.size() / 2];
    r.decode_min = tps.front();
    r.decode_max = tps.back();
    r.achieved_gbps = eng->weight_bytes_per_token() * r.decode_tps / 1e9;
    r.resident_mb = (rss_kib() - rss0) / 1024.0;
    return r;
}

// The 16-bit state against float32 on one file: the float32 engine decodes
// greedily; the other is fed the same tokens (teacher forcing) and its logits
// are compared at every step; separately both decode freely and the
// identical prefix is counted.
struct StateError {
    double max_rel = 0, mean_rel = 0;
    int argmax_agree = 0, steps = 0, free_identical = 0;
};

// `b_kernel`: the ±1 kernel of the compared engine (the reference uses lut3,
// float32 state); both engines live side by side, each with its own kernel.
StateError state_error(const std::string& path, const engine::EngineOptions& base, kernels::StateType st, int prompt_n,
                       int tokens, const std::string& b_kernel = "lut3") {
    engine::EngineOptions ao = base;
    ao.binary_kernel = "lut3";
    ao.state = kernels::StateType::F32;  // the reference (it was loaded with the default options, an f16 state, before)
    ao.prefill_block = engine::EngineOptions{}.prefill_block;
    auto a = engine::Engine::load(path, ao);
    engine::EngineOptions eo = ao;
    eo.state = st;
    eo.binary_kernel = b_kernel;
    auto b = engine::Engine::load(path, eo);
    std::mt19937 rng(5);
    std::vector<int> prompt(prompt_n);
    for (auto& t : prompt) t = (int)(rng() % a->config().vocab_size);
    auto argmax = [](const std::vector<float>& l) { return (int)(std::max_element(l.begin(), l.end()) - l.begin()); };
    auto rel = [](const std::vector<float>& x, const std::vector<float>& y) {
        double d = 0, m = 0;
        for (size_t i = 0; i < x.size(); ++i) {
            d = std::max(d, (double)std::fabs(x[i] - y[i]));
            m = std::max(m, (double)std::fabs(x[i]));
        }
        return d / std::max(m, 1e-30);
    };
    StateError e;
    std::vector<float> la = a->prefill(prompt), lb = b->prefill(prompt);
    std::vector<int> seq_a;
    for (int i = 0; i < tokens; ++i) {
        const double r = rel(la, lb);
        e.max_rel = std::max(e.max_rel, r);
        e.mean_rel += r;
        const int t = argmax(la);
        e.argmax_agree += t == argmax(lb);
        ++e.steps;
        seq_a.push_back(t);
        la = a->step(t);
        lb = b->step(t);
    }
    e.mean_rel /= std::max(1, e.steps);
    b->reset();
    lb = b->prefill(prompt);
    for (int i = 0; i < tokens; ++i) {
        const int t = argmax(lb);
        if (t != seq_a[i]) break;
        ++e.free_identical;
        lb = b->step(t);
    }
    return e;
}

int run_bench_cpu(const Args& args) {
    // glibc raises its mmap threshold when large mmapped blocks are freed (as
    // writing the random-weight files does), and the engines loaded after it then
    // took 262 instead of 188 MB at 780M (binary): a fixed threshold keeps the
    // RSS of every row that of an engine loaded in a process of its own.
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    Options opt(args, {"help", "json"});
    if (opt.has("help")) {
        std::fputs(kHelp, stdout);
        return 0;
    }
    opt.check_known({"shape", "model", "tokens", "reps", "prompt", "prefill-block", "state", "error-tokens", "threads",
                     "isa", "dir", "bandwidth-mb", "watts-per-core", "binary-kernel", "kernels", "head", "json",
                     "help"});
    const bool json = opt.has("json");
    FILE* out = json ? stderr : stdout;  // the human report
    const int tokens = (int)opt.get_int("tokens", 32), prompt_n = (int)opt.get_int("prompt", 32);
    const int reps = (int)opt.get_int("reps", 5);
    if (reps < 1 || reps > 1000) throw std::invalid_argument("--reps must be in [1, 1000]");
    const int block = (int)opt.get_int("prefill-block", 32), err_tokens = (int)opt.get_int("error-tokens", 64);
    if (tokens < 1 || prompt_n < 1 || block < 1 || err_tokens < 0)
        throw std::invalid_argument("--tokens, --prompt and --prefill-block must be >= 1, --error-tokens >= 0");
    const double wpc = opt.get_double("watts-per-core", 5.0);
    std::vector<kernels::StateType> states;
    for (const auto& s : eval::split_list(opt.get("state", "f16,f32")))
        states.push_back(kernels::state_type_from_string(s));
    if (states.empty()) throw std::invalid_argument("--state needs at least one precision");
    // Every engine of the run is created with these options (each row sets its
    // own ±1 kernel and state on a copy).
    engine::EngineOptions base;
    if (opt.has("threads")) {
        const long long n = opt.get_int("threads", 1);
        if (n < 1 || n > 1024) throw std::invalid_argument("--threads must be in [1, 1024]");
        base.threads = (int)n;
    }
    base.isa = opt.get("isa", "auto");
    const kernels::CpuContext cx = kernels::CpuContext::make(base.isa, base.threads);  // throws on a bad --isa
    const std::string shape = opt.get("shape", "780m");
    const std::string kernel = opt.get("binary-kernel", engine::kDefaultBinaryKernel);
    engine::check_binary_kernel(kernel);
    base.binary_kernel = kernel;
    const fs::path dir = opt.get("dir", "/tmp/bimamba-bench");
    const auto shape_kernels = eval::split_list(opt.get("kernels", "i16lut,lut3"));
    const engine::HeadStorage head = engine::head_storage_from_string(opt.get("head", "q8"));
    if (head != engine::HeadStorage::F16 && head != engine::HeadStorage::Q8)
        throw std::invalid_argument("--head must be f16 or q8");
    for (const auto& k : shape_kernels) engine::check_binary_kernel(k);

    std::fprintf(out, "bimamba bench cpu: %u hardware threads, %d engine threads, kernels %s, load average %s%s\n",
                 std::thread::hardware_concurrency(), cx.thread_count(), kernels::isa_name(cx.isa), load_avg().c_str(),
                 std::stod(load_avg()) > 1.5 ? " (machine busy: figures are noisy)" : "");
    const long long bw_mb = opt.get_int("bandwidth-mb", 1024);
    if (bw_mb < 64) throw std::invalid_argument("--bandwidth-mb must be >= 64");
    // Kept for the whole run: each decode rep measures both bandwidths again just before it.
    kernels::BandwidthProbe bandwidth(cx.threads(), (size_t)bw_mb << 20);
    auto bw = bandwidth.read(5);
    std::fprintf(out, "memory bandwidth (streaming read, %lld MB, %d threads): best %.2f GB/s, median %.2f GB/s\n",
                 bw_mb, bw.threads, bw.best_gbps, bw.median_gbps);
    auto ubw = bandwidth.update(5);
    std::fprintf(
        out,
        "memory bandwidth (in-place update, read + written, %lld MB, %d threads): best %.2f GB/s, median %.2f GB/s\n",
        bw_mb, ubw.threads, ubw.best_gbps, ubw.median_gbps);
    const auto share = kernels::measure_core_share(cx.thread_count());
    if (share.threads > 1)
        std::fprintf(out, "compute per thread with %d threads at once: %.2f of one thread alone%s\n", share.threads,
                     share.ratio,
                     share.ratio < 0.8 ? " (the threads share cores: SMT siblings, or a VM's vCPUs on one core at the "
                                         "moment; compute-bound kernels slow down, figures are not comparable)"
                                       : " (a core each)");
    std::fprintf(out, "one thread alone: %.2f multiplies per ns (a fixed loop: its rate follows the core clock)\n",
                 share.lone_per_ns);
    // The hand-off with empty chunks (the claiming), and beyond chunks of a decode GEMV's order of time
    // (5-20 µs at 780M-2.7B: the woken threads' later start and uneven finish); ThreadPool.h.
    constexpr int kHandoffJobs = 200;
    constexpr double kHandoffWorkMicros = 5;
    const double handoff_us = cx.threads().measure_handoff_micros(kHandoffJobs);
    const double handoff_work_us = cx.threads().measure_handoff_micros(kHandoffJobs, kHandoffWorkMicros);
    if (cx.thread_count() > 1)
        std::fprintf(out,
                     "thread hand-off: %.2f us with empty chunks, %.2f us beyond the work with chunks of %.0f us "
                     "(median of %d jobs of %d chunks each; decode hands off about 3 times per layer)\n",
                     handoff_us, handoff_work_us, kHandoffWorkMicros, kHandoffJobs,
                     kernels::ThreadPool::kChunksPerThread * cx.thread_count());
    std::fflush(out);
    const long l3 = llc_bytes();
    if (json)
        emit_event("machine", {{"hardware_threads", std::thread::hardware_concurrency()},
                               {"threads", cx.thread_count()},
                               {"isa", kernels::isa_name(cx.isa)},
                               {"load_average", std::stod(load_avg())},
                               {"read_gbps", bw.best_gbps},
                               {"read_gbps_median", bw.median_gbps},
                               {"update_gbps", ubw.best_gbps},
                               {"update_gbps_median", ubw.median_gbps},
                               {"core_share", share.ratio},
                               {"lone_multiplies_per_ns", share.lone_per_ns},
                               {"handoff_us", handoff_us},
                               {"handoff_work_us", handoff_work_us},
                               {"llc_mb", l3 / 1048576.0}});

    std::vector<Row> rows;
    std::vector<std::pair<int, int>> pairs;  // (binary row, fp16 row) per state, indices into rows
    if (shape != "none") {
        auto cfg = Mamba2Config::preset(shape);
        fs::create_directories(dir);
        fs::path files[2];
        for (bool binary : {true, false}) {
            const bool q8 = binary && head == engine::HeadStorage::Q8;
            const fs::path f = dir / (shape + (binary ? (q8 ? "-binary-q8head.bmd" : "-binary.bmd") : "-f16.bmd"));
            if (!fs::exists(f)) {
                std::fprintf(out, "writing %s (random weights) ...\n", f.c_str());
                std::fflush(out);
                engine::write_random_deploy(cfg, binary, engine::FloatStorage::F16, f.string(), 1,
                                            q8 ? engine::HeadStorage::Q8 : engine::HeadStorage::AsFloat);
            }
            files[binary ? 0 : 1] = f;
        }
        for (auto st : states) {
            const std::string sn = kernels::state_type_name(st);
            std::vector<int> bins;
            for (const auto& k : shape_kernels) {
                engine::EngineOptions ko = base;
                ko.binary_kernel = k;
                rows.push_back(bench_file(shape + " binary " + k + (head == engine::HeadStorage::Q8 ? " q8h" : ""),
                                          files[0].string(), ko, st, prompt_n, tokens, reps, block, bandwidth, wpc));
                bins.push_back((int)rows.size() - 1);
                std::fprintf(out, "  %s, %s state: %.2f tok/s (reps %.2f-%.2f)\n", rows.back().label.c_str(),
                             sn.c_str(), rows.back().decode_tps, rows.back().decode_min, rows.back().decode_max);
                std::fflush(out);
            }
            rows.push_back(bench_file(shape + " fp16", files[1].string(), base, st, prompt_n, tokens, reps, block,
                                      bandwidth, wpc));
            std::fprintf(out, "  %s, %s state: %.2f tok/s (reps %.2f-%.2f)\n", rows.back().label.c_str(), sn.c_str(),
                         rows.back().decode_tps, rows.back().decode_min, rows.back().decode_max);
            std::fflush(out);
            for (int bi : bins) pairs.push_back({bi, (int)rows.size() - 1});
        }
    }
    const auto models = eval::split_list(opt.get("model"));
    for (const auto& m : models)
        if (!resolve_model(m, true).is_deploy_file())
            throw std::invalid_argument("--model '" + m +
                                        "' is a checkpoint or run directory; bench cpu runs deployment "
                                        "files: make one with `bimamba export --model " +
                                        m + " --out model.bmd`");
    for (const auto& m : models)
        for (auto st : states)
            rows.push_back(bench_file(fs::path(m).filename().string(), m, base, st, prompt_n, tokens, reps, block,
                                      bandwidth, wpc));

    std::fprintf(out, "\n%-20s %-7s %-6s %7s %9s %9s %9s %9s %8s %7s %7s %8s %9s\n", "model", "weights", "state",
                 "file GB", "resid. MB", "decode/s", "pre1/s", "preB/s", "MB/tok", "GB/s", "%BW w", "%roof",
                 "CPU-s/tok");
    // A model whose weights and state fit in the last-level cache is not read
    // from DRAM: its bandwidth fractions say nothing (they can exceed 100 %).
    bool any_cached = false;
    for (const auto& r : rows) {
        const bool cached = l3 > 0 && (r.mb_per_token + 2 * r.state_mb) * 1e6 < 2.0 * l3;
        any_cached |= cached;
        if (json) {
            emit_event("stats", {{"label", r.label},
                                 {"weights", r.kind},
                                 {"binary_kernel", r.kernel},
                                 {"head", r.head},
                                 {"state", r.state},
                                 {"tokens", r.tokens},
                                 {"tok_per_s", r.decode_tps},
                                 {"tok_per_s_min", r.decode_min},
                                 {"tok_per_s_max", r.decode_max},
                                 {"prompt_tokens", r.prompt_tokens},
                                 {"prefill_tok_per_s", r.prefill_tps},
                                 {"prefill_tok_per_s_min", r.prefill_min},
                                 {"prefill_tok_per_s_max", r.prefill_max},
                                 {"prefill1_tok_per_s", r.prefill1_tps},
                                 {"rss_mb", r.resident_mb},
                                 {"file_gb", r.file_gb},
                                 {"mb_per_token", r.mb_per_token},
                                 {"state_mb", r.state_mb},
                                 {"gbps", r.achieved_gbps},
                                 {"bw_fraction", r.bw_fraction},
                                 {"roofline", r.roofline},
                                 {"read_gbps_reps", r.rep_read_gbps},
                                 {"update_gbps_reps", r.rep_update_gbps},
                                 {"roofline_reps", r.rep_roofline},
                                 {"in_cache", cached},
                                 {"joules_per_token", r.energy.joules / r.tokens},
                                 {"energy_source", r.energy.measured ? "RAPL" : "estimate"},
                                 {"cpu_seconds_per_token", r.energy.cpu_seconds / r.tokens},
                                 {"profile_ms", profile_ms(r.prof)},
                                 {"prefill_profile_ms", profile_ms(r.pprof)}});
        }
        std::fprintf(out, "%-20s %-7s %-6s %7.3f %9.1f %9.2f %9.2f %9.2f %8.1f %7.2f %6.1f%% %7.1f%% %9.4f%s\n",
                     r.label.c_str(), r.kind.c_str(), r.state.c_str(), r.file_gb, r.resident_mb, r.decode_tps,
                     r.prefill1_tps, r.prefill_tps, r.mb_per_token, r.achieved_gbps, 100 * r.bw_fraction,
                     100 * r.roofline, r.energy.cpu_seconds / r.tokens, cached ? "  (in cache)" : "");
    }
    if (any_cached)
        std::fprintf(
            out,
            "(in cache: weights + state under twice the %ld MB last-level cache; its %%BW figures are not DRAM figures)\n",
            l3 >> 20);
    std::fprintf(
        out,
        "(decode/s: greedy decode, median of %d reps of %d tokens; pre1/s: prompt of %d tokens fed token by token;\n"
        " preB/s: the same prompt in blocks of %d tokens (median of the reps); MB/tok, GB/s and %%BW w: weight bytes only, against the read bandwidth; %%roof: against the\n"
        " memory-bound time of a token, its weights at the read bandwidth plus its SSM+conv state read and written\n"
        " at the update bandwidth; %%BW w and %%roof: each rep against the bandwidths measured just before it, the\n"
        " median of the reps; state MB of",
        reps, tokens, prompt_n, block);
    for (const auto& r : rows) std::fprintf(out, " %s/%s %.1f;", r.label.c_str(), r.state.c_str(), r.state_mb);
    std::fprintf(out, ")\n");
    std::fprintf(out,
                 "bandwidth just before each decode rep (GB/s, in rep order) and that rep's %% of the roofline:\n");
    for (const auto& r : rows) {
        std::fprintf(out, "  %-20s %-6s", r.label.c_str(), r.state.c_str());
        for (size_t i = 0; i < r.rep_roofline.size(); ++i)
            std::fprintf(out, "%s read %.1f update %.1f: %.0f %%", i ? ";" : "", r.rep_read_gbps[i],
                         r.rep_update_gbps[i], 100 * r.rep_roofline[i]);
        std::fprintf(out, "\n");
    }

    auto profile_table = [&](const char* title, engine::EngineProfile Row::*which) {
        std::fprintf(out, "\n%s\n", title);
        std::fprintf(out, "%-20s %-6s %7s %7s %7s %7s %7s %7s %7s %7s %7s %8s\n", "model", "state", "embed", "norm",
                     "in_proj", "conv", "ssm", "gnorm", "out_prj", "resid", "head", "total");
        for (const auto& r : rows) {
            const auto& p = r.*which;
            const double k = 1e3 / std::max(1L, p.tokens);
            std::fprintf(out, "%-20s %-6s %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %8.2f\n",
                         r.label.c_str(), r.state.c_str(), p.embed * k, p.norm * k, p.in_proj * k, p.conv * k,
                         p.ssm * k, p.gate_norm * k, p.out_proj * k, p.residual * k, p.head * k, p.total() * k);
        }
    };
    profile_table(
        "where decode time goes (ms per token; ssm: the per-head region with its thread hand-off; "
        "in_proj with the layer's norm and the conv of B and C, out_proj with the residual add):",
        &Row::prof);
    profile_table(
        "where batched prefill time goes (ms per prompt token, blocks as above; in_proj/out_proj: the "
        "GEMMs; head: once per prompt):",
        &Row::pprof);

    if (!pairs.empty()) {
        std::fprintf(
            out,
            "\n%s binary vs fp16 baseline, same state precision on both (lut3: float tables, exact; i16lut: int16\n"
            "input quantization, not exact; i8lut: int8 input quantization, coarser; xor: sign flips, exact):\n",
            shape.c_str());
        for (const auto& [bi, fi] : pairs) {
            const Row &b = rows[bi], &f = rows[fi];
            std::fprintf(
                out,
                "  %-6s %-4s state: decode %.2f vs %.2f tok/s = %.2fx (target >= 5x); resident %.0f vs %.0f MB = %.2fx smaller "
                "(target >= 6x); prefill %.2fx; binary at %.0f %% of the memory roofline (target >= 80 %%); weights "
                "alone %.0f %% of the read bandwidth (the state traffic caps this at %.0f %%)\n",
                b.label.substr(b.label.rfind(' ') + 1).c_str(), b.state.c_str(), b.decode_tps, f.decode_tps,
                b.decode_tps / f.decode_tps, b.resident_mb, f.resident_mb,
                f.resident_mb / std::max(b.resident_mb, 1e-9), b.prefill_tps / f.prefill_tps, 100 * b.roofline,
                100 * b.bw_fraction, 100 * b.weights_ceiling);
        }
        std::fprintf(out, "  file %.2fx smaller\n", rows[pairs[0].second].file_gb / rows[pairs[0].first].file_gb);
    }

    bool any_reduced = false;
    std::vector<std::string> quantized;  // the input-quantizing kernels run: their error against lut3
    for (auto st : states) any_reduced |= st != kernels::StateType::F32;
    for (const char* q : {"i16lut", "i8lut"})
        if (kernel == q || std::find(shape_kernels.begin(), shape_kernels.end(), q) != shape_kernels.end())
            quantized.push_back(q);

    // One logit comparison: a "logit_error" event (--json) and a line of text.
    auto report_error = [&](const std::string& model, const std::string& compared, const std::string& label,
                            const StateError& e) {
        if (json)
            emit_event("logit_error", {{"model", model},
                                       {"compared", compared},
                                       {"max_rel", e.max_rel},
                                       {"mean_rel", e.mean_rel},
                                       {"argmax_agree", e.argmax_agree},
                                       {"steps", e.steps},
                                       {"free_identical", e.free_identical}});
        std::fprintf(out,
                     "  %-25s: logit rel. error max %.2e, mean %.2e; argmax agrees %d/%d steps; free-running greedy "
                     "identical for %d/%d tokens\n",
                     label.c_str(), e.max_rel, e.mean_rel, e.argmax_agree, e.steps, e.free_identical, err_tokens);
    };
    if (any_reduced && err_tokens > 0 && !models.empty()) {
        std::fprintf(
            out,
            "\n16-bit SSM state vs float32 state (random prompt of %d tokens, then %d greedy tokens of the float32 engine\n"
            "fed to both; logit relative error = max|a-b| / max|a| per step):\n",
            prompt_n, err_tokens);
        for (const auto& m : models)
            for (auto st : states) {
                if (st == kernels::StateType::F32) continue;
                report_error(m, std::string(kernels::state_type_name(st)) + " state",
                             fs::path(m).filename().string() + " " + kernels::state_type_name(st),
                             state_error(m, base, st, prompt_n, err_tokens));
            }
    }

    for (const auto& q : quantized) {
        if (err_tokens <= 0 || models.empty()) break;
        std::fprintf(out, "\n%s kernel vs lut3 (float32 state both; same measurement as above):\n", q.c_str());
        for (const auto& m : models)
            report_error(m, q, fs::path(m).filename().string(),
                         state_error(m, base, kernels::StateType::F32, prompt_n, err_tokens, q));
    }

    std::fprintf(out, "\nenergy per generated token (decode):\n");
    CpuEnergyMeter probe(wpc);
    std::fprintf(out, "  method: %s\n", probe.describe().c_str());
    for (const auto& r : rows)
        std::fprintf(out, "  %-20s %-4s %.3f J/token (%s), %.4f CPU-s/token\n", r.label.c_str(), r.state.c_str(),
                     r.energy.joules / r.tokens, r.energy.measured ? "RAPL" : "estimate",
                     r.energy.cpu_seconds / r.tokens);
    if (json) emit_event("done", {{"rows", rows.size()}});
    return 0;
}

CommandRegistrar reg{"bench cpu", "CPU engine speed, memory, bandwidth fraction and energy: binary vs fp16",
                     run_bench_cpu};

}  // namespace
