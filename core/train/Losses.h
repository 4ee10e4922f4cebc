#pragma once
// Training losses of Bi-Mamba (arXiv 2411.11843): plain next-token CE, the
// autoregressive-distillation soft-target CE of eq. 6 (temperature 1), a KL
// divergence whose gradient reaches the student, and a weighted CE + KD mix.
// Logits are (b, l, V) or (n, V); they are computed on in float32. Teacher
// logits are treated as constants (detached). All losses are means over
// positions.
#include <torch/torch.h>

#include <string>

#include "core/base/LossType.h"

namespace bimamba::train {

// −mean log softmax(logits)[target]. targets (b, l) int64.
torch::Tensor loss_ce(const torch::Tensor& logits, const torch::Tensor& targets);
// −mean Σ_v p_T(v) log p_S(v), p = softmax (eq. 6).
torch::Tensor loss_soft_ce(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits);
// mean Σ_v p_T(v) (log p_T(v) − log p_S(v)) = soft CE − teacher entropy.
torch::Tensor loss_kl(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits);
// ce_weight · CE + (1 − ce_weight) · soft CE.
torch::Tensor loss_mix(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                       const torch::Tensor& targets, double ce_weight);

// A teacher with a larger vocabulary: keeps the first `vocab` logits (the
// shared ids). Throws when the teacher's vocabulary is smaller.
torch::Tensor slice_teacher_vocab(const torch::Tensor& teacher_logits, int64_t vocab);

}  // namespace bimamba::train
