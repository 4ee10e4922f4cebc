#pragma once
// State-space duality (SSD) scan of Mamba-2 with a scalar A per head.
//   h_t = exp(dt_t·A) h_{t-1} + dt_t · x_t ⊗ B_t      (per head: P×N state)
//   y_t = C_t · h_t   (+ D·x_t: ssd_chunked's D, or added by the caller)
// Shapes: x (b, l, h, p); dt (b, l, h), already softplus'ed; A (h), negative;
// B, C (b, l, g, n) with h a multiple of g; state (b, h, p, n).
#include <torch/torch.h>

#include <utility>

namespace bimamba::model {

// Chunked SSD from LibTorch ops (any l, padded internally to a chunk multiple).
// Returns (y, final_state). On CUDA tensors it dispatches to the fused kernel
// of kernels/cuda when built with it and `allow_fused` is set; `deterministic`
// selects its atomics-free backward (cuda::SsdOptions). D (h), if given, adds
// Mamba-2's skip y += D·x (x·D in x's dtype on the LibTorch path; the fused
// kernel folds it into its output pass in fp32).
std::pair<torch::Tensor, torch::Tensor> ssd_chunked(const torch::Tensor& x, const torch::Tensor& dt,
                                                    const torch::Tensor& A, const torch::Tensor& B,
                                                    const torch::Tensor& C, int64_t chunk_size,
                                                    const torch::Tensor& initial_state = {}, bool allow_fused = true,
                                                    bool deterministic = false, const torch::Tensor& D = {});

// Naive step-by-step recurrence: the reference (and the decoder's building block).
std::pair<torch::Tensor, torch::Tensor> ssd_recurrent(const torch::Tensor& x, const torch::Tensor& dt,
                                                      const torch::Tensor& A, const torch::Tensor& B,
                                                      const torch::Tensor& C, const torch::Tensor& initial_state = {});

// One token: x (b,h,p), dt (b,h), B,C (b,g,n); updates `state` (b,h,p,n) in place, returns y (b,h,p).
torch::Tensor ssd_step(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& B,
                       const torch::Tensor& C, torch::Tensor& state);

}  // namespace bimamba::model
