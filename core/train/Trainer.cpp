#include "core/train/Trainer.h"

#include <ATen/DeviceAccelerator.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/base/FileUtil.h"
#include "core/base/Nvml.h"
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
#include "core/train/HeadLoss.h"
#include "core/base/RunDir.h"
#include "core/train/TeacherCache.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace bimamba::train {

using base::LossType;
using base::Mamba2Config;
using base::RunDir;
using base::TrainConfig;
using base::fsync_dir;
using base::loss_needs_teacher;
using base::read_file;
using base::rss_mib;
using base::write_file_atomic;
using base::GpuReading;
using base::NvmlDevice;
using base::latest_checkpoint;
using base::rss_kib;
using base::remove_tree;
using data::TokenDataset;
using model::AutocastScope;
using model::Mamba2LM;
using model::Teacher;
using model::load_tensors;
using model::load_tensors_any;
using model::save_model;
using model::save_tensors;

std::atomic<int>& stop_request() {
    static std::atomic<int> flag{0};
    return flag;
}

namespace {

void on_signal(int sig) {
    stop_request().store(sig);
}

// Installs SIGINT/SIGTERM handlers for the lifetime of the object.
struct SignalScope {
    bool active;
    struct sigaction old_int {
    }, old_term{};
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
    std::seed_seq seq{static_cast<uint32_t>(seed),       static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(step),
                      static_cast<uint32_t>(step >> 32), static_cast<uint32_t>(micro),      0x5eedu};
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
        throw std::runtime_error("device '" + cfg.device +
                                 "' names one GPU, but in data-parallel training rank r uses "
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

// This rank's part of one micro-batch, on the device.
struct Batch {
    torch::Tensor inputs, targets;       // int64 (b, L)
    std::vector<int64_t> cache_windows;  // with a teacher cache: the windows whose top-k logits to read
};

// One call to train() in this process: the config every rank agreed on, the
// device, data, model, teacher, optimizer, the run directory (rank 0 only) and
// the progress a checkpoint saves. The methods are the phases of train(),
// declared in the order train() calls them.
struct TrainingRun {
    TrainingRun(const TrainConfig& cfg, const std::string& run_dir, const TrainOptions& opt);

    // Setup. In a data-parallel run every rank passes each phase or all of them fail together.
    void rendezvous();                // data parallel: the checks each rank can make alone, then the store
    void agree_on_config();           // rank 0's config (the run dir's when resuming), the same on every rank
    void enter_deterministic_mode();  // before any CUDA work of this run; restored when the run ends
    void load_data_and_model();       // device, data, model, teacher or teacher cache; the process group
    void create_optimizer();          // run directory (rank 0), AdamW, learning-rate schedule
    void resume_from_checkpoint();    // weights, AdamW moments, CPU RNG, step and clock of `latest`
    void share_rank0_state();         // data parallel: rank 0's weights (and moments) on every rank
    void announce();                  // the first train.log lines and status 'running'
    void start_clock();

    // One optimizer step. The ones that return a string return "" or why the run fails.
    void begin_step();                  // step clock, learning rate, cleared gradients
    std::string forward_backward();     // loss and gradients of every micro-batch
    std::string reduce_across_ranks();  // data parallel: gradients averaged (buckets) and losses summed
    std::string clip_gradients();       // global gradient norm, gradients scaled down to grad_clip
    void update();                      // AdamW at the step's learning rate: the step is done
    bool due(int64_t every) const;      // the step just done is a multiple of `every` (> 0)
    void log_step();                    // metrics.jsonl row (with system_telemetry()) and train.log line
    void validate();                    // validation loss: metrics.jsonl row and train.log line
    bool stop_requested();              // SIGINT/SIGTERM or hooks.stop_after_steps, on any rank
    void save_checkpoint();             // of the step just done, atomically (rank 0 writes)
    void write_status(const std::string& state, const std::string& msg = "");
    std::string stop_message() const;
    std::string finished_message() const;
    TrainResult finish(const std::string& state, const std::string& msg);  // status, result, ranks' last barrier

    // Parts of the phases.
    template <class Phase>
    void on_every_rank(const char* name, Phase&& phase);
    void open_data();
    void write_train_config() const;
    void build_model();
    void load_teacher();
    void open_teacher_cache();
    Batch train_batch(int64_t micro) const;
    torch::Tensor forward_loss(const Batch& batch);
    double validation_loss();
    std::vector<double> sum_ranks(std::vector<double> v);
    void log(const std::string& msg, bool to_stderr);
    void append_metrics(const json& row);
    json system_telemetry() const;  // host RSS; on CUDA the GPU's utilisation, memory and power
    double now_s() const;
    std::string last_good() const;
    void at(const char* point) const {
        if (opt.hooks.at_point) opt.hooks.at_point(point);
    }

    // Fixed for the run.
    const TrainOptions& opt;
    const std::string run_dir;
    const DistEnv& denv;
    const bool ddp, main_rank;  // main_rank: the one that reads and writes run_dir
    const int world;
    const bool echo;
    TrainConfig cfg;
    std::unique_ptr<Distributed> dist;  // data parallel only
    std::unique_ptr<DeterminismScope> determinism;
    torch::Device device{torch::kCPU};
    bool bf16 = false;
    uint64_t window_tokens = 0;  // seq_len + 1
    LossType loss_type = LossType::CE;
    std::shared_ptr<TokenDataset> train_ds, val_ds;
    Mamba2Config mcfg;
    Mamba2LM model{nullptr};
    std::unique_ptr<Teacher> teacher;
    std::shared_ptr<TeacherCache> cache;
    std::unique_ptr<RunDir> rd;     // rank 0 only
    std::string resume_checkpoint;  // rank 0, resuming: the checkpoint `latest` names ("" if none yet)
    std::unique_ptr<AdamW> adam;
    LrSchedule sched;
    int64_t accum = 1, tokens_per_step = 0, local_batch = 0;  // local_batch: this rank's share of each micro-batch
    std::unique_ptr<GradReducer> reducer;                     // data parallel only
    std::unique_ptr<NvmlDevice> gpu;                          // CUDA only: NVML's view of this rank's GPU

    // Progress.
    TrainResult res;
    int64_t step = 0;           // optimizer steps done
    int64_t steps_here = 0;     // ... by this process
    int64_t saved_step = -1;    // the step of the last checkpoint written (or resumed from)
    double elapsed_before = 0;  // training seconds before this process (a resumed run's clock)
    std::chrono::steady_clock::time_point t0;

    // The step in progress.
    struct {
        std::chrono::steady_clock::time_point start;
        double lr = 0, loss_sum = 0, nonfinite = 0, loss = 0, grad_norm = 0, seconds = 0;
    } cur;
};

}  // namespace

// The training run top to bottom, as llm.c's train_gpt2.c main loop.
TrainResult train(const TrainConfig& cfg, const std::string& run_dir, const TrainOptions& opt) {
    TrainingRun run(cfg, run_dir, opt);
    run.rendezvous();
    run.agree_on_config();
    run.enter_deterministic_mode();
    run.load_data_and_model();
    run.create_optimizer();
    if (opt.resume) run.resume_from_checkpoint();
    run.share_rank0_state();
    run.announce();

    SignalScope signals(opt.handle_signals);
    run.start_clock();
    const int64_t steps = run.cfg.steps;
    while (run.step < steps) {
        run.begin_step();
        std::string failure = run.forward_backward();
        if (failure.empty()) failure = run.reduce_across_ranks();
        if (failure.empty()) failure = run.clip_gradients();
        if (!failure.empty()) return run.finish("failed", failure);
        run.update();

        const bool last = run.step == steps;
        bool stop = false;
        try {  // a write to the run directory that fails (a full disk) stops the run
            if (run.due(run.cfg.log_every) || last) run.log_step();
            if (run.due(run.cfg.eval_every) || last) run.validate();
            stop = run.stop_requested();
            if (run.due(run.cfg.checkpoint_every) || last || stop) run.save_checkpoint();
            if (!stop || last) run.write_status("running");
        } catch (const std::exception& e) {
            const std::string why = std::string(e.what()) + "; stopped at step " + std::to_string(run.step) +
                                    "; the last good checkpoint is " + run.last_good();
            // Data parallel: the other ranks are in the next step's collectives;
            // this rank leaves (its process exits, theirs fail on the lost peer).
            if (run.ddp) throw std::runtime_error(why);
            return run.finish("failed", why);
        }
        if (stop && !last) return run.finish("stopped", run.stop_message());
    }
    return run.finish("finished", run.finished_message());
}

namespace {

TrainingRun::TrainingRun(const TrainConfig& cfg_in, const std::string& dir, const TrainOptions& o)
    : opt(o),
      run_dir(dir),
      denv(o.dist),
      ddp(o.dist.distributed()),
      main_rank(o.dist.rank == 0),
      world(o.dist.world_size),
      echo(o.echo && o.dist.rank == 0),
      cfg(cfg_in) {}

// Runs one setup phase. In one process its error propagates; in a data-parallel
// run every rank reports to the others and all throw together if any failed
// (one rank leaving alone would hang the others in a collective).
template <class Phase>
void TrainingRun::on_every_rank(const char* name, Phase&& phase) {
    std::string err;
    try {
        phase();
    } catch (const std::exception& e) {
        if (!ddp) throw;
        err = e.what();
    }
    if (ddp) dist->agree(name, err);
}

void TrainingRun::rendezvous() {
    if (!ddp) return;
    if (!opt.resume) {
        // Fail before the rendezvous: every rank runs the same checks on the same config.
        cfg.validate();
        check_batch_split(cfg, denv);
        resolve_device(cfg, denv);
    }
    dist = std::make_unique<Distributed>(denv);
}

void TrainingRun::agree_on_config() {
    on_every_rank("config", [&] {
        if (!main_rank) return;
        if (opt.resume) {
            const std::string p = run_dir + "/train_config.json";
            if (!fs::exists(p)) throw std::runtime_error("cannot resume: '" + run_dir + "' has no train_config.json");
            cfg = TrainConfig::from_json(json::parse(read_file(p)));
            resume_checkpoint = latest_checkpoint(run_dir);
        } else {
            cfg.validate();
            if (fs::exists(run_dir + "/checkpoints/latest"))
                throw std::runtime_error("run directory '" + run_dir +
                                         "' already holds a run with checkpoints: use --resume or another --run-dir");
        }
    });
    if (!ddp) return;
    const std::string shared = dist->share_string("config", cfg.to_json().dump());
    on_every_rank("config-match", [&] {
        if (main_rank) return;
        TrainConfig c0 = TrainConfig::from_json(json::parse(shared));
        if (!opt.resume && c0.to_json() != cfg.to_json())
            throw std::runtime_error(
                "rank " + std::to_string(denv.rank) +
                "'s training config differs from rank 0's: start every rank with the same --config");
        cfg = c0;
    });
}

// cuBLAS reads its workspace config when its first handle is made.
void TrainingRun::enter_deterministic_mode() {
    on_every_rank("deterministic", [&] { determinism = std::make_unique<DeterminismScope>(cfg.deterministic); });
}

// In a data-parallel run the ranks agree that all of them got through before any collective.
void TrainingRun::load_data_and_model() {
    window_tokens = static_cast<uint64_t>(cfg.seq_len) + 1;
    loss_type = cfg.loss_type();
    on_every_rank("setup", [&] {
        if (ddp) check_batch_split(cfg, denv);
        device = resolve_device(cfg, denv);
        if (cfg.precision == "bf16" && !device.is_cuda())
            throw std::runtime_error(
                "precision bf16 is for CUDA; on CPU training runs in float32 (set precision to auto)");
        if (cfg.threads > 0) torch::set_num_threads(static_cast<int>(cfg.threads));
        if (device.is_cuda()) c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device);
        open_data();
        mcfg = cfg.resolve_model(train_ds->vocab_size());
        if (!opt.resume && main_rank) write_train_config();
        build_model();
        // Any causal LM folder with the student's vocabulary (Teacher.h): a Mamba-2
        // trained here, an imported Mamba-2 or a LLaMA-family model.
        if (loss_needs_teacher(loss_type) && !cfg.teacher.empty()) load_teacher();
        if (!cfg.teacher_cache.empty()) open_teacher_cache();
    });
    if (ddp) dist->init_process_group(device);
    bf16 = device.is_cuda() && cfg.precision != "float32";
    if (device.is_cuda()) gpu = std::make_unique<NvmlDevice>(NvmlDevice::for_cuda_device(device.index()));
}

void TrainingRun::open_data() {
    train_ds = TokenDataset::open(cfg.data, "train");
    val_ds = TokenDataset::open(cfg.data, "val");
    if (train_ds->num_tokens() < window_tokens)
        throw std::runtime_error("the train split of '" + cfg.data + "' has " + std::to_string(train_ds->num_tokens()) +
                                 " tokens, fewer than seq_len+1 = " + std::to_string(window_tokens));
    if (val_ds->num_tokens() < window_tokens)
        throw std::runtime_error("the val split of '" + cfg.data + "' has " + std::to_string(val_ds->num_tokens()) +
                                 " tokens, fewer than seq_len+1 = " + std::to_string(window_tokens) +
                                 " (raise --val-fraction in prepare or lower seq_len)");
}

// The config as run, with `model` resolved to the full model config.
void TrainingRun::write_train_config() const {
    fs::create_directories(run_dir);
    json stored = cfg.to_json();
    stored["model"] = mcfg.to_json();
    write_file_atomic(run_dir + "/train_config.json", stored.dump(2) + "\n");
}

// Seeded, with optional initial weights. Data-parallel ranks then take rank
// 0's weights (share_rank0_state).
void TrainingRun::build_model() {
    torch::manual_seed(cfg.seed);
    model = Mamba2LM(mcfg);
    // A run resumed before its first checkpoint starts over from init_from too.
    if (!cfg.init_from.empty() && resume_checkpoint.empty() && main_rank)
        model->load_tensors(load_tensors_any(cfg.init_from), true);
    model->to(device);
    model->train();
    model->set_deterministic(cfg.deterministic);
}

void TrainingRun::load_teacher() {
    // Fail before loading (or training) when the teacher cannot fit beside
    // the student, whose weights are already on the device; its gradients
    // and AdamW moments (12 bytes a parameter) are still to come.
    int64_t student_params = 0;
    for (const auto& p : model->parameters()) student_params += p.numel();
    Teacher::check_fits(cfg.teacher, device, 12ull * static_cast<uint64_t>(student_params));
    teacher = Teacher::load(cfg.teacher, device);
    teacher->match_vocab(mcfg.vocab_size, cfg.teacher_vocab_slice);
}

void TrainingRun::open_teacher_cache() {
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
                                 std::to_string(cache->num_windows()) + " windows, which do not fit the train split (" +
                                 std::to_string(train_ds->num_tokens()) + " tokens): was it built on this corpus?");
}

void TrainingRun::create_optimizer() {
    if (main_rank) {
        rd = std::make_unique<RunDir>(run_dir);
        rd->set_fault_point(opt.hooks.at_point);
        // Rows of an attempt killed before its first checkpoint (a fresh run is
        // refused where there is one) are not part of this run's history.
        if (!opt.resume) rd->truncate_metrics(0);
    }
    adam = std::make_unique<AdamW>(*model, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay);
    sched = LrSchedule{cfg.lr, cfg.final_lr, cfg.warmup_steps, cfg.steps};
    accum = cfg.effective_grad_accum();
    tokens_per_step = cfg.tokens_per_optimizer_step();
    local_batch = cfg.batch_size / world;
    res.val_loss = res.val_ppl = std::nan("");
}

void TrainingRun::resume_from_checkpoint() {
    on_every_rank("resume", [&] {
        if (!main_rank) return;
        const std::string ck = resume_checkpoint;
        if (ck.empty()) {  // killed or failed before its first checkpoint
            rd->truncate_metrics(0);
            log("no checkpoint yet: starting over from step 0", echo);
            return;
        }
        json st = json::parse(read_file(ck + "/trainer_state.json"));
        step = st.at("step").get<int64_t>();
        elapsed_before = st.value("time", 0.0);
        auto mt = load_tensors(ck + "/model.safetensors");
        model->load_tensors(mt, true);
        auto ot = load_tensors(ck + "/optimizer.safetensors");
        adam->load(ot, st.at("adam_steps").get<int64_t>());
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
    });
    if (ddp) {
        // Rank 0's step, AdamW count and clock (its moments are broadcast with the weights).
        auto s = torch::tensor({static_cast<double>(step), static_cast<double>(adam->t), elapsed_before},
                               torch::TensorOptions().dtype(torch::kFloat64).device(device));
        dist->broadcast({s}, 0);
        s = s.cpu();
        step = static_cast<int64_t>(s[0].item<double>());
        adam->t = static_cast<int64_t>(s[1].item<double>());
        elapsed_before = s[2].item<double>();
    }
    saved_step = step;
}

// Every rank starts from rank 0's weights (fresh, init_from or checkpoint)
// and, on resume, its AdamW moments; gradients are then averaged during backward.
void TrainingRun::share_rank0_state() {
    if (!ddp) return;
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> ts;
    for (auto& p : model->parameters()) ts.push_back(p);
    for (auto& b : model->buffers()) ts.push_back(b);
    if (opt.resume)
        for (auto& s : adam->slots) {
            ts.push_back(s.m);
            ts.push_back(s.v);
        }
    dist->broadcast(ts, 0);
    reducer = std::make_unique<GradReducer>(*dist, model->parameters(), denv.bucket_mb);
}

void TrainingRun::announce() {
    if (step == 0) {
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
    write_status("running");
}

void TrainingRun::start_clock() {
    t0 = std::chrono::steady_clock::now();
}

void TrainingRun::begin_step() {
    cur = {};
    cur.start = std::chrono::steady_clock::now();
    cur.lr = sched.at(step);
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
}

std::string TrainingRun::forward_backward() {
    for (int64_t micro = 0; micro < accum; ++micro) {
        const Batch batch = train_batch(micro);
        torch::Tensor loss = forward_loss(batch);
        if (opt.hooks.after_loss) opt.hooks.after_loss(step + 1, loss);
        const double lv = loss.item<double>();
        if (!std::isfinite(lv)) {
            if (!ddp)
                return "loss is " + std::string(std::isnan(lv) ? "NaN" : "Inf") + " at step " +
                       std::to_string(step + 1) + "; stopped without saving; the last good checkpoint is " +
                       last_good();
            // Data parallel: the ranks decide together after backward (one
            // rank leaving alone would hang the others in a collective).
            cur.nonfinite += 1;
        }
        cur.loss_sum += lv;
        if (reducer) reducer->prepare(micro == accum - 1);
        (loss / static_cast<double>(accum)).backward();
    }
    return "";
}

// Window offsets are a pure function of (seed, step, micro-batch): a resumed
// run reads exactly the batches the uninterrupted run would have read.
Batch TrainingRun::train_batch(int64_t micro) const {
    auto draws = batch_draws(cfg.seed, step, micro, cfg.batch_size);
    if (ddp)  // this rank's contiguous slice of the global micro-batch
        draws = std::vector<uint64_t>(draws.begin() + denv.rank * local_batch,
                                      draws.begin() + (denv.rank + 1) * local_batch);
    Batch batch;
    const uint64_t span = train_ds->num_tokens() - window_tokens + 1;
    for (auto& d : draws) {
        if (cache) {
            batch.cache_windows.push_back(static_cast<int64_t>(d % static_cast<uint64_t>(cache->num_windows())));
            d = static_cast<uint64_t>(batch.cache_windows.back()) * cfg.seq_len;
        } else {
            d %= span;
        }
    }
    auto [x, y] = make_batch(*train_ds, draws, cfg.seq_len);
    batch.inputs = x.to(device);
    batch.targets = y.to(device);
    return batch;
}

// The configured loss of the student on one micro-batch (bf16 autocast on CUDA).
// The head and the loss run chunk by chunk (core/train/HeadLoss.h): the
// student's logits are never held whole. A top-k logits cache needs them.
torch::Tensor TrainingRun::forward_loss(const Batch& batch) {
    AutocastScope ac(bf16);
    const torch::Tensor& x = batch.inputs;
    const torch::Tensor& y = batch.targets;
    if (cache) {
        auto logits = model->forward(x);
        auto [vals, ids] = cache->windows(batch.cache_windows);
        auto kd = loss_soft_ce_topk(logits, vals.to(device), ids.to(device));
        return loss_type == LossType::Mix ? cfg.ce_weight * loss_ce(logits, y) + (1.0 - cfg.ce_weight) * kd : kd;
    }
    HeadLossTargets targets;
    targets.type = loss_type;
    targets.targets = y;
    targets.ce_weight = cfg.ce_weight;
    if (teacher) {
        torch::NoGradGuard ng;
        targets.teacher_logits = teacher->logits(x);
    }
    return head_loss(model->hidden_states(x), model->head_weight(), targets);
}

std::string TrainingRun::reduce_across_ranks() {
    if (reducer) {
        reducer->finish();
        auto s = sum_ranks({std::isfinite(cur.loss_sum) ? cur.loss_sum : 0.0, cur.nonfinite});
        if (s[1] > 0)
            return "loss is not finite at step " + std::to_string(step + 1) + " on " +
                   std::to_string(static_cast<int>(s[1])) +
                   " micro-batch(es) of the ranks; stopped without saving; the last good checkpoint is " + last_good();
        cur.loss_sum = s[0] / world;
    }
    cur.loss = cur.loss_sum / accum;
    return "";
}

// Global gradient norm, then clipping (gradients are identical on every rank).
std::string TrainingRun::clip_gradients() {
    std::vector<torch::Tensor> sqs;
    for (auto& p : model->parameters())
        if (p.grad().defined()) sqs.push_back(p.grad().to(torch::kFloat64).pow(2).sum());
    cur.grad_norm = sqs.empty() ? 0.0 : std::sqrt(torch::stack(sqs).sum().item<double>());
    if (!std::isfinite(cur.grad_norm))
        return "gradient norm is not finite at step " + std::to_string(step + 1) +
               "; stopped without saving; the last good checkpoint is " + last_good();
    if (cfg.grad_clip > 0 && cur.grad_norm > cfg.grad_clip) {
        torch::NoGradGuard ng;
        const double scale = cfg.grad_clip / (cur.grad_norm + 1e-6);
        for (auto& p : model->parameters())
            if (p.grad().defined()) p.grad().mul_(scale);
    }
    return "";
}

void TrainingRun::update() {
    adam->step(cur.lr);
    ++step;
    ++steps_here;
    res.losses.push_back(cur.loss);
    cur.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - cur.start).count();
}

bool TrainingRun::due(int64_t every) const {
    return every > 0 && step % every == 0;
}

void TrainingRun::log_step() {
    const double tps = cur.seconds > 0 ? tokens_per_step / cur.seconds : 0.0;
    json row = {{"type", "train"},  {"step", step},   {"tokens", step * tokens_per_step},
                {"loss", cur.loss}, {"lr", cur.lr},   {"grad_norm", cur.grad_norm},
                {"tok_per_s", tps}, {"time", now_s()}};
    row.update(system_telemetry());
    if (ddp) {
        row["world_size"] = world;
        row["tok_per_s_rank"] = tps / world;
    }
    append_metrics(row);
    // Always in train.log; on stderr only with echo (the quickstart draws progress bars instead).
    log("step " + std::to_string(step) + "/" + std::to_string(cfg.steps) + "  loss " + fmt("%.4f", cur.loss) + "  lr " +
            fmt("%.3g", cur.lr) + "  gnorm " + fmt("%.3f", cur.grad_norm) + "  " + fmt("%.0f", tps) + " tok/s" +
            (ddp ? " (" + fmt("%.0f", tps / world) + "/rank x " + std::to_string(world) + ")" : std::string()),
        echo);
}

void TrainingRun::validate() {
    res.val_loss = validation_loss();
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

// Fixed, evenly spaced windows of the val split, plain CE. Each rank takes its
// slice of every batch; the batch means are averaged over ranks.
double TrainingRun::validation_loss() {
    torch::NoGradGuard ng;
    model->eval();
    const int64_t n = cfg.eval_batches * cfg.batch_size;
    const uint64_t span = val_ds->num_tokens() - window_tokens;
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
}

bool TrainingRun::stop_requested() {
    bool stop =
        stop_request().load() != 0 || (opt.hooks.stop_after_steps >= 0 && steps_here >= opt.hooks.stop_after_steps);
    if (ddp) stop = sum_ranks({stop ? 1.0 : 0.0})[0] > 0;  // a signal to any rank stops all at this step
    return stop;
}

void TrainingRun::save_checkpoint() {
    const int64_t at_step = step;
    if (at_step == saved_step) return;  // already saved at this step
    saved_step = at_step;
    if (!rd) return;  // rank 0 writes checkpoints
    const std::string final_dir = rd->checkpoint_path(at_step);
    const std::string tmp = final_dir + ".tmp";
    bimamba::base::remove_tree(tmp);
    // A folder of this step that `latest` does not name (a writer killed
    // between rename and publish, then resumed from earlier) is replaced.
    bimamba::base::remove_tree(final_dir);
    try {
        fs::create_directories(tmp);
        at("checkpoint.tmp_dir");
        save_model(model, tmp);
        at("checkpoint.model");
        if (opt.hooks.during_checkpoint) opt.hooks.during_checkpoint(at_step);
        auto ot = adam->state();
        {
            auto gen = at::detail::getDefaultCPUGenerator();
            std::lock_guard<std::mutex> lock(gen.mutex());
            ot["rng.cpu"] = gen.get_state();
        }
        save_tensors(tmp + "/optimizer.safetensors", ot);
        at("checkpoint.optimizer");
        json st = {{"step", at_step},
                   {"tokens", at_step * tokens_per_step},
                   {"adam_steps", adam->t},
                   {"time", now_s()},
                   {"lr", sched.at(std::max<int64_t>(at_step - 1, 0))},
                   {"seed", cfg.seed},
                   {"data_position", {{"kind", "seeded-random-windows"}, {"next_step", at_step}}},
                   {"val_loss", std::isnan(res.val_loss) ? json(nullptr) : json(res.val_loss)}};
        if (ddp) st["world_size"] = world;
        write_file_atomic(tmp + "/trainer_state.json", st.dump(2) + "\n");
        at("checkpoint.state");
        fsync_dir(tmp);
    } catch (const std::exception&) {
        bimamba::base::remove_tree(tmp);  // the space it took (a full disk) is given back for status.json
        throw;
    }
    fs::rename(tmp, final_dir);
    at("checkpoint.renamed");
    rd->publish_checkpoint(final_dir, cfg.keep_checkpoints);
    res.last_checkpoint = final_dir;
}

void TrainingRun::write_status(const std::string& state, const std::string& msg) {
    if (rd) rd->write_status(state, step, cfg.steps, msg);
}

std::string TrainingRun::stop_message() const {
    const int sig = stop_request().load();
    return std::string(sig == SIGINT    ? "SIGINT"
                       : sig == SIGTERM ? "SIGTERM"
                                        : "stop requested") +
           ": stopped at step " + std::to_string(step) + " with a checkpoint";
}

std::string TrainingRun::finished_message() const {
    return "finished " + std::to_string(step) + " steps, val_loss " + fmt("%.4f", res.val_loss) + ", val_ppl " +
           fmt("%.2f", res.val_ppl);
}

TrainResult TrainingRun::finish(const std::string& state, const std::string& msg) {
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
    try {
        write_status(state, msg);
    } catch (const std::exception& e) {  // a full disk: the message still reaches train.log / stderr
        log("cannot record the state '" + state + "' in status.json: " + e.what(), true);
    }
    log(state + ": " + msg, echo);
    // No rank reports before rank 0's last checkpoint and status are written.
    if (dist) {
        dist->barrier();
        dist->shutdown();
    }
    return res;
}

// Sum over ranks of a few doubles (identity in a single process).
std::vector<double> TrainingRun::sum_ranks(std::vector<double> v) {
    if (!ddp) return v;
    auto t = torch::tensor(v, torch::TensorOptions().dtype(torch::kFloat64)).to(device);
    dist->allreduce_sum(t);
    t = t.cpu();
    for (size_t i = 0; i < v.size(); ++i) v[i] = t[static_cast<int64_t>(i)].item<double>();
    return v;
}

// Only rank 0 owns the run directory.
void TrainingRun::log(const std::string& msg, bool to_stderr) {
    if (rd) rd->log(msg, to_stderr);
}

void TrainingRun::append_metrics(const json& row) {
    if (rd) rd->append_metrics(row);
    if (rd && opt.on_metrics) opt.on_metrics(row);
}

// Training seconds of the run, a resumed run's earlier processes included.
// The keys of docs/run-directory.md ("System telemetry"); a GPU figure that
// cannot be read (no NVML: no driver library) is left out, not written as 0.
json TrainingRun::system_telemetry() const {
    json t = {{"rss_mb", rss_mib()}};
    if (!device.is_cuda()) return t;
    const auto stats = at::getDeviceAllocator(c10::kCUDA)->getDeviceStats(device.index());
    const auto all = size_t(c10::CachingAllocator::StatType::AGGREGATE);
    t["gpu_mem_used_mb"] = double(stats.allocated_bytes[all].current) / 1048576.0;
    t["gpu_mem_reserved_mb"] = double(stats.reserved_bytes[all].current) / 1048576.0;
    const GpuReading g = gpu ? gpu->read() : GpuReading{};
    if (g.util_percent >= 0) t["gpu_util"] = g.util_percent;
    if (g.power_w >= 0) t["gpu_power_w"] = g.power_w;
    if (g.mem_used_mb >= 0) t["gpu_mem_device_mb"] = g.mem_used_mb;
    return t;
}

double TrainingRun::now_s() const {
    return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string TrainingRun::last_good() const {
    return res.last_checkpoint.empty() ? std::string("(none)") : res.last_checkpoint;
}

}  // namespace

}  // namespace bimamba::train
