#pragma once
// A LLaMA-family causal LM (teacher for distillation), loaded from a Hugging
// Face folder: config.json + model.safetensors (or sharded). RMSNorm, rotary
// embeddings (rope_theta, default rope type only), grouped-query attention,
// SwiGLU MLP, tied or untied head. Inference only; weights stay in their
// stored dtype (or a requested one), logits come back as float32.
//
// Tensor names (HF): model.embed_tokens.weight, model.norm.weight, lm_head.weight,
//   model.layers.N.{input_layernorm,post_attention_layernorm}.weight,
//   model.layers.N.self_attn.{q,k,v,o}_proj.{weight,bias?},
//   model.layers.N.mlp.{gate,up,down}_proj.{weight,bias?}
#include <torch/torch.h>

#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

namespace bimamba::model {

struct LlamaConfig {
    int hidden_size = 0;
    int intermediate_size = 0;
    int num_hidden_layers = 0;
    int num_attention_heads = 0;
    int num_key_value_heads = 0;  // = num_attention_heads when absent
    int head_dim = 0;             // = hidden_size / num_attention_heads when absent
    int vocab_size = 0;
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    bool tie_word_embeddings = false;
    bool attention_bias = false;
    bool mlp_bias = false;

    // HF config.json keys; throws std::invalid_argument naming the problem
    // (missing key, unsupported hidden_act or rope scaling, bad head split).
    static LlamaConfig from_json(const nlohmann::json& j);
    nlohmann::json to_json() const;  // HF keys, model_type "llama"
    void validate() const;
};

class LlamaLM {
public:
    // Checks every expected tensor is present with the right shape (and no
    // unexpected ones); moves them to `device`, cast to `dtype` if given.
    LlamaLM(const LlamaConfig& cfg, std::map<std::string, torch::Tensor> weights, torch::Device device = torch::kCPU,
            std::optional<torch::ScalarType> dtype = std::nullopt);
    // An HF folder (config.json + safetensors, sharded too).
    static LlamaLM load(const std::string& dir, torch::Device device = torch::kCPU,
                        std::optional<torch::ScalarType> dtype = std::nullopt);

    // input_ids (b, l) int64 -> logits (b, l, vocab_size) float32.
    torch::Tensor forward(const torch::Tensor& input_ids) const;

    const LlamaConfig& config() const { return cfg_; }
    torch::ScalarType dtype() const;
    torch::Device device() const { return device_; }

private:
    const torch::Tensor& w(const std::string& name) const;
    torch::Tensor linear(const torch::Tensor& x, const std::string& prefix, bool bias) const;
    torch::Tensor rms_norm(const torch::Tensor& x, const std::string& weight) const;

    LlamaConfig cfg_;
    std::map<std::string, torch::Tensor> w_;
    torch::Device device_;
};

}  // namespace bimamba::model
