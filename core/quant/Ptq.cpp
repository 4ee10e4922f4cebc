#include "core/quant/Ptq.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/quant/Quantizers.h"

namespace bimamba::quant {

using base::Binarize;
using model::BinaryLinear;
using model::Mamba2BlockImpl;
using model::Mamba2LM;

std::string to_string(PtqMethod m) {
    switch (m) {
        case PtqMethod::RTN:
            return "rtn";
        case PtqMethod::GPTQ:
            return "gptq";
        case PtqMethod::BiLLM:
            return "billm";
        case PtqMethod::Sign:
            return "sign";
    }
    return "?";
}

PtqMethod ptq_method_from_string(const std::string& s) {
    if (s == "rtn") return PtqMethod::RTN;
    if (s == "gptq") return PtqMethod::GPTQ;
    if (s == "billm") return PtqMethod::BiLLM;
    if (s == "sign") return PtqMethod::Sign;
    throw std::invalid_argument("unknown quantization method '" + s + "' (expected rtn, gptq, billm or sign)");
}

bool needs_calibration(PtqMethod m) {
    return m == PtqMethod::GPTQ || m == PtqMethod::BiLLM;
}

namespace {

torch::Tensor quantize_weight(const torch::Tensor& W, const torch::Tensor& H, const PtqOptions& opt) {
    switch (opt.method) {
        case PtqMethod::RTN:
            return rtn_quantize(W, opt.bits, opt.group_size);
        case PtqMethod::GPTQ: {
            GptqOptions g;
            g.bits = opt.bits;
            g.group_size = opt.group_size;
            g.block_size = opt.block_size;
            g.damp = opt.damp;
            g.act_order = opt.act_order;
            return gptq_quantize(W, H, g);
        }
        case PtqMethod::BiLLM:
            return billm_binarize(W, H, {opt.block_size, opt.damp}).weight;
        case PtqMethod::Sign:
            return sign_binarize(W);
    }
    throw std::logic_error("quantize_weight: bad method");
}

// Second moment X^T X / N (float64) of the rows of x (..., in).
torch::Tensor second_moment(const torch::Tensor& x) {
    auto f = x.reshape({-1, x.size(-1)}).to(torch::kFloat64);
    return f.t().mm(f) / double(f.size(0));
}

PtqModuleStat quantize_module(BinaryLinear& lin, const torch::Tensor& H, const PtqOptions& opt, int layer,
                              const std::string& name) {
    auto W = lin->weight.detach().clone();
    auto Q = quantize_weight(W, H, opt);
    lin->weight.detach().copy_(Q);
    PtqModuleStat s{layer, name, 0, std::numeric_limits<double>::quiet_NaN()};
    auto Wd = W.to(torch::kFloat64);
    s.rel_weight_error = (Wd - Q.to(torch::kFloat64)).norm().item<double>() / Wd.norm().item<double>();
    if (H.defined()) {
        const double ref = (Wd.mm(H) * Wd).sum().item<double>();
        s.rel_output_error = std::sqrt(output_error(W, Q, H) / ref);
    }
    return s;
}

}  // namespace

std::vector<PtqModuleStat> quantize_model(Mamba2LM& model, const PtqOptions& opt, const torch::Tensor& calib_ids,
                                          const std::function<void(const std::string&)>& log) {
    const auto& cfg = model->config();
    if (cfg.binarize != Binarize::None)
        throw std::invalid_argument("quantize_model: the model is already binarized (" + to_string(cfg.binarize) +
                                    "); post-training quantization needs a full-precision Mamba-2");
    if (needs_calibration(opt.method) && (!calib_ids.defined() || calib_ids.numel() == 0))
        throw std::invalid_argument("quantize_model: " + to_string(opt.method) + " needs calibration tokens");
    if (calib_ids.defined() && calib_ids.numel() > 0 && calib_ids.dim() != 2)
        throw std::invalid_argument("quantize_model: calibration ids must be (n, seqlen)");
    torch::NoGradGuard ng;
    model->eval();
    const bool have_calib = calib_ids.defined() && calib_ids.numel() > 0;
    torch::Tensor residual;
    if (have_calib) residual = model->backbone->embedding->forward(calib_ids).to(torch::kFloat32);

    std::vector<PtqModuleStat> stats;
    int idx = 0;
    for (auto& m : *model->backbone->layers) {
        auto* blk = m->as<Mamba2BlockImpl>();
        auto& mixer = blk->mixer;
        if (opt.in_proj) {
            torch::Tensor H;
            if (have_calib) H = second_moment(blk->norm->forward(residual));
            stats.push_back(quantize_module(mixer->in_proj, H, opt, idx, "in_proj"));
        }
        if (opt.out_proj) {
            torch::Tensor H;
            if (have_calib) {
                // out_proj's input: run the mixer with an identity out_proj in its place.
                auto saved = mixer->out_proj;
                const int64_t di = cfg.d_inner();
                BinaryLinear ident(di, di, false);
                ident->to(saved->weight.device());
                ident->weight.detach().copy_(torch::eye(di, ident->weight.options()));
                mixer->out_proj = ident;
                try {
                    H = second_moment(mixer->forward(blk->norm->forward(residual)));
                } catch (...) {
                    mixer->out_proj = saved;
                    throw;
                }
                mixer->out_proj = saved;
            }
            stats.push_back(quantize_module(mixer->out_proj, H, opt, idx, "out_proj"));
        }
        if (have_calib) residual = blk->forward(residual);
        if (log) {
            std::string msg = "layer " + std::to_string(idx) + ":";
            for (auto& s : stats)
                if (s.layer == idx)
                    msg += " " + s.module + " rel.err weight " + std::to_string(s.rel_weight_error) + " output " +
                           std::to_string(s.rel_output_error);
            log(msg);
        }
        ++idx;
    }
    return stats;
}

nlohmann::json ptq_metadata(const PtqOptions& opt, int64_t calib_tokens, const std::string& source_model) {
    nlohmann::json j;
    j["method"] = to_string(opt.method);
    if (opt.method == PtqMethod::RTN || opt.method == PtqMethod::GPTQ) {
        j["bits"] = opt.bits;
        j["group_size"] = opt.group_size;
    } else {
        j["bits"] = 1;
    }
    if (opt.method == PtqMethod::GPTQ) {
        j["act_order"] = opt.act_order;
        j["block_size"] = opt.block_size;
        j["damp"] = opt.damp;
    }
    if (opt.method == PtqMethod::BiLLM) {
        j["block_size"] = opt.block_size;
        j["damp"] = opt.damp;
    }
    std::vector<std::string> mods;
    if (opt.in_proj) mods.push_back("in_proj");
    if (opt.out_proj) mods.push_back("out_proj");
    j["modules"] = mods;
    j["calibration_tokens"] = calib_tokens;
    j["source_model"] = source_model;
    j["storage"] = "dequantized float32 weights";
    return j;
}

}  // namespace bimamba::quant
