#include "core/model/Mamba2Model.h"

#include <ATen/record_function.h>

#include <cmath>
#include <set>
#include <sstream>
#include <tuple>

#ifdef BIMAMBA_HAVE_CUDA_KERNELS
#include "kernels/cuda/CudaOps.h"
#endif
#include "core/base/StringUtil.h"
#include "core/model/Ssd.h"
#include "kernels/reference/Norms.h"

namespace bimamba::model {

using base::Mamba2Config;
using base::ends_with;

namespace F = torch::nn::functional;
using torch::indexing::Slice;

// ---- norms -------------------------------------------------------------------

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
    weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
    // One fused pass; under autocast the output is already in the matmul's
    // dtype (the reference below returns float32 and the matmul casts it).
    if (x.is_cuda() && x.scalar_type() != torch::kFloat64 && weight.scalar_type() == torch::kFloat32) {
        const auto out = at::autocast::is_autocast_enabled(at::kCUDA) ? at::autocast::get_autocast_dtype(at::kCUDA)
                                                                      : torch::kFloat32;
        return bimamba::cuda::rmsnorm(x, weight, eps, out);
    }
#endif
    return reference::rmsnorm(x, weight, eps,
                              weight.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32);
}

GatedRMSNormImpl::GatedRMSNormImpl(int64_t dim, int64_t group_size_, double eps_) : group_size(group_size_), eps(eps_) {
    weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor GatedRMSNormImpl::forward(const torch::Tensor& y, const torch::Tensor& z) {
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
    if (y.is_cuda() && y.scalar_type() != torch::kFloat64)
        return bimamba::cuda::gated_rmsnorm(y, z, weight, group_size, eps);
#endif
    return reference::gated_rmsnorm(y, z, weight, group_size, eps);
}

// ---- mixer -------------------------------------------------------------------

Mamba2MixerImpl::Mamba2MixerImpl(const Mamba2Config& c, int idx) : cfg(c), layer_idx(idx) {
    const int64_t di = cfg.d_inner(), nh = cfg.nheads(), cd = cfg.conv_dim();
    in_proj = register_module("in_proj", BinaryLinear(cfg.d_model, cfg.in_proj_out(), cfg.binarize_in_proj()));
    conv1d = register_module("conv1d", torch::nn::Conv1d(torch::nn::Conv1dOptions(cd, cd, cfg.ssm.d_conv)
                                                             .groups(cd)
                                                             .bias(cfg.ssm.conv_bias)
                                                             .padding(cfg.ssm.d_conv - 1)));

    // dt_bias = softplus^-1(dt) with dt log-uniform in [dt_min, dt_max], floored.
    auto dt = torch::exp(torch::rand({nh}, torch::kFloat64) * (std::log(cfg.ssm.dt_max) - std::log(cfg.ssm.dt_min)) +
                         std::log(cfg.ssm.dt_min))
                  .clamp_min(cfg.ssm.dt_init_floor);
    auto inv_dt = dt + torch::log(-torch::expm1(-dt));
    dt_bias = register_parameter("dt_bias", inv_dt.to(torch::kFloat32));
    auto A = torch::empty({nh}, torch::kFloat64).uniform_(cfg.ssm.A_init_min, cfg.ssm.A_init_max);
    A_log = register_parameter("A_log", torch::log(A).to(torch::kFloat32));
    D = register_parameter("D", torch::ones({nh}));
    norm = register_module("norm", GatedRMSNorm(di, di / cfg.ssm.ngroups, 1e-5));
    out_proj = register_module("out_proj", BinaryLinear(di, cfg.d_model, cfg.binarize_out_proj()));
}

LayerState Mamba2MixerImpl::new_state(int64_t batch, torch::TensorOptions opts) const {
    LayerState s;
    s.conv_state = torch::zeros({batch, cfg.conv_dim(), cfg.ssm.d_conv}, opts);
    s.ssm_state = torch::zeros({batch, cfg.nheads(), cfg.ssm.headdim, cfg.ssm.d_state}, opts);
    return s;
}

torch::Tensor Mamba2MixerImpl::forward(const torch::Tensor& u, LayerState* state, bool from_state) {
    TORCH_CHECK(!from_state || state, "Mamba2Mixer::forward: from_state needs a state");
    const int64_t b = u.size(0), l = u.size(1);
    const int64_t di = cfg.d_inner(), cd = cfg.conv_dim(), nh = cfg.nheads(), hd = cfg.ssm.headdim;
    const int64_t g = cfg.ssm.ngroups, n = cfg.ssm.d_state, k = cfg.ssm.d_conv;

    // Named scopes show up in `bimamba bench train --profile` traces.
    torch::Tensor zxbcdt;
    {
        RECORD_USER_SCOPE("mixer.in_proj");
        zxbcdt = in_proj->forward(u);  // (b, l, 2·di + 2·g·n + nh), order z, x, B, C, dt
    }
    // One split (its backward is one concatenation), not three narrows (each
    // of whose backward zero-fills a full-size gradient and adds into it).
    auto parts = zxbcdt.split_with_sizes({di, cd, nh}, -1);
    auto z = parts[0], xBC = parts[1], dt = parts[2];

    auto xBC_t = xBC.transpose(1, 2);  // (b, cd, l)
    torch::Tensor initial_ssm;
    if (from_state) {
        // The conv sees the last d_conv-1 inputs before this sequence; the
        // scan starts from the carried SSM state.
        auto history = state->conv_state.narrow(-1, 1, k - 1).to(xBC_t.scalar_type());
        auto ext = torch::cat({history, xBC_t}, -1);  // (b, cd, k-1+l)
        state->conv_state = ext.narrow(-1, ext.size(-1) - k, k).to(state->conv_state.scalar_type()).contiguous();
        RECORD_USER_SCOPE("mixer.conv1d_silu");
        auto w = conv1d->weight.to(ext.scalar_type());
        auto bias = conv1d->bias.defined() ? conv1d->bias.to(ext.scalar_type()) : torch::Tensor();
        xBC = F::silu(F::conv1d(ext, w, F::Conv1dFuncOptions().bias(bias).groups(cd))).transpose(1, 2);
        initial_ssm = state->ssm_state;
    } else if (state) {
        // Keep the last d_conv inputs (left-padded with zeros for short prompts).
        auto tail = l >= k ? xBC_t.narrow(-1, l - k, k) : F::pad(xBC_t, F::PadFuncOptions({k - l, 0}));
        state->conv_state = tail.to(state->conv_state.scalar_type()).contiguous();
    }
    if (!from_state) {
        RECORD_USER_SCOPE("mixer.conv1d_silu");
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
        if (u.is_cuda() && conv1d->bias.defined())
            xBC = bimamba::cuda::causal_conv1d_silu(xBC, conv1d->weight, conv1d->bias);
        else
#endif
            xBC = F::silu(conv1d->forward(xBC_t).narrow(-1, 0, l)).transpose(1, 2);
    }

    auto xbc = xBC.split_with_sizes({di, g * n, g * n}, -1);  // one concat in backward
    auto x = xbc[0].reshape({b, l, nh, hd});
    auto B = xbc[1].reshape({b, l, g, n});
    auto C = xbc[2].reshape({b, l, g, n});
    torch::Tensor y;
    {
        RECORD_USER_SCOPE("mixer.ssd");
        auto dtf =
            F::softplus(dt.to(dt_bias.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32) + dt_bias);
        auto A = -torch::exp(A_log);
        // The D skip (y += D·x) goes in with the scan: the fused kernel adds it
        // in the pass that writes y (and ∂x in backward).
        auto [ys, final_state] =
            ssd_chunked(x, dtf, A, B, C, cfg.ssm.chunk_size, initial_ssm, /*allow_fused=*/true, deterministic, D);
        if (state) state->ssm_state = final_state.to(state->ssm_state.scalar_type());
        y = ys;
    }
    {
        RECORD_USER_SCOPE("mixer.gated_norm");
        y = y.reshape({b, l, di});
        y = norm->forward(y, z);
    }
    RECORD_USER_SCOPE("mixer.out_proj");
    return out_proj->forward(y);
}

torch::Tensor Mamba2MixerImpl::step(const torch::Tensor& u, LayerState& st) {
    const int64_t b = u.size(0);
    const int64_t di = cfg.d_inner(), cd = cfg.conv_dim(), nh = cfg.nheads(), hd = cfg.ssm.headdim;
    const int64_t g = cfg.ssm.ngroups, n = cfg.ssm.d_state;

    auto zxbcdt = in_proj->forward(u);  // (b, in_proj_out)
    auto z = zxbcdt.narrow(-1, 0, di);
    auto xBC = zxbcdt.narrow(-1, di, cd);
    auto dt = zxbcdt.narrow(-1, di + cd, nh);

    // Shift the conv window left by one and append the new input.
    st.conv_state = torch::cat(
        {st.conv_state.narrow(-1, 1, cfg.ssm.d_conv - 1), xBC.to(st.conv_state.scalar_type()).unsqueeze(-1)}, -1);
    auto conv = (st.conv_state * conv1d->weight.squeeze(1).to(st.conv_state.scalar_type())).sum(-1);
    if (conv1d->bias.defined()) conv = conv + conv1d->bias.to(conv.scalar_type());
    xBC = F::silu(conv);

    auto x = xBC.narrow(-1, 0, di).reshape({b, nh, hd});
    auto B = xBC.narrow(-1, di, g * n).reshape({b, g, n});
    auto C = xBC.narrow(-1, di + g * n, g * n).reshape({b, g, n});
    auto dtf =
        F::softplus(dt.to(dt_bias.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32) + dt_bias);
    auto A = -torch::exp(A_log);
    auto y = ssd_step(x, dtf, A, B, C, st.ssm_state).to(x.scalar_type());
    y = y + x * D.view({1, nh, 1}).to(x.scalar_type());
    y = norm->forward(y.reshape({b, di}), z);
    return out_proj->forward(y);
}

// ---- block, backbone, LM -----------------------------------------------------

Mamba2BlockImpl::Mamba2BlockImpl(const Mamba2Config& cfg, int idx) {
    norm = register_module("norm", RMSNorm(cfg.d_model, cfg.norm_epsilon));
    mixer = register_module("mixer", Mamba2Mixer(cfg, idx));
}

torch::Tensor Mamba2BlockImpl::forward(const torch::Tensor& residual, LayerState* state, bool from_state) {
    // Mixed-dtype add (fp32 residual + bf16 mixer output) in one kernel; the
    // result takes the residual's dtype by type promotion.
    torch::Tensor normed;
    {
        RECORD_USER_SCOPE("block.norm");
        normed = norm->forward(residual);
    }
    auto out = mixer->forward(normed, state, from_state);
    RECORD_USER_SCOPE("block.residual_add");
    if (torch::promote_types(out.scalar_type(), residual.scalar_type()) != residual.scalar_type())
        out = out.to(residual.scalar_type());
    return residual + out;
}

torch::Tensor Mamba2BlockImpl::step(const torch::Tensor& residual, LayerState& state) {
    return residual + mixer->step(norm->forward(residual), state).to(residual.scalar_type());
}

Mamba2BackboneImpl::Mamba2BackboneImpl(const Mamba2Config& cfg) {
    embedding = register_module("embedding", torch::nn::Embedding(cfg.padded_vocab(), cfg.d_model));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int i = 0; i < cfg.n_layer; ++i) layers->push_back(Mamba2Block(cfg, i));
    norm_f = register_module("norm_f", RMSNorm(cfg.d_model, cfg.norm_epsilon));
}

