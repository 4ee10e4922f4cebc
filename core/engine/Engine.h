#pragma once
// The native CPU inference engine: loads a deployment file (mmap, no LibTorch)
// and runs Mamba-2 recurrent decoding, one token at a time with a constant-size
// conv + SSM state per layer. Binarized projections use the bit-packed GEMV
// y = S·(α⊙x) + (β·x); unbinarized ones run in fp16 or fp32 from the file,
// so the same engine is the baseline for every ratio.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/base/Mamba2Config.h"
#include "core/base/Safetensors.h"
#include "core/base/Sampler.h"
#include "kernels/cpu/CpuContext.h"
#include "kernels/cpu/HugePages.h"
#include "kernels/cpu/SsmStep.h"

namespace bimamba::data {
class Tokenizer;
}
namespace bimamba::kernels {
struct Lut3Matrix;
struct I16LutMatrix;
struct I8LutMatrix;
}  // namespace bimamba::kernels

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
    std::shared_ptr<kernels::Lut3Matrix> lut;
    // Binary with the integer-table kernel ("i16lut": quantized input, not exact).
    std::shared_ptr<kernels::I16LutMatrix> i16;
    // Binary with the int8-table kernel ("i8lut": coarser input quantization, opt-in).
    std::shared_ptr<kernels::I8LutMatrix> i8;
    uint64_t bytes() const;  // weight bytes read per application
    // y = W·x (x has cols, y has rows) on cx's ISA and pool; `scratch` holds
    // cols floats + the lookup tables.
    void apply(const kernels::CpuContext& cx, const float* x, float* y, float* scratch) const;
    // The same for T inputs (token j: x + j·xstride -> y + j·ystride), weights
    // read once for all of them; bit-identical to T calls of apply().
    // `scratch` holds scratch_floats(T) floats.
    void apply_batch(const kernels::CpuContext& cx, const float* x, size_t xstride, int T, float* y, size_t ystride,
                     float* scratch) const;
    // apply() on the input in(w), with rows_done(y, r0, r1) (if set) on the
    // output rows: under the i16lut kernel on several threads, in one hand-off
    // where every thread makes the input (and α⊙x, β·x) itself and finishes
    // its own rows (kernels::bitgemv_i16lut_in_pool), else on this thread
    // before and after apply(). in(w) returns the input, written into w (cols
    // floats) or elsewhere; it runs on every thread at once, so it only reads
    // shared data. y is apply()'s for that input, bit for bit; `scratch` holds
    // scratch_floats(1) floats.
    using Input = std::function<const float*(float* w)>;
    using RowsDone = std::function<void(float* y, int r0, int r1)>;
    void apply_in_pool(const kernels::CpuContext& cx, const Input& in, const RowsDone& rows_done, float* y,
                       float* scratch) const;
    size_t scratch_floats(int T) const;
    size_t int_table_scratch_floats() const;
};

// The prepared input of either integer-table kernel (i16lut, i8lut) for `cols` columns, in bytes.
size_t int_table_scratch_bytes(int cols);

// Kernel for packed ±1 projections (EngineOptions::binary_kernel):
//  - "i16lut" (default): integer PSHUFB tables on the input quantized to int16
//    per 32 columns (kernels/cpu/BitGemvI16.h). Not exact: the engine's logits
//    stay within the 1e-3 bound of the LibTorch model (tests/test_engine.cpp),
//    ~1e-4 on trained models, and it is ~1.2x faster than lut3 at 780M.
//  - "lut3": float lookup tables, exact to float rounding (kernels/cpu/BitGemvLut.h).
//  - "xor": sign flips on the row-major file layout (kernels/cpu/Gemv.h), exact.
//  - "i8lut": integer VPERMB tables on the input quantized to int8 per 32
//    columns (kernels/cpu/BitGemvI8.h): lossier (~1 % of a product's RMS), for
//    CPUs where i16lut is bound by compute; never chosen by "auto". Its SIMD
//    kernel needs AVX-512 VBMI + VNNI; elsewhere its reference runs (the same
//    numbers, several times slower: binary_kernel_path() says which).
//  - "auto": the kernel of the highest capability score on the engine's ISA
//    (binary_kernel_score); i16lut on every ISA today (its AVX-512 path where
//    present, else AVX2, else its scalar reference).
constexpr const char* kDefaultBinaryKernel = "i16lut";
enum class BinaryKernel { I16Lut, Lut3, Xor, I8Lut };
// "i16lut" | "lut3" | "xor" | "i8lut" (and "auto" resolved for `isa`); throws on other names.
BinaryKernel binary_kernel_from_string(const std::string& name, kernels::Isa isa = kernels::best_isa());
const char* binary_kernel_name(BinaryKernel k);
// 0: cannot run; higher: preferred by "auto" on `isa`.
int binary_kernel_score(BinaryKernel k, kernels::Isa isa);
// Throws std::invalid_argument unless `name` is a kernel name or "auto" (for
// checking command-line lists before any engine is loaded).
void check_binary_kernel(const std::string& name);

