#pragma once
// Model configuration with the JSON keys of mamba_ssm's MambaConfig, plus the
// Bi-Mamba `binarize` field. Hugging Face transformers' Mamba2Config keys are
// accepted on load as well.
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace bimamba::base {

enum class Binarize { None, InProj, InOutProj };
std::string to_string(Binarize b);                    // "none" | "in_proj" | "in_proj+out_proj"
Binarize binarize_from_string(const std::string& s);  // throws on unknown

struct SsmConfig {
    int d_state = 128;
    int d_conv = 4;
    int expand = 2;
    int headdim = 64;
    int ngroups = 1;
    int chunk_size = 256;
    double A_init_min = 1.0, A_init_max = 16.0;
    double dt_min = 0.001, dt_max = 0.1, dt_init_floor = 1e-4;
    bool bias = false;
    bool conv_bias = true;
    bool rmsnorm = true;
    bool norm_before_gate = false;
};

struct Mamba2Config {
    int d_model = 768;
    int n_layer = 24;
    int d_intermediate = 0;
    int vocab_size = 32000;
    SsmConfig ssm;
    bool rms_norm = true;
    bool residual_in_fp32 = true;
    bool fused_add_norm = true;
    int pad_vocab_size_multiple = 8;
    bool tie_embeddings = true;
    double norm_epsilon = 1e-5;
    Binarize binarize = Binarize::None;

    // Derived sizes.
    int d_inner() const { return ssm.expand * d_model; }
    int nheads() const { return d_inner() / ssm.headdim; }
    int conv_dim() const { return d_inner() + 2 * ssm.ngroups * ssm.d_state; }
    int in_proj_out() const { return 2 * d_inner() + 2 * ssm.ngroups * ssm.d_state + nheads(); }
    int padded_vocab() const;
    bool binarize_in_proj() const { return binarize != Binarize::None; }
    bool binarize_out_proj() const { return binarize == Binarize::InOutProj; }
    // Parameter count of the LM (tied head counted once).
    long long num_parameters() const;

    // Throws std::invalid_argument naming the offending field.
    void validate() const;

    static Mamba2Config preset(const std::string& name);  // tiny, 130m, 370m, 780m, 1.3b, 2.7b
    static std::vector<std::string> preset_names();

    nlohmann::json to_json() const;
    // Accepts mamba_ssm keys (and HF transformers Mamba2 keys). Unknown keys
    // are rejected by name when `strict` is set.
    static Mamba2Config from_json(const nlohmann::json& j, bool strict = false);
    static Mamba2Config load(const std::string& path);
    void save(const std::string& path) const;
};

}  // namespace bimamba::base
