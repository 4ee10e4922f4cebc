#include "core/train/Trainer.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/base/FileUtil.h"
#include "core/base/Process.h"
#include "core/base/StringUtil.h"
#include "core/data/TokenDataset.h"
#include "core/model/Autocast.h"
#include "core/model/Checkpoint.h"
#include "core/model/Teacher.h"
#include "core/train/AdamW.h"
#include "core/train/Determinism.h"
#include "core/train/LrSchedule.h"
#include "core/train/Losses.h"
#include "core/train/Distributed.h"
#include "core/train/GradReducer.h"
#include "core/base/RunDir.h"
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

std::string fmt(const char* f, double a) {
    char b[64];
    std::snprintf(b, sizeof b, f, a);
    return b;
}

// The device of this process: cfg.device, and with data parallelism on CUDA
// cuda:LOCAL_RANK. Throws for a device that cannot be used.
torch::Device resolve_device(const TrainConfig& cfg, const DistEnv& denv) {
    torch::Device device(torch::kCPU);
    if (cfg.device == "auto") {
        if (torch::cuda::is_available()) device = torch::Device(torch::kCUDA, 0);
    } else if (cfg.device != "cpu") {
        if (!torch::cuda::is_available())
            throw std::runtime_error("device '" + cfg.device + "' requested but CUDA is not available");
        device = torch::Device(cfg.device);
        if (device.is_cuda() && !device.has_index()) device = torch::Device(torch::kCUDA, 0);  // "cuda" = the first GPU
    }
    if (!denv.distributed() || !device.is_cuda()) return device;
    if (cfg.device != "auto" && cfg.device != "cuda")
        throw std::runtime_error("device '" + cfg.device + "' names one GPU, but in data-parallel training rank r uses "
                                 "cuda:LOCAL_RANK: set device to \"cuda\" or \"auto\"");
    if (!nccl_available())
        throw std::runtime_error(
            "data-parallel training on CUDA needs NCCL, which this build lacks (configure with -DBIMAMBA_CUDA=ON where "
            "the CUDA toolkit and nccl.h are installed), or set device to \"cpu\" to train over Gloo");
    const int n = static_cast<int>(torch::cuda::device_count());
    if (denv.local_rank >= n)
        throw std::runtime_error("data-parallel training: LOCAL_RANK=" + std::to_string(denv.local_rank) +
                                 " needs GPU cuda:" + std::to_string(denv.local_rank) + " but this host shows " +
                                 std::to_string(n) + " GPU(s) (check CUDA_VISIBLE_DEVICES and the ranks per host)");
    if (denv.local_world_size > n)
        throw std::runtime_error("data-parallel training: LOCAL_WORLD_SIZE=" + std::to_string(denv.local_world_size) +
                                 " ranks on this host but only " + std::to_string(n) + " GPU(s)");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(denv.local_rank));
}

// The global micro-batch (batch_size) is split evenly over the ranks.
void check_batch_split(const TrainConfig& cfg, const DistEnv& denv) {
    if (cfg.batch_size % denv.world_size != 0)
        throw std::runtime_error("data-parallel training: batch_size " + std::to_string(cfg.batch_size) +
                                 " (the global micro-batch, split over the ranks) is not divisible by WORLD_SIZE " +
                                 std::to_string(denv.world_size));
}

}  // namespace

