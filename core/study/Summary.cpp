#include "core/study/Summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <stdexcept>

#include "core/base/FileUtil.h"

using json = nlohmann::json;

namespace bimamba::study {

using base::read_file;
using base::write_file_atomic;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
// The paper's column order for the zero-shot tasks (Table 3).
const std::vector<std::string> kMcOrder = {"boolq",    "piqa",          "hellaswag", "winogrande",
                                           "arc_easy", "arc_challenge", "openbookqa"};

struct Cell {
    double value = kNaN;    // ppl, or accuracy in percent
    double stderr_ = kNaN;  // accuracy: standard error in percent
};

struct Table {
    std::vector<std::string> rows, ppl_cols, mc_cols;
    std::map<std::string, std::map<std::string, Cell>> cells;  // [row][metric]
    bool is_ppl(const std::string& m) const { return std::find(ppl_cols.begin(), ppl_cols.end(), m) != ppl_cols.end(); }
    double get(const std::string& row, const std::string& m) const {
        auto r = cells.find(row);
        if (r == cells.end()) return kNaN;
        auto c = r->second.find(m);
        return c == r->second.end() ? kNaN : c->second.value;
    }
};

std::string fmt(double v, bool ppl) {
    if (std::isnan(v)) return "-";
    char buf[64];
    if (ppl && v >= 1e4) {
        const int e = int(std::floor(std::log10(v)));
        std::snprintf(buf, sizeof buf, "%.1fe%d", v / std::pow(10.0, e), e);
    } else {
        std::snprintf(buf, sizeof buf, ppl && v >= 100 ? "%.1f" : "%.2f", v);
    }
    return buf;
}

Table merge(const std::vector<std::pair<std::string, json>>& evals) {
    Table t;
    for (const auto& [file, j] : evals) {
        if (!j.is_object() || !j.contains("models") || !j["models"].is_array())
            throw std::invalid_argument("summary: " + file +
                                        " is not a `bimamba eval` results file (no 'models' array)");
        for (const auto& m : j["models"]) {
            const std::string label = m.value("label", m.value("path", "?"));
            if (std::find(t.rows.begin(), t.rows.end(), label) == t.rows.end()) t.rows.push_back(label);
            if (!m.contains("results") || !m["results"].is_object())
                throw std::invalid_argument("summary: " + file + ": model '" + label + "' has no 'results'");
            for (auto& [task, r] : m["results"].items()) {
                Cell c;
                if (r.value("kind", "") == "mc") {
                    const std::string h = r.value("headline", std::string("acc"));
                    c.value = 100.0 * r.value(h, kNaN);
                    c.stderr_ = 100.0 * r.value(h + "_stderr", kNaN);
                    if (std::find(t.mc_cols.begin(), t.mc_cols.end(), task) == t.mc_cols.end())
                        t.mc_cols.push_back(task);
                } else {
                    c.value = r.value("ppl", kNaN);
                    if (std::find(t.ppl_cols.begin(), t.ppl_cols.end(), task) == t.ppl_cols.end())
                        t.ppl_cols.push_back(task);
                }
                t.cells[label][task] = c;
            }
        }
    }
    std::vector<std::string> mc;
    for (auto& n : kMcOrder)
        if (std::find(t.mc_cols.begin(), t.mc_cols.end(), n) != t.mc_cols.end()) mc.push_back(n);
    for (auto& n : t.mc_cols)
        if (std::find(mc.begin(), mc.end(), n) == mc.end()) mc.push_back(n);
    t.mc_cols = mc;
    // Zero-shot average over the tasks a row has all of (else NaN: averages over
    // different task sets would not compare).
    if (!t.mc_cols.empty())
        for (auto& row : t.rows) {
            double sum = 0;
            bool all = true;
            for (auto& c : t.mc_cols) {
                const double v = t.get(row, c);
                if (std::isnan(v)) all = false;
                sum += v;
            }
            t.cells[row]["avg"].value = all ? sum / t.mc_cols.size() : kNaN;
        }
    return t;
}

}  // namespace

