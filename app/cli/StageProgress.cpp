#include "app/cli/StageProgress.h"

#include <unistd.h>

#include <algorithm>

namespace bimamba::cli {

StageProgress::StageProgress(std::string stage, int64_t total, std::string unit, bool enabled, std::FILE* out)
    : stage_(std::move(stage)),
      unit_(std::move(unit)),
      total_(std::max<int64_t>(1, total)),
      on_(enabled),
      tty_(enabled && ::isatty(::fileno(out))),
      out_(out),
      t0_(Clock::now()) {}

StageProgress::~StageProgress() {
    if (!finished_) finish();
}

std::string StageProgress::clock(double seconds) {
    const long long s = std::llround(std::max(0.0, seconds));
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
    return buf;
}

void StageProgress::update(int64_t done, int64_t tokens, double loss) {
    const auto now = Clock::now();
    if (done_first_ < 0 && done > 0) {  // the first unit of work done: set-up time stays out of the rate
        done_first_ = done;
        t_first_ = now;
    }
    done_ = std::min(done, total_);
    if (tokens >= 0) tokens_ = tokens;
    if (!std::isnan(loss)) loss_ = loss;
    if (!on_) return;
    if (tty_) {
        if (std::chrono::duration<double>(now - last_draw_).count() < 0.1 && done_ < total_) return;
    } else {
        const int tenth = static_cast<int>(10 * done_ / total_);
        if (tenth == last_tenth_ || done_ == total_) return;  // the last line is finish()'s
        last_tenth_ = tenth;
    }
    last_draw_ = now;
    draw(false);
}

void StageProgress::set_note(std::string note) {
    note_ = std::move(note);
}

void StageProgress::finish() {
    if (finished_) return;
    finished_ = true;
    if (on_) draw(true);
}

void StageProgress::draw(bool final_line) {
    const int width = 20;
    const int fill = static_cast<int>(width * done_ / total_);
    std::string line = stage_;
    if (line.size() < 12) line.resize(12, ' ');
    line += " [" + std::string(fill, '#') + std::string(width - fill, '.') + "] ";
    line += std::to_string(done_) + "/" + std::to_string(total_) + " " + unit_;
    char buf[64];
    if (tokens_ >= 0) {
        if (tokens_ < 1000000)
            std::snprintf(buf, sizeof buf, "  %.1f k tok", tokens_ / 1e3);
        else
            std::snprintf(buf, sizeof buf, "  %.2f M tok", tokens_ / 1e6);
        line += buf;
    }
    if (!std::isnan(loss_)) {
        std::snprintf(buf, sizeof buf, "  loss %.3f", loss_);
        line += buf;
    }
    if (!note_.empty()) line += "  " + note_;
    const auto now = Clock::now();
    if (final_line) {
        line += "  " + clock(std::chrono::duration<double>(now - t0_).count());
    } else if (done_first_ >= 0 && done_ > done_first_) {
        const double rate = (done_ - done_first_) / std::chrono::duration<double>(now - t_first_).count();
        line += "  " + clock((total_ - done_) / rate) + " left";
    }
    // \r + clear to the end of the line on a terminal; plain lines elsewhere.
    if (tty_)
        std::fprintf(out_, "\r%s\033[K%s", line.c_str(), final_line ? "\n" : "");
    else
        std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
}

}  // namespace bimamba::cli
