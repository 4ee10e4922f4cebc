#pragma once
// The CPU engine (a bit-packed deployment file, core/engine) as a LogitsFn, so
// `bimamba eval` measures the perplexity and zero-shot accuracy of exactly
// what `bimamba chat` runs: each sequence of the batch is fed from a reset
// state by Engine::prefill_logits (the logits step() gives token by token, bit
// for bit, with the projections and the int8 head as GEMMs), and the logits of
// every position are returned.
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "core/engine/Engine.h"
#include "core/eval/Scorer.h"

namespace bimamba::eval {

inline LogitsFn engine_logits_fn(std::shared_ptr<engine::Engine> eng) {
    return [eng](const torch::Tensor& ids) {
        const auto cpu = ids.to(torch::kCPU, torch::kInt64).contiguous();
        const int64_t b = cpu.size(0), l = cpu.size(1), v = eng->config().vocab_size;
        auto out = torch::empty({b, l, v}, torch::kFloat32);
        if (l == 0) return out;
        const int64_t* p = cpu.data_ptr<int64_t>();
        float* o = out.data_ptr<float>();
        std::vector<int> seq((size_t)l);
        for (int64_t i = 0; i < b; ++i) {
            for (int64_t t = 0; t < l; ++t) seq[t] = (int)p[i * l + t];
            eng->reset();
            eng->prefill_logits(seq, o + i * l * v);
        }
        return out;
    };
}

}  // namespace bimamba::eval
