#pragma once
// Alerts on a training run's metric stream, for whoever watches runs (the
// workbench's Runs tab): a NaN/Inf loss, a loss that diverges (its smoothed
// value rises by a factor over its moving minimum) and a stalled run (alive,
// but no new metric line for N times its usual interval). Each event is
// reported once: an alert re-arms only when the condition has cleared (a
// finite loss again, the loss back near its minimum, a new line). Plain C++,
// no Qt, no LibTorch; every input (rows, clock) is passed in, so it is tested
// on synthetic streams.
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace bimamba::base {

struct AlertRules {
    // Divergence: the EMA of the loss (smoothing `divergence_ema`, debiased)
    // exceeds `divergence_factor` × its minimum over the last
    // `divergence_window` rows, after `divergence_warmup` rows.
    double divergence_factor = 1.5;
    double divergence_ema = 0.6;
    int divergence_window = 500;
    int divergence_warmup = 5;
    // Stall: alive, and nothing new for `stall_factor` × the median interval
    // between the last lines (their `time` field), and at least
    // `stall_min_seconds`.
    double stall_factor = 5.0;
    double stall_min_seconds = 60.0;
};

enum class AlertKind { NaN, Divergence, Stall };

struct RunAlert {
    AlertKind kind;
    int64_t step = 0;
    std::string text;  // "NaN loss: …", "NaN gradient: …", "loss diverging: …", "stalled: …" (title before ':')
};

class RunAlertMonitor {
public:
    explicit RunAlertMonitor(AlertRules rules = {});
    void set_rules(const AlertRules& rules) { rules_ = rules; }
    const AlertRules& rules() const { return rules_; }

    // One training line: its step, loss (NaN/Inf as read; a null in the JSON
    // is NaN) and `time` (seconds since the run started; NaN when absent).
    std::vector<RunAlert> add_row(int64_t step, double loss, double time_s);
    // A run that ended with `message` (the trainer stops on a NaN/Inf loss
    // or gradient norm without writing the line: "loss is NaN at step 12; …",
    // "gradient norm is not finite at step 12; …"). The same message again
    // is the same event.
    std::vector<RunAlert> add_failure(const std::string& message);
    // `idle_s`: seconds since the last metric line was written (the file's
    // age); `alive`: the run's process is. Fires once per stall; a new line
    // (add_row) re-arms it.
    std::vector<RunAlert> check_stall(double idle_s, bool alive);

    // The usual interval between lines (median of the last ones), NaN until
    // there are three lines with a time.
    double usual_interval() const;
    // The last alert raised and not yet cleared by the stream ("" when none).
    const std::string& active() const { return active_; }
    int64_t rows() const { return rows_; }

private:
    AlertRules rules_;
    int64_t rows_ = 0;
    bool nan_armed_ = true, div_armed_ = true, stall_armed_ = true;
    std::string failure_;  // the last failure message seen
    double ema_ = 0, ema_norm_ = 0;
    std::deque<std::pair<int64_t, double>> window_min_;  // (row, smoothed loss), values increasing
    std::deque<double> times_;                           // `time` of the last lines
    std::string active_;
};

}  // namespace bimamba::base
