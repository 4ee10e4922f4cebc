// Entry point of the `bimamba` CLI: dispatches to the registered commands.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <stdexcept>

#include <torch/cuda.h>
#include <torch/version.h>

#include "BimambaVersion.h"  // generated: BIMAMBA_VERSION, BIMAMBA_GIT_COMMIT (app/CMakeLists.txt)
#include "app/cli/Command.h"
#include "kernels/cpu/Gemv.h"

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
    std::printf(
        "bimamba: train, evaluate and deploy 1-bit Mamba-2 language models (Bi-Mamba)\n\n"
        "usage: bimamba <command> [options]   (bimamba <command> --help for details)\n"
        "       bimamba --version\n\ncommands:\n");
    for (auto& c : table) std::printf("  %-16s %s\n", c.name.c_str(), c.summary.c_str());
}

// `bimamba --version`: what a bug report needs to know about this binary.
static void print_version() {
    std::printf("bimamba %s (git %s)\n", BIMAMBA_VERSION, BIMAMBA_GIT_COMMIT);
    std::printf("LibTorch %s\n", TORCH_VERSION);
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
    const char* kernels = "compiled in";
#else
    const char* kernels = "not compiled in";
#endif
    if (torch::cuda::is_available())
        std::printf("CUDA: available, %d device(s); BiMamba CUDA kernels %s\n", (int)torch::cuda::device_count(),
                    kernels);
    else
        std::printf("CUDA: not available; BiMamba CUDA kernels %s\n", kernels);
    std::printf("CPU engine ISA: %s (AVX2 %s, AVX-512 %s)\n", bimamba::kernels::isa_name(bimamba::kernels::best_isa()),
                bimamba::kernels::cpu_has_avx2() ? "yes" : "no", bimamba::kernels::cpu_has_avx512() ? "yes" : "no");
}

static bool is_help(const std::string& a) {
    return a == "--help" || a == "-h" || a == "help";
}

int main(int argc, char** argv) {
    Args args(argv + 1, argv + argc);
    if (args.empty() || is_help(args[0])) {
        usage();
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version" || args[0] == "-V" || args[0] == "version") {
        print_version();
        return 0;
    }
    const CommandInfo* cmd = nullptr;
    size_t used = 1;
    for (auto& c : command_table()) {  // two-word commands first ("bench cpu")
        if (args.size() >= 2 && c.name == args[0] + " " + args[1]) {
            cmd = &c;
            used = 2;
            break;
        }
    }
    if (!cmd)
        for (auto& c : command_table())
            if (c.name == args[0]) {
                cmd = &c;
                break;
            }
    if (!cmd) {
        // A group ("bench"): list its commands; asked for (--help) on stdout with status 0.
        const bool asked = args.size() >= 2 && is_help(args[1]);
        FILE* out = asked ? stdout : stderr;
        bool group = false;
        for (auto& c : command_table())
            if (c.name.rfind(args[0] + " ", 0) == 0) {
                if (!group)
                    std::fprintf(out, "bimamba %s: choose one of (bimamba %s <command> --help for details):\n",
                                 args[0].c_str(), args[0].c_str());
                group = true;
                std::fprintf(out, "  %-16s %s\n", c.name.c_str(), c.summary.c_str());
            }
        if (!group) {
            std::fprintf(stderr, "bimamba: unknown command '%s'\n\n", args[0].c_str());
            usage();
        }
        return group && asked ? 0 : 2;
    }
    try {
        return cmd->run(Args(args.begin() + used, args.end()));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bimamba %s: error: %s\n", cmd->name.c_str(), e.what());
        return 1;
    }
}
