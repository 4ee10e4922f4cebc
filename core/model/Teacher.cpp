#include "core/model/Teacher.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/base/FileUtil.h"
#include "core/model/Checkpoint.h"
#include "core/model/LlamaModel.h"
#include "core/model/Mamba2Model.h"

namespace bimamba {

namespace fs = std::filesystem;

namespace {
class Mamba2Teacher : public Teacher {
public:
    Mamba2Teacher(const std::string& path, torch::Device device) : model_(load_model(path, device)), device_(device) {}
    int64_t native_vocab_size() const override { return model_->config().vocab_size; }
    std::string kind() const override { return "mamba2"; }

protected:
    torch::Tensor full_logits(const torch::Tensor& ids) override {
        torch::NoGradGuard ng;
        auto out = model_->forward(ids.to(device_, torch::kInt64)).to(torch::kFloat32);
        // Padded vocabulary rows are not tokens.
        return out.size(-1) > native_vocab_size() ? out.narrow(-1, 0, native_vocab_size()) : out;
    }

private:
    Mamba2LM model_;
    torch::Device device_;
};

class LlamaTeacher : public Teacher {
public:
    LlamaTeacher(const std::string& path, torch::Device device) : model_(LlamaLM::load(path, device)) {}
    int64_t native_vocab_size() const override { return model_.config().vocab_size; }
    std::string kind() const override { return "llama"; }

protected:
    torch::Tensor full_logits(const torch::Tensor& ids) override { return model_.forward(ids); }

private:
    LlamaLM model_;
};
}  // namespace

std::string Teacher::detect_kind(const std::string& path) {
    fs::path p(path);
    if (!fs::exists(p)) throw std::runtime_error("teacher: no such file or folder '" + path + "'");
    fs::path folder = fs::is_directory(p) ? p : p.parent_path();
    auto cfg_path = folder / "config.json";
    if (!fs::exists(cfg_path)) {
        if (fs::exists(folder / "checkpoints" / "latest")) return "mamba2";  // one of our run directories
        throw std::runtime_error("teacher: no config.json in '" + folder.string() + "'");
    }
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(cfg_path.string()));
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error("teacher: '" + cfg_path.string() + "' is not valid JSON: " + e.what());
    }
    if (!j.is_object()) throw std::runtime_error("teacher: '" + cfg_path.string() + "' is not a JSON object");
    if (j.contains("model_type") && j["model_type"].is_string()) {
        auto t = j["model_type"].get<std::string>();
        if (t == "mamba2") return "mamba2";
        if (t == "llama") return "llama";
        throw std::runtime_error("teacher: '" + cfg_path.string() + "' has model_type '" + t +
                                 "'; supported teachers are mamba2 and llama");
    }
    if (j.contains("d_model") || j.contains("state_size")) return "mamba2";
    if (j.contains("num_attention_heads")) return "llama";
    throw std::runtime_error("teacher: cannot tell the model type of '" + cfg_path.string() +
                             "' (no model_type, no Mamba-2 or LLaMA keys)");
}

std::unique_ptr<Teacher> Teacher::load(const std::string& path, torch::Device device) {
    auto kind = detect_kind(path);
    if (kind == "llama") return std::make_unique<LlamaTeacher>(path, device);
    return std::make_unique<Mamba2Teacher>(path, device);
}

void Teacher::match_vocab(int64_t student_vocab, bool slice) {
    const int64_t t = native_vocab_size();
    if (student_vocab <= 0) throw std::invalid_argument("student vocabulary size must be > 0");
    if (student_vocab == t) {
        slice_ = 0;
        return;
    }
    if (student_vocab < t && slice) {
        slice_ = student_vocab;
        return;
    }
    if (student_vocab < t)
        throw std::invalid_argument("teacher vocabulary (" + std::to_string(t) + ") differs from the student's (" +
                                    std::to_string(student_vocab) +
                                    "); slicing the teacher's logits to the student's vocabulary was not asked for "
                                    "(it is only right when the student's tokens are the teacher's first ids)");
    throw std::invalid_argument("teacher vocabulary (" + std::to_string(t) + ") is smaller than the student's (" +
                                std::to_string(student_vocab) + "): the teacher cannot supply those tokens' logits");
}

torch::Tensor Teacher::logits(const torch::Tensor& input_ids) {
    if (input_ids.dim() != 2) throw std::invalid_argument("teacher: input_ids must be (batch, length)");
    if (input_ids.numel() && input_ids.max().item<int64_t>() >= vocab_size())
        throw std::invalid_argument("teacher: token id " + std::to_string(input_ids.max().item<int64_t>()) +
                                    " is outside the vocabulary of " + std::to_string(vocab_size()));
    auto out = full_logits(input_ids);
    return slice_ ? out.narrow(-1, 0, slice_).contiguous() : out;
}

}  // namespace bimamba
