#include "core/eval/Scorer.h"

#include <algorithm>

namespace bimamba::eval {

using model::Mamba2LM;

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
        // Position 0 of every continuation is predicted by the context's last
        // logits; positions 1.. by one chunked pass over the continuations
        // (tokens 0..longest-2, right-padded) from the copied states.
        std::vector<int64_t> tgt(R * longest, 0), in(R * (longest - 1), 0);
        std::vector<double> live(R * longest, 0.0);
        for (int64_t r = 0; r < R; ++r)
            for (size_t t = 0; t < seq[r]->size(); ++t) {
                tgt[r * longest + t] = (*seq[r])[t];
                live[r * longest + t] = 1.0;
                if (t + 1 < longest) in[r * (longest - 1) + t] = (*seq[r])[t];
            }
        auto logits = last.index_select(0, idx).unsqueeze(1);  // (R, 1, V)
        if (longest > 1) {
            auto ids = torch::tensor(in, torch::kInt64).view({R, (int64_t)longest - 1}).to(dev);
            auto h = model->continue_hidden_states(ids, state);
            logits = torch::cat({logits, model->logits_from_hidden(h)}, 1);  // (R, longest, V)
        }
        const auto ct = logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
        auto lp = torch::log_softmax(logits.to(ct), -1);
        auto tg = torch::tensor(tgt, torch::kInt64).view({R, (int64_t)longest, 1}).to(dev);
        auto mask = torch::tensor(live, torch::kFloat64).view({R, (int64_t)longest}).to(dev);
        auto total = (lp.gather(2, tg).squeeze(2).to(torch::kFloat64) * mask).sum(1);
        auto cpu = total.cpu();
        auto a = cpu.accessor<double, 1>();
        std::vector<std::vector<double>> out(G);
        for (int64_t r = 0; r < R; ++r) out[src[r]].push_back(a[r]);
        return out;
    };
}

}  // namespace bimamba::eval
