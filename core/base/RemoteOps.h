#pragma once
// The operations on a remote run (launch, resume, stop, fetch) as sequences
// of steps: each step is an argument vector (and stdin) to run; its result
// decides the next one. The CLI runs the steps one after the other
// (run_process); the workbench runs each as a QProcess, so its event loop
// never waits. Plain C++, no LibTorch.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/base/Hosts.h"
#include "core/base/Process.h"
#include "core/base/RemoteRun.h"

namespace bimamba::base {

struct RemoteStep {
    std::string what;  // "create the run folder", for progress and errors
    std::vector<std::string> argv;
    std::string input;  // written to its stdin
};

class RemoteOperation {
public:
    // A new run `name` on `h` with `config` (a train config object). Its data
    // folder is resolved on the target (relative: to the home folder there)
    // and must exist there, or with `sync_data` the local folder `data`
    // names is copied first (rsync, to <workdir>/data/<its name>-<tag of its
    // path here>, an exact copy of it) and the
    // config sent points at the copy.
    static RemoteOperation launch(const Host& h, const std::string& name, const nlohmann::json& config, bool sync_data);
    // `bimamba train --resume` of `r` (a new process or job; the trainer
    // continues from the run's latest checkpoint). Refused, before anything
    // starts, when the run folder there has no checkpoints/latest.
    static RemoteOperation resume(const Host& h, const RemoteRun& r);
    // SIGTERM: the trainer writes a checkpoint and exits (Slurm: scancel --signal=TERM).
    static RemoteOperation stop(const Host& h, const RemoteRun& r);
    // The whole run folder (checkpoints included) into `mirror_dir` (rsync).
    static RemoteOperation fetch(const Host& h, const RemoteRun& r, const std::string& mirror_dir);

    bool done() const { return stage_ >= stages_.size(); }
    RemoteStep next() const;
    // Takes the result of next()'s step; throws std::runtime_error saying what
    // failed (ssh's connection errors explained, the command's stderr).
    void finish(const ProcessResult& res);
    const RemoteRun& run() const { return run_; }
    const nlohmann::json& config() const { return config_; }  // the config as sent
    // Runs every step with run_process (the CLI); `progress` sees each step's `what`.
    void run_all(void (*progress)(const std::string& what) = nullptr);

private:
    enum class Stage {
        CheckCheckpoint,
        PrepareDir,
        ResolveData,
        MakeDataDir,
        SyncData,
        WriteConfig,
        WriteSbatch,
        Submit,
        Start,
        Stop,
        Fetch
    };
    RemoteOperation(const Host& h) : host_(h) {}
    Host host_;
    std::vector<Stage> stages_;
    size_t stage_ = 0;
    RemoteRun run_;
    nlohmann::json config_;
    std::string name_, local_data_, remote_data_, mirror_;
    bool resume_ = false;
};

}  // namespace bimamba::base
