#include "core/model/Teacher.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

#include "core/base/FileUtil.h"
#include "core/base/Process.h"
#include "core/base/RunDir.h"
#include "core/base/Safetensors.h"
#include "core/model/Autocast.h"
#include "core/model/Checkpoint.h"
#include "core/model/LlamaModel.h"
#include "core/model/Mamba2Model.h"
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
#include "kernels/cuda/CudaOps.h"
#endif

namespace bimamba::model {

using base::read_file;

namespace fs = std::filesystem;

namespace {

// A Mamba-2 teacher stored in 16 bits keeps its matrices (embedding, in/out
// projections, head) in bf16 on CUDA, halving its memory; the small vectors
// (A_log, D, dt_bias, norms, conv, FBI scales) stay float32 as in training.
bool keep_bf16(const base::TensorView& v, torch::Device device) {
    return device.is_cuda() && (v.dtype == base::DType::BF16 || v.dtype == base::DType::F16) && v.shape.size() == 2 &&
           v.shape[0] > 1 && v.shape[1] > 1;
}

class Mamba2Teacher : public Teacher {
public:
    Mamba2Teacher(const std::string& path, torch::Device device) : model_(load_model(path, device)), device_(device) {
        std::set<std::string> bf16_names;
        for (const auto& f : tensor_files(path)) {
            auto file = base::SafetensorsFile::open(f);
            for (const auto& n : file->names())
                if (keep_bf16(file->get(n), device)) bf16_names.insert(n);
        }
        if (bf16_names.empty()) return;
        torch::NoGradGuard ng;
        for (auto& p : model_->named_parameters())
            if (p.value().dim() == 2 && p.value().size(0) > 1 && p.value().size(1) > 1) {
                p.value().set_data(p.value().to(torch::kBFloat16));
                bf16_ = true;
            }
    }
    int64_t native_vocab_size() const override { return model_->config().vocab_size; }
    std::string kind() const override { return "mamba2"; }

protected:
    torch::Tensor full_logits(const torch::Tensor& ids) override {
        torch::NoGradGuard ng;
        AutocastScope ac(bf16_);  // bf16 matrices need autocast even in a float32 run
        auto out = model_->forward(ids.to(device_, torch::kInt64)).to(torch::kFloat32);
        // Padded vocabulary rows are not tokens.
        return out.size(-1) > native_vocab_size() ? out.narrow(-1, 0, native_vocab_size()) : out;
    }

private:
    Mamba2LM model_;
    torch::Device device_;
    bool bf16_ = false;
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
        if (fs::exists(folder / base::run_files::kCheckpoints / base::run_files::kLatest))
            return "mamba2";  // one of our run directories
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

uint64_t Teacher::weight_bytes(const std::string& path, torch::Device device) {
    const bool llama = detect_kind(path) == "llama";
    uint64_t bytes = 0;
    for (const auto& f : tensor_files(path)) {
        auto file = base::SafetensorsFile::open(f);  // maps the file; reads only the header
        for (const auto& n : file->names()) {
            const auto& v = file->get(n);
            const uint64_t elem = llama ? base::dtype_size(v.dtype) : keep_bf16(v, device) ? 2 : 4;
            bytes += elem * static_cast<uint64_t>(v.numel());
        }
    }
    return bytes;
}

namespace {

double gb(uint64_t b) {
    return b / 1e9;
}

std::string gb_str(uint64_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GB", gb(b));
    return buf;
}

}  // namespace

void Teacher::check_fits(const std::string& path, torch::Device device, uint64_t other_bytes) {
    const uint64_t need = weight_bytes(path, device);
    uint64_t free_b = 0;
    std::string where;
    if (const char* lim = std::getenv("BIMAMBA_MEMORY_LIMIT_GB"); lim && *lim) {
        char* end = nullptr;
        const double v = std::strtod(lim, &end);
        if (end == lim || v <= 0)
            throw std::invalid_argument(std::string("BIMAMBA_MEMORY_LIMIT_GB='") + lim + "' is not a positive number");
        free_b = static_cast<uint64_t>(v * 1e9);
        where = device.str() + " (limited by BIMAMBA_MEMORY_LIMIT_GB)";
    } else if (device.is_cuda()) {
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
        auto [f, total] = cuda::device_memory(device.has_index() ? device.index() : 0);
        free_b = f;
        where = device.str() + " (" + gb_str(total) + " in all)";
#else
        return;  // no CUDA runtime in this build to ask
#endif
    } else {
        free_b = base::available_memory_bytes();
        where = "this machine's memory (MemAvailable)";
        if (!free_b) return;
    }
    if (need + other_bytes <= free_b) return;
    throw std::runtime_error(
        "teacher '" + path + "' does not fit: its weights need " + gb_str(need) +
        (other_bytes ? " and the student's training state ~" + gb_str(other_bytes) : std::string()) + ", but " + where +
        " has " + gb_str(free_b) +
        " free. Nothing was loaded. Use a teacher logits cache built on a larger machine "
        "(`bimamba cache-teacher`, then `teacher_cache` in the config), a smaller teacher, or a bigger device.");
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

}  // namespace bimamba::model
