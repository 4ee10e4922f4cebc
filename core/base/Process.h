#pragma once
// What Linux's /proc tells about a process: its resident memory and whether
// it still runs.
#include <sys/types.h>

namespace bimamba {

// Resident set size (VmRSS of /proc/<pid>/status) in KiB; pid 0 = this
// process. -1 when it cannot be read (no such process, no /proc).
long rss_kib(pid_t pid = 0);
inline double rss_mib(pid_t pid = 0) {
    const long k = rss_kib(pid);
    return k < 0 ? -1.0 : k / 1024.0;
}

// Whether `pid` names a live process (a zombie, finished but not yet reaped,
// counts as gone). pid <= 0: false.
bool pid_alive(long long pid);

}  // namespace bimamba
