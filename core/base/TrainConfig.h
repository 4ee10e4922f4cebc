#pragma once
// `bimamba train` configuration, read from JSON or TOML. Every field is
// documented in docs/train-config.md; unknown fields are rejected by name and
// wrong types name the field and the expected type.
//
// Plain C++ (no LibTorch): the CLI trains with it, the workbench checks the
// configs it launches with it, so both agree on what a valid config is.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/base/LossType.h"
#include "core/base/Mamba2Config.h"

namespace bimamba::base {

struct TrainConfig {
    // data and model
    std::string data;                // prepared corpus folder (bimamba prepare)
    nlohmann::json model = "small";  // preset name, or object: {"preset": "...", <Mamba2Config keys>}
    std::string init_from;           // optional model checkpoint folder to start the student from

    // batch
    int64_t steps = 1000;  // optimizer steps
    int64_t seq_len = 256;
    int64_t batch_size = 8;       // sequences per micro-batch
    int64_t grad_accum = 1;       // micro-batches per optimizer step
    int64_t tokens_per_step = 0;  // if > 0, sets grad_accum = tokens_per_step / (batch_size·seq_len)

    // optimizer (AdamW) and schedule
    double lr = 2.5e-4, final_lr = 2.5e-5;
    int64_t warmup_steps = 100;
    double weight_decay = 0.1;
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
    double grad_clip = 1.0;  // max global L2 norm; 0 = off

    // loss
    std::string loss = "ce";           // ce | soft_ce | kl | mix
    double ce_weight = 0.5;            // mix: weight of CE (1 − it on the distillation term)
    std::string teacher;               // full-precision teacher checkpoint folder (distillation losses)
    bool teacher_vocab_slice = false;  // allow a larger teacher vocabulary, sliced to the student's
    std::string teacher_cache;  // instead of `teacher`: top-k teacher logits file (TeacherCache.h); soft_ce / mix

    // bookkeeping
    int64_t log_every = 1;
    int64_t eval_every = 100;  // 0: only at the end
    int64_t eval_batches = 8;
    int64_t checkpoint_every = 100;  // 0: only at the end
    int64_t keep_checkpoints = 3;
    uint64_t seed = 0;
    bool deterministic = false;      // bit-identical reruns on the same GPU, at some speed (core/train/Determinism.h)
    std::string device = "auto";     // auto | cpu | cuda | cuda:N
    std::string precision = "auto";  // auto (bf16 autocast on CUDA, float32 on CPU) | float32 | bf16
    int64_t threads = 0;             // CPU threads for LibTorch; 0 = its default

    // Parses an object; throws std::invalid_argument ("train config: " and
    // the first of problems(j, false)) naming unknown fields, wrong types and
    // out-of-range values.
    static TrainConfig from_json(const nlohmann::json& j);
    // Every problem of `j` as a config, one sentence each naming its field,
    // in the order from_json meets them; empty when `j` is valid. Beyond
    // from_json it resolves `model` on its own (model_config(): unknown model
    // keys, bad values), which training does only once it knows the corpus
    // vocabulary, and with `check_paths` it requires the files that `data`,
    // `init_from`, `teacher` and `teacher_cache` name to exist. The
    // workbench shows these before it launches a run.
    static std::vector<std::string> problems(const nlohmann::json& j, bool check_paths = false);
    static std::vector<std::string> field_names();  // every field from_json knows, sorted
    // .json or .toml (by extension; other extensions: JSON, then TOML is tried).
    static TrainConfig load(const std::string& path);
    static TrainConfig parse_toml(const std::string& text, const std::string& source = "config");
    nlohmann::json to_json() const;
    // The value checks of from_json: every problem, or the first one thrown
    // (std::invalid_argument, "train config: ...").
    std::vector<std::string> problems() const;
    void validate() const;

    LossType loss_type() const { return loss_type_from_string(loss); }
    int64_t effective_grad_accum() const;
    int64_t tokens_per_optimizer_step() const { return effective_grad_accum() * batch_size * seq_len; }
    // Resolves `model` to a Mamba2Config; vocab_size defaults to the corpus's.
    Mamba2Config resolve_model(int dataset_vocab) const;
    // `model` resolved without a corpus: vocab_size is the preset's (or the
    // defaults') unless the object sets it. Throws naming field 'model'.
    Mamba2Config model_config() const;
};

}  // namespace bimamba::base
