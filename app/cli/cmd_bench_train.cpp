// `bimamba bench train`: training throughput of Mamba-2 / Bi-Mamba on the GPU.
// One optimiser step = bf16-autocast forward, loss (next-token CE, or the
// soft-target CE of a full-precision teacher run under no_grad), backward,
// gradient clipping, AdamW. Prints tokens/s, step time, peak GPU memory and
// model FLOPs utilisation (6·params·tokens/s over the GPU's dense bf16 peak).
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "app/cli/Command.h"
#include "core/base/Mamba2Config.h"
#include "core/eval/CliText.h"
#include "core/model/Autocast.h"
#include "core/model/Mamba2Model.h"
#include "core/model/Ssd.h"
#include "core/train/Determinism.h"
#include "core/train/HeadLoss.h"
#include "core/train/Losses.h"

#ifdef BIMAMBA_HAVE_CUDA_KERNELS
#include <c10/cuda/CUDACachingAllocator.h>

#include "kernels/cuda/CudaOps.h"
#endif

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::model;
using namespace bimamba::train;
using namespace bimamba::cli;

namespace {

const char* kHelp =
    "usage: bimamba bench train [options]\n"
    "  --preset NAME         model size (tiny, small, 130m, 370m, 780m, 1.3b, 2.7b; default 780m)\n"
    "  --seq N               sequence length                            (default 2048)\n"
    "  --micro-batch LIST    sequences per step; a comma list sweeps them, e.g. 4,8,16 (default 4)\n"
    "  --steps N             timed steps                                (default 10)\n"
    "  --warmup N            untimed steps first                        (default 3)\n"
    "  --binarize LIST       comma list of none | in_proj | in_proj+out_proj\n"
    "                        (default none,in_proj+out_proj: Mamba-2 and Bi-Mamba)\n"
    "  --teacher LIST        comma list of off | on (default off,on); on = a full-precision\n"
    "                        model of the same preset in the loop, soft-target CE (eq. 6)\n"
    "  --reference-ssd       LibTorch-ops SSD scan instead of the fused one\n"
    "  --reference-kernels   LibTorch ops for everything (SSD, conv1d+SiLU, gated RMSNorm, binarize)\n"
    "  --deterministic       deterministic mode, as the training config's `deterministic`: LibTorch's\n"
    "                        deterministic algorithms, cuBLAS workspace :4096:8, fixed-order kernels\n"
    "  --chunk-size N        SSD chunk length (default: the preset's, 256); the math is the same\n"
    "                        for any chunk, the time and memory are not\n"
    "  --head-loss H         chunked (head matmul + loss per 4096 positions, logits never whole;\n"
    "                        core/train/HeadLoss.h) | full (logits, then the loss)  (default chunked)\n"
    "  --optimizer O         fused (ATen's multi-tensor AdamW, sync-free clipping) | torch\n"
    "                        (torch::optim::AdamW + clip_grad_norm_)   (default fused)\n"
    "  --profile PREFIX      after timing, profile 2 steps: top GPU kernels per step, and\n"
    "                        Chrome traces PREFIX.*.json ('-': table only)\n"
    "  --peak-tflops X       dense bf16 peak for MFU                    (default 989, H100 SXM)\n"
    "  --seed N              (default 0)\n";

// Runs `n` steps under the Kineto profiler and prints the GPU kernels that
// took the most time per step (where the step's time goes, kernel by kernel),
// and writes a Chrome trace when `trace` is not empty.
void profile_steps(const std::function<void()>& step, int n, const std::string& trace) {
    namespace prof = torch::profiler::impl;
    const prof::ProfilerConfig pc(prof::ProfilerState::KINETO);
    const std::set<prof::ActivityType> acts{prof::ActivityType::CPU, prof::ActivityType::CUDA};
    torch::autograd::profiler::prepareProfiler(pc, acts);
    torch::autograd::profiler::enableProfiler(pc, acts);
    for (int i = 0; i < n; ++i) step();
    torch::cuda::synchronize();
    auto result = torch::autograd::profiler::disableProfiler();
    // The mixer's named scopes (RECORD_USER_SCOPE) come back as GPU-side
    // spans over the kernels they enclose: listed apart, not added to the total.
    auto is_scope = [](const std::string& n) { return n.rfind("mixer.", 0) == 0 || n.rfind("block.", 0) == 0; };
    std::map<std::string, std::pair<double, int>> by_kernel, by_scope;  // name -> (ns, launches)
    double total = 0;
    for (const auto& e : result->events())
        if (e.deviceType() == c10::DeviceType::CUDA) {
            const bool scope = is_scope(e.name());
            auto& k = (scope ? by_scope : by_kernel)[e.name()];
            k.first += e.durationNs();
            k.second += 1;
            if (!scope) total += e.durationNs();
        }
    std::vector<std::pair<std::string, std::pair<double, int>>> rows(by_kernel.begin(), by_kernel.end());
    std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
    std::printf("  GPU time per step %.1f ms in %zu kernel kinds; top kernels (ms/step, launches/step, share):\n",
                total / 1e6 / n, rows.size());
    for (size_t i = 0; i < rows.size() && i < 40; ++i) {
        std::string name = rows[i].first.substr(0, 140);
        std::printf("  %8.2f %6d %5.1f%%  %s\n", rows[i].second.first / 1e6 / n, rows[i].second.second / n,
                    100 * rows[i].second.first / std::max(total, 1.0), name.c_str());
    }
    std::printf("  forward scopes (GPU span, ms/step; overlap the kernels above):");
    for (const auto& [name, v] : by_scope) std::printf(" %s %.2f", name.c_str(), v.first / 1e6 / n);
    std::printf("\n");
    if (!trace.empty()) {
        result->save(trace);
        std::printf("  Chrome trace: %s\n", trace.c_str());
    }
}

// AdamW over all parameters in one multi-tensor kernel (ATen's fused AdamW, as
// torch.optim.AdamW(fused=True)), and gradient clipping without a host sync.
// torch::optim::AdamW and clip_grad_norm_ launch several kernels per tensor.
struct FusedAdamW {
    std::vector<torch::Tensor> params, exp_avg, exp_avg_sq, steps;
    double lr, beta1, beta2, wd, eps;
    FusedAdamW(std::vector<torch::Tensor> p, double lr_, double b1, double b2, double wd_, double eps_ = 1e-8)
        : params(std::move(p)), lr(lr_), beta1(b1), beta2(b2), wd(wd_), eps(eps_) {
        torch::NoGradGuard ng;
        for (auto& t : params) {
            exp_avg.push_back(torch::zeros_like(t));
            exp_avg_sq.push_back(torch::zeros_like(t));
            steps.push_back(torch::zeros({}, t.options().dtype(torch::kFloat32)));
        }
    }
    std::vector<torch::Tensor> grads() const {
        std::vector<torch::Tensor> g;
        for (auto& t : params) g.push_back(t.grad().defined() ? t.grad() : torch::zeros_like(t));
        return g;
    }
    void clip(double max_norm) {
        torch::NoGradGuard ng;
        auto g = grads();
        auto total = torch::linalg_vector_norm(torch::stack(at::_foreach_norm(g, 2)), 2);
        auto coef = torch::clamp_max(max_norm / (total + 1e-6), 1.0);
        at::_foreach_mul_(g, coef);
    }
    void step() {
        torch::NoGradGuard ng;
        at::_foreach_add_(steps, 1);  // the fused kernel reads the step count, it does not advance it
        at::_fused_adamw_(params, grads(), exp_avg, exp_avg_sq, {}, steps, lr, beta1, beta2, wd, eps, false, false);
    }
    void zero_grad() {
        for (auto& t : params) t.mutable_grad() = torch::Tensor();
    }
};

struct Result {
    std::string name;
    bool oom = false;
    int64_t micro_batch = 0;
    double tokens_per_s = 0, step_ms = 0, peak_gib = 0, reserved_gib = 0, mfu = 0, loss = 0;
};

Result bench_one(const Mamba2Config& base, const std::string& binarize, bool teacher_on, int64_t mb, int64_t seq,
                 int steps, int warmup, double peak_flops, uint64_t seed, bool fused_opt, bool deterministic,
                 bool chunked_head, const std::string& profile) {
    Result r;
    r.name = (binarize == "none" ? std::string("Mamba-2") : "Bi-Mamba (" + binarize + ")") +
             (teacher_on ? " + teacher" : "");
    const torch::Device dev(torch::kCUDA);
    auto cfg = base;
    cfg.binarize = binarize_from_string(binarize);
    torch::manual_seed(seed);
    try {
        Mamba2LM model(cfg);
        model->to(dev);
        model->train();
        model->set_deterministic(deterministic);
        Mamba2LM teacher{nullptr};
        if (teacher_on) {
            auto tcfg = base;
            tcfg.binarize = Binarize::None;
            teacher = Mamba2LM(tcfg);
            teacher->to(dev);
            teacher->eval();
            for (auto& p : teacher->parameters()) p.requires_grad_(false);
        }
        auto params = model->parameters();
        std::unique_ptr<torch::optim::AdamW> opt;
        std::unique_ptr<FusedAdamW> fused;
        if (fused_opt)
            fused = std::make_unique<FusedAdamW>(params, 2.5e-4, 0.9, 0.95, 0.1);
        else
            opt = std::make_unique<torch::optim::AdamW>(
                params, torch::optim::AdamWOptions(2.5e-4).betas({0.9, 0.95}).weight_decay(0.1));

        auto step = [&]() {
            auto ids = torch::randint(0, cfg.vocab_size, {mb, seq + 1},
                                      torch::TensorOptions().dtype(torch::kLong).device(dev));
            auto inputs = ids.narrow(1, 0, seq), targets = ids.narrow(1, 1, seq);
            torch::Tensor loss;
            {
                AutocastScope ac(true);
                if (chunked_head) {
                    HeadLossTargets t;
                    t.type = teacher_on ? LossType::SoftCE : LossType::CE;
                    t.targets = targets;
                    if (teacher_on) {
                        torch::NoGradGuard ng;  // bf16 teacher logits, as autocast's F.linear gives them
                        t.teacher_logits =
                            torch::nn::functional::linear(teacher->hidden_states(inputs), teacher->head_weight());
                    }
                    loss = head_loss(model->hidden_states(inputs), model->head_weight(), t);
                } else {
                    auto logits = model->forward(inputs);
                    if (teacher_on) {
                        torch::Tensor tl;
                        {
                            torch::NoGradGuard ng;
                            tl = teacher->forward(inputs);
                        }
                        loss = loss_soft_ce(logits, tl);
                    } else {
                        loss = loss_ce(logits, targets);
                    }
                }
            }
            loss.backward();
            if (fused) {
                fused->clip(1.0);
                fused->step();
                fused->zero_grad();
            } else {
                torch::nn::utils::clip_grad_norm_(params, 1.0);
                opt->step();
                opt->zero_grad(/*set_to_none=*/true);
            }
            return loss;
        };

        for (int i = 0; i < warmup; ++i) step();
        torch::cuda::synchronize();
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
        c10::cuda::CUDACachingAllocator::resetPeakStats(0);
#endif
        auto t0 = std::chrono::steady_clock::now();
        torch::Tensor last;
        for (int i = 0; i < steps; ++i) last = step();
        torch::cuda::synchronize();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.step_ms = 1000.0 * s / steps;
        r.tokens_per_s = double(mb * seq) * steps / s;
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
        auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
        const auto agg = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
        r.peak_gib = double(stats.allocated_bytes[agg].peak) / (1 << 30);
        r.reserved_gib = double(stats.reserved_bytes[agg].peak) / (1 << 30);
#endif
        r.mfu = 6.0 * double(cfg.num_parameters()) * r.tokens_per_s / peak_flops;
        r.loss = last.item<double>();
        if (!profile.empty()) {
            std::string trace = profile == "-" ? std::string()
                                               : profile + (binarize == "none" ? ".mamba2" : ".bimamba") +
                                                     (teacher_on ? "-teacher" : "") + ".json";
            std::printf("%s:\n", r.name.c_str());
            profile_steps([&] { step(); }, 2, trace);
        }
    } catch (const c10::OutOfMemoryError&) {
        r.oom = true;
    }
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
    c10::cuda::CUDACachingAllocator::emptyCache();
#endif
    return r;
}

int run_bench_train(const Args& args) {
    Options o(args, {"reference-ssd", "reference-kernels", "deterministic", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"preset", "seq", "micro-batch", "steps", "warmup", "binarize", "teacher", "reference-ssd",
                   "reference-kernels", "deterministic", "peak-tflops", "seed", "optimizer", "profile", "head-loss",
                   "chunk-size", "help"});
    const bool det = o.has("deterministic");
    if (det && (o.has("reference-ssd") || o.has("reference-kernels")))
        throw std::invalid_argument(
            "--deterministic runs the fused kernels: the LibTorch-ops SSD uses cumsum, which has "
            "no deterministic CUDA implementation (drop --reference-ssd / --reference-kernels)");
    // Before any CUDA work: cuBLAS reads its workspace config when its first handle is made.
    DeterminismScope determinism(det);
    const std::string head = o.get("head-loss", "chunked");
    if (head != "chunked" && head != "full") throw std::invalid_argument("--head-loss takes chunked or full");
    const bool chunked = head == "chunked";
    if (o.get("optimizer", "fused") != "fused" && o.get("optimizer") != "torch")
        throw std::invalid_argument("--optimizer takes fused or torch");
    if (!torch::cuda::is_available()) throw std::runtime_error("bench train needs a CUDA GPU (none found)");
    const auto preset = o.get("preset", "780m");
    auto base = Mamba2Config::preset(preset);
    if (o.has("chunk-size")) {
        base.ssm.chunk_size = o.get_int("chunk-size", base.ssm.chunk_size);
        if (base.ssm.chunk_size < 8 || base.ssm.chunk_size > 1024)
            throw std::invalid_argument("--chunk-size must be in [8, 1024]");
    }
    const int64_t seq = o.get_int("seq", 2048);
    std::vector<int64_t> mbs;
    for (const auto& v : eval::split_list(o.get("micro-batch", "4"))) {
        char* end = nullptr;
        const long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end || n <= 0)
            throw std::invalid_argument("--micro-batch takes positive integers, e.g. 4 or 4,8,16 (got '" + v + "')");
        mbs.push_back(n);
    }
    const int steps = (int)o.get_int("steps", 10), warmup = (int)o.get_int("warmup", 3);
    const double peak = o.get_double("peak-tflops", 989.0) * 1e12;
    if (seq <= 0 || steps <= 0 || warmup < 0) throw std::invalid_argument("--seq and --steps must be positive");
    const bool ref_all = o.has("reference-kernels"), ref_ssd = ref_all || o.has("reference-ssd");
    std::string path = ref_all   ? "LibTorch ops (reference)"
                       : ref_ssd ? "fused kernels, LibTorch-ops SSD"
                                 : "fused kernels";
    if (det) path += ", deterministic";
    path += chunked ? ", chunked head+loss" : ", full logits";
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
    if (ref_ssd)
        cuda::set_reference_ssd([](const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                                   const torch::Tensor& B, const torch::Tensor& C, int64_t T, const torch::Tensor& s0) {
            return ssd_chunked(x, dt, A, B, C, T, s0, /*allow_fused=*/false);
        });
    cuda::set_reference_elementwise(ref_all);
#else
    path = "LibTorch ops (built without CUDA kernels)";
#endif
    std::printf(
        "bench train: preset %s (%.1fM params), seq %lld, SSD chunk %lld, micro-batch %s, %d+%d steps, bf16 autocast, %s AdamW; %s; %s\n",
        preset.c_str(), base.num_parameters() / 1e6, (long long)seq, (long long)base.ssm.chunk_size,
        o.get("micro-batch", "4").c_str(), warmup, steps, o.get("optimizer", "fused").c_str(), path.c_str(),
        torch::cuda::device_count() ? "GPU 0" : "");
    std::printf("%-40s %4s %12s %10s %10s %10s %7s %8s\n", "config", "mb", "tokens/s", "step ms", "peak GiB",
                "resv GiB", "MFU", "loss");
    for (const auto& bin : eval::split_list(o.get("binarize", "none,in_proj+out_proj"))) {
        for (const auto& t : eval::split_list(o.get("teacher", "off,on"))) {
            if (t != "on" && t != "off") throw std::invalid_argument("--teacher takes off and/or on");
            Result best;
            for (const int64_t mb : mbs) {
                auto r = bench_one(base, bin, t == "on", mb, seq, steps, warmup, peak, (uint64_t)o.get_int("seed", 0),
                                   o.get("optimizer", "fused") == "fused", det, chunked, o.get("profile", ""));
                if (r.oom)
                    std::printf("%-40s %4lld %12s\n", r.name.c_str(), (long long)mb, "out of memory");
                else
                    std::printf("%-40s %4lld %12.0f %10.1f %10.2f %10.2f %6.1f%% %8.3f\n", r.name.c_str(),
                                (long long)mb, r.tokens_per_s, r.step_ms, r.peak_gib, r.reserved_gib, 100 * r.mfu,
                                r.loss);
                std::fflush(stdout);
                if (!r.oom && r.tokens_per_s > best.tokens_per_s) best = r, best.micro_batch = mb;
            }
            if (mbs.size() > 1 && best.tokens_per_s > 0)
                std::printf("%-40s %4s %12.0f  (best: micro-batch %lld)\n", best.name.c_str(), "best",
                            best.tokens_per_s, (long long)best.micro_batch);
        }
    }
    std::printf("MFU = 6 x student params x tokens/s / peak (teacher forward not counted)\n");
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
    cuda::set_reference_ssd({});
    cuda::set_reference_elementwise(false);
#endif
    return 0;
}

CommandRegistrar reg{"bench train", "GPU training throughput: tokens/s, step time, peak memory, MFU", run_bench_train};

}  // namespace
