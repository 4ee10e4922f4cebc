#pragma once
// The rows of a run's metrics.jsonl that make its history
// (docs/run-directory.md). Since resume truncates the file to its checkpoint,
// every (type, step) appears once; runs resumed before that re-appended the
// steps redone after their checkpoint, and readers take those as: a row of a
// type at step s replaces the earlier rows of that type at steps >= s (the
// last row for a step wins, and steps increase).
#include <nlohmann/json.hpp>
#include <vector>

namespace bimamba {

// Indices of the rows kept, in file order. A row's type is its "type" string
// ("train" when absent); rows without a numeric "step" are all kept.
std::vector<size_t> metrics_rows_kept(const std::vector<nlohmann::json>& rows);

}  // namespace bimamba
