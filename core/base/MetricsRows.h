#pragma once
// The rows of a run's metrics.jsonl that make its history
// (docs/run-directory.md). Since resume truncates the file to its checkpoint,
// every (type, step) appears once; runs resumed before that re-appended the
// steps redone after their checkpoint, and readers take those as: a row of a
// type at step s replaces the earlier rows of that type at steps >= s (the
// last row for a step wins, and steps increase). The one home of that rule:
// core's readers (read_metrics, RunDir::truncate_metrics, reports) and the
// workbench's incremental MetricsReader both use it.
#include <nlohmann/json.hpp>
#include <vector>

namespace bimamba::base {

// The rule one row at a time: when a row arrives at `step`, how many of its
// type's earlier rows stay (their steps, in file order, are steps[0..n)): the
// trailing ones at steps >= `step` go.
size_t metrics_rows_kept_before(const double* steps, size_t n, double step);

// Indices of the rows kept, in file order. A row's type is its "type" string
// ("train" when absent); rows without a numeric "step" are all kept.
std::vector<size_t> metrics_rows_kept(const std::vector<nlohmann::json>& rows);

}  // namespace bimamba::base
