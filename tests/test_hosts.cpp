// Hosts and remote runs (core/base/Hosts, core/base/RemoteRun): hosts.toml,
// the one quoting function against hostile names, the ssh / rsync argument
// vectors, the sbatch script (run by bash with fake srun / scontrol), the
// scripts the CLI and the workbench run on a target (run here, on this
// machine, through `sh -c` exactly as over ssh), Slurm state parsing and the
// run state a poll gives. The real ssh and Slurm flows are in tests/remote/.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/base/FileUtil.h"
#include "core/base/Hosts.h"
#include "core/base/Process.h"
#include "core/base/RemoteOps.h"
#include "core/base/RemoteRun.h"
#include "core/base/RunDir.h"

using namespace bimamba;
using namespace bimamba::base;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kHostile = {
    "plain",
    "with space",
    "it's",
    "\"double\"",
    "a;b",
    "$(touch /tmp/bimamba-pwned)",
    "`id`",
    "back\\slash",
    "new\nline",
    "tab\there",
    "*",
    "~",
    "-n",
    "$HOME",
    "'",
    "''",
    "a'b\"c$d`e\\f;g|h&i>j<k(l)m{n}o!p#q",
    "",
    "ünïcödé",
};

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/bimamba-hosts-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { remove_tree(path); }
};

void write(const fs::path& p, const std::string& s) {
    std::ofstream(p, std::ios::binary) << s;
}

Host local_sh() {
    Host h;
    h.name = "here";
    h.kind = HostKind::Ssh;  // without `host`: the scripts run on this machine
    return h;
}

}  // namespace

TEST(ShellQuote, HostileWordsSurviveShC) {
    for (const auto& s : kHostile) {
        const auto r = run_process({"sh", "-c", "printf '%s' " + shell_quote(s)});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out, s) << "quoted as " << shell_quote(s);
    }
    EXPECT_FALSE(fs::exists("/tmp/bimamba-pwned"));
    EXPECT_EQ(shell_quote("simple-path/x.json"), "simple-path/x.json");
    EXPECT_EQ(shell_quote("X=1"), "'X=1'");  // never an assignment in command position
    EXPECT_EQ(shell_quote(""), "''");
}