SummaryResult build_summary(const json& settings, const std::vector<std::pair<std::string, json>>& evals,
                            const json& distances) {
    Table t = merge(evals);
    // Weight distances from `bimamba report --distances-out`: one more
    // lower-is-better column, the mean W1/std over the reported modules.
    if (!distances.is_null()) {
        if (!distances.contains("models") || !distances["models"].is_array())
            throw std::invalid_argument(
                "summary: the distances file has no 'models' array (bimamba report --distances-out)");
        t.ppl_cols.push_back("weight_w1");
        for (const auto& m : distances["models"]) {
            const std::string label = m.value("label", "?");
            if (std::find(t.rows.begin(), t.rows.end(), label) == t.rows.end()) t.rows.push_back(label);
            t.cells[label]["weight_w1"].value = m.value("mean_w1_over_reference_std", kNaN);
        }
        const std::string ref = distances.value("reference", "");
        if (!ref.empty()) t.cells[ref]["weight_w1"].value = 0.0;
    }
    if (settings.contains("rows")) {
        std::vector<std::string> order;
        for (const auto& r : settings["rows"]) {
            const std::string label = r.get<std::string>();
            if (std::find(t.rows.begin(), t.rows.end(), label) == t.rows.end())
                throw std::invalid_argument("summary: rows names '" + label + "', which no results file has");
            order.push_back(label);
        }
        for (auto& r : t.rows)
            if (std::find(order.begin(), order.end(), r) == order.end()) order.push_back(r);
        t.rows = order;
    }
    std::vector<std::string> metrics = t.ppl_cols;
    metrics.insert(metrics.end(), t.mc_cols.begin(), t.mc_cols.end());
    if (!t.mc_cols.empty()) metrics.push_back("avg");

    SummaryResult out;
    json rows = json::array();
    for (auto& r : t.rows) {
        json vals = json::object();
        for (auto& m : metrics) {
            const Cell c = t.cells[r][m];
            vals[m] = std::isnan(c.value) ? json(nullptr) : json(c.value);
            if (!std::isnan(c.stderr_)) vals[m + "_stderr"] = c.stderr_;
        }
        rows.push_back({{"label", r}, {"values", vals}});
    }
    out.json["rows"] = rows;
    out.json["metrics"] = metrics;

    // The table, Table 3 layout: perplexities, then accuracies (± stderr), then the average.
    std::string md = "| model |";
    for (auto& m : metrics) md += " " + m + " |";
    md += "\n|---|";
    for (size_t i = 0; i < metrics.size(); ++i) md += "---:|";
    md += "\n";
    for (auto& r : t.rows) {
        md += "| " + r + " |";
        for (auto& m : metrics) {
            const Cell c = t.cells[r][m];
            std::string s = fmt(c.value, t.is_ppl(m));
            if (!std::isnan(c.stderr_)) s += " ± " + fmt(c.stderr_, false);
            md += " " + s + " |";
        }
        md += "\n";
    }

    // Spread: per metric, max - min over runs of one configuration. `spread`
    // lists runs with different seeds, `rerun` the same seed run again (on a GPU
    // outside deterministic mode the two differ); claims use the larger.
    std::map<std::string, double> spread;
    const auto spread_over = [&](const char* key) {
        std::vector<std::string> labels;
        for (const auto& l : settings[key]) labels.push_back(l.get<std::string>());
        if (labels.size() < 2)
            throw std::invalid_argument(std::string("summary: ") + key + " needs at least two labels");
        json sj = json::object();
        std::string row;
        for (auto& m : metrics) {
            double lo = INFINITY, hi = -INFINITY;
            bool ok = true;
            for (auto& l : labels) {
                if (std::find(t.rows.begin(), t.rows.end(), l) == t.rows.end())
                    throw std::invalid_argument(std::string("summary: ") + key + " names '" + l +
                                                "', which no results file has");
                const double v = t.get(l, m);
                if (std::isnan(v)) ok = false;
                lo = std::min(lo, v), hi = std::max(hi, v);
            }
            if (ok) spread[m] = std::max(spread.count(m) ? spread[m] : 0.0, hi - lo);
            sj[m] = ok ? json(hi - lo) : json(nullptr);
            row += " " + (ok ? fmt(hi - lo, false) : std::string("-")) + " |";
        }
        std::string names;
        for (size_t i = 0; i < labels.size(); ++i) names += (i ? ", " : "") + labels[i];
        out.json[key] = {{"labels", labels}, {"values", sj}};
        return std::make_pair(names, row);
    };
    std::vector<std::pair<std::string, std::string>> spread_rows;
    if (settings.contains("spread")) {
        auto [names, row] = spread_over("spread");
        spread_rows.push_back({"seeds (" + names + ")", row});
    }
    if (settings.contains("rerun")) {
        auto [names, row] = spread_over("rerun");
        spread_rows.push_back({"same seed, run again (" + names + ")", row});
    }
    if (!spread_rows.empty()) {
        md += "\nSpread (max - min over runs of one configuration; the claims below use the larger):\n\n| runs |";
        for (auto& m : metrics) md += " " + m + " |";
        md += "\n|---|";
        for (size_t i = 0; i < metrics.size(); ++i) md += "---:|";
        md += "\n";
        for (auto& [name, row] : spread_rows) md += "| " + name + " |" + row + "\n";
    }

    // Claims: the paper's orderings, each checked against the spread.
    json claims = json::array();
    if (settings.contains("claims")) {
        md += "\n| expected (paper) | metric | result | verdict |\n|---|---|---|---|\n";
        for (const auto& c : settings["claims"]) {
            const std::string text = c.value("text", "");
            const std::string metric = c.at("metric").get<std::string>();
            const std::string better = c.at("better").get<std::string>();
            const bool lower = t.is_ppl(metric);
            const double bv = t.get(better, metric);
            const auto sp = spread.find(metric);
            std::string verdict = "reproduced", detail;
            json cmp = json::array();
            for (const auto& w : c.at("than")) {
                const std::string worse = w.get<std::string>();
                const double wv = t.get(worse, metric);
                if (std::isnan(bv) || std::isnan(wv)) {
                    verdict = "not evaluated";
                    detail += (detail.empty() ? "" : "; ") + better + " or " + worse + " has no " + metric;
                    continue;
                }
                const bool wins = lower ? bv < wv : bv > wv;
                const bool tie = bv == wv;
                const double diff = std::fabs(bv - wv);
                const bool beyond = !tie && (sp == spread.end() || diff > sp->second);
                std::string mark = tie    ? "tied"
                                   : wins ? (beyond ? "beyond spread" : "within spread")
                                          : (beyond ? "reversed" : "reversed, within spread");
                if (verdict != "not evaluated") {
                    if (!wins && beyond)
                        verdict = "not reproduced";
                    else if (verdict == "reproduced" && (!wins || !beyond))
                        verdict = "inconclusive (within spread)";
                }
                detail += (detail.empty() ? "" : "; ") + better + " " + fmt(bv, lower) + " vs " + worse + " " +
                          fmt(wv, lower) + " (" + mark + ")";
                cmp.push_back({{"than", worse},
                               {"better_value", bv},
                               {"worse_value", wv},
                               {"holds", wins},
                               {"beyond_spread", beyond}});
            }
            claims.push_back(
                {{"text", text}, {"metric", metric}, {"better", better}, {"comparisons", cmp}, {"verdict", verdict}});
            md += "| " + text + " | " + metric + " | " + detail + " | **" + verdict + "** |\n";
        }
    }
    out.json["claims"] = claims;
    out.markdown = md;
    return out;
}

