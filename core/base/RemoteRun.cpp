#include "core/base/RemoteRun.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "core/base/FileUtil.h"
#include "core/base/RunDir.h"

namespace bimamba::base {

nlohmann::json RemoteRun::to_json() const {
    nlohmann::json j = {{"host", host}, {"kind", kind}, {"remote_dir", remote_dir}, {"launched", launched}};
    if (pid) j["pid"] = pid;
    if (!job_id.empty()) j["job_id"] = job_id;
    if (!metrics_id.empty()) j["metrics_id"] = metrics_id;
    return j;
}

RemoteRun RemoteRun::from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw std::invalid_argument("remote run record: not a JSON object");
    RemoteRun r;
    for (const char* key : {"host", "kind", "remote_dir"})
        if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty())
            throw std::invalid_argument(std::string("remote run record: field '") + key + "' is missing");
    r.host = j["host"].get<std::string>();
    r.kind = j["kind"].get<std::string>();
    if (r.kind != "ssh" && r.kind != "slurm")
        throw std::invalid_argument("remote run record: field 'kind' must be \"ssh\" or \"slurm\"");
    r.remote_dir = j["remote_dir"].get<std::string>();
    r.pid = j.value("pid", int64_t(0));
    r.job_id = j.value("job_id", std::string());
    r.launched = j.value("launched", std::string());
    r.metrics_id = j.value("metrics_id", std::string());
    return r;
}

bool read_remote_run(const std::string& mirror_dir, RemoteRun* out) {
    const std::string p = mirror_dir + "/" + run_files::kRemote;
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) return false;
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(p));
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(p + ": not valid JSON (" + e.what() + ")");
    }
    try {
        *out = RemoteRun::from_json(j);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(p + ": " + e.what());
    }
    return true;
}

void write_remote_run(const std::string& mirror_dir, const RemoteRun& r) {
    write_file_atomic(mirror_dir + "/" + run_files::kRemote, r.to_json().dump(2) + "\n");
}

std::string remote_run_path(const Host& h, const std::string& name) {
    std::string w = h.workdir;
    // Scripts start in the home folder: "~/x" is "x" there.
    if (w == "~")
        w = ".";
    else if (w.rfind("~/", 0) == 0)
        w = w.substr(2);
    while (w.size() > 1 && w.back() == '/') w.pop_back();
    return w + "/runs/" + name;
}

std::string prepare_dir_script() {
    return R"SH(cd || exit 1
mkdir -p -- "$1" || exit 1
cd -- "$1" || exit 1
for f in status.json metrics.jsonl train_config.json; do
  if [ -e "$f" ]; then echo "the folder $PWD already holds a run ($f); choose another name" >&2; exit 2; fi
done
pwd -P)SH";
}

std::string write_file_script() {
    return R"SH(cat > "$1.tmp.$$" && mv -f -- "$1.tmp.$$" "$1")SH";
}

std::string start_detached_script() {
    // The wrapper records the exit status (nobody waits for a detached
    // process) and forwards SIGTERM/SIGINT to the trainer, as the
    // workbench's local launcher does.
    return R"SH(cd -- "$1" || exit 1
shift
rm -f exit_code
s=
command -v setsid >/dev/null 2>&1 && s=setsid
$s nohup sh -c '"$0" "$@" & c=$!; trap "kill -TERM \$c 2>/dev/null" TERM INT; while :; do wait $c; r=$?; kill -0 $c 2>/dev/null || break; done; echo $r > exit_code.tmp && mv exit_code.tmp exit_code' "$@" </dev/null >>stdout.log 2>>stderr.log &
echo $! > launcher.pid
echo $!)SH";
}

std::string submit_script() {
    return R"SH(cd -- "$1" || exit 1
rm -f exit_code
sbatch --parsable --output=slurm-%j.out job.sbatch)SH";
}

