// Losses against hand computations in float64, their gradients against the
// closed form (softmax(s) − p_T)/n, and the learning-rate schedule.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/train/HeadLoss.h"
#include "core/train/Losses.h"
#include "core/train/LrSchedule.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::train;

namespace {

std::vector<double> softmax_d(const std::vector<double>& z) {
    double m = z[0];
    for (double v : z) m = std::max(m, v);
    double s = 0;
    for (double v : z) s += std::exp(v - m);
    std::vector<double> p;
    for (double v : z) p.push_back(std::exp(v - m) / s);
    return p;
}

// Two positions, vocabulary 4, fixed values.
const std::vector<std::vector<double>> kStudent = {{1.0, 2.0, 0.5, -1.0}, {0.3, -0.2, 2.5, 0.0}};
const std::vector<std::vector<double>> kTeacher = {{0.0, 3.0, 1.0, -2.0}, {1.5, 0.5, 0.2, -0.7}};
const std::vector<int64_t> kTargets = {1, 2};

torch::Tensor to_tensor(const std::vector<std::vector<double>>& v, bool grad = false) {
    auto t = torch::empty({1, (int64_t)v.size(), (int64_t)v[0].size()}, torch::kFloat32);
    for (size_t i = 0; i < v.size(); ++i)
        for (size_t j = 0; j < v[i].size(); ++j) t[0][i][j] = (float)v[i][j];
    return t.set_requires_grad(grad);
}

double ref_ce() {
    double s = 0;
    for (size_t i = 0; i < kStudent.size(); ++i) s -= std::log(softmax_d(kStudent[i])[kTargets[i]]);
    return s / kStudent.size();
}
double ref_soft_ce() {
    double s = 0;
    for (size_t i = 0; i < kStudent.size(); ++i) {
        auto ps = softmax_d(kStudent[i]), pt = softmax_d(kTeacher[i]);
        for (size_t v = 0; v < ps.size(); ++v) s -= pt[v] * std::log(ps[v]);
    }
    return s / kStudent.size();
}
double ref_kl() {
    double s = 0;
    for (size_t i = 0; i < kStudent.size(); ++i) {
        auto ps = softmax_d(kStudent[i]), pt = softmax_d(kTeacher[i]);
        for (size_t v = 0; v < ps.size(); ++v) s += pt[v] * (std::log(pt[v]) - std::log(ps[v]));
    }
    return s / kStudent.size();
}

}  // namespace

TEST(Losses, CrossEntropyMatchesHandValue) {
    auto t = torch::tensor({1, 2}, torch::kInt64).reshape({1, 2});
    EXPECT_NEAR(loss_ce(to_tensor(kStudent), t).item<double>(), ref_ce(), 1e-6);
    // One position by hand: logits [1, 2, 3], target 2 -> log(e + e² + e³) − 3.
    auto l = torch::tensor({1.f, 2.f, 3.f}).reshape({1, 1, 3});
    double expect = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
    EXPECT_NEAR(loss_ce(l, torch::tensor({2}, torch::kInt64).reshape({1, 1})).item<double>(), expect, 1e-6);
}

TEST(Losses, SoftCrossEntropyMatchesFloat64) {
    EXPECT_NEAR(loss_soft_ce(to_tensor(kStudent), to_tensor(kTeacher)).item<double>(), ref_soft_ce(), 1e-6);
}

TEST(Losses, SoftCrossEntropyEqualsCEForOneHotTeacher) {
    // A teacher whose softmax is one-hot on the targets (exp(−1e4) underflows to 0).
    auto teacher = torch::full({1, 2, 4}, -1e4f);
    teacher[0][0][kTargets[0]] = 0.f;
    teacher[0][1][kTargets[1]] = 0.f;
    auto targets = torch::tensor(kTargets, torch::kInt64).reshape({1, 2});
    auto s = to_tensor(kStudent);
    EXPECT_NEAR(loss_soft_ce(s, teacher).item<double>(), loss_ce(s, targets).item<double>(), 1e-6);
    EXPECT_NEAR(loss_soft_ce(s, teacher).item<double>(), ref_ce(), 1e-6);
}