TrainResult train(const TrainConfig& cfg_in, const std::string& run_dir, const TrainOptions& opt) {
    const DistEnv& denv = opt.dist;
    const bool ddp = denv.distributed();
    const bool main_rank = denv.rank == 0;  // the one that reads and writes run_dir
    const int world = denv.world_size;
    const bool echo = opt.echo && main_rank;

    TrainConfig cfg = cfg_in;
    std::unique_ptr<Distributed> dist;
    if (ddp && !opt.resume) {
        // Fail before the rendezvous: every rank runs the same checks on the same config.
        cfg.validate();
        check_batch_split(cfg, denv);
        resolve_device(cfg, denv);
    }
    if (ddp) dist = std::make_unique<Distributed>(denv);

    // The run's config: rank 0's, read from the run dir when resuming.
    {
        std::string err;
        try {
            if (main_rank) {
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
            }
        } catch (const std::exception& e) {
            if (!ddp) throw;
            err = e.what();
        }
        if (ddp) {
            dist->agree("config", err);
            const std::string shared = dist->share_string("config", cfg.to_json().dump());
            if (!main_rank) {
                err.clear();
                try {
                    TrainConfig c0 = TrainConfig::from_json(json::parse(shared));
                    if (!opt.resume && c0.to_json() != cfg.to_json())
                        throw std::runtime_error("rank " + std::to_string(denv.rank) +
                                                 "'s training config differs from rank 0's: start every rank with the same --config");
                    cfg = c0;
                } catch (const std::exception& e) {
                    err = e.what();
                }
            }
            dist->agree("config-match", err);
        }
    }

    // Deterministic mode, before any CUDA work of this run (cuBLAS reads its
    // workspace config when its first handle is made); restored on return.
    std::unique_ptr<DeterminismScope> determinism;
    {
        std::string err;
        try {
            determinism = std::make_unique<DeterminismScope>(cfg.deterministic);
        } catch (const std::exception& e) {
            if (!ddp) throw;
            err = e.what();
        }
        if (ddp) dist->agree("deterministic", err);
    }

    // Device, data, model, teacher. In a data-parallel run the ranks agree that
    // all of them got through before any collective.
    torch::Device device(torch::kCPU);
    std::shared_ptr<TokenDataset> train_ds, val_ds;
    Mamba2Config mcfg;
    Mamba2LM model{nullptr};
    std::unique_ptr<Teacher> teacher;
    std::shared_ptr<TeacherCache> cache;
    const uint64_t need = static_cast<uint64_t>(cfg.seq_len) + 1;
    const LossType ltype = cfg.loss_type();
    std::string setup_err;
    try {
        if (ddp) check_batch_split(cfg, denv);
        device = resolve_device(cfg, denv);
        if (cfg.precision == "bf16" && !device.is_cuda())
            throw std::runtime_error("precision bf16 is for CUDA; on CPU training runs in float32 (set precision to auto)");
        if (cfg.threads > 0) torch::set_num_threads(static_cast<int>(cfg.threads));
        if (device.is_cuda()) c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device);

        train_ds = TokenDataset::open(cfg.data, "train");
        val_ds = TokenDataset::open(cfg.data, "val");
        if (train_ds->num_tokens() < need)
            throw std::runtime_error("the train split of '" + cfg.data + "' has " + std::to_string(train_ds->num_tokens()) +
                                     " tokens, fewer than seq_len+1 = " + std::to_string(need));
        if (val_ds->num_tokens() < need)
            throw std::runtime_error("the val split of '" + cfg.data + "' has " + std::to_string(val_ds->num_tokens()) +
                                     " tokens, fewer than seq_len+1 = " + std::to_string(need) +
                                     " (raise --val-fraction in prepare or lower seq_len)");
        mcfg = cfg.resolve_model(train_ds->vocab_size());

        if (!opt.resume && main_rank) {
            fs::create_directories(run_dir);
            // The config as run, with `model` resolved to the full model config.
            json stored = cfg.to_json();
            stored["model"] = mcfg.to_json();
            write_file_atomic(run_dir + "/train_config.json", stored.dump(2) + "\n");
        }

        // Model (seeded), optional initial weights, teacher. Data-parallel ranks
        // then take rank 0's weights (broadcast below).
        torch::manual_seed(cfg.seed);
        model = Mamba2LM(mcfg);
        if (!cfg.init_from.empty() && !opt.resume && main_rank)
            model->load_tensors(load_tensors_any(cfg.init_from), true);
        model->to(device);
        model->train();
        model->set_deterministic(cfg.deterministic);

        // Any causal LM folder with the student's vocabulary (Teacher.h): a Mamba-2
        // trained here, an imported Mamba-2 or a LLaMA-family model.
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

        if (!cfg.teacher_cache.empty()) {
            cache = TeacherCache::open(cfg.teacher_cache);
            if (cache->seq_len() != cfg.seq_len)
                throw std::runtime_error("teacher cache '" + cfg.teacher_cache + "' has seq_len " +
                                         std::to_string(cache->seq_len()) + " but the config says " +
                                         std::to_string(cfg.seq_len));
            if (cache->vocab_size() != mcfg.vocab_size)
                throw std::runtime_error("teacher cache vocabulary (" + std::to_string(cache->vocab_size()) +
                                         ") differs from the student's (" + std::to_string(mcfg.vocab_size) + ")");
            if (cache->num_windows() <= 0 ||
                static_cast<uint64_t>(cache->num_windows()) * cfg.seq_len + 1 > train_ds->num_tokens())
                throw std::runtime_error("teacher cache '" + cfg.teacher_cache + "' has " +
                                         std::to_string(cache->num_windows()) +
                                         " windows, which do not fit the train split (" +
                                         std::to_string(train_ds->num_tokens()) + " tokens): was it built on this corpus?");
        }
    } catch (const std::exception& e) {
        if (!ddp) throw;
        setup_err = e.what();
    }
    if (ddp) {
        dist->agree("setup", setup_err);
        dist->init_process_group(device);
    }
    const bool bf16 = device.is_cuda() && cfg.precision != "float32";

    // Only rank 0 owns the run directory.
    std::unique_ptr<RunDir> rd;
    if (main_rank) rd = std::make_unique<RunDir>(run_dir);
    auto log = [&](const std::string& msg, bool e) {
        if (rd) rd->log(msg, e);
    };
    auto write_status = [&](const std::string& state, int64_t at, const std::string& msg = "") {
        if (rd) rd->write_status(state, at, cfg.steps, msg);
    };
    auto append_metrics = [&](const json& j) {
        if (rd) rd->append_metrics(j);
        if (rd && opt.on_metrics) opt.on_metrics(j);
    };

    AdamW adam(*model, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay);
    LrSchedule sched{cfg.lr, cfg.final_lr, cfg.warmup_steps, cfg.steps};
    const int64_t accum = cfg.effective_grad_accum();
    const int64_t tokens_per_step = cfg.tokens_per_optimizer_step();
    const int64_t local_batch = cfg.batch_size / world;  // this rank's share of each micro-batch

    TrainResult res;
    res.val_loss = res.val_ppl = std::nan("");
    int64_t step = 0;
    double elapsed_before = 0;

    if (opt.resume) {
        std::string err;
        if (main_rank) try {
                const std::string ck = rd->latest_checkpoint();
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
                rd->truncate_metrics(step);  // the steps after the checkpoint are redone: drop their rows
                log("resumed from " + ck + " at step " + std::to_string(step) +
                        (ddp ? " (" + std::to_string(world) + " ranks)" : std::string()),
                    echo);
                res.last_checkpoint = ck;
            } catch (const std::exception& e) {
                if (!ddp) throw;
                err = e.what();
            }
        if (ddp) {
            dist->agree("resume", err);
            // Rank 0's step, AdamW count and clock (its moments are broadcast with the weights below).
            auto s = torch::tensor({static_cast<double>(step), static_cast<double>(adam.t), elapsed_before},
                                   torch::TensorOptions().dtype(torch::kFloat64).device(device));
            dist->broadcast({s}, 0);
            s = s.cpu();
            step = static_cast<int64_t>(s[0].item<double>());
            adam.t = static_cast<int64_t>(s[1].item<double>());
            elapsed_before = s[2].item<double>();
        }
    }
    std::unique_ptr<GradReducer> reducer;
    if (ddp) {
        // Every rank starts from rank 0's weights (fresh, init_from or checkpoint)
        // and, on resume, its AdamW moments.
        torch::NoGradGuard ng;
        std::vector<torch::Tensor> ts;
        for (auto& p : model->parameters()) ts.push_back(p);
        for (auto& b : model->buffers()) ts.push_back(b);
        if (opt.resume)
            for (auto& s : adam.slots) {
                ts.push_back(s.m);
                ts.push_back(s.v);
            }
        dist->broadcast(ts, 0);
        reducer = std::make_unique<GradReducer>(*dist, model->parameters(), denv.bucket_mb);
    }
    if (!opt.resume) {
        log("training " + std::to_string(mcfg.num_parameters()) + " parameters (" + to_string(mcfg.binarize) +
                "), loss " + cfg.loss + ", " + std::to_string(cfg.steps) + " steps of " +
                std::to_string(tokens_per_step) + " tokens on " + device.str() + (bf16 ? " (bf16 autocast)" : "") +
                (cfg.deterministic ? ", deterministic" : ""),
            echo);
    }
    if (ddp)
        log("data parallel: " + std::to_string(world) + " ranks over " + dist->backend_name() + ", " +
                std::to_string(local_batch) + " of each micro-batch's " + std::to_string(cfg.batch_size) +
                " sequences per rank, gradients all-reduced in " + std::to_string(reducer->num_buckets()) +
                " bucket(s) during backward",
            echo);
    res.start_step = step;
    write_status("running", step);

    SignalScope signals(opt.handle_signals);
    const auto t0 = std::chrono::steady_clock::now();
    auto now_s = [&] { return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

    // Sum over ranks of a few doubles (identity in a single process).
    auto sum_ranks = [&](std::vector<double> v) {
        if (!ddp) return v;
        auto t = torch::tensor(v, torch::TensorOptions().dtype(torch::kFloat64)).to(device);
        dist->allreduce_sum(t);
        t = t.cpu();
        for (size_t i = 0; i < v.size(); ++i) v[i] = t[static_cast<int64_t>(i)].item<double>();
        return v;
    };

    // Validation: fixed, evenly spaced windows of the val split, plain CE. Each
    // rank takes its slice of every batch; the batch means are averaged over ranks.
    auto validate = [&]() -> double {
        torch::NoGradGuard ng;
        model->eval();
        const int64_t n = cfg.eval_batches * cfg.batch_size;
        const uint64_t span = val_ds->num_tokens() - need;
        double sum = 0;
        for (int64_t b = 0; b < cfg.eval_batches; ++b) {
            std::vector<uint64_t> offs(local_batch);
            for (int64_t i = 0; i < local_batch; ++i) {
                const int64_t k = b * cfg.batch_size + denv.rank * local_batch + i;
                offs[i] = n > 1 ? span * static_cast<uint64_t>(k) / static_cast<uint64_t>(n - 1) : 0;
            }
            auto [x, y] = make_batch(*val_ds, offs, cfg.seq_len);
            AutocastScope ac(bf16);
            auto logits = model->forward(x.to(device));
            sum += loss_ce(logits, y.to(device)).item<double>();
        }
        model->train();
        return sum_ranks({sum})[0] / world / cfg.eval_batches;
    };

    int64_t saved_step = opt.resume ? step : -1;
    int64_t steps_here = 0;
    auto save_checkpoint = [&](int64_t at_step) {
        if (at_step == saved_step) return;  // already saved at this step
        saved_step = at_step;
        if (!rd) return;  // rank 0 writes checkpoints
        const std::string final_dir = rd->checkpoint_path(at_step);
        const std::string tmp = final_dir + ".tmp";
        bimamba::remove_tree(tmp);
        // A folder of this step that `latest` does not name (a writer killed
        // between rename and publish, then resumed from earlier) is replaced.
        bimamba::remove_tree(final_dir);
        fs::create_directories(tmp);
        save_model(model, tmp);
        if (opt.hooks.during_checkpoint) opt.hooks.during_checkpoint(at_step);
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
        if (ddp) st["world_size"] = world;
        write_file_atomic(tmp + "/trainer_state.json", st.dump(2) + "\n");
        fsync_dir(tmp);
        fs::rename(tmp, final_dir);
        rd->publish_checkpoint(final_dir, cfg.keep_checkpoints);
        res.last_checkpoint = final_dir;
    };

    auto finish = [&](const std::string& state, const std::string& msg) {
        const double secs = now_s() - elapsed_before;
        if (steps_here > 0 && secs > 0) {
            const double tps = static_cast<double>(steps_here * tokens_per_step) / secs;
            log("throughput: " + fmt("%.0f", tps) + " tok/s" +
                    (ddp ? " in total, " + fmt("%.0f", tps / world) + " per rank x " + std::to_string(world) + " ranks"
                         : std::string()) +
                    " over " + std::to_string(steps_here) + " steps (" + fmt("%.1f", secs) + " s, validation included)",
                echo);
        }
        res.state = state;
        res.message = msg;
        res.step = step;
        write_status(state, step, msg);
        log(state + ": " + msg, echo);
        // No rank reports before rank 0's last checkpoint and status are written.
        if (dist) {
            dist->barrier();
            dist->shutdown();
        }
        return res;
    };
    auto last_good = [&] {
        return res.last_checkpoint.empty() ? std::string("(none)") : res.last_checkpoint;
    };

    const uint64_t span = train_ds->num_tokens() - need + 1;
    while (step < cfg.steps) {
        const auto ts = std::chrono::steady_clock::now();
        const double lr = sched.at(step);
        for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
        double loss_sum = 0;
        double nonfinite = 0;
        for (int64_t micro = 0; micro < accum; ++micro) {
            auto draws = batch_draws(cfg.seed, step, micro, cfg.batch_size);
            if (ddp)  // this rank's contiguous slice of the global micro-batch
                draws = std::vector<uint64_t>(draws.begin() + denv.rank * local_batch,
                                              draws.begin() + (denv.rank + 1) * local_batch);
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
            if (opt.hooks.after_loss) opt.hooks.after_loss(step + 1, loss);
            const double lv = loss.item<double>();
            if (!std::isfinite(lv)) {
                if (!ddp)
                    return finish("failed", "loss is " + std::string(std::isnan(lv) ? "NaN" : "Inf") + " at step " +
                                                std::to_string(step + 1) +
                                                "; stopped without saving; the last good checkpoint is " + last_good());
                // Data parallel: the ranks decide together after backward (one
                // rank leaving alone would hang the others in a collective).
                nonfinite += 1;
            }
            loss_sum += lv;
            if (reducer) reducer->prepare(micro == accum - 1);
            (loss / static_cast<double>(accum)).backward();
        }
        if (reducer) {
            reducer->finish();
            auto s = sum_ranks({std::isfinite(loss_sum) ? loss_sum : 0.0, nonfinite});
            if (s[1] > 0)
                return finish("failed", "loss is not finite at step " + std::to_string(step + 1) + " on " +
                                            std::to_string(static_cast<int>(s[1])) +
                                            " micro-batch(es) of the ranks; stopped without saving; the last good checkpoint is " +
                                            last_good());
            loss_sum = s[0] / world;
        }
        const double loss_v = loss_sum / accum;

        // Global gradient norm, then clipping (gradients are identical on every rank).
        std::vector<torch::Tensor> sqs;
        for (auto& p : model->parameters())
            if (p.grad().defined()) sqs.push_back(p.grad().to(torch::kFloat64).pow(2).sum());
        const double gnorm = sqs.empty() ? 0.0 : std::sqrt(torch::stack(sqs).sum().item<double>());
        if (!std::isfinite(gnorm))
            return finish("failed", "gradient norm is not finite at step " + std::to_string(step + 1) +
                                        "; stopped without saving; the last good checkpoint is " + last_good());
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
            const double tps = dt > 0 ? tokens_per_step / dt : 0.0;
            json line = {{"type", "train"},
                         {"step", step},
                         {"tokens", step * tokens_per_step},
                         {"loss", loss_v},
                         {"lr", lr},
                         {"grad_norm", gnorm},
                         {"tok_per_s", tps},
                         {"mem_mb", rss_mib()},
                         {"time", now_s()}};
            if (ddp) {
                line["world_size"] = world;
                line["tok_per_s_rank"] = tps / world;
            }
            append_metrics(line);
            // Always in train.log; on stderr only with echo (the quickstart draws progress bars instead).
            log("step " + std::to_string(step) + "/" + std::to_string(cfg.steps) + "  loss " + fmt("%.4f", loss_v) +
                    "  lr " + fmt("%.3g", lr) + "  gnorm " + fmt("%.3f", gnorm) + "  " + fmt("%.0f", tps) + " tok/s" +
                    (ddp ? " (" + fmt("%.0f", tps / world) + "/rank x " + std::to_string(world) + ")" : std::string()),
                echo);
        }
        const bool last = step == cfg.steps;
        if ((cfg.eval_every > 0 && step % cfg.eval_every == 0) || last) {
            res.val_loss = validate();
            res.val_ppl = std::exp(res.val_loss);
            append_metrics({{"type", "val"},
                            {"step", step},
                            {"tokens", step * tokens_per_step},
                            {"val_loss", res.val_loss},
                            {"val_ppl", res.val_ppl},
                            {"time", now_s()}});
            log("step " + std::to_string(step) + "  val_loss " + fmt("%.4f", res.val_loss) + "  val_ppl " +
                    fmt("%.2f", res.val_ppl),
                echo);
        }
        bool stop = stop_request().load() != 0 || (opt.hooks.stop_after_steps >= 0 && steps_here >= opt.hooks.stop_after_steps);
        if (ddp) stop = sum_ranks({stop ? 1.0 : 0.0})[0] > 0;  // a signal to any rank stops all at this step
        if ((cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0) || last || stop) save_checkpoint(step);
        if (!last && stop) {
            const int sig = stop_request().load();
            return finish("stopped", std::string(sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "stop requested") +
                                         ": stopped at step " + std::to_string(step) + " with a checkpoint");
        }
        write_status("running", step);
    }
    return finish("finished", "finished " + std::to_string(step) + " steps, val_loss " + fmt("%.4f", res.val_loss) +
                                  ", val_ppl " + fmt("%.2f", res.val_ppl));
}

}  // namespace bimamba
