// Data-parallel `bimamba train` on CPU over Gloo (docs/multi-gpu.md): two
// processes launched with torchrun-style variables train a tiny Bi-Mamba with
// the same global batch as one process, and their per-step losses and
// validation match the single-process run; only rank 0 writes the run
// directory; a stopped 2-rank run resumes; bad setups fail with clear errors.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "core/base/FileUtil.h"
#include "tests/TestUtil.h"
#include "core/data/Prepare.h"
#include "core/base/TrainConfig.h"

using namespace bimamba;
using namespace bimamba::base;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string g_root, g_data;

const char* cli() {
    const char* c = std::getenv("BIMAMBA_CLI");
    return c && fs::exists(c) ? c : nullptr;
}

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

using Env = std::vector<std::pair<std::string, std::string>>;

// Runs `bimamba ARGS` with ENV added, stdout+stderr to `log`.
pid_t spawn(const std::vector<std::string>& args, const Env& env, const std::string& log) {
    pid_t pid = fork();
    if (pid == 0) {
        for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"})
            unsetenv(v);
        for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
        if (FILE* f = std::fopen(log.c_str(), "w")) {
            dup2(fileno(f), 1);
            dup2(fileno(f), 2);
        }
        std::vector<char*> argv{const_cast<char*>(cli())};
        for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(cli(), argv.data());
        _exit(127);
    }
    return pid;
}

// Exit status, or -1 (and the processes killed) past `seconds`.
std::vector<int> wait_all(const std::vector<pid_t>& pids, double seconds) {
    std::vector<int> rc(pids.size(), -2);
    const auto t0 = std::chrono::steady_clock::now();
    size_t left = pids.size();
    while (left > 0) {
        for (size_t i = 0; i < pids.size(); ++i) {
            if (rc[i] != -2) continue;
            int st = 0;
            if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                rc[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                --left;
            }
        }
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) {
            for (size_t i = 0; i < pids.size(); ++i)
                if (rc[i] == -2) {
                    kill(pids[i], SIGKILL);
                    waitpid(pids[i], nullptr, 0);
                    rc[i] = -1;
                }
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return rc;
}

// The last line per step of one type in metrics.jsonl.
std::map<int64_t, json> metrics(const std::string& run, const std::string& type) {
    std::map<int64_t, json> out;
    std::ifstream f(run + "/metrics.jsonl");
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty()) continue;
        auto j = json::parse(line);
        if (j["type"] == type) out[j["step"].get<int64_t>()] = j;
    }
    return out;
}

class DistributedTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        g_root = test::fresh_dir("dist");
        g_data = test::prepare_shakespeare(g_root, 120000, 320);
    }
    static void TearDownTestSuite() { bimamba::base::remove_tree(g_root); }

    // A tiny Bi-Mamba; batch_size is the global micro-batch, two of them per step.
    static std::string config(const std::string& name, int64_t steps, int64_t batch = 4) {
        TrainConfig c;
        c.data = g_data;
        c.model = json{{"preset", "tiny"}, {"binarize", "in_proj+out_proj"}};
        c.steps = steps;
        c.seq_len = 32;
        c.batch_size = batch;
        c.grad_accum = 2;
        c.lr = 3e-3;
        c.final_lr = 3e-4;
        c.warmup_steps = 2;
        c.eval_every = 3;
        c.eval_batches = 2;
        c.checkpoint_every = 3;
        c.threads = 1;
        c.seed = 7;
        c.device = "cpu";
        const std::string path = g_root + "/" + name + ".json";
        std::ofstream(path) << c.to_json().dump();
        return path;
    }
    static Env rank_env(int rank, int world, int port) {
        return {{"RANK", std::to_string(rank)},        {"WORLD_SIZE", std::to_string(world)},
                {"LOCAL_RANK", std::to_string(rank)},  {"MASTER_ADDR", "127.0.0.1"},
                {"MASTER_PORT", std::to_string(port)}, {"GLOO_SOCKET_IFNAME", "lo"},
                {"BIMAMBA_DIST_TIMEOUT_S", "120"},     {"BIMAMBA_DDP_BUCKET_MB", "0.02"}};
    }
    static std::string dir(const std::string& name) { return g_root + "/" + name; }
    static void expect_close(double a, double b, const std::string& what) {
        EXPECT_LE(std::abs(a - b), 1e-4 * std::max(1.0, std::abs(b))) << what << ": " << a << " vs " << b;
    }
};

