#pragma once
// AdamW as in torch.optim.AdamW (decoupled weight decay, bias-corrected
// moments), written out so that its state is plain named tensors for the
// safetensors checkpoints (optimizer.safetensors: exp_avg.NAME, exp_avg_sq.NAME).
// Weight decay applies to matrices only (see AdamW::decays).
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bimamba::train {

struct AdamW {
    // One parameter and its two moments.
    struct Slot {
        std::string name;
        torch::Tensor param, m, v;
        bool decay;
    };
    std::vector<Slot> slots;
    int64_t t = 0;  // updates done
    double beta1, beta2, eps, wd;

    // Zero moments for every parameter of `model` (named_parameters order).
    AdamW(torch::nn::Module& model, double beta1, double beta2, double eps, double weight_decay);

    // Whether the parameter `name` gets weight decay: matrices (weights of
    // projections, conv, embedding), not the binarization scales (.wscale,
    // .wbias), norms, biases or SSM parameters.
    static bool decays(const std::string& name, const torch::Tensor& param);

    // One update at learning rate `lr` from the parameters' .grad(); parameters
    // without a gradient are left alone (their moments too).
    void step(double lr);

    // The moments by checkpoint name: exp_avg.NAME, exp_avg_sq.NAME.
    std::map<std::string, torch::Tensor> state() const;
    // Copies the moments back from state() and sets the update count; throws
    // naming a missing or wrongly shaped tensor.
    void load(const std::map<std::string, torch::Tensor>& state, int64_t steps_done);
};

}  // namespace bimamba::train
