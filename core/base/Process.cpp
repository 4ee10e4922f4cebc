#include "core/base/Process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <fstream>
#include <iterator>
#include <string>

namespace bimamba::base {

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

uint64_t available_memory_bytes() {
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    uint64_t kb = 0;
    while (in >> key >> kb >> unit)
        if (key == "MemAvailable:") return kb * 1024;
    return 0;
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

}  // namespace bimamba::base

namespace bimamba::base {

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input, int timeout_s) {
    ProcessResult r;
    if (argv.empty()) throw std::invalid_argument("run_process: empty argument vector");
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
    if (pid == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        ::execvp(args[0], args.data());
        const std::string msg = "cannot run " + argv[0] + ": " + std::strerror(errno) + "\n";
        (void)!::write(2, msg.data(), msg.size());
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    // SIGPIPE (the child closed its stdin early) is blocked while we write.
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    size_t written = 0;
    int in_fd = in[1];
    if (input.empty()) {
        ::close(in_fd);
        in_fd = -1;
    } else {
        ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
    }
    const auto start = std::chrono::steady_clock::now();
    bool out_open = true, err_open = true, exited = false;
    int status = 0;
    char buf[65536];
    while (out_open || err_open || in_fd >= 0) {
        pollfd fds[3];
        int n = 0;
        if (out_open) fds[n++] = {out[0], POLLIN, 0};
        if (err_open) fds[n++] = {err[0], POLLIN, 0};
        if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
        ::poll(fds, n, 100);
        for (int i = 0; i < n; ++i) {
            if (!fds[i].revents) continue;
            if (fds[i].fd == in_fd) {
                const ssize_t w = ::write(in_fd, input.data() + written, input.size() - written);
                if (w > 0) written += size_t(w);
                if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();  // EPIPE: it stopped reading
                if (written >= input.size()) {
                    ::close(in_fd);
                    in_fd = -1;
                }
                continue;
            }
            const ssize_t k = ::read(fds[i].fd, buf, sizeof buf);
            if (k > 0) {
                (fds[i].fd == out[0] ? r.out : r.err).append(buf, size_t(k));
            } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
                (fds[i].fd == out[0] ? out_open : err_open) = false;
            }
        }
        if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            // What is still in the pipes; a grandchild may keep them open.
            for (int fd : {out[0], err[0]}) {
                ::fcntl(fd, F_SETFL, O_NONBLOCK);
                ssize_t k;
                while ((k = ::read(fd, buf, sizeof buf)) > 0) (fd == out[0] ? r.out : r.err).append(buf, size_t(k));
            }
            break;
        }
        if (timeout_s > 0 && std::chrono::steady_clock::now() - start > std::chrono::seconds(timeout_s)) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            exited = true;
            r.exit_code = 124;
            r.err += "(timed out after " + std::to_string(timeout_s) + " s)\n";
            break;
        }
    }
    if (!exited) ::waitpid(pid, &status, 0);
    if (in_fd >= 0) ::close(in_fd);
    ::close(out[0]);
    ::close(err[0]);
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
    if (r.exit_code != 124) r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

}  // namespace bimamba::base
