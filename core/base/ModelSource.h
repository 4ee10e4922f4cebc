#pragma once
// Where the commands find a model and its tokenizer: the one resolution behind
// every command's --model. A model argument may be
//   * a checkpoint folder (config.json + model.safetensors or a sharded index),
//   * a file inside one (e.g. its model.safetensors),
//   * a run directory: its newest complete checkpoint, named by checkpoints/latest
//     (latest_checkpoint(), core/base/RunDir.h),
//   * a deployment file of the CPU engine (`bimamba export`, .bmd by convention),
//     for the commands that run the engine.
#include <string>

namespace bimamba::base {

// The metadata "format" of a deployment file (docs/deploy-format.md).
inline constexpr const char* kDeployFileFormat = "bimamba-deploy";

// A regular file named .bmd or whose safetensors metadata says format bimamba-deploy.
bool is_deploy_file(const std::string& path);

struct ModelSource {
    enum class Kind { Checkpoint, DeployFile };
    Kind kind = Kind::Checkpoint;
    std::string path;  // the checkpoint folder, or the deployment file
    bool is_deploy_file() const { return kind == Kind::DeployFile; }
};

// Resolves a model argument; `deploy_ok` says whether the command runs
// deployment files. Throws naming the path and what was expected.
ModelSource resolve_model(const std::string& path, bool deploy_ok);
// The checkpoint folder of a model argument (deployment files refused).
std::string resolve_checkpoint(const std::string& path);

// tokenizer.model in the checkpoint folder, else the run's prepared corpus
// (train_config.json "data"), else the nearest parent folder that has one.
// Returns "" when none is found.
std::string find_tokenizer(const std::string& checkpoint);
// A short label: "teacher/step_00000300" from ".../runs/teacher/checkpoints/step_00000300".
std::string model_label(const std::string& checkpoint);

}  // namespace bimamba::base
