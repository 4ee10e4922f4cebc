#include "core/eval/EvalTable.h"

#include "core/eval/MultipleChoice.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace bimamba::eval {

namespace {
const std::vector<std::string> kMcOrder = {"boolq",    "piqa",          "hellaswag", "winogrande",
                                           "arc_easy", "arc_challenge", "openbookqa"};
bool is_ppl_column(const std::string& c) {
    return c != "avg" && std::find(kMcOrder.begin(), kMcOrder.end(), c) == kMcOrder.end();
}
}  // namespace

std::string format_ppl(double v) {
    char buf[64];
    if (std::isnan(v)) return "-";
    if (v >= 1e4) {
        const int e = int(std::floor(std::log10(v)));
        std::snprintf(buf, sizeof buf, "%.1fe%d", v / std::pow(10.0, e), e);
    } else {
        std::snprintf(buf, sizeof buf, v >= 100 ? "%.1f" : "%.2f", v);
    }
    return buf;
}

EvalTable eval_table(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("models") || !j["models"].is_array())
        throw std::invalid_argument("evaluation results: expected an object with a 'models' array");
    EvalTable t;
    std::vector<std::string> ppl_cols, mc_cols;
    for (const auto& m : j["models"])
        for (auto& [task, r] : m.at("results").items()) {
            auto& cols = r.value("kind", "") == "mc" ? mc_cols : ppl_cols;
            if (std::find(cols.begin(), cols.end(), task) == cols.end()) cols.push_back(task);
        }
    std::vector<std::string> mc_sorted;
    for (auto& n : kMcOrder)
        if (std::find(mc_cols.begin(), mc_cols.end(), n) != mc_cols.end()) mc_sorted.push_back(n);
    t.columns = ppl_cols;
    t.columns.insert(t.columns.end(), mc_sorted.begin(), mc_sorted.end());
    if (!mc_sorted.empty()) t.columns.push_back("avg");
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (auto& c : t.columns) t.metrics.push_back(c == "avg" ? "avg" : is_ppl_column(c) ? "ppl" : mc_headline(c));
    for (const auto& m : j["models"]) {
        t.models.push_back(m.value("label", m.value("path", "?")));
        std::vector<double> row, err;
        double sum = 0;
        int cnt = 0;
        for (auto& c : t.columns) {
            err.push_back(nan);
            if (c == "avg") {
                row.push_back(cnt ? sum / cnt : nan);
                continue;
            }
            const auto& res = m.at("results");
            if (!res.contains(c)) {
                row.push_back(nan);
                continue;
            }
            const auto& r = res[c];
            if (r.value("kind", "") == "mc") {
                const std::string metric = mc_headline(c);
                const double v = 100.0 * r.value(metric, nan);
                err.back() = 100.0 * r.value(metric + "_stderr", nan);
                row.push_back(v);
                sum += v, ++cnt;
            } else {
                row.push_back(r.value("ppl", nan));
            }
        }
        t.values.push_back(row);
        t.stderrs.push_back(err);
    }
    return t;
}

std::string table_markdown(const EvalTable& t) {
    std::string s = "| model |";
    for (size_t c = 0; c < t.columns.size(); ++c)
        s += " " + t.columns[c] +
             (t.metrics[c] == "acc" || t.metrics[c] == "acc_norm" ? " (" + t.metrics[c] + ")" : "") + " |";
    s += "\n|---|";
    for (size_t i = 0; i < t.columns.size(); ++i) s += "---:|";
    s += "\n";
    for (size_t m = 0; m < t.models.size(); ++m) {
        s += "| " + t.models[m] + " |";
        for (size_t c = 0; c < t.columns.size(); ++c) {
            const double v = t.values[m][c];
            char buf[32];
            if (is_ppl_column(t.columns[c])) {
                s += " " + format_ppl(v) + " |";
            } else {
                const double e = t.stderrs[m][c];
                if (std::isnan(v))
                    std::snprintf(buf, sizeof buf, "-");
                else if (std::isnan(e))
                    std::snprintf(buf, sizeof buf, "%.1f", v);
                else
                    std::snprintf(buf, sizeof buf, "%.1f ± %.1f", v, e);
                s += std::string(" ") + buf + " |";
            }
        }
        s += "\n";
    }
    return s;
}

std::string table_csv(const EvalTable& t) {
    auto quote = [](const std::string& x) {
        if (x.find_first_of(",\"\n") == std::string::npos) return x;
        std::string q = "\"";
        for (char ch : x) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        return q + "\"";
    };
    // Zero-shot columns are followed by their standard error (<task>_stderr).
    auto is_mc = [&](size_t c) { return t.metrics[c] == "acc" || t.metrics[c] == "acc_norm"; };
    auto num = [](double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        return std::string(",") + (std::isnan(v) ? "" : buf);
    };
    std::string s = "model";
    for (size_t c = 0; c < t.columns.size(); ++c)
        s += "," + quote(t.columns[c]) + (is_mc(c) ? "," + quote(t.columns[c] + "_stderr") : "");
    s += "\n";
    for (size_t m = 0; m < t.models.size(); ++m) {
        s += quote(t.models[m]);
        for (size_t c = 0; c < t.columns.size(); ++c) s += num(t.values[m][c]) + (is_mc(c) ? num(t.stderrs[m][c]) : "");
        s += "\n";
    }
    return s;
}

}  // namespace bimamba::eval
