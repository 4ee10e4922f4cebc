#include "core/base/Lineage.h"

#include <algorithm>
#include <filesystem>
#include <regex>

#include "core/base/FileUtil.h"
#include "core/base/RunDir.h"
#include "core/base/TrainConfig.h"

namespace fs = std::filesystem;

namespace bimamba::base {

namespace {
bool is_run(const fs::path& p) {
    std::error_code ec;
    return fs::is_directory(p, ec) && looks_like_run_dir(p.string());
}

// run + checkpoint of an existing path, if it is one of ours.
bool classify(const fs::path& p, LineageLink* link) {
    std::error_code ec;
    if (!fs::is_directory(p, ec)) return false;
    if (is_run(p) && fs::is_directory(p / run_files::kCheckpoints, ec)) {
        link->run_dir = fs::weakly_canonical(p, ec).string();
        try {
            link->checkpoint = latest_checkpoint(p.string());
        } catch (const std::exception&) {
            link->checkpoint.clear();
        }
        return true;
    }
    const fs::path parent = p.parent_path();
    if (parent.filename() == run_files::kCheckpoints && is_run(parent.parent_path())) {
        link->run_dir = fs::weakly_canonical(parent.parent_path(), ec).string();
        link->checkpoint = fs::weakly_canonical(p, ec).string();
        return true;
    }
    return false;
}

// The parent's tokens at the checkpoint: its trainer_state.json; else the
// checkpoint's step (its folder name; for no checkpoint, the run's last step
// in status.json) × the parent config's tokens per step, as the trainer
// counts them; else, without a readable config, its metrics.
double tokens_at(const LineageLink& link) {
    if (!link.checkpoint.empty()) {
        try {
            const auto st = nlohmann::json::parse(read_file(link.checkpoint + "/trainer_state.json"));
            if (st.contains("tokens") && st["tokens"].is_number()) return st["tokens"].get<double>();
        } catch (const std::exception&) {
            // pruned or unreadable: from the step
        }
    }
    double step = -1;
    std::smatch m;
    const std::string name = fs::path(link.checkpoint).filename().string();
    if (std::regex_match(name, m, std::regex("step_0*([0-9]+)"))) step = std::stod(m[1].str());
    if (link.checkpoint.empty()) {
        const RunStatus st = read_run_status(link.run_dir);
        if (st.valid) step = double(st.step);
    }
    if (step >= 0) {
        try {
            return step * double(TrainConfig::from_json(read_run_config(link.run_dir)).tokens_per_optimizer_step());
        } catch (const std::exception&) {
            // not a config this version reads: from the metrics
        }
    }
    double tokens = 0;
    for (const auto& row : read_metrics(link.run_dir)) {
        if (!row.contains("tokens") || !row["tokens"].is_number()) continue;
        if (step >= 0 && row.contains("step") && row["step"].is_number() && row["step"].get<double>() > step) continue;
        tokens = std::max(tokens, row["tokens"].get<double>());
    }
    return tokens;
}
}  // namespace

bool init_from_parent(const std::string& run_dir, LineageLink* link) {
    const nlohmann::json cfg = read_run_config(run_dir);
    if (!cfg.is_object() || !cfg.contains("init_from") || !cfg["init_from"].is_string()) return false;
    const fs::path init = cfg["init_from"].get<std::string>();
    if (init.empty()) return false;
    std::vector<fs::path> candidates;
    if (init.is_absolute()) {
        candidates.push_back(init);
    } else {
        for (fs::path base = fs::absolute(run_dir); !base.empty(); base = base.parent_path()) {
            candidates.push_back(base / init);
            if (base == base.parent_path() || candidates.size() > 8) break;
        }
        candidates.push_back(fs::absolute(init));
    }
    for (const auto& c : candidates)
        if (classify(c.lexically_normal(), link)) {
            link->tokens = tokens_at(*link);
            return true;
        }
    // Moved: …/<name>/checkpoints/<step> as a sibling of this run, or …/<name>.
    const fs::path siblings = fs::absolute(run_dir).lexically_normal().parent_path();
    const fs::path rel = init.lexically_normal();
    fs::path moved;
    if (rel.has_parent_path() && rel.parent_path().filename() == run_files::kCheckpoints)
        moved = siblings / rel.parent_path().parent_path().filename() / run_files::kCheckpoints / rel.filename();
    else
        moved = siblings / rel.filename();
    if (classify(moved, link)) {
        link->tokens = tokens_at(*link);
        return true;
    }
    return false;
}

std::vector<LineageLink> run_lineage(const std::string& run_dir) {
    std::vector<LineageLink> out;
    std::error_code ec;
    std::vector<std::string> seen{fs::weakly_canonical(run_dir, ec).string()};
    std::string cur = run_dir;
    LineageLink link;
    while (out.size() < 32 && init_from_parent(cur, &link)) {
        if (std::find(seen.begin(), seen.end(), link.run_dir) != seen.end()) break;
        seen.push_back(link.run_dir);
        out.push_back(link);
        cur = link.run_dir;
    }
    return out;
}

double lineage_token_offset(const std::string& run_dir) {
    double sum = 0;
    for (const auto& l : run_lineage(run_dir)) sum += l.tokens;
    return sum;
}

}  // namespace bimamba::base
