#pragma once
// Per-layer, per-module weight histograms (the paper's Figures 2 and 8–10):
// counts, bin edges and moments of mixer.in_proj / mixer.out_proj. For a
// binarized (Bi-Mamba) module the histogram is of the rescaled weight the
// forward pass uses, α·sign(W)+β = BinaryLinear::effective_weight(). Shared by
// `bimamba report` (HDF5) and the GUI.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/model/Mamba2Model.h"

namespace bimamba::report {

struct Histogram {
    std::vector<int64_t> counts;                 // bins
    std::vector<double> edges;                   // bins + 1, equal width
    double mean = 0, std = 0, min = 0, max = 0;  // std: population (ddof 0)
    int64_t numel = 0;
};

// Equal-width histogram over [lo, hi]; lo >= hi means the tensor's own
// [min, max]. Values outside [lo, hi] are counted in the first / last bin;
// a value equal to hi falls in the last bin. Moments are of all values (float64).
Histogram weight_histogram(const torch::Tensor& w, int bins, double lo = 0, double hi = 0);

struct ModuleHistogram {
    int layer;
    std::string module;  // "in_proj" | "out_proj"
    Histogram hist;
};

// `layers` empty = every layer. With `common_range`, each module name gets one
// range over the chosen layers (so layers compare bin by bin).
std::vector<ModuleHistogram> model_weight_histograms(const model::Mamba2LM& model, int bins,
                                                     const std::vector<int>& layers = {}, bool common_range = false);
// Wasserstein-1 (earth mover's) distance between the empirical distributions
// of two tensors' values: the mean |a_(i) - b_(i)| of their sorted values when
// both have n elements (exact), else on 4096 quantiles of each. In the
// weights' own units: how far one weight distribution lies from another (the
// paper's Figure 2 compared by eye; this is the number).
double wasserstein1(const torch::Tensor& a, const torch::Tensor& b);

struct ModuleDistance {
    int layer;
    std::string module;  // "in_proj" | "out_proj"
    double w1;           // wasserstein1(model's effective weight, reference's)
    double ref_std;      // the reference weights' std, to read w1 against
};
// Per chosen layer and module: the distance of `model`'s effective weights
// (Bi-Mamba: α·sign(W)+β) from `reference`'s. The models must share n_layer.
std::vector<ModuleDistance> weight_distances(const model::Mamba2LM& reference, const model::Mamba2LM& model,
                                             const std::vector<int>& layers);

// The paper's choice of layers: first, middle, last.
std::vector<int> first_middle_last(int n_layer);

}  // namespace bimamba::report
