// Model core: SSD forms agree, decoding agrees with the parallel forward,
// BinaryLinear follows the FBI-Linear definition, configs round-trip.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/base/Mamba2Config.h"
#include "core/model/BinaryLinear.h"
#include "core/model/Mamba2Model.h"
#include "core/model/Ssd.h"
#include "tests/ModelTestUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::model;

namespace {
using test::randomize;

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-300);
}

struct SsdCase {
    int64_t b, l, h, p, g, n, chunk;
    bool init_state;
};

}  // namespace

TEST(Ssd, ChunkedEqualsRecurrenceFloat64) {
    torch::manual_seed(0);
    std::vector<SsdCase> cases = {
        {2, 37, 4, 8, 2, 16, 8, false},  // length not a multiple of the chunk, grouped B/C
        {1, 64, 2, 4, 1, 8, 16, false},  // exact multiple
        {2, 5, 3, 4, 3, 4, 16, true},    // shorter than one chunk, initial state
        {1, 50, 4, 8, 1, 16, 7, true},   // odd chunk size
    };
    for (auto& c : cases) {
        auto o = torch::TensorOptions().dtype(torch::kFloat64);
        auto x = torch::randn({c.b, c.l, c.h, c.p}, o);
        auto dt = torch::nn::functional::softplus(torch::randn({c.b, c.l, c.h}, o) - 1.0);
        auto A = -torch::rand({c.h}, o) * 2.0 - 0.1;
        auto B = torch::randn({c.b, c.l, c.g, c.n}, o);
        auto C = torch::randn({c.b, c.l, c.g, c.n}, o);
        torch::Tensor init;
        if (c.init_state) init = torch::randn({c.b, c.h, c.p, c.n}, o);
        auto [y1, s1] = ssd_chunked(x, dt, A, B, C, c.chunk, init);
        auto [y2, s2] = ssd_recurrent(x, dt, A, B, C, init);
        EXPECT_LT(rel_err(y1, y2), 1e-10) << "l=" << c.l << " chunk=" << c.chunk;
        EXPECT_LT(rel_err(s1, s2), 1e-10) << "l=" << c.l << " chunk=" << c.chunk;
    }
}

TEST(Ssd, RecurrenceMatchesHandComputation) {
    // One head, p=1, n=1, two steps: h1 = dt1*x1*B1, h2 = e^{dt2 A} h1 + dt2 x2 B2, y = C h.
    auto o = torch::TensorOptions().dtype(torch::kFloat64);
    auto x = torch::tensor({2.0, -1.0}, o).view({1, 2, 1, 1});
    auto dt = torch::tensor({0.5, 0.25}, o).view({1, 2, 1});
    auto A = torch::tensor({-0.8}, o);
    auto B = torch::tensor({3.0, 4.0}, o).view({1, 2, 1, 1});
    auto C = torch::tensor({0.5, -2.0}, o).view({1, 2, 1, 1});
    auto [y, s] = ssd_recurrent(x, dt, A, B, C);
    double h1 = 0.5 * 2.0 * 3.0, h2 = std::exp(0.25 * -0.8) * h1 + 0.25 * -1.0 * 4.0;
    EXPECT_NEAR(y[0][0][0][0].item<double>(), 0.5 * h1, 1e-14);
    EXPECT_NEAR(y[0][1][0][0].item<double>(), -2.0 * h2, 1e-14);
    EXPECT_NEAR(s[0][0][0][0].item<double>(), h2, 1e-14);
}

class ModelDecode : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelDecode, ForwardEqualsStepDecoding) {
    torch::manual_seed(1);
    auto cfg = Mamba2Config::preset("tiny");
    cfg.binarize = binarize_from_string(GetParam());
    Mamba2LM model(cfg);
    randomize(model);
    model->eval();
    torch::NoGradGuard ng;
    const int64_t L = 41;  // not a multiple of chunk_size=16
    auto ids = torch::randint(0, cfg.vocab_size, {2, L}, torch::kLong);
    auto full = model->forward(ids);
    ASSERT_EQ(full.sizes(), (std::vector<int64_t>{2, L, cfg.vocab_size}));