Mamba2LMImpl::Mamba2LMImpl(const Mamba2Config& c) : cfg(c) {
    cfg.validate();
    backbone = register_module("backbone", Mamba2Backbone(cfg));
    // mamba_ssm's _init_weights: embedding ~ N(0, 0.02); out_proj rescaled by
    // 1/sqrt(n_layer) after its kaiming init (prenorm residual rescaling).
    torch::NoGradGuard ng;
    torch::nn::init::normal_(backbone->embedding->weight, 0.0, 0.02);
    for (auto& m : *backbone->layers) {
        auto blk = m->as<Mamba2BlockImpl>();
        auto& w = blk->mixer->out_proj->weight;
        torch::nn::init::kaiming_uniform_(w, std::sqrt(5.0));
        w.div_(std::sqrt(double(cfg.n_layer)));
    }
    init_binary_scales();
}

void Mamba2LMImpl::init_binary_scales() {
    for (auto& m : *backbone->layers) {
        auto mixer = m->as<Mamba2BlockImpl>()->mixer;
        mixer->in_proj->init_xnor();
        mixer->out_proj->init_xnor();
    }
}

// The blocks and norm_f over the residual stream. On CUDA (float32 residual,
// the fused kernels built) each residual add goes in one pass with the next
// block's pre-norm (or norm_f): cuda::add_rmsnorm; the same math as
// Mamba2Block::forward's add followed by RMSNorm::forward.
torch::Tensor Mamba2LMImpl::run_layers(torch::Tensor residual, InferenceState* state, bool from_state) {
    auto& layers = *backbone->layers;
    const size_t n = layers.size();
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
    if (n > 0 && residual.is_cuda() && residual.scalar_type() == torch::kFloat32) {
        const auto out_dtype = at::autocast::is_autocast_enabled(at::kCUDA)
                                   ? at::autocast::get_autocast_dtype(at::kCUDA)
                                   : torch::kFloat32;
        torch::Tensor normed;
        {
            RECORD_USER_SCOPE("block.norm");
            normed = layers[0]->as<Mamba2BlockImpl>()->norm->forward(residual);
        }
        for (size_t i = 0; i < n; ++i) {
            auto out = layers[i]->as<Mamba2BlockImpl>()->mixer->forward(normed, state ? &state->layers[i] : nullptr,
                                                                        from_state);
            RMSNormImpl& next = i + 1 < n ? *layers[i + 1]->as<Mamba2BlockImpl>()->norm : *backbone->norm_f;
            RECORD_USER_SCOPE("block.add_norm");
            std::tie(residual, normed) = bimamba::cuda::add_rmsnorm(residual, out, next.weight, next.eps, out_dtype);
        }
        return normed;
    }
#endif
    for (size_t i = 0; i < n; ++i)
        residual = layers[i]->as<Mamba2BlockImpl>()->forward(residual, state ? &state->layers[i] : nullptr, from_state);
    return backbone->norm_f->forward(residual);
}

