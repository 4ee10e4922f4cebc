#pragma once
// LibTorch-ops formulas of the norms, the references of the CUDA kernels in
// kernels/cuda and the CPU/float64 path of core/model. Header-only, so core
// uses them in builds without CUDA.
#include <torch/torch.h>

#include <vector>

namespace bimamba::reference {

// x * rsqrt(mean(x^2) + eps) * weight, computed (and returned) in `ct`.
inline torch::Tensor rmsnorm(const torch::Tensor& x, const torch::Tensor& weight, double eps, c10::ScalarType ct) {
    auto xf = x.to(ct);
    return xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps) * weight;
}

// Gated RMSNorm, norm_before_gate=False: rmsnorm(y * silu(z)) * weight over
// groups of group_size channels, in float32 (float64 for float64 y), returned
// in y's dtype.
inline torch::Tensor gated_rmsnorm(const torch::Tensor& y, const torch::Tensor& z, const torch::Tensor& weight,
                                   int64_t group_size, double eps) {
    const auto ct = y.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    auto x = y.to(ct) * torch::nn::functional::silu(z.to(ct));
    auto shape = x.sizes().vec();
    std::vector<int64_t> grouped(shape.begin(), shape.end() - 1);
    grouped.push_back(shape.back() / group_size);
    grouped.push_back(group_size);
    auto xg = x.view(grouped);
    xg = xg * torch::rsqrt(xg.pow(2).mean(-1, true) + eps);
    return (xg.view(shape) * weight).to(y.scalar_type());
}

}  // namespace bimamba::reference
