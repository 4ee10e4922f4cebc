#pragma once
// Model checkpoints on disk: a folder with `config.json` (Mamba2Config) and
// `model.safetensors`; Hugging Face folders (config.json + model.safetensors or
// sharded model-0000N-of-0000M.safetensors with model.safetensors.index.json)
// load too. Pickled .bin files are refused with a hint to convert.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/model/Mamba2Model.h"

namespace bimamba::model {

// safetensors <-> LibTorch tensors (CPU, contiguous copies on save).
void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata = {});
std::map<std::string, torch::Tensor> load_tensors(const std::string& path);
// All tensors of a folder (single file or sharded index) or of one file.
std::map<std::string, torch::Tensor> load_tensors_any(const std::string& path_or_dir);
// The safetensors files load_tensors_any reads for a path (one file, the
// shards of an index, or a run directory's newest checkpoint); throws as it does.
std::vector<std::string> tensor_files(const std::string& path_or_dir);

// Writes dir/config.json and dir/model.safetensors atomically.
void save_model(const Mamba2LM& model, const std::string& dir);
// Reads a model folder (or a .safetensors file with config.json beside it).
Mamba2LM load_model(const std::string& path_or_dir, torch::Device device = torch::kCPU);
base::Mamba2Config load_model_config(const std::string& path_or_dir);

}  // namespace bimamba::model