torch::Tensor Mamba2LMImpl::hidden_states(const torch::Tensor& input_ids, InferenceState* state) {
    TORCH_CHECK(input_ids.dim() == 2, "Mamba2LM: input_ids must be (batch, length)");
    auto residual = backbone->embedding->forward(input_ids);
    residual = residual.to(cfg.residual_in_fp32 && residual.scalar_type() != torch::kFloat64 ? torch::kFloat32
                                                                                             : residual.scalar_type());
    return run_layers(residual, state, false);
}

torch::Tensor Mamba2LMImpl::continue_hidden_states(const torch::Tensor& input_ids, InferenceState& state) {
    TORCH_CHECK(input_ids.dim() == 2, "Mamba2LM: input_ids must be (batch, length)");
    TORCH_CHECK((int)state.layers.size() == cfg.n_layer && state.layers[0].ssm_state.size(0) == input_ids.size(0),
                "Mamba2LM::continue_hidden_states: the state must hold one row per sequence");
    auto residual = backbone->embedding->forward(input_ids);
    residual = residual.to(cfg.residual_in_fp32 && residual.scalar_type() != torch::kFloat64 ? torch::kFloat32
                                                                                             : residual.scalar_type());
    return run_layers(residual, &state, true);
}

torch::Tensor Mamba2LMImpl::head_weight() const {
    return backbone->embedding->weight.narrow(0, 0, cfg.vocab_size);
}

