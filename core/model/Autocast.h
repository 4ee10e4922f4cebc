#pragma once
// Scoped CUDA bf16 autocast that restores the previous state on exit, so
// scopes nest (a teacher that needs autocast inside a training step that
// already has it leaves it on).
#include <ATen/autocast_mode.h>

namespace bimamba::model {

class AutocastScope {
public:
    explicit AutocastScope(bool enable) : on_(enable) {
        if (!on_) return;
        was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
        was_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
        at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
        at::autocast::set_autocast_enabled(at::kCUDA, true);
    }
    ~AutocastScope() {
        if (!on_) return;
        at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
        at::autocast::set_autocast_dtype(at::kCUDA, was_dtype_);
        if (!was_enabled_) at::autocast::clear_cache();
    }
    AutocastScope(const AutocastScope&) = delete;
    AutocastScope& operator=(const AutocastScope&) = delete;

private:
    bool on_;
    bool was_enabled_ = false;
    at::ScalarType was_dtype_ = at::kBFloat16;
};

}  // namespace bimamba::model