std::string sbatch_script(const Host& h, const std::string& job_name, const std::vector<std::string>& train_args) {
    for (const auto& p : host_problems(h)) throw std::invalid_argument(p);
    std::string name;
    for (char c : job_name)
        name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
    if (name.empty()) name = "bimamba";
    const int tasks = std::max(1, h.gpus_per_node);
    std::ostringstream s;
    s << "#!/bin/bash\n";
    s << "#SBATCH --job-name=" << name << "\n";
    s << "#SBATCH --nodes=" << h.nodes << "\n";
    s << "#SBATCH --ntasks-per-node=" << tasks << "\n";
    if (h.gpus_per_node > 0) s << "#SBATCH --gpus-per-node=" << h.gpus_per_node << "\n";
    if (!h.partition.empty()) s << "#SBATCH --partition=" << h.partition << "\n";
    if (!h.account.empty()) s << "#SBATCH --account=" << h.account << "\n";
    if (!h.time_limit.empty()) s << "#SBATCH --time=" << h.time_limit << "\n";
    for (const auto& x : h.sbatch_extra) s << "#SBATCH " << x << "\n";
    s << "# Written by BiMamba Workbench. One task per GPU: srun starts them, each\n"
         "# maps Slurm's variables onto the trainer's (docs/multi-gpu.md).\n"
         "export MASTER_ADDR=\"$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" 2>/dev/null | head -n 1)\"\n"
         "export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))\n"
         "export WORLD_SIZE=\"$SLURM_NTASKS\"\n"
         "export LOCAL_WORLD_SIZE="
      << tasks << "\n";
    std::vector<std::string> argv = {"srun",
                                     "--kill-on-bad-exit=1",
                                     "sh",
                                     "-c",
                                     "RANK=$SLURM_PROCID LOCAL_RANK=$SLURM_LOCALID exec \"$0\" \"$@\"",
                                     h.bimamba,
                                     "train"};
    argv.insert(argv.end(), train_args.begin(), train_args.end());
    s << shell_join(argv) << "\n";
    s << "r=$?\n"
         "echo $r > exit_code.tmp && mv exit_code.tmp exit_code\n"
         "exit $r\n";
    return s.str();
}

std::string parse_sbatch_job_id(const std::string& out) {
    std::istringstream in(out);
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    last = last.substr(0, last.find(';'));
    while (!last.empty() && std::isspace(static_cast<unsigned char>(last.back()))) last.pop_back();
    if (last.empty() ||
        !std::all_of(last.begin(), last.end(), [](unsigned char c) { return std::isdigit(c) || c == '_'; }))
        throw std::runtime_error("sbatch did not print a job id (it printed: '" + out + "')");
    return last;
}

// The launcher writes exit_code as its last act: with it there, the pid is
// over even while it lingers as a zombie nobody reaps (containers).
std::string stop_script(const Host& h) {
    if (h.kind == HostKind::Slurm)
        // A pending job has no process to signal: cancel it. A running one:
        // SIGTERM to its steps, so the trainer checkpoints and exits.
        return R"SH(st=$(squeue -h -j "$1" -o %T 2>/dev/null | head -n 1)
if [ -z "$st" ]; then echo "Slurm job $1 is not in the queue any more" >&2; exit 3; fi
if [ "$st" = PENDING ]; then exec scancel "$1"; fi
exec scancel --signal=TERM "$1")SH";
    return R"SH(cd -- "$1" || exit 1
p=$(cat launcher.pid 2>/dev/null)
if [ -e exit_code ] || [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; then echo "the run in $PWD is not running" >&2; exit 3; fi
kill -TERM "$p")SH";
}