torch::Tensor Mamba2LMImpl::logits_from_hidden(const torch::Tensor& h) {
    auto logits = F::linear(h, head_weight());
    return logits.scalar_type() == torch::kFloat64 ? logits : logits.to(torch::kFloat32);
}

torch::Tensor Mamba2LMImpl::forward(const torch::Tensor& input_ids) {
    return logits_from_hidden(hidden_states(input_ids));
}

InferenceState Mamba2LMImpl::new_state(int64_t batch) const {
    auto p = backbone->embedding->weight;
    auto opts = p.options().dtype(p.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32);
    InferenceState s;
    for (auto& m : *backbone->layers) s.layers.push_back(m->as<Mamba2BlockImpl>()->mixer->new_state(batch, opts));
    return s;
}

torch::Tensor Mamba2LMImpl::prefill(const torch::Tensor& input_ids, InferenceState& state) {
    if ((int)state.layers.size() != cfg.n_layer) state = new_state(input_ids.size(0));
    return logits_from_hidden(hidden_states(input_ids, &state));
}

torch::Tensor Mamba2LMImpl::step(const torch::Tensor& ids, InferenceState& state) {
    TORCH_CHECK(ids.dim() == 1, "Mamba2LM::step: ids must be (batch)");
    if ((int)state.layers.size() != cfg.n_layer) state = new_state(ids.size(0));
    auto residual = backbone->embedding->forward(ids);
    if (residual.scalar_type() != torch::kFloat64) residual = residual.to(torch::kFloat32);
    int i = 0;
    for (auto& m : *backbone->layers) residual = m->as<Mamba2BlockImpl>()->step(residual, state.layers[i++]);
    return logits_from_hidden(backbone->norm_f->forward(residual));
}

