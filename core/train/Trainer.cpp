#include "core/train/Trainer.h"

#include <ATen/autocast_mode.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/base/FileUtil.h"
#include "core/data/TokenDataset.h"
#include "core/model/Checkpoint.h"
#include "core/model/Teacher.h"
#include "core/train/LrSchedule.h"
#include "core/train/Losses.h"
#include "core/train/RunDir.h"
#include "core/train/TeacherCache.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace bimamba {

std::atomic<int>& stop_request() {
    static std::atomic<int> flag{0};
    return flag;
}

namespace {

void on_signal(int sig) { stop_request().store(sig); }

// Installs SIGINT/SIGTERM handlers for the lifetime of the object.
struct SignalScope {
    bool active;
    struct sigaction old_int {}, old_term {};
    explicit SignalScope(bool on) : active(on) {
        if (!active) return;
        stop_request().store(0);
        struct sigaction sa {};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
    }
    ~SignalScope() {
        if (!active) return;
        sigaction(SIGINT, &old_int, nullptr);
        sigaction(SIGTERM, &old_term, nullptr);
    }
};

double rss_mb() {
    std::ifstream f("/proc/self/statm");
    long pages_total = 0, pages_rss = 0;
    f >> pages_total >> pages_rss;
    return pages_rss * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// AdamW as in torch.optim.AdamW (decoupled decay, bias-corrected moments),
// written out so its state is plain named tensors for safetensors checkpoints.
struct AdamW {
    struct Slot {
        std::string name;
        torch::Tensor param, m, v;
        bool decay;
    };
    std::vector<Slot> slots;
    int64_t t = 0;  // updates done
    double beta1, beta2, eps, wd;

    AdamW(torch::nn::Module& model, double b1, double b2, double e, double weight_decay)
        : beta1(b1), beta2(b2), eps(e), wd(weight_decay) {
        for (auto& kv : model.named_parameters(true)) {
            const std::string& n = kv.key();
            auto ends = [&](const char* s) {
                std::string suf(s);
                return n.size() >= suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0;
            };
            // Decay matrices only (weights of projections, conv, embedding), not the
            // binarization scales, norms, biases or SSM parameters.
            const bool decay = kv.value().dim() >= 2 && !ends(".wscale") && !ends(".wbias");
            slots.push_back({n, kv.value(), torch::zeros_like(kv.value()), torch::zeros_like(kv.value()), decay});
        }
    }

    void step(double lr) {
        torch::NoGradGuard ng;
        ++t;
        const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(t));
        const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(t));
        for (auto& s : slots) {
            if (!s.param.grad().defined()) continue;
            const auto& g = s.param.grad();
            if (s.decay && wd > 0) s.param.mul_(1.0 - lr * wd);
            s.m.mul_(beta1).add_(g, 1.0 - beta1);
            s.v.mul_(beta2).addcmul_(g, g, 1.0 - beta2);
            auto denom = (s.v.sqrt() / std::sqrt(bc2)).add_(eps);
            s.param.addcdiv_(s.m, denom, -lr / bc1);
        }
    }

    std::map<std::string, torch::Tensor> state() const {
        std::map<std::string, torch::Tensor> out;
        for (auto& s : slots) {
            out["exp_avg." + s.name] = s.m;
            out["exp_avg_sq." + s.name] = s.v;
        }
        return out;
    }

    void load(const std::map<std::string, torch::Tensor>& st, int64_t steps_done) {
        torch::NoGradGuard ng;
        for (auto& s : slots) {
            for (auto [prefix, dst] : {std::pair<const char*, torch::Tensor*>{"exp_avg.", &s.m}, {"exp_avg_sq.", &s.v}}) {
                auto it = st.find(prefix + s.name);
                if (it == st.end())
                    throw std::runtime_error("optimizer state lacks '" + std::string(prefix) + s.name + "'");
                if (it->second.sizes() != dst->sizes())
                    throw std::runtime_error("optimizer state '" + std::string(prefix) + s.name + "' has the wrong shape");
                dst->copy_(it->second);
            }
        }
        t = steps_done;
    }
};

