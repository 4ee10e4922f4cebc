#pragma once
// A training run's folder, laid out as docs/run-directory.md describes:
// train_config.json, status.json (atomic rewrites), metrics.jsonl (appended,
// flushed per line), train.log, checkpoints/step_NNNNNNNN/ and
// checkpoints/latest (written last, atomically); and the files the workbench
// adds when it launches `bimamba train`. `RunDir` writes a run (the
// trainer); the free functions read one (the CLI and the workbench alike).
// Plain C++, no LibTorch.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bimamba::base {

// The names inside a run directory.
namespace run_files {
inline constexpr const char* kTrainConfig = "train_config.json";
inline constexpr const char* kStatus = "status.json";
inline constexpr const char* kMetrics = "metrics.jsonl";
inline constexpr const char* kTrainLog = "train.log";
inline constexpr const char* kCheckpoints = "checkpoints";
inline constexpr const char* kLatest = "latest";  // in checkpoints/
// Added by the workbench when it launches `bimamba train`.
inline constexpr const char* kLaunchConfig = "workbench_config.json";  // the config it launched with
inline constexpr const char* kLauncherPid = "launcher.pid";
inline constexpr const char* kExitCode = "exit_code";
inline constexpr const char* kStdout = "stdout.log";
inline constexpr const char* kStderr = "stderr.log";
inline constexpr const char* kWorkbenchMeta = "workbench.json";  // name, group, preset, axes
}  // namespace run_files

// status.json.
struct RunStatus {
    bool valid = false;  // status.json was read and parsed
    std::string state;   // running | finished | stopped | failed
    int64_t pid = 0;
    int64_t step = 0;
    int64_t total_steps = 0;
    std::string started, ended, message;  // ended: "" while running
};
RunStatus read_run_status(const std::string& run_dir);

// The checkpoint folder run_dir/checkpoints/latest names (a name relative to
// checkpoints/, or an absolute path; surrounding whitespace is ignored); ""
// when the run has no `latest` yet. Throws when `latest` names a folder that
// does not exist. The one reader of checkpoints/latest.
std::string latest_checkpoint(const std::string& run_dir);

// train_config.json if it holds an object, else the workbench's launch
// config; an empty object if neither.
nlohmann::json read_run_config(const std::string& run_dir);
// The rows of metrics.jsonl that make the run's history (metrics_rows_kept),
// in file order; lines that are not JSON objects (one torn by a kill) are skipped.
std::vector<nlohmann::json> read_metrics(const std::string& run_dir);
// launcher.pid (0 when absent or unreadable) and exit_code (-1 when absent).
int64_t read_launcher_pid(const std::string& run_dir);
int read_exit_code(const std::string& run_dir);
// A folder with status.json, metrics.jsonl, train_config.json or the workbench's launch config.
bool looks_like_run_dir(const std::string& dir);

class RunDir {
public:
    // Creates dir and dir/checkpoints; removes the temporary files
    // (`NAME.tmp.<pid>`) an atomic write killed before its rename left there.
    explicit RunDir(std::string dir);
    ~RunDir();
    RunDir(const RunDir&) = delete;
    RunDir& operator=(const RunDir&) = delete;

    const std::string& path() const { return dir_; }
    std::string checkpoints_dir() const { return dir_ + "/" + run_files::kCheckpoints; }

    // Appends one JSON object as a line and flushes it (fsync is left to
    // checkpoints). Throws write_error's message (the file, the reason, the
    // free space) when the line cannot be written whole.
    void append_metrics(const nlohmann::json& line);
    // On resume from the checkpoint of `step`: rewrites metrics.jsonl to the
    // history up to that step (metrics_rows_kept, then rows with a step <= it;
    // a line torn by a kill is dropped), through a new file renamed over the
    // old, so the redone steps are not appended twice.
    void truncate_metrics(int64_t step);
    // Appends a timestamped line to train.log (and echoes it to stderr when
    // `echo`). Best effort: a line that cannot be written is only echoed.
    void log(const std::string& msg, bool echo = true);
    // status.json: {"state","pid","step","total_steps","started","ended","message"}
    void write_status(const std::string& state, int64_t step, int64_t total_steps, const std::string& message = "");

    // The folder of a new checkpoint, e.g. checkpoints/step_00000100.
    std::string checkpoint_path(int64_t step) const;
    // Publishes a completed checkpoint folder: writes `latest`, then removes
    // all but the newest `keep` step_* folders and stale *.tmp folders.
    void publish_checkpoint(const std::string& ckpt_dir, int64_t keep);
    // The newest complete checkpoint folder (from `latest`), or "" if none.
    std::string latest_checkpoint() const { return base::latest_checkpoint(dir_); }

    static std::string iso8601_now();

    // Test seam (TrainHooks::at_point): called with a name at the points of
    // the writes where a crash test kills the process: "metrics.torn" (half of
    // a metrics line written; with the seam set each line is written in two
    // flushed halves), "metrics.appended", "metrics.truncate.tmp",
    // "status.tmp", "latest.tmp" (the new file complete, not yet renamed),
    // "checkpoint.published", "checkpoint.pruned" (after each removed folder).
    void set_fault_point(std::function<void(const char* point)> f) { fault_point_ = std::move(f); }

private:
    void at(const char* point) const {
        if (fault_point_) fault_point_(point);
    }
    std::function<void(const char*)> fault_point_;
    std::string dir_;
    std::FILE* metrics_ = nullptr;
    std::FILE* log_ = nullptr;
    std::string started_;
};

}  // namespace bimamba::base