TEST_F(DistributedTest, TwoRanksMatchOneProcessAndOnlyRankZeroWrites) {
    if (!cli()) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    const std::string cfg = config("match", 6);
    // One process, the whole global batch.
    const std::string ref = dir("ref");
    auto rc = wait_all({spawn({"train", "--config", cfg, "--run-dir", ref, "--quiet"}, {}, dir("ref.log"))}, 120);
    ASSERT_EQ(rc[0], 0) << read_file(dir("ref.log"));

    // Two ranks, half of each micro-batch each. Rank 1 is given a folder of its
    // own that must never be created.
    const int port = free_port();
    const std::string run = dir("ddp"), other = dir("ddp_rank1_must_not_exist");
    pid_t r0 = spawn({"train", "--config", cfg, "--run-dir", run}, rank_env(0, 2, port), dir("ddp0.log"));
    pid_t r1 = spawn({"train", "--config", cfg, "--run-dir", other}, rank_env(1, 2, port), dir("ddp1.log"));
    rc = wait_all({r0, r1}, 120);
    ASSERT_EQ(rc[0], 0) << read_file(dir("ddp0.log"));
    ASSERT_EQ(rc[1], 0) << read_file(dir("ddp1.log"));
    EXPECT_FALSE(fs::exists(other)) << "rank 1 created its run directory";
    const json st = json::parse(read_file(run + "/status.json"));
    EXPECT_EQ(st["state"], "finished");
    EXPECT_EQ(st["pid"].get<int64_t>(), static_cast<int64_t>(r0));
    EXPECT_TRUE(fs::exists(run + "/checkpoints/step_00000006/model.safetensors"));
    const std::string log0 = read_file(dir("ddp0.log"));
    EXPECT_NE(log0.find("data parallel: 2 ranks over gloo"), std::string::npos) << log0;
    EXPECT_NE(log0.find("/rank x 2"), std::string::npos) << log0;
    EXPECT_NE(read_file(dir("ddp1.log")).find("rank 1: finished at step 6"), std::string::npos);

    // Step for step the same losses, validation and gradient norms.
    auto a = metrics(ref, "train"), b = metrics(run, "train");
    ASSERT_EQ(a.size(), 6u);
    ASSERT_EQ(b.size(), 6u);
    for (auto& [step, j] : a) {
        expect_close(b[step]["loss"].get<double>(), j["loss"].get<double>(), "loss at step " + std::to_string(step));
        expect_close(b[step]["grad_norm"].get<double>(), j["grad_norm"].get<double>(),
                     "grad_norm at step " + std::to_string(step));
        EXPECT_EQ(b[step]["world_size"], 2);
        std::printf("step %lld: loss 1 process %.6f, 2 ranks %.6f\n", static_cast<long long>(step),
                    j["loss"].get<double>(), b[step]["loss"].get<double>());
    }
    auto va = metrics(ref, "val"), vb = metrics(run, "val");
    ASSERT_EQ(va.size(), 2u);
    ASSERT_EQ(vb.size(), 2u);
    for (auto& [step, j] : va)
        expect_close(vb[step]["val_loss"].get<double>(), j["val_loss"].get<double>(),
                     "val_loss at step " + std::to_string(step));

    // A 2-rank run stopped after 3 steps resumes (rank 0 reads the checkpoint
    // and hands config, weights and AdamW state to rank 1) and ends where the
    // single process did.
    const std::string run2 = dir("ddp_resume");
    const int port2 = free_port();
    auto env0 = rank_env(0, 2, port2), env1 = rank_env(1, 2, port2);
    env0.push_back({"BIMAMBA_TEST_HOOKS", "stop_after_steps=3"});
    env1.push_back({"BIMAMBA_TEST_HOOKS", "stop_after_steps=3"});
    rc = wait_all({spawn({"train", "--config", cfg, "--run-dir", run2, "--quiet"}, env0, dir("res0.log")),
                   spawn({"train", "--config", cfg, "--run-dir", run2, "--quiet"}, env1, dir("res1.log"))},
                  120);
    ASSERT_EQ(rc[0], 0) << read_file(dir("res0.log"));
    ASSERT_EQ(rc[1], 0) << read_file(dir("res1.log"));
    EXPECT_EQ(json::parse(read_file(run2 + "/status.json"))["state"], "stopped");
    // Rank 1 resumes with a run dir it cannot read: everything comes from rank 0.
    const int port3 = free_port();
    rc = wait_all({spawn({"train", "--resume", run2, "--quiet"}, rank_env(0, 2, port3), dir("res2.log")),
                   spawn({"train", "--resume", other}, rank_env(1, 2, port3), dir("res3.log"))},
                  120);
    ASSERT_EQ(rc[0], 0) << read_file(dir("res2.log"));
    ASSERT_EQ(rc[1], 0) << read_file(dir("res3.log"));
    EXPECT_FALSE(fs::exists(other));
    EXPECT_EQ(json::parse(read_file(run2 + "/status.json"))["state"], "finished");
    auto c = metrics(run2, "train");
    ASSERT_EQ(c.size(), 6u);
    for (auto& [step, j] : a)
        expect_close(c[step]["loss"].get<double>(), j["loss"].get<double>(),
                     "resumed run, loss at step " + std::to_string(step));
}