// Window offsets: a pure function of (seed, step, micro-batch), so a resumed
// run reads exactly the batches the uninterrupted run would have read.
// Draws `batch` 64-bit values; window offsets are value % span (random
// windows) or (value % windows)·seq_len (the aligned windows of a teacher cache).
std::vector<uint64_t> batch_draws(uint64_t seed, int64_t step, int64_t micro, int64_t batch) {
    std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(step),
                      static_cast<uint32_t>(step >> 32), static_cast<uint32_t>(micro), 0x5eedu};
    std::mt19937_64 rng(seq);
    std::vector<uint64_t> out(batch);
    for (auto& o : out) o = rng();
    return out;
}

// (inputs, targets) int64 (b, L) from windows of L+1 tokens at the offsets.
std::pair<torch::Tensor, torch::Tensor> make_batch(const TokenDataset& ds, const std::vector<uint64_t>& offsets,
                                                   int64_t seq_len) {
    const int64_t b = static_cast<int64_t>(offsets.size());
    auto buf = torch::empty({b, seq_len + 1}, torch::kInt32);
    for (int64_t i = 0; i < b; ++i) ds.read(offsets[i], seq_len + 1, buf[i].data_ptr<int32_t>());
    buf = buf.to(torch::kInt64);
    return {buf.narrow(1, 0, seq_len).contiguous(), buf.narrow(1, 1, seq_len).contiguous()};
}

struct AutocastScope {
    bool on;
    explicit AutocastScope(bool enable) : on(enable) {
        if (!on) return;
        at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
        at::autocast::set_autocast_enabled(at::kCUDA, true);
    }
    ~AutocastScope() {
        if (!on) return;
        at::autocast::set_autocast_enabled(at::kCUDA, false);
        at::autocast::clear_cache();
    }
};

std::string fmt(const char* f, double a) {
    char b[64];
    std::snprintf(b, sizeof b, f, a);
    return b;
}

int env_int(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::atoi(v) : 0;
}

}  // namespace