std::string poll_script() {
    return R"SH(LC_ALL=C; export LC_ALL
echo "@@bimamba-poll 1"
cd -- "$1" 2>/dev/null || { echo "@@nodir"; exit 0; }
o=$2; m=$3
if [ -n "$4" ]; then
  q=$(squeue -h -j "$4" -o '%T|%r' 2>/dev/null | head -n 1)
  if [ -n "$q" ]; then echo "@@squeue $q"
  else
    q=$(sacct -n -P -X -j "$4" -o State,Reason,ExitCode 2>/dev/null | head -n 1)
    if [ -n "$q" ]; then echo "@@sacct $q"
    else echo "@@scontrol $(scontrol show job -o "$4" 2>/dev/null | head -n 1)"; fi
  fi
else
  p=$(cat launcher.pid 2>/dev/null)
  if [ ! -e exit_code ] && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then echo "@@alive 1"; else echo "@@alive 0"; fi
fi
echo "@@exit $(cat exit_code 2>/dev/null)"
if [ -f status.json ]; then echo "@@status $(tr '\n' ' ' < status.json)"; else echo "@@status"; fi
if [ -f "$5" ]; then echo "@@errors $(tail -n 15 -- "$5" | tr '\n' '\036')"; else echo "@@errors"; fi
if [ -f metrics.jsonl ]; then
  i=$(ls -i metrics.jsonl | awk '{print $1}')
  n=$(wc -c < metrics.jsonl | tr -d ' ')
  echo "@@metrics $i $n"
  tail -c +$((o + 1)) metrics.jsonl | head -c "$m"
else
  echo "@@metrics - 0"
fi)SH";
}

std::vector<std::string> poll_args(const RemoteRun& r, int64_t offset, int64_t max_bytes) {
    const bool slurm = r.kind == "slurm";
    return {r.remote_dir, std::to_string(offset), std::to_string(max_bytes), slurm ? r.job_id : "",
            slurm ? "slurm-" + r.job_id + ".out" : run_files::kStderr};
}

SlurmState slurm_state_from_name(const std::string& n0) {
    const std::string n = n0.substr(0, n0.find(' '));  // "CANCELLED by 0"
    if (n == "PENDING" || n == "REQUEUED" || n == "CONFIGURING" || n == "RESIZING" || n == "SUSPENDED")
        return SlurmState::Pending;
    if (n == "RUNNING") return SlurmState::Running;
    if (n == "COMPLETING" || n == "STAGE_OUT") return SlurmState::Completing;
    if (n == "COMPLETED") return SlurmState::Completed;
    if (n == "FAILED" || n == "BOOT_FAIL" || n == "DEADLINE") return SlurmState::Failed;
    if (n == "CANCELLED" || n == "PREEMPTED") return SlurmState::Cancelled;
    if (n == "TIMEOUT") return SlurmState::Timeout;
    if (n == "OUT_OF_MEMORY") return SlurmState::OutOfMemory;
    if (n == "NODE_FAIL") return SlurmState::NodeFail;
    return n.empty() ? SlurmState::None : SlurmState::Other;
}

namespace {
std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

std::string trim(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t i = 0;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    return s.substr(i);
}

// "Reason" columns say "None" when there is none.
std::string reason_or_empty(const std::string& r) {
    const std::string t = trim(r);
    return t == "None" || t == "(null)" ? "" : t;
}
}  // namespace

SlurmJob parse_squeue_line(const std::string& line) {
    const auto f = split(trim(line), '|');
    SlurmJob j;
    j.name = trim(f[0]);
    j.state = slurm_state_from_name(j.name);
    if (f.size() > 1) j.reason = reason_or_empty(f[1]);
    return j;
}

SlurmJob parse_sacct_line(const std::string& line) {
    const auto f = split(trim(line), '|');
    SlurmJob j;
    j.name = trim(f[0]);
    j.state = slurm_state_from_name(j.name);
    j.name = j.name.substr(0, j.name.find(' '));
    if (f.size() > 1) j.reason = reason_or_empty(f[1]);
    if (f.size() > 2) j.exit_code = trim(f[2]);
    return j;
}

namespace {
// `scontrol show job -o ID`: "JobId=5 JobName=x ... JobState=FAILED Reason=NonZeroExitCode ... ExitCode=1:0 ...".
SlurmJob parse_scontrol_line(const std::string& line) {
    SlurmJob j;
    std::istringstream in(line);
    for (std::string tok; in >> tok;) {
        const auto eq = tok.find('=');
        if (eq == std::string::npos) continue;
        const std::string k = tok.substr(0, eq), v = tok.substr(eq + 1);
        if (k == "JobState") {
            j.name = v;
            j.state = slurm_state_from_name(v);
        } else if (k == "Reason") {
            j.reason = reason_or_empty(v);
        } else if (k == "ExitCode") {
            j.exit_code = v;
        }
    }
    return j;
}
}  // namespace

