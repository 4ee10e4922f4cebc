#pragma once
// The summary table of `bimamba eval` (the layout of the paper's Table 3):
// one row per model, perplexity columns first, then zero-shot accuracies in
// the paper's order (BoolQ, PIQA, HellaSwag, WinoGrande, ARC-e, ARC-c, OBQA)
// as percentages of each task's headline metric (the paper's choice:
// mc_headline) ± its standard error, then their average.
//
// The results JSON (what `bimamba eval` stores, what `bimamba report` reads):
// {"models": [{"label": str, "path": str, "quantization": obj|null,
//   "results": {TASK: {"kind": "ppl", "ppl", "nll", "predictions", "windows", "window", "stride"}
//                    | {"kind": "mc", "n", "acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "headline"}}}],
//  "settings": {...}}
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bimamba::eval {

struct EvalTable {
    std::vector<std::string> models;
    std::vector<std::string> columns;
    std::vector<std::vector<double>> values;  // [model][column]; NaN = not evaluated
    std::vector<std::vector<double>>
        stderrs;                       // [model][column]: 100 × the headline's standard error; NaN for ppl and avg
    std::vector<std::string> metrics;  // [column]: "ppl", "acc", "acc_norm" or "avg"
};

EvalTable eval_table(const nlohmann::json& results);
std::string table_markdown(const EvalTable& t);
std::string table_csv(const EvalTable& t);
// Compact ppl formatting as the paper prints it: 13.4, 1.6e8.
std::string format_ppl(double v);

}  // namespace bimamba::eval
