#include "core/report/WeightHistograms.h"

#include <algorithm>
#include <map>
#include <stdexcept>

namespace bimamba::report {

using model::Mamba2BlockImpl;
using model::Mamba2LM;

Histogram weight_histogram(const torch::Tensor& w_in, int bins, double lo, double hi) {
    if (bins < 1) throw std::invalid_argument("weight_histogram: bins must be positive");
    if (w_in.numel() == 0) throw std::invalid_argument("weight_histogram: empty tensor");
    torch::NoGradGuard ng;
    auto w = w_in.detach().to(torch::kCPU, torch::kFloat64).flatten();
    Histogram h;
    h.numel = w.numel();
    h.mean = w.mean().item<double>();
    h.std = w.std(/*unbiased=*/false).item<double>();
    h.min = w.min().item<double>();
    h.max = w.max().item<double>();
    if (lo >= hi) lo = h.min, hi = h.max;
    if (lo >= hi) lo -= 0.5, hi += 0.5;  // a constant tensor: one unit-wide range around it
    const double width = (hi - lo) / bins;
    for (int i = 0; i <= bins; ++i) h.edges.push_back(i == bins ? hi : lo + i * width);
    auto idx = torch::floor((w - lo) / width).clamp(0, bins - 1).to(torch::kInt64);
    auto counts = torch::bincount(idx, {}, bins);
    h.counts.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + bins);
    return h;
}

double wasserstein1(const torch::Tensor& a_in, const torch::Tensor& b_in) {
    torch::NoGradGuard ng;
    auto a = std::get<0>(a_in.detach().to(torch::kCPU, torch::kFloat64).flatten().sort());
    auto b = std::get<0>(b_in.detach().to(torch::kCPU, torch::kFloat64).flatten().sort());
    if (a.numel() == 0 || b.numel() == 0) throw std::invalid_argument("wasserstein1: empty tensor");
    if (a.numel() != b.numel()) {
        // Quantile functions on a common grid of midpoints.
        const int64_t q = 4096;
        auto p = (torch::arange(q, torch::kFloat64) + 0.5) / q;
        auto at = [&](const torch::Tensor& s) {
            return s.index({(p * s.numel()).floor().clamp_max(s.numel() - 1).to(torch::kInt64)});
        };
        a = at(a), b = at(b);
    }
    return (a - b).abs().mean().item<double>();
}

std::vector<ModuleDistance> weight_distances(const Mamba2LM& reference, const Mamba2LM& model,
                                             const std::vector<int>& layers) {
    if (reference->config().n_layer != model->config().n_layer)
        throw std::invalid_argument("weight distances: the models have " + std::to_string(reference->config().n_layer) +
                                    " and " + std::to_string(model->config().n_layer) + " layers");
    std::vector<ModuleDistance> out;
    for (int l : layers) {
        auto* r = reference->backbone->layers->ptr(l)->as<Mamba2BlockImpl>()->mixer.get();
        auto* m = model->backbone->layers->ptr(l)->as<Mamba2BlockImpl>()->mixer.get();
        for (const char* name : {"in_proj", "out_proj"}) {
            auto rw = std::string(name) == "in_proj" ? r->in_proj->effective_weight() : r->out_proj->effective_weight();
            auto mw = std::string(name) == "in_proj" ? m->in_proj->effective_weight() : m->out_proj->effective_weight();
            out.push_back({l, name, wasserstein1(mw, rw), rw.detach().to(torch::kFloat64).std(false).item<double>()});
        }
    }
    return out;
}

std::vector<int> first_middle_last(int n) {
    std::vector<int> v = {0, n / 2, n - 1};
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

std::vector<ModuleHistogram> model_weight_histograms(const Mamba2LM& model, int bins, const std::vector<int>& layers_in,
                                                     bool common_range) {
    const int n = model->config().n_layer;
    std::vector<int> layers = layers_in;
    if (layers.empty())
        for (int i = 0; i < n; ++i) layers.push_back(i);
    std::vector<std::pair<int, std::pair<std::string, torch::Tensor>>> mods;
    for (int l : layers) {
        if (l < 0 || l >= n)
            throw std::invalid_argument("weight histograms: layer " + std::to_string(l) + " outside 0.." +
                                        std::to_string(n - 1));
        auto* mixer = model->backbone->layers->ptr(l)->as<Mamba2BlockImpl>()->mixer.get();
        mods.push_back({l, {"in_proj", mixer->in_proj->effective_weight().detach()}});
        mods.push_back({l, {"out_proj", mixer->out_proj->effective_weight().detach()}});
    }
    std::map<std::string, std::pair<double, double>> range;
    if (common_range)
        for (auto& [l, m] : mods) {
            const double lo = m.second.min().item<double>(), hi = m.second.max().item<double>();
            auto it = range.find(m.first);
            if (it == range.end())
                range[m.first] = {lo, hi};
            else
                it->second = {std::min(it->second.first, lo), std::max(it->second.second, hi)};
        }
    std::vector<ModuleHistogram> out;
    for (auto& [l, m] : mods) {
        double lo = 0, hi = 0;
        if (common_range) std::tie(lo, hi) = range[m.first];
        out.push_back({l, m.first, weight_histogram(m.second, bins, lo, hi)});
    }
    return out;
}

}  // namespace bimamba::report
