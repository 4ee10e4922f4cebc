#include "core/train/Losses.h"

#include <stdexcept>

namespace bimamba::train {

namespace {
torch::Tensor flat(const torch::Tensor& logits) {
    return logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32);
}

void check_pair(const torch::Tensor& s, const torch::Tensor& t) {
    if (s.sizes() != t.sizes())
        throw std::invalid_argument("loss: student logits " + c10::str(s.sizes()) + " and teacher logits " +
                                    c10::str(t.sizes()) + " differ in shape (slice the teacher vocabulary?)");
}
}  // namespace

torch::Tensor loss_ce(const torch::Tensor& logits, const torch::Tensor& targets) {
    if (logits.numel() / logits.size(-1) != targets.numel())
        throw std::invalid_argument("loss_ce: " + std::to_string(targets.numel()) + " targets for " +
                                    std::to_string(logits.numel() / logits.size(-1)) + " positions");
    return torch::nn::functional::cross_entropy(flat(logits), targets.reshape({-1}).to(torch::kLong));
}

torch::Tensor loss_soft_ce(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits) {
    check_pair(student_logits, teacher_logits);
    auto p_t = torch::softmax(flat(teacher_logits).detach(), -1);
    auto logp_s = torch::log_softmax(flat(student_logits), -1);
    return -(p_t * logp_s).sum(-1).mean();
}

torch::Tensor loss_kl(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits) {
    check_pair(student_logits, teacher_logits);
    auto logp_t = torch::log_softmax(flat(teacher_logits).detach(), -1);
    auto logp_s = torch::log_softmax(flat(student_logits), -1);
    auto p_t = logp_t.exp();
    // Terms with p_T = 0 contribute 0 (0·log 0 = 0), also for -inf teacher logits.
    auto terms = torch::where(p_t > 0, p_t * (logp_t - logp_s), torch::zeros_like(p_t));
    return terms.sum(-1).mean();
}

torch::Tensor loss_mix(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                       const torch::Tensor& targets, double ce_weight) {
    if (!(ce_weight >= 0.0 && ce_weight <= 1.0))
        throw std::invalid_argument("loss_mix: ce_weight must be in [0, 1], got " + std::to_string(ce_weight));
    return ce_weight * loss_ce(student_logits, targets) +
           (1.0 - ce_weight) * loss_soft_ce(student_logits, teacher_logits);
}

torch::Tensor slice_teacher_vocab(const torch::Tensor& teacher_logits, int64_t vocab) {
    const int64_t tv = teacher_logits.size(-1);
    if (tv < vocab)
        throw std::invalid_argument("teacher vocabulary (" + std::to_string(tv) + ") is smaller than the student's (" +
                                    std::to_string(vocab) + ")");
    return tv == vocab ? teacher_logits : teacher_logits.narrow(-1, 0, vocab);
}

}  // namespace bimamba::train
