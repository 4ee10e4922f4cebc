// Entry point of the `bimamba` CLI: dispatches to the registered commands.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <stdexcept>

#include "app/cli/Command.h"

namespace bimamba::cli {

std::vector<CommandInfo>& command_table() {
    static std::vector<CommandInfo> table;
    return table;
}

Options::Options(const Args& args, const std::vector<std::string>& flags) {
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a.rfind("--", 0) == 0 && a.size() > 2) {
            std::string key = a.substr(2), val;
            auto eq = key.find('=');
            if (eq != std::string::npos) {
                val = key.substr(eq + 1);
                key = key.substr(0, eq);
            } else if (std::find(flags.begin(), flags.end(), key) != flags.end()) {
                val = "1";
            } else if (i + 1 < args.size()) {
                val = args[++i];
            } else {
                throw std::invalid_argument("option --" + key + " needs a value");
            }
            kv_.emplace_back(key, val);
        } else {
            positional_.push_back(a);
        }
    }
}

bool Options::has(const std::string& key) const {
    return std::any_of(kv_.begin(), kv_.end(), [&](auto& p) { return p.first == key; });
}

std::string Options::get(const std::string& key, const std::string& def) const {
    for (auto it = kv_.rbegin(); it != kv_.rend(); ++it)
        if (it->first == key) return it->second;
    return def;
}

std::string Options::require(const std::string& key) const {
    if (!has(key)) throw std::invalid_argument("missing required option --" + key);
    return get(key);
}

long long Options::get_int(const std::string& key, long long def) const {
    if (!has(key)) return def;
    try {
        size_t pos = 0;
        long long v = std::stoll(get(key), &pos);
        if (pos != get(key).size()) throw std::invalid_argument("");
        return v;
    } catch (...) {
        throw std::invalid_argument("option --" + key + " expects an integer, got '" + get(key) + "'");
    }
}

double Options::get_double(const std::string& key, double def) const {
    if (!has(key)) return def;
    try {
        size_t pos = 0;
        double v = std::stod(get(key), &pos);
        if (pos != get(key).size()) throw std::invalid_argument("");
        return v;
    } catch (...) {
        throw std::invalid_argument("option --" + key + " expects a number, got '" + get(key) + "'");
    }
}

void Options::check_known(const std::vector<std::string>& known) const {
    for (auto& [k, v] : kv_)
        if (std::find(known.begin(), known.end(), k) == known.end())
            throw std::invalid_argument("unknown option --" + k);
}

}  // namespace bimamba::cli

using namespace bimamba::cli;

static void usage() {
    auto table = command_table();
    std::sort(table.begin(), table.end(), [](auto& a, auto& b) { return a.name < b.name; });
    std::printf("bimamba: train, evaluate and deploy 1-bit Mamba-2 language models (Bi-Mamba)\n\n"
                "usage: bimamba <command> [options]   (bimamba <command> --help for details)\n\ncommands:\n");
    for (auto& c : table) std::printf("  %-16s %s\n", c.name.c_str(), c.summary.c_str());
}

int main(int argc, char** argv) {
    Args args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        usage();
        return args.empty() ? 2 : 0;
    }
    const CommandInfo* cmd = nullptr;
    size_t used = 1;
    for (auto& c : command_table()) {  // two-word commands first ("bench cpu")
        if (args.size() >= 2 && c.name == args[0] + " " + args[1]) { cmd = &c; used = 2; break; }
    }
    if (!cmd)
        for (auto& c : command_table())
            if (c.name == args[0]) { cmd = &c; break; }
    if (!cmd) {
        bool group = false;
        for (auto& c : command_table())
            if (c.name.rfind(args[0] + " ", 0) == 0) {
                if (!group) std::fprintf(stderr, "bimamba %s: choose one of:\n", args[0].c_str());
                group = true;
                std::fprintf(stderr, "  %-16s %s\n", c.name.c_str(), c.summary.c_str());
            }
        if (!group) {
            std::fprintf(stderr, "bimamba: unknown command '%s'\n\n", args[0].c_str());
            usage();
        }
        return 2;
    }
    try {
        return cmd->run(Args(args.begin() + used, args.end()));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bimamba %s: error: %s\n", cmd->name.c_str(), e.what());
        return 1;
    }
}
