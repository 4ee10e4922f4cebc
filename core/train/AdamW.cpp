#include "core/train/AdamW.h"

#include <cmath>
#include <stdexcept>
#include <utility>

#include "core/base/StringUtil.h"

namespace bimamba::train {

using base::ends_with;

AdamW::AdamW(torch::nn::Module& model, double b1, double b2, double e, double weight_decay)
    : beta1(b1), beta2(b2), eps(e), wd(weight_decay) {
    for (auto& kv : model.named_parameters(true)) {
        const std::string& n = kv.key();
        slots.push_back(
            {n, kv.value(), torch::zeros_like(kv.value()), torch::zeros_like(kv.value()), decays(n, kv.value())});
    }
}

bool AdamW::decays(const std::string& name, const torch::Tensor& param) {
    return param.dim() >= 2 && !ends_with(name, ".wscale") && !ends_with(name, ".wbias");
}

void AdamW::step(double lr) {
    torch::NoGradGuard ng;
    ++t;
    const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(t));
    for (auto& s : slots) {
        if (!s.param.grad().defined()) continue;
        const auto& g = s.param.grad();
        if (s.decay && wd > 0) s.param.mul_(1.0 - lr * wd);
        s.m.mul_(beta1).add_(g, 1.0 - beta1);
        s.v.mul_(beta2).addcmul_(g, g, 1.0 - beta2);
        auto denom = (s.v.sqrt() / std::sqrt(bc2)).add_(eps);
        s.param.addcdiv_(s.m, denom, -lr / bc1);
    }
}

std::map<std::string, torch::Tensor> AdamW::state() const {
    std::map<std::string, torch::Tensor> out;
    for (auto& s : slots) {
        out["exp_avg." + s.name] = s.m;
        out["exp_avg_sq." + s.name] = s.v;
    }
    return out;
}

void AdamW::load(const std::map<std::string, torch::Tensor>& st, int64_t steps_done) {
    torch::NoGradGuard ng;
    for (auto& s : slots) {
        for (auto [prefix, dst] : {std::pair<const char*, torch::Tensor*>{"exp_avg.", &s.m}, {"exp_avg_sq.", &s.v}}) {
            auto it = st.find(prefix + s.name);
            if (it == st.end())
                throw std::runtime_error("optimizer state lacks '" + std::string(prefix) + s.name + "'");
            if (it->second.sizes() != dst->sizes())
                throw std::runtime_error("optimizer state '" + std::string(prefix) + s.name + "' has the wrong shape");
            dst->copy_(it->second);
        }
    }
    t = steps_done;
}

}  // namespace bimamba::train
