#include "core/train/HeadLoss.h"

#include <ATen/autocast_mode.h>

#include <stdexcept>
#include <string>

namespace bimamba::train {

using base::LossType;

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Forward computes the loss and both gradients (for a loss gradient of 1);
// backward scales them by the incoming gradient.
struct HeadLossFn : torch::autograd::Function<HeadLossFn> {
    static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                                 const HeadLossTargets* spec, int64_t chunk_rows) {
        const auto dev = hidden.device().type();
        const bool autocast = at::autocast::is_autocast_enabled(dev);
        // Explicit casts below; nothing else re-casts behind our back.
        c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
        const auto ct = weight.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;  // softmax/loss
        const auto mt = autocast ? at::autocast::get_autocast_dtype(dev) : hidden.scalar_type();      // matmuls

        const int64_t d = hidden.size(-1), V = weight.size(0);
        auto h = hidden.reshape({-1, d});
        const int64_t N = h.size(0);
        auto w = weight.to(mt);
        auto grad_h = torch::empty_like(h);
        auto grad_w = torch::zeros(weight.sizes(), weight.options().dtype(ct));
        auto total = torch::zeros({}, h.options().dtype(torch::kFloat64));

        const bool ce = spec->type == LossType::CE || spec->type == LossType::Mix;
        const bool kd = spec->type != LossType::CE;
        torch::Tensor tgt, teacher;
        if (ce) tgt = spec->targets.reshape({-1}).to(torch::kLong);
        if (kd) teacher = spec->teacher_logits.reshape({-1, V});
        const double wce = spec->type == LossType::Mix ? spec->ce_weight : 1.0;

        for (int64_t s = 0; s < N; s += chunk_rows) {
            const int64_t n = std::min(chunk_rows, N - s);
            auto hc = h.narrow(0, s, n).to(mt);
            auto z = torch::mm(hc, w.t()).to(ct);
            auto logp = torch::log_softmax(z, -1);
            auto grad_z = logp.exp();  // softmax of the student, minus the target distribution below
            torch::Tensor loss = torch::zeros({}, z.options());
            if (ce) {
                auto t = tgt.narrow(0, s, n).unsqueeze(1);
                loss = loss - wce * logp.gather(1, t).sum();
                grad_z.scatter_add_(1, t, torch::full({n, 1}, -wce, z.options()));
            }
            if (kd) {
                auto lt = torch::log_softmax(teacher.narrow(0, s, n).to(ct), -1);
                auto pt = lt.exp();
                const double wkd = 1.0 - (spec->type == LossType::Mix ? wce : 0.0);
                if (spec->type == LossType::KL)  // 0·log 0 = 0, also for -inf teacher logits
                    loss = loss + torch::where(pt > 0, pt * (lt - logp), torch::zeros_like(pt)).sum();
                else
                    loss = loss - wkd * (pt * logp).sum();
                grad_z.sub_(pt, wkd);
            }
            total += loss.to(torch::kFloat64);
            grad_z.div_(double(N));
            auto gz = grad_z.to(mt);
            grad_h.narrow(0, s, n).copy_(torch::mm(gz, w));
            grad_w.add_(torch::mm(gz.t(), hc).to(ct));
        }
        ctx->saved_data["grad_h"] = grad_h.view(hidden.sizes());
        ctx->saved_data["grad_w"] = grad_w.to(weight.scalar_type());
        return (total / double(N)).to(ct);
    }

    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        auto g = grads[0];
        auto gh = ctx->saved_data["grad_h"].toTensor(), gw = ctx->saved_data["grad_w"].toTensor();
        return {gh * g.to(gh.scalar_type()), gw * g.to(gw.scalar_type()), torch::Tensor(), torch::Tensor()};
    }
};

}  // namespace

torch::Tensor head_loss(const torch::Tensor& hidden, const torch::Tensor& head_weight, const HeadLossTargets& targets,
                        int64_t chunk_rows) {
    if (hidden.dim() < 2 || head_weight.dim() != 2 || hidden.size(-1) != head_weight.size(1))
        throw std::invalid_argument("head_loss: hidden (…, d) and head weight (V, d) expected, got " +
                                    c10::str(hidden.sizes()) + " and " + c10::str(head_weight.sizes()));
    if (chunk_rows <= 0) throw std::invalid_argument("head_loss: chunk_rows must be positive");
    const int64_t rows = hidden.numel() / hidden.size(-1);
    const bool ce = targets.type == LossType::CE || targets.type == LossType::Mix;
    const bool kd = targets.type != LossType::CE;
    if (ce && (!targets.targets.defined() || targets.targets.numel() != rows))
        throw std::invalid_argument("head_loss: " + std::to_string(rows) + " positions need as many targets");
    if (kd && (!targets.teacher_logits.defined() || targets.teacher_logits.numel() != rows * head_weight.size(0)))
        throw std::invalid_argument("head_loss: teacher logits must be (…, " + std::to_string(head_weight.size(0)) +
                                    ") for " + std::to_string(rows) + " positions (slice the teacher vocabulary?)");
    if (targets.type == LossType::Mix && !(targets.ce_weight >= 0.0 && targets.ce_weight <= 1.0))
        throw std::invalid_argument("head_loss: ce_weight must be in [0, 1]");
    return HeadLossFn::apply(hidden, head_weight, &targets, chunk_rows);
}

}  // namespace bimamba::train
