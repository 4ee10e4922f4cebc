#include "core/model/LlamaModel.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/base/FileUtil.h"
#include "core/model/Checkpoint.h"

namespace bimamba::model {

using base::read_file;

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
template <class T>
void get_opt(const json& j, const char* key, T& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    try {
        out = it->get<T>();
    } catch (const json::exception&) {
        throw std::invalid_argument(std::string("LLaMA config: field '") + key + "' has the wrong type (" +
                                    it->type_name() + ")");
    }
}
template <class T>
void get_req(const json& j, const char* key, T& out) {
    if (!j.contains(key) || j[key].is_null())
        throw std::invalid_argument(std::string("LLaMA config: missing field '") + key + "'");
    get_opt(j, key, out);
}
}  // namespace

LlamaConfig LlamaConfig::from_json(const json& j) {
    if (!j.is_object()) throw std::invalid_argument("LLaMA config must be a JSON object");
    LlamaConfig c;
    get_req(j, "hidden_size", c.hidden_size);
    get_req(j, "intermediate_size", c.intermediate_size);
    get_req(j, "num_hidden_layers", c.num_hidden_layers);
    get_req(j, "num_attention_heads", c.num_attention_heads);
    get_req(j, "vocab_size", c.vocab_size);
    c.num_key_value_heads = c.num_attention_heads;
    get_opt(j, "num_key_value_heads", c.num_key_value_heads);
    if (c.num_attention_heads > 0) c.head_dim = c.hidden_size / c.num_attention_heads;
    get_opt(j, "head_dim", c.head_dim);
    get_opt(j, "rms_norm_eps", c.rms_norm_eps);
    get_opt(j, "tie_word_embeddings", c.tie_word_embeddings);
    get_opt(j, "attention_bias", c.attention_bias);
    get_opt(j, "mlp_bias", c.mlp_bias);
    std::string act = "silu";
    get_opt(j, "hidden_act", act);
    if (act != "silu")
        throw std::invalid_argument("LLaMA config: hidden_act '" + act + "' is not supported (silu only)");
    // transformers < 5 keeps rope_theta / rope_scaling at the top level,
    // transformers 5 in rope_parameters {rope_type, rope_theta}.
    get_opt(j, "rope_theta", c.rope_theta);
    auto check_rope_type = [](const json& r, const char* where) {
        if (r.is_null()) return;
        if (!r.is_object()) throw std::invalid_argument(std::string("LLaMA config: ") + where + " is not an object");
        std::string type = "default";
        if (r.contains("rope_type") && r["rope_type"].is_string())
            type = r["rope_type"].get<std::string>();
        else if (r.contains("type") && r["type"].is_string())
            type = r["type"].get<std::string>();
        if (type != "default")
            throw std::invalid_argument(std::string("LLaMA config: ") + where + " of type '" + type +
                                        "' is not supported (default rotary embeddings only)");
    };
    if (j.contains("rope_scaling")) check_rope_type(j["rope_scaling"], "rope_scaling");
    if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
        check_rope_type(j["rope_parameters"], "rope_parameters");
        get_opt(j["rope_parameters"], "rope_theta", c.rope_theta);
    }
    c.validate();
    return c;
}

json LlamaConfig::to_json() const {
    return {{"model_type", "llama"},
            {"architectures", {"LlamaForCausalLM"}},
            {"hidden_size", hidden_size},
            {"intermediate_size", intermediate_size},
            {"num_hidden_layers", num_hidden_layers},
            {"num_attention_heads", num_attention_heads},
            {"num_key_value_heads", num_key_value_heads},
            {"head_dim", head_dim},
            {"vocab_size", vocab_size},
            {"rms_norm_eps", rms_norm_eps},
            {"rope_theta", rope_theta},
            {"tie_word_embeddings", tie_word_embeddings},
            {"attention_bias", attention_bias},
            {"mlp_bias", mlp_bias},
            {"hidden_act", "silu"}};
}

void LlamaConfig::validate() const {
    auto bad = [](const std::string& w) { throw std::invalid_argument("invalid LLaMA config: " + w); };
    if (hidden_size <= 0) bad("hidden_size must be > 0");
    if (intermediate_size <= 0) bad("intermediate_size must be > 0");
    if (num_hidden_layers <= 0) bad("num_hidden_layers must be > 0");
    if (num_attention_heads <= 0) bad("num_attention_heads must be > 0");
    if (num_key_value_heads <= 0 || num_attention_heads % num_key_value_heads != 0)
        bad("num_attention_heads must be a multiple of num_key_value_heads");
    if (head_dim <= 0 || head_dim % 2 != 0) bad("head_dim must be a positive even number");
    if (vocab_size <= 0) bad("vocab_size must be > 0");
    if (!(rms_norm_eps > 0)) bad("rms_norm_eps must be > 0");
    if (!(rope_theta > 0)) bad("rope_theta must be > 0");
}

