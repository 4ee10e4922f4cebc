#include "core/train/RunDir.h"

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
#include "core/base/ModelSource.h"

namespace fs = std::filesystem;

namespace bimamba {

std::string RunDir::iso8601_now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

RunDir::RunDir(std::string dir) : dir_(std::move(dir)) {
    std::error_code ec;
    fs::create_directories(checkpoints_dir(), ec);
    if (ec) throw std::runtime_error("run directory: cannot create '" + checkpoints_dir() + "': " + ec.message());
    metrics_ = std::fopen((dir_ + "/metrics.jsonl").c_str(), "ab");
    log_ = std::fopen((dir_ + "/train.log").c_str(), "ab");
    if (!metrics_ || !log_)
        throw std::runtime_error("run directory: cannot open files in '" + dir_ + "': " + std::strerror(errno));
    started_ = iso8601_now();
    try {  // a resumed run keeps its start time
        auto st = nlohmann::json::parse(read_file(dir_ + "/status.json"));
        if (st.contains("started") && st["started"].is_string()) started_ = st["started"].get<std::string>();
    } catch (...) {
    }
}

RunDir::~RunDir() {
    if (metrics_) std::fclose(metrics_);
    if (log_) std::fclose(log_);
}

void RunDir::append_metrics(const nlohmann::json& line) {
    // One write per line, so a reader never sees a line without its '\n' once flushed.
    std::string s = line.dump() + "\n";
    std::fwrite(s.data(), 1, s.size(), metrics_);
    std::fflush(metrics_);
}

void RunDir::truncate_metrics(int64_t step) {
    const std::string path = dir_ + "/metrics.jsonl";
    const std::string text = read_file(path);
    std::vector<std::string> lines;
    std::vector<nlohmann::json> rows;
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string line = text.substr(start, nl - start);
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) continue;  // torn by a kill (the text after the last '\n' is dropped too)
        lines.push_back(std::move(line));
        rows.push_back(std::move(j));
    }
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
    write_file_atomic(path, kept);
    metrics_ = std::fopen(path.c_str(), "ab");
    if (!metrics_) throw std::runtime_error("run directory: cannot reopen '" + path + "': " + std::strerror(errno));
}

void RunDir::log(const std::string& msg, bool echo) {
    std::string s = "[" + iso8601_now() + "] " + msg + "\n";
    std::fwrite(s.data(), 1, s.size(), log_);
    std::fflush(log_);
    if (echo) std::cerr << msg << std::endl;
}

void RunDir::write_status(const std::string& state, int64_t step, int64_t total_steps, const std::string& message) {
    nlohmann::json j = {{"state", state},
                        {"pid", static_cast<int64_t>(getpid())},
                        {"step", step},
                        {"total_steps", total_steps},
                        {"started", started_},
                        {"ended", state == "running" ? nlohmann::json(nullptr) : nlohmann::json(iso8601_now())},
                        {"message", message}};
    write_file_atomic(dir_ + "/status.json", j.dump(2) + "\n");
}

std::string RunDir::checkpoint_path(int64_t step) const {
    char name[32];
    std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
    return checkpoints_dir() + "/" + name;
}

void RunDir::publish_checkpoint(const std::string& ckpt_dir, int64_t keep) {
    fsync_dir(checkpoints_dir());
    write_file_atomic(checkpoints_dir() + "/latest", fs::path(ckpt_dir).filename().string() + "\n");
    std::vector<std::string> steps;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(checkpoints_dir(), ec)) {
        const std::string n = e.path().filename().string();
        if (!e.is_directory()) continue;
        if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0)
            bimamba::remove_tree(e.path());  // left by a killed writer
        else if (n.rfind("step_", 0) == 0)
            steps.push_back(n);
    }
    std::sort(steps.begin(), steps.end());
    const std::string newest = fs::path(ckpt_dir).filename().string();
    for (size_t i = 0; i + keep < steps.size(); ++i)
        if (steps[i] != newest) bimamba::remove_tree(checkpoints_dir() + "/" + steps[i]);
}

std::string RunDir::latest_checkpoint() const { return bimamba::latest_checkpoint(dir_); }

}  // namespace bimamba
