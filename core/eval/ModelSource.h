#pragma once
// Where the commands find a model and its tokenizer. A model argument may be a
// checkpoint folder (config.json + model.safetensors), a run directory (its
// checkpoints/latest), or a .safetensors file with config.json beside it.
#include <string>

namespace bimamba::eval {

std::string resolve_checkpoint(const std::string& path);  // throws naming the path
// tokenizer.model in the checkpoint folder, else the run's prepared corpus
// (train_config.json "data"), else the nearest parent folder that has one.
// Returns "" when none is found.
std::string find_tokenizer(const std::string& checkpoint);
// A short label: "teacher/step_00000300" from ".../runs/teacher/checkpoints/step_00000300".
std::string model_label(const std::string& checkpoint);

}  // namespace bimamba::eval
