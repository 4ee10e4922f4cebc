// `bimamba train --config FILE --run-dir DIR` / `bimamba train --resume DIR`.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "app/cli/Command.h"
#include "core/train/Trainer.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::train;
using namespace bimamba::cli;

namespace {

const char* kHelp =
    "usage: bimamba train --config FILE --run-dir DIR     start a run (config: JSON or TOML, docs/train-config.md)\n"
    "       bimamba train --resume DIR                    continue a run from its latest checkpoint\n"
    "  --quiet        no per-step lines on stderr (train.log and metrics.jsonl are still written)\n"
    "Data parallel (docs/multi-gpu.md): run one process per GPU with RANK, WORLD_SIZE, LOCAL_RANK,\n"
    "  MASTER_ADDR, MASTER_PORT set (torchrun, SLURM or by hand); batch_size is the global micro-batch.\n"
    "Exit status: 0 finished or stopped (SIGINT/SIGTERM, with a checkpoint), 3 failed (e.g. NaN loss), 1 setup "
    "error.\n";

// Test-only (docs/train-config.md): BIMAMBA_TEST_HOOKS="KEY=N,..." turned into
// TrainHooks, for tests that run `bimamba train` as a child process. Read once,
// here; the trainer itself reads no environment.
//   stop_after_steps=N    stop with a checkpoint after N steps of this process, as SIGTERM would
//   nan_at_step=N         the loss of step N is NaN
//   slow_checkpoint_ms=N  every checkpoint write sleeps N ms between the model and the optimizer files
//   kill_at_point=N       SIGKILL at the N-th point of the run directory's writes this process
//                         passes (TrainHooks::at_point: inside checkpoint writes, metrics
//                         appends, status updates), after naming it on stderr
//   kill_in_checkpoint=N  the same, counting only the points inside checkpoint writes
//   kill_in_metrics=N     the same, counting only the metrics.jsonl points (half a line written, ...)
//   kill_at_torn_line=N   the same, counting only the points where half a metrics line is written
//   kill_in_status=N      the same, counting only status.json's point (its new file complete, not renamed)
TrainHooks test_hooks_from_environment() {
    TrainHooks hooks;
    const char* spec = std::getenv("BIMAMBA_TEST_HOOKS");
    if (!spec) return hooks;
    std::istringstream items(spec);
    for (std::string item; std::getline(items, item, ',');) {
        const auto eq = item.find('=');
        const std::string key = item.substr(0, eq);
        char* end = nullptr;
        const bool has_value = eq != std::string::npos && eq + 1 < item.size();
        const long long n = has_value ? std::strtoll(item.c_str() + eq + 1, &end, 10) : -1;
        if (n < 0 || *end) throw std::invalid_argument("BIMAMBA_TEST_HOOKS: '" + item + "' is not KEY=N with N >= 0");
        if (key == "stop_after_steps") {
            hooks.stop_after_steps = n;
        } else if (key == "nan_at_step") {
            hooks.after_loss = [n](int64_t step, torch::Tensor& loss) {
                if (step == n) loss = loss * std::nan("");
            };
        } else if (key == "slow_checkpoint_ms") {
            hooks.during_checkpoint = [n](int64_t) { std::this_thread::sleep_for(std::chrono::milliseconds(n)); };
        } else if (key == "kill_at_point" || key == "kill_in_checkpoint" || key == "kill_in_metrics" ||
                   key == "kill_at_torn_line" || key == "kill_in_status") {
            const std::string only = key == "kill_in_checkpoint"  ? "checkpoint."
                                     : key == "kill_in_metrics"   ? "metrics."
                                     : key == "kill_at_torn_line" ? "metrics.torn"
                                     : key == "kill_in_status"    ? "status."
                                                                  : "";
            hooks.at_point = [n, only, seen = 0LL](const char* point) mutable {
                const std::string p = point;
                const bool counted =
                    only.empty() || p.rfind(only, 0) == 0 || (only == "checkpoint." && p.rfind("latest.", 0) == 0);
                if (!counted || ++seen < n) return;
                std::fprintf(stderr, "BIMAMBA_TEST_HOOKS: SIGKILL at point %lld: %s\n", seen, point);
                std::fflush(stderr);
                std::raise(SIGKILL);
            };
        } else {
            throw std::invalid_argument(
                "BIMAMBA_TEST_HOOKS: unknown hook '" + key +
                "' (stop_after_steps, nan_at_step, slow_checkpoint_ms, kill_at_point, kill_in_checkpoint, kill_in_metrics, kill_at_torn_line, kill_in_status)");
        }
    }
    return hooks;
}

int run_train(const Args& args) {
    Options o(args, {"quiet", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"config", "run-dir", "resume", "quiet", "help"});
    if (!o.positional().empty()) throw std::invalid_argument("unexpected argument '" + o.positional()[0] + "'");
    TrainOptions topt;
    topt.echo = !o.has("quiet");
    topt.dist = DistEnv::from_environment();  // WORLD_SIZE > 1: data parallel
    topt.hooks = test_hooks_from_environment();
    TrainConfig cfg;
    std::string run_dir;
    if (o.has("resume")) {
        if (o.has("config"))
            throw std::invalid_argument("--resume reads the run's own train_config.json; drop --config");
        run_dir = o.get("resume");
        if (o.has("run-dir") && o.get("run-dir") != run_dir)
            throw std::invalid_argument("--resume DIR and --run-dir name different folders");
        topt.resume = true;
    } else {
        if (!o.has("config"))
            throw std::invalid_argument(std::string("missing --config FILE (or --resume DIR)\n") + kHelp);
        cfg = TrainConfig::load(o.get("config"));
        run_dir = o.require("run-dir");
    }
    TrainResult r = train::train(cfg, run_dir, topt);
    const std::string who = topt.dist.distributed() ? "rank " + std::to_string(topt.dist.rank) + ": " : "";
    std::printf("%s%s at step %lld: %s\n", who.c_str(), r.state.c_str(), static_cast<long long>(r.step),
                r.message.c_str());
    return r.state == "failed" ? 3 : 0;
}

CommandRegistrar reg{"train", "train a Mamba-2 / Bi-Mamba model (config file -> run directory)", run_train};

}  // namespace
