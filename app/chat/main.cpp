// Entry point of `bimamba-chat`: the `bimamba chat` command (app/cli/cmd_chat.cpp)
// in a process that links no LibTorch, only the CPU engine, the tokenizer and
// the base helpers. `bimamba chat` runs this binary when it sits beside it
// (app/cli/main.cpp), so a chat holds little more than the engine's memory.
#include <cstdio>
#include <exception>

#include "app/cli/Command.h"

using namespace bimamba::cli;

int main(int argc, char** argv) {
    const Args args(argv + 1, argv + argc);
    for (const auto& c : command_table()) {
        if (c.name != "chat") continue;
        try {
            return c.run(args);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bimamba chat: error: %s\n", e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "bimamba-chat: the chat command is missing from this build\n");
    return 2;
}
