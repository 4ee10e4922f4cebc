#include "core/base/MetricsRows.h"

#include <algorithm>
#include <map>
#include <string>

namespace bimamba::base {

size_t metrics_rows_kept_before(const double* steps, size_t n, double step) {
    while (n > 0 && steps[n - 1] >= step) --n;
    return n;
}

std::vector<size_t> metrics_rows_kept(const std::vector<nlohmann::json>& rows) {
    struct Kept {  // one type's rows with a step, kept so far
        std::vector<size_t> index;
        std::vector<double> step;
    };
    std::map<std::string, Kept> by_type;
    std::vector<size_t> out;  // rows without a step, then the kept rows of every type
    for (size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        const auto st = r.is_object() ? r.find("step") : r.end();
        if (!r.is_object() || st == r.end() || !st->is_number()) {
            out.push_back(i);
            continue;
        }
        const auto ty = r.find("type");
        Kept& k = by_type[ty != r.end() && ty->is_string() ? ty->get<std::string>() : "train"];
        const double step = st->get<double>();
        const size_t keep = metrics_rows_kept_before(k.step.data(), k.step.size(), step);
        k.index.resize(keep);
        k.step.resize(keep);
        k.index.push_back(i);
        k.step.push_back(step);
    }
    for (const auto& [type, k] : by_type) out.insert(out.end(), k.index.begin(), k.index.end());
    std::sort(out.begin(), out.end());  // back into file order
    return out;
}

}  // namespace bimamba::base
