#include "core/base/MetricsRows.h"

#include <map>
#include <string>

namespace bimamba {

std::vector<size_t> metrics_rows_kept(const std::vector<nlohmann::json>& rows) {
    struct Kept {
        size_t index;
        std::string type;
        double step;  // NaN-free: rows without a step are not in here
    };
    std::vector<Kept> stepped;        // rows with a step, kept so far
    std::vector<size_t> unstepped;    // rows without one
    for (size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        const auto st = r.is_object() ? r.find("step") : r.end();
        if (!r.is_object() || st == r.end() || !st->is_number()) {
            unstepped.push_back(i);
            continue;
        }
        const auto ty = r.find("type");
        const std::string type = ty != r.end() && ty->is_string() ? ty->get<std::string>() : "train";
        const double step = st->get<double>();
        // Redone steps: drop this type's trailing rows at or after `step`.
        for (size_t k = stepped.size(); k-- > 0;) {
            if (stepped[k].type != type) continue;
            if (stepped[k].step < step) break;
            stepped.erase(stepped.begin() + static_cast<std::ptrdiff_t>(k));
        }
        stepped.push_back({i, type, step});
    }
    std::vector<size_t> out;
    out.reserve(stepped.size() + unstepped.size());
    size_t a = 0, b = 0;
    while (a < stepped.size() || b < unstepped.size()) {  // merge back into file order
        if (b == unstepped.size() || (a < stepped.size() && stepped[a].index < unstepped[b]))
            out.push_back(stepped[a++].index);
        else
            out.push_back(unstepped[b++]);
    }
    return out;
}

}  // namespace bimamba
