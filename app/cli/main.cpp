// Entry point of the `bimamba` CLI: dispatches to the registered commands.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <vector>

#include <torch/cuda.h>
#include <torch/version.h>

#include "BimambaVersion.h"  // generated: BIMAMBA_VERSION, BIMAMBA_GIT_COMMIT (app/CMakeLists.txt)
#include "app/cli/Command.h"
#include "kernels/cpu/Gemv.h"

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

// `bimamba chat` runs as `bimamba-chat` from beside this binary: the same
// command in a process without LibTorch, so what it holds is mostly the
// engine's (the 130M student: ~65 MB resident instead of ~430 MB).
// BIMAMBA_CHAT_IN_PROCESS=1 keeps it here; without the sibling it runs here.
static void exec_torch_free_chat(char** argv) {
    if (const char* e = std::getenv("BIMAMBA_CHAT_IN_PROCESS"); e && std::string(e) == "1") return;
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return;
    const std::string chat = (self.parent_path() / "bimamba-chat").string();
    if (::access(chat.c_str(), X_OK) != 0) return;
    std::vector<char*> a{const_cast<char*>(chat.c_str())};
    for (char** p = argv + 2; *p; ++p) a.push_back(*p);
    a.push_back(nullptr);
    ::execv(chat.c_str(), a.data());  // returns only if it failed: then chat runs in this process
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
    if (args[0] == "chat") exec_torch_free_chat(argv);
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
