#include "core/train/Determinism.h"

#include <ATen/Context.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace bimamba::train {

DeterminismScope::DeterminismScope(bool on) : on_(on) {
    if (!on_) return;
    const char* v = std::getenv("CUBLAS_WORKSPACE_CONFIG");
    if (!v) {
        setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 1);
    } else if (std::string(v) != ":4096:8" && std::string(v) != ":16:8") {
        throw std::runtime_error(std::string("deterministic mode needs CUBLAS_WORKSPACE_CONFIG=:4096:8 (or :16:8), "
                                             "but the environment sets it to '") +
                                 v + "': unset it or set one of those");
    }
    auto& ctx = at::globalContext();
    algorithms_ = ctx.deterministicAlgorithms();
    warn_only_ = ctx.deterministicAlgorithmsWarnOnly();
    cudnn_deterministic_ = ctx.deterministicCuDNN();
    cudnn_benchmark_ = ctx.benchmarkCuDNN();
    ctx.setDeterministicAlgorithms(true, /*warn_only=*/false);
    ctx.setDeterministicCuDNN(true);
    ctx.setBenchmarkCuDNN(false);
}

DeterminismScope::~DeterminismScope() {
    if (!on_) return;
    auto& ctx = at::globalContext();
    ctx.setDeterministicAlgorithms(algorithms_, warn_only_);
    ctx.setDeterministicCuDNN(cudnn_deterministic_);
    ctx.setBenchmarkCuDNN(cudnn_benchmark_);
}

}  // namespace bimamba::train
