#include "core/base/TrainConfig.h"

#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>

#include "core/base/FileUtil.h"
#include "core/base/StringUtil.h"
#include "core/base/TomlJson.h"

namespace bimamba::base {

using json = nlohmann::json;

namespace {

std::invalid_argument bad(const std::string& msg) {
    return std::invalid_argument("train config: " + msg);
}

// A problem found while reading a field; collected, or thrown as the first.
struct FieldProblem {
    std::string msg;
};

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
    if (!ok)
        throw FieldProblem{"field '" + key + "' must be " + expect + ", got " + type_name(v) + " (" + v.dump() + ")"};
}

// Reads the fields of `j` into `c`; a field of the wrong type keeps its
// default. Returns the problems: unknown fields and wrong types.
std::vector<std::string> read_fields(const json& j, TrainConfig& c);

}  // namespace

TrainConfig TrainConfig::from_json(const json& j) {
    TrainConfig c;
    const auto errs = read_fields(j, c);
    if (!errs.empty()) throw bad(errs.front());
    c.validate();
    return c;
}

std::vector<std::string> TrainConfig::problems(const json& j, bool check_paths) {
    TrainConfig c;
    std::vector<std::string> errs = read_fields(j, c);
    for (auto& e : c.problems()) errs.push_back(e);
    try {
        c.model_config();
    } catch (const std::exception& e) {
        std::string m = e.what();
        if (m.rfind("train config: ", 0) == 0) m = m.substr(14);
        bool dup = false;
        for (auto& x : errs) dup |= x == m;
        if (!dup) errs.push_back(m);
    }
    if (check_paths) {
        for (auto [k, v] : {std::pair<const char*, const std::string*>{"data", &c.data},
                            {"init_from", &c.init_from},
                            {"teacher", &c.teacher},
                            {"teacher_cache", &c.teacher_cache}}) {
            std::error_code ec;
            if (!v->empty() && !std::filesystem::exists(*v, ec))
                errs.push_back("field '" + std::string(k) + "': '" + *v + "' does not exist");
        }
    }
    return errs;
}

std::vector<std::string> TrainConfig::field_names() {
    const json all = TrainConfig().to_json();
    std::vector<std::string> names;
    for (auto& [k, v] : all.items()) names.push_back(k);
    return names;  // json objects iterate in key order
}

