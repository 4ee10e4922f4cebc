#pragma once
// Token sampling shared by the LibTorch generator and the CPU engine:
// greedy, temperature, top-k, top-p, repetition penalty. Works on one row of
// float logits. Deterministic for a given seed.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace bimamba::base {

struct SamplingParams {
    float temperature = 0.0f;         // 0 = greedy
    int top_k = 0;                    // 0 = off
    float top_p = 1.0f;               // 1 = off
    float repetition_penalty = 1.0f;  // 1 = off (CTRL-style: divide positive logits, multiply negative)
    int max_tokens = 128;
    std::vector<std::string> stop;  // stop strings (checked on the decoded text by the caller)
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(SamplingParams p);
    // `logits` is modified (penalty, temperature). `history` = tokens so far.
    int sample(std::vector<float>& logits, const std::vector<int>& history);
    const SamplingParams& params() const { return p_; }

private:
    SamplingParams p_;
    std::mt19937_64 rng_;
};

}  // namespace bimamba::base
