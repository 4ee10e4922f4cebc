#pragma once
// What the evaluators need from a language model: logits for a batch of
// token sequences. Any causal LM fits (tests use fixed lookup-table models).
#include <torch/torch.h>

#include <functional>

#include "core/model/Mamba2Model.h"

namespace bimamba::eval {

// ids (b, l) int64 -> logits (b, l, vocab) float32/float64.
using LogitsFn = std::function<torch::Tensor(const torch::Tensor& ids)>;

inline LogitsFn logits_fn(Mamba2LM model) {
    model->eval();
    return [model](const torch::Tensor& ids) mutable {
        torch::NoGradGuard ng;
        return model->forward(ids.to(model->backbone->embedding->weight.device()));
    };
}

}  // namespace bimamba::eval
