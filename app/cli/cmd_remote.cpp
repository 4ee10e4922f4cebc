// `bimamba hosts list|check` and `bimamba remote launch|status|stop|resume|fetch`:
// training runs on SSH hosts and Slurm clusters (core/base/Hosts.h,
// RemoteRun.h, RemoteOps.h). A remote run is followed through a local
// mirror folder <workspace>/runs/<name> that the workbench lists like any run.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include "app/cli/Command.h"
#include "core/base/FileUtil.h"
#include "core/base/Hosts.h"
#include "core/base/RemoteOps.h"
#include "core/base/RemoteRun.h"
#include "core/base/RunDir.h"
#include "core/base/TrainConfig.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::cli;
namespace fs = std::filesystem;

namespace {

const char* kHostsHelp =
    "usage: bimamba hosts list [--workspace DIR] [--json]   the execution targets of <DIR>/hosts.toml\n"
    "       bimamba hosts check NAME [--workspace DIR]      reach NAME and find bimamba (and Slurm) there\n"
    "hosts.toml: [hosts.NAME] tables, kind = \"ssh\" | \"slurm\" (README: Training on a server or a cluster).\n"
    "SSH runs with BatchMode=yes and StrictHostKeyChecking=yes: keys or an agent, known host keys only.\n";

const char* kRemoteHelp =
    "usage: bimamba remote launch --host NAME --config FILE [--name NAME] [--sync-data] [--follow]\n"
    "       bimamba remote status RUN... [--follow] [--interval SECONDS] [--json]\n"
    "       bimamba remote stop RUN          SIGTERM (Slurm: scancel --signal=TERM): checkpoint, then exit\n"
    "       bimamba remote resume RUN [--follow]   a new process / job continuing from the latest checkpoint\n"
    "       bimamba remote fetch RUN         copy the run folder back, checkpoints included (rsync)\n"
    "  --workspace DIR   hosts.toml and runs/ are there (default: .)\n"
    "  RUN               a mirror folder (<workspace>/runs/<name>, holding remote.json) or its name\n"
    "  --sync-data       copy the config's data folder to <workdir>/data/ on the target first (rsync);\n"
    "                    without it the data folder must exist on the target (relative: to the home folder)\n"
    "  --follow          keep polling until the run ends (metrics.jsonl and status.json are mirrored)\n"
    "Exit status: 0 ok; 1 error; 2 the target was unreachable (status); 3 with --follow: the run failed or was lost.\n";

HostsFile hosts_of(const Options& o) {
    return load_hosts(hosts_path(o.get("workspace", ".")));
}

std::string now_iso() {
    return RunDir::iso8601_now();
}

void print_step(const std::string& what) {
    std::fprintf(stderr, "  %s\n", what.c_str());
}

int run_hosts_list(const Args& args) {
    Options o(args, {"json", "help"});
    if (o.has("help")) return std::printf("%s", kHostsHelp), 0;
    o.check_known({"workspace", "json", "help"});
    const HostsFile f = hosts_of(o);
    if (o.has("json")) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& h : f.hosts) a.push_back(h.to_json());
        std::printf("%s\n", a.dump(2).c_str());
        return 0;
    }
    for (const auto& h : f.hosts) std::printf("%-16s %s\n", h.name.c_str(), h.describe().c_str());
    return 0;
}

int run_hosts_check(const Args& args) {
    Options o(args, {"help"});
    if (o.has("help")) return std::printf("%s", kHostsHelp), 0;
    o.check_known({"workspace", "help"});
    if (o.positional().size() != 1) throw std::invalid_argument(std::string("expected one host name\n") + kHostsHelp);
    const HostsFile f = hosts_of(o);
    const Host& h = f.get(o.positional()[0]);
    if (h.kind == HostKind::Local) {
        std::printf("local: this machine\n");
        return 0;
    }
    // One round trip: the CLI's version, and Slurm's commands where they are needed.
    const char* script = R"SH(cd || exit 1
v=$("$1" --version 2>&1 | head -n 1) || true
if [ -z "$v" ] || ! command -v "$1" >/dev/null 2>&1; then echo "bimamba: NOT FOUND ('$1' on PATH $PATH)"; ok=1; else echo "bimamba: $v"; ok=0; fi
echo "home: $HOME"
if [ "$2" = slurm ]; then
  for c in sbatch squeue sacct scancel; do
    if command -v $c >/dev/null 2>&1; then echo "$c: $(command -v $c)"; else echo "$c: NOT FOUND"; [ $c = sacct ] || ok=1; fi
  done
fi
exit $ok)SH";
    const auto r = run_process(target_script(h, script, {h.bimamba, host_kind_name(h.kind)}), "", 60);
    if (is_connection_failure(h, r.exit_code)) throw std::runtime_error(explain_ssh_failure(h, r.err));
    std::printf("%s: %s\n%s", h.name.c_str(), h.describe().c_str(), r.out.c_str());
    if (r.exit_code != 0) {
        std::fprintf(stderr, "bimamba hosts check: host '%s' is reachable but not ready (see above)%s%s\n",
                     h.name.c_str(), r.err.empty() ? "" : ": ", r.err.c_str());
        return 1;
    }
    std::printf("ok\n");
    return 0;
}

