#pragma once
// FBI-Linear (FBI-LLM / Bi-Mamba): a latent full-precision weight W (out×in)
// is trained; the forward pass uses  Ŵ[o,i] = α_i·sign(W[o,i]) + β_i  with one
// α (`wscale`) and β (`wbias`) per *input column*, shape (1, in). sign(0)=0.
// Backward: straight-through identity, so W receives α ⊙ ∂L/∂Ŵ and α, β their
// exact gradients. With binarize=false it is a plain bias-free Linear.
#include <torch/torch.h>

namespace bimamba::model {

// sign() with an identity (straight-through) gradient.
torch::Tensor sign_ste(const torch::Tensor& w);

struct BinaryLinearImpl : torch::nn::Module {
    BinaryLinearImpl(int64_t in_features, int64_t out_features, bool binarize);

    torch::Tensor forward(const torch::Tensor& x);
    // The weight the forward pass multiplies with: α·sign(W)+β, or W.
    torch::Tensor effective_weight() const;
    // "xnor" init from the current latent weight: β = mean_o W, α = mean_o |W−β|.
    void init_xnor();

    int64_t in_features, out_features;
    bool binarized;
    torch::Tensor weight;  // (out, in)
    torch::Tensor wscale;  // α (1, in), only when binarized
    torch::Tensor wbias;   // β (1, in), only when binarized
};
TORCH_MODULE(BinaryLinear);

}  // namespace bimamba::model
