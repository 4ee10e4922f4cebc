#include "core/report/Report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <unistd.h>

#include "core/base/FileUtil.h"
#include "core/base/MetricsRows.h"
#include "core/eval/EvalTable.h"
#include "core/eval/Jsonl.h"
#include "core/report/Hdf5File.h"

namespace bimamba::report {

using base::metrics_rows_kept;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string now_iso() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

// Scalars become typed attributes; arrays and objects inside arrays become JSON strings.
void put_json_attrs(Hdf5File& f, const std::string& obj, const nlohmann::json& j, const std::string& prefix = "") {
    for (auto& [k, v] : j.items()) {
        const std::string name = prefix.empty() ? k : prefix + "." + k;
        if (v.is_object())
            put_json_attrs(f, obj, v, name);
        else if (v.is_boolean())
            f.set_attr(obj, name, int64_t(v.get<bool>()));
        else if (v.is_number_integer())
            f.set_attr(obj, name, v.get<int64_t>());
        else if (v.is_number())
            f.set_attr(obj, name, v.get<double>());
        else if (v.is_string())
            f.set_attr(obj, name, v.get<std::string>());
        else
            f.set_attr(obj, name, v.dump());
    }
}

void write_eval(Hdf5File& f, const nlohmann::json& ev) {
    auto t = eval::eval_table(ev);
    f.create_group("/eval");
    f.write("/eval/table/models", t.models);
    f.write("/eval/table/columns", t.columns);
    std::vector<double> flat;
    for (auto& row : t.values) flat.insert(flat.end(), row.begin(), row.end());
    f.write("/eval/table/values", flat, {t.models.size(), t.columns.size()});
    flat.clear();
    for (auto& row : t.stderrs) flat.insert(flat.end(), row.begin(), row.end());
    f.write("/eval/table/stderr", flat, {t.models.size(), t.columns.size()});
    f.write("/eval/table/metrics", t.metrics);
    f.set_attr("/eval/table", "markdown", eval::table_markdown(t));
    if (ev.contains("settings")) put_json_attrs(f, "/eval", ev["settings"], "settings");
    int i = 0;
    for (const auto& m : ev["models"]) {
        const std::string g = "/eval/models/" + std::to_string(i++);
        f.create_group(g);
        f.set_attr(g, "label", m.value("label", std::string()));
        f.set_attr(g, "path", m.value("path", std::string()));
        if (m.contains("quantization") && !m["quantization"].is_null())
            f.set_attr(g, "quantization", m["quantization"].dump());
        for (auto& [task, r] : m["results"].items()) {
            const std::string tg = g + "/" + h5_name(task);
            f.create_group(tg);
            put_json_attrs(f, tg, r);
        }
    }
}

void write_histograms(Hdf5File& f, const std::vector<HistogramSet>& sets) {
    for (const auto& s : sets) {
        const std::string g = "/histograms/" + h5_name(s.name);
        f.create_group(g);
        f.set_attr(g, "checkpoint", s.checkpoint);
        f.set_attr(g, "kind", s.kind);
        if (!s.quantization.is_null()) f.set_attr(g, "quantization", s.quantization.dump());
        for (const auto& m : s.modules) {
            const std::string mg = g + "/layer_" + std::to_string(m.layer) + "/" + m.module;
            f.write(mg + "/counts", m.hist.counts);
            f.write(mg + "/edges", m.hist.edges);
            f.set_attr(mg, "mean", m.hist.mean);
            f.set_attr(mg, "std", m.hist.std);
            f.set_attr(mg, "min", m.hist.min);
            f.set_attr(mg, "max", m.hist.max);
            f.set_attr(mg, "numel", m.hist.numel);
        }
    }
}

void write_generations(Hdf5File& f, const nlohmann::json& gen) {
    std::vector<std::string> prompts, labels, models, texts, stops;
    std::vector<int64_t> new_tokens;
    std::vector<double> seconds;
    for (const auto& p : gen.at("generations"))
        for (const auto& o : p.at("outputs")) {
            prompts.push_back(p.value("prompt", std::string()));
            labels.push_back(o.value("label", std::string()));
            models.push_back(o.value("model", std::string()));
            texts.push_back(o.value("text", std::string()));
            stops.push_back(o.value("stop_reason", std::string()));
            new_tokens.push_back(o.value("new_tokens", int64_t(0)));
            seconds.push_back(o.value("seconds", kNaN));
        }
    f.write("/generations/prompt", prompts);
    f.write("/generations/label", labels);
    f.write("/generations/model", models);
    f.write("/generations/text", texts);
    f.write("/generations/stop_reason", stops);
    f.write("/generations/new_tokens", new_tokens);
    f.write("/generations/seconds", seconds);
    if (gen.contains("params")) put_json_attrs(f, "/generations", gen["params"]);
}

}  // namespace