std::string run_summary(const json& settings) {
    if (!settings.contains("evals") || !settings["evals"].is_array() || settings["evals"].empty())
        throw std::invalid_argument("summary: 'evals' must list the results files of `bimamba eval`");
    if (!settings.contains("out") || !settings["out"].is_string())
        throw std::invalid_argument("summary: 'out' must name the output (written as OUT.md and OUT.json)");
    std::vector<std::pair<std::string, json>> evals;
    for (const auto& f : settings["evals"]) {
        const std::string file = f.get<std::string>();
        json j;
        try {
            j = json::parse(read_file(file));
        } catch (const json::exception& e) {
            throw std::invalid_argument("summary: " + file + " is not JSON: " + e.what());
        }
        evals.emplace_back(file, std::move(j));
    }
    json distances = nullptr;
    if (settings.contains("distances")) {
        const std::string file = settings["distances"].get<std::string>();
        try {
            distances = json::parse(read_file(file));
        } catch (const json::exception& e) {
            throw std::invalid_argument("summary: " + file + " is not JSON: " + e.what());
        }
    }
    SummaryResult r = build_summary(settings, evals, distances);
    const std::string out = settings["out"].get<std::string>();
    write_file_atomic(out + ".json", r.json.dump(2) + "\n");
    write_file_atomic(out + ".md", r.markdown);
    return r.markdown;
}

}  // namespace bimamba::study
