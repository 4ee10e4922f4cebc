#include "core/base/RunAlerts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace bimamba::base {

namespace {
std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.4g", v);
    return b;
}
constexpr size_t kIntervalLines = 20;  // lines the usual interval is the median over
}  // namespace

RunAlertMonitor::RunAlertMonitor(AlertRules rules) : rules_(rules) {}

std::vector<RunAlert> RunAlertMonitor::add_row(int64_t step, double loss, double time_s) {
    std::vector<RunAlert> out;
    ++rows_;
    if (std::isfinite(time_s)) {
        times_.push_back(time_s);
        if (times_.size() > kIntervalLines + 1) times_.pop_front();
    }
    // A new line ends a stall.
    if (!stall_armed_ && active_.rfind("stalled", 0) == 0) active_.clear();
    stall_armed_ = true;

    if (!std::isfinite(loss)) {
        if (nan_armed_) {
            nan_armed_ = false;
            out.push_back({AlertKind::NaN, step,
                           std::string(std::isnan(loss) ? "NaN" : "Inf") + " loss: at step " + std::to_string(step)});
            active_ = out.back().text;
        }
        return out;  // a NaN takes no part in the moving minimum
    }
    nan_armed_ = true;

    const double a = std::clamp(rules_.divergence_ema, 0.0, 0.999);
    ema_ = a * ema_ + (1 - a) * loss;
    ema_norm_ = a * ema_norm_ + (1 - a);
    const double smooth = ema_ / ema_norm_;
    // Minimum over the last `divergence_window` smoothed values: a deque of
    // (row, value) with increasing values, so a long history costs O(1) a row.
    while (!window_min_.empty() && window_min_.back().second >= smooth) window_min_.pop_back();
    window_min_.emplace_back(rows_, smooth);
    while (window_min_.front().first <= rows_ - std::max(1, rules_.divergence_window)) window_min_.pop_front();
    const double lo = window_min_.front().second;
    if (rows_ <= rules_.divergence_warmup || !(lo > 0)) return out;
    if (div_armed_ && smooth > rules_.divergence_factor * lo) {
        div_armed_ = false;
        out.push_back({AlertKind::Divergence, step,
                       "loss diverging: " + num(smooth) + " at step " + std::to_string(step) + " is over " +
                           num(rules_.divergence_factor) + " × its minimum " + num(lo)});
        active_ = out.back().text;
    } else if (!div_armed_ && smooth < (1 + (rules_.divergence_factor - 1) / 2) * lo) {
        div_armed_ = true;  // back near its minimum: the next rise is a new event
        if (active_.rfind("loss diverging", 0) == 0) active_.clear();
    }
    return out;
}

std::vector<RunAlert> RunAlertMonitor::add_failure(const std::string& message) {
    std::vector<RunAlert> out;
    if (message == failure_) return out;
    failure_ = message;
    // The trainer's messages when it stops on a non-finite value (core/train/Trainer.cpp).
    static const struct {
        const char *needle, *title;
    } kinds[] = {{"loss is NaN", "NaN loss"},
                 {"loss is Inf", "Inf loss"},
                 {"loss is not finite", "NaN loss"},  // data parallel: some rank's
                 {"gradient norm is not finite", "NaN gradient"}};
    for (const auto& k : kinds) {
        const size_t at = message.find(k.needle);
        if (at == std::string::npos) continue;
        if (nan_armed_) {
            nan_armed_ = false;
            const std::string first = message.substr(at, message.find_first_of(";\n", at) - at);
            out.push_back({AlertKind::NaN, 0, std::string(k.title) + ": the run stopped (" + first + ")"});
            active_ = out.back().text;
        }
        break;
    }
    return out;
}

double RunAlertMonitor::usual_interval() const {
    std::vector<double> gaps;
    for (size_t i = 1; i < times_.size(); ++i)
        if (times_[i] > times_[i - 1]) gaps.push_back(times_[i] - times_[i - 1]);
    if (gaps.size() < 2) return std::numeric_limits<double>::quiet_NaN();
    std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
    return gaps[gaps.size() / 2];
}

std::vector<RunAlert> RunAlertMonitor::check_stall(double idle_s, bool alive) {
    std::vector<RunAlert> out;
    if (!alive) {  // an ended run is not stalled
        if (active_.rfind("stalled", 0) == 0) active_.clear();
        stall_armed_ = true;
        return out;
    }
    const double usual = usual_interval();
    if (!std::isfinite(usual) || !std::isfinite(idle_s)) return out;
    const double limit = std::max(rules_.stall_factor * usual, rules_.stall_min_seconds);
    if (stall_armed_ && idle_s > limit) {
        stall_armed_ = false;
        out.push_back({AlertKind::Stall, 0,
                       "stalled: no new metric for " + num(idle_s) + " s (usually every " + num(usual) + " s)"});
        active_ = out.back().text;
    }
    return out;
}

}  // namespace bimamba::base
