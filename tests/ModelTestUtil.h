#pragma once
// Helpers for the LibTorch-side suites (test_model, test_checkpoint): a model
// whose every parameter matters to its logits.
#include <torch/torch.h>

#include <string>

#include "core/model/Mamba2Model.h"

namespace bimamba::test {

// Parameters away from their init values (and nonzero binary scales), so a
// tensor that is not loaded, or not used, shows up in the logits.
inline void randomize(model::Mamba2LM& m) {
    torch::NoGradGuard ng;
    for (auto& kv : m->named_parameters()) {
        const auto& k = kv.key();
        auto& t = kv.value();
        if (k.find("A_log") != std::string::npos)
            t.uniform_(-1.0, 1.5);
        else if (k.find("dt_bias") != std::string::npos)
            t.uniform_(-3.0, 0.5);
        else if (k.find(".D") != std::string::npos && t.dim() == 1)
            t.uniform_(-1.0, 2.0);
        else if (k.find("norm") != std::string::npos)
            t.uniform_(0.5, 1.5);
        else if (k.find("wscale") != std::string::npos)
            t.uniform_(0.01, 0.1);
        else if (k.find("wbias") != std::string::npos)
            t.uniform_(-0.02, 0.02);
        else if (k.find("conv1d.bias") != std::string::npos)
            t.uniform_(-0.5, 0.5);
    }
}

}  // namespace bimamba::test