LlamaLM::LlamaLM(const LlamaConfig& cfg, std::map<std::string, torch::Tensor> weights, torch::Device device,
                 std::optional<torch::ScalarType> dtype)
    : cfg_(cfg), device_(device) {
    cfg_.validate();
    const int64_t H = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size;
    const int64_t q = int64_t(cfg.num_attention_heads) * cfg.head_dim,
                  kv = int64_t(cfg.num_key_value_heads) * cfg.head_dim;
    std::map<std::string, std::vector<int64_t>> expect = {{"model.embed_tokens.weight", {V, H}},
                                                          {"model.norm.weight", {H}}};
    if (!cfg.tie_word_embeddings) expect["lm_head.weight"] = {V, H};
    for (int l = 0; l < cfg.num_hidden_layers; ++l) {
        std::string p = "model.layers." + std::to_string(l) + ".";
        expect[p + "input_layernorm.weight"] = {H};
        expect[p + "post_attention_layernorm.weight"] = {H};
        expect[p + "self_attn.q_proj.weight"] = {q, H};
        expect[p + "self_attn.k_proj.weight"] = {kv, H};
        expect[p + "self_attn.v_proj.weight"] = {kv, H};
        expect[p + "self_attn.o_proj.weight"] = {H, q};
        if (cfg.attention_bias) {
            expect[p + "self_attn.q_proj.bias"] = {q};
            expect[p + "self_attn.k_proj.bias"] = {kv};
            expect[p + "self_attn.v_proj.bias"] = {kv};
            expect[p + "self_attn.o_proj.bias"] = {H};
        }
        expect[p + "mlp.gate_proj.weight"] = {I, H};
        expect[p + "mlp.up_proj.weight"] = {I, H};
        expect[p + "mlp.down_proj.weight"] = {H, I};
        if (cfg.mlp_bias) {
            expect[p + "mlp.gate_proj.bias"] = {I};
            expect[p + "mlp.up_proj.bias"] = {I};
            expect[p + "mlp.down_proj.bias"] = {H};
        }
    }
    // A tied checkpoint may still carry lm_head.weight (a copy): ignore it.
    if (cfg.tie_word_embeddings) weights.erase("lm_head.weight");
    // Rotary inverse frequencies are buffers some exporters store; not weights.
    for (auto it = weights.begin(); it != weights.end();)
        it = it->first.find("rotary_emb.inv_freq") != std::string::npos ? weights.erase(it) : std::next(it);
    std::vector<std::string> unexpected;
    for (auto& [k, v] : weights)
        if (!expect.count(k)) unexpected.push_back(k);
    if (!unexpected.empty())
        throw std::runtime_error("LLaMA checkpoint: " + std::to_string(unexpected.size()) +
                                 " unexpected tensor(s) (first: '" + unexpected.front() + "')");
    std::optional<torch::ScalarType> wdtype = dtype;
    for (auto& [k, shape] : expect) {
        auto it = weights.find(k);
        if (it == weights.end()) throw std::runtime_error("LLaMA checkpoint: missing tensor '" + k + "'");
        if (it->second.sizes().vec() != shape) {
            std::ostringstream ss;
            ss << "LLaMA checkpoint: tensor '" << k << "' has shape " << it->second.sizes() << " but the config needs "
               << c10::IntArrayRef(shape);
            throw std::runtime_error(ss.str());
        }
        auto t = it->second;
        if (!t.is_floating_point())
            throw std::runtime_error("LLaMA checkpoint: tensor '" + k + "' is not floating point");
        if (!wdtype) wdtype = t.scalar_type();  // keep the stored dtype (of the embedding: first in order)
        w_[k] = t.to(device, *wdtype).contiguous();
    }
}

LlamaLM LlamaLM::load(const std::string& dir, torch::Device device, std::optional<torch::ScalarType> dtype) {
    fs::path p(dir);
    fs::path folder = fs::is_directory(p) ? p : p.parent_path();
    auto cfg_path = folder / "config.json";
    if (!fs::exists(cfg_path)) throw std::runtime_error("no config.json in '" + folder.string() + "'");
    json j;
    try {
        j = json::parse(read_file(cfg_path.string()));
    } catch (const json::exception& e) {
        throw std::runtime_error("'" + cfg_path.string() + "' is not valid JSON: " + e.what());
    }
    LlamaConfig cfg;
    try {
        cfg = LlamaConfig::from_json(j);
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error("'" + cfg_path.string() + "': " + e.what());
    }
    return LlamaLM(cfg, load_tensors_any(dir), device, dtype);
}

