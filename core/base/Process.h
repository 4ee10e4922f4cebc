#pragma once
// What Linux's /proc tells about a process (its resident memory, whether it
// still runs) and about the machine's free memory.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bimamba::base {

// Resident set size (VmRSS of /proc/<pid>/status) in KiB; pid 0 = this
// process. -1 when it cannot be read (no such process, no /proc).
long rss_kib(pid_t pid = 0);
inline double rss_mib(pid_t pid = 0) {
    const long k = rss_kib(pid);
    return k < 0 ? -1.0 : k / 1024.0;
}

// MemAvailable of /proc/meminfo in bytes: what can be allocated without
// swapping. 0 when it cannot be read.
uint64_t available_memory_bytes();

// Whether `pid` names a live process (a zombie, finished but not yet reaped,
// counts as gone). pid <= 0: false.
bool pid_alive(long long pid);

// What run_process() saw.
struct ProcessResult {
    int exit_code = -1;  // the exit status; 128 + N when killed by signal N; 127: could not start; 124: timed out
    std::string out, err;
};
// Runs argv[0] (searched on PATH) with `argv`, writes `input` to its stdin
// (then closes it) and collects stdout and stderr until it exits, or kills it
// after `timeout_s` seconds (0: no limit). Stops reading when the process has
// exited even if a child it left behind holds the pipes open (ssh's
// ControlPersist master).
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "", int timeout_s = 0);

}  // namespace bimamba::base