std::map<std::string, torch::Tensor> Mamba2LMImpl::named_tensors() const {
    std::map<std::string, torch::Tensor> out;
    for (auto& kv : named_parameters(/*recurse=*/true)) out[kv.key()] = kv.value();
    return out;
}

namespace {
// Hugging Face transformers' Mamba2 names -> mamba_ssm names.
std::string canonical_name(const std::string& name) {
    if (name == "backbone.embeddings.weight") return "backbone.embedding.weight";
    return name;
}
}  // namespace

void Mamba2LMImpl::load_tensors(const std::map<std::string, torch::Tensor>& tensors, bool strict) {
    torch::NoGradGuard ng;
    auto params = named_parameters(true);
    std::set<std::string> seen;
    std::vector<std::string> unexpected;
    torch::Tensor lm_head;
    for (auto& [raw, t] : tensors) {
        std::string name = canonical_name(raw);
        if (name == "lm_head.weight") {
            lm_head = t;
            continue;
        }
        auto* p = params.find(name);
        if (!p) {
            unexpected.push_back(raw);
            continue;
        }
        if (p->sizes() != t.sizes()) {
            std::ostringstream ss;
            ss << "tensor '" << raw << "' has shape " << t.sizes() << " but the model expects " << p->sizes();
            throw std::runtime_error(ss.str());
        }
        p->copy_(t);
        seen.insert(name);
    }
    if (!seen.count("backbone.embedding.weight") && lm_head.defined()) {
        // Tied weights saved only as the head.
        auto* p = params.find("backbone.embedding.weight");
        if (p->sizes() != lm_head.sizes())
            throw std::runtime_error("lm_head.weight shape does not match the embedding");
        p->copy_(lm_head);
        seen.insert("backbone.embedding.weight");
    }
    // Full-precision weights loaded into a binarized model have no α, β:
    // those layers get the xnor init from the loaded latent weights.
    std::vector<std::string> missing;
    std::set<std::string> xnor_layers;  // module prefixes, e.g. backbone.layers.3.mixer.in_proj
    for (auto& kv : params) {
        const auto& k = kv.key();
        if (seen.count(k)) continue;
        if (ends_with(k, ".wscale") || ends_with(k, ".wbias")) {
            xnor_layers.insert(k.substr(0, k.rfind('.')));
            continue;
        }
        missing.push_back(k);
    }
    if (strict && (!missing.empty() || !unexpected.empty())) {
        std::ostringstream ss;
        ss << "checkpoint does not match the model config:";
        if (!missing.empty()) {
            ss << " missing " << missing.size() << " tensor(s) (first: '" << missing.front() << "')";
        }
        if (!unexpected.empty()) {
            ss << (missing.empty() ? "" : ";") << " unexpected " << unexpected.size() << " tensor(s) (first: '"
               << unexpected.front() << "')";
        }
        throw std::runtime_error(ss.str());
    }
    for (auto& kv : named_modules("", false)) {
        if (!xnor_layers.count(kv.key())) continue;
        if (auto* lin = kv.value()->as<BinaryLinearImpl>()) lin->init_xnor();
    }
}

void Mamba2LMImpl::set_deterministic(bool on) {
    for (auto& m : *backbone->layers) m->as<Mamba2BlockImpl>()->mixer->deterministic = on;
}

}  // namespace bimamba::model
