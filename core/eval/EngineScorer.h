#pragma once
// The CPU engine (a bit-packed deployment file, core/engine) as a LogitsFn, so
// `bimamba eval` measures the perplexity and zero-shot accuracy of exactly
// what `bimamba chat` runs: each sequence of the batch is decoded token by
// token from a reset state, and the logits of every position are returned.
#include <torch/torch.h>

#include <cstring>
#include <memory>

#include "core/engine/Engine.h"
#include "core/eval/Scorer.h"

namespace bimamba::eval {

inline LogitsFn engine_logits_fn(std::shared_ptr<engine::Engine> eng) {
    return [eng](const torch::Tensor& ids) {
        const auto cpu = ids.to(torch::kCPU, torch::kInt64).contiguous();
        const int64_t b = cpu.size(0), l = cpu.size(1), v = eng->config().vocab_size;
        auto out = torch::empty({b, l, v}, torch::kFloat32);
        const int64_t* p = cpu.data_ptr<int64_t>();
        float* o = out.data_ptr<float>();
        for (int64_t i = 0; i < b; ++i) {
            eng->reset();
            for (int64_t t = 0; t < l; ++t) {
                const auto& logits = eng->step((int)p[i * l + t]);
                std::memcpy(o + (i * l + t) * v, logits.data(), sizeof(float) * v);
            }
        }
        return out;
    };
}

}  // namespace bimamba::eval
