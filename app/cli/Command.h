#pragma once
// The `bimamba` command table. Each subcommand lives in its own cmd_*.cpp and
// registers itself with a static CommandRegistrar:
//
//   static bimamba::cli::CommandRegistrar reg{"inspect", "print a checkpoint's tensors", run_inspect};
//
// Two-word commands ("bench cpu", "bench train") are registered with a space.
// A handler returns the process exit code; exceptions it throws are printed as
// "bimamba <cmd>: error: <what>" and exit with code 1.
#include <functional>
#include <string>
#include <vector>

namespace bimamba::cli {

using Args = std::vector<std::string>;  // arguments after the command name
using Handler = std::function<int(const Args&)>;

struct CommandInfo {
    std::string name;
    std::string summary;
    Handler run;
};

std::vector<CommandInfo>& command_table();

struct CommandRegistrar {
    CommandRegistrar(std::string name, std::string summary, Handler run) {
        command_table().push_back({std::move(name), std::move(summary), std::move(run)});
    }
};

// Tiny option parser shared by the commands: --key value, --key=value, --flag.
class Options {
public:
    Options(const Args& args, const std::vector<std::string>& flags = {});
    bool has(const std::string& key) const;
    std::string get(const std::string& key, const std::string& def = "") const;
    std::string require(const std::string& key) const;  // throws naming the option
    long long get_int(const std::string& key, long long def) const;
    double get_double(const std::string& key, double def) const;
    const std::vector<std::string>& positional() const { return positional_; }
    // Throws if an option outside `known` was given (names it).
    void check_known(const std::vector<std::string>& known) const;

private:
    std::vector<std::pair<std::string, std::string>> kv_;
    std::vector<std::string> positional_;
};

}  // namespace bimamba::cli
