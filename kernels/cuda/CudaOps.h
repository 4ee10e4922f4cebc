#pragma once
// Fused CUDA kernels for Mamba-2 / Bi-Mamba training, exposed as autograd-
// enabled LibTorch functions. Each one has the LibTorch-ops version in
// core/model as its reference (tests/test_cuda_kernels.cpp compares them).
// Kernels live in the .cu files (raw pointers, no torch headers: nvcc stays
// fast); CudaOps.cpp holds the autograd Functions and the launchers.
//
// All functions accept fp32, bf16 or fp16 activations and compute in fp32.
// See docs/cuda-kernels.md for the algorithms and the measured speed.
//
// Determinism: binarize_weight, causal_conv1d_silu, rmsnorm and gated_rmsnorm
// are deterministic by construction (per-block partials written to a buffer
// and summed by LibTorch in a fixed order; no atomics). The SSD scan's
// backward has a fast path with float atomics and a deterministic one,
// chosen per call through SsdOptions.
#include <ATen/autocast_mode.h>  // users pick the kernels' dtype from autocast
#include <torch/torch.h>

#include <functional>
#include <utility>

namespace bimamba::cuda {

struct SsdOptions {
    // Backward without float atomics: the column sums of ssd_m_bwd go through
    // per-tile partials added in a fixed order, so two calls on the same inputs
    // give bit-identical gradients on the same GPU. Costs one small extra
    // buffer and sum. Without it the backward alerts under LibTorch's
    // deterministic mode (at::globalContext().deterministicAlgorithms()).
    // The forward is deterministic either way.
    bool deterministic = false;
};

// Same semantics and shapes as bimamba::model::ssd_chunked (core/model/Ssd.h):
//   x (b,l,h,p), dt (b,l,h) softplus'ed, A (h) negative, B/C (b,l,g,n),
//   initial_state (b,h,p,n) or undefined. Returns (y (b,l,h,p) in x's dtype,
//   final_state (b,h,p,n) float32). Differentiable in every input.
// D (h) or undefined: Mamba-2's skip, y += D[h] · x, folded into the pass that
// writes y (fp32 math, one rounding) and, backward, into the one that writes ∂x.
std::pair<torch::Tensor, torch::Tensor> ssd_chunked_fused(const torch::Tensor& x, const torch::Tensor& dt,
                                                          const torch::Tensor& A, const torch::Tensor& B,
                                                          const torch::Tensor& C, int64_t chunk_size,
                                                          const torch::Tensor& initial_state,
                                                          const SsdOptions& options = {}, const torch::Tensor& D = {});

// Causal depthwise conv1d + bias + SiLU: x (b, l, c) (the channel dim must be
// contiguous; rows may be strided, e.g. a narrow() of in_proj's output),
// weight (c, 1, k) as in nn.Conv1d(groups=c), bias (c) -> (b, l, c) in x's dtype.
torch::Tensor causal_conv1d_silu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// RMSNorm over the last dim: x * rsqrt(mean(x^2) + eps) * weight, computed
// in fp32 and written in `out_dtype` (the blocks' pre-norm: fp32 residual in,
// the matmul's bf16 out). Gradient to x in x's dtype.
torch::Tensor rmsnorm(const torch::Tensor& x, const torch::Tensor& weight, double eps, c10::ScalarType out_dtype);

// The residual add fused with the next pre-norm (the following block's, or
// norm_f): r = residual + delta (residual float32, delta the mixer's output in
// its dtype), normed = rmsnorm(r) in `out_dtype`. Returns {r, normed}, both
// differentiable (r's gradient and the norm's are summed in the same pass).
std::pair<torch::Tensor, torch::Tensor> add_rmsnorm(const torch::Tensor& residual, const torch::Tensor& delta,
                                                    const torch::Tensor& weight, double eps, c10::ScalarType out_dtype);

// Gated RMSNorm, norm_before_gate=False: rmsnorm(y*silu(z)) * weight over
// groups of group_size channels. y, z (..., d); weight (d). Output in y's dtype.
torch::Tensor gated_rmsnorm(const torch::Tensor& y, const torch::Tensor& z, const torch::Tensor& weight,
                            int64_t group_size, double eps);

// FBI binarized weight alpha*sign(W)+beta, W (out,in), alpha/beta (1,in),
// produced in `out_dtype` in one pass. Backward: straight-through, W gets
// alpha*g; alpha gets sum_o g*sign(W), beta sum_o g (exact).
torch::Tensor binarize_weight(const torch::Tensor& W, const torch::Tensor& alpha, const torch::Tensor& beta,
                              c10::ScalarType out_dtype);

// A CUDA device is present.
bool available();

// Testing aid: fill every buffer the kernels are meant to overwrite with NaN
// before launching them, so an element left unwritten shows up as NaN.
void set_poison_outputs(bool on);

// Benchmarking aid (`bimamba bench train --reference-kernels`): route every op
// above through its LibTorch-ops version instead of the kernels. The SSD
// reference lives in core/model (which depends on this library, not the
// other way round), so the caller hands it in; without one, SSD stays fused.
using SsdFn = std::function<std::pair<torch::Tensor, torch::Tensor>(
    const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
    int64_t, const torch::Tensor&)>;
void set_reference_ssd(SsdFn reference);  // empty function: back to the fused scan
void set_reference_elementwise(bool on);  // conv1d+SiLU, gated RMSNorm, binarized weight

// (free, total) bytes of a CUDA device's memory, as cudaMemGetInfo reports.
std::pair<size_t, size_t> device_memory(int device_index);

}  // namespace bimamba::cuda