TrainResult train(const TrainConfig& cfg_in, const std::string& run_dir, const TrainOptions& opt) {
    TrainConfig cfg = cfg_in;
    if (opt.resume) {
        const std::string p = run_dir + "/train_config.json";
        if (!fs::exists(p)) throw std::runtime_error("cannot resume: '" + run_dir + "' has no train_config.json");
        cfg = TrainConfig::from_json(json::parse(read_file(p)));
    } else {
        cfg.validate();
        if (fs::exists(run_dir + "/checkpoints/latest"))
            throw std::runtime_error("run directory '" + run_dir +
                                     "' already holds a run with checkpoints: use --resume or another --run-dir");
    }

    // Device and precision.
    torch::Device device(torch::kCPU);
    if (cfg.device == "auto") {
        if (torch::cuda::is_available()) device = torch::Device(torch::kCUDA, 0);
    } else if (cfg.device != "cpu") {
        if (!torch::cuda::is_available())
            throw std::runtime_error("device '" + cfg.device + "' requested but CUDA is not available");
        device = torch::Device(cfg.device);
    }
    const bool bf16 = device.is_cuda() && cfg.precision != "float32";
    if (cfg.precision == "bf16" && !device.is_cuda())
        throw std::runtime_error("precision bf16 is for CUDA; on CPU training runs in float32 (set precision to auto)");
    if (cfg.threads > 0) torch::set_num_threads(static_cast<int>(cfg.threads));

    auto train_ds = TokenDataset::open(cfg.data, "train");
    auto val_ds = TokenDataset::open(cfg.data, "val");
    const uint64_t need = static_cast<uint64_t>(cfg.seq_len) + 1;
    if (train_ds->num_tokens() < need)
        throw std::runtime_error("the train split of '" + cfg.data + "' has " + std::to_string(train_ds->num_tokens()) +
                                 " tokens, fewer than seq_len+1 = " + std::to_string(need));
    if (val_ds->num_tokens() < need)
        throw std::runtime_error("the val split of '" + cfg.data + "' has " + std::to_string(val_ds->num_tokens()) +
                                 " tokens, fewer than seq_len+1 = " + std::to_string(need) +
                                 " (raise --val-fraction in prepare or lower seq_len)");
    const Mamba2Config mcfg = cfg.resolve_model(train_ds->vocab_size());

    RunDir rd(run_dir);
    if (!opt.resume) {
        // The config as run, with `model` resolved to the full model config.
        json stored = cfg.to_json();
        stored["model"] = mcfg.to_json();
        write_file_atomic(run_dir + "/train_config.json", stored.dump(2) + "\n");
    }

    // Model (seeded), optional initial weights, teacher.
    torch::manual_seed(cfg.seed);
    Mamba2LM model(mcfg);
    if (!cfg.init_from.empty() && !opt.resume) model->load_tensors(load_tensors_any(cfg.init_from), true);
    model->to(device);
    model->train();

    const LossType ltype = cfg.loss_type();
    // Any causal LM folder with the student's vocabulary (Teacher.h): a Mamba-2
    // trained here, an imported Mamba-2 or a LLaMA-family model.
    std::unique_ptr<Teacher> teacher;
    if (loss_needs_teacher(ltype) && !cfg.teacher.empty()) {
        // Fail before loading (or training) when the teacher cannot fit beside
        // the student, whose weights are already on the device; its gradients
        // and AdamW moments (12 bytes a parameter) are still to come.
        int64_t student_params = 0;
        for (const auto& p : model->parameters()) student_params += p.numel();
        Teacher::check_fits(cfg.teacher, device, 12ull * static_cast<uint64_t>(student_params));
        teacher = Teacher::load(cfg.teacher, device);
        teacher->match_vocab(mcfg.vocab_size, cfg.teacher_vocab_slice);
    }

    std::shared_ptr<TeacherCache> cache;
    if (!cfg.teacher_cache.empty()) {
        cache = TeacherCache::open(cfg.teacher_cache);
        if (cache->seq_len() != cfg.seq_len)
            throw std::runtime_error("teacher cache '" + cfg.teacher_cache + "' has seq_len " +
                                     std::to_string(cache->seq_len()) + " but the config says " + std::to_string(cfg.seq_len));
        if (cache->vocab_size() != mcfg.vocab_size)
            throw std::runtime_error("teacher cache vocabulary (" + std::to_string(cache->vocab_size()) +
                                     ") differs from the student's (" + std::to_string(mcfg.vocab_size) + ")");
        if (cache->num_windows() <= 0 ||
            static_cast<uint64_t>(cache->num_windows()) * cfg.seq_len + 1 > train_ds->num_tokens())
            throw std::runtime_error("teacher cache '" + cfg.teacher_cache + "' has " +
                                     std::to_string(cache->num_windows()) + " windows, which do not fit the train split (" +
                                     std::to_string(train_ds->num_tokens()) + " tokens): was it built on this corpus?");
    }

    AdamW adam(*model, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay);
    LrSchedule sched{cfg.lr, cfg.final_lr, cfg.warmup_steps, cfg.steps};
    const int64_t accum = cfg.effective_grad_accum();
    const int64_t tokens_per_step = cfg.tokens_per_optimizer_step();

    TrainResult res;
    res.val_loss = res.val_ppl = std::nan("");
    int64_t step = 0;
    double elapsed_before = 0;

    if (opt.resume) {
        const std::string ck = rd.latest_checkpoint();
        if (ck.empty()) throw std::runtime_error("cannot resume: '" + run_dir + "' has no complete checkpoint");
        json st = json::parse(read_file(ck + "/trainer_state.json"));
        step = st.at("step").get<int64_t>();
        elapsed_before = st.value("time", 0.0);
        auto mt = load_tensors(ck + "/model.safetensors");
        model->load_tensors(mt, true);
        auto ot = load_tensors(ck + "/optimizer.safetensors");
        adam.load(ot, st.at("adam_steps").get<int64_t>());
        auto it = ot.find("rng.cpu");
        if (it != ot.end()) {
            auto gen = at::detail::getDefaultCPUGenerator();
            std::lock_guard<std::mutex> lock(gen.mutex());
            gen.set_state(it->second);
        }
        rd.log("resumed from " + ck + " at step " + std::to_string(step), opt.echo);
        res.last_checkpoint = ck;
    } else {
        rd.log("training " + std::to_string(mcfg.num_parameters()) + " parameters (" + to_string(mcfg.binarize) +
                   "), loss " + cfg.loss + ", " + std::to_string(cfg.steps) + " steps of " +
                   std::to_string(tokens_per_step) + " tokens on " + device.str() + (bf16 ? " (bf16 autocast)" : ""),
               opt.echo);
    }
    res.start_step = step;
    rd.write_status("running", step, cfg.steps);

    SignalScope signals(opt.handle_signals);
    const auto t0 = std::chrono::steady_clock::now();
    auto now_s = [&] { return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

    // Validation: fixed, evenly spaced windows of the val split, plain CE.
    auto validate = [&]() -> double {
        torch::NoGradGuard ng;
        model->eval();
        const int64_t n = cfg.eval_batches * cfg.batch_size;
        const uint64_t span = val_ds->num_tokens() - need;
        double sum = 0;
        for (int64_t b = 0; b < cfg.eval_batches; ++b) {
            std::vector<uint64_t> offs(cfg.batch_size);
            for (int64_t i = 0; i < cfg.batch_size; ++i) {
                const int64_t k = b * cfg.batch_size + i;
                offs[i] = n > 1 ? span * static_cast<uint64_t>(k) / static_cast<uint64_t>(n - 1) : 0;
            }
            auto [x, y] = make_batch(*val_ds, offs, cfg.seq_len);
            AutocastScope ac(bf16);
            auto logits = model->forward(x.to(device));
            sum += loss_ce(logits, y.to(device)).item<double>();
        }
        model->train();
        return sum / cfg.eval_batches;
    };

    int64_t saved_step = opt.resume ? step : -1;
    auto save_checkpoint = [&](int64_t at_step) {
        if (at_step == saved_step) return;  // already saved at this step
        const std::string final_dir = rd.checkpoint_path(at_step);
        const std::string tmp = final_dir + ".tmp";
        std::error_code ec;
        bimamba::remove_tree(tmp);
        // A folder of this step that `latest` does not name (a writer killed
        // between rename and publish, then resumed from earlier) is replaced.
        bimamba::remove_tree(final_dir);
        fs::create_directories(tmp);
        save_model(model, tmp);
        // Test hook: widen the window in which a SIGKILL lands mid-write.
        if (int ms = env_int("BIMAMBA_TEST_SLOW_CHECKPOINT_MS")) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        auto ot = adam.state();
        {
            auto gen = at::detail::getDefaultCPUGenerator();
            std::lock_guard<std::mutex> lock(gen.mutex());
            ot["rng.cpu"] = gen.get_state();
        }
        save_tensors(tmp + "/optimizer.safetensors", ot);
        json st = {{"step", at_step},
                   {"tokens", at_step * tokens_per_step},
                   {"adam_steps", adam.t},
                   {"time", now_s()},
                   {"lr", sched.at(std::max<int64_t>(at_step - 1, 0))},
                   {"seed", cfg.seed},
                   {"data_position", {{"kind", "seeded-random-windows"}, {"next_step", at_step}}},
                   {"val_loss", std::isnan(res.val_loss) ? json(nullptr) : json(res.val_loss)}};
        write_file_atomic(tmp + "/trainer_state.json", st.dump(2) + "\n");
        fsync_dir(tmp);
        fs::rename(tmp, final_dir);
        rd.publish_checkpoint(final_dir, cfg.keep_checkpoints);
        res.last_checkpoint = final_dir;
        saved_step = at_step;
    };

    auto finish = [&](const std::string& state, const std::string& msg) {
        res.state = state;
        res.message = msg;
        res.step = step;
        rd.write_status(state, step, cfg.steps, msg);
        rd.log(state + ": " + msg, opt.echo);
        return res;
    };

    const uint64_t span = train_ds->num_tokens() - need + 1;
    int64_t steps_here = 0;
    while (step < cfg.steps) {
        const auto ts = std::chrono::steady_clock::now();
        const double lr = sched.at(step);
        for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
        double loss_sum = 0;
        for (int64_t micro = 0; micro < accum; ++micro) {
            auto draws = batch_draws(cfg.seed, step, micro, cfg.batch_size);
            std::vector<int64_t> windows;
            for (auto& d : draws) {
                if (cache) {
                    windows.push_back(static_cast<int64_t>(d % static_cast<uint64_t>(cache->num_windows())));
                    d = static_cast<uint64_t>(windows.back()) * cfg.seq_len;
                } else {
                    d %= span;
                }
            }
            auto [x, y] = make_batch(*train_ds, draws, cfg.seq_len);
            x = x.to(device);
            y = y.to(device);
            torch::Tensor loss;
            {
                AutocastScope ac(bf16);
                auto logits = model->forward(x);
                torch::Tensor tlogits;
                if (teacher) {
                    torch::NoGradGuard ng;
                    tlogits = teacher->logits(x);
                }
                if (cache) {
                    auto [vals, ids] = cache->windows(windows);
                    auto kd = loss_soft_ce_topk(logits, vals.to(device), ids.to(device));
                    loss = ltype == LossType::Mix ? cfg.ce_weight * loss_ce(logits, y) + (1.0 - cfg.ce_weight) * kd : kd;
                } else switch (ltype) {
                    case LossType::CE: loss = loss_ce(logits, y); break;
                    case LossType::SoftCE: loss = loss_soft_ce(logits, tlogits); break;
                    case LossType::KL: loss = loss_kl(logits, tlogits); break;
                    case LossType::Mix: loss = loss_mix(logits, tlogits, y, cfg.ce_weight); break;
                }
            }
            // Test hook: a non-finite loss at a chosen step.
            if (env_int("BIMAMBA_TEST_NAN_AT_STEP") == step + 1) loss = loss * std::nan("");
            const double lv = loss.item<double>();
            if (!std::isfinite(lv)) {
                return finish("failed", "loss is " + std::string(std::isnan(lv) ? "NaN" : "Inf") + " at step " +
                                            std::to_string(step + 1) + "; stopped without saving; the last good checkpoint is " +
                                            (res.last_checkpoint.empty() ? std::string("(none)") : res.last_checkpoint));
            }
            loss_sum += lv;
            (loss / static_cast<double>(accum)).backward();
        }
        const double loss_v = loss_sum / accum;

        // Global gradient norm, then clipping.
        double sq = 0;
        for (auto& p : model->parameters())
            if (p.grad().defined()) sq += p.grad().to(torch::kFloat64).pow(2).sum().item<double>();
        const double gnorm = std::sqrt(sq);
        if (!std::isfinite(gnorm))
            return finish("failed", "gradient norm is not finite at step " + std::to_string(step + 1) +
                                        "; stopped without saving; the last good checkpoint is " +
                                        (res.last_checkpoint.empty() ? std::string("(none)") : res.last_checkpoint));
        if (cfg.grad_clip > 0 && gnorm > cfg.grad_clip) {
            torch::NoGradGuard ng;
            const double scale = cfg.grad_clip / (gnorm + 1e-6);
            for (auto& p : model->parameters())
                if (p.grad().defined()) p.grad().mul_(scale);
        }
        adam.step(lr);
        ++step;
        ++steps_here;
        res.losses.push_back(loss_v);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();

        if (step % cfg.log_every == 0 || step == cfg.steps) {
            rd.append_metrics({{"type", "train"},
                               {"step", step},
                               {"tokens", step * tokens_per_step},
                               {"loss", loss_v},
                               {"lr", lr},
                               {"grad_norm", gnorm},
                               {"tok_per_s", dt > 0 ? tokens_per_step / dt : 0.0},
                               {"mem_mb", rss_mb()},
                               {"time", now_s()}});
            if (opt.echo)
                rd.log("step " + std::to_string(step) + "/" + std::to_string(cfg.steps) + "  loss " +
                           fmt("%.4f", loss_v) + "  lr " + fmt("%.3g", lr) + "  gnorm " + fmt("%.3f", gnorm) + "  " +
                           fmt("%.0f", dt > 0 ? tokens_per_step / dt : 0.0) + " tok/s",
                       true);
        }
        const bool last = step == cfg.steps;
        if ((cfg.eval_every > 0 && step % cfg.eval_every == 0) || last) {
            res.val_loss = validate();
            res.val_ppl = std::exp(res.val_loss);
            rd.append_metrics({{"type", "val"},
                               {"step", step},
                               {"tokens", step * tokens_per_step},
                               {"val_loss", res.val_loss},
                               {"val_ppl", res.val_ppl},
                               {"time", now_s()}});
            rd.log("step " + std::to_string(step) + "  val_loss " + fmt("%.4f", res.val_loss) + "  val_ppl " +
                       fmt("%.2f", res.val_ppl),
                   opt.echo);
        }
        const bool stop = stop_request().load() != 0 || (opt.stop_after_steps >= 0 && steps_here >= opt.stop_after_steps);
        if ((cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0) || last || stop) save_checkpoint(step);
        if (!last && stop) {
            const int sig = stop_request().load();
            return finish("stopped", std::string(sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "stop requested") +
                                         ": stopped at step " + std::to_string(step) + " with a checkpoint");
        }
        rd.write_status("running", step, cfg.steps);
    }
    return finish("finished", "finished " + std::to_string(step) + " steps, val_loss " + fmt("%.4f", res.val_loss) +
                                  ", val_ppl " + fmt("%.2f", res.val_ppl));
}

}  // namespace bimamba
