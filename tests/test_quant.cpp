// Post-training quantization baselines: hand-computed grids, GPTQ against RTN
// on correlated inputs, exact ±1 structures and scales of BiLLM and sign.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "core/quant/Ptq.h"
#include "core/quant/Quantizers.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::model;
using namespace bimamba::quant;

namespace {

torch::Tensor dtensor(std::vector<std::vector<double>> rows) {
    auto t = torch::empty({(int64_t)rows.size(), (int64_t)rows[0].size()}, torch::kFloat64);
    for (size_t r = 0; r < rows.size(); ++r)
        for (size_t c = 0; c < rows[r].size(); ++c) t[r][c] = rows[r][c];
    return t;
}

// Inputs with strongly correlated features: a rank-8 signal plus a little noise.
torch::Tensor correlated_hessian(int64_t in, int64_t n, uint64_t seed) {
    torch::manual_seed(seed);
    auto X = torch::randn({n, 8}, torch::kFloat64).mm(torch::randn({8, in}, torch::kFloat64)) +
             0.1 * torch::randn({n, in}, torch::kFloat64);
    return X.t().mm(X) / double(n);
}

}  // namespace

TEST(Rtn, MatchesHandComputedGrid) {
    // Row 0: range [-1, 2], 2 bits -> scale 1, zero 1, levels {-1, 0, 1, 2}.
    // Row 1: range [0, 0.3] -> scale 0.1, zero 0; its values lie on the grid.
    auto W = dtensor({{-1.0, 0.2, 0.6, 2.0}, {0.3, 0.1, 0.2, 0.0}});
    auto Q = rtn_quantize(W, 2);
    auto want = dtensor({{-1.0, 0.0, 1.0, 2.0}, {0.3, 0.1, 0.2, 0.0}});
    EXPECT_TRUE(torch::allclose(Q, want, 0, 1e-12)) << Q;
}

TEST(Rtn, GroupWiseKeepsSmallGroupsExact) {
    // Per row, the grid step is 10 and 3 rounds to 0; with groups of 2 the first
    // group [0, 3] gets its own step 1.
    auto W = dtensor({{0.0, 3.0, 0.0, 30.0}});
    EXPECT_TRUE(torch::allclose(rtn_quantize(W, 2), dtensor({{0.0, 0.0, 0.0, 30.0}}), 0, 1e-12));
    EXPECT_TRUE(torch::allclose(rtn_quantize(W, 2, 2), W, 0, 1e-12));
}

TEST(Gptq, BeatsRtnOnCorrelatedInputs) {
    auto H = correlated_hessian(64, 1024, 1);
    torch::manual_seed(2);
    auto W = torch::randn({48, 64}, torch::kFloat64);
    for (int bits : {2, 3, 4}) {
        for (int64_t group : {0, 16}) {
            const double e_rtn = output_error(W, rtn_quantize(W, bits, group), H);
            GptqOptions o;
            o.bits = bits;
            o.group_size = group;
            o.block_size = 32;  // several lazy-update blocks
            const double e_gptq = output_error(W, gptq_quantize(W, H, o), H);
            o.act_order = true;
            const double e_act = output_error(W, gptq_quantize(W, H, o), H);
            EXPECT_LT(e_gptq, 0.8 * e_rtn) << bits << " bits, group " << group;
            EXPECT_LT(e_act, 0.8 * e_rtn) << bits << " bits, group " << group << ", act-order";
        }
    }
}

TEST(Gptq, StaysOnEachRowsGrid) {
    auto H = correlated_hessian(32, 256, 3);
    torch::manual_seed(4);
    auto W = torch::randn({8, 32}, torch::kFloat64);
    GptqOptions o;
    o.bits = 2;
    auto Q = gptq_quantize(W, H, o);
    for (int64_t r = 0; r < Q.size(0); ++r) {
        std::set<double> levels;
        for (int64_t c = 0; c < Q.size(1); ++c) levels.insert(Q[r][c].item<double>());
        EXPECT_LE(levels.size(), 4u) << "row " << r;
    }
}

TEST(Sign, IsPlusMinusRowMeanAbs) {
    auto W = dtensor({{1.0, -2.0, 0.0, 3.0}, {-0.5, 0.5, -0.5, 0.5}});
    auto want = dtensor({{1.5, -1.5, 1.5, 1.5}, {-0.5, 0.5, -0.5, 0.5}});
    EXPECT_TRUE(torch::allclose(sign_binarize(W), want, 0, 1e-15));
}

