#include "core/train/GradReducer.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <map>
#include <stdexcept>

#include "core/train/Distributed.h"

namespace bimamba::train {

namespace {

struct ReadyHook : torch::autograd::PostAccumulateGradHook {
    GradReducer* reducer;
    size_t index;
    ReadyHook(GradReducer* r, size_t i) : reducer(r), index(i) {}
    void operator()(const torch::autograd::Variable&) override { reducer->mark_ready(index); }
};

}  // namespace

GradReducer::GradReducer(Distributed& dist, const std::vector<torch::Tensor>& params, double bucket_mb) : dist_(dist) {
    for (const auto& p : params)
        if (p.requires_grad()) params_.push_back(p);
    bucket_of_.assign(params_.size(), 0);
    ready_.assign(params_.size(), 0);
    const int64_t cap_bytes = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1024 * 1024));
    // Open bucket per (dtype, device), filled from the last parameter backwards.
    std::map<std::pair<int, std::string>, size_t> open;
    for (size_t k = params_.size(); k-- > 0;) {
        const auto& p = params_[k];
        const auto key = std::make_pair(static_cast<int>(p.scalar_type()), p.device().str());
        auto it = open.find(key);
        const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
        if (it != open.end()) {
            Bucket& b = buckets_[it->second];
            const int64_t used = b.offsets.empty() ? 0
                                                   : (b.offsets.back() + params_[b.params.back()].numel()) *
                                                         static_cast<int64_t>(p.element_size());
            if (used + bytes > cap_bytes) it = open.end();
        }
        if (it == open.end()) {
            buckets_.emplace_back();
            it = open.insert_or_assign(key, buckets_.size() - 1).first;
        }
        Bucket& b = buckets_[it->second];
        const int64_t off = b.offsets.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel();
        b.params.push_back(k);
        b.offsets.push_back(off);
        bucket_of_[k] = it->second;
    }
    for (auto& b : buckets_) {
        const auto& last = params_[b.params.back()];
        b.flat = torch::zeros({b.offsets.back() + last.numel()}, last.options().requires_grad(false));
    }
    for (size_t k = 0; k < params_.size(); ++k)
        torch::autograd::impl::set_post_acc_grad_hooks(params_[k], std::make_unique<ReadyHook>(this, k));
}

GradReducer::~GradReducer() {
    for (auto& p : params_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

void GradReducer::prepare(bool sync) {
    std::lock_guard<std::mutex> lock(mu_);
    sync_ = sync;
    next_launch_ = 0;
    std::fill(ready_.begin(), ready_.end(), 0);
    for (auto& b : buckets_) {
        b.pending = b.params.size();
        b.launched = false;
        b.work.reset();
    }
}

void GradReducer::launch(Bucket& b) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < b.params.size(); ++i) {
        const auto& p = params_[b.params[i]];
        auto slot = b.flat.narrow(0, b.offsets[i], p.numel());
        const auto& g = p.grad();
        if (g.defined())
            slot.copy_(g.reshape({-1}));
        else
            slot.zero_();
    }
    b.work = dist_.allreduce_sum_async(b.flat);
    b.launched = true;
}

void GradReducer::launch_ready_in_order() {
    while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) launch(buckets_[next_launch_++]);
}

void GradReducer::mark_ready(size_t k) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!sync_ || ready_[k]) return;
    ready_[k] = 1;
    Bucket& b = buckets_[bucket_of_[k]];
    if (--b.pending == 0) launch_ready_in_order();
}

void GradReducer::finish() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!sync_) throw std::logic_error("GradReducer::finish without prepare(true)");
        // Parameters that took no part in this backward: launch what is left, in order.
        for (auto& b : buckets_) b.pending = 0;
        launch_ready_in_order();
    }
    torch::NoGradGuard ng;
    const double inv = 1.0 / dist_.world_size();
    for (auto& b : buckets_) {
        b.work->wait();
        b.work.reset();
        b.flat.mul_(inv);
        for (size_t i = 0; i < b.params.size(); ++i) {
            auto& p = params_[b.params[i]];
            auto& g = p.mutable_grad();
            auto slot = b.flat.narrow(0, b.offsets[i], p.numel());
            if (g.defined()) g.copy_(slot.view_as(g));
        }
    }
    sync_ = false;
}

}  // namespace bimamba::train