TEST(ShellQuote, JoinedArgvKeepsEveryWord) {
    // Every hostile word as a positional parameter of a constant script:
    // the path each remote command takes.
    std::vector<std::string> argv = {"sh", "-c", "for a; do printf '%s\\0' \"$a\"; done", "sh"};
    argv.insert(argv.end(), kHostile.begin(), kHostile.end());
    const auto r = run_process({"sh", "-c", shell_join(argv)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> got;
    size_t pos = 0;
    for (size_t z; (z = r.out.find('\0', pos)) != std::string::npos; pos = z + 1)
        got.push_back(r.out.substr(pos, z - pos));
    EXPECT_EQ(got, kHostile);
    // and through target_script, as the CLI and the workbench run them
    const auto t = run_process(target_script(local_sh(), "printf '%s|%s' \"$1\" \"$2\"", {kHostile[5], kHostile[8]}));
    EXPECT_EQ(t.out, kHostile[5] + "|" + kHostile[8]);
}

TEST(Hosts, ParsesAFileAndWritesItBack) {
    const std::string text = R"(
[hosts.gpu-box]
kind = "ssh"
host = "gpu1.example.org"
user = "alice"
port = 2222
identity_file = "~/.ssh/id_ed25519"
bimamba = "/opt/bimamba/bin/bimamba"
workdir = "/scratch/alice/bm"

[hosts.cluster]
kind = "slurm"
host = "login.example.org"
partition = "gpu"
account = "proj42"
time = "12:00:00"
nodes = 2
gpus_per_node = 4
sbatch = ["--qos=high", "--constraint=h100"]

[hosts.here-slurm]
kind = "slurm"
)";
    const HostsFile f = parse_hosts(text, "hosts.toml");
    ASSERT_EQ(f.hosts.size(), 4u);
    EXPECT_EQ(f.hosts[0].name, "local");
    const Host& g = f.get("gpu-box");
    EXPECT_EQ(g.kind, HostKind::Ssh);
    EXPECT_EQ(g.destination(), "alice@gpu1.example.org");
    EXPECT_EQ(g.port, 2222);
    EXPECT_EQ(g.bimamba, "/opt/bimamba/bin/bimamba");
    const Host& c = f.get("cluster");
    EXPECT_EQ(c.kind, HostKind::Slurm);
    EXPECT_EQ(c.nodes, 2);
    EXPECT_EQ(c.gpus_per_node, 4);
    EXPECT_EQ(c.sbatch_extra, (std::vector<std::string>{"--qos=high", "--constraint=h100"}));
    EXPECT_FALSE(f.get("here-slurm").over_ssh());
    EXPECT_EQ(f.get("here-slurm").workdir, "bimamba");
    // written back and read again: the same hosts
    const HostsFile again = parse_hosts(hosts_to_toml(f.hosts), "again");
    ASSERT_EQ(again.hosts.size(), f.hosts.size());
    for (size_t i = 0; i < f.hosts.size(); ++i) EXPECT_EQ(again.hosts[i].to_json(), f.hosts[i].to_json());
    try {
        f.get("nope");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(
            std::string(e.what()).find("no host 'nope' in hosts.toml (known: local, cluster, gpu-box, here-slurm)"),
            std::string::npos);
    }
}

TEST(Hosts, BadFilesNameTheHostAndField) {
    auto error = [](const std::string& text) {
        try {
            parse_hosts(text, "ws/hosts.toml");
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    EXPECT_EQ(error("[hosts.a]\nkind = \"ssh\"\n"),
              "ws/hosts.toml: host 'a': field 'host' is required for kind = \"ssh\"");
    EXPECT_EQ(error("[hosts.a]\nhost = \"x\"\n"),
              "ws/hosts.toml: host 'a': field 'kind' must be \"ssh\" or \"slurm\" (it is missing)");
    EXPECT_EQ(error("[hosts.a]\nkind = \"ssh\"\nhost = \"x\"\nprot = 22\n"),
              "ws/hosts.toml: host 'a': unknown field 'prot'");
    EXPECT_EQ(error("[hosts.a]\nkind = \"ssh\"\nhost = \"x\"\nport = \"22\"\n"),
              "ws/hosts.toml: host 'a': field 'port' must be an integer");
    EXPECT_EQ(error("[hosts.a]\nkind = \"ssh\"\nhost = \"x\"\nport = 70000\n"),
              "ws/hosts.toml: host 'a': field 'port' must be between 1 and 65535");
    EXPECT_EQ(error("[hosts.local]\nkind = \"ssh\"\nhost = \"x\"\n"),
              "ws/hosts.toml: host 'local': 'local' is built in (this machine) and cannot be redefined");
    EXPECT_NE(
        error("[hosts.a]\nkind = \"ssh\"\nhost = \"-oProxyCommand=evil\"\n").find("field 'host' must be a host name"),
        std::string::npos);
    EXPECT_NE(error("[hosts.a]\nkind = \"ssh\"\nhost = \"x\"\nuser = \"a b\"\n").find("field 'user'"),
              std::string::npos);
    EXPECT_NE(error("[hosts.a]\nkind = \"slurm\"\npartition = \"gpu\\n#SBATCH --x\"\n")
                  .find("field 'partition' must be one word"),
              std::string::npos);
    EXPECT_NE(error("[hosts.a]\nkind = \"slurm\"\nsbatch = [\"qos=x\"]\n").find("field 'sbatch'"), std::string::npos);
    EXPECT_NE(
        error("[hosts.a]\nkind = \"ssh\"\nhost = \"x\"\npartition = \"gpu\"\n").find("belong to kind = \"slurm\""),
        std::string::npos);
    EXPECT_NE(error("[hosts.\"a b\"]\nkind = \"ssh\"\nhost = \"x\"\n").find("the name may hold only"),
              std::string::npos);
    EXPECT_NE(error("[other]\n").find("unknown table or field 'other'"), std::string::npos);
    EXPECT_NE(error("[hosts.a\n").find("cannot parse TOML ws/hosts.toml (line 1"), std::string::npos);
    // no file: only `local`
    EXPECT_EQ(load_hosts("/nonexistent/hosts.toml").hosts.size(), 1u);
}

TEST(Hosts, SshArgvIsSafeByDefault) {
    TempDir t;
    setenv("BIMAMBA_SSH_CONTROL_DIR", (t.path / "ctl").c_str(), 1);
    Host h;
    h.name = "g";
    h.kind = HostKind::Ssh;
    h.host = "gpu1";
    h.user = "alice";
    h.port = 2222;
    h.identity_file = "/keys/my key";
    const auto a = target_argv(h, {"sh", "-c", "echo \"$1\"", "sh", "a b;c"});
    auto has = [&](const std::string& opt) { return std::find(a.begin(), a.end(), opt) != a.end(); };
    EXPECT_EQ(a[0], "ssh");
    EXPECT_TRUE(has("BatchMode=yes"));
    EXPECT_TRUE(has("StrictHostKeyChecking=yes"));
    EXPECT_TRUE(has("ControlMaster=auto"));
    EXPECT_TRUE(has("ControlPersist=600"));
    const auto cp =
        std::find_if(a.begin(), a.end(), [](const std::string& s) { return s.rfind("ControlPath=", 0) == 0; });
    ASSERT_NE(cp, a.end());
    EXPECT_EQ(cp->rfind("ControlPath=" + (t.path / "ctl").string() + "/%C-", 0), 0u);
    // another entry for the same user@host:port with another known_hosts never shares its connection
    Host other = h;
    other.name = "g2";
    other.known_hosts = "/empty";
    const auto b = ssh_options(other);
    EXPECT_EQ(std::find(b.begin(), b.end(), *cp), b.end());
    EXPECT_TRUE(has("/keys/my key"));
    EXPECT_TRUE(has("2222"));
    struct stat st {};
    ASSERT_EQ(::stat((t.path / "ctl").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_GE(a.size(), 3u);
    EXPECT_EQ(a[a.size() - 3], "--");
    EXPECT_EQ(a[a.size() - 2], "gpu1");
    EXPECT_EQ(a.back(), "sh -c 'echo \"$1\"' sh 'a b;c'");
    // rsync over the same connection options, remote path protected
    const auto r = rsync_argv(h, "remote:/runs/a b/", "/local/a b/");
    EXPECT_EQ(r.front(), "rsync");
    EXPECT_NE(std::find(r.begin(), r.end(), "--protect-args"), r.end());
    EXPECT_EQ(r[r.size() - 2], "gpu1:/runs/a b/");
    EXPECT_EQ(r.back(), "/local/a b/");
    const auto e = std::find(r.begin(), r.end(), "-e");
    ASSERT_NE(e, r.end());
    EXPECT_NE(e[1].find("'/keys/my key'"), std::string::npos);
    EXPECT_NE(e[1].find("StrictHostKeyChecking=yes"), std::string::npos);
    // without a host: plain commands on this machine
    Host l;
    l.kind = HostKind::Slurm;
    EXPECT_EQ(target_argv(l, {"squeue"}), std::vector<std::string>{"squeue"});
    EXPECT_EQ(rsync_argv(l, "remote:/a/", "/b/").back(), "/b/");
    unsetenv("BIMAMBA_SSH_CONTROL_DIR");
}

TEST(Hosts, ExplainsSshFailures) {
    Host h;
    h.name = "g";
    h.kind = HostKind::Ssh;
    h.host = "gpu1";
    EXPECT_NE(explain_ssh_failure(
                  h,
                  "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n"
                  "Host key verification failed.\n")
                  .find("host key is not known"),
              std::string::npos);
    EXPECT_NE(explain_ssh_failure(h, "user@gpu1: Permission denied (publickey).\n").find("never asks for a password"),
              std::string::npos);
    EXPECT_NE(
        explain_ssh_failure(h, "ssh: connect to host gpu1 port 22: Connection refused\n").find("connection refused"),
        std::string::npos);
}

TEST(Sbatch, ScriptMapsSlurmVariablesOntoTheTrainers) {
    TempDir t;
    Host h;
    h.name = "c";
    h.kind = HostKind::Slurm;
    h.partition = "gpu";
    h.account = "p42";
    h.time_limit = "1:00:00";
    h.nodes = 2;
    h.gpus_per_node = 4;
    h.sbatch_extra = {"--qos=high"};
    h.bimamba = (t.path / "bin dir/bimamba").string();
    const std::string s = sbatch_script(h, "my run;1", {"--config", "/r/a b/c.json", "--run-dir", "/r/a b"});
    EXPECT_EQ(s.rfind("#!/bin/bash\n", 0), 0u);
    for (const char* line : {"#SBATCH --job-name=my_run_1\n", "#SBATCH --nodes=2\n", "#SBATCH --ntasks-per-node=4\n",
                             "#SBATCH --gpus-per-node=4\n", "#SBATCH --partition=gpu\n", "#SBATCH --account=p42\n",
                             "#SBATCH --time=1:00:00\n", "#SBATCH --qos=high\n"})
        EXPECT_NE(s.find(line), std::string::npos) << line;
    // Run it: fake srun (task 3 of 8 on its node's local rank 3) and scontrol;
    // the fake bimamba records what it was given.
    fs::create_directories(t.path / "bin dir");
    fs::create_directories(t.path / "shims");
    write(t.path / "shims/srun",
          "#!/bin/sh\nwhile [ \"${1#-}\" != \"$1\" ]; do shift; done\n"
          "SLURM_PROCID=3 SLURM_LOCALID=3 exec \"$@\"\n");
    write(t.path / "shims/scontrol", "#!/bin/sh\n[ \"$1 $2\" = \"show hostnames\" ] && printf 'node7\\nnode8\\n'\n");
    write(h.bimamba,
          "#!/bin/sh\n{ echo \"RANK=$RANK LOCAL_RANK=$LOCAL_RANK WORLD_SIZE=$WORLD_SIZE "
          "LOCAL_WORLD_SIZE=$LOCAL_WORLD_SIZE MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$MASTER_PORT\"; "
          "for a; do echo \"[$a]\"; done; } > args.txt\nexit 3\n");
    write(t.path / "job.sbatch", s);
    for (auto p : {t.path / "shims/srun", t.path / "shims/scontrol", fs::path(h.bimamba)})
        fs::permissions(p, fs::perms::owner_all);
    const std::string env = "PATH=" + (t.path / "shims").string() + ":/usr/bin:/bin";
    const auto r = run_process({"env", env, "SLURM_JOB_NODELIST=node[7-8]", "SLURM_JOB_ID=123", "SLURM_NTASKS=8", "sh",
                                "-c", "cd \"$1\" && bash job.sbatch", "sh", t.path.string()});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_EQ(read_file((t.path / "args.txt").string()),
              "RANK=3 LOCAL_RANK=3 WORLD_SIZE=8 LOCAL_WORLD_SIZE=4 MASTER_ADDR=node7 MASTER_PORT=20123\n"
              "[train]\n[--config]\n[/r/a b/c.json]\n[--run-dir]\n[/r/a b]\n");
    EXPECT_EQ(read_file((t.path / "exit_code").string()), "3\n");
    // a field that would break out of its #SBATCH line is refused
    h.partition = "gpu\n#SBATCH --x";
    EXPECT_THROW(sbatch_script(h, "x", {}), std::invalid_argument);
    EXPECT_EQ(parse_sbatch_job_id("Submitted\n4242;cluster\n"), "4242");
    EXPECT_EQ(parse_sbatch_job_id("77\n"), "77");
    EXPECT_THROW(parse_sbatch_job_id("sbatch: error: invalid partition\n"), std::runtime_error);
}

TEST(Slurm, ParsesQueueAndAccountingLines) {
    auto q = parse_squeue_line("PENDING|Resources\n");
    EXPECT_EQ(q.state, SlurmState::Pending);
    EXPECT_EQ(q.reason, "Resources");
    EXPECT_TRUE(q.active());
    q = parse_squeue_line("RUNNING|None");
    EXPECT_EQ(q.state, SlurmState::Running);
    EXPECT_EQ(q.reason, "");
    EXPECT_EQ(parse_squeue_line("COMPLETING|None").state, SlurmState::Completing);
    auto a = parse_sacct_line("CANCELLED by 1000|None|0:15");
    EXPECT_EQ(a.state, SlurmState::Cancelled);
    EXPECT_EQ(a.name, "CANCELLED");
    EXPECT_EQ(a.exit_code, "0:15");
    EXPECT_EQ(parse_sacct_line("TIMEOUT|None|0:0").state, SlurmState::Timeout);
    EXPECT_EQ(parse_sacct_line("OUT_OF_MEMORY|None|0:125").state, SlurmState::OutOfMemory);
    EXPECT_EQ(parse_sacct_line("FAILED|NonZeroExitCode|1:0").reason, "NonZeroExitCode");
    EXPECT_EQ(parse_sacct_line("NODE_FAIL|None|0:0").state, SlurmState::NodeFail);
    EXPECT_EQ(slurm_state_from_name(""), SlurmState::None);
}

TEST(RemotePoll, ParsesAnAnswerAndItsMetricsBytes) {
    const std::string out =
        "Welcome to the cluster\n@@bimamba-poll 1\n@@squeue PENDING|QOSMaxJobsPerUserLimit\n@@exit \n"
        "@@status {\"state\": \"running\",  \"step\": 5} \n@@errors line one\036line @@metrics 2\036\n"
        "@@metrics 4711 120\n{\"step\":4}\n{\"step\":5,\"loss\":1.0}\n@@metrics not a tag\n";
    const PollResult p = parse_poll_output(out);
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.job.state, SlurmState::Pending);
    EXPECT_EQ(p.job.reason, "QOSMaxJobsPerUserLimit");
    EXPECT_EQ(p.exit_code, -1);
    EXPECT_EQ(p.error_tail, "line one\nline @@metrics 2");
    EXPECT_EQ(p.metrics_id, "4711");
    EXPECT_EQ(p.metrics_size, 120);
    EXPECT_EQ(p.metrics, "{\"step\":4}\n{\"step\":5,\"loss\":1.0}\n@@metrics not a tag\n");
    EXPECT_FALSE(parse_poll_output("@@bimamba-poll 1\n@@alive 1\n@@exit").ok);  // cut short
    EXPECT_FALSE(parse_poll_output("@@bimamba-poll 1\n@@nodir\n").dir_exists);
}

TEST(RemotePoll, ScriptReadsARunFolderFromAnOffset) {
    TempDir t;
    const fs::path run = t.path / "runs/it's a run";
    fs::create_directories(run);
    const std::string metrics = "{\"type\":\"train\",\"step\":1}\n{\"type\":\"train\",\"step\":2}\n{\"type\":\"tr";
    write(run / "metrics.jsonl", metrics);
    write(run / "status.json", "{\n  \"state\": \"running\",\n  \"step\": 2\n}\n");
    write(run / "launcher.pid", std::to_string(::getpid()) + "\n");
    write(run / "stderr.log", "one\ntwo\n");
    RemoteRun r;
    r.host = "here";
    r.kind = "ssh";
    r.remote_dir = run.string();
    const auto res = run_process(target_script(local_sh(), poll_script(), poll_args(r, 10, 1000)));
    ASSERT_EQ(res.exit_code, 0) << res.err;
    const PollResult p = parse_poll_output(res.out);
    ASSERT_TRUE(p.ok) << res.out;
    EXPECT_TRUE(p.process_alive);
    EXPECT_EQ(p.metrics_size, int64_t(metrics.size()));
    EXPECT_EQ(p.metrics, metrics.substr(10));
    EXPECT_EQ(p.error_tail, "one\ntwo");
    EXPECT_EQ(nlohmann::json::parse(p.status_json)["step"], 2);
    EXPECT_FALSE(p.metrics_id.empty());
    // at most max_bytes
    EXPECT_EQ(parse_poll_output(run_process(target_script(local_sh(), poll_script(), poll_args(r, 0, 7))).out).metrics,
              metrics.substr(0, 7));
    // a folder that is gone
    r.remote_dir = (t.path / "gone").string();
    EXPECT_FALSE(
        parse_poll_output(run_process(target_script(local_sh(), poll_script(), poll_args(r, 0, 7))).out).dir_exists);
}

TEST(RemotePoll, MirrorTailsAndRestartsOnAReplacedFile) {
    TempDir t;
    RemoteRun r;
    r.kind = "ssh";
    PollResult p;
    p.ok = true;
    p.metrics_id = "11";
    p.metrics_size = 12;
    p.metrics = "{\"step\":1}\n{";
    p.status_json = "{\"state\":\"running\",\"step\":1}";
    EXPECT_FALSE(apply_poll(t.path.string(), r, p));
    EXPECT_EQ(mirror_offset(t.path.string()), 12);
    EXPECT_EQ(read_run_status(t.path.string()).step, 1);
    p.metrics = "\"step\":2}\n";
    p.metrics_size = 22;
    EXPECT_FALSE(apply_poll(t.path.string(), r, p));
    EXPECT_EQ(read_file((t.path / "metrics.jsonl").string()), "{\"step\":1}\n{\"step\":2}\n");
    EXPECT_EQ(read_metrics(t.path.string()).size(), 2u);
    // a resume rewrote the file (new inode): the mirror starts again from 0
    p.metrics_id = "12";
    p.metrics = "junk at the old offset";
    EXPECT_TRUE(apply_poll(t.path.string(), r, p));
    EXPECT_EQ(mirror_offset(t.path.string()), 0);
    EXPECT_EQ(r.metrics_id, "12");
    // shortened in place
    p.metrics = "{\"step\":1}\n";
    p.metrics_size = 11;
    EXPECT_FALSE(apply_poll(t.path.string(), r, p));
    p.metrics_size = 3;
    EXPECT_TRUE(apply_poll(t.path.string(), r, p));
}

TEST(RemoteState, FromSshPolls) {
    RemoteRun r;
    r.host = "g";
    r.kind = "ssh";
    r.pid = 42;
    r.launched = "2026-01-01T10:00:00Z";
    PollResult p;
    p.ok = true;
    p.have_process = true;
    p.process_alive = true;
    EXPECT_EQ(remote_state(r, p).state, "starting");
    p.status_json = R"({"state":"running","step":3,"ended":null,"message":""})";  // as RunDir writes it
    EXPECT_EQ(remote_state(r, p).state, "running");
    // a resumed run whose status.json is still the last process's
    p.status_json = R"({"state":"stopped","ended":"2026-01-01T09:00:00Z"})";
    EXPECT_EQ(remote_state(r, p).state, "starting");
    // ... also when it ended in the second the resume began
    p.status_json = R"({"state":"stopped","ended":"2026-01-01T10:00:00Z"})";
    EXPECT_EQ(remote_state(r, p).state, "starting");
    p.process_alive = false;
    p.exit_code = 0;
    p.status_json = R"({"state":"stopped","ended":"2026-01-01T11:00:00Z","message":"SIGTERM"})";
    EXPECT_EQ(remote_state(r, p).state, "stopped");
    p.exit_code = 1;
    p.status_json = "";
    p.error_tail = "error: data folder missing";
    auto s = remote_state(r, p);
    EXPECT_EQ(s.state, "failed");
    EXPECT_EQ(s.message, "exit code 1\nerror: data folder missing");
    p.exit_code = -1;
    s = remote_state(r, p);
    EXPECT_EQ(s.state, "lost");
    EXPECT_NE(s.message.find("pid 42"), std::string::npos);
}

TEST(RemoteState, FromSlurmPolls) {
    RemoteRun r;
    r.host = "c";
    r.kind = "slurm";
    r.job_id = "77";
    r.launched = "2026-01-01T10:00:00Z";
    PollResult p;
    p.ok = true;
    p.job = parse_squeue_line("PENDING|Resources");
    auto s = remote_state(r, p);
    EXPECT_EQ(s.state, "pending");
    EXPECT_EQ(s.message, "Slurm job 77: PENDING (Resources)");
    p.job = parse_squeue_line("RUNNING|None");
    EXPECT_EQ(remote_state(r, p).state, "starting");
    p.status_json = R"({"state":"running","step":3})";
    EXPECT_EQ(remote_state(r, p).state, "running");
    p.status_json = R"({"state":"stopped","ended":"2026-01-01T10:00:00Z"})";  // the previous job's
    EXPECT_EQ(remote_state(r, p).state, "starting");
    p.status_json = R"({"state":"running","step":3})";
    // killed at its time limit before it could write an exit code
    p.job = parse_sacct_line("TIMEOUT|None|0:0");
    s = remote_state(r, p);
    EXPECT_EQ(s.state, "failed");
    EXPECT_EQ(s.message.rfind("Slurm job 77: TIMEOUT", 0), 0u);
    p.job = parse_sacct_line("OUT_OF_MEMORY|None|0:125");
    p.error_tail = "slurmstepd: error: Detected 1 oom_kill event";
    s = remote_state(r, p);
    EXPECT_EQ(s.state, "failed");
    EXPECT_NE(s.message.find("OUT_OF_MEMORY"), std::string::npos);
    EXPECT_NE(s.message.find("oom_kill"), std::string::npos);
    // SIGTERM (scancel --signal=TERM, or the time limit's warning): checkpointed and stopped
    p.job = parse_sacct_line("COMPLETED|None|0:0");
    p.exit_code = 0;
    p.status_json = R"({"state":"stopped","ended":"2026-01-01T11:00:00Z"})";
    EXPECT_EQ(remote_state(r, p).state, "stopped");
    p.status_json = R"({"state":"finished","ended":"2026-01-01T11:00:00Z"})";
    EXPECT_EQ(remote_state(r, p).state, "finished");
    // a job that failed at once: Slurm's state and reason, the exit code, the log
    p.job = parse_sacct_line("FAILED|NonZeroExitCode|1:0");
    p.exit_code = 1;
    p.status_json = "";
    p.error_tail = "bimamba train: error: missing data";
    s = remote_state(r, p);
    EXPECT_EQ(s.state, "failed");
    EXPECT_EQ(s.message, "Slurm job 77: FAILED (NonZeroExitCode)\nexit code 1\nbimamba train: error: missing data");
    // cancelled while pending
    p = PollResult();
    p.ok = true;
    p.job = parse_sacct_line("CANCELLED by 0|None|0:0");
    EXPECT_EQ(remote_state(r, p).state, "stopped");
    // forgotten by Slurm, nothing left
    p.job = SlurmJob();
    EXPECT_EQ(remote_state(r, p).state, "lost");
}

TEST(RemoteScripts, StartDetachedRecordsExitAndStops) {
    TempDir t;
    const Host h = local_sh();
    // the folder is made, and refused once it holds a run
    auto prep = run_process(target_script(h, prepare_dir_script(), {(t.path / "w d/runs/a").string()}));
    ASSERT_EQ(prep.exit_code, 0) << prep.err;
    const std::string dir = prep.out.substr(0, prep.out.find('\n'));
    EXPECT_EQ(fs::canonical(dir), fs::canonical(t.path / "w d/runs/a"));
    // a file through stdin
    auto w = run_process(target_script(h, write_file_script(), {dir + "/train_config.json"}), "{\"x\": 1}\n");
    ASSERT_EQ(w.exit_code, 0) << w.err;
    EXPECT_EQ(read_file(dir + "/train_config.json"), "{\"x\": 1}\n");
    prep = run_process(target_script(h, prepare_dir_script(), {dir}));
    EXPECT_EQ(prep.exit_code, 2);
    EXPECT_NE(prep.err.find("already holds a run"), std::string::npos);

    auto start = run_process(
        target_script(h, start_detached_script(), {dir, "sh", "-c", "echo \"$1\"; exit 4", "sh", "a'b"}), "", 20);
    ASSERT_EQ(start.exit_code, 0) << start.err;
    EXPECT_GT(std::stoll(start.out), 0);
    for (int i = 0; i < 100 && !fs::exists(dir + "/exit_code"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(read_file(dir + "/exit_code"), "4\n");
    EXPECT_EQ(read_file(dir + "/stdout.log"), "a'b\n");

    // stop: SIGTERM reaches the program through the launcher
    start =
        run_process(target_script(h, start_detached_script(),
                                  {dir, "sh", "-c", "trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.1; done"}),
                    "", 20);
    ASSERT_EQ(start.exit_code, 0) << start.err;
    RemoteRun r;
    r.kind = "ssh";
    r.remote_dir = dir;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(parse_poll_output(run_process(target_script(h, poll_script(), poll_args(r, 0, 10))).out).process_alive);
    const auto stop = run_process(target_script(h, stop_script(h), {dir}));
    EXPECT_EQ(stop.exit_code, 0) << stop.err;
    for (int i = 0; i < 100 && !fs::exists(dir + "/exit_code"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(read_file(dir + "/exit_code"), "0\n");
    EXPECT_NE(read_file(dir + "/stdout.log").find("got TERM"), std::string::npos);
    const auto again = run_process(target_script(h, stop_script(h), {dir}));
    EXPECT_EQ(again.exit_code, 3);
    EXPECT_NE(again.err.find("is not running"), std::string::npos);
}

TEST(RemoteRunRecord, RoundTripsAndNamesBadFields) {
    TempDir t;
    RemoteRun r;
    r.host = "g";
    r.kind = "slurm";
    r.remote_dir = "/scratch/runs/a";
    r.job_id = "12";
    r.launched = "2026-01-01T00:00:00Z";
    write_remote_run(t.path.string(), r);
    RemoteRun back;
    ASSERT_TRUE(read_remote_run(t.path.string(), &back));
    EXPECT_EQ(back.to_json(), r.to_json());
    write(t.path / "remote.json", "{\"host\": \"g\", \"kind\": \"ssh\"}");
    try {
        read_remote_run(t.path.string(), &back);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("field 'remote_dir' is missing"), std::string::npos);
    }
    Host h;
    h.workdir = "~/bm/";
    EXPECT_EQ(remote_run_path(h, "x"), "bm/runs/x");
    h.workdir = "/abs";
    EXPECT_EQ(remote_run_path(h, "x"), "/abs/runs/x");
}

// A whole launch and resume on a "Slurm cluster" of this machine whose
// sbatch is a shim running the job script at once: the steps in order, the
// data copied and the config pointed at the copy, the job script calling the
// CLI with the run's paths.
TEST(RemoteOps, LaunchAndResumeThroughEveryStep) {
    TempDir t;
    fs::create_directories(t.path / "shims");
    write(t.path / "shims/sbatch", "#!/bin/sh\nbash job.sbatch > slurm-42.out 2>&1\necho '42;cluster'\n");
    write(t.path / "shims/srun", "#!/bin/sh\nwhile [ \"${1#-}\" != \"$1\" ]; do shift; done\nexec \"$@\"\n");
    write(t.path / "shims/scontrol", "#!/bin/sh\necho localhost\n");
    write(t.path / "fake bimamba", "#!/bin/sh\nfor a; do echo \"[$a]\"; done >> args.txt\n");
    for (auto p : {t.path / "shims/sbatch", t.path / "shims/srun", t.path / "shims/scontrol", t.path / "fake bimamba"})
        fs::permissions(p, fs::perms::owner_all);
    const std::string old_path = std::getenv("PATH");
    setenv("PATH", ((t.path / "shims").string() + ":" + old_path).c_str(), 1);
    fs::create_directories(t.path / "my data");
    write(t.path / "my data/shard.bin", "tokens");
    Host h;
    h.name = "c";
    h.kind = HostKind::Slurm;
    h.workdir = (t.path / "work dir").string();
    h.bimamba = (t.path / "fake bimamba").string();
    const nlohmann::json cfg = {{"data", (t.path / "my data").string()}, {"steps", 5}};
    RemoteOperation op = RemoteOperation::launch(h, "run'1", cfg, true);
    std::vector<std::string> steps;
    while (!op.done()) {
        const RemoteStep s = op.next();
        steps.push_back(s.what.substr(0, s.what.find(' ', s.what.find(' ') + 1)));
        op.finish(run_process(s.argv, s.input, 60));
    }
    setenv("PATH", old_path.c_str(), 1);
    EXPECT_EQ(steps, (std::vector<std::string>{"create the", "create the", "copy " + (t.path / "my").string(),
                                               "write the", "write the", "submit the"}));
    const RemoteRun& r = op.run();
    EXPECT_EQ(r.job_id, "42");
    EXPECT_EQ(fs::canonical(r.remote_dir), fs::canonical(t.path / "work dir/runs/run'1"));
    const std::string synced = op.config()["data"];
    EXPECT_EQ(synced.rfind((fs::canonical(t.path / "work dir/data") / "my data-").string(), 0), 0u) << synced;
    EXPECT_EQ(read_file(synced + "/shard.bin"), "tokens");
    EXPECT_EQ(nlohmann::json::parse(read_file(r.remote_dir + "/workbench_config.json"))["data"], synced);
    EXPECT_EQ(
        read_file(r.remote_dir + "/args.txt"),
        "[train]\n[--config]\n[" + r.remote_dir + "/workbench_config.json]\n[--run-dir]\n[" + r.remote_dir + "]\n");
    EXPECT_EQ(read_file(r.remote_dir + "/exit_code"), "0\n");
    // resume: refused without a checkpoint, else a new job running `train --resume DIR`
    try {
        RemoteOperation::resume(h, r).run_all();
        FAIL() << "resumed without a checkpoint";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("has no checkpoint (checkpoints/latest) to resume from"),
                  std::string::npos)
            << e.what();
    }
    fs::create_directories(fs::path(r.remote_dir) / "checkpoints");
    write(fs::path(r.remote_dir) / "checkpoints/latest", "step_00000005\n");
    setenv("PATH", ((t.path / "shims").string() + ":" + old_path).c_str(), 1);
    RemoteOperation res = RemoteOperation::resume(h, r);
    res.run_all();
    setenv("PATH", old_path.c_str(), 1);
    EXPECT_NE(read_file(r.remote_dir + "/args.txt").find("[train]\n[--resume]\n[" + r.remote_dir + "]\n"),
              std::string::npos);
    // the same name again: the folder holds a run now (status.json), refused
    write(fs::path(r.remote_dir) / "status.json", "{}");
    RemoteOperation again = RemoteOperation::launch(h, "run'1", cfg, false);
    try {
        again.run_all();
        FAIL() << "a folder holding a run was reused";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("already holds a run"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("host 'c': could not create the run folder"), std::string::npos)
            << e.what();
    }
}
