// Quantized checkpoints are ordinary full-precision folders (so every loader
// accepts them) whose config.json and safetensors metadata say how they were made.
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/base/FileUtil.h"
#include "core/model/Checkpoint.h"
#include "core/quant/Ptq.h"

namespace bimamba::quant {

using base::write_file_atomic;
using model::Mamba2LM;
using model::save_tensors;

void save_quantized_model(const Mamba2LM& model, const std::string& dir, const nlohmann::json& metadata) {
    std::filesystem::create_directories(dir);
    std::map<std::string, torch::Tensor> tensors;
    for (auto& [name, t] : model->named_tensors()) tensors[name] = t.detach().to(torch::kFloat32);
    save_tensors(dir + "/model.safetensors", tensors, {{"quantization", metadata.dump()}, {"format", "pt"}});
    auto cfg = model->config().to_json();
    cfg["quantization"] = metadata;
    write_file_atomic(dir + "/config.json", cfg.dump(2) + "\n");
}

nlohmann::json read_quantization_metadata(const std::string& model_dir) {
    namespace fs = std::filesystem;
    fs::path p(model_dir);
    if (!fs::is_directory(p)) p = p.parent_path();
    const auto cfg = p / "config.json";
    if (!fs::exists(cfg)) return nullptr;
    std::ifstream f(cfg);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(f);
    } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error(cfg.string() + ": not valid JSON: " + e.what());
    }
    return j.contains("quantization") ? j["quantization"] : nlohmann::json(nullptr);
}

}  // namespace bimamba::quant
