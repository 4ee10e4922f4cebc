#pragma once
// Execution targets for training runs (issue #15): this machine, an SSH host,
// or a Slurm cluster reached over SSH or from this machine. Defined in the
// workspace's hosts.toml (README "Training on a server or a cluster"), read
// by the CLI and the workbench alike.
//
// Every remote command is an argument vector. It is turned into text in one
// place only, shell_quote(), and reaches the target as `ssh … -- HOST 'sh'
// '-c' 'SCRIPT' 'sh' 'ARG1' …`: the scripts are constant text, the run's
// paths and names are positional parameters, never spliced into a script.
// SSH never asks for a password (BatchMode=yes), never accepts an unknown
// host key (StrictHostKeyChecking=yes) and shares one connection per host
// (ControlMaster). Plain C++, no LibTorch.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bimamba::base {

enum class HostKind { Local, Ssh, Slurm };
const char* host_kind_name(HostKind k);

struct Host {
    std::string name;
    HostKind kind = HostKind::Local;
    // Reaching it (ssh; slurm when `host` is set). Empty `host`: this machine.
    std::string host;           // name or address; may be an alias of ~/.ssh/config
    std::string user;           // "" = ssh's default (~/.ssh/config, the local user)
    int port = 0;               // 0 = ssh's default
    std::string identity_file;  // "" = ssh's default keys and agent
    std::string known_hosts;    // extra UserKnownHostsFile; "" = ~/.ssh/known_hosts
    // On the target.
    std::string bimamba = "bimamba";  // the CLI there (a path, or a name on its PATH)
    std::string workdir = "bimamba";  // runs go to <workdir>/runs/<name>; relative = to the home folder
    // Slurm.
    std::string partition, account, time_limit;  // time_limit: Slurm's syntax, e.g. "12:00:00"
    int nodes = 1;
    int gpus_per_node = 0;                  // 0: a CPU job, one task per node
    std::vector<std::string> sbatch_extra;  // more options, each one "#SBATCH <it>" line

    bool over_ssh() const { return !host.empty(); }
    // The target as ssh names it: user@host, or host.
    std::string destination() const { return user.empty() ? host : user + "@" + host; }
    // One line for listings: "ssh alice@gpu1:2222", "slurm (this machine), partition gpu".
    std::string describe() const;
    nlohmann::json to_json() const;  // the fields that differ from a default Host
};

// A hosts file, parsed. `local` is always there (first); the file cannot redefine it.
struct HostsFile {
    std::string path;
    std::vector<Host> hosts;
    const Host* find(const std::string& name) const;
    const Host& get(const std::string& name) const;  // throws naming the file and the known hosts
};

std::string hosts_path(const std::string& workspace);  // <workspace>/hosts.toml
// Parses TOML text of the form
//   [hosts.NAME]
//   kind = "ssh" | "slurm"
//   host, user, port, identity_file, known_hosts, bimamba, workdir,
//   partition, account, time, nodes, gpus_per_node, sbatch = ["--qos=x", ...]
// Throws std::invalid_argument naming `source`, the host and the field.
HostsFile parse_hosts(const std::string& text, const std::string& source);
// A missing file gives the hosts file with `local` only.
HostsFile load_hosts(const std::string& path);
// TOML text of `hosts` (local left out), which parse_hosts reads back.
std::string hosts_to_toml(const std::vector<Host>& hosts);
// Every problem of one host, one sentence each naming the field; empty when valid.
std::vector<std::string> host_problems(const Host& h);

// The one quoting function: `s` as one word of a POSIX shell (sh, bash, dash,
// zsh), in single quotes unless it needs none.
std::string shell_quote(const std::string& s);
// argv joined into one shell command line, each word quoted.
std::string shell_join(const std::vector<std::string>& argv);

// The folder of ssh's control sockets (ControlPath=<it>/%C): $BIMAMBA_SSH_CONTROL_DIR,
// else /tmp/bimamba-ssh-<uid>; created 0700 on use.
std::string ssh_control_dir();
// The ssh options every connection to `h` uses (BatchMode, StrictHostKeyChecking,
// ControlMaster/Path/Persist, timeouts, port, identity, known hosts).
std::vector<std::string> ssh_options(const Host& h);
// The argument vector that runs `remote_argv` on the target: over ssh when
// h.over_ssh(), else `remote_argv` itself on this machine.
std::vector<std::string> target_argv(const Host& h, const std::vector<std::string>& remote_argv);
// `sh -c SCRIPT sh ARGS…` on the target.
std::vector<std::string> target_script(const Host& h, const std::string& script, const std::vector<std::string>& args);
// rsync's argument vector copying `from` to `to`; one side may be remote, as
// "remote:" + path (made user@host:path with the connection's ssh options).
std::vector<std::string> rsync_argv(const Host& h, const std::string& from, const std::string& to,
                                    const std::vector<std::string>& extra = {});
// ssh's exit status 255 means the connection failed (not the remote command).
inline bool is_connection_failure(const Host& h, int exit_code) {
    return h.over_ssh() && exit_code == 255;
}
// A readable sentence for what ssh wrote on a failed connection (unknown host key, ...).
std::string explain_ssh_failure(const Host& h, const std::string& ssh_stderr);

}  // namespace bimamba::base
