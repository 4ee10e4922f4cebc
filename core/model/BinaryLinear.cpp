#include "core/model/BinaryLinear.h"

#include <cmath>

#ifdef BIMAMBA_HAVE_CUDA_KERNELS
#include "kernels/cuda/CudaOps.h"
#endif

namespace bimamba::model {

namespace {
// sign() forward, identity backward (straight-through estimator, no clipping).
struct SignSTE : torch::autograd::Function<SignSTE> {
    static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& w) { return torch::sign(w); }
    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::tensor_list grads) {
        return {grads[0]};
    }
};
}  // namespace

torch::Tensor sign_ste(const torch::Tensor& w) {
    return SignSTE::apply(w);
}

BinaryLinearImpl::BinaryLinearImpl(int64_t in, int64_t out, bool binarize)
    : in_features(in), out_features(out), binarized(binarize) {
    weight = register_parameter("weight", torch::empty({out, in}));
    torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));  // nn.Linear's default
    if (binarized) {
        wscale = register_parameter("wscale", torch::ones({1, in}));
        wbias = register_parameter("wbias", torch::zeros({1, in}));
        init_xnor();
    }
}

void BinaryLinearImpl::init_xnor() {
    if (!binarized) return;
    torch::NoGradGuard ng;
    auto w = weight.to(torch::kFloat64);
    auto beta = w.mean(0, /*keepdim=*/true);
    auto alpha = (w - beta).abs().mean(0, true);
    wbias.copy_(beta);
    wscale.copy_(alpha);
}

torch::Tensor BinaryLinearImpl::effective_weight() const {
    if (!binarized) return weight;
    return wscale * sign_ste(weight) + wbias;
}

torch::Tensor BinaryLinearImpl::forward(const torch::Tensor& x) {
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
    // Under bf16 autocast, build α·sign(W)+β directly in bf16 in one pass.
    if (binarized && weight.is_cuda() && at::autocast::is_autocast_enabled(at::kCUDA)) {
        auto w = bimamba::cuda::binarize_weight(weight, wscale, wbias, at::autocast::get_autocast_dtype(at::kCUDA));
        return torch::nn::functional::linear(x, w);
    }
#endif
    return torch::nn::functional::linear(x, effective_weight());
}

}  // namespace bimamba::model
