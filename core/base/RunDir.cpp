#include "core/base/RunDir.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "core/base/FileUtil.h"
#include "core/base/MetricsRows.h"
#include "core/base/StringUtil.h"

namespace fs = std::filesystem;

namespace bimamba::base {

namespace {
// Splits `text` into its complete lines that parse as JSON objects (the
// text after the last '\n' is an unfinished line). `lines` gets their text.
std::vector<nlohmann::json> json_lines(const std::string& text, std::vector<std::string>* lines = nullptr) {
    std::vector<nlohmann::json> rows;
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string line = text.substr(start, nl - start);
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) continue;  // torn by a kill
        if (lines) lines->push_back(std::move(line));
        rows.push_back(std::move(j));
    }
    return rows;
}

// The JSON object in `path`, or a discarded value when missing or not an object.
nlohmann::json read_json_object(const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return nlohmann::json(nlohmann::json::value_t::discarded);
    try {
        auto j = nlohmann::json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
        return j.is_object() ? j : nlohmann::json(nlohmann::json::value_t::discarded);
    } catch (const std::exception&) {
        return nlohmann::json(nlohmann::json::value_t::discarded);
    }
}

// The integer a small text file holds (surrounding whitespace ignored).
bool read_int_file(const std::string& path, int64_t* out) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return false;
    try {
        const std::string t = trim(read_file(path));
        size_t used = 0;
        const long long v = std::stoll(t, &used);
        if (used != t.size()) return false;
        *out = v;
        return true;
    } catch (const std::exception&) {
        return false;
    }
}
}  // namespace

std::string latest_checkpoint(const std::string& run_dir) {
    const fs::path ckdir = fs::path(run_dir) / run_files::kCheckpoints;
    const fs::path latest = ckdir / run_files::kLatest;
    if (!fs::exists(latest)) return "";
    const std::string name = trim(read_file(latest.string()));
    if (name.empty()) return "";
    const fs::path c = fs::path(name).is_absolute() ? fs::path(name) : ckdir / name;
    if (!fs::is_directory(c))
        throw std::runtime_error("run directory '" + run_dir + "': checkpoints/latest names '" + name +
                                 "', which does not exist");
    return c.string();
}

RunStatus read_run_status(const std::string& run_dir) {
    RunStatus s;
    const auto o = read_json_object((fs::path(run_dir) / run_files::kStatus).string());
    if (o.is_discarded() || o.empty()) return s;
    s.valid = true;
    auto str = [&](const char* k) {
        return o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : std::string();
    };
    // A number outside int64 (1e300: undefined behaviour as a cast; found by
    // tests/fuzz/fuzz_metrics_rows) reads as 0, as a missing one does.
    auto num = [&](const char* k) -> int64_t {
        if (!o.contains(k) || !o[k].is_number()) return 0;
        const double v = o[k].get<double>();
        return v >= -9.2e18 && v <= 9.2e18 ? int64_t(v) : 0;
    };
    s.state = str("state");
    s.pid = num("pid");
    s.step = num("step");
    s.total_steps = num("total_steps");
    s.started = str("started");
    s.ended = str("ended");
    s.message = str("message");
    return s;
}

nlohmann::json read_run_config(const std::string& run_dir) {
    auto j = read_json_object((fs::path(run_dir) / run_files::kTrainConfig).string());
    if (j.is_discarded() || j.empty()) j = read_json_object((fs::path(run_dir) / run_files::kLaunchConfig).string());
    return j.is_discarded() ? nlohmann::json::object() : j;
}

std::vector<nlohmann::json> read_metrics(const std::string& run_dir) {
    const std::string path = (fs::path(run_dir) / run_files::kMetrics).string();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return {};
    std::vector<nlohmann::json> rows;
    for (auto& j : json_lines(read_file(path)))
        if (j.is_object()) rows.push_back(std::move(j));
    std::vector<nlohmann::json> kept;
    for (size_t i : metrics_rows_kept(rows)) kept.push_back(std::move(rows[i]));
    return kept;
}

int64_t read_launcher_pid(const std::string& run_dir) {
    int64_t v = 0;
    return read_int_file((fs::path(run_dir) / run_files::kLauncherPid).string(), &v) ? v : 0;
}

int read_exit_code(const std::string& run_dir) {
    int64_t v = 0;
    return read_int_file((fs::path(run_dir) / run_files::kExitCode).string(), &v) ? int(v) : -1;
}

bool looks_like_run_dir(const std::string& dir) {
    std::error_code ec;
    for (const char* f : {run_files::kStatus, run_files::kMetrics, run_files::kTrainConfig, run_files::kLaunchConfig})
        if (fs::exists(fs::path(dir) / f, ec)) return true;
    return false;
}

std::string RunDir::iso8601_now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

