#pragma once
// One progress bar per stage of a long CLI command (quickstart, study):
//
//   teacher     [###########.........] 165/300 steps  169.0 k tok  loss 4.213  val ppl 97.90  0:41 left
//
// On a terminal the line is redrawn in place (at most 10 times a second); on
// anything else (CI logs, pipes) a line is written at every tenth of the work
// and at the end, so logs stay short. finish() leaves the final line with the
// elapsed time instead of the estimate. Not thread-safe: call from one thread.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace bimamba::cli {

class StageProgress {
public:
    // `stage`: the label at the start of the line; `total`: units of work
    // (> 0); `unit`: their name ("steps", "docs"); `enabled` false draws nothing.
    StageProgress(std::string stage, int64_t total, std::string unit = "steps", bool enabled = true,
                  std::FILE* out = stderr);
    ~StageProgress();  // finishes the line if finish() was not called

    // `done` of `total` units; `tokens` < 0 and a NaN `loss` are left out of the line.
    void update(int64_t done, int64_t tokens = -1, double loss = std::nan(""));
    // Free text at the end of the line (e.g. "val ppl 97.9"), kept until changed.
    void set_note(std::string note);
    // Draws the final line (elapsed time) and ends it with a newline.
    void finish();

    // "1:05" / "1:02:03" (for callers printing their own summary lines).
    static std::string clock(double seconds);

private:
    void draw(bool final_line);

    std::string stage_, unit_, note_;
    int64_t total_, done_ = 0, tokens_ = -1;
    double loss_ = std::nan("");
    bool on_, tty_, finished_ = false;
    std::FILE* out_;
    using Clock = std::chrono::steady_clock;
    Clock::time_point t0_, last_draw_{};
    // The rate behind the estimate starts at the first update with work done (set-up time left out).
    Clock::time_point t_first_{};
    int64_t done_first_ = -1;
    int last_tenth_ = -1;
};

}  // namespace bimamba::cli
