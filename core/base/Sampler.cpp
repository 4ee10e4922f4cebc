#include "core/base/Sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <unordered_set>

namespace bimamba::base {

Sampler::Sampler(SamplingParams p) : p_(std::move(p)), rng_(p_.seed) {
    if (!(p_.temperature >= 0.0f) || !std::isfinite(p_.temperature))
        throw std::invalid_argument("sampling: temperature must be >= 0 (got " + std::to_string(p_.temperature) + ")");
    if (p_.top_k < 0)
        throw std::invalid_argument("sampling: top_k must be >= 0 (got " + std::to_string(p_.top_k) + ")");
    if (!(p_.top_p > 0.0f && p_.top_p <= 1.0f))
        throw std::invalid_argument("sampling: top_p must be in (0, 1] (got " + std::to_string(p_.top_p) + ")");
    if (!(p_.repetition_penalty > 0.0f) || !std::isfinite(p_.repetition_penalty))
        throw std::invalid_argument("sampling: repetition_penalty must be > 0 (got " +
                                    std::to_string(p_.repetition_penalty) + ")");
    if (p_.max_tokens < 0)
        throw std::invalid_argument("sampling: max_tokens must be >= 0 (got " + std::to_string(p_.max_tokens) + ")");
}

int Sampler::sample(std::vector<float>& logits, const std::vector<int>& history) {
    const int n = (int)logits.size();
    if (n == 0) throw std::invalid_argument("sampling: empty logits");
    // CTRL-style penalty, once per distinct token seen so far.
    if (p_.repetition_penalty != 1.0f) {
        std::unordered_set<int> seen;
        for (int t : history) {
            if (t < 0 || t >= n || !seen.insert(t).second) continue;
            float& l = logits[t];
            l = l > 0 ? l / p_.repetition_penalty : l * p_.repetition_penalty;
        }
    }
    if (p_.temperature == 0.0f)  // greedy: first maximum wins ties
        return (int)(std::max_element(logits.begin(), logits.end()) - logits.begin());

    for (float& l : logits) l /= p_.temperature;
    // Candidates sorted by logit, descending (stable: ties keep the lower id first).
    std::vector<int> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    int keep = n;
    if (p_.top_k > 0 && p_.top_k < n) keep = p_.top_k;
    auto cmp = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(), cmp);
    idx.resize(keep);

    const float mx = logits[idx[0]];
    std::vector<double> prob(keep);
    double total = 0;
    for (int i = 0; i < keep; ++i) total += prob[i] = std::exp((double)logits[idx[i]] - mx);
    for (double& q : prob) q /= total;
    if (p_.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
        double cum = 0;
        int cut = keep;
        for (int i = 0; i < keep; ++i) {
            cum += prob[i];
            if (cum >= p_.top_p) {
                cut = i + 1;
                break;
            }
        }
        prob.resize(cut);
        idx.resize(cut);
        total = std::accumulate(prob.begin(), prob.end(), 0.0);
        for (double& q : prob) q /= total;
    }
    // Inverse CDF with a 53-bit uniform draw.
    const double u = (double)(rng_() >> 11) * (1.0 / 9007199254740992.0);
    double cum = 0;
    for (size_t i = 0; i < prob.size(); ++i) {
        cum += prob[i];
        if (u < cum) return idx[i];
    }
    return idx.back();
}

}  // namespace bimamba::base