// A run argument: a mirror folder, or a name under <workspace>/runs.
std::string mirror_of(const Options& o, const std::string& run) {
    for (const std::string& d : {run, (fs::path(o.get("workspace", ".")) / "runs" / run).string()}) {
        std::error_code ec;
        if (fs::exists(fs::path(d) / run_files::kRemote, ec)) return fs::absolute(d).lexically_normal().string();
    }
    throw std::invalid_argument("'" + run + "' is not a remote run (no " + run_files::kRemote + " in it or in " +
                                (fs::path(o.get("workspace", ".")) / "runs" / run).string() + ")");
}

struct Poll {
    bool reachable = true;
    std::string error;  // when not reachable
    RemoteState state;
};

// One poll of a run, applied to its mirror; again from 0 when the remote
// metrics file was replaced, and again while more is waiting than one poll carries.
Poll poll_once(const Host& h, const std::string& mirror, RemoteRun& r) {
    Poll out;
    for (int round = 0; round < 1000; ++round) {
        // Test hook: BIMAMBA_TEST_POLL_BYTES caps what one poll carries (default 4 MiB).
        const char* cap = std::getenv("BIMAMBA_TEST_POLL_BYTES");
        const int64_t max_bytes = cap && std::atoll(cap) > 0 ? std::atoll(cap) : int64_t(4) << 20;
        const auto res =
            run_process(target_script(h, poll_script(), poll_args(r, mirror_offset(mirror), max_bytes)), "", 120);
        if (is_connection_failure(h, res.exit_code) || res.exit_code == 124) {
            out.reachable = false;
            out.error = res.exit_code == 124 ? "host '" + h.name + "': no answer within 120 s"
                                             : explain_ssh_failure(h, res.err);
            return out;
        }
        const PollResult p = parse_poll_output(res.out);
        if (!p.ok) {
            out.reachable = false;
            out.error = "host '" + h.name + "': unexpected answer to the poll (exit status " +
                        std::to_string(res.exit_code) + "): " + res.err.substr(0, 500);
            return out;
        }
        const bool again = apply_poll(mirror, r, p);
        write_remote_run(mirror, r);
        out.state = remote_state(r, p);
        if (!again && (p.metrics.empty() || p.metrics_size <= mirror_offset(mirror))) break;
    }
    return out;
}

bool active(const std::string& s) {
    return s == "starting" || s == "pending" || s == "running";
}

void print_state(const std::string& name, const std::string& mirror, const Poll& p, bool json) {
    const RunStatus st = read_run_status(mirror);
    const auto rows = read_metrics(mirror);
    if (json) {
        nlohmann::json j = {{"run", name}, {"mirror", mirror}, {"reachable", p.reachable}};
        if (p.reachable) {
            j["state"] = p.state.state;
            j["message"] = p.state.message;
        } else {
            j["error"] = p.error;
        }
        j["step"] = st.valid ? st.step : 0;
        j["total_steps"] = st.valid ? st.total_steps : 0;
        j["metrics_rows"] = rows.size();
        std::printf("%s\n", j.dump().c_str());
    } else if (!p.reachable) {
        std::printf("%s: unreachable since %s: %s\n", name.c_str(), now_iso().c_str(), p.error.c_str());
    } else {
        std::printf("%s: %s", name.c_str(), p.state.state.c_str());
        if (st.valid) std::printf(", step %lld/%lld", (long long)st.step, (long long)st.total_steps);
        std::printf(", %zu metrics rows", rows.size());
        if (!p.state.message.empty()) std::printf(" (%s)", p.state.message.c_str());
        std::printf("\n");
    }
    std::fflush(stdout);
}