std::string h5_name(const std::string& s) {
    std::string o = s.empty() ? "_" : s;
    for (char& c : o)
        if (c == '/' || c == '.') c = '_';
    return o;
}

std::vector<MetricSeries> read_metric_series(const std::string& path) {
    auto rows = eval::read_jsonl(path, /*skip_incomplete_tail=*/true);
    for (size_t r = 0; r < rows.size(); ++r)
        if (!rows[r].is_object())
            throw std::runtime_error(path + ": record " + std::to_string(r + 1) + " is not a JSON object");
    std::vector<MetricSeries> out;
    std::map<std::string, size_t> by_type;
    for (size_t r : metrics_rows_kept(rows)) {  // a step re-appended by an older resume: the last row wins
        const auto& j = rows[r];
        const std::string type = j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "other";
        auto it = by_type.find(type);
        if (it == by_type.end()) {
            it = by_type.emplace(type, out.size()).first;
            out.push_back({type, {}, {}});
        }
        auto& s = out[it->second];
        const size_t n = s.columns.empty() ? 0 : s.columns[0].size();
        for (auto& [k, v] : j.items()) {
            if (!v.is_number()) continue;
            auto kit = std::find(s.keys.begin(), s.keys.end(), k);
            if (kit == s.keys.end()) {
                s.keys.push_back(k);
                s.columns.emplace_back(n, kNaN);
                kit = s.keys.end() - 1;
            }
        }
        for (size_t c = 0; c < s.keys.size(); ++c)
            s.columns[c].push_back(j.contains(s.keys[c]) && j[s.keys[c]].is_number() ? j[s.keys[c]].get<double>()
                                                                                     : kNaN);
    }
    return out;
}

void write_report(const std::string& path, const ReportContent& c) {
    // Built in memory and written atomically by close() (Hdf5File::create).
    {
        auto f = Hdf5File::create(path);
        f.set_attr("/", "format", "bimamba-report");
        f.set_attr("/", "format_version", int64_t(1));
        f.set_attr("/", "created", now_iso());
        f.create_group("/config");
        if (!c.run_dir.empty()) f.set_attr("/config", "run_dir", c.run_dir);
        if (!c.run_config.is_null()) put_json_attrs(f, "/config", c.run_config);
        if (!c.metrics_jsonl.empty()) {
            f.create_group("/metrics");
            f.set_attr("/metrics", "source", c.metrics_jsonl);
            for (const auto& s : read_metric_series(c.metrics_jsonl)) {
                const std::string g = "/metrics/" + h5_name(s.type);
                f.create_group(g);
                for (size_t k = 0; k < s.keys.size(); ++k) f.write(g + "/" + h5_name(s.keys[k]), s.columns[k]);
            }
        }
        if (!c.eval.is_null()) write_eval(f, c.eval);
        if (!c.histograms.empty()) write_histograms(f, c.histograms);
        if (!c.generations.is_null()) write_generations(f, c.generations);
        f.close();
    }
}

}  // namespace bimamba::report
