#include "core/base/Hosts.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/base/FileUtil.h"
#include "core/base/TomlJson.h"

namespace bimamba::base {

const char* host_kind_name(HostKind k) {
    switch (k) {
        case HostKind::Local:
            return "local";
        case HostKind::Ssh:
            return "ssh";
        case HostKind::Slurm:
            return "slurm";
    }
    return "local";
}

std::string Host::describe() const {
    std::string s = host_kind_name(kind);
    if (over_ssh()) {
        s += " " + destination();
        if (port > 0) s += ":" + std::to_string(port);
    } else if (kind != HostKind::Local) {
        s += " (this machine)";
    } else {
        s += " (this machine, the workbench starts runs itself)";
    }
    if (kind == HostKind::Slurm) {
        if (!partition.empty()) s += ", partition " + partition;
        s += ", " + std::to_string(nodes) + (nodes == 1 ? " node" : " nodes");
        s += gpus_per_node > 0 ? " x " + std::to_string(gpus_per_node) + " GPU" : " (CPU)";
        if (!time_limit.empty()) s += ", time " + time_limit;
    }
    if (kind != HostKind::Local) s += ", runs in " + workdir + "/runs";
    return s;
}

nlohmann::json Host::to_json() const {
    const Host d;
    nlohmann::json j = {{"name", name}, {"kind", host_kind_name(kind)}};
    if (!host.empty()) j["host"] = host;
    if (!user.empty()) j["user"] = user;
    if (port) j["port"] = port;
    if (!identity_file.empty()) j["identity_file"] = identity_file;
    if (!known_hosts.empty()) j["known_hosts"] = known_hosts;
    if (kind != HostKind::Local) {
        j["bimamba"] = bimamba;
        j["workdir"] = workdir;
    }
    if (kind == HostKind::Slurm) {
        if (!partition.empty()) j["partition"] = partition;
        if (!account.empty()) j["account"] = account;
        if (!time_limit.empty()) j["time"] = time_limit;
        j["nodes"] = nodes;
        j["gpus_per_node"] = gpus_per_node;
        if (!sbatch_extra.empty()) j["sbatch"] = sbatch_extra;
    }
    return j;
}

const Host* HostsFile::find(const std::string& name) const {
    for (const auto& h : hosts)
        if (h.name == name) return &h;
    return nullptr;
}

const Host& HostsFile::get(const std::string& name) const {
    if (const Host* h = find(name)) return *h;
    std::string known;
    for (const auto& h : hosts) known += (known.empty() ? "" : ", ") + h.name;
    throw std::invalid_argument("no host '" + name + "' in " + (path.empty() ? std::string("the hosts file") : path) +
                                " (known: " + known + ")");
}

std::string hosts_path(const std::string& workspace) {
    return (std::filesystem::path(workspace.empty() ? "." : workspace) / "hosts.toml").string();
}

namespace {

Host local_host() {
    Host h;
    h.name = "local";
    h.kind = HostKind::Local;
    return h;
}

bool has_control_char(const std::string& s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

bool has_space(const std::string& s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

}  // namespace

std::vector<std::string> host_problems(const Host& h) {
    std::vector<std::string> p;
    const std::string who = "host '" + h.name + "': ";
    if (h.name.empty()) p.push_back("a host needs a name");
    for (char c : h.name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
            p.push_back(who + "the name may hold only letters, digits, '-', '_' and '.'");
            break;
        }
    if (h.kind == HostKind::Local) return p;
    if (h.kind == HostKind::Ssh && h.host.empty()) p.push_back(who + "field 'host' is required for kind = \"ssh\"");
    if (!h.host.empty() && (h.host[0] == '-' || has_space(h.host) || h.host.find('@') != std::string::npos))
        p.push_back(who +
                    "field 'host' must be a host name or address (no spaces, no leading '-'; put the user in 'user')");
    if (!h.user.empty() && (h.user[0] == '-' || has_space(h.user) || h.user.find('@') != std::string::npos))
        p.push_back(who + "field 'user' must be a user name (no spaces, '@' or leading '-')");
    if (h.port < 0 || h.port > 65535) p.push_back(who + "field 'port' must be between 1 and 65535");
    if (has_control_char(h.identity_file)) p.push_back(who + "field 'identity_file' holds a control character");
    if (has_control_char(h.known_hosts)) p.push_back(who + "field 'known_hosts' holds a control character");
    if (h.bimamba.empty()) p.push_back(who + "field 'bimamba' must name the CLI on the target");
    if (has_control_char(h.bimamba)) p.push_back(who + "field 'bimamba' holds a control character");
    if (h.workdir.empty()) p.push_back(who + "field 'workdir' must name a folder on the target");
    if (has_control_char(h.workdir)) p.push_back(who + "field 'workdir' holds a control character");
    if (h.kind == HostKind::Slurm) {
        if (h.nodes < 1) p.push_back(who + "field 'nodes' must be at least 1");
        if (h.gpus_per_node < 0) p.push_back(who + "field 'gpus_per_node' must be 0 (CPU) or more");
        for (auto [field, v] : {std::pair<const char*, const std::string*>{"partition", &h.partition},
                                {"account", &h.account},
                                {"time", &h.time_limit}})
            if (has_space(*v)) p.push_back(who + "field '" + field + "' must be one word (it becomes an #SBATCH line)");
        for (const auto& s : h.sbatch_extra)
            if (s.empty() || has_control_char(s) || s[0] != '-')
                p.push_back(who + "field 'sbatch': each entry is one sbatch option such as \"--qos=high\" (got '" + s +
                            "')");
    } else if (!h.partition.empty() || !h.account.empty() || !h.time_limit.empty() || !h.sbatch_extra.empty()) {
        p.push_back(who + "fields 'partition', 'account', 'time' and 'sbatch' belong to kind = \"slurm\"");
    }
    return p;
}

HostsFile parse_hosts(const std::string& text, const std::string& source) {
    const nlohmann::json doc = parse_toml_as_json(text, source);
    HostsFile f;
    f.path = source;
    f.hosts.push_back(local_host());
    for (auto it = doc.begin(); it != doc.end(); ++it)
        if (it.key() != "hosts")
            throw std::invalid_argument(source + ": unknown table or field '" + it.key() +
                                        "' (hosts are defined as [hosts.NAME])");
    if (!doc.contains("hosts")) return f;
    if (!doc["hosts"].is_object())
        throw std::invalid_argument(source + ": 'hosts' must be a table of [hosts.NAME] tables");
    for (auto it = doc["hosts"].begin(); it != doc["hosts"].end(); ++it) {
        const std::string& name = it.key();
        const std::string where = source + ": host '" + name + "'";
        if (name == "local")
            throw std::invalid_argument(where + ": 'local' is built in (this machine) and cannot be redefined");
        if (!it->is_object()) throw std::invalid_argument(where + " must be a table");
        const nlohmann::json& t = *it;
        Host h;
        h.name = name;
        auto str = [&](const char* key, std::string& out) {
            if (!t.contains(key)) return;
            if (!t[key].is_string()) throw std::invalid_argument(where + ": field '" + key + "' must be a string");
            out = t[key].get<std::string>();
        };
        auto integer = [&](const char* key, int& out) {
            if (!t.contains(key)) return;
            if (!t[key].is_number_integer())
                throw std::invalid_argument(where + ": field '" + key + "' must be an integer");
            const int64_t v = t[key].get<int64_t>();
            if (v < -1 || v > 1000000) throw std::invalid_argument(where + ": field '" + key + "' is out of range");
            out = static_cast<int>(v);
        };
        static const std::set<std::string> known = {
            "kind",    "host",      "user",    "port", "identity_file", "known_hosts",   "bimamba",
            "workdir", "partition", "account", "time", "nodes",         "gpus_per_node", "sbatch"};
        for (auto f2 = t.begin(); f2 != t.end(); ++f2)
            if (!known.count(f2.key())) throw std::invalid_argument(where + ": unknown field '" + f2.key() + "'");
        std::string kind;
        str("kind", kind);
        if (kind == "ssh")
            h.kind = HostKind::Ssh;
        else if (kind == "slurm")
            h.kind = HostKind::Slurm;
        else
            throw std::invalid_argument(where + ": field 'kind' must be \"ssh\" or \"slurm\"" +
                                        (kind.empty() ? std::string(" (it is missing)") : " (got \"" + kind + "\")"));
        str("host", h.host);
        str("user", h.user);
        integer("port", h.port);
        str("identity_file", h.identity_file);
        str("known_hosts", h.known_hosts);
        str("bimamba", h.bimamba);
        str("workdir", h.workdir);
        str("partition", h.partition);
        str("account", h.account);
        str("time", h.time_limit);
        integer("nodes", h.nodes);
        integer("gpus_per_node", h.gpus_per_node);
        if (t.contains("sbatch")) {
            if (!t["sbatch"].is_array())
                throw std::invalid_argument(where + ": field 'sbatch' must be an array of strings");
            for (const auto& s : t["sbatch"]) {
                if (!s.is_string()) throw std::invalid_argument(where + ": field 'sbatch' must be an array of strings");
                h.sbatch_extra.push_back(s.get<std::string>());
            }
        }
        if (t.contains("port") && h.port == 0)
            throw std::invalid_argument(where + ": field 'port' must be between 1 and 65535");
        const auto problems = host_problems(h);
        if (!problems.empty()) throw std::invalid_argument(source + ": " + problems.front());
        f.hosts.push_back(std::move(h));
    }
    return f;
}

HostsFile load_hosts(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        HostsFile f;
        f.path = path;
        f.hosts.push_back(local_host());
        return f;
    }
    return parse_hosts(read_file(path), path);
}

namespace {
// A TOML basic string.
std::string toml_string(const std::string& s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += char(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            o += buf;
        } else {
            o += char(c);
        }
    }
    return o + "\"";
}
}  // namespace

std::string hosts_to_toml(const std::vector<Host>& hosts) {
    std::ostringstream o;
    o << "# Execution targets of this workspace (README: \"Training on a server or a cluster\").\n";
    for (const auto& h : hosts) {
        if (h.kind == HostKind::Local) continue;
        // A name TOML accepts bare; host_problems() allows only such names.
        o << "\n[hosts." << h.name << "]\n";
        o << "kind = " << toml_string(host_kind_name(h.kind)) << "\n";
        auto str = [&](const char* key, const std::string& v) {
            if (!v.empty()) o << key << " = " << toml_string(v) << "\n";
        };
        str("host", h.host);
        str("user", h.user);
        if (h.port) o << "port = " << h.port << "\n";
        str("identity_file", h.identity_file);
        str("known_hosts", h.known_hosts);
        str("bimamba", h.bimamba);
        str("workdir", h.workdir);
        if (h.kind == HostKind::Slurm) {
            str("partition", h.partition);
            str("account", h.account);
            str("time", h.time_limit);
            o << "nodes = " << h.nodes << "\n";
            o << "gpus_per_node = " << h.gpus_per_node << "\n";
            if (!h.sbatch_extra.empty()) {
                o << "sbatch = [";
                for (size_t i = 0; i < h.sbatch_extra.size(); ++i)
                    o << (i ? ", " : "") << toml_string(h.sbatch_extra[i]);
                o << "]\n";
            }
        }
    }
    return o.str();
}

std::string shell_quote(const std::string& s) {
    if (!s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
            return std::isalnum(c) || std::strchr("@%+:,./-_", c) != nullptr;
        }))
        return s;
    std::string o = "'";
    for (char c : s) {
        if (c == '\'')
            o += "'\\''";  // close, an escaped quote, reopen
        else
            o += c;
    }
    return o + "'";
}

