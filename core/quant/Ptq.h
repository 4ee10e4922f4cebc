#pragma once
// Post-training quantization of a full-precision Mamba-2: the same modules
// Bi-Mamba binarizes (every block's mixer.in_proj and mixer.out_proj) are
// replaced by their quantized-then-dequantized weights. Calibration follows
// GPTQ's sequential scheme: layer by layer, each module's input Hessian is
// taken from the calibration tokens run through the already-quantized layers.
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/model/Mamba2Model.h"

namespace bimamba::quant {

enum class PtqMethod { RTN, GPTQ, BiLLM, Sign };
std::string to_string(PtqMethod m);                      // "rtn" | "gptq" | "billm" | "sign"
PtqMethod ptq_method_from_string(const std::string& s);  // throws naming the accepted values

struct PtqOptions {
    PtqMethod method = PtqMethod::GPTQ;
    int bits = 4;              // RTN / GPTQ
    int64_t group_size = 0;    // RTN / GPTQ; 0 = per output channel
    int64_t block_size = 128;  // GPTQ lazy-update block / BiLLM block
    double damp = 0.01;
    bool act_order = false;
    bool in_proj = true;
    bool out_proj = true;
};
bool needs_calibration(PtqMethod m);  // GPTQ and BiLLM

struct PtqModuleStat {
    int layer;
    std::string module;       // "in_proj" | "out_proj"
    double rel_weight_error;  // ‖W−Q‖_F / ‖W‖_F
    double rel_output_error;  // ‖(W−Q)X‖_F / ‖WX‖_F on the calibration inputs (NaN without calibration)
};

// Quantizes `model` in place. `calib_ids` (n, seqlen) int64 is needed by GPTQ
// and BiLLM (and used for the error statistics by all). Throws for a model
// whose layers are already binarized.
std::vector<PtqModuleStat> quantize_model(model::Mamba2LM& model, const PtqOptions& opt, const torch::Tensor& calib_ids,
                                          const std::function<void(const std::string&)>& log = {});

// What `bimamba quantize` stores in config.json ("quantization") and in the
// safetensors metadata (key "quantization", the same JSON as a string).
nlohmann::json ptq_metadata(const PtqOptions& opt, int64_t calib_tokens, const std::string& source_model);

// Saves a quantized model as a normal full-precision checkpoint folder
// (config.json + model.safetensors) carrying the metadata above.
void save_quantized_model(const model::Mamba2LM& model, const std::string& dir, const nlohmann::json& metadata);
// The "quantization" object of a checkpoint folder's config.json, or null.
nlohmann::json read_quantization_metadata(const std::string& model_dir);

}  // namespace bimamba::quant
