#pragma once
// Helpers shared by the GoogleTest suites: scratch folders under the system
// temp dir, one root per test program and process, removed with everything
// in it when the program exits; and a file writer.
#include <errno.h>  // program_invocation_short_name (GNU)
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/base/FileUtil.h"

namespace bimamba::test {

struct ScratchRoot {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("bimamba_" + std::string(program_invocation_short_name) + "_" + std::to_string(::getpid()));
    ScratchRoot() { std::filesystem::create_directories(path); }
    ~ScratchRoot() { bimamba::remove_tree(path); }  // (not std::filesystem::remove_all: see FileUtil.h)
};

// <tmp>/bimamba_<program>_<pid>, created on first use.
inline std::string scratch_root() {
    static ScratchRoot root;
    return root.path.string();
}

// A fresh, empty folder scratch_root()/name (emptied if it exists).
inline std::string fresh_dir(const std::string& name) {
    const auto d = std::filesystem::path(scratch_root()) / name;
    bimamba::remove_tree(d);
    std::filesystem::create_directories(d);
    return d.string();
}

// Writes `bytes` to `path` as they are (binary), replacing the file.
inline void write_text(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), (std::streamsize)bytes.size());
}

}  // namespace bimamba::test