std::string shell_join(const std::vector<std::string>& argv) {
    std::string o;
    for (const auto& a : argv) o += (o.empty() ? "" : " ") + shell_quote(a);
    return o;
}

std::string ssh_control_dir() {
    const char* env = std::getenv("BIMAMBA_SSH_CONTROL_DIR");
    std::string dir = env && *env ? env : "/tmp/bimamba-ssh-" + std::to_string(::getuid());
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw std::runtime_error("cannot create ssh's control folder " + dir + ": " + std::strerror(errno));
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid() || (st.st_mode & 077))
        throw std::runtime_error("ssh's control folder " + dir + " must be a folder of this user with mode 0700");
    return dir;
}

namespace {
// Tells apart hosts.toml entries that reach the same user@host:port with
// other keys or known_hosts: they must not share a master connection (one
// made with a trusted known_hosts would let the other skip its host key check).
std::string settings_tag(const Host& h) {
    uint64_t x = 1469598103934665603ull;  // FNV-1a
    for (const std::string* s : {&h.name, &h.identity_file, &h.known_hosts})
        for (unsigned char c : *s + '\0') x = (x ^ c) * 1099511628211ull;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
    return std::string(buf, 12);
}
}  // namespace

std::vector<std::string> ssh_options(const Host& h) {
    std::vector<std::string> o = {
        "-o", "BatchMode=yes",          "-o", "StrictHostKeyChecking=yes",
        "-o", "ControlMaster=auto",     "-o", "ControlPath=" + ssh_control_dir() + "/%C-" + settings_tag(h),
        "-o", "ControlPersist=600",     "-o", "ConnectTimeout=10",
        "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"};
    if (!h.known_hosts.empty()) o.insert(o.end(), {"-o", "UserKnownHostsFile=" + h.known_hosts});
    if (h.port > 0) o.insert(o.end(), {"-p", std::to_string(h.port)});
    if (!h.identity_file.empty()) o.insert(o.end(), {"-i", h.identity_file, "-o", "IdentitiesOnly=yes"});
    if (!h.user.empty()) o.insert(o.end(), {"-l", h.user});
    return o;
}

