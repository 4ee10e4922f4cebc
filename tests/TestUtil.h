#pragma once
// Helpers shared by the GoogleTest suites: scratch folders under the system
// temp dir, one root per test program and process, removed with everything
// in it when the program exits; a file writer; a prepared training corpus;
// the message of what a call throws.
#include <errno.h>  // program_invocation_short_name (GNU)
#include <unistd.h>

#include <filesystem>
#include <exception>
#include <fstream>
#include <string>

#include "core/base/FileUtil.h"
#include "core/data/Prepare.h"

namespace bimamba::test {

struct ScratchRoot {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() /
        ("bimamba_" + std::string(program_invocation_short_name) + "_" + std::to_string(::getpid()));
    ScratchRoot() { std::filesystem::create_directories(path); }
    ~ScratchRoot() { bimamba::base::remove_tree(path); }  // (not std::filesystem::remove_all: see FileUtil.h)
};

// <tmp>/bimamba_<program>_<pid>, created on first use.
inline std::string scratch_root() {
    static ScratchRoot root;
    return root.path.string();
}

// A fresh, empty folder scratch_root()/name (emptied if it exists).
inline std::string fresh_dir(const std::string& name) {
    const auto d = std::filesystem::path(scratch_root()) / name;
    bimamba::base::remove_tree(d);
    std::filesystem::create_directories(d);
    return d.string();
}

// The what() of the std::exception `f()` throws, or "(no error)".
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}

// Writes `bytes` to `path` as they are (binary), replacing the file.
inline void write_text(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), (std::streamsize)bytes.size());
}

// The first `chars` characters of Tiny Shakespeare (the shared test data),
// written to dir/shakespeare.txt and prepared (paragraphs, a `vocab`-piece
// tokenizer, 5 % validation) into dir/data; returns that folder.
inline std::string prepare_shakespeare(const std::string& dir, size_t chars, int vocab) {
    write_text(
        dir + "/shakespeare.txt",
        bimamba::base::read_file(std::string(BIMAMBA_SHARED_DATA) + "/tinyshakespeare/input.txt").substr(0, chars));
    bimamba::data::PrepareOptions p;
    p.corpus.paths = {dir + "/shakespeare.txt"};
    p.corpus.unit = bimamba::data::DocUnit::Paragraph;
    p.out_dir = dir + "/data";
    p.tokenizer.vocab_size = vocab;
    p.val_fraction = 0.05;
    bimamba::data::prepare_corpus(p);
    return p.out_dir;
}

}  // namespace bimamba::test
