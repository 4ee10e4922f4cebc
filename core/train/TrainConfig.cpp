#include "core/train/TrainConfig.h"

#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>

#include "core/base/FileUtil.h"
#include "core/base/StringUtil.h"
#include "core/base/TomlJson.h"

namespace bimamba {

using json = nlohmann::json;

namespace {

std::invalid_argument bad(const std::string& msg) { return std::invalid_argument("train config: " + msg); }

std::string type_name(const json& v) {
    if (v.is_string()) return "a string";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number_integer()) return "an integer";
    if (v.is_number()) return "a number";
    if (v.is_object()) return "an object/table";
    if (v.is_array()) return "an array";
    return "null";
}

void need(const json& v, bool ok, const std::string& key, const std::string& expect) {
    if (!ok) throw bad("field '" + key + "' must be " + expect + ", got " + type_name(v) + " (" + v.dump() + ")");
}

}  // namespace

TrainConfig TrainConfig::from_json(const json& j) {
    if (!j.is_object()) throw bad("the top level must be an object/table");
    TrainConfig c;
    using Setter = std::function<void(const json&, const std::string&)>;
    auto str = [](std::string& dst) -> Setter {
        return [&dst](const json& v, const std::string& k) { need(v, v.is_string(), k, "a string"); dst = v.get<std::string>(); };
    };
    auto integer = [](int64_t& dst) -> Setter {
        return [&dst](const json& v, const std::string& k) {
            need(v, v.is_number_integer(), k, "an integer");
            dst = v.get<int64_t>();
        };
    };
    auto number = [](double& dst) -> Setter {
        return [&dst](const json& v, const std::string& k) { need(v, v.is_number(), k, "a number"); dst = v.get<double>(); };
    };
    auto boolean = [](bool& dst) -> Setter {
        return [&dst](const json& v, const std::string& k) { need(v, v.is_boolean(), k, "a boolean"); dst = v.get<bool>(); };
    };
    const std::map<std::string, Setter> fields = {
        {"data", str(c.data)},
        {"model",
         [&c](const json& v, const std::string& k) {
             need(v, v.is_string() || v.is_object(), k, "a preset name or an object/table");
             c.model = v;
         }},
        {"init_from", str(c.init_from)},
        {"steps", integer(c.steps)},
        {"seq_len", integer(c.seq_len)},
        {"batch_size", integer(c.batch_size)},
        {"grad_accum", integer(c.grad_accum)},
        {"tokens_per_step", integer(c.tokens_per_step)},
        {"lr", number(c.lr)},
        {"final_lr", number(c.final_lr)},
        {"warmup_steps", integer(c.warmup_steps)},
        {"weight_decay", number(c.weight_decay)},
        {"beta1", number(c.beta1)},
        {"beta2", number(c.beta2)},
        {"eps", number(c.eps)},
        {"grad_clip", number(c.grad_clip)},
        {"loss", str(c.loss)},
        {"ce_weight", number(c.ce_weight)},
        {"teacher", str(c.teacher)},
        {"teacher_vocab_slice", boolean(c.teacher_vocab_slice)},
        {"teacher_cache", str(c.teacher_cache)},
        {"log_every", integer(c.log_every)},
        {"eval_every", integer(c.eval_every)},
        {"eval_batches", integer(c.eval_batches)},
        {"checkpoint_every", integer(c.checkpoint_every)},
        {"keep_checkpoints", integer(c.keep_checkpoints)},
        {"seed",
         [&c](const json& v, const std::string& k) {
             need(v, v.is_number_integer() && v.get<int64_t>() >= 0, k, "a non-negative integer");
             c.seed = v.get<uint64_t>();
         }},
        {"deterministic", boolean(c.deterministic)},
        {"device", str(c.device)},
        {"precision", str(c.precision)},
        {"threads", integer(c.threads)},
    };
    for (auto& [k, v] : j.items()) {
        auto it = fields.find(k);
        if (it == fields.end()) {
            std::string known;
            for (auto& [name, s] : fields) known += (known.empty() ? "" : ", ") + name;
            throw bad("unknown field '" + k + "' (known fields: " + known + ")");
        }
        it->second(v, k);
    }
    c.validate();
    return c;
}

