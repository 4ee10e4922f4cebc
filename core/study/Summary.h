#pragma once
// The summary stage of a study: one table over the results of `bimamba eval`
// (perplexity and zero-shot, rows by model label), the seed spread of one
// configuration, and the paper's expected orderings ("claims") each marked
// reproduced, not reproduced, or within the seed spread. Torch-free: it reads
// the eval results JSON (layout in core/eval/EvalTable.h).
//
// Settings (the `summary = {...}` table of a study stage):
//   evals  = ["eval/ppl.json", ...]        results files, merged by model label
//   out    = "DIR/summary"                  writes summary.md and summary.json
//   rows   = ["teacher", "bi-mamba", ...]   optional row order (default: first seen)
//   spread = ["bi-mamba", "bi-mamba-seed2"] labels of one configuration run with different
//                                           seeds: per metric, spread = max - min over them
//   rerun  = ["bi-mamba", "bi-mamba-rerun"] optional: the same seed run twice (outside
//                                           deterministic mode a GPU run differs from its rerun);
//                                           claims are checked against the larger of the two
//   distances = "DIR/distances.json"      optional: `bimamba report --distances-out`,
//                                           adds the metric weight_w1 (lower = closer to the reference)
//   [[claims]] text, metric, better, than = [labels]
//      metric: a task name (wikitext2, text:wiki, arc_easy, ...) or "avg" (zero-shot mean);
//      perplexities are better lower, accuracies higher.
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace bimamba::study {

struct SummaryResult {
    nlohmann::json json;   // {"rows", "metrics", "spread", "claims"}
    std::string markdown;  // the same as tables
};

// Builds the summary from results already loaded ({"file": results JSON} for errors).
// `distances`: the JSON of `bimamba report --distances-out` or null; it adds
// the column weight_w1 (mean Wasserstein-1 / reference std; lower = closer).
SummaryResult build_summary(const nlohmann::json& settings,
                            const std::vector<std::pair<std::string, nlohmann::json>>& evals,
                            const nlohmann::json& distances = nullptr);
// Reads settings["evals"], builds, writes <out>.md and <out>.json; returns the markdown.
std::string run_summary(const nlohmann::json& settings);

}  // namespace bimamba::study
