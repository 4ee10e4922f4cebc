#pragma once
// See core/train/gloo_shim/README.md: declarations only, never defined or called here.
#include <chrono>

namespace gloo {
class Context {
public:
    void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
