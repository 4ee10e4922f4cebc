#pragma once
// A distillation teacher: any causal LM folder the workbench can run, a
// Mamba-2 (ours or HF transformers') or a LLaMA-family model, chosen by its
// config.json (model_type, or the keys present). Logits are float32.
//
// Vocabulary: the teacher's logits must line up with the student's token ids.
// Equal sizes pass; a larger teacher vocabulary is sliced to the student's
// when asked (the paper's Phi-3.5 teacher); anything else is an error.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

namespace bimamba::model {

class Teacher {
public:
    // Throws naming the folder and the problem (no config.json, unknown model_type, ...).
    static std::unique_ptr<Teacher> load(const std::string& path, torch::Device device = torch::kCPU);
    // "mamba2" or "llama" for a folder, without loading its weights.
    static std::string detect_kind(const std::string& path);
    // Bytes the teacher's weights will take on `device` once loaded, from the
    // safetensors headers alone (nothing is read; a 140 GB teacher costs
    // nothing to size). LLaMA keeps the stored dtype; a Mamba-2 teacher keeps
    // 16-bit matrices in bf16 on CUDA and holds the rest in float32.
    static uint64_t weight_bytes(const std::string& path, torch::Device device);
    // Throws std::runtime_error before anything is loaded when the teacher's
    // weights plus `other_bytes` (the student's weights, gradients and
    // optimiser state) exceed the memory `device` has free: the GPU's free
    // memory, or MemAvailable for the CPU. BIMAMBA_MEMORY_LIMIT_GB, when set,
    // replaces the free memory (to plan for a smaller device, and for tests).
    static void check_fits(const std::string& path, torch::Device device, uint64_t other_bytes);
    virtual ~Teacher() = default;

    // input_ids (b, l) int64 -> logits (b, l, vocab_size()) float32.
    torch::Tensor logits(const torch::Tensor& input_ids);
    // Vocabulary of logits() (the student's after match_vocab with slicing).
    int64_t vocab_size() const { return slice_ ? slice_ : native_vocab_size(); }
    virtual int64_t native_vocab_size() const = 0;
    virtual std::string kind() const = 0;

    // Checks the teacher against a student vocabulary of `student_vocab`:
    // equal is fine; teacher larger and `slice` keeps the first student_vocab
    // logits; otherwise std::invalid_argument naming both sizes.
    void match_vocab(int64_t student_vocab, bool slice);

protected:
    virtual torch::Tensor full_logits(const torch::Tensor& input_ids) = 0;

private:
    int64_t slice_ = 0;
};

}  // namespace bimamba::model
