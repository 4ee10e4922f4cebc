// AdamW (core/train/AdamW.h) against torch::optim::AdamW with the same
// hyper-parameters (decaying and non-decaying parameter groups, a learning
// rate that changes every step, a parameter without a gradient), against a
// float64 hand computation of one weight, its decay rule, and its state
// round trip (what a checkpoint saves and a resumed run loads).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "core/train/AdamW.h"

using namespace bimamba;
using namespace bimamba::train;

namespace {

constexpr double kBeta1 = 0.9, kBeta2 = 0.95, kEps = 1e-8, kDecay = 0.1;
const std::vector<double> kLrs = {1e-2, 5e-3, 2e-3, 1e-3};

// Named like the model's parameters: lin.weight (decays), lin.wscale (a
// matrix, but a binarization scale: no decay), norm.weight and lin.bias (no decay),
// frozen.weight (never gets a gradient).
struct Lin : torch::nn::Module {
    torch::Tensor weight, wscale, bias;
    Lin() {
        weight = register_parameter("weight", torch::randn({3, 4}));
        wscale = register_parameter("wscale", torch::rand({3, 1}) + 0.5);
        bias = register_parameter("bias", torch::randn({3}));
    }
};
struct Norm : torch::nn::Module {
    torch::Tensor weight;
    Norm() { weight = register_parameter("weight", torch::ones({4}) + 0.1 * torch::randn({4})); }
};
struct Toy : torch::nn::Module {
    std::shared_ptr<Lin> lin;
    std::shared_ptr<Norm> norm, frozen;
    Toy() {
        lin = register_module("lin", std::make_shared<Lin>());
        norm = register_module("norm", std::make_shared<Norm>());
        frozen = register_module("frozen", std::make_shared<Norm>());
    }
};

std::shared_ptr<Toy> make_toy() {
    torch::manual_seed(11);
    return std::make_shared<Toy>();
}

// Step k's gradient of every parameter but frozen.weight (seeded by k).
void set_grads(Toy& m, int k) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + k);
    for (auto& kv : m.named_parameters()) {
        if (kv.key() == "frozen.weight") continue;
        kv.value().mutable_grad() = at::randn(kv.value().sizes(), gen);
    }
}

std::shared_ptr<Toy> clone(const Toy& m) {
    auto c = make_toy();
    torch::NoGradGuard ng;
    auto src = m.named_parameters();
    for (auto& kv : c->named_parameters()) kv.value().copy_(src[kv.key()]);
    return c;
}

}  // namespace

TEST(AdamW, DecaysMatricesOnly) {
    auto m = make_toy();
    AdamW adam(*m, kBeta1, kBeta2, kEps, kDecay);
    std::map<std::string, bool> decay;
    for (auto& s : adam.slots) decay[s.name] = s.decay;
    EXPECT_EQ(decay, (std::map<std::string, bool>{{"lin.weight", true},
                                                  {"lin.wscale", false},
                                                  {"lin.bias", false},
                                                  {"norm.weight", false},
                                                  {"frozen.weight", false}}));
    EXPECT_TRUE(AdamW::decays("layers.0.mixer.in_proj.weight", torch::zeros({8, 4})));
    EXPECT_FALSE(AdamW::decays("layers.0.mixer.in_proj.wbias", torch::zeros({8, 1})));
    EXPECT_FALSE(AdamW::decays("layers.0.mixer.A_log", torch::zeros({8})));
}

