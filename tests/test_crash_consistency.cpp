// Crash consistency of training (issue #17, item 4; docs/reliability.md):
// `bimamba train` (tiny model, CPU, deterministic, one thread) is killed with
// SIGKILL 20 times, each time resumed with `bimamba train --resume`. Half the
// kills land at named points inside the run directory's writes
// (BIMAMBA_TEST_HOOKS=kill_at_point=N: checkpoint files, `latest`, pruning,
// half-written metrics lines, status.json; in turn any point, one inside a
// checkpoint write, half a metrics line, the status update), the others at
// random moments of the run. Checked against an uninterrupted run of the same config (the
// independent reference, trained in this process):
//   - after every kill, checkpoints/latest names a complete checkpoint whose
//     weights and optimizer state equal the reference's at that step, bit for bit;
//   - the finished run's final weights and optimizer state are bit-identical,
//     and metrics.jsonl holds every step's row exactly once, each line whole,
//     with the reference's losses;
//   - no temporary file of a killed write is left behind.
// BIMAMBA_CRASH_SEED=N replays another sequence of kills.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "core/base/FileUtil.h"
#include "core/base/RunDir.h"
#include "core/model/Checkpoint.h"
#include "core/train/Trainer.h"
#include "tests/TestUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
using namespace bimamba::model;
using namespace bimamba::train;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int kKills = 20;
constexpr int64_t kSteps = 160;

TrainConfig crash_config(const std::string& data) {
    TrainConfig c;
    c.data = data;
    c.model = "tiny";
    c.device = "cpu";
    c.deterministic = true;
    c.threads = 1;
    c.steps = kSteps;
    c.seq_len = 32;
    c.batch_size = 2;
    c.lr = 3e-3;
    c.final_lr = 3e-4;
    c.warmup_steps = 4;
    c.eval_every = 8;
    c.eval_batches = 2;
    c.checkpoint_every = 4;
    c.keep_checkpoints = 2;
    c.seed = 77;
    return c;
}

// `bimamba ARGS` with extra environment, stderr into `err_path`.
pid_t spawn_cli(const std::vector<std::string>& args, const std::string& hooks, const std::string& err_path) {
    const char* cli = std::getenv("BIMAMBA_CLI");
    pid_t pid = fork();
    if (pid == 0) {
        if (!hooks.empty()) setenv("BIMAMBA_TEST_HOOKS", hooks.c_str(), 1);
        if (!freopen(err_path.c_str(), "w", stderr)) _exit(126);
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(cli));
        for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(cli, argv.data());
        _exit(127);
    }
    return pid;
}

// Every tensor of two safetensors files, bit for bit; "" or what differs.
std::string tensors_differ(const std::string& a_path, const std::string& b_path) {
    auto a = load_tensors(a_path);
    auto b = load_tensors(b_path);
    if (a.size() != b.size()) return std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " tensors";
    for (auto& [k, v] : a) {
        auto it = b.find(k);
        if (it == b.end()) return "no tensor " + k;
        if (v.scalar_type() != it->second.scalar_type() || !torch::equal(v, it->second)) return "tensor " + k;
    }
    return "";
}

// checkpoints/step_NNNNNNNN of a run directory.
std::string checkpoint_of(const std::string& run, int64_t step) {
    char name[32];
    std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
    return run + "/checkpoints/" + name;
}

// The leftovers of killed writes: NAME.tmp.<pid> files and step_*.tmp folders.
std::vector<std::string> temporaries(const std::string& run) {
    std::vector<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(run))
        if (e.path().filename().string().find(".tmp") != std::string::npos) out.push_back(e.path().string());
    return out;
}

}  // namespace