// Options of Engine::load: everything an engine runs with is chosen here, per
// engine (no process-wide setting), so engines with different kernels, ISAs
// or thread counts live side by side in one process.
struct EngineOptions {
    // Storage of the SSM state (arithmetic stays fp32, rounding on store):
    // f16 (default, as llama.cpp's f16 KV cache: half the traffic of f32, the
    // state being as large as the packed weights at 780M; logits ~2e-4 from
    // f32 on trained models), f32 (exact) or bf16 (float range, ~10x the f16
    // error). An f16 state that reaches half of float16's range (32768) makes
    // the engine switch to f32 and re-feed the sequence (state_fallbacks()):
    // the result is then exactly the f32 engine's.
    kernels::StateType state = kernels::StateType::F16;
    // Prompt tokens processed together by prefill() (layer by layer, each
    // weight read once per block); 1 = token by token.
    int prefill_block = 32;
    // ±1 kernel: "auto" (by capability score; i16lut), "i16lut", "lut3" or "xor".
    std::string binary_kernel = "auto";
    // Kernel path: "auto" (the best this CPU runs, kernels/cpu/CpuContext.h),
    // "avx512", "avx2" or "scalar" (load throws where the CPU lacks it).
    std::string isa = "auto";
    // Worker threads, 0 = all cores; engines with the same count share one
    // pool (kernels::ThreadPool::shared).
    int threads = 0;
};

// Where decode time goes (seconds summed over the profiled tokens; see
// Engine::set_profiling). "conv" is the conv of the B and C channels; "ssm" is
// the per-head region (the conv of the head's x channels, the scan, the SiLU
// gate and its sum of squares) with its thread hand-off; "gate_norm" scales by
// the group RMS. In decode, each layer's input RMSNorm and the conv of B and C
// are counted in "in_proj" and the residual add in "out_proj" (they run inside
// their hand-offs, Projection::apply_in_pool), so "norm", "conv" and
// "residual" stay 0 there (the final norm is in "head"). Batched prefill
// counts them apart.
struct EngineProfile {
    double embed = 0, norm = 0, in_proj = 0, conv = 0, ssm = 0, gate_norm = 0, out_proj = 0, residual = 0, head = 0;
    long tokens = 0;
    double total() const { return embed + norm + in_proj + conv + ssm + gate_norm + out_proj + residual + head; }
};

struct LayerWeights {
    const float* norm = nullptr;  // d_model
    Projection in_proj, out_proj;
    const float* conv_w = nullptr;   // conv_dim × d_conv
    const float* conv_b = nullptr;   // conv_dim (nullptr when the config has no conv bias)
    const float* conv_wT = nullptr;  // d_conv × conv_dim: conv_w transposed at load (tap-major, for SIMD)
    const float* dt_bias = nullptr;  // nheads
    const float* A_log = nullptr;    // nheads
    const float* D = nullptr;        // nheads
    const float* gnorm = nullptr;    // d_inner (gated RMSNorm weight)
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
    static std::unique_ptr<Engine> load(const std::string& path, const EngineOptions& opt = {});
    ~Engine();