std::vector<std::string> target_argv(const Host& h, const std::vector<std::string>& remote_argv) {
    if (!h.over_ssh()) return remote_argv;
    std::vector<std::string> a = {"ssh"};
    const auto o = ssh_options(h);
    a.insert(a.end(), o.begin(), o.end());
    // ssh joins what follows the destination with spaces and hands it to the
    // login shell there: one string, every word quoted.
    a.insert(a.end(), {"--", h.host, shell_join(remote_argv)});
    return a;
}

std::vector<std::string> target_script(const Host& h, const std::string& script, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"sh", "-c", script, "sh"};
    argv.insert(argv.end(), args.begin(), args.end());
    return target_argv(h, argv);
}

std::vector<std::string> rsync_argv(const Host& h, const std::string& from, const std::string& to,
                                    const std::vector<std::string>& extra) {
    std::vector<std::string> a = {"rsync", "-a", "--partial"};
    a.insert(a.end(), extra.begin(), extra.end());
    auto side = [&](const std::string& p) {
        if (p.rfind("remote:", 0) != 0) return p;
        return h.over_ssh() ? h.host + ":" + p.substr(7) : p.substr(7);
    };
    if (h.over_ssh()) {
        // rsync splits -e on spaces and honours quotes: quote every word.
        std::vector<std::string> e = {"ssh"};
        const auto o = ssh_options(h);
        e.insert(e.end(), o.begin(), o.end());
        a.insert(a.end(), {"-e", shell_join(e), "--protect-args"});
    }
    a.push_back(side(from));
    a.push_back(side(to));
    return a;
}

