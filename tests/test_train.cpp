// Training end to end on Tiny Shakespeare with the "tiny" preset: the loss
// falls; a stopped-and-resumed run reproduces the uninterrupted run bit for
// bit; NaN stops the run keeping the last good checkpoint; distillation from
// a trained teacher trains a binarized student; `bimamba train` killed with
// SIGKILL inside a checkpoint write resumes from the previous checkpoint;
// SIGTERM stops with a checkpoint; deterministic mode trains on the CPU with
// the same bits.
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <numeric>
#include <random>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/base/FileUtil.h"
#include "tests/TestUtil.h"
#include "core/data/Prepare.h"
#include "core/model/Checkpoint.h"
#include "core/data/TokenDataset.h"
#include "core/train/TeacherCache.h"
#include "core/train/Trainer.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
using namespace bimamba::model;
using namespace bimamba::train;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string g_root, g_data;

class TrainTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        g_root = test::fresh_dir("train");
        g_data = test::prepare_shakespeare(g_root, 300000, 512);
    }
    static void TearDownTestSuite() { bimamba::base::remove_tree(g_root); }

    static TrainConfig config(int64_t steps) {
        TrainConfig c;
        c.data = g_data;
        c.model = "tiny";
        c.steps = steps;
        c.seq_len = 64;
        c.batch_size = 4;
        c.lr = 3e-3;
        c.final_lr = 3e-4;
        c.warmup_steps = 5;
        c.eval_every = 0;
        c.eval_batches = 4;
        c.checkpoint_every = 0;
        c.threads = 1;
        c.seed = 1234;
        return c;
    }
    static TrainOptions quiet() {
        TrainOptions o;
        o.echo = false;
        o.handle_signals = false;
        return o;
    }
    static std::string dir(const std::string& name) { return g_root + "/" + name; }
    static json status(const std::string& run) { return json::parse(read_file(run + "/status.json")); }
    static std::string latest(const std::string& run) {
        std::string s = read_file(run + "/checkpoints/latest");
        while (!s.empty() && s.back() == '\n') s.pop_back();
        return s;
    }
    static std::vector<json> metrics(const std::string& run, const std::string& type) {
        std::vector<json> out;
        std::ifstream f(run + "/metrics.jsonl");
        std::string line;
        while (std::getline(f, line)) {
            auto j = json::parse(line);
            if (j["type"] == type) out.push_back(j);
        }
        return out;
    }
};

double mean(const std::vector<double>& v, size_t a, size_t b) {
    double s = 0;
    for (size_t i = a; i < b; ++i) s += v[i];
    return s / (b - a);
}

}  // namespace

// A "Key:   N kB" line of /proc/self/status, read here independently of
// core/base/Process.h's reader; -1 when absent.
static long proc_status_kib(const std::string& key) {
    std::ifstream in("/proc/self/status");
    std::string name;
    long value;
    while (in >> name) {
        if (name == key + ":" && in >> value) return value;
        in.ignore(1 << 20, '\n');
    }
    return -1;
}