TEST(Losses, KLMatchesFloat64AndIsZeroForIdenticalLogits) {
    EXPECT_NEAR(loss_kl(to_tensor(kStudent), to_tensor(kTeacher)).item<double>(), ref_kl(), 1e-6);
    EXPECT_GT(ref_kl(), 0.01);
    EXPECT_NEAR(loss_kl(to_tensor(kStudent), to_tensor(kStudent)).item<double>(), 0.0, 1e-7);
    // KL = soft CE − teacher entropy.
    double h = 0;
    for (auto& row : kTeacher)
        for (double p : softmax_d(row)) h -= p * std::log(p);
    EXPECT_NEAR(ref_kl(), ref_soft_ce() - h / kTeacher.size(), 1e-12);
    // A teacher with −inf logits (probability 0) gives a finite KL.
    auto t = to_tensor(kTeacher);
    t[0][0][3] = -std::numeric_limits<float>::infinity();
    EXPECT_TRUE(std::isfinite(loss_kl(to_tensor(kStudent), t).item<double>()));
}

TEST(Losses, MixIsTheWeightedSum) {
    auto targets = torch::tensor(kTargets, torch::kInt64).reshape({1, 2});
    for (double w : {0.0, 0.3, 0.5, 1.0}) {
        double got = loss_mix(to_tensor(kStudent), to_tensor(kTeacher), targets, w).item<double>();
        EXPECT_NEAR(got, w * ref_ce() + (1 - w) * ref_soft_ce(), 1e-6) << "ce_weight " << w;
    }
    EXPECT_THROW(loss_mix(to_tensor(kStudent), to_tensor(kTeacher), targets, 1.5), std::invalid_argument);
}

TEST(Losses, StudentGetsTheClosedFormGradientTeacherNone) {
    // d/ds of soft CE and of KL: (softmax(s) − softmax(t)) / n per position.
    for (int which = 0; which < 2; ++which) {
        auto s = to_tensor(kStudent, true);
        auto t = to_tensor(kTeacher, true);
        auto loss = which == 0 ? loss_soft_ce(s, t) : loss_kl(s, t);
        loss.backward();
        ASSERT_TRUE(s.grad().defined());
        EXPECT_GT(s.grad().abs().sum().item<double>(), 0.1);
        for (size_t i = 0; i < kStudent.size(); ++i) {
            auto ps = softmax_d(kStudent[i]), pt = softmax_d(kTeacher[i]);
            for (size_t v = 0; v < ps.size(); ++v)
                EXPECT_NEAR(s.grad()[0][i][v].item<double>(), (ps[v] - pt[v]) / kStudent.size(), 1e-6)
                    << (which == 0 ? "soft_ce" : "kl") << " position " << i << " token " << v;
        }
        EXPECT_FALSE(t.grad().defined() && t.grad().abs().sum().item<double>() > 0) << "teacher must get no gradient";
    }
    // CE and mix: non-zero student gradients too.
    auto targets = torch::tensor(kTargets, torch::kInt64).reshape({1, 2});
    auto s = to_tensor(kStudent, true);
    loss_ce(s, targets).backward();
    EXPECT_GT(s.grad().abs().sum().item<double>(), 0.1);
    auto s2 = to_tensor(kStudent, true);
    loss_mix(s2, to_tensor(kTeacher), targets, 0.5).backward();
    EXPECT_GT(s2.grad().abs().sum().item<double>(), 0.1);
}

TEST(Losses, TeacherVocabularySlicingAndShapeErrors) {
    auto t = torch::randn({1, 2, 6});
    auto sl = slice_teacher_vocab(t, 4);
    EXPECT_EQ(sl.size(-1), 4);
    EXPECT_TRUE(torch::equal(sl, t.narrow(-1, 0, 4)));
    EXPECT_THROW(slice_teacher_vocab(t, 8), std::invalid_argument);
    EXPECT_THROW(loss_soft_ce(to_tensor(kStudent), t), std::invalid_argument);
    EXPECT_EQ(loss_type_from_string("kl"), LossType::KL);
    EXPECT_THROW(loss_type_from_string("hinge"), std::invalid_argument);
}