PollResult parse_poll_output(const std::string& out) {
    PollResult p;
    size_t pos = 0;
    bool header = false;
    while (pos < out.size()) {
        const size_t nl = out.find('\n', pos);
        if (nl == std::string::npos) break;
        const std::string line = out.substr(pos, nl - pos);
        pos = nl + 1;
        auto value = [&](const char* tag) -> std::optional<std::string> {
            const std::string t = tag;
            if (line == t) return std::string();
            if (line.rfind(t + " ", 0) == 0) return line.substr(t.size() + 1);
            return std::nullopt;
        };
        if (line == "@@bimamba-poll 1") {
            header = true;
        } else if (!header) {
            continue;  // a login banner or motd before the answer
        } else if (line == "@@nodir") {
            p.dir_exists = false;
            p.ok = true;
            return p;
        } else if (auto v = value("@@alive")) {
            p.have_process = true;
            p.process_alive = *v == "1";
        } else if (auto v = value("@@squeue")) {
            p.job = parse_squeue_line(*v);
        } else if (auto v = value("@@sacct")) {
            p.job = parse_sacct_line(*v);
        } else if (auto v = value("@@scontrol")) {
            p.job = parse_scontrol_line(*v);
        } else if (auto v = value("@@exit")) {
            const std::string t = trim(*v);
            if (!t.empty() && std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isdigit(c); }))
                p.exit_code = std::stoi(t.substr(0, 6));
        } else if (auto v = value("@@status")) {
            p.status_json = trim(*v);
        } else if (auto v = value("@@errors")) {
            std::string e = *v;
            std::replace(e.begin(), e.end(), '\036', '\n');
            p.error_tail = trim(e);
        } else if (auto v = value("@@metrics")) {
            std::istringstream in(*v);
            std::string id;
            long long size = 0;
            in >> id >> size;
            if (id != "-") p.metrics_id = id;
            p.metrics_size = size;
            p.metrics = out.substr(pos);
            p.ok = true;
            return p;
        }
    }
    return p;  // cut short: not ok
}

namespace {
RunStatus status_from_text(const std::string& text) {
    RunStatus s;
    if (text.empty()) return s;
    try {
        const auto j = nlohmann::json::parse(text);
        if (!j.is_object()) return s;
        // "ended" is null while running: a field of another type reads as empty.
        auto str = [&](const char* k) {
            return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
        };
        auto num = [&](const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<int64_t>() : int64_t(0); };
        s.state = str("state");
        s.step = num("step");
        s.total_steps = num("total_steps");
        s.started = str("started");
        s.ended = str("ended");
        s.message = str("message");
        s.valid = !s.state.empty();
    } catch (const std::exception&) {
    }
    return s;
}

bool terminal(const std::string& st) {
    return st == "finished" || st == "stopped" || st == "failed";
}

std::string failure_message(int exit_code, const RunStatus& st, const std::string& tail) {
    std::string msg = exit_code >= 0 ? "exit code " + std::to_string(exit_code) : std::string();
    if (st.valid && !st.message.empty()) msg += (msg.empty() ? "" : ": ") + st.message;
    if (!tail.empty()) msg += (msg.empty() ? "" : "\n") + tail;
    return msg;
}
}  // namespace

