#pragma once
// Deterministic training (TrainConfig::deterministic, `bimamba bench train
// --deterministic`): two runs with the same seed give bit-identical losses and
// weights on the same GPU. The process-wide half lives here; the other half is
// Mamba2LMImpl::set_deterministic (our CUDA kernels' fixed-order paths).
// docs/train-config.md says what it costs.

namespace bimamba::train {

// While alive:
//  - CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment (cuBLAS and LibTorch
//    read it when the first cuBLAS handle is made, so construct this before any
//    CUDA work of the process; an existing :4096:8 or :16:8 is kept, any other
//    value is refused: std::runtime_error). The variable stays set afterwards.
//  - LibTorch's deterministic algorithms on (ops without a deterministic
//    implementation throw rather than warn), cuDNN deterministic, no cuDNN
//    benchmarking.
// The destructor restores LibTorch's previous settings. With on = false it does nothing.
class DeterminismScope {
public:
    explicit DeterminismScope(bool on);
    ~DeterminismScope();
    DeterminismScope(const DeterminismScope&) = delete;
    DeterminismScope& operator=(const DeterminismScope&) = delete;

private:
    bool on_;
    bool algorithms_ = false, warn_only_ = false, cudnn_deterministic_ = false, cudnn_benchmark_ = false;
};

}  // namespace bimamba::train