    const base::Mamba2Config& config() const { return cfg_; }
    // "binary" (every projection packed), "binary-in_proj", "f16" or "f32".
    std::string weight_kind() const;
    // Storage of the tied embedding/head: "f16", "f32" or "q8" (int8 rows, a float scale per row).
    std::string head_storage() const { return embq8_ ? "q8" : emb16_ ? "f16" : "f32"; }
    bool has_tokenizer() const { return tokenizer_ != nullptr; }
    const data::Tokenizer& tokenizer() const;  // throws if the file has none
    // Weight bytes read per decoded token (projections + head + small parts).
    uint64_t weight_bytes_per_token() const;
    size_t file_bytes() const;

    // Recurrent state: precision and bytes (conv + SSM; read and written once per token).
    kernels::StateType state_precision() const { return opt_.state; }
    // What "auto" resolved to at load: the ±1 kernel, the ISA and the threads.
    const char* binary_kernel() const { return binary_kernel_name(kernel_); }
    const char* isa() const { return kernels::isa_name(cx_.isa); }
    // "simd", or "reference" where the ±1 kernel runs its portable reference
    // (the scalar ISA; i8lut on a CPU without AVX-512 VBMI + VNNI).
    const char* binary_kernel_path() const;
    int threads() const { return cx_.thread_count(); }
    const kernels::CpuContext& cpu() const { return cx_; }
    // Times an f16 state neared its range and the engine moved to f32 (0 normally).
    int state_fallbacks() const { return state_fallbacks_; }
    // A 16-bit state's largest |h| in one layer's head, and the bound the
    // engine holds for it (its f16 guard skips the exact max while the bound
    // stays under the limit); both 0 for a float32 state.
    float state_max_abs(int layer, int head) const;
    float state_abs_bound(int layer, int head) const;
    void set_state_precision(kernels::StateType t);  // also resets the state
    uint64_t state_bytes() const;
    int prefill_block() const { return opt_.prefill_block; }
    void set_prefill_block(int tokens);  // >= 1

    // Per-part timing of step() and of batched prefill (a few clock reads per
    // layer; off by default). prefill_profile().tokens counts prompt tokens.
    void set_profiling(bool on) { profiling_ = on; }
    const EngineProfile& profile() const { return prof_; }
    const EngineProfile& prefill_profile() const { return pprof_; }
    void clear_profile() { prof_ = pprof_ = {}; }

    // Clears the recurrent state (a new sequence).
    void reset();
    // Feeds one token, returns the logits (vocab_size) for the next one.
    const std::vector<float>& step(int token);
    // Feeds a prompt (the same recurrence: the state is O(1) in the length);
    // returns the logits after the last token. Blocks of prefill_block() tokens
    // go through each layer together (projections as GEMMs, conv and scan in
    // order), with results bit-identical to feeding them one by one.
    const std::vector<float>& prefill(const std::vector<int>& tokens);
    // Feeds `tokens` as prefill() does and writes the logits after every one of
    // them to `logits` (tokens.size() × vocab_size; row t follows token t): the
    // logits step() gives token by token, bit for bit, with the projections and
    // an int8 head as GEMMs (`bimamba eval` scores a window with one call).
    // Where an f16 state nears its range, the whole call runs again on a float32
    // state, so every row is then the f32 engine's.
    void prefill_logits(const std::vector<int>& tokens, float* logits);
    // Tokens fed since reset().
    const std::vector<int>& history() const { return history_; }

    // Generates after the current state (call prefill first). Stops at EOS,
    // a stop string (cut from the text) or max_tokens. `on_text` streams the
    // new text piece by piece.
    GenerationResult generate(const std::string& prompt, const base::SamplingParams& p, bool add_bos = true,
                              const std::function<void(const std::string&)>& on_text = {});
    // Continues from the current state with `prompt_tokens` (no reset): for chat.
    GenerationResult continue_with(const std::vector<int>& prompt_tokens, const base::SamplingParams& p,
                                   const std::function<void(const std::string&)>& on_text = {});

private:
    Engine() = default;
    void layer_step(int i, float* residual);
    // `all_logits` (optional): the logits after each of the T tokens, T × vocab_size.
    void prefill_block_run(const int* tokens, int T, bool last, float* all_logits = nullptr);
    void ssm_heads(int li, int h0, int h1, const float* x, const float* B, const float* C, const float* dt, float* y);
    void alloc_state();
    void conv_channels(int li, int pos, const float* in, float* out, int c0, int c1);
    void mix_heads(int li, int pos, int h0, int h1, const float* xbc_in, float* xbc, const float* dt, const float* z,
                   float* y, double* ssq);
    void gated_norm(int li, const float* y, const double* ssq, float* out) const;
    float gate_scale(const double* ssq) const;
    // One group (every paper shape): the gated RMSNorm's scale r multiplies the
    // out_proj's output (W·(r·y·w) = r·(W·(y·w))), and each head's thread applies
    // the weight w; no pass over d_inner on one thread between the two regions.
    bool scale_after_out_proj() const { return cfg_.ssm.ngroups == 1; }
    const float* embed_row(int token, float* out) const;

