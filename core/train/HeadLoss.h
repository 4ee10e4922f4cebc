#pragma once
// The LM head and the training loss in one pass over row chunks: the logits
// (rows × vocabulary) are never held whole. For each chunk of positions the
// head's matmul, the loss and its gradient (softmax − target distribution)
// are computed, and the gradients to the hidden states and to the head weight
// are formed right away, so the backward pass only scales them. Same numbers
// as head + Losses.h (tests/test_losses.cpp compares values and gradients),
// without the (b·l × V) float32 logits, their log-softmax and their
// gradient, each of which is 2 GiB at micro-batch 8 × 2048 × 32000.
#include <torch/torch.h>

#include "core/base/LossType.h"

namespace bimamba::train {

struct HeadLossTargets {
    base::LossType type = base::LossType::CE;
    torch::Tensor targets;         // (b, l) int64: CE and Mix
    torch::Tensor teacher_logits;  // (b, l, V), detached: SoftCE, KL and Mix
    double ce_weight = 0.5;        // Mix: ce_weight · CE + (1 − ce_weight) · soft CE
};

// hidden (b, l, d) (the final norm's output), head_weight (V, d). The matmuls
// run in the autocast dtype when autocast is on for hidden's device (as
// F::linear would), the softmax and the loss in float32 (float64 for float64
// inputs). Differentiable in hidden and head_weight. chunk_rows: positions
// per chunk (memory ∝ chunk_rows × V).
torch::Tensor head_loss(const torch::Tensor& hidden, const torch::Tensor& head_weight, const HeadLossTargets& targets,
                        int64_t chunk_rows = 4096);

}  // namespace bimamba::train