namespace {
// NAME.tmp.<digits>: the temporary file of write_file_atomic or SafetensorsWriter.
bool is_atomic_write_leftover(const std::string& name) {
    const auto t = name.rfind(".tmp.");
    if (t == std::string::npos || t == 0 || t + 5 == name.size()) return false;
    return std::all_of(name.begin() + long(t) + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

RunDir::RunDir(std::string dir) : dir_(std::move(dir)) {
    std::error_code ec;
    fs::create_directories(checkpoints_dir(), ec);
    if (ec) throw std::runtime_error("run directory: cannot create '" + checkpoints_dir() + "': " + ec.message());
    for (const std::string& d : {dir_, checkpoints_dir()})
        for (auto& e : fs::directory_iterator(d, ec))
            if (e.is_regular_file(ec) && is_atomic_write_leftover(e.path().filename().string()))
                fs::remove(e.path(), ec);
    metrics_ = std::fopen((dir_ + "/" + run_files::kMetrics).c_str(), "ab");
    if (!metrics_) throw std::runtime_error(write_error(dir_ + "/" + run_files::kMetrics, errno));
    log_ = std::fopen((dir_ + "/" + run_files::kTrainLog).c_str(), "ab");
    if (!log_) throw std::runtime_error(write_error(dir_ + "/" + run_files::kTrainLog, errno));
    started_ = iso8601_now();
    try {  // a resumed run keeps its start time
        auto st = nlohmann::json::parse(read_file(dir_ + "/" + run_files::kStatus));
        if (st.contains("started") && st["started"].is_string()) started_ = st["started"].get<std::string>();
    } catch (...) {
    }
}

RunDir::~RunDir() {
    if (metrics_) std::fclose(metrics_);
    if (log_) std::fclose(log_);
}

void RunDir::append_metrics(const nlohmann::json& line) {
    const std::string path = dir_ + "/" + run_files::kMetrics;
    if (!metrics_) throw std::runtime_error("run directory: '" + path + "' is not open");
    // One write per line, so a reader never sees a line without its '\n' once flushed.
    const std::string s = line.dump() + "\n";
    auto put = [&](const char* p, size_t n) {
        errno = 0;
        if (std::fwrite(p, 1, n, metrics_) != n || std::fflush(metrics_) != 0) {
            const int e = errno ? errno : EIO;
            std::clearerr(metrics_);
            throw std::runtime_error(write_error(path, e));
        }
    };
    if (fault_point_) {  // crash tests: a kill between the halves tears the line
        put(s.data(), s.size() / 2);
        at("metrics.torn");
        put(s.data() + s.size() / 2, s.size() - s.size() / 2);
    } else {
        put(s.data(), s.size());
    }
    at("metrics.appended");
}

void RunDir::truncate_metrics(int64_t step) {
    const std::string path = dir_ + "/" + run_files::kMetrics;
    const std::string text = read_file(path);
    std::vector<std::string> lines;  // a line torn by a kill is dropped (the text after the last '\n' too)
    const std::vector<nlohmann::json> rows = json_lines(text, &lines);
    std::string kept;
    for (size_t i : metrics_rows_kept(rows)) {
        const auto st = rows[i].find("step");
        if (rows[i].is_object() && st != rows[i].end() && st->is_number() && st->get<double>() > double(step)) continue;
        kept += lines[i];
        kept += '\n';
    }
    if (kept == text) return;
    std::fclose(metrics_);
    metrics_ = nullptr;
    write_file_atomic(path, kept, [&] { at("metrics.truncate.tmp"); });
    metrics_ = std::fopen(path.c_str(), "ab");
    if (!metrics_) throw std::runtime_error("run directory: cannot reopen '" + path + "': " + std::strerror(errno));
}

void RunDir::log(const std::string& msg, bool echo) {
    std::string s = "[" + iso8601_now() + "] " + msg + "\n";
    if (std::fwrite(s.data(), 1, s.size(), log_) != s.size() || std::fflush(log_) != 0) std::clearerr(log_);
    if (echo) std::cerr << msg << std::endl;
}

void RunDir::write_status(const std::string& state, int64_t step, int64_t total_steps, const std::string& message) {
    nlohmann::json j = {
        {"state", state},      {"pid", static_cast<int64_t>(getpid())},
        {"step", step},        {"total_steps", total_steps},
        {"started", started_}, {"ended", state == "running" ? nlohmann::json(nullptr) : nlohmann::json(iso8601_now())},
        {"message", message}};
    write_file_atomic(dir_ + "/" + run_files::kStatus, j.dump(2) + "\n", [&] { at("status.tmp"); });
}

std::string RunDir::checkpoint_path(int64_t step) const {
    char name[32];
    std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
    return checkpoints_dir() + "/" + name;
}

void RunDir::publish_checkpoint(const std::string& ckpt_dir, int64_t keep) {
    fsync_dir(checkpoints_dir());
    write_file_atomic(checkpoints_dir() + "/" + run_files::kLatest, fs::path(ckpt_dir).filename().string() + "\n",
                      [&] { at("latest.tmp"); });
    at("checkpoint.published");
    std::vector<std::string> steps;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(checkpoints_dir(), ec)) {
        const std::string n = e.path().filename().string();
        if (!e.is_directory()) continue;
        if (n.size() > 4 && ends_with(n, ".tmp"))
            base::remove_tree(e.path());  // left by a killed writer
        else if (starts_with(n, "step_"))
            steps.push_back(n);
    }
    std::sort(steps.begin(), steps.end());
    const std::string newest = fs::path(ckpt_dir).filename().string();
    for (size_t i = 0; i + keep < steps.size(); ++i)
        if (steps[i] != newest) {
            base::remove_tree(checkpoints_dir() + "/" + steps[i]);
            at("checkpoint.pruned");
        }
}

}  // namespace bimamba::base
