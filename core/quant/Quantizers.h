#pragma once
// Post-training weight quantizers for one Linear weight W (out × in), the
// baselines Bi-Mamba is compared against. Each returns the *dequantized*
// weight (same shape and dtype as W), which is what a full-precision
// checkpoint stores and what every evaluator multiplies with.
//
//   rtn_quantize     round-to-nearest, asymmetric min-max k-bit, per output row or per group of input columns
//   gptq_quantize    GPTQ (Frantar et al. 2022): column-by-column rounding with Hessian-based error feedback
//   billm_binarize   BiLLM (Huang et al. 2024): salient columns residual-binarized, the rest split in two
//                    magnitude groups (bell-shaped distribution), block-wise OBC error feedback
//   sign_binarize    sign(W) · mean|W| per output row
//
// H is the (in × in) second moment of the layer's inputs, X^T X / N.
#include <torch/torch.h>

#include <cstdint>

namespace bimamba::quant {

// Asymmetric min-max grid of 2^bits levels over [min(w,0), max(w,0)] of each
// row of `w` (rows × cols); returns the dequantized rows.
torch::Tensor minmax_quantize_rows(const torch::Tensor& w, int bits);

// group_size 0 = one grid per output row; otherwise one per row and group of
// `group_size` consecutive input columns.
torch::Tensor rtn_quantize(const torch::Tensor& W, int bits, int64_t group_size = 0);

struct GptqOptions {
    int bits = 4;
    int64_t group_size = 0;    // 0 = per output row
    int64_t block_size = 128;  // lazy batch updates: columns per block
    double damp = 0.01;        // added to the diagonal: damp · mean(diag H)
    bool act_order = false;    // quantize columns in order of decreasing diag H
};
torch::Tensor gptq_quantize(const torch::Tensor& W, const torch::Tensor& H, const GptqOptions& opt);

struct BillmOptions {
    int64_t block_size = 128;  // columns per block (salience, split and scales are per block)
    double damp = 0.01;
};
struct BillmResult {
    torch::Tensor weight;   // dequantized, W's shape and dtype
    torch::Tensor salient;  // bool (in): columns given residual (2-pass) binarization
    torch::Tensor sparse;   // bool (out × in): non-salient entries in the large-magnitude ("sparse") group
};
// Scales (per output row, per block of columns, per group of entries):
//   salient entries:      α1·sign(w) + α2·sign(w − α1·sign(w)),  α1 = mean|w|, α2 = mean|w − α1·sign(w)|
//   concentrated / sparse: α·sign(w), α = mean|w| over the group's entries of that row
// where w are the block's weights after the error feedback from earlier blocks.
BillmResult billm_binarize(const torch::Tensor& W, const torch::Tensor& H, const BillmOptions& opt = {});

// sign(W)·mean_i|W[o,i]|; sign(0) is taken as +1 so every entry is ±scale.
torch::Tensor sign_binarize(const torch::Tensor& W);

// ‖(W − Q) X^T‖_F² / N expressed through H = X^T X / N: trace((W−Q) H (W−Q)^T).
double output_error(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H);

}  // namespace bimamba::quant