TEST_F(TrainTest, LossFallsAndRunDirectoryIsComplete) {
    auto c = config(80);
    c.eval_every = 40;
    c.checkpoint_every = 40;
    const std::string run = dir("teacher");
    auto r = train::train(c, run, quiet());
    ASSERT_EQ(r.state, "finished") << r.message;
    ASSERT_EQ(r.losses.size(), 80u);
    const double first = mean(r.losses, 0, 5), last = mean(r.losses, 75, 80);
    // Untrained: about ln(512) = 6.24 nats. Tiny model, 80 steps of 256 tokens.
    EXPECT_NEAR(first, std::log(512.0), 0.5);
    EXPECT_LT(last, first - 1.5) << "first " << first << " last " << last;
    EXPECT_LT(r.val_loss, std::log(512.0) - 1.0);
    EXPECT_NEAR(r.val_ppl, std::exp(r.val_loss), 1e-9);

    // Run directory per docs/run-directory.md.
    auto st = status(run);
    EXPECT_EQ(st["state"], "finished");
    EXPECT_EQ(st["step"], 80);
    EXPECT_EQ(st["total_steps"], 80);
    EXPECT_TRUE(st["ended"].is_string());
    auto cfg = json::parse(read_file(run + "/train_config.json"));
    EXPECT_EQ(cfg["model"]["d_model"], 64);
    EXPECT_EQ(cfg["model"]["vocab_size"], 512);
    auto tm = metrics(run, "train");
    ASSERT_EQ(tm.size(), 80u);
    for (const char* k : {"step", "tokens", "loss", "lr", "grad_norm", "tok_per_s", "rss_mb", "time"})
        EXPECT_TRUE(tm[10].contains(k)) << k;
    // System telemetry: host RSS of this process (the trainer ran in it), so
    // between a floor (LibTorch alone is tens of MiB) and the peak the kernel
    // saw, read here from /proc/self/status's VmHWM (which the kernel updates
    // lazily: 2 % slack). Device "auto": on a machine with a GPU the run is on
    // CUDA and carries the allocator's keys; on the CPU no GPU key at all.
    const double hwm_mb = std::max(proc_status_kib("VmHWM"), proc_status_kib("VmRSS")) / 1024.0 * 1.02;
    ASSERT_GT(hwm_mb, 0);
    for (const auto& row : tm) {
        ASSERT_TRUE(row["rss_mb"].is_number()) << row.dump();
        EXPECT_GT(row["rss_mb"].get<double>(), 20.0) << row.dump();
        EXPECT_LE(row["rss_mb"].get<double>(), hwm_mb) << row.dump();
        if (torch::cuda::is_available()) {
            for (const char* k : {"gpu_mem_used_mb", "gpu_mem_reserved_mb"}) {
                ASSERT_TRUE(row[k].is_number()) << k << " " << row.dump();
                EXPECT_GT(row[k].get<double>(), 0.0) << k;
            }
        } else {
            for (const char* k :
                 {"gpu_util", "gpu_power_w", "gpu_mem_used_mb", "gpu_mem_reserved_mb", "gpu_mem_device_mb"})
                EXPECT_FALSE(row.contains(k)) << k;
        }
    }
    EXPECT_EQ(tm[9]["step"], 10);
    EXPECT_EQ(tm[9]["tokens"], 10 * 256);
    EXPECT_DOUBLE_EQ(tm[9]["loss"].get<double>(), r.losses[9]);
    auto vm = metrics(run, "val");
    ASSERT_EQ(vm.size(), 2u);
    EXPECT_EQ(vm[1]["step"], 80);
    EXPECT_DOUBLE_EQ(vm[1]["val_loss"].get<double>(), r.val_loss);
    EXPECT_EQ(latest(run), "step_00000080");
    for (const char* f : {"model.safetensors", "config.json", "optimizer.safetensors", "trainer_state.json"})
        EXPECT_TRUE(fs::exists(run + "/checkpoints/step_00000080/" + f)) << f;
    EXPECT_TRUE(fs::exists(run + "/checkpoints/step_00000040"));
    EXPECT_TRUE(fs::exists(run + "/train.log"));
    // The checkpoint loads as a model and reproduces the validation loss's scale.
    auto m = load_model(run + "/checkpoints/step_00000080");
    EXPECT_EQ(m->config().vocab_size, 512);
    // A second fresh run into the same folder is refused.
    EXPECT_THROW(train::train(c, run, quiet()), std::runtime_error);
}

TEST_F(TrainTest, ResumeIsBitExact) {
    auto c = config(12);
    c.grad_accum = 2;
    c.checkpoint_every = 4;
    c.keep_checkpoints = 2;
    auto full = train::train(c, dir("full"), quiet());
    ASSERT_EQ(full.state, "finished");

    auto o = quiet();
    o.hooks.stop_after_steps = 6;
    auto part1 = train::train(c, dir("split"), o);
    ASSERT_EQ(part1.state, "stopped");
    EXPECT_EQ(part1.step, 6);
    EXPECT_EQ(status(dir("split"))["state"], "stopped");
    EXPECT_EQ(latest(dir("split")), "step_00000006");
    auto o2 = quiet();
    o2.resume = true;
    auto part2 = train::train(TrainConfig{}, dir("split"), o2);
    ASSERT_EQ(part2.state, "finished") << part2.message;
    EXPECT_EQ(part2.start_step, 6);
    std::vector<double> joined = part1.losses;
    joined.insert(joined.end(), part2.losses.begin(), part2.losses.end());
    ASSERT_EQ(joined.size(), full.losses.size());
    for (size_t i = 0; i < joined.size(); ++i) EXPECT_EQ(joined[i], full.losses[i]) << "step " << i + 1;
    EXPECT_EQ(part2.val_loss, full.val_loss);
    // Same final weights, bit for bit.
    auto a = load_tensors(dir("full") + "/checkpoints/step_00000012/model.safetensors");
    auto b = load_tensors(dir("split") + "/checkpoints/step_00000012/model.safetensors");
    ASSERT_EQ(a.size(), b.size());
    for (auto& [k, v] : a) EXPECT_TRUE(torch::equal(v, b.at(k))) << k;
    // keep_checkpoints = 2: only the newest two remain.
    EXPECT_FALSE(fs::exists(dir("full") + "/checkpoints/step_00000004"));
    EXPECT_TRUE(fs::exists(dir("full") + "/checkpoints/step_00000008"));
}