TEST(AdamW, MatchesTorchAdamW) {
    auto ours = make_toy();
    auto ref = clone(*ours);
    AdamW adam(*ours, kBeta1, kBeta2, kEps, kDecay);

    // torch: one group with weight decay (the matrices AdamW::decays picks), one without.
    std::vector<torch::Tensor> with_decay, without_decay;
    for (auto& kv : ref->named_parameters())
        (AdamW::decays(kv.key(), kv.value()) ? with_decay : without_decay).push_back(kv.value());
    auto opts = [](double wd) {
        return std::make_unique<torch::optim::AdamWOptions>(
            torch::optim::AdamWOptions(kLrs[0]).betas({kBeta1, kBeta2}).eps(kEps).weight_decay(wd));
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(with_decay, opts(kDecay));
    groups.emplace_back(without_decay, opts(0.0));
    torch::optim::AdamW torch_adam(groups, torch::optim::AdamWOptions(kLrs[0]));

    for (size_t k = 0; k < kLrs.size(); ++k) {
        set_grads(*ours, static_cast<int>(k));
        set_grads(*ref, static_cast<int>(k));
        adam.step(kLrs[k]);
        for (auto& g : torch_adam.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(kLrs[k]);
        torch_adam.step();
    }
    EXPECT_EQ(adam.t, static_cast<int64_t>(kLrs.size()));
    auto want = ref->named_parameters();
    for (auto& s : adam.slots) {
        EXPECT_TRUE(torch::allclose(s.param, want[s.name], 1e-6, 1e-7)) << s.name;
        if (s.name == "frozen.weight") {
            EXPECT_TRUE(torch::equal(s.param, want[s.name]));
            EXPECT_EQ(s.m.abs().sum().item<double>(), 0.0);
            continue;
        }
        auto& st =
            static_cast<torch::optim::AdamWParamState&>(*torch_adam.state().at(want[s.name].unsafeGetTensorImpl()));
        EXPECT_TRUE(torch::allclose(s.m, st.exp_avg(), 1e-6, 1e-9)) << s.name;
        EXPECT_TRUE(torch::allclose(s.v, st.exp_avg_sq(), 1e-6, 1e-12)) << s.name;
    }
}

// One weight of lin.weight over the steps, in float64 from the formulas:
// θ ← θ(1 − lr·λ); m ← β1·m + (1−β1)g; v ← β2·v + (1−β2)g²;
// θ ← θ − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε).
TEST(AdamW, MatchesFloat64HandComputation) {
    auto m = make_toy();
    double theta = m->lin->weight[1][2].item<double>(), mom = 0, var = 0;
    AdamW adam(*m, kBeta1, kBeta2, kEps, kDecay);
    for (size_t k = 0; k < kLrs.size(); ++k) {
        set_grads(*m, static_cast<int>(k));
        const double g = m->lin->weight.grad()[1][2].item<double>();
        const double lr = kLrs[k], t = static_cast<double>(k + 1);
        theta *= 1.0 - lr * kDecay;
        mom = kBeta1 * mom + (1 - kBeta1) * g;
        var = kBeta2 * var + (1 - kBeta2) * g * g;
        theta -= lr / (1 - std::pow(kBeta1, t)) * mom / (std::sqrt(var) / std::sqrt(1 - std::pow(kBeta2, t)) + kEps);
        adam.step(lr);
        EXPECT_NEAR(m->lin->weight[1][2].item<double>(), theta, 1e-6 * std::max(1.0, std::abs(theta))) << "step " << t;
    }
}

// What a checkpoint saves (state() and t) continues bit for bit in a new
// optimizer over a copy of the weights; a missing or misshapen moment is refused.
TEST(AdamW, StateRoundTripContinuesBitForBit) {
    auto a = make_toy();
    AdamW adam_a(*a, kBeta1, kBeta2, kEps, kDecay);
    for (int k = 0; k < 2; ++k) {
        set_grads(*a, k);
        adam_a.step(kLrs[k]);
    }
    auto st = adam_a.state();
    EXPECT_EQ(st.size(), 2 * adam_a.slots.size());
    ASSERT_TRUE(st.count("exp_avg.lin.weight") && st.count("exp_avg_sq.norm.weight"));

    auto b = clone(*a);
    AdamW adam_b(*b, kBeta1, kBeta2, kEps, kDecay);
    adam_b.load(st, adam_a.t);
    for (int k = 2; k < 4; ++k) {
        set_grads(*a, k);
        set_grads(*b, k);
        adam_a.step(kLrs[k]);
        adam_b.step(kLrs[k]);
    }
    auto pb = b->named_parameters();
    for (auto& kv : a->named_parameters()) EXPECT_TRUE(torch::equal(kv.value(), pb[kv.key()])) << kv.key();

    auto missing = st;
    missing.erase("exp_avg_sq.lin.bias");
    EXPECT_THROW(adam_b.load(missing, 2), std::runtime_error);
    auto misshapen = st;
    misshapen["exp_avg.lin.bias"] = torch::zeros({5});
    EXPECT_THROW(adam_b.load(misshapen, 2), std::runtime_error);
}
