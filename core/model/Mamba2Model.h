#pragma once
// The Mamba-2 language model (mamba_ssm's MambaLMHeadModel without MLP) with
// optional FBI binarization of in_proj / out_proj (Bi-Mamba).
//
// Parameter names follow mamba_ssm checkpoints:
//   backbone.embedding.weight
//   backbone.layers.N.norm.weight
//   backbone.layers.N.mixer.{in_proj,out_proj}.{weight,wscale,wbias}
//   backbone.layers.N.mixer.{conv1d.weight,conv1d.bias,dt_bias,A_log,D,norm.weight}
//   backbone.norm_f.weight
//   lm_head.weight (tied to the embedding: not stored separately)
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/base/Mamba2Config.h"
#include "core/model/BinaryLinear.h"

namespace bimamba::model {

// x·rsqrt(mean(x²)+eps)·weight over the last dim (computed in float32).
struct RMSNormImpl : torch::nn::Module {
    RMSNormImpl(int64_t dim, double eps);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight;
    double eps;
};
TORCH_MODULE(RMSNorm);

// Gated RMSNorm with norm_before_gate=False: rmsnorm(y·silu(z))·weight,
// normalised per group of `group_size` channels.
struct GatedRMSNormImpl : torch::nn::Module {
    GatedRMSNormImpl(int64_t dim, int64_t group_size, double eps);
    torch::Tensor forward(const torch::Tensor& y, const torch::Tensor& z);
    torch::Tensor weight;
    int64_t group_size;
    double eps;
};
TORCH_MODULE(GatedRMSNorm);

// Recurrent state of one layer for O(1)-per-token decoding.
struct LayerState {
    torch::Tensor conv_state;  // (b, conv_dim, d_conv): the last d_conv inputs of the conv
    torch::Tensor ssm_state;   // (b, nheads, headdim, d_state)
};
struct InferenceState {
    std::vector<LayerState> layers;
};

struct Mamba2MixerImpl : torch::nn::Module {
    Mamba2MixerImpl(const base::Mamba2Config& cfg, int layer_idx);
    // u (b, l, d_model) -> (b, l, d_model). With `state`, also leaves the
    // conv and SSM states after the last position in it (prefill); with
    // `from_state` as well, the sequence continues from that state instead of
    // starting from zeros (l tokens in one pass: what l calls of step() give).
    torch::Tensor forward(const torch::Tensor& u, LayerState* state = nullptr, bool from_state = false);
    // One token: u (b, d_model) -> (b, d_model), updating `state`.
    torch::Tensor step(const torch::Tensor& u, LayerState& state);
    LayerState new_state(int64_t batch, torch::TensorOptions opts) const;

    base::Mamba2Config cfg;
    int layer_idx;
    BinaryLinear in_proj{nullptr}, out_proj{nullptr};
    torch::nn::Conv1d conv1d{nullptr};
    torch::Tensor dt_bias, A_log, D;
    GatedRMSNorm norm{nullptr};
    bool deterministic = false;  // run-time, not part of the model: see Mamba2LMImpl::set_deterministic
};
TORCH_MODULE(Mamba2Mixer);

struct Mamba2BlockImpl : torch::nn::Module {
    Mamba2BlockImpl(const base::Mamba2Config& cfg, int layer_idx);
    // residual stream in float32: returns residual + mixer(norm(residual))
    torch::Tensor forward(const torch::Tensor& residual, LayerState* state = nullptr, bool from_state = false);
    torch::Tensor step(const torch::Tensor& residual, LayerState& state);
    RMSNorm norm{nullptr};
    Mamba2Mixer mixer{nullptr};
};
TORCH_MODULE(Mamba2Block);

struct Mamba2BackboneImpl : torch::nn::Module {
    explicit Mamba2BackboneImpl(const base::Mamba2Config& cfg);
    torch::nn::Embedding embedding{nullptr};
    torch::nn::ModuleList layers{nullptr};
    RMSNorm norm_f{nullptr};
};
TORCH_MODULE(Mamba2Backbone);

struct Mamba2LMImpl : torch::nn::Module {
    // Builds and initialises as mamba_ssm does (seeded by the caller through torch::manual_seed).
    explicit Mamba2LMImpl(const base::Mamba2Config& cfg);

    // input_ids (b, l) int64 -> logits (b, l, vocab_size) float32.
    torch::Tensor forward(const torch::Tensor& input_ids);
    // Final hidden states after norm_f, (b, l, d_model) float32.
    torch::Tensor hidden_states(const torch::Tensor& input_ids, InferenceState* state = nullptr);
    torch::Tensor logits_from_hidden(const torch::Tensor& h);
    // The tied LM head (vocab_size, d_model): the embedding without its padding rows.
    torch::Tensor head_weight() const;

    InferenceState new_state(int64_t batch) const;
    // Runs the prompt, fills `state`, returns logits (b, l, vocab).
    torch::Tensor prefill(const torch::Tensor& input_ids, InferenceState& state);
    // Continues every sequence from `state` by l tokens in one chunked pass
    // (the same numbers as l calls of step(), up to float rounding), leaves
    // the state after the last token in it, returns the final hidden states
    // (b, l, d_model) float32.
    torch::Tensor continue_hidden_states(const torch::Tensor& input_ids, InferenceState& state);
    // The blocks and norm_f from the embedded input (float32 residual stream).
    torch::Tensor run_layers(torch::Tensor residual, InferenceState* state, bool from_state);
    // One token per sequence: ids (b) -> logits (b, vocab).
    torch::Tensor step(const torch::Tensor& ids, InferenceState& state);

    // Tensors under mamba_ssm names (tied head not included).
    std::map<std::string, torch::Tensor> named_tensors() const;
    // Loads mamba_ssm or HF transformers names; copies into the parameters.
    // Throws naming missing/unexpected tensors or shape mismatches.
    void load_tensors(const std::map<std::string, torch::Tensor>& tensors, bool strict = true);
    // After loading full-precision weights into a binarized model: xnor-init α, β.
    void init_binary_scales();
    // Deterministic training (TrainConfig::deterministic): the fused CUDA
    // kernels take their fixed-order paths, so two backward passes on the same
    // inputs give bit-identical gradients. A run-time setting, not saved.
    void set_deterministic(bool on);

    const base::Mamba2Config& config() const { return cfg; }
    base::Mamba2Config cfg;
    Mamba2Backbone backbone{nullptr};
};
TORCH_MODULE(Mamba2LM);

}  // namespace bimamba::model