// deterministic = true on the CPU (CI): the config trains (no op on the CPU
// path is refused by LibTorch's deterministic mode), two runs and a
// stopped-and-resumed one give the same bits, and so does the default mode
// (the CPU ops are deterministic already: the mode changes no arithmetic).
// LibTorch's global settings are restored when train::train() returns.
TEST_F(TrainTest, DeterministicModeTrainsOnCpuBitIdentically) {
    ASSERT_FALSE(at::globalContext().deterministicAlgorithms());
    auto c = config(8);
    c.device = "cpu";
    c.deterministic = true;
    c.grad_accum = 2;
    auto a = train::train(c, dir("det_a"), quiet());
    ASSERT_EQ(a.state, "finished") << a.message;
    EXPECT_FALSE(at::globalContext().deterministicAlgorithms());
    EXPECT_EQ(json::parse(read_file(dir("det_a") + "/train_config.json"))["deterministic"], true);
    auto b = train::train(c, dir("det_b"), quiet());
    ASSERT_EQ(b.state, "finished") << b.message;
    auto o = quiet();
    o.hooks.stop_after_steps = 3;
    ASSERT_EQ(train::train(c, dir("det_split"), o).state, "stopped");
    auto o2 = quiet();
    o2.resume = true;
    auto resumed =
        train::train(TrainConfig{}, dir("det_split"), o2);  // the mode comes from the run's train_config.json
    ASSERT_EQ(resumed.state, "finished") << resumed.message;
    c.deterministic = false;
    auto plain = train::train(c, dir("det_off"), quiet());
    ASSERT_EQ(plain.state, "finished") << plain.message;

    ASSERT_EQ(a.losses.size(), 8u);
    EXPECT_EQ(a.losses, b.losses);
    EXPECT_EQ(std::vector<double>(a.losses.begin() + 3, a.losses.end()), resumed.losses);
    EXPECT_EQ(a.losses, plain.losses);
    auto wa = load_tensors(dir("det_a") + "/checkpoints/step_00000008/model.safetensors");
    for (const char* run : {"det_b", "det_split", "det_off"}) {
        auto w = load_tensors(dir(run) + "/checkpoints/step_00000008/model.safetensors");
        ASSERT_EQ(w.size(), wa.size()) << run;
        for (auto& [k, v] : wa) EXPECT_TRUE(torch::equal(v, w.at(k))) << run << " " << k;
    }
}

