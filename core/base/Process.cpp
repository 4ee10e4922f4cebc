#include "core/base/Process.h"

#include <signal.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <string>

namespace bimamba {

long rss_kib(pid_t pid) {
    std::ifstream in(pid > 0 ? "/proc/" + std::to_string(pid) + "/status" : std::string("/proc/self/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) {
            try {
                return std::stol(line.substr(6));
            } catch (const std::exception&) {
                return -1;
            }
        }
    return -1;
}

bool pid_alive(long long pid) {
    if (pid <= 0) return false;
    if (::kill(pid_t(pid), 0) != 0 && errno != EPERM) return false;
    // A zombie still answers kill(0); its state in /proc/<pid>/stat tells it apart.
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    const std::string line((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
    const auto rp = line.rfind(')');
    return !(rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] == 'Z');
}

}  // namespace bimamba