TEST(Billm, DocumentedScalesWithoutCrossColumnFeedback) {
    // H = I: the inverse Hessian factor is diagonal, so no error feedback moves
    // weights and every scale is a mean |w| of the original entries.
    torch::manual_seed(5);
    auto W = torch::randn({16, 64}, torch::kFloat64);
    W.select(1, 3).mul_(8);  // a clearly salient column
    auto res = billm_binarize(W, torch::eye(64, torch::kFloat64), {64, 0.01});
    ASSERT_TRUE(res.salient[3].item<bool>());
    auto pm = [](const torch::Tensor& x) { return torch::where(x >= 0, torch::ones_like(x), -torch::ones_like(x)); };
    auto sal = res.salient.unsqueeze(0).expand_as(W);
    auto mean_abs = [](const torch::Tensor& x, const torch::Tensor& m) {
        auto mf = m.to(x.scalar_type());
        return (x.abs() * mf).sum(1, true) / mf.sum(1, true).clamp_min(1);
    };
    auto a1 = mean_abs(W, sal);
    auto r = W - a1 * pm(W);
    auto a2 = mean_abs(r, sal);
    auto conc = ~sal & ~res.sparse, sparse = ~sal & res.sparse;
    EXPECT_FALSE((sal & res.sparse).any().item<bool>());
    auto want = torch::where(sal, a1 * pm(W) + a2 * pm(r),
                             torch::where(sparse, mean_abs(W, sparse) * pm(W), mean_abs(W, conc) * pm(W)));
    EXPECT_TRUE(torch::allclose(res.weight, want, 0, 1e-12));
    EXPECT_TRUE(sparse.any().item<bool>()) << "the bell-shaped split should find a sparse group";
}

TEST(Billm, PlusMinusOneStructureWithFeedback) {
    auto H = correlated_hessian(64, 512, 6);
    torch::manual_seed(7);
    auto W = torch::randn({12, 64}, torch::kFloat64);
    auto res = billm_binarize(W, H, {32, 0.01});
    for (int64_t b0 : {0, 32}) {
        for (int64_t row = 0; row < W.size(0); ++row) {
            std::set<double> conc, sparse, sal;
            for (int64_t c = b0; c < b0 + 32; ++c) {
                const double q = res.weight[row][c].item<double>();
                const double rq = std::round(q * 1e9) / 1e9;
                if (res.salient[c].item<bool>())
                    sal.insert(rq);
                else
                    (res.sparse[row][c].item<bool>() ? sparse : conc).insert(std::fabs(rq));
            }
            // One magnitude per group and row (α·{±1}); salient: ±α1 ± α2.
            EXPECT_LE(conc.size(), 1u);
            EXPECT_LE(sparse.size(), 1u);
            EXPECT_LE(sal.size(), 4u);
        }
    }
    const double e_billm = output_error(W, res.weight, H), e_sign = output_error(W, sign_binarize(W), H);
    EXPECT_LT(e_billm, e_sign);
}

TEST(Ptq, QuantizesTheModelsProjectionsWithCalibration) {
    torch::manual_seed(0);
    auto cfg = Mamba2Config::preset("tiny");
    Mamba2LM model(cfg);
    model->eval();
    auto ids = torch::randint(0, cfg.vocab_size, {2, 32}, torch::kInt64);
    auto before = model->forward(ids);
    auto emb = model->backbone->embedding->weight.clone();
    PtqOptions o;
    o.method = PtqMethod::GPTQ;
    o.bits = 8;
    auto stats = quantize_model(model, o, ids);
    ASSERT_EQ(stats.size(), 2u * cfg.n_layer);
    for (auto& s : stats) {
        EXPECT_GT(s.rel_weight_error, 0) << s.module;
        EXPECT_LT(s.rel_output_error, 0.02) << s.module;
    }
    EXPECT_TRUE(torch::equal(emb, model->backbone->embedding->weight));
    auto after = model->forward(ids);
    EXPECT_LT((after - before).abs().max().item<double>(), 0.05 * before.abs().max().item<double>());
    // in_proj of a layer is now on a 256-level grid per row.
    auto w = model->backbone->layers->ptr(0)->as<Mamba2BlockImpl>()->mixer->in_proj->weight;
    std::set<float> levels;
    for (int64_t c = 0; c < w.size(1); ++c) levels.insert(w[0][c].item<float>());
    EXPECT_LE(levels.size(), 256u);

    auto bcfg = cfg;
    bcfg.binarize = Binarize::InOutProj;
    Mamba2LM bin(bcfg);
    EXPECT_THROW(quantize_model(bin, o, ids), std::invalid_argument);
    o.method = PtqMethod::BiLLM;
    EXPECT_THROW(quantize_model(model, o, torch::Tensor()), std::invalid_argument);
}
