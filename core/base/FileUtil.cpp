#include "core/base/FileUtil.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace bimamba::base {

namespace fs = std::filesystem;

void fsync_dir(const std::string& dir) {
    int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

namespace {
std::string bytes_text(double b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
    return buf;
}
}  // namespace

std::string free_space_note(const std::string& path) {
    const fs::path p(path);
    const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
    struct statvfs vfs {};
    if (::statvfs(dir.c_str(), &vfs) != 0) return "";
    return " (" + bytes_text(double(vfs.f_bavail) * double(vfs.f_frsize)) + " free of " +
           bytes_text(double(vfs.f_blocks) * double(vfs.f_frsize)) + " on its file system)";
}

std::string write_error(const std::string& path, int err) {
    return "cannot write '" + path + "': " + std::strerror(err) + free_space_note(path);
}

void write_file_atomic(const std::string& path, const std::string& data, const std::function<void()>& before_rename) {
    fs::path p(path);
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw std::runtime_error(write_error(path, errno));
    auto fail = [&](int e) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw std::runtime_error(write_error(path, e));
    };
    const char* buf = data.data();
    size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd, buf, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(errno);
        }
        buf += n;
        left -= size_t(n);
    }
    if (::fsync(fd) != 0) fail(errno);
    if (::close(fd) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        throw std::runtime_error(write_error(path, e));
    }
    if (before_rename) before_rename();
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw std::runtime_error("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(e));
    }
    fsync_dir(p.has_parent_path() ? p.parent_path().string() : ".");
}

namespace {
int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
    return ::remove(path) == 0 ? 0 : -1;
}
}  // namespace

bool remove_tree(const std::string& path) {
    struct stat sb {};
    if (::lstat(path.c_str(), &sb) != 0) return errno == ENOENT;
    return ::nftw(path.c_str(), remove_entry, 32, FTW_DEPTH | FTW_PHYS) == 0;
}

std::string read_file(const std::string& path) {
    // Only regular files: opening a FIFO named in someone else's meta.json or
    // config (a tokenizer path, say) blocks for ever, and a device never ends.
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        throw std::runtime_error("'" + path + "' is not a regular file");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open '" + path + "'");
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string tail_lines(const std::string& path, int max_lines) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return "";
    const std::streamoff chunk = 64 * 1024;
    f.seekg(0, std::ios::end);
    const std::streamoff size = f.tellg();
    f.seekg(size > chunk ? size - chunk : 0);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<std::string> lines;
    size_t start = 0;
    for (;;) {
        const size_t nl = text.find('\n', start);
        lines.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    while (!lines.empty() && lines.back().find_first_not_of(" \t\r\n\f\v") == std::string::npos) lines.pop_back();
    const size_t first =
        lines.size() > size_t(std::max(max_lines, 0)) ? lines.size() - size_t(std::max(max_lines, 0)) : 0;
    std::string out;
    for (size_t i = first; i < lines.size(); ++i) out += (i > first ? "\n" : "") + lines[i];
    return out;
}

}  // namespace bimamba::base