    // Token-by-token from an empty state.
    auto st = model->new_state(2);
    std::vector<torch::Tensor> steps;
    for (int64_t t = 0; t < L; ++t) steps.push_back(model->step(ids.select(1, t), st));
    auto stepped = torch::stack(steps, 1);
    EXPECT_LT(rel_err(stepped, full), 1e-4);

    // Prefill part of the prompt, then continue step by step.
    auto st2 = model->new_state(2);
    auto pre = model->prefill(ids.narrow(1, 0, 19), st2);
    EXPECT_LT(rel_err(pre, full.narrow(1, 0, 19)), 1e-5);
    for (int64_t t = 19; t < L; ++t) {
        auto lg = model->step(ids.select(1, t), st2);
        EXPECT_LT(rel_err(lg, full.select(1, t)), 1e-4) << "t=" << t;
    }

    // Prefill, then continue in chunked passes from the state (a short one
    // shorter than d_conv, then one crossing a chunk boundary): the same
    // logits as the whole sequence, and the same state as stepping.
    auto st3 = model->new_state(2);
    model->prefill(ids.narrow(1, 0, 7), st3);
    auto h1 = model->continue_hidden_states(ids.narrow(1, 7, 2), st3);
    EXPECT_LT(rel_err(model->logits_from_hidden(h1), full.narrow(1, 7, 2)), 1e-4);
    auto h2 = model->continue_hidden_states(ids.narrow(1, 9, L - 9), st3);
    EXPECT_LT(rel_err(model->logits_from_hidden(h2), full.narrow(1, 9, L - 9)), 1e-4);
    for (int i = 0; i < cfg.n_layer; ++i) {
        EXPECT_LT(rel_err(st3.layers[i].ssm_state, st.layers[i].ssm_state), 1e-4) << "layer " << i;
        EXPECT_LT(rel_err(st3.layers[i].conv_state, st.layers[i].conv_state), 1e-5) << "layer " << i;
    }
}
INSTANTIATE_TEST_SUITE_P(Binarization, ModelDecode, ::testing::Values("none", "in_proj", "in_proj+out_proj"));

TEST(Model, ParameterNamesFollowMambaSsm) {
    auto cfg = Mamba2Config::preset("tiny");
    cfg.binarize = Binarize::InOutProj;
    Mamba2LM model(cfg);
    auto t = model->named_tensors();
    for (std::string n :
         {"backbone.embedding.weight", "backbone.layers.0.norm.weight", "backbone.layers.1.mixer.in_proj.weight",
          "backbone.layers.1.mixer.in_proj.wscale", "backbone.layers.1.mixer.in_proj.wbias",
          "backbone.layers.1.mixer.out_proj.wscale", "backbone.layers.0.mixer.conv1d.weight",
          "backbone.layers.0.mixer.conv1d.bias", "backbone.layers.0.mixer.dt_bias", "backbone.layers.0.mixer.A_log",
          "backbone.layers.0.mixer.D", "backbone.layers.0.mixer.norm.weight", "backbone.norm_f.weight"})
        EXPECT_TRUE(t.count(n)) << n;
    EXPECT_EQ(t.at("backbone.layers.0.mixer.in_proj.weight").sizes(),
              (std::vector<int64_t>{cfg.in_proj_out(), cfg.d_model}));
    EXPECT_EQ(t.at("backbone.layers.0.mixer.in_proj.wscale").sizes(), (std::vector<int64_t>{1, cfg.d_model}));
    int64_t total = 0;
    for (auto& [k, v] : t) total += v.numel();
    EXPECT_EQ(total, cfg.num_parameters());
}

TEST(Model, InitFollowsReference) {
    torch::manual_seed(3);
    auto cfg = Mamba2Config::preset("tiny");
    Mamba2LM model(cfg);
    auto mixer = model->backbone->layers[0]->as<Mamba2BlockImpl>()->mixer;
    auto A = -torch::exp(mixer->A_log);
    EXPECT_TRUE((A <= -cfg.ssm.A_init_min + 1e-6).all().item<bool>());
    EXPECT_TRUE((A >= -cfg.ssm.A_init_max - 1e-5).all().item<bool>());
    auto dt = torch::nn::functional::softplus(mixer->dt_bias);
    EXPECT_TRUE((dt >= cfg.ssm.dt_init_floor * 0.999).all().item<bool>());
    EXPECT_TRUE((dt <= cfg.ssm.dt_max * 1.001).all().item<bool>());
    EXPECT_TRUE(torch::equal(mixer->D, torch::ones_like(mixer->D)));
}

