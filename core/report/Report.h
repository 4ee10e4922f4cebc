#pragma once
// The HDF5 report of `bimamba report` (layout: docs/report-format.md): run
// config as attributes, metric time series from a run dir's metrics.jsonl,
// evaluation tables, weight histograms per source model, generations.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/report/WeightHistograms.h"

namespace bimamba::report {

struct HistogramSet {
    std::string name;             // group name under /histograms, e.g. "full_precision", "bi_mamba", "gptq_2bit"
    std::string checkpoint;       // where the weights came from
    std::string kind;             // "full-precision" | "bi-mamba" | "ptq"
    nlohmann::json quantization;  // the checkpoint's quantization metadata, or null
    std::vector<ModuleHistogram> modules;
};

struct ReportContent {
    std::string run_dir;        // may be empty
    nlohmann::json run_config;  // null = none; flattened into /config attributes
    std::string metrics_jsonl;  // path or empty
    nlohmann::json eval;        // `bimamba eval` results JSON, or null
    std::vector<HistogramSet> histograms;
    nlohmann::json generations;  // `bimamba generate` JSON, or null
};

// Writes atomically (temporary file, then rename). Throws naming the problem.
void write_report(const std::string& path, const ReportContent& content);

// Metric series of a metrics.jsonl: per line "type", the numeric fields as
// columns (NaN where a line lacks one). Incomplete last lines are skipped; a
// step written twice (runs resumed by older versions) counts once, its last row.
struct MetricSeries {
    std::string type;
    std::vector<std::string> keys;
    std::vector<std::vector<double>> columns;  // [key][row]
};
std::vector<MetricSeries> read_metric_series(const std::string& metrics_jsonl);

// HDF5 group names: '/' and '.' become '_'.
std::string h5_name(const std::string& s);

}  // namespace bimamba::report
