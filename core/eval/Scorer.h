#pragma once
// What the evaluators need from a language model: logits for a batch of
// token sequences. Any causal LM fits (tests use fixed lookup-table models).
// A recurrent model (Mamba-2) also scores continuations from a saved prefix
// state (PrefixLLFn), which multiple choice uses to run each context once.
#include <torch/torch.h>

#include <functional>
#include <vector>

#include "core/model/LlamaModel.h"
#include "core/model/Mamba2Model.h"

namespace bimamba::eval {

// ids (b, l) int64 -> logits (b, l, vocab) float32/float64.
using LogitsFn = std::function<torch::Tensor(const torch::Tensor& ids)>;

// contexts (G, Lc) int64, all of one length; conts[g] lists the token
// sequences to score after context g. Returns [g][c] = Σ_j log p(conts[g][c][j]
// | context g, conts[g][c][<j]) (every continuation has at least one token).
using PrefixLLFn = std::function<std::vector<std::vector<double>>(
    const torch::Tensor& contexts, const std::vector<std::vector<std::vector<int>>>& conts)>;

inline LogitsFn logits_fn(model::Mamba2LM model) {
    model->eval();
    return [model](const torch::Tensor& ids) mutable {
        torch::NoGradGuard ng;
        return model->forward(ids.to(model->backbone->embedding->weight.device()));
    };
}

// Prefill the contexts (one forward), copy each context's recurrent state to
// its continuations, then run all continuations of the batch in one chunked
// pass from those states (Mamba2LM::continue_hidden_states).
PrefixLLFn mamba_prefix_ll_fn(model::Mamba2LM model);

inline LogitsFn llama_logits_fn(std::shared_ptr<model::LlamaLM> model) {
    return [model](const torch::Tensor& ids) {
        torch::NoGradGuard ng;
        return model->forward(ids.to(model->device()));
    };
}

}  // namespace bimamba::eval