RemoteState remote_state(const RemoteRun& r, const PollResult& p) {
    if (!p.dir_exists) return {"lost", "the run folder " + r.remote_dir + " is gone on host '" + r.host + "'"};
    const RunStatus st = status_from_text(p.status_json);
    // A status.json that ended before the latest launch is the previous
    // process's (a resumed run before its trainer rewrote it).
    const bool stale =
        st.valid && terminal(st.state) && !r.launched.empty() && !st.ended.empty() && st.ended < r.launched;
    // While the process (or job) lives, a final state in status.json is the
    // previous process's (a resumed run before its trainer rewrote it; the
    // times above have whole seconds only), or the trainer has just ended
    // and its launcher is writing exit_code: either way, not over yet.
    const std::string live = !st.valid || stale || terminal(st.state) ? "starting" : st.state;
    if (r.kind == "slurm") {
        const SlurmJob& j = p.job;
        const std::string slurm =
            "Slurm job " + r.job_id + ": " + j.name + (j.reason.empty() ? "" : " (" + j.reason + ")");
        if (j.state == SlurmState::Pending) return {"pending", slurm};
        if (j.state == SlurmState::Running) return {live, live == "starting" ? "" : st.message};
        if (j.state == SlurmState::Completing && !(st.valid && terminal(st.state))) return {"running", slurm};
        // The job is over (or Slurm forgot it): what the trainer and the batch script left.
        const bool slurm_failure = j.state == SlurmState::Failed || j.state == SlurmState::Timeout ||
                                   j.state == SlurmState::OutOfMemory || j.state == SlurmState::NodeFail ||
                                   j.state == SlurmState::Other;
        if (p.exit_code == 0 && !stale && st.valid && terminal(st.state) && st.state != "failed")
            return {st.state, slurm_failure ? slurm : st.message};
        if (j.state == SlurmState::Cancelled && !st.valid) return {"stopped", slurm + ", before training started"};
        if (j.state == SlurmState::None && p.exit_code < 0)
            return {"lost", "Slurm no longer knows job " + r.job_id + " and it left no exit code"};
        std::string msg = j.state == SlurmState::None ? std::string() : slurm;
        const std::string f = failure_message(p.exit_code, st, p.error_tail);
        if (!f.empty()) msg += (msg.empty() ? "" : "\n") + f;
        return {"failed", msg};
    }
    if (p.process_alive) return {live, live == "starting" ? "" : st.message};
    if (p.exit_code == 0 && st.valid && !stale && terminal(st.state)) return {st.state, st.message};
    if (p.exit_code > 0 || (p.exit_code == 0 && st.valid && st.state == "failed"))
        return {"failed", failure_message(p.exit_code, st, p.error_tail)};
    if (p.exit_code == 0)
        return {"failed", failure_message(0, st, p.error_tail) + "\n(the trainer exited without a final status)"};
    return {"lost", "the launcher (pid " + std::to_string(r.pid) + ") on host '" + r.host +
                        "' is gone and left no exit code (was the machine restarted?)"};
}

int64_t mirror_offset(const std::string& mirror_dir) {
    struct stat st {};
    const std::string p = mirror_dir + "/" + run_files::kMetrics;
    return ::stat(p.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

bool apply_poll(const std::string& mirror_dir, RemoteRun& r, const PollResult& p) {
    if (!p.ok || !p.dir_exists) return false;
    const std::string mpath = mirror_dir + "/" + run_files::kMetrics;
    if (!p.metrics_id.empty()) {
        const int64_t offset = mirror_offset(mirror_dir);
        if ((!r.metrics_id.empty() && r.metrics_id != p.metrics_id) || p.metrics_size < offset) {
            // Replaced (a resume rewrites it) or shortened: read it again from the start.
            std::ofstream(mpath, std::ios::binary | std::ios::trunc);
            r.metrics_id = p.metrics_id;
            return true;
        }
        r.metrics_id = p.metrics_id;
        if (!p.metrics.empty()) {
            std::ofstream out(mpath, std::ios::binary | std::ios::app);
            out.write(p.metrics.data(), static_cast<std::streamsize>(p.metrics.size()));
            if (!out) throw std::runtime_error("cannot append to " + mpath);
        }
    }
    if (!p.status_json.empty()) {
        try {
            const auto j = nlohmann::json::parse(p.status_json);
            if (j.is_object()) {
                const std::string path = mirror_dir + "/" + run_files::kStatus;
                std::string old;
                try {
                    old = read_file(path);
                } catch (const std::exception&) {
                }
                const std::string now = j.dump(2) + "\n";
                if (old != now) write_file_atomic(path, now);
            }
        } catch (const nlohmann::json::exception&) {
            // torn or half written: the next poll reads it again
        }
    }
    return false;
}

}  // namespace bimamba::base