TEST_F(TrainTest, NanLossStopsAndKeepsLastGoodCheckpoint) {
    auto c = config(10);
    c.checkpoint_every = 2;
    auto nan_at_5 = quiet();
    nan_at_5.hooks.after_loss = [](int64_t step, torch::Tensor& loss) {
        if (step == 5) loss = loss * std::nan("");
    };
    auto r = train::train(c, dir("nan"), nan_at_5);
    EXPECT_EQ(r.state, "failed");
    EXPECT_NE(r.message.find("NaN"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("step 5"), std::string::npos) << r.message;
    auto st = status(dir("nan"));
    EXPECT_EQ(st["state"], "failed");
    EXPECT_NE(st["message"].get<std::string>().find("NaN"), std::string::npos);
    EXPECT_EQ(latest(dir("nan")), "step_00000004");
    EXPECT_FALSE(fs::exists(dir("nan") + "/checkpoints/step_00000005"));
    // It resumes from there.
    auto o = quiet();
    o.resume = true;
    auto r2 = train::train(TrainConfig{}, dir("nan"), o);
    EXPECT_EQ(r2.state, "finished");
    EXPECT_EQ(r2.start_step, 4);
}

TEST_F(TrainTest, DistillationTrainsABinarizedStudent) {
    // A teacher: the tiny model trained briefly in full precision.
    auto tc = config(40);
    auto t = train::train(tc, dir("kd_teacher"), quiet());
    ASSERT_EQ(t.state, "finished");
    const std::string teacher = dir("kd_teacher") + "/checkpoints/step_00000040";
    for (std::string loss : {"soft_ce", "kl", "mix"}) {
        auto c = config(25);
        c.model = json{{"preset", "tiny"}, {"binarize", "in_proj+out_proj"}};
        c.loss = loss;
        c.teacher = teacher;
        auto r = train::train(c, dir("kd_" + loss), quiet());
        ASSERT_EQ(r.state, "finished") << loss << ": " << r.message;
        EXPECT_LT(mean(r.losses, 20, 25), mean(r.losses, 0, 5) - 0.3) << loss;
        if (loss == "kl") EXPECT_GT(r.losses.back(), 0.0);
    }
    // The same from a top-k teacher logits cache built over aligned windows.
    {
        auto ds = TokenDataset::open(g_data, "train");
        auto tm = load_model(teacher);
        tm->eval();
        TeacherCacheSpec spec;
        spec.k = 32;
        spec.seq_len = 64;
        spec.vocab_size = 512;
        spec.num_windows = 40;
        const std::string cache_path = dir("teacher.cache");
        build_teacher_cache(
            cache_path, spec,
            [&](int64_t w) {
                auto buf = torch::empty({64}, torch::kInt32);
                ds->read(static_cast<uint64_t>(w) * 64, 64, buf.data_ptr<int32_t>());
                return buf.to(torch::kInt64);
            },
            [&](const torch::Tensor& ids) {
                torch::NoGradGuard ng;
                return tm->forward(ids);
            });
        auto c = config(25);
        c.model = json{{"preset", "tiny"}, {"binarize", "in_proj+out_proj"}};
        c.loss = "soft_ce";
        c.teacher_cache = cache_path;
        auto r = train::train(c, dir("kd_cache"), quiet());
        ASSERT_EQ(r.state, "finished") << r.message;
        EXPECT_LT(mean(r.losses, 20, 25), mean(r.losses, 0, 5) - 0.3);
        c.seq_len = 32;
        EXPECT_THROW(train::train(c, dir("kd_cache_bad"), quiet()), std::runtime_error);
    }
    // A teacher with another vocabulary is refused with both sizes named...
    auto c = config(2);
    c.model = json{{"preset", "tiny"}, {"vocab_size", 640}};
    c.loss = "soft_ce";
    c.teacher = teacher;
    try {
        train::train(c, dir("kd_bad"), quiet());
        FAIL() << "no error";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("512"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("640"), std::string::npos) << e.what();
    }
    // ...and a teacher too large for the device stops the run before its first
    // step, with nothing trained or checkpointed.
    c = config(2);
    c.model = json{{"preset", "tiny"}, {"binarize", "in_proj+out_proj"}};
    c.loss = "soft_ce";
    c.teacher = teacher;
    setenv("BIMAMBA_MEMORY_LIMIT_GB", "0.0001", 1);
    try {
        train::train(c, dir("kd_too_big"), quiet());
        unsetenv("BIMAMBA_MEMORY_LIMIT_GB");
        FAIL() << "no error";
    } catch (const std::exception& e) {
        unsetenv("BIMAMBA_MEMORY_LIMIT_GB");
        EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("student's training state"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir("kd_too_big") + "/checkpoints/step_00000002"));
    EXPECT_FALSE(fs::exists(dir("kd_too_big") + "/checkpoints/step_00000001"));
}

namespace {

pid_t spawn_cli(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env) {
    const char* cli = std::getenv("BIMAMBA_CLI");
    pid_t pid = fork();
    if (pid == 0) {
        for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(cli));
        for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(cli, argv.data());
        _exit(127);
    }
    return pid;
}

bool wait_for(const std::function<bool()>& cond, double seconds) {
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

}  // namespace

TEST_F(TrainTest, SigkillDuringCheckpointWriteResumesFromPreviousCheckpoint) {
    const char* cli = std::getenv("BIMAMBA_CLI");
    if (!cli || !fs::exists(cli)) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    auto c = config(8);
    c.checkpoint_every = 3;
    const std::string cfg_path = dir("kill.json");
    std::ofstream(cfg_path) << c.to_json().dump();
    const std::string run = dir("kill");
    // Every checkpoint write pauses 1.5 s between the model and the optimizer files.
    pid_t pid = spawn_cli({"train", "--config", cfg_path, "--run-dir", run, "--quiet"},
                          {{"BIMAMBA_TEST_HOOKS", "slow_checkpoint_ms=1500"}});
    ASSERT_GT(pid, 0);
    // Wait until step 3 is published and step 6's write has begun, then kill -9.
    bool inside = wait_for(
        [&] {
            return fs::exists(run + "/checkpoints/step_00000006.tmp/model.safetensors") &&
                   fs::exists(run + "/checkpoints/latest");
        },
        120);
    kill(pid, SIGKILL);
    int wst = 0;
    waitpid(pid, &wst, 0);
    ASSERT_TRUE(inside) << "the child never reached the second checkpoint write";
    ASSERT_TRUE(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL);
    EXPECT_EQ(latest(run), "step_00000003");
    EXPECT_FALSE(fs::exists(run + "/checkpoints/step_00000006/optimizer.safetensors"));
    EXPECT_EQ(status(run)["state"], "running");  // what a killed process leaves

    auto o = quiet();
    o.resume = true;
    auto r = train::train(TrainConfig{}, run, o);
    ASSERT_EQ(r.state, "finished") << r.message;
    EXPECT_EQ(r.start_step, 3);
    EXPECT_FALSE(fs::exists(run + "/checkpoints/step_00000006.tmp"));
    // The resumed steps equal those of a run that was never interrupted.
    auto ref = train::train(c, dir("kill_ref"), quiet());
    ASSERT_EQ(r.losses.size(), 5u);
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(r.losses[i], ref.losses[3 + i]) << "step " << 4 + i;
}

// BIMAMBA_TEST_HOOKS, read once by `bimamba train`, reaches the trainer's hooks
// (a NaN at step 2 fails the run, exit status 3); a misspelt hook is refused.
TEST_F(TrainTest, CliTestHooksReachTheTrainer) {
    const char* cli = std::getenv("BIMAMBA_CLI");
    if (!cli || !fs::exists(cli)) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    const std::string cfg_path = dir("hooks.json");
    std::ofstream(cfg_path) << config(4).to_json().dump();
    auto run_cli = [&](const std::string& run, const std::string& hooks) {
        pid_t pid =
            spawn_cli({"train", "--config", cfg_path, "--run-dir", run, "--quiet"}, {{"BIMAMBA_TEST_HOOKS", hooks}});
        int wst = 0;
        waitpid(pid, &wst, 0);
        return WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
    };
    EXPECT_EQ(run_cli(dir("hooks_nan"), "slow_checkpoint_ms=0,nan_at_step=2"), 3);
    const auto st = status(dir("hooks_nan"));
    EXPECT_EQ(st["state"], "failed");
    EXPECT_NE(st["message"].get<std::string>().find("NaN at step 2"), std::string::npos) << st["message"];
    EXPECT_EQ(run_cli(dir("hooks_bad"), "nan_at=2"), 1);
    EXPECT_FALSE(fs::exists(dir("hooks_bad")));
}

TEST_F(TrainTest, SigtermStopsGracefullyWithACheckpoint) {
    const char* cli = std::getenv("BIMAMBA_CLI");
    if (!cli || !fs::exists(cli)) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    auto c = config(100000);
    const std::string cfg_path = dir("term.toml");
    std::ofstream(cfg_path) << "data = \"" << g_data << "\"\nmodel = \"tiny\"\nsteps = 100000\nseq_len = 64\n"
                            << "batch_size = 4\nthreads = 1\ncheckpoint_every = 0\n";
    const std::string run = dir("term");
    pid_t pid = spawn_cli({"train", "--config", cfg_path, "--run-dir", run, "--quiet"}, {});
    ASSERT_TRUE(wait_for([&] { return metrics(run, "train").size() >= 3; }, 120));
    kill(pid, SIGTERM);
    int wst = 0;
    waitpid(pid, &wst, 0);
    ASSERT_TRUE(WIFEXITED(wst));
    EXPECT_EQ(WEXITSTATUS(wst), 0);
    auto st = status(run);
    EXPECT_EQ(st["state"], "stopped");
    EXPECT_NE(st["message"].get<std::string>().find("SIGTERM"), std::string::npos);
    const int64_t step = st["step"].get<int64_t>();
    EXPECT_GE(step, 3);
    char name[32];
    std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
    EXPECT_EQ(latest(run), name);
}

// A run killed with SIGKILL at random points and resumed each time: every
// resume truncates metrics.jsonl back to its checkpoint, so in the end every
// step has exactly one training row, in order, and no line is torn.
TEST_F(TrainTest, RandomSigkillsAndResumesLeaveOneMetricsRowPerStep) {
    const char* cli = std::getenv("BIMAMBA_CLI");
    if (!cli || !fs::exists(cli)) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    auto c = config(60);
    c.checkpoint_every = 4;
    c.eval_every = 10;
    c.eval_batches = 1;
    const std::string cfg_path = dir("randkill.json");
    std::ofstream(cfg_path) << c.to_json().dump();
    const std::string run = dir("randkill");
    auto last_train_step = [&]() -> int64_t {  // tolerant of a line being written
        int64_t last = 0;
        std::ifstream f(run + "/metrics.jsonl");
        for (std::string line; std::getline(f, line);) {
            auto j = json::parse(line, nullptr, false);
            if (!j.is_discarded() && j.value("type", "") == "train") last = j["step"].get<int64_t>();
        }
        return last;
    };
    auto checkpoint_step = [&]() -> int64_t {
        if (!fs::exists(run + "/checkpoints/latest")) return 0;
        return std::stoll(latest(run).substr(5));
    };
    std::mt19937 rng(20261129);
    int kills_past_checkpoint = 0;
    for (int k = 0; k < 6; ++k) {
        const bool fresh = k == 0;
        pid_t pid =
            spawn_cli(fresh ? std::vector<std::string>{"train", "--config", cfg_path, "--run-dir", run, "--quiet"}
                            : std::vector<std::string>{"train", "--resume", run, "--quiet"},
                      {});
        ASSERT_GT(pid, 0);
        // Kill after a random number (1..6) of new steps (the first time past the
        // first checkpoint, so there is one to resume from): most kills land between checkpoints.
        const int64_t from = fresh ? c.checkpoint_every : last_train_step();
        const int64_t target = std::min<int64_t>(from + 1 + rng() % 6, c.steps - 1);
        int wst = 0;
        bool exited = false;
        const bool reached = wait_for(
            [&] {
                exited = waitpid(pid, &wst, WNOHANG) == pid;
                return exited || last_train_step() >= target;
            },
            120);
        ASSERT_FALSE(exited) << "kill " << k << ": the child exited by itself; train.log:\n"
                             << read_file(run + "/train.log");
        ASSERT_TRUE(reached) << "kill " << k;
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
        kill(pid, SIGKILL);
        waitpid(pid, &wst, 0);
        if (!WIFSIGNALED(wst)) break;  // finished before the kill landed
        if (last_train_step() > checkpoint_step()) ++kills_past_checkpoint;
    }
    EXPECT_GE(kills_past_checkpoint, 3) << "the kills should leave steps to redo after the checkpoint";
    // The last resume runs to the end.
    pid_t pid = spawn_cli({"train", "--resume", run, "--quiet"}, {});
    int wst = 0;
    waitpid(pid, &wst, 0);
    ASSERT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    EXPECT_EQ(status(run)["state"], "finished");

    std::ifstream f(run + "/metrics.jsonl");
    std::vector<int64_t> train_steps, val_steps;
    for (std::string line; std::getline(f, line);) {
        auto j = json::parse(line, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << "torn line: " << line;
        (j["type"] == "train" ? train_steps : val_steps).push_back(j["step"].get<int64_t>());
    }
    std::vector<int64_t> want(c.steps);
    std::iota(want.begin(), want.end(), 1);
    EXPECT_EQ(train_steps, want);
    EXPECT_EQ(val_steps, (std::vector<int64_t>{10, 20, 30, 40, 50, 60}));
}