// Polls until the run ends; an unreachable host is retried (the connection
// is re-established by the next ssh).
int follow(const Host& h, const std::string& name, const std::string& mirror, RemoteRun& r, double interval,
           bool json) {
    std::string unreachable_since, last_line;
    for (;;) {
        Poll p = poll_once(h, mirror, r);
        if (!p.reachable) {
            if (unreachable_since.empty()) unreachable_since = now_iso();
            const std::string line = "unreachable since " + unreachable_since + ": " + p.error;
            if (line != last_line) std::printf("%s: %s\n", name.c_str(), line.c_str());
            last_line = line;
            std::fflush(stdout);
        } else {
            if (!unreachable_since.empty()) std::printf("%s: reachable again\n", name.c_str());
            unreachable_since.clear();
            print_state(name, mirror, p, json);
            last_line.clear();
            if (!active(p.state.state)) return p.state.state == "failed" || p.state.state == "lost" ? 3 : 0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long>(interval * 1000)));
    }
}

int run_remote_launch(const Args& args) {
    Options o(args, {"sync-data", "follow", "json", "help"});
    if (o.has("help")) return std::printf("%s", kRemoteHelp), 0;
    o.check_known({"workspace", "host", "config", "name", "sync-data", "follow", "interval", "json", "help"});
    const HostsFile f = hosts_of(o);
    const Host& h = f.get(o.require("host"));
    if (h.kind == HostKind::Local)
        throw std::invalid_argument("host 'local' is this machine: use `bimamba train --config FILE --run-dir DIR`");
    const std::string cfg_path = o.require("config");
    TrainConfig::load(cfg_path);  // refuse an invalid config here, before anything is sent
    const nlohmann::json config = TrainConfig::load(cfg_path).to_json();
    std::string base = o.get("name", fs::path(cfg_path).stem().string());
    base = std::regex_replace(base, std::regex("[^A-Za-z0-9._+-]+"), "_");
    if (base.empty() || base == "." || base == "..") base = "run";
    const fs::path runs = fs::path(o.get("workspace", ".")) / "runs";
    fs::create_directories(runs);
    std::string name = base;
    for (int i = 2; fs::exists(runs / name); ++i) name = base + "-" + std::to_string(i);
    const std::string mirror = fs::absolute(runs / name).lexically_normal().string();
    fs::create_directories(mirror);
    std::fprintf(stderr, "launching %s on host '%s' (%s):\n", name.c_str(), h.name.c_str(), h.describe().c_str());
    RemoteOperation op = RemoteOperation::launch(h, name, config, o.has("sync-data"));
    try {
        op.run_all(print_step);
    } catch (...) {
        remove_tree(mirror);  // nothing was started: leave no half-made mirror behind
        throw;
    }
    write_file_atomic(mirror + "/" + run_files::kLaunchConfig, op.config().dump(2) + "\n");
    write_file_atomic(mirror + "/" + run_files::kWorkbenchMeta,
                      nlohmann::json{{"name", name}, {"host", h.name}}.dump(2) + "\n");
    RemoteRun r = op.run();
    write_remote_run(mirror, r);
    std::printf("launched %s on host '%s': %s (%s); mirror %s\n", name.c_str(), h.name.c_str(), r.remote_dir.c_str(),
                r.kind == "slurm" ? ("Slurm job " + r.job_id).c_str() : ("pid " + std::to_string(r.pid)).c_str(),
                mirror.c_str());
    std::fflush(stdout);
    if (o.has("follow")) return follow(h, name, mirror, r, o.get_double("interval", 2.0), o.has("json"));
    return 0;
}