namespace {

std::vector<std::string> read_fields(const json& j, TrainConfig& c) {
    if (!j.is_object()) return {"the top level must be an object/table"};
    using Setter = std::function<void(const json&, const std::string&)>;
    auto str = [](std::string& dst) -> Setter {
        return [&dst](const json& v, const std::string& k) {
            need(v, v.is_string(), k, "a string");
            dst = v.get<std::string>();
        };
    };
    auto integer = [](int64_t& dst) -> Setter {
        return [&dst](const json& v, const std::string& k) {
            need(v, v.is_number_integer(), k, "an integer");
            dst = v.get<int64_t>();
        };
    };
    auto number = [](double& dst) -> Setter {
        return [&dst](const json& v, const std::string& k) {
            need(v, v.is_number(), k, "a number");
            dst = v.get<double>();
        };
    };
    auto boolean = [](bool& dst) -> Setter {
        return [&dst](const json& v, const std::string& k) {
            need(v, v.is_boolean(), k, "a boolean");
            dst = v.get<bool>();
        };
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
    std::vector<std::string> errs;
    for (auto& [k, v] : j.items()) {
        auto it = fields.find(k);
        if (it == fields.end()) {
            std::string known;
            for (auto& [name, s] : fields) known += (known.empty() ? "" : ", ") + name;
            errs.push_back("unknown field '" + k + "' (known fields: " + known + ")");
            continue;
        }
        try {
            it->second(v, k);
        } catch (const FieldProblem& p) {
            errs.push_back(p.msg);
        }
    }
    return errs;
}

}  // namespace

void TrainConfig::validate() const {
    const auto errs = problems();
    if (!errs.empty()) throw bad(errs.front());
}

std::vector<std::string> TrainConfig::problems() const {
    std::vector<std::string> errs;
    auto fail = [&](const std::string& m) { errs.push_back(m); };
    if (data.empty()) fail("field 'data' (the prepared corpus folder) is required");
    auto positive = [&](int64_t v, const char* k) {
        if (v <= 0) fail(std::string("field '") + k + "' must be positive, got " + std::to_string(v));
    };
    auto non_negative = [&](int64_t v, const char* k) {
        if (v < 0) fail(std::string("field '") + k + "' must be >= 0, got " + std::to_string(v));
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
    if (!(lr > 0)) fail("field 'lr' must be positive");
    if (!(final_lr >= 0 && final_lr <= lr)) fail("field 'final_lr' must be in [0, lr]");
    if (!(weight_decay >= 0)) fail("field 'weight_decay' must be >= 0");
    if (!(beta1 >= 0 && beta1 < 1)) fail("field 'beta1' must be in [0, 1)");
    if (!(beta2 >= 0 && beta2 < 1)) fail("field 'beta2' must be in [0, 1)");
    if (!(eps > 0)) fail("field 'eps' must be positive");
    if (!(grad_clip >= 0)) fail("field 'grad_clip' must be >= 0 (0 = off)");
    if (!(ce_weight >= 0 && ce_weight <= 1)) fail("field 'ce_weight' must be in [0, 1]");
    bool loss_known = true;
    LossType lt = LossType::CE;
    try {
        lt = loss_type();
    } catch (const std::exception& e) {
        fail(std::string("field 'loss': ") + e.what());
        loss_known = false;
    }
    if (!teacher.empty() && !teacher_cache.empty())
        fail("set either field 'teacher' or field 'teacher_cache', not both");
    if (loss_known && loss_needs_teacher(lt) && teacher.empty() && teacher_cache.empty())
        fail("loss '" + loss +
             "' needs a teacher: set field 'teacher' to a full-precision checkpoint folder "
             "(or 'teacher_cache' to a teacher logits cache)");
    if (loss_known && !teacher_cache.empty() && lt != LossType::SoftCE && lt != LossType::Mix)
        fail("field 'teacher_cache' holds only the teacher's top-k logits: it works with loss soft_ce or mix, not '" +
             loss + "'");
    // batch_size·seq_len·grad_accum is multiplied out in int64 (tokens_per_optimizer_step):
    // sizes whose product overflows are refused, not multiplied (found by
    // tests/fuzz/fuzz_train_config: 2^32 × 2^32 was undefined behaviour).
    int64_t seq_tokens = 0, step_tokens = 0;
    const bool sizes_fit = batch_size > 0 && seq_len > 0 && grad_accum > 0 &&
                           !__builtin_mul_overflow(batch_size, seq_len, &seq_tokens) &&
                           !__builtin_mul_overflow(seq_tokens, grad_accum, &step_tokens);
    if (batch_size > 0 && seq_len > 0 && grad_accum > 0 && !sizes_fit)
        fail("batch_size·seq_len·grad_accum does not fit in 64 bits (batch_size " + std::to_string(batch_size) +
             ", seq_len " + std::to_string(seq_len) + ", grad_accum " + std::to_string(grad_accum) + ")");
    if (tokens_per_step > 0 && sizes_fit && tokens_per_step % seq_tokens != 0)
        fail("field 'tokens_per_step' (" + std::to_string(tokens_per_step) +
             ") must be a multiple of batch_size·seq_len (" + std::to_string(batch_size * seq_len) + ")");
    if (device != "auto" && device != "cpu" && device.rfind("cuda", 0) != 0)
        fail("field 'device' must be auto, cpu, cuda or cuda:N, got '" + device + "'");
    if (precision != "auto" && precision != "float32" && precision != "bf16")
        fail("field 'precision' must be auto, float32 or bf16, got '" + precision + "'");
    if (model.is_string()) {
        try {
            Mamba2Config::preset(model.get<std::string>());
        } catch (const std::exception& e) {
            fail(std::string("field 'model': ") + e.what());  // names the known presets
        }
    } else if (model.is_object() && model.contains("preset") && !model["preset"].is_string()) {
        fail("field 'model.preset' must be a string");
    }
    return errs;
}

int64_t TrainConfig::effective_grad_accum() const {
    return tokens_per_step > 0 ? tokens_per_step / (batch_size * seq_len) : grad_accum;
}

namespace {
// `model` as a Mamba2Config before the corpus vocabulary is applied; not validated.
Mamba2Config merge_model(const json& model, bool* vocab_given) {
    json base;
    json over = json::object();
    try {
        if (model.is_string()) {
            base = Mamba2Config::preset(model.get<std::string>()).to_json();
        } else {
            over = model;
            if (over.contains("preset")) {
                if (!over["preset"].is_string()) throw std::invalid_argument("'preset' must be a string");
                base = Mamba2Config::preset(over["preset"].get<std::string>()).to_json();
                over.erase("preset");
            } else {
                base = Mamba2Config().to_json();
            }
        }
        *vocab_given = over.contains("vocab_size");
        base.merge_patch(over);
        return Mamba2Config::from_json(base, /*strict=*/true);
    } catch (const std::exception& e) {
        throw bad(std::string("field 'model': ") + e.what());
    }
}
}  // namespace

Mamba2Config TrainConfig::resolve_model(int dataset_vocab) const {
    bool vocab_given = false;
    Mamba2Config cfg = merge_model(model, &vocab_given);
    if (!vocab_given) cfg.vocab_size = dataset_vocab;
    if (cfg.vocab_size < dataset_vocab)
        throw bad("model vocab_size " + std::to_string(cfg.vocab_size) + " is smaller than the corpus vocabulary (" +
                  std::to_string(dataset_vocab) + ")");
    cfg.validate();
    return cfg;
}

Mamba2Config TrainConfig::model_config() const {
    bool vocab_given = false;
    Mamba2Config cfg = merge_model(model, &vocab_given);
    try {
        cfg.validate();
    } catch (const std::exception& e) {
        throw bad(std::string("field 'model': ") + e.what());
    }
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

}  // namespace bimamba::base