void TrainConfig::validate() const {
    if (data.empty()) throw bad("field 'data' (the prepared corpus folder) is required");
    auto positive = [](int64_t v, const char* k) {
        if (v <= 0) throw bad(std::string("field '") + k + "' must be positive, got " + std::to_string(v));
    };
    auto non_negative = [](int64_t v, const char* k) {
        if (v < 0) throw bad(std::string("field '") + k + "' must be >= 0, got " + std::to_string(v));
    };
    positive(steps, "steps");
    positive(seq_len, "seq_len");
    positive(batch_size, "batch_size");
    positive(grad_accum, "grad_accum");
    non_negative(tokens_per_step, "tokens_per_step");
    non_negative(warmup_steps, "warmup_steps");
    positive(log_every, "log_every");
    non_negative(eval_every, "eval_every");
    positive(eval_batches, "eval_batches");
    non_negative(checkpoint_every, "checkpoint_every");
    positive(keep_checkpoints, "keep_checkpoints");
    non_negative(threads, "threads");
    if (!(lr > 0)) throw bad("field 'lr' must be positive");
    if (!(final_lr >= 0 && final_lr <= lr)) throw bad("field 'final_lr' must be in [0, lr]");
    if (!(weight_decay >= 0)) throw bad("field 'weight_decay' must be >= 0");
    if (!(beta1 >= 0 && beta1 < 1)) throw bad("field 'beta1' must be in [0, 1)");
    if (!(beta2 >= 0 && beta2 < 1)) throw bad("field 'beta2' must be in [0, 1)");
    if (!(eps > 0)) throw bad("field 'eps' must be positive");
    if (!(grad_clip >= 0)) throw bad("field 'grad_clip' must be >= 0 (0 = off)");
    if (!(ce_weight >= 0 && ce_weight <= 1)) throw bad("field 'ce_weight' must be in [0, 1]");
    LossType lt;
    try {
        lt = loss_type();
    } catch (const std::exception& e) {
        throw bad(std::string("field 'loss': ") + e.what());
    }
    if (!teacher.empty() && !teacher_cache.empty())
        throw bad("set either field 'teacher' or field 'teacher_cache', not both");
    if (loss_needs_teacher(lt) && teacher.empty() && teacher_cache.empty())
        throw bad("loss '" + loss + "' needs a teacher: set field 'teacher' to a full-precision checkpoint folder "
                  "(or 'teacher_cache' to a teacher logits cache)");
    if (!teacher_cache.empty() && lt != LossType::SoftCE && lt != LossType::Mix)
        throw bad("field 'teacher_cache' holds only the teacher's top-k logits: it works with loss soft_ce or mix, not '" +
                  loss + "'");
    if (tokens_per_step > 0 && tokens_per_step % (batch_size * seq_len) != 0)
        throw bad("field 'tokens_per_step' (" + std::to_string(tokens_per_step) +
                  ") must be a multiple of batch_size·seq_len (" + std::to_string(batch_size * seq_len) + ")");
    if (device != "auto" && device != "cpu" && device.rfind("cuda", 0) != 0)
        throw bad("field 'device' must be auto, cpu, cuda or cuda:N, got '" + device + "'");
    if (precision != "auto" && precision != "float32" && precision != "bf16")
        throw bad("field 'precision' must be auto, float32 or bf16, got '" + precision + "'");
    if (model.is_string()) {
        Mamba2Config::preset(model.get<std::string>());  // throws naming the known presets
    } else if (model.is_object() && model.contains("preset") && !model["preset"].is_string()) {
        throw bad("field 'model.preset' must be a string");
    }
}

int64_t TrainConfig::effective_grad_accum() const {
    return tokens_per_step > 0 ? tokens_per_step / (batch_size * seq_len) : grad_accum;
}

Mamba2Config TrainConfig::resolve_model(int dataset_vocab) const {
    json base;
    json over = json::object();
    if (model.is_string()) {
        base = Mamba2Config::preset(model.get<std::string>()).to_json();
    } else {
        over = model;
        if (over.contains("preset")) {
            base = Mamba2Config::preset(over["preset"].get<std::string>()).to_json();
            over.erase("preset");
        } else {
            base = Mamba2Config().to_json();
        }
    }
    const bool vocab_given = over.contains("vocab_size");
    base.merge_patch(over);
    Mamba2Config cfg;
    try {
        cfg = Mamba2Config::from_json(base, /*strict=*/true);
    } catch (const std::exception& e) {
        throw bad(std::string("field 'model': ") + e.what());
    }
    if (!vocab_given) cfg.vocab_size = dataset_vocab;
    if (cfg.vocab_size < dataset_vocab)
        throw bad("model vocab_size " + std::to_string(cfg.vocab_size) + " is smaller than the corpus vocabulary (" +
                  std::to_string(dataset_vocab) + ")");
    cfg.validate();
    return cfg;
}

json TrainConfig::to_json() const {
    return json{{"data", data},
                {"model", model},
                {"init_from", init_from},
                {"steps", steps},
                {"seq_len", seq_len},
                {"batch_size", batch_size},
                {"grad_accum", grad_accum},
                {"tokens_per_step", tokens_per_step},
                {"lr", lr},
                {"final_lr", final_lr},
                {"warmup_steps", warmup_steps},
                {"weight_decay", weight_decay},
                {"beta1", beta1},
                {"beta2", beta2},
                {"eps", eps},
                {"grad_clip", grad_clip},
                {"loss", loss},
                {"ce_weight", ce_weight},
                {"teacher", teacher},
                {"teacher_vocab_slice", teacher_vocab_slice},
                {"teacher_cache", teacher_cache},
                {"log_every", log_every},
                {"eval_every", eval_every},
                {"eval_batches", eval_batches},
                {"checkpoint_every", checkpoint_every},
                {"keep_checkpoints", keep_checkpoints},
                {"seed", seed},
                {"deterministic", deterministic},
                {"device", device},
                {"precision", precision},
                {"threads", threads}};
}

TrainConfig TrainConfig::parse_toml(const std::string& text, const std::string& source) {
    json j;
    try {
        j = parse_toml_as_json(text, source);
    } catch (const std::invalid_argument& e) {
        throw bad(e.what());
    }
    return from_json(j);
}

TrainConfig TrainConfig::load(const std::string& path) {
    std::string text;
    try {
        text = read_file(path);
    } catch (const std::exception& e) {
        throw bad("cannot read '" + path + "': " + e.what());
    }
    if (ends_with(path, ".toml")) return parse_toml(text, path);
    json j;
    try {
        j = json::parse(text);
    } catch (const json::parse_error& e) {
        if (ends_with(path, ".json")) throw bad("cannot parse JSON '" + path + "': " + e.what());
        return parse_toml(text, path);  // neither extension: JSON first, then TOML
    }
    return from_json(j);
}

}  // namespace bimamba