TEST(CrashConsistency, TwentySigkillsThenResumeEqualsAnUninterruptedRun) {
    const char* cli = std::getenv("BIMAMBA_CLI");
    if (!cli || !fs::exists(cli)) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    const char* seed_env = std::getenv("BIMAMBA_CRASH_SEED");
    const unsigned seed = seed_env ? unsigned(std::strtoul(seed_env, nullptr, 10)) : 20261129u;
    std::mt19937 rng(seed);
    SCOPED_TRACE("BIMAMBA_CRASH_SEED=" + std::to_string(seed));

    const std::string root = test::fresh_dir("crash");
    const std::string data = test::prepare_shakespeare(root, 60000, 512);
    const TrainConfig cfg = crash_config(data);

    // The reference: the same config, never interrupted, every checkpoint kept.
    TrainConfig ref_cfg = cfg;
    ref_cfg.keep_checkpoints = kSteps;
    TrainOptions quiet;
    quiet.echo = false;
    quiet.handle_signals = false;
    const std::string ref = root + "/ref";
    const auto t0 = std::chrono::steady_clock::now();
    const TrainResult reference = train::train(ref_cfg, ref, quiet);
    ASSERT_EQ(reference.state, "finished") << reference.message;
    const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(kSteps);

    const std::string cfg_path = root + "/crash.json";
    test::write_text(cfg_path, cfg.to_json().dump(2));
    const std::string run = root + "/run";
    const std::string err = root + "/stderr.txt";

    std::map<std::string, int> kill_points;  // where the point kills landed
    int time_kills = 0, kills = 0, restarts_from_scratch = 0;
    double startup_s = 0.5;  // spawn to training, until measured
    std::set<std::string> latest_seen;
    for (int i = 0; i <= kKills; ++i) {
        const bool resume = fs::exists(run + "/train_config.json");
        if (!resume) ++restarts_from_scratch;
        const std::vector<std::string> args =
            resume ? std::vector<std::string>{"train", "--resume", run, "--quiet"}
                   : std::vector<std::string>{"train", "--config", cfg_path, "--run-dir", run, "--quiet"};
        const bool last = i == kKills;  // the final process runs to the end
        // Even kills at a named point, in turn: any point, a point of a
        // checkpoint write (about 8 a checkpoint), half a metrics line
        // written, the status update.
        const bool at_point = !last && i % 2 == 0;
        std::string hooks;
        auto pick = [&](int hi) { return std::to_string(std::uniform_int_distribution<int>(1, hi)(rng)); };
        if (at_point)
            hooks = i % 8 == 0   ? "kill_at_point=" + pick(40)
                    : i % 8 == 2 ? "kill_in_checkpoint=" + pick(12)
                    : i % 8 == 4 ? "kill_at_torn_line=" + pick(6)
                                 : "kill_in_status=" + pick(6);
        const auto spawned = std::chrono::steady_clock::now();
        const pid_t pid = spawn_cli(args, hooks, err);
        ASSERT_GT(pid, 0);
        if (!last && !at_point) {
            // A random moment: while the process starts (1 in 4) or once it
            // trains (its pid in status.json), within the time of ~6 steps.
            // "While it starts" is the start-up time last measured (from the
            // spawn to its pid in status.json) plus ~6 steps: a fixed window
            // outlasted the whole run on a fast machine (160 steps in 1.3 s).
            const bool during_start = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
            if (!during_start) {
                const auto w0 = std::chrono::steady_clock::now();
                while (read_run_status(run).pid != pid &&
                       std::chrono::steady_clock::now() - w0 < std::chrono::seconds(60))
                    std::this_thread::sleep_for(std::chrono::milliseconds(2));
                startup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - spawned).count();
            }
            const double window = during_start ? startup_s + 6 * step_s : 6 * step_s;
            std::this_thread::sleep_for(
                std::chrono::duration<double>(std::uniform_real_distribution<double>(0, window)(rng)));
            kill(pid, SIGKILL);
        }
        int wst = 0;
        waitpid(pid, &wst, 0);
        if (last) {
            ASSERT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) == 0) << read_file(err);
            break;
        }
        if (WIFEXITED(wst)) {
            // Ran to the end before the kill: the test lost its strength.
            ADD_FAILURE() << "process " << i << " exited (" << WEXITSTATUS(wst)
                          << ") before its kill: " << read_file(err);
            break;
        }
        ASSERT_TRUE(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL) << read_file(err);
        ++kills;
        if (at_point) {
            const std::string e = read_file(err);
            const auto at = e.find("SIGKILL at point ");
            ASSERT_NE(at, std::string::npos) << e;
            const auto colon = e.find(": ", at);
            kill_points[e.substr(colon + 2, e.find('\n', colon) - colon - 2)]++;
        } else {
            ++time_kills;
        }

        // `latest` names a complete checkpoint, equal to the reference's at its step.
        const std::string ck = latest_checkpoint(run);  // throws if it names a missing folder
        if (ck.empty()) continue;
        latest_seen.insert(fs::path(ck).filename().string());
        for (const char* f : {"model.safetensors", "config.json", "optimizer.safetensors", "trainer_state.json"})
            ASSERT_TRUE(fs::exists(ck + "/" + f)) << "kill " << i << ": latest " << ck << " lacks " << f;
        const int64_t step = json::parse(read_file(ck + "/trainer_state.json")).at("step").get<int64_t>();
        const std::string ref_ck = checkpoint_of(ref, step);
        ASSERT_EQ(fs::path(ck).filename(), fs::path(ref_ck).filename());
        EXPECT_EQ(tensors_differ(ck + "/model.safetensors", ref_ck + "/model.safetensors"), "") << "kill " << i;
        EXPECT_EQ(tensors_differ(ck + "/optimizer.safetensors", ref_ck + "/optimizer.safetensors"), "") << "kill " << i;
    }
    EXPECT_EQ(kills, kKills);
    EXPECT_GE(time_kills, 8);
    std::string where;
    for (auto& [p, n] : kill_points) where += p + " x" + std::to_string(n) + "  ";
    std::printf("kills: %d (%d at random moments, %d from scratch); at points: %s\nlatest seen: %zu checkpoints\n",
                kills, time_kills, restarts_from_scratch, where.c_str(), latest_seen.size());
    // The point kills reached the three kinds of write.
    auto landed = [&](const std::string& prefix) {
        for (auto& [p, n] : kill_points)
            if (p.rfind(prefix, 0) == 0) return true;
        return false;
    };
    int in_checkpoints = 0;
    for (auto& [p, n] : kill_points)
        if (p.rfind("checkpoint.", 0) == 0 || p.rfind("latest.", 0) == 0) in_checkpoints += n;
    EXPECT_GE(in_checkpoints, 3) << where;
    EXPECT_TRUE(landed("metrics.torn")) << where;
    EXPECT_TRUE(landed("status.")) << where;

    // The finished run equals the uninterrupted one.
    EXPECT_EQ(read_run_status(run).state, "finished");
    const std::string final_ck = latest_checkpoint(run);
    const std::string ref_final = checkpoint_of(ref, kSteps);
    ASSERT_EQ(fs::path(final_ck).filename(), fs::path(ref_final).filename());
    EXPECT_EQ(tensors_differ(final_ck + "/model.safetensors", ref_final + "/model.safetensors"), "");
    EXPECT_EQ(tensors_differ(final_ck + "/optimizer.safetensors", ref_final + "/optimizer.safetensors"), "");

    // metrics.jsonl: whole lines, one row per (type, step), the reference's values.
    auto rows_of = [](const std::string& path) {
        const std::string text = read_file(path);
        EXPECT_TRUE(!text.empty() && text.back() == '\n') << path << " ends inside a line";
        std::map<std::pair<std::string, int64_t>, json> rows;
        size_t start = 0;
        for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
            const std::string line = text.substr(start, nl - start);
            const json j = json::parse(line, nullptr, false);
            EXPECT_TRUE(j.is_object()) << "torn line in " << path << ": " << line;
            if (!j.is_object()) continue;
            const auto key = std::make_pair(j.value("type", std::string("train")), j.value("step", int64_t(-1)));
            EXPECT_EQ(rows.count(key), 0u) << "duplicated row in " << path << ": " << line;
            rows[key] = j;
        }
        return rows;
    };
    const auto got = rows_of(run + "/metrics.jsonl");
    const auto want = rows_of(ref + "/metrics.jsonl");
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(want.size(), size_t(kSteps + kSteps / cfg.eval_every));
    for (auto& [key, w] : want) {
        auto it = got.find(key);
        ASSERT_NE(it, got.end()) << "no row " << key.first << " step " << key.second;
        const char* field = key.first == "val" ? "val_loss" : "loss";
        EXPECT_EQ(it->second.at(field).get<double>(), w.at(field).get<double>()) << key.first << " step " << key.second;
    }
    for (size_t i = 0; i < reference.losses.size(); ++i)
        EXPECT_EQ(got.at({"train", int64_t(i + 1)}).at("loss").get<double>(), reference.losses[i]);

    const auto tmps = temporaries(run);
    EXPECT_TRUE(tmps.empty()) << tmps.size() << " leftover(s), e.g. " << tmps.front();
}
