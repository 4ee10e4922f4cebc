#pragma once
// A training run's folder, laid out as docs/run-directory.md describes:
// train_config.json, status.json (atomic rewrites), metrics.jsonl (appended,
// flushed per line), train.log, checkpoints/step_NNNNNNNN/ and
// checkpoints/latest (written last, atomically).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bimamba {

class RunDir {
public:
    explicit RunDir(std::string dir);  // creates dir and dir/checkpoints
    ~RunDir();
    RunDir(const RunDir&) = delete;
    RunDir& operator=(const RunDir&) = delete;

    const std::string& path() const { return dir_; }
    std::string checkpoints_dir() const { return dir_ + "/checkpoints"; }

    // Appends one JSON object as a line and flushes it (fsync is left to checkpoints).
    void append_metrics(const nlohmann::json& line);
    // On resume from the checkpoint of `step`: rewrites metrics.jsonl to the
    // history up to that step (metrics_rows_kept, then rows with a step <= it;
    // a line torn by a kill is dropped), through a new file renamed over the
    // old, so the redone steps are not appended twice.
    void truncate_metrics(int64_t step);
    // Appends a timestamped line to train.log (and echoes it to stderr when `echo`).
    void log(const std::string& msg, bool echo = true);
    // status.json: {"state","pid","step","total_steps","started","ended","message"}
    void write_status(const std::string& state, int64_t step, int64_t total_steps, const std::string& message = "");

    // The folder of a new checkpoint, e.g. checkpoints/step_00000100.
    std::string checkpoint_path(int64_t step) const;
    // Publishes a completed checkpoint folder: writes `latest`, then removes
    // all but the newest `keep` step_* folders and stale *.tmp folders.
    void publish_checkpoint(const std::string& ckpt_dir, int64_t keep);
    // The newest complete checkpoint folder (from `latest`), or "" if none.
    std::string latest_checkpoint() const;

    static std::string iso8601_now();

private:
    std::string dir_;
    std::FILE* metrics_ = nullptr;
    std::FILE* log_ = nullptr;
    std::string started_;
};

}  // namespace bimamba
