#pragma once
// A training run on another machine (an SSH host or a Slurm cluster, see
// Hosts.h), followed through a local mirror folder: <workspace>/runs/<name>
// holds remote.json (this record) and copies of the remote run's status.json
// and metrics.jsonl. metrics.jsonl is mirrored byte for byte and tailed from
// the mirror's size, so the mirror is read like any local run. The CLI
// (`bimamba remote …`) and the workbench share these steps; each step is an
// argument vector to run (target_script) and a function that reads its output.
// Plain C++, no LibTorch.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/base/Hosts.h"

namespace bimamba::base {

namespace run_files {
inline constexpr const char* kRemote = "remote.json";       // in a local mirror: the RemoteRun
inline constexpr const char* kSbatchScript = "job.sbatch";  // in a remote Slurm run folder
}  // namespace run_files

struct RemoteRun {
    std::string host;        // its name in hosts.toml
    std::string kind;        // "ssh" | "slurm"
    std::string remote_dir;  // absolute path of the run folder on the target
    int64_t pid = 0;         // ssh: the launcher's pid there
    std::string job_id;      // slurm
    std::string launched;    // ISO 8601, of the latest launch (or resume)
    std::string metrics_id;  // inode of the remote metrics.jsonl the mirror copies
    nlohmann::json to_json() const;
    static RemoteRun from_json(const nlohmann::json& j);  // throws naming the missing field
};
// remote.json of a mirror folder; read_remote_run returns false when there is none.
bool read_remote_run(const std::string& mirror_dir, RemoteRun* out);
void write_remote_run(const std::string& mirror_dir, const RemoteRun& r);

// --- launch ---------------------------------------------------------------
// The run folder for `name` on the target: <workdir>/runs/<name> ("~/" and
// relative workdirs are relative to the home folder there).
std::string remote_run_path(const Host& h, const std::string& name);
// Creates the remote run folder (refusing one that already holds a run) and
// prints its absolute path: args {dir}.
std::string prepare_dir_script();
// Writes stdin to a file: args {path}.
std::string write_file_script();
// Starts `argv` detached (setsid, nohup; survives the connection) in the run
// folder with stdout.log / stderr.log, records exit_code when it ends and
// forwards SIGTERM to it; prints the launcher's pid. args {dir, argv...}.
std::string start_detached_script();
// Submits <dir>/job.sbatch; prints the job id. args {dir}.
std::string submit_script();
// The sbatch script of a run: one task per GPU (or one per node when
// gpus_per_node is 0), srun starting `bimamba train` with RANK / LOCAL_RANK /
// WORLD_SIZE / MASTER_ADDR / MASTER_PORT taken from the allocation.
// `train_args` follow `bimamba train`. Throws when a Slurm field cannot be an #SBATCH line.
std::string sbatch_script(const Host& h, const std::string& job_name, const std::vector<std::string>& train_args);
// The job id in `sbatch --parsable`'s output ("1234" or "1234;cluster").
std::string parse_sbatch_job_id(const std::string& out);

// --- stop ----------------------------------------------------------------
// ssh: SIGTERM to the launcher named by <dir>/launcher.pid; args {dir}.
// slurm: scancel --signal=TERM to the job's steps; args {job id}.
std::string stop_script(const Host& h);

// --- monitor ---------------------------------------------------------------
// One round trip: job or process state, exit_code, status.json, the tail of
// the error log and the metrics.jsonl bytes after `offset` (at most
// `max_bytes`). args from poll_args().
std::string poll_script();
std::vector<std::string> poll_args(const RemoteRun& r, int64_t offset, int64_t max_bytes = 4 << 20);

enum class SlurmState {
    None,
    Pending,
    Running,
    Completing,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    OutOfMemory,
    NodeFail,
    Other
};
struct SlurmJob {
    SlurmState state = SlurmState::None;
    std::string name;       // as Slurm writes it: PENDING, OUT_OF_MEMORY, ...
    std::string reason;     // squeue's %r (PENDING: Resources, Priority, ...) or sacct's Reason
    std::string exit_code;  // sacct's ExitCode ("0:0", "1:0", "0:9")
    bool active() const {
        return state == SlurmState::Pending || state == SlurmState::Running || state == SlurmState::Completing;
    }
};
SlurmState slurm_state_from_name(const std::string& name);  // "CANCELLED by 0" -> Cancelled
// A line of `squeue -h -o '%T|%r'` or `sacct -n -P -X -o State,Reason,ExitCode`.
SlurmJob parse_squeue_line(const std::string& line);
SlurmJob parse_sacct_line(const std::string& line);

struct PollResult {
    bool ok = false;  // the output was a complete poll answer
    bool dir_exists = true;
    bool have_process = false;  // ssh: whether the launcher process answers
    bool process_alive = false;
    SlurmJob job;
    int exit_code = -1;       // exit_code file; -1 when absent
    std::string status_json;  // status.json as text; "" when absent
    std::string error_tail;   // last lines of stderr.log / the Slurm output file
    std::string metrics_id;   // inode of metrics.jsonl; "" when absent
    int64_t metrics_size = 0;
    std::string metrics;  // bytes after the offset asked for
};
PollResult parse_poll_output(const std::string& out);

// What a run's state is, from a poll: state is one of the run states
// (starting, pending, running, finished, stopped, failed, lost) and message
// says why (Slurm's state and reason, the exit code and error tail).
struct RemoteState {
    std::string state, message;
};
RemoteState remote_state(const RemoteRun& r, const PollResult& p);

// Applies a poll to the mirror folder: appends the metrics bytes (or, when
// the remote metrics.jsonl was replaced or shortened, empties the mirror's
// copy so that the next poll reads it again from 0: returns true then),
// writes status.json, stores the metrics file id in `r`.
bool apply_poll(const std::string& mirror_dir, RemoteRun& r, const PollResult& p);
// The byte offset the next poll asks from: the mirror's metrics.jsonl size.
int64_t mirror_offset(const std::string& mirror_dir);

}  // namespace bimamba::base
