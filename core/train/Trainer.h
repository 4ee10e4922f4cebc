#pragma once
// The training loop behind `bimamba train`: AdamW (decoupled weight decay) with
// warm-up + cosine, gradient accumulation and clipping, CE / distillation
// losses against a frozen full-precision teacher, validation, atomic
// checkpoints and exact resume (data order is a pure function of (seed, step);
// parameters, AdamW moments, step counter and RNG state are checkpointed).
#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/train/DistributedEnv.h"
#include "core/base/TrainConfig.h"

namespace bimamba::train {

struct TrainResult {
    std::string state;  // finished | stopped | failed
    std::string message;
    int64_t start_step = 0;            // 0, or the step a resumed run continued from
    int64_t step = 0;                  // optimizer steps done at exit
    std::vector<double> losses;        // train loss of each step run in this process (index = step - start_step)
    double val_loss = 0, val_ppl = 0;  // last validation (NaN if none)
    std::string last_checkpoint;
};

// Test seams: stops and faults that tests set directly. Empty in real runs;
// `bimamba train` fills them from BIMAMBA_TEST_HOOKS (app/cli/cmd_train.cpp,
// the one reader of that variable). Steps are numbered from 1, as in metrics.jsonl.
struct TrainHooks {
    // Stop (status 'stopped', with a checkpoint) after this many steps in this process; -1: never.
    int64_t stop_after_steps = -1;
    // Called with each micro-batch's loss of step `step` before the loss is checked; may replace it (a NaN).
    std::function<void(int64_t step, torch::Tensor& loss)> after_loss;
    // Called inside the checkpoint write of step `step`, between the model and the
    // optimizer files (a sleep widens the window in which a SIGKILL lands mid-write).
    std::function<void(int64_t step)> during_checkpoint;
    // Called with a name at each point of the run directory's writes where a
    // crash test kills the process: the checkpoint's "checkpoint.tmp_dir",
    // "checkpoint.model", "checkpoint.optimizer", "checkpoint.state",
    // "checkpoint.renamed", and RunDir's points (RunDir::set_fault_point).
    std::function<void(const char* point)> at_point;
};

struct TrainOptions {
    bool resume = false;         // continue from checkpoints/latest of the run dir
    bool handle_signals = true;  // SIGINT/SIGTERM stop gracefully with a checkpoint
    bool echo = true;            // print progress lines to stderr (train.log gets them either way)
    // Called with every row appended to metrics.jsonl (rank 0): progress bars.
    std::function<void(const nlohmann::json& row)> on_metrics;
    // Data parallel (docs/multi-gpu.md) when dist.world_size > 1: this process is
    // rank dist.rank; each rank trains on its slice of every global micro-batch
    // (batch_size / world_size sequences), gradients are averaged across ranks,
    // and only rank 0 writes the run directory. `bimamba train` fills it from
    // the environment (DistEnv::from_environment).
    DistEnv dist;
    TrainHooks hooks;  // tests only
};

// Fresh run: writes run_dir/train_config.json and trains (rank 0 only, in a
// data-parallel run; the other ranks read nothing from run_dir either: a
// resumed run's config and checkpoint reach them from rank 0). With opt.resume the
// config is read from run_dir/train_config.json (`cfg` is ignored) and the run
// continues from checkpoints/latest, or starts over from step 0 when it was
// stopped before its first checkpoint. metrics.jsonl keeps the rows up to the
// step the run starts from.
// Never throws for training failures (NaN loss, a write to the run directory
// that fails, e.g. on a full disk, ...): they come back with state "failed"
// and status.json says why. Setup errors (bad data, teacher vocabulary
// mismatch, ...) throw naming the problem.
TrainResult train(const base::TrainConfig& cfg, const std::string& run_dir, const TrainOptions& opt = {});

// Set by the signal handler; the loop checks it after every step.
std::atomic<int>& stop_request();

}  // namespace bimamba::train