TEST_F(DistributedTest, BadSetupsFailWithClearErrors) {
    if (!cli()) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    const std::string cfg = config("bad", 2), odd = config("odd", 2, 3);
    const std::string cuda_cfg = g_root + "/cuda.json";
    {
        json j = json::parse(read_file(cfg));
        j["device"] = "cuda";
        std::ofstream(cuda_cfg) << j.dump();
    }
    const int port = free_port();
    struct Case {
        std::string name, config;
        Env env;
        std::vector<std::string> expect;  // any of these in the output
    };
    const std::string P = std::to_string(port);
    const std::vector<Case> cases = {
        {"no_master_addr", cfg, {{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", P}}, {"MASTER_ADDR is not set"}},
        {"no_rank", cfg, {{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", P}}, {"RANK is not set"}},
        {"rank_too_big",
         cfg,
         {{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", P}},
         {"RANK=2 is not below WORLD_SIZE=2"}},
        {"bad_world", cfg, {{"WORLD_SIZE", "two"}}, {"WORLD_SIZE='two'"}},
        {"batch_not_divisible",
         odd,
         {{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", P}},
         {"batch_size 3", "not divisible by WORLD_SIZE 2"}},
        // No GPU here: CUDA unavailable; on a GPU machine with fewer than 8 GPUs:
        // LOCAL_RANK=7 has no GPU; with 8, nobody hosts the store.
        {"cuda_local_rank",
         cuda_cfg,
         {{"WORLD_SIZE", "4"},
          {"RANK", "3"},
          {"LOCAL_RANK", "7"},
          {"MASTER_ADDR", "127.0.0.1"},
          {"MASTER_PORT", P},
          {"BIMAMBA_DIST_TIMEOUT_S", "5"}},
         {"CUDA is not available", "LOCAL_RANK=7", "NCCL", "rendezvous"}},
    };
    for (const auto& c : cases) {
        const std::string run = dir("bad_" + c.name), log = dir("bad_" + c.name + ".log");
        auto rc = wait_all({spawn({"train", "--config", c.config, "--run-dir", run}, c.env, log)}, 60);
        const std::string out = read_file(log);
        EXPECT_EQ(rc[0], 1) << c.name << ": " << out;
        bool found = false;
        for (const auto& e : c.expect) found = found || out.find(e) != std::string::npos;
        EXPECT_TRUE(found) << c.name << ": expected '" << c.expect[0] << "' in: " << out;
        EXPECT_FALSE(fs::exists(run)) << c.name << ": a failed setup created the run directory";
    }

    // Ranks started with different configs: both stop, naming the mismatch.
    const std::string other_seed = g_root + "/seed.json";
    {
        json j = json::parse(read_file(cfg));
        j["seed"] = 8;
        std::ofstream(other_seed) << j.dump();
    }
    const int p2 = free_port();
    const std::string run = dir("bad_mismatch");
    auto rc = wait_all({spawn({"train", "--config", cfg, "--run-dir", run}, rank_env(0, 2, p2), dir("mm0.log")),
                        spawn({"train", "--config", other_seed, "--run-dir", run}, rank_env(1, 2, p2), dir("mm1.log"))},
                       60);
    EXPECT_EQ(rc[0], 1) << read_file(dir("mm0.log"));
    EXPECT_EQ(rc[1], 1) << read_file(dir("mm1.log"));
    EXPECT_NE(read_file(dir("mm1.log")).find("differs from rank 0's"), std::string::npos) << read_file(dir("mm1.log"));
    EXPECT_NE(read_file(dir("mm0.log")).find("rank 1: "), std::string::npos) << read_file(dir("mm0.log"));
    EXPECT_FALSE(fs::exists(run));
}

}  // namespace
