#include "core/eval/Scorer.h"

#include <algorithm>

namespace bimamba::eval {

PrefixLLFn mamba_prefix_ll_fn(Mamba2LM model) {
    model->eval();
    return [model](const torch::Tensor& contexts, const std::vector<std::vector<std::vector<int>>>& conts) mutable {
        torch::NoGradGuard ng;
        const auto dev = model->backbone->embedding->weight.device();
        const int64_t G = contexts.size(0), Lc = contexts.size(1);
        TORCH_CHECK((int64_t)conts.size() == G, "mamba_prefix_ll_fn: one list of continuations per context");
        auto state = model->new_state(G);
        auto h = model->hidden_states(contexts.to(dev, torch::kInt64), &state);
        auto last = model->logits_from_hidden(h.select(1, Lc - 1));  // (G, V): predicts each continuation's first token
        // One row per (context, continuation); rows[r] = its context.
        std::vector<int64_t> src;
        std::vector<const std::vector<int>*> seq;
        size_t longest = 0;
        for (int64_t g = 0; g < G; ++g)
            for (const auto& c : conts[g]) {
                TORCH_CHECK(!c.empty(), "mamba_prefix_ll_fn: empty continuation");
                src.push_back(g);
                seq.push_back(&c);
                longest = std::max(longest, c.size());
            }
        const int64_t R = (int64_t)src.size();
        auto idx = torch::tensor(src, torch::kInt64).to(dev);
        for (auto& l : state.layers) {
            l.conv_state = l.conv_state.index_select(0, idx);
            l.ssm_state = l.ssm_state.index_select(0, idx);
        }
        auto logits = last.index_select(0, idx);
        auto total = torch::zeros({R}, torch::TensorOptions().dtype(torch::kFloat64).device(dev));
        std::vector<int64_t> tgt(R), in(R);
        std::vector<double> live(R);
        for (size_t t = 0;; ++t) {
            // Score token t of every continuation that has one (finished rows
            // keep stepping on a dummy token; their scores are masked out).
            for (int64_t r = 0; r < R; ++r) {
                live[r] = t < seq[r]->size();
                tgt[r] = live[r] ? (*seq[r])[t] : 0;
            }
            auto lp = torch::log_softmax(logits.to(logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32), -1);
            auto tg = torch::tensor(tgt, torch::kInt64).to(dev).unsqueeze(1);
            auto mask = torch::tensor(live, torch::kFloat64).to(dev);
            total += lp.gather(1, tg).squeeze(1).to(torch::kFloat64) * mask;
            if (t + 1 >= longest) break;
            logits = model->step(tg.squeeze(1), state);  // feed token t, predict token t+1
        }
        auto cpu = total.cpu();
        auto a = cpu.accessor<double, 1>();
        std::vector<std::vector<double>> out(G);
        for (int64_t r = 0; r < R; ++r) out[src[r]].push_back(a[r]);
        return out;
    };
}

}  // namespace bimamba::eval