int run_remote_status(const Args& args) {
    Options o(args, {"follow", "json", "help"});
    if (o.has("help")) return std::printf("%s", kRemoteHelp), 0;
    o.check_known({"workspace", "follow", "interval", "json", "help"});
    if (o.positional().empty()) throw std::invalid_argument(std::string("name one or more runs\n") + kRemoteHelp);
    const HostsFile f = hosts_of(o);
    int rc = 0;
    for (const auto& run : o.positional()) {
        const std::string mirror = mirror_of(o, run);
        RemoteRun r;
        read_remote_run(mirror, &r);
        const Host& h = f.get(r.host);
        const std::string name = fs::path(mirror).filename().string();
        if (o.has("follow")) {
            rc = std::max(rc, follow(h, name, mirror, r, o.get_double("interval", 2.0), o.has("json")));
            continue;
        }
        const Poll p = poll_once(h, mirror, r);
        print_state(name, mirror, p, o.has("json"));
        if (!p.reachable) rc = 2;
    }
    return rc;
}

// The one run a stop/resume/fetch names: its mirror folder, remote record and host.
struct NamedRun {
    std::string mirror;
    RemoteRun run;
    Host host;
};
NamedRun one_named_run(const Options& o) {
    if (o.positional().size() != 1) throw std::invalid_argument(std::string("name one run\n") + kRemoteHelp);
    NamedRun n;
    n.mirror = mirror_of(o, o.positional()[0]);
    read_remote_run(n.mirror, &n.run);
    n.host = hosts_of(o).get(n.run.host);
    return n;
}

int run_remote_stop(const Args& args) {
    Options o(args, {"help"});
    if (o.has("help")) return std::printf("%s", kRemoteHelp), 0;
    o.check_known({"workspace", "help"});
    auto [mirror, r, h] = one_named_run(o);
    RemoteOperation::stop(h, r).run_all();
    std::printf("%s: %s\n", fs::path(mirror).filename().c_str(),
                r.kind == "slurm" ? "scancel sent (a pending job is cancelled; a running one gets SIGTERM, "
                                    "writes a checkpoint, then exits)"
                                  : "SIGTERM sent; the trainer writes a checkpoint, then exits");
    return 0;
}

int run_remote_resume(const Args& args) {
    Options o(args, {"follow", "json", "help"});
    if (o.has("help")) return std::printf("%s", kRemoteHelp), 0;
    o.check_known({"workspace", "follow", "interval", "json", "help"});
    auto [mirror, r, h] = one_named_run(o);
    const std::string name = fs::path(mirror).filename().string();
    // Only a run that has ended is resumed, from a checkpoint that exists.
    Poll p = poll_once(h, mirror, r);
    if (!p.reachable) throw std::runtime_error(p.error);
    if (active(p.state.state)) throw std::invalid_argument(name + " is still " + p.state.state + "; stop it first");
    RemoteOperation op = RemoteOperation::resume(h, r);
    op.run_all(print_step);
    r = op.run();
    write_remote_run(mirror, r);
    std::printf("resumed %s on host '%s' (%s)\n", name.c_str(), h.name.c_str(),
                r.kind == "slurm" ? ("Slurm job " + r.job_id).c_str() : ("pid " + std::to_string(r.pid)).c_str());
    std::fflush(stdout);
    if (o.has("follow")) return follow(h, name, mirror, r, o.get_double("interval", 2.0), o.has("json"));
    return 0;
}

int run_remote_fetch(const Args& args) {
    Options o(args, {"help"});
    if (o.has("help")) return std::printf("%s", kRemoteHelp), 0;
    o.check_known({"workspace", "help"});
    auto [mirror, r, h] = one_named_run(o);
    RemoteOperation::fetch(h, r, mirror).run_all(print_step);
    std::printf("fetched %s into %s\n", r.remote_dir.c_str(), mirror.c_str());
    return 0;
}

CommandRegistrar reg_list{"hosts list", "list the execution targets of hosts.toml (SSH hosts, Slurm clusters)",
                          run_hosts_list};
CommandRegistrar reg_check{"hosts check", "reach a host and find bimamba (and Slurm) there", run_hosts_check};
CommandRegistrar reg_launch{"remote launch", "start a training run on an SSH host or a Slurm cluster",
                            run_remote_launch};
CommandRegistrar reg_status{"remote status", "poll remote runs: state, metrics and status mirrored locally",
                            run_remote_status};
CommandRegistrar reg_stop{"remote stop", "stop a remote run (SIGTERM / scancel --signal=TERM; it checkpoints)",
                          run_remote_stop};
CommandRegistrar reg_resume{"remote resume", "continue a remote run from its latest checkpoint", run_remote_resume};
CommandRegistrar reg_fetch{"remote fetch", "copy a remote run folder back (rsync)", run_remote_fetch};

}  // namespace
