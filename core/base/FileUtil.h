#pragma once
// Small file helpers shared by every area: atomic writes and reads.
#include <string>

namespace bimamba {

// Writes `data` to `path` atomically: `path.tmp.<pid>` in the same folder,
// fsync, rename over `path`, fsync of the folder. A crash at any point leaves
// either the old file or the new one, never a torn one.
void write_file_atomic(const std::string& path, const std::string& data);
std::string read_file(const std::string& path);  // throws naming the path
void fsync_dir(const std::string& dir);

}  // namespace bimamba
