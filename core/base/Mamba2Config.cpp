#include "core/base/Mamba2Config.h"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>
#include <stdexcept>

namespace bimamba::base {

using nlohmann::json;

std::string to_string(Binarize b) {
    switch (b) {
        case Binarize::None:
            return "none";
        case Binarize::InProj:
            return "in_proj";
        case Binarize::InOutProj:
            return "in_proj+out_proj";
    }
    return "none";
}

Binarize binarize_from_string(const std::string& s) {
    if (s == "none" || s.empty()) return Binarize::None;
    if (s == "in_proj") return Binarize::InProj;
    if (s == "in_proj+out_proj" || s == "full" || s == "all") return Binarize::InOutProj;
    throw std::invalid_argument("binarize: unknown value '" + s + "' (expected none, in_proj or in_proj+out_proj)");
}

int Mamba2Config::padded_vocab() const {
    int m = pad_vocab_size_multiple > 0 ? pad_vocab_size_multiple : 1;
    return (vocab_size + m - 1) / m * m;
}

long long Mamba2Config::num_parameters() const {
    long long di = d_inner(), nh = nheads(), cd = conv_dim();
    long long per_layer = (long long)in_proj_out() * d_model            // in_proj
                          + cd * ssm.d_conv + (ssm.conv_bias ? cd : 0)  // conv1d
                          + 3 * nh                                      // dt_bias, A_log, D
                          + di                                          // gated norm
                          + di * d_model                                // out_proj
                          + d_model;                                    // block norm
    if (binarize_in_proj()) per_layer += 2LL * d_model;
    if (binarize_out_proj()) per_layer += 2LL * di;
    long long emb = (long long)padded_vocab() * d_model;
    return emb * (tie_embeddings ? 1 : 2) + per_layer * n_layer + d_model;
}

namespace {
constexpr int64_t kMaxSize = std::numeric_limits<int>::max();
}  // namespace

void Mamba2Config::validate() const {
    auto bad = [](const std::string& what) { throw std::invalid_argument("invalid model config: " + what); };
    if (d_model <= 0) bad("d_model must be > 0");
    if (n_layer <= 0) bad("n_layer must be > 0");
    if (vocab_size <= 0) bad("vocab_size must be > 0");
    if (d_intermediate != 0) bad("d_intermediate must be 0 (Mamba-2 blocks without MLP)");
    if (ssm.d_state <= 0) bad("ssm_cfg.d_state must be > 0");
    if (ssm.d_conv <= 0) bad("ssm_cfg.d_conv must be > 0");
    if (ssm.expand <= 0) bad("ssm_cfg.expand must be > 0");
    if (ssm.headdim <= 0) bad("ssm_cfg.headdim must be > 0");
    if (ssm.chunk_size <= 0) bad("ssm_cfg.chunk_size must be > 0");
    // The derived sizes are ints and the parameter count a long long: sizes
    // that overflow them (a config from outside) are refused before any of
    // them is computed.
    {
        const int64_t di = int64_t(ssm.expand) * d_model;
        const int64_t gs = 2 * int64_t(ssm.ngroups) * ssm.d_state;
        const int64_t m = pad_vocab_size_multiple > 0 ? pad_vocab_size_multiple : 1;
        const int64_t padded = (int64_t(vocab_size) + m - 1) / m * m;
        if (di > kMaxSize || ssm.ngroups <= 0 || gs > kMaxSize || 2 * di + gs + di / ssm.headdim > kMaxSize ||
            padded > kMaxSize)
            bad("sizes too large: expand*d_model, 2*ngroups*d_state, the in_proj width and the padded vocabulary "
                "must stay below 2^31");
        const double per_layer = double(2 * di + gs) * d_model * 2.0 + double(di + gs) * (double(ssm.d_conv) + 1) +
                                 4.0 * double(di) + 2.0 * d_model;
        const double params = per_layer * n_layer + 2.0 * double(padded) * d_model;
        if (params > 1e15) bad("the model would have more than 10^15 parameters");
    }
    if (d_inner() % ssm.headdim != 0) bad("d_inner (expand*d_model) must be a multiple of ssm_cfg.headdim");
    if (ssm.ngroups <= 0 || nheads() % ssm.ngroups != 0) bad("nheads must be a multiple of ssm_cfg.ngroups");
    if (!(ssm.A_init_min > 0 && ssm.A_init_max >= ssm.A_init_min))
        bad("ssm_cfg.A_init_range must satisfy 0 < lo <= hi");
    if (!(ssm.dt_min > 0 && ssm.dt_max >= ssm.dt_min)) bad("ssm_cfg.dt_min/dt_max must satisfy 0 < dt_min <= dt_max");
    if (!ssm.rmsnorm) bad("ssm_cfg.rmsnorm=false is not supported");
    if (ssm.norm_before_gate) bad("ssm_cfg.norm_before_gate=true is not supported");
    if (!rms_norm) bad("rms_norm=false (LayerNorm) is not supported");
    if (!tie_embeddings) bad("tie_embeddings=false is not supported");
}

namespace {
// The model presets: the paper's Mamba-2 sizes (their other fields the
// defaults: d_state 128, headdim 64, vocabulary 32000, chunk 256) and
// two small ones; 0 keeps the default.
struct Preset {
    const char* name;
    int d_model, n_layer, vocab_size, d_state, headdim, chunk_size;
};
// clang-format off
constexpr Preset kPresets[] = {
    {"tiny",  64,   2,  512,  16, 16, 16},  // unit tests: small enough for float64 checks
    {"small", 256,  4,  4096, 32, 32, 64},  // quickstart on 2 CPU cores
    {"130m",  768,  24, 0,    0,  0,  0},
    {"370m",  1024, 48, 0,    0,  0,  0},
    {"780m",  1536, 48, 0,    0,  0,  0},
    {"1.3b",  2048, 48, 0,    0,  0,  0},
    {"2.7b",  2560, 64, 0,    0,  0,  0},
};
// clang-format on
}  // namespace

std::vector<std::string> Mamba2Config::preset_names() {
    std::vector<std::string> names;
    for (const auto& p : kPresets) names.push_back(p.name);
    return names;
}

Mamba2Config Mamba2Config::preset(const std::string& name) {
    for (const auto& p : kPresets) {
        if (name != p.name) continue;
        Mamba2Config c;
        c.d_model = p.d_model;
        c.n_layer = p.n_layer;
        if (p.vocab_size) c.vocab_size = p.vocab_size;
        if (p.d_state) c.ssm.d_state = p.d_state;
        if (p.headdim) c.ssm.headdim = p.headdim;
        if (p.chunk_size) c.ssm.chunk_size = p.chunk_size;
        return c;
    }
    std::string all;
    for (auto& n : preset_names()) all += (all.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown model preset '" + name + "' (known: " + all + ")");
}

json Mamba2Config::to_json() const {
    json ssmj = {{"layer", "Mamba2"},
                 {"d_state", ssm.d_state},
                 {"d_conv", ssm.d_conv},
                 {"expand", ssm.expand},
                 {"headdim", ssm.headdim},
                 {"ngroups", ssm.ngroups},
                 {"chunk_size", ssm.chunk_size},
                 {"A_init_range", {ssm.A_init_min, ssm.A_init_max}},
                 {"dt_min", ssm.dt_min},
                 {"dt_max", ssm.dt_max},
                 {"dt_init_floor", ssm.dt_init_floor},
                 {"bias", ssm.bias},
                 {"conv_bias", ssm.conv_bias},
                 {"rmsnorm", ssm.rmsnorm},
                 {"norm_before_gate", ssm.norm_before_gate}};
    return json{{"d_model", d_model},
                {"d_intermediate", d_intermediate},
                {"n_layer", n_layer},
                {"vocab_size", vocab_size},
                {"ssm_cfg", ssmj},
                {"attn_layer_idx", json::array()},
                {"attn_cfg", json::object()},
                {"rms_norm", rms_norm},
                {"residual_in_fp32", residual_in_fp32},
                {"fused_add_norm", fused_add_norm},
                {"pad_vocab_size_multiple", pad_vocab_size_multiple},
                {"tie_embeddings", tie_embeddings},
                {"norm_epsilon", norm_epsilon},
                {"binarize", to_string(binarize)}};
}

namespace {
// nlohmann converts any number to int with a plain cast: 1e300 is undefined
// behaviour, 2^40 wraps, 2.5 truncates. Integers in int range only (an
// integral float such as 768.0 included, as some writers emit).
int checked_int(const json& v, const char* key) {
    constexpr int64_t lo = std::numeric_limits<int>::min(), hi = std::numeric_limits<int>::max();
    const auto bad = [&] {
        throw std::invalid_argument(std::string("config field '") + key + "' must be an integer in int range, got " +
                                    v.dump());
    };
    if (v.is_number_unsigned()) {
        if (v.get<uint64_t>() > uint64_t(hi)) bad();
        return int(v.get<uint64_t>());
    }
    if (v.is_number_integer()) {
        if (v.get<int64_t>() < lo || v.get<int64_t>() > hi) bad();
        return int(v.get<int64_t>());
    }
    if (v.is_number_float()) {
        const double d = v.get<double>();
        if (!(d >= double(lo) && d <= double(hi)) || std::floor(d) != d) bad();
        return int(d);
    }
    throw std::invalid_argument(std::string("config field '") + key + "' has the wrong type (" + v.type_name() + ")");
}

template <typename T>
void get_to(const json& j, const char* key, T& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if constexpr (std::is_same_v<T, int>) {
        out = checked_int(*it, key);
        return;
    }
    try {
        out = it->get<T>();
    } catch (const json::exception&) {
        throw std::invalid_argument(std::string("config field '") + key + "' has the wrong type (" + it->type_name() +
                                    ")");
    }
}

// Hugging Face transformers' Mamba2Config uses other names.
Mamba2Config from_hf_json(const json& j) {
    Mamba2Config c;
    get_to(j, "hidden_size", c.d_model);
    get_to(j, "num_hidden_layers", c.n_layer);
    get_to(j, "vocab_size", c.vocab_size);
    get_to(j, "state_size", c.ssm.d_state);
    get_to(j, "conv_kernel", c.ssm.d_conv);
    get_to(j, "expand", c.ssm.expand);
    get_to(j, "head_dim", c.ssm.headdim);
    get_to(j, "n_groups", c.ssm.ngroups);
    get_to(j, "chunk_size", c.ssm.chunk_size);
    get_to(j, "use_bias", c.ssm.bias);
    get_to(j, "use_conv_bias", c.ssm.conv_bias);
    get_to(j, "time_step_min", c.ssm.dt_min);
    get_to(j, "time_step_max", c.ssm.dt_max);
    get_to(j, "time_step_floor", c.ssm.dt_init_floor);
    get_to(j, "layer_norm_epsilon", c.norm_epsilon);
    get_to(j, "residual_in_fp32", c.residual_in_fp32);
    get_to(j, "tie_word_embeddings", c.tie_embeddings);
    c.pad_vocab_size_multiple = 1;  // HF stores the padded vocabulary already
    if (j.contains("num_heads") && j["num_heads"].is_number_integer()) {
        const int64_t nh = checked_int(j["num_heads"], "num_heads");
        if (nh * c.ssm.headdim != int64_t(c.ssm.expand) * c.d_model)
            throw std::invalid_argument("HF config: num_heads*head_dim != expand*hidden_size");
    }
    if (j.contains("binarize")) c.binarize = binarize_from_string(j["binarize"].get<std::string>());
    return c;
}
}  // namespace

Mamba2Config Mamba2Config::from_json(const json& j, bool strict) {
    if (!j.is_object()) throw std::invalid_argument("model config must be a JSON object");
    if (j.contains("hidden_size") && !j.contains("d_model")) {
        auto c = from_hf_json(j);
        c.validate();
        return c;
    }
    static const std::set<std::string> known = {"d_model",
                                                "d_intermediate",
                                                "n_layer",
                                                "vocab_size",
                                                "ssm_cfg",
                                                "attn_layer_idx",
                                                "attn_cfg",
                                                "rms_norm",
                                                "residual_in_fp32",
                                                "fused_add_norm",
                                                "pad_vocab_size_multiple",
                                                "tie_embeddings",
                                                "norm_epsilon",
                                                "binarize"};
    static const std::set<std::string> known_ssm = {
        "layer",      "d_state",      "d_conv",  "expand",           "headdim",       "ngroups",
        "chunk_size", "A_init_range", "dt_min",  "dt_max",           "dt_init_floor", "dt_limit",
        "bias",       "conv_bias",    "rmsnorm", "norm_before_gate", "d_ssm",         "D_has_hdim"};
    if (strict)
        for (auto& [k, v] : j.items())
            if (!known.count(k)) throw std::invalid_argument("model config: unknown field '" + k + "'");
    Mamba2Config c;
    get_to(j, "d_model", c.d_model);
    get_to(j, "d_intermediate", c.d_intermediate);
    get_to(j, "n_layer", c.n_layer);
    get_to(j, "vocab_size", c.vocab_size);
    get_to(j, "rms_norm", c.rms_norm);
    get_to(j, "residual_in_fp32", c.residual_in_fp32);
    get_to(j, "fused_add_norm", c.fused_add_norm);
    get_to(j, "pad_vocab_size_multiple", c.pad_vocab_size_multiple);
    get_to(j, "tie_embeddings", c.tie_embeddings);
    get_to(j, "norm_epsilon", c.norm_epsilon);
    if (j.contains("attn_layer_idx") && j["attn_layer_idx"].is_array() && !j["attn_layer_idx"].empty())
        throw std::invalid_argument("model config: attention layers (attn_layer_idx) are not supported");
    if (j.contains("binarize")) {
        if (!j["binarize"].is_string()) throw std::invalid_argument("config field 'binarize' must be a string");
        c.binarize = binarize_from_string(j["binarize"].get<std::string>());
    }
    if (j.contains("ssm_cfg") && !j["ssm_cfg"].is_null()) {
        const json& s = j["ssm_cfg"];
        if (!s.is_object()) throw std::invalid_argument("config field 'ssm_cfg' must be an object");
        if (strict)
            for (auto& [k, v] : s.items())
                if (!known_ssm.count(k)) throw std::invalid_argument("model config: unknown field 'ssm_cfg." + k + "'");
        if (s.contains("layer") && s["layer"] != "Mamba2")
            throw std::invalid_argument("ssm_cfg.layer must be \"Mamba2\" (got " + s["layer"].dump() + ")");
        get_to(s, "d_state", c.ssm.d_state);
        get_to(s, "d_conv", c.ssm.d_conv);
        get_to(s, "expand", c.ssm.expand);
        get_to(s, "headdim", c.ssm.headdim);
        get_to(s, "ngroups", c.ssm.ngroups);
        get_to(s, "chunk_size", c.ssm.chunk_size);
        get_to(s, "dt_min", c.ssm.dt_min);
        get_to(s, "dt_max", c.ssm.dt_max);
        get_to(s, "dt_init_floor", c.ssm.dt_init_floor);
        get_to(s, "bias", c.ssm.bias);
        get_to(s, "conv_bias", c.ssm.conv_bias);
        get_to(s, "rmsnorm", c.ssm.rmsnorm);
        get_to(s, "norm_before_gate", c.ssm.norm_before_gate);
        if (s.contains("A_init_range")) {
            const json& r = s["A_init_range"];
            if (!r.is_array() || r.size() != 2) throw std::invalid_argument("ssm_cfg.A_init_range must be [lo, hi]");
            c.ssm.A_init_min = r[0].get<double>();
            c.ssm.A_init_max = r[1].get<double>();
        }
    }
    c.validate();
    return c;
}

Mamba2Config Mamba2Config::load(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot open model config '" + path + "'");
    json j;
    try {
        j = json::parse(f);
    } catch (const json::parse_error& e) {
        throw std::runtime_error("model config '" + path + "' is not valid JSON: " + e.what());
    }
    return from_json(j);
}

void Mamba2Config::save(const std::string& path) const {
    std::ofstream f(path);
    if (!f) throw std::runtime_error("cannot write model config '" + path + "'");
    f << to_json().dump(2) << "\n";
}

}  // namespace bimamba::base