TEST(BinaryLinear, ForwardIsAlphaSignPlusBeta) {
    torch::manual_seed(4);
    BinaryLinear lin(13, 7, true);
    {
        torch::NoGradGuard ng;
        lin->weight.index_put_({0, 0}, 0.0);  // sign(0) = 0
        lin->wscale.uniform_(0.1, 1.0);
        lin->wbias.uniform_(-0.2, 0.2);
    }
    auto x = torch::randn({5, 13});
    auto W = lin->weight.detach(), a = lin->wscale.detach(), b = lin->wbias.detach();
    auto explicit_w = torch::empty({7, 13});
    for (int o = 0; o < 7; ++o)
        for (int i = 0; i < 13; ++i) {
            float w = W[o][i].item<float>();
            float s = w > 0 ? 1.f : (w < 0 ? -1.f : 0.f);
            explicit_w[o][i] = a[0][i].item<float>() * s + b[0][i].item<float>();
        }
    EXPECT_LT(rel_err(lin->effective_weight().detach(), explicit_w), 1e-7);
    EXPECT_FLOAT_EQ(lin->effective_weight()[0][0].item<float>(), b[0][0].item<float>());
    auto y = lin->forward(x);
    EXPECT_LT(rel_err(y.detach(), torch::matmul(x, explicit_w.t())), 1e-6);
}

TEST(BinaryLinear, XnorInit) {
    torch::manual_seed(5);
    BinaryLinear lin(6, 9, true);
    auto W = lin->weight.detach().to(torch::kFloat64);
    for (int i = 0; i < 6; ++i) {
        double beta = 0, alpha = 0;
        for (int o = 0; o < 9; ++o) beta += W[o][i].item<double>();
        beta /= 9;
        for (int o = 0; o < 9; ++o) alpha += std::abs(W[o][i].item<double>() - beta);
        alpha /= 9;
        EXPECT_NEAR(lin->wbias[0][i].item<double>(), beta, 1e-6);
        EXPECT_NEAR(lin->wscale[0][i].item<double>(), alpha, 1e-6);
    }
}

TEST(BinaryLinear, GradientsAreStraightThroughAndExactForScales) {
    torch::manual_seed(6);
    BinaryLinear lin(5, 4, true);
    lin->to(torch::kFloat64);
    {
        torch::NoGradGuard ng;
        lin->wscale.uniform_(0.2, 1.0);
        lin->wbias.uniform_(-0.3, 0.3);
    }
    auto x = torch::randn({3, 5}, torch::kFloat64);
    auto target = torch::randn({3, 4}, torch::kFloat64);
    auto loss_fn = [&]() { return (lin->forward(x) - target).pow(2).sum(); };
    auto loss = loss_fn();
    loss.backward();
    // dL/dŴ = (dL/dy)^T x ; STE: dL/dW = α ⊙ dL/dŴ.
    auto y = torch::matmul(x, lin->effective_weight().detach().t());
    auto gy = 2.0 * (y - target);
    auto gW_hat = torch::matmul(gy.t(), x);  // (4, 5)
    EXPECT_LT(rel_err(lin->weight.grad(), lin->wscale.detach() * gW_hat), 1e-12);
    // Finite differences for α and β.
    for (auto* p : {&lin->wscale, &lin->wbias}) {
        auto g = p->grad().clone();
        for (int i = 0; i < 5; ++i) {
            const double h = 1e-6;
            double orig;
            {
                torch::NoGradGuard ng;
                orig = (*p)[0][i].item<double>();
                (*p)[0][i] = orig + h;
            }
            double lp = loss_fn().item<double>();
            {
                torch::NoGradGuard ng;
                (*p)[0][i] = orig - h;
            }
            double lm = loss_fn().item<double>();
            {
                torch::NoGradGuard ng;
                (*p)[0][i] = orig;
            }
            EXPECT_NEAR(g[0][i].item<double>(), (lp - lm) / (2 * h),
                        1e-5 * std::max(1.0, std::abs(g[0][i].item<double>())));
        }
    }
}