torch::ScalarType LlamaLM::dtype() const {
    return w("model.norm.weight").scalar_type();
}

const torch::Tensor& LlamaLM::w(const std::string& name) const {
    auto it = w_.find(name);
    if (it == w_.end()) throw std::logic_error("LlamaLM: no tensor " + name);
    return it->second;
}

torch::Tensor LlamaLM::linear(const torch::Tensor& x, const std::string& prefix, bool bias) const {
    return torch::nn::functional::linear(x, w(prefix + ".weight"), bias ? w(prefix + ".bias") : torch::Tensor());
}

torch::Tensor LlamaLM::rms_norm(const torch::Tensor& x, const std::string& weight) const {
    // As HF: normalise in float32, back to the activation dtype, then scale.
    auto xf = x.to(torch::kFloat32);
    auto y = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + cfg_.rms_norm_eps);
    return w(weight) * y.to(x.scalar_type());
}

torch::Tensor LlamaLM::forward(const torch::Tensor& input_ids) const {
    torch::NoGradGuard ng;
    if (input_ids.dim() != 2) throw std::invalid_argument("LlamaLM::forward: input_ids must be (batch, length)");
    auto ids = input_ids.to(device_, torch::kInt64);
    if (ids.numel() && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= cfg_.vocab_size))
        throw std::invalid_argument("LlamaLM::forward: token id outside [0, " + std::to_string(cfg_.vocab_size) + ")");
    const int64_t b = ids.size(0), L = ids.size(1), nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads,
                  hd = cfg_.head_dim;
    const auto dt = dtype();
    auto x = torch::nn::functional::embedding(ids, w("model.embed_tokens.weight"));

    // Rotary tables in float32: angle[p, i] = p * theta^(-2i/hd), duplicated over both halves.
    auto fopt = torch::TensorOptions().dtype(torch::kFloat32).device(device_);
    auto inv = torch::pow(cfg_.rope_theta, -torch::arange(0, hd, 2, fopt) / double(hd));
    auto ang = torch::outer(torch::arange(L, fopt), inv);
    auto emb = torch::cat({ang, ang}, -1);
    auto cos = emb.cos().to(dt), sin = emb.sin().to(dt);  // (L, hd)
    auto rope = [&](const torch::Tensor& t) {             // t (b, heads, L, hd)
        auto x1 = t.narrow(-1, 0, hd / 2), x2 = t.narrow(-1, hd / 2, hd / 2);
        return t * cos + torch::cat({-x2, x1}, -1) * sin;
    };
    auto mask = torch::full({L, L}, -std::numeric_limits<float>::infinity(), fopt).triu(1);

    for (int l = 0; l < cfg_.num_hidden_layers; ++l) {
        std::string p = "model.layers." + std::to_string(l) + ".";
        auto h = rms_norm(x, p + "input_layernorm.weight");
        auto q = linear(h, p + "self_attn.q_proj", cfg_.attention_bias).view({b, L, nh, hd}).transpose(1, 2);
        auto k = linear(h, p + "self_attn.k_proj", cfg_.attention_bias).view({b, L, nkv, hd}).transpose(1, 2);
        auto v = linear(h, p + "self_attn.v_proj", cfg_.attention_bias).view({b, L, nkv, hd}).transpose(1, 2);
        q = rope(q);
        k = rope(k);
        if (nkv != nh) {  // grouped-query: head i reads kv head i / (nh / nkv)
            k = k.repeat_interleave(nh / nkv, 1);
            v = v.repeat_interleave(nh / nkv, 1);
        }
        auto scores = torch::matmul(q, k.transpose(-1, -2)).to(torch::kFloat32) / std::sqrt(double(hd)) + mask;
        auto probs = torch::softmax(scores, -1).to(dt);
        auto att = torch::matmul(probs, v).transpose(1, 2).reshape({b, L, nh * hd});
        x = x + linear(att, p + "self_attn.o_proj", cfg_.attention_bias);
        h = rms_norm(x, p + "post_attention_layernorm.weight");
        auto g =
            torch::silu(linear(h, p + "mlp.gate_proj", cfg_.mlp_bias)) * linear(h, p + "mlp.up_proj", cfg_.mlp_bias);
        x = x + linear(g, p + "mlp.down_proj", cfg_.mlp_bias);
    }
    x = rms_norm(x, "model.norm.weight");
    const auto& head = cfg_.tie_word_embeddings ? w("model.embed_tokens.weight") : w("lm_head.weight");
    return torch::nn::functional::linear(x, head).to(torch::kFloat32);
}

}  // namespace bimamba::model