// The chunked head + loss against the head's matmul followed by the losses'
// closed forms in float64: same loss, same gradients to the hidden states and the head
// weight, for every loss type, with chunks that do not divide the rows.
TEST(HeadLoss, ChunkedEqualsHeadThenLoss) {
    torch::manual_seed(5);
    const int64_t b = 2, l = 7, d = 5, V = 11;
    auto opts = torch::TensorOptions().dtype(torch::kFloat64);
    auto h0 = torch::randn({b, l, d}, opts), w0 = torch::randn({V, d}, opts);
    auto targets = torch::randint(0, V, {b, l}, torch::kLong);
    auto teacher = torch::randn({b, l, V}, opts) * 2;
    teacher[0][3][4] = -std::numeric_limits<double>::infinity();  // p_T = 0 somewhere (KL: 0·log 0)
    for (auto type : {LossType::CE, LossType::SoftCE, LossType::KL, LossType::Mix}) {
        auto h1 = h0.clone().requires_grad_(true), w1 = w0.clone().requires_grad_(true);
        // The closed forms in float64 (Losses.h computes in float32).
        auto logits = torch::nn::functional::linear(h1, w1);
        auto logp = torch::log_softmax(logits, -1);
        auto lt = torch::log_softmax(teacher, -1), pt = lt.exp();
        auto ce = -logp.gather(-1, targets.unsqueeze(-1)).mean();
        auto soft = -(pt * logp).sum(-1).mean();
        torch::Tensor ref, ref32;
        switch (type) {
            case LossType::CE:
                ref = ce, ref32 = loss_ce(logits, targets);
                break;
            case LossType::SoftCE:
                ref = soft, ref32 = loss_soft_ce(logits, teacher);
                break;
            case LossType::KL:
                ref = torch::where(pt > 0, pt * (lt - logp), torch::zeros_like(pt)).sum(-1).mean();
                ref32 = loss_kl(logits, teacher);
                break;
            case LossType::Mix:
                ref = 0.3 * ce + 0.7 * soft, ref32 = loss_mix(logits, teacher, targets, 0.3);
                break;
        }
        EXPECT_NEAR(ref.item<double>(), ref32.item<double>(), 1e-5);
        (ref * 2.5).backward();  // a loss scale other than 1 reaches both gradients
        for (int64_t chunk : {4, 14, 100}) {
            auto h2 = h0.clone().requires_grad_(true), w2 = w0.clone().requires_grad_(true);
            HeadLossTargets t{type, targets, teacher, 0.3};
            auto loss = head_loss(h2, w2, t, chunk);
            (loss * 2.5).backward();
            const auto name = to_string(type) + " chunk " + std::to_string(chunk);
            EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-12) << name;
            EXPECT_LT((h2.grad() - h1.grad()).abs().max().item<double>(), 1e-12) << name;
            EXPECT_LT((w2.grad() - w1.grad()).abs().max().item<double>(), 1e-12) << name;
            EXPECT_GT(h2.grad().abs().sum().item<double>(), 1e-3) << name;
        }
    }
    HeadLossTargets ce{LossType::CE, targets.narrow(1, 0, 3)};
    EXPECT_THROW(head_loss(h0, w0, ce), std::invalid_argument);  // 14 positions, 6 targets
    HeadLossTargets kd{LossType::SoftCE, {}, teacher.narrow(-1, 0, 9)};
    EXPECT_THROW(head_loss(h0, w0, kd), std::invalid_argument);  // teacher vocabulary 9 vs head 11
}

TEST(LrSchedule, WarmupThenCosineToFinal) {
    LrSchedule s{1e-3, 1e-4, 10, 110};
    EXPECT_NEAR(s.at(0), 1e-4, 1e-15);  // 1/10 of the peak
    EXPECT_NEAR(s.at(4), 5e-4, 1e-15);
    EXPECT_NEAR(s.at(9), 1e-3, 1e-15);    // end of warm-up: the peak
    EXPECT_NEAR(s.at(10), 1e-3, 1e-15);   // cosine starts at the peak
    EXPECT_NEAR(s.at(109), 1e-4, 1e-15);  // last step: the final rate
    // Halfway through the decay (t = 0.5): the mean of peak and final.
    LrSchedule h{1e-3, 1e-4, 0, 101};
    EXPECT_NEAR(h.at(50), 5.5e-4, 1e-15);
    for (int i = 11; i < 110; ++i) EXPECT_LE(s.at(i), s.at(i - 1));
}
