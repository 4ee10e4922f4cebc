#include "core/base/FileUtil.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
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

void write_file_atomic(const std::string& path, const std::string& data) {
    fs::path p(path);
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw std::runtime_error("cannot write '" + tmp + "': " + std::strerror(errno));
    const char* buf = data.data();
    size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd, buf, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw std::runtime_error("write to '" + tmp + "' failed: " + std::strerror(e));
        }
        buf += n;
        left -= size_t(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw std::runtime_error("cannot flush '" + tmp + "'");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw std::runtime_error("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(e));
    }
    fsync_dir(p.has_parent_path() ? p.parent_path().string() : ".");
}

namespace {
int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path) == 0 ? 0 : -1; }
}  // namespace

bool remove_tree(const std::string& path) {
    struct stat sb {};
    if (::lstat(path.c_str(), &sb) != 0) return errno == ENOENT;
    return ::nftw(path.c_str(), remove_entry, 32, FTW_DEPTH | FTW_PHYS) == 0;
}

std::string read_file(const std::string& path) {
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
    const size_t first = lines.size() > size_t(std::max(max_lines, 0)) ? lines.size() - size_t(std::max(max_lines, 0)) : 0;
    std::string out;
    for (size_t i = first; i < lines.size(); ++i) out += (i > first ? "\n" : "") + lines[i];
    return out;
}

}  // namespace bimamba::base
