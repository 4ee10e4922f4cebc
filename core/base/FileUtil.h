#pragma once
// Small file helpers shared by every area: atomic writes and reads.
#include <filesystem>
#include <functional>
#include <string>

namespace bimamba::base {

// Writes `data` to `path` atomically: `path.tmp.<pid>` in the same folder,
// fsync, rename over `path`, fsync of the folder. A crash at any point leaves
// either the old file or the new one, never a torn one. A failed write
// (a full disk, a read-only folder) removes the temporary file and throws
// write_error's message. `before_rename` (tests) runs once the temporary file
// is complete, before it replaces `path`.
void write_file_atomic(const std::string& path, const std::string& data,
                       const std::function<void()>& before_rename = {});
// The message for a failed write of `path` with errno `err`, naming the file,
// the reason and the space left on its file system, e.g. "cannot write
// 'run/status.json': No space left on device (0 B free of 2.0 MiB on its file
// system)".
std::string write_error(const std::string& path, int err);
// " (12.0 KiB free of 2.0 MiB on its file system)" for the folder of `path`;
// "" when that cannot be read.
std::string free_space_note(const std::string& path);
std::string read_file(const std::string& path);  // throws naming the path
void fsync_dir(const std::string& dir);
// The last `max_lines` lines of a text file (at most its last 64 KiB read),
// trailing blank lines left out, joined by '\n'; "" when it cannot be read.
std::string tail_lines(const std::string& path, int max_lines);

// Deletes a file or a folder tree (no error if absent; returns false if
// something could not be removed). Use this, not std::filesystem::remove_all:
// libtorch.so exports its own copy of remove_all that crashes when it wins
// the symbol lookup (seen with the PyPI torch 2.11 wheels).
bool remove_tree(const std::string& path);
inline bool remove_tree(const std::filesystem::path& path) {
    return remove_tree(path.string());
}

}  // namespace bimamba::base