std::string explain_ssh_failure(const Host& h, const std::string& err) {
    const std::string where = "host '" + h.name + "' (" + h.destination() + "): ";
    auto has = [&](const char* s) { return err.find(s) != std::string::npos; };
    std::string first;  // the last non-empty line ssh wrote
    std::istringstream in(err);
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line.find("Warning: Permanently added") == std::string::npos) first = line;
    if (has("No ED25519 host key is known") || has("No RSA host key is known") || has("No ECDSA host key is known") ||
        (has("Host key verification failed") && !has("REMOTE HOST IDENTIFICATION HAS CHANGED")))
        return where + "its host key is not known. Check the key and add it to known_hosts (e.g. `ssh " +
               h.destination() +
               "` once, answering yes after comparing the fingerprint); the workbench never accepts one by itself";
    if (has("REMOTE HOST IDENTIFICATION HAS CHANGED"))
        return where + "its host key has CHANGED since it was recorded in known_hosts; refusing to connect";
    if (has("Permission denied"))
        return where +
               "the key was refused (Permission denied). The workbench never asks for a password: "
               "set up key login (identity_file or ssh-agent)";
    if (has("Connection refused")) return where + "connection refused (no ssh server on that port?)";
    if (has("Could not resolve hostname")) return where + "unknown host name";
    if (has("timed out")) return where + "connection timed out";
    return where + "ssh failed" + (first.empty() ? std::string() : ": " + first);
}

}  // namespace bimamba::base
