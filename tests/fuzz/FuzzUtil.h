#pragma once
// Shared by the libFuzzer targets (docs/reliability.md): a scratch folder in
// RAM for the parsers whose public API takes a path, and the rule every
// target follows: a std::exception naming the problem is a correct answer to
// a bad input; a crash, a sanitizer report, a leak, a hang or a huge
// allocation is a bug.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/base/FileUtil.h"

namespace bimamba::fuzz {

// $BIMAMBA_FUZZ_SCRATCH (scripts/fuzz.sh sets it and removes it afterwards:
// libFuzzer does not always exit through atexit), else
// /dev/shm/bimamba-fuzz-<pid> (/tmp when /dev/shm is not writable); created
// once per process and removed at a normal exit.
inline const std::string& scratch_dir() {
    static const std::string dir = [] {
        const std::string base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        const char* env = std::getenv("BIMAMBA_FUZZ_SCRATCH");
        std::string d = env && *env ? std::string(env) : base + "/bimamba-fuzz-" + std::to_string(::getpid());
        std::filesystem::create_directories(d);
        std::atexit([] { base::remove_tree(scratch_dir()); });
        return d;
    }();
    return dir;
}

// A path in the scratch folder.
inline std::string scratch(const std::string& name) {
    return scratch_dir() + "/" + name;
}

// Writes the bytes as they are (no fsync: the file lives only for one input).
inline void write_bytes(const std::string& path, const uint8_t* data, size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
}

// A failed self-check of a target (a property of the parser, not a sanitizer
// finding): abort so libFuzzer keeps the input.
#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)

}  // namespace bimamba::fuzz
