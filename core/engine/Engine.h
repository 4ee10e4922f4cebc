#pragma once
// The native CPU inference engine: loads a deployment file (mmap, no LibTorch)
// and runs Mamba-2 recurrent decoding, one token at a time with a constant-size
// conv + SSM state per layer. Binarized projections use the bit-packed GEMV
// y = S·(α⊙x) + (β·x); unbinarized ones run in fp16 or fp32 from the file,
// so the same engine is the baseline for every ratio.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/base/Mamba2Config.h"
#include "core/base/Safetensors.h"
#include "core/base/Sampler.h"

namespace bimamba {
class Tokenizer;
namespace kernels {
struct Lut3Matrix;
}
}

namespace bimamba::engine {

// One projection (in_proj or out_proj) as stored in the file.
struct Projection {
    int rows = 0, cols = 0;
    enum class Kind { Binary, F16, F32 } kind = Kind::F32;
    const uint8_t* signs = nullptr;  // Binary: rows × ceil(cols/8)
    const float* alpha = nullptr;    // Binary: cols
    const float* beta = nullptr;     // Binary: cols
    const uint16_t* w16 = nullptr;   // F16: rows × cols
    const float* w32 = nullptr;      // F32: rows × cols
    // Binary with the lookup-table kernel: the signs repacked into its tiled layout.
    std::shared_ptr<const kernels::Lut3Matrix> lut;
    uint64_t bytes() const;          // weight bytes read per application
    // y = W·x (x has cols, y has rows); `scratch` holds cols floats.
    void apply(const float* x, float* y, float* scratch) const;
};

struct LayerWeights {
    const float* norm = nullptr;      // d_model
    Projection in_proj, out_proj;
    const float* conv_w = nullptr;    // conv_dim × d_conv
    const float* conv_b = nullptr;    // conv_dim (nullptr when the config has no conv bias)
    const float* dt_bias = nullptr;   // nheads
    const float* A_log = nullptr;     // nheads
    const float* D = nullptr;         // nheads
    const float* gnorm = nullptr;     // d_inner (gated RMSNorm weight)
};

struct GenerationResult {
    std::string text;
    std::vector<int> tokens;
    int prompt_tokens = 0;
    std::string stop_reason;  // "eos" | "stop" | "max_tokens"
    double prefill_seconds = 0, decode_seconds = 0;
};

class Engine {
public:
    // Opens and validates a deployment file; throws naming the file and the problem.
    static std::unique_ptr<Engine> load(const std::string& path);
    ~Engine();

    const Mamba2Config& config() const { return cfg_; }
    // "binary" (every projection packed), "binary-in_proj", "f16" or "f32".
    std::string weight_kind() const;
    bool has_tokenizer() const { return tokenizer_ != nullptr; }
    const Tokenizer& tokenizer() const;  // throws if the file has none
    // Weight bytes read per decoded token (projections + head + small parts).
    uint64_t weight_bytes_per_token() const;
    size_t file_bytes() const;

    // Clears the recurrent state (a new sequence).
    void reset();
    // Feeds one token, returns the logits (vocab_size) for the next one.
    const std::vector<float>& step(int token);
    // Feeds a prompt token by token (prefill is the same recurrence: the state
    // is O(1) in the length); returns the logits after the last token.
    const std::vector<float>& prefill(const std::vector<int>& tokens);
    // Tokens fed since reset().
    const std::vector<int>& history() const { return history_; }

    // Generates after the current state (call prefill first). Stops at EOS,
    // a stop string (cut from the text) or max_tokens. `on_text` streams the
    // new text piece by piece.
    GenerationResult generate(const std::string& prompt, const SamplingParams& p, bool add_bos = true,
                              const std::function<void(const std::string&)>& on_text = {});
    // Continues from the current state with `prompt_tokens` (no reset): for chat.
    GenerationResult continue_with(const std::vector<int>& prompt_tokens, const SamplingParams& p,
                                   const std::function<void(const std::string&)>& on_text = {});

private:
    Engine() = default;
    void layer_step(int i, float* residual);

    Mamba2Config cfg_;
    std::shared_ptr<st::SafetensorsFile> file_;
    std::shared_ptr<Tokenizer> tokenizer_;
    const uint16_t* emb16_ = nullptr;
    const float* emb32_ = nullptr;
    const float* norm_f_ = nullptr;
    std::vector<LayerWeights> layers_;
    // State and scratch (allocated once; constant memory per token).
    std::vector<float> conv_state_, ssm_state_;
    std::vector<float> residual_, h_, zxbcdt_, xbc_, y_, out_, scratch_, logits_;
    std::vector<int> history_;
};

// Kernel for packed ±1 projections of engines loaded afterwards: "lut3"
// (default: lookup tables, kernels/cpu/BitGemvLut.h) or "xor" (sign-flip on the
// row-major file layout, kernels/cpu/Gemv.h). Throws on other names.
void set_binary_kernel(const std::string& name);
const std::string& binary_kernel();

// The prompt template of `bimamba chat`: turns joined as
// "User: ...\nAssistant:" lines (the base model is not instruction-tuned).
std::string chat_turn(const std::string& user_message, bool first_turn);

}  // namespace bimamba::engine