TEST(Config, PresetsMatchThePaperShapes) {
    struct Row {
        const char* name;
        int in_rows, in_cols, out_rows, out_cols, nheads;
    };
    for (auto r : {Row{"780m", 6448, 1536, 1536, 3072, 48}, Row{"1.3b", 8512, 2048, 2048, 4096, 64},
                   Row{"2.7b", 10576, 2560, 2560, 5120, 80}}) {
        auto c = Mamba2Config::preset(r.name);
        EXPECT_EQ(c.in_proj_out(), r.in_rows) << r.name;
        EXPECT_EQ(c.d_model, r.in_cols);
        EXPECT_EQ(c.d_inner(), r.out_cols);
        EXPECT_EQ(c.nheads(), r.nheads);
    }
}

TEST(Config, JsonRoundTripAndErrors) {
    auto c = Mamba2Config::preset("small");
    c.binarize = Binarize::InProj;
    auto j = c.to_json();
    auto d = Mamba2Config::from_json(j, true);
    EXPECT_EQ(d.to_json(), j);
    EXPECT_EQ(j["ssm_cfg"]["headdim"], c.ssm.headdim);
    auto bad = j;
    bad["bogus"] = 1;
    try {
        Mamba2Config::from_json(bad, true);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("bogus"), std::string::npos);
    }
    bad = j;
    bad["ssm_cfg"]["headdim"] = 7;  // does not divide d_inner
    EXPECT_THROW(Mamba2Config::from_json(bad), std::invalid_argument);
    bad = j;
    bad["d_model"] = "wide";
    try {
        Mamba2Config::from_json(bad);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("d_model"), std::string::npos);
    }
    bad = j;
    bad["binarize"] = "half";
    EXPECT_THROW(Mamba2Config::from_json(bad), std::invalid_argument);
    // HF transformers' keys
    nlohmann::json hf = {{"hidden_size", 64}, {"num_hidden_layers", 2}, {"vocab_size", 512}, {"state_size", 16},
                         {"head_dim", 16},    {"n_groups", 1},          {"expand", 2},       {"conv_kernel", 4},
                         {"chunk_size", 16},  {"num_heads", 8}};
    auto h = Mamba2Config::from_json(hf);
    EXPECT_EQ(h.d_model, 64);
    EXPECT_EQ(h.nheads(), 8);
    EXPECT_EQ(h.padded_vocab(), 512);
}

TEST(Model, FullPrecisionWeightsIntoBinarizedModelGetXnorScales) {
    torch::manual_seed(7);
    auto cfg = Mamba2Config::preset("tiny");
    Mamba2LM fp(cfg);
    cfg.binarize = Binarize::InOutProj;
    Mamba2LM bi(cfg);
    bi->load_tensors(fp->named_tensors());
    auto t = bi->named_tensors();
    auto W = fp->named_tensors().at("backbone.layers.1.mixer.out_proj.weight");
    auto beta = W.mean(0, true);
    EXPECT_LT(rel_err(t.at("backbone.layers.1.mixer.out_proj.wbias"), beta), 1e-6);
    EXPECT_LT(rel_err(t.at("backbone.layers.1.mixer.out_proj.wscale"), (W - beta).abs().mean(0, true)), 1e-6);
    // A tensor of the wrong shape is named in the error.
    auto bad = fp->named_tensors();
    bad["backbone.norm_f.weight"] = torch::ones({3});
    try {
        bi->load_tensors(bad);
        FAIL();
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("backbone.norm_f.weight"), std::string::npos);
    }
    // Missing tensors are refused in strict mode.
    auto partial = fp->named_tensors();
    partial.erase("backbone.layers.0.mixer.A_log");
    EXPECT_THROW(bi->load_tensors(partial), std::runtime_error);
}