    base::Mamba2Config cfg_;
    std::shared_ptr<base::SafetensorsFile> file_;
    std::shared_ptr<data::Tokenizer> tokenizer_;
    // The tied embedding/head: one of fp16, fp32, or int8 rows with a scale per row (export --head q8).
    const uint16_t* emb16_ = nullptr;
    const float* emb32_ = nullptr;
    const int8_t* embq8_ = nullptr;
    const float* embq8_scale_ = nullptr;
    void head(const float* h, float* logits) const;
    // head() of T rows h + t·hstride into logits + t·vocab_size (the int8 head as a GEMM).
    void head_rows(const float* h, size_t hstride, int T, float* logits) const;
    void check_token(int t) const;  // throws std::out_of_range outside the vocabulary
    void check_tokens(const std::vector<int>& tokens, const char* what) const;
    // Counts and reports a switch to a float32 state and sets an empty one.
    void start_f32_state(size_t refeed);
    const float* norm_f_ = nullptr;
    std::vector<LayerWeights> layers_;
    // State and scratch (allocated once; constant memory per token).
    EngineOptions opt_;
    BinaryKernel kernel_ = BinaryKernel::I16Lut;
    kernels::CpuContext cx_;
    // Conv state: per layer a ring of d_conv rows of conv_dim inputs; conv_pos_[l]
    // is the row the next input goes to.
    // The state on huge pages (kernels/cpu/HugePages.h): read and written in full every token.
    kernels::huge_vector<float> conv_state_, ssm_state_;
    kernels::huge_vector<uint16_t> ssm_state16_;  // when opt_.state is bf16/f16
    std::vector<float> conv_wT_;
    std::vector<int> conv_pos_;
    // Every weight matrix a token streams (packed ±1 matrices as repacked,
    // fp16/fp32 projections, the embedding/head), copied at load into one
    // huge-page buffer; the file's pages of them are released.
    kernels::HugeBuffer hot_;
    void place_hot_weights();
    // Set by ssm_heads (on any thread) when an f16 state value passes kF16StateLimit.
    std::atomic<bool> f16_near_overflow_{false};
    // Per layer and head, an upper bound on the f16 state's |h| (ssm_heads):
    // while the next step's bound stays under kF16StateLimit the kernel skips
    // its exact max. 0 for a zero state.
    std::vector<float> state_bound_;
    int state_fallbacks_ = 0;
    void fall_back_to_f32_state();
    // Work buffers at least 64-byte aligned (HugePages.h), so the kernels'
    // 512-bit loads of them never straddle two cache lines (the AVX-512 fp16
    // GEMM measured up to 1.6x slower on the Xeon with x 16 bytes off).
    kernels::huge_vector<float> residual_, h_, zxbcdt_, xbc_, y_, out_, scratch_;
    std::vector<float> logits_;
    std::vector<double> ssq_;  // per head: Σy² of the gated output (the gated RMSNorm's sums)
    std::vector<int> history_;
    // Prefill block buffers (T tokens each), allocated on first use.
    kernels::huge_vector<float> b_res_, b_h_, b_zx_, b_xbc_, b_y_, b_out_, b_scratch_;
    std::vector<double> b_ssq_;
    std::vector<float> b_r_;  // per token of a block: the gated RMSNorm's scale (1 where gated_norm applied it)
    bool profiling_ = false;
    EngineProfile prof_, pprof_;
};

// The prompt template of `bimamba chat`: turns joined as
// "User: ...\nAssistant:" lines (the base model is not instruction-tuned).
std::string chat_turn(const std::string& user_message, bool first_turn);

}  // namespace bimamba::engine
