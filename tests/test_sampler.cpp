// Sampler: greedy, repetition penalty (hand values), top-k / top-p supports,
// temperature sampling frequencies against the softmax, determinism, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "core/base/Sampler.h"

using namespace bimamba;
using namespace bimamba::base;

namespace {
SamplingParams params(float temp, int k = 0, float p = 1.0f, float pen = 1.0f, uint64_t seed = 0) {
    SamplingParams s;
    s.temperature = temp;
    s.top_k = k;
    s.top_p = p;
    s.repetition_penalty = pen;
    s.seed = seed;
    return s;
}
}  // namespace

TEST(Sampler, GreedyIsArgmaxFirstOnTies) {
    Sampler s(params(0));
    std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f};
    EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveMultipliesNegativeOncePerToken) {
    Sampler s(params(0, 0, 1.0f, 2.0f));
    std::vector<float> l = {3.0f, -1.0f, 2.5f, 0.5f};
    // token 0 seen twice: penalised once; token 1 negative: multiplied.
    const int t = s.sample(l, {0, 0, 1});
    EXPECT_FLOAT_EQ(l[0], 1.5f);
    EXPECT_FLOAT_EQ(l[1], -2.0f);
    EXPECT_FLOAT_EQ(l[2], 2.5f);
    EXPECT_EQ(t, 2);
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
    std::vector<float> base = {0.3f, 1.2f, 0.9f, -0.4f, 1.1f};
    for (uint64_t seed = 0; seed < 50; ++seed) {
        Sampler a(params(1.5f, 1, 1.0f, 1.0f, seed)), b(params(1.5f, 0, 1e-4f, 1.0f, seed));
        auto l1 = base, l2 = base;
        EXPECT_EQ(a.sample(l1, {}), 1);
        EXPECT_EQ(b.sample(l2, {}), 1);
    }
}

TEST(Sampler, TopKAndTopPRestrictTheSupport) {
    std::vector<float> base = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
    std::set<int> seen_k, seen_p;
    Sampler k2(params(1.0f, 2, 1.0f, 1.0f, 3)), p08(params(1.0f, 0, 0.75f, 1.0f, 4));
    for (int i = 0; i < 2000; ++i) {
        auto l = base;
        seen_k.insert(k2.sample(l, {}));
        l = base;
        seen_p.insert(p08.sample(l, {}));
    }
    EXPECT_EQ(seen_k, (std::set<int>{0, 1}));
    EXPECT_EQ(seen_p, (std::set<int>{0, 1}));  // 0.5 < 0.75 <= 0.5 + 0.3
}

TEST(Sampler, TemperatureFrequenciesFollowSoftmax) {
    const std::vector<float> base = {1.0f, 0.0f, -0.5f, 2.0f};
    const float T = 0.7f;
    std::vector<double> p(4);
    double z = 0;
    for (int i = 0; i < 4; ++i) z += p[i] = std::exp(base[i] / T);
    for (auto& v : p) v /= z;
    Sampler s(params(T, 0, 1.0f, 1.0f, 42));
    const int n = 40000;
    std::vector<int> count(4, 0);
    for (int i = 0; i < n; ++i) {
        auto l = base;
        ++count[s.sample(l, {})];
    }
    for (int i = 0; i < 4; ++i) {
        const double sd = std::sqrt(p[i] * (1 - p[i]) / n);
        EXPECT_NEAR((double)count[i] / n, p[i], 5 * sd) << "token " << i;
    }
}

TEST(Sampler, SameSeedSameSequence) {
    std::vector<float> base(50);
    for (int i = 0; i < 50; ++i) base[i] = std::sin(i * 1.3f);
    Sampler a(params(1.0f, 10, 0.9f, 1.1f, 7)), b(params(1.0f, 10, 0.9f, 1.1f, 7)), c(params(1.0f, 10, 0.9f, 1.1f, 8));
    std::vector<int> ha, hb, hc;
    for (int i = 0; i < 100; ++i) {
        auto l1 = base, l2 = base, l3 = base;
        ha.push_back(a.sample(l1, ha));
        hb.push_back(b.sample(l2, hb));
        hc.push_back(c.sample(l3, hc));
    }
    EXPECT_EQ(ha, hb);
    EXPECT_NE(ha, hc);
}

TEST(Sampler, BadParametersAreNamed) {
    auto msg = [](SamplingParams p) {
        try {
            Sampler s(p);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_NE(msg(params(-1)).find("temperature"), std::string::npos);
    EXPECT_NE(msg(params(1, -2)).find("top_k"), std::string::npos);
    EXPECT_NE(msg(params(1, 0, 0.0f)).find("top_p"), std::string::npos);
    EXPECT_NE(msg(params(1, 0, 1.0f, 0.0f)).find("repetition_penalty"), std::string::npos);
    Sampler s(params(0));
    std::vector<float> empty;
    EXPECT_THROW(s.sample(empty, {}), std::invalid_argument);
}
