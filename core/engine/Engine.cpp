#include "core/engine/Engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "core/data/Tokenizer.h"
#include "core/engine/DeployFile.h"
#include "kernels/cpu/Activations.h"
#include "kernels/cpu/BitGemvI16.h"
#include "kernels/cpu/BitGemvI8.h"
#include "kernels/cpu/BitGemvLut.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/Q8Gemv.h"
#include "kernels/cpu/RmsNorm.h"
#include "kernels/cpu/SsmStep.h"
#include "kernels/cpu/ThreadPool.h"

#include <sys/mman.h>
#include <unistd.h>

namespace bimamba::engine {

using base::Mamba2Config;
using base::Sampler;
using base::SamplingParams;
using data::Tokenizer;

namespace {

using Clock = std::chrono::steady_clock;
double secs(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

// The per-part profile's clock: tick(acc) adds the time since the last tick
// (or since construction) to acc; nothing when profiling is off.
class PartClock {
public:
    explicit PartClock(bool on) : on_(on) {
        if (on_) t0_ = Clock::now();
    }
    void tick(double& acc) {
        if (!on_) return;
        const Clock::time_point t1 = Clock::now();
        acc += secs(t0_, t1);
        t0_ = t1;
    }
    // Starts the next part here, counting the time since the last tick nowhere.
    void skip() {
        if (on_) t0_ = Clock::now();
    }

private:
    bool on_;
    Clock::time_point t0_;
};

// An f16 state value beyond this (half of float16's 65504) triggers the f32 fallback.
constexpr float kF16StateLimit = 32768.0f;

// After repacking, the file's copy of the signs is not read again: drop its
// pages from this process (they stay in the page cache, re-read on demand).
void release_pages(const void* p, size_t n) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t b = ((uintptr_t)p + page - 1) & ~(page - 1), e = ((uintptr_t)p + n) & ~(page - 1);
    if (e > b) madvise((void*)b, e - b, MADV_DONTNEED);
}

inline float softplus(float x) {
    return x > 20.0f ? x : std::log1p(std::exp(x));
}  // torch's threshold

std::string shape_str(const std::vector<int64_t>& s) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    return os.str() + "]";
}

// Looks a tensor up and checks dtype and element count against the config.
struct Reader {
    const base::SafetensorsFile& f;
    BinaryKernel kernel;
    const base::TensorView& get(const std::string& name, base::DType dt, int64_t numel) const {
        if (!f.contains(name))
            throw std::runtime_error("deployment file '" + f.path() + "' lacks tensor '" + name + "'");
        const auto& t = f.get(name);
        if (t.dtype != dt)
            throw std::runtime_error("deployment file '" + f.path() + "': tensor '" + name + "' is " +
                                     base::dtype_name(t.dtype) + ", expected " + base::dtype_name(dt));
        if (t.numel() != numel)
            throw std::runtime_error("deployment file '" + f.path() + "': tensor '" + name + "' has shape " +
                                     shape_str(t.shape) + " (" + std::to_string(t.numel()) +
                                     " elements), the config implies " + std::to_string(numel));
        if (reinterpret_cast<uintptr_t>(t.data) % base::dtype_size(dt) != 0)
            throw std::runtime_error("deployment file '" + f.path() + "': tensor '" + name + "' is misaligned");
        return t;
    }
    const float* f32(const std::string& name, int64_t n) const {
        return reinterpret_cast<const float*>(get(name, base::DType::F32, n).data);
    }
    Projection proj(const std::string& prefix, int rows, int cols) const {
        Projection p;
        p.rows = rows;
        p.cols = cols;
        if (f.contains(prefix + ".signs")) {
            p.kind = Projection::Kind::Binary;
            const auto& s = get(prefix + ".signs", base::DType::U8, (int64_t)rows * kernels::bit_row_stride(cols));
            if (s.shape.size() != 2 || s.shape[0] != rows)
                throw std::runtime_error("deployment file '" + f.path() + "': '" + prefix + ".signs' must be [" +
                                         std::to_string(rows) + ", " + std::to_string(kernels::bit_row_stride(cols)) +
                                         "]");
            p.signs = s.data;
            p.alpha = f32(prefix + ".wscale", cols);
            p.beta = f32(prefix + ".wbias", cols);
            if (kernel == BinaryKernel::Lut3) {
                p.lut = std::make_shared<kernels::Lut3Matrix>(kernels::repack_lut3(p.signs, rows, cols));
                release_pages(s.data, s.nbytes);
            } else if (kernel == BinaryKernel::I16Lut) {
                p.i16 = std::make_shared<kernels::I16LutMatrix>(kernels::repack_i16lut(p.signs, rows, cols));
                release_pages(s.data, s.nbytes);
            } else if (kernel == BinaryKernel::I8Lut) {
                p.i8 = std::make_shared<kernels::I8LutMatrix>(kernels::repack_i8lut(p.signs, rows, cols));
                release_pages(s.data, s.nbytes);
            }
        } else if (f.contains(prefix + ".weight") && f.get(prefix + ".weight").dtype == base::DType::F16) {
            p.kind = Projection::Kind::F16;
            p.w16 =
                reinterpret_cast<const uint16_t*>(get(prefix + ".weight", base::DType::F16, (int64_t)rows * cols).data);
        } else {
            p.kind = Projection::Kind::F32;
            p.w32 = f32(prefix + ".weight", (int64_t)rows * cols);
        }
        return p;
    }
};

}  // namespace

int binary_kernel_score(BinaryKernel k, kernels::Isa isa) {
    // Every kernel has a scalar path; i16lut is the fastest wherever it runs
    // (compute-bound under AVX2, its AVX-512 path wider still), then lut3, then xor.
    if (kernels::isa_score(isa) == 0) return 0;
    switch (k) {
        case BinaryKernel::I16Lut:
            return 3;
        case BinaryKernel::Lut3:
            return 2;
        case BinaryKernel::Xor:
            return 1;
        case BinaryKernel::I8Lut:
            return 0;  // lossier: only when asked for by name
    }
    return 0;
}

BinaryKernel binary_kernel_from_string(const std::string& name, kernels::Isa isa) {
    if (name == "auto" || name.empty()) {
        BinaryKernel best = BinaryKernel::Xor;
        for (BinaryKernel k : {BinaryKernel::Lut3, BinaryKernel::I16Lut})
            if (binary_kernel_score(k, isa) > binary_kernel_score(best, isa)) best = k;
        return best;
    }
    if (name == "i16lut") return BinaryKernel::I16Lut;
    if (name == "lut3") return BinaryKernel::Lut3;
    if (name == "xor") return BinaryKernel::Xor;
    // i8lut runs on every ISA: its VBMI + VNNI kernel where the CPU has them,
    // else its reference (the same numbers, slower), so a model's error under
    // it can be measured anywhere before deploying on such a CPU.
    if (name == "i8lut") return BinaryKernel::I8Lut;
    throw std::invalid_argument("unknown binary kernel '" + name + "' (lut3, xor, i16lut, i8lut, auto)");
}

const char* binary_kernel_name(BinaryKernel k) {
    switch (k) {
        case BinaryKernel::Lut3:
            return "lut3";
        case BinaryKernel::Xor:
            return "xor";
        case BinaryKernel::I8Lut:
            return "i8lut";
        case BinaryKernel::I16Lut:
            break;
    }
    return "i16lut";
}

void check_binary_kernel(const std::string& name) {
    (void)binary_kernel_from_string(name, kernels::Isa::Scalar);
}

size_t int_table_scratch_bytes(int cols) {
    return std::max(kernels::i16lut_scratch_bytes(cols), kernels::i8lut_scratch_bytes(cols));
}

uint64_t Projection::bytes() const {
    switch (kind) {
        case Kind::Binary:
            return (uint64_t)rows * kernels::bit_row_stride(cols) + 2ull * cols * 4;
        case Kind::F16:
            return (uint64_t)rows * cols * 2;
        default:
            return (uint64_t)rows * cols * 4;
    }
}

void Projection::apply(const kernels::CpuContext& cx, const float* x, float* y, float* scratch) const {
    switch (kind) {
        case Kind::Binary: {
            // y = S·(α⊙x) + (β·x): the β term is one scalar for every output row.
            const double bx = kernels::binary_input(cx, alpha, beta, x, scratch, cols);
            if (lut)
                kernels::bitgemv_lut3(cx, *lut, scratch, y, scratch + cols);
            else if (i16)
                kernels::bitgemv_i16lut(cx, *i16, scratch, y, reinterpret_cast<uint8_t*>(scratch + cols));
            else if (i8)
                kernels::bitgemv_i8lut(cx, *i8, scratch, y, reinterpret_cast<uint8_t*>(scratch + cols));
            else
                kernels::bitgemv(cx, signs, rows, cols, scratch, y);
            const float b = (float)bx;
            for (int r = 0; r < rows; ++r) y[r] += b;
            break;
        }
        case Kind::F16:
            kernels::f16gemv(cx, w16, rows, cols, x, y);
            break;
        case Kind::F32:
            kernels::f32gemv(cx, w32, rows, cols, x, y);
            break;
    }
}

void Projection::apply_in_pool(const kernels::CpuContext& cx, const Input& in, const RowsDone& rows_done, float* y,
                               float* scratch) const {
    if (kind == Kind::Binary && i16) {
        auto input = [&](float* w, float* x) { return (float)kernels::binary_input(cx, alpha, beta, in(w), x, cols); };
        return kernels::bitgemv_i16lut_in_pool(cx, *i16, input, rows_done, y, reinterpret_cast<uint8_t*>(scratch));
    }
    apply(cx, in(scratch), y, scratch + cols);
    if (rows_done) rows_done(y, 0, rows);
}

// T inputs' α⊙x and tables; for one token also apply_in_pool's working space (cols floats before them).
size_t Projection::scratch_floats(int T) const {
    const size_t t = std::max(1, T);
    return cols + t * cols + t * std::max(kernels::lut3_table_floats(cols), int_table_scratch_floats()) + 8;
}

// One token's integer-table scratch (i16lut or i8lut) in floats (bytes rounded up to 64: each token's area
// starts on a cache line).
size_t Projection::int_table_scratch_floats() const {
    return (int_table_scratch_bytes(cols) + 63) / 64 * 16;
}

void Projection::apply_batch(const kernels::CpuContext& cx, const float* x, size_t xstride, int T, float* y,
                             size_t ystride, float* scratch) const {
    switch (kind) {
        case Kind::Binary: {
            if (!lut && !i16 && !i8) {
                for (int j = 0; j < T; ++j) apply(cx, x + j * xstride, y + j * ystride, scratch);
                return;
            }
            // α⊙x for every token (same arithmetic as apply()), then one GEMM.
            float* ax = scratch;
            std::vector<float> bx(T);
            for (int j = 0; j < T; ++j) {
                bx[j] = (float)kernels::binary_input(cx, alpha, beta, x + j * xstride, ax + (size_t)j * cols, cols);
            }
            if (lut)
                kernels::bitgemm_lut3(cx, *lut, ax, cols, T, y, ystride, ax + (size_t)T * cols);
            else if (i8)
                kernels::bitgemm_i8lut(cx, *i8, ax, cols, T, y, ystride,
                                       reinterpret_cast<uint8_t*>(ax + (size_t)T * cols));
            else
                kernels::bitgemm_i16lut(cx, *i16, ax, cols, T, y, ystride,
                                        reinterpret_cast<uint8_t*>(ax + (size_t)T * cols),
                                        4 * int_table_scratch_floats());
            for (int j = 0; j < T; ++j) {
                float* yj = y + j * ystride;
                for (int r = 0; r < rows; ++r) yj[r] += bx[j];
            }
            break;
        }
        case Kind::F16:
            kernels::f16gemm(cx, w16, rows, cols, x, xstride, T, y, ystride);
            break;
        case Kind::F32:
            for (int j = 0; j < T; ++j) kernels::f32gemv(cx, w32, rows, cols, x + j * xstride, y + j * ystride);
            break;
    }
}

Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const std::string& path, const EngineOptions& opt) {
    std::unique_ptr<Engine> e(new Engine());
    e->opt_ = opt;
    if (opt.prefill_block < 1) throw std::invalid_argument("prefill block must be >= 1 token");
    if (opt.threads < 0 || opt.threads > 1024)
        throw std::invalid_argument("engine threads must be in [0, 1024] (0: all cores)");
    e->cx_ = kernels::CpuContext::make(opt.isa, opt.threads);
    e->kernel_ = binary_kernel_from_string(opt.binary_kernel, e->cx_.isa);
    e->file_ = base::SafetensorsFile::open(path);
    const auto& md = e->file_->metadata();
    auto it = md.find("format");
    if (it == md.end() || it->second != kDeployFormat)
        throw std::runtime_error("'" + path + "' is not a bimamba deployment file (metadata format != '" +
                                 std::string(kDeployFormat) + "'); make one with `bimamba export`");
    auto v = md.find("format_version");
    if (v == md.end() || (v->second != "1" && v->second != std::to_string(kDeployVersion)))
        throw std::runtime_error("'" + path + "' has deployment format version " +
                                 (v == md.end() ? std::string("(none)") : v->second) + ", this engine reads 1 to " +
                                 std::to_string(kDeployVersion));
    auto c = md.find("config");
    if (c == md.end()) throw std::runtime_error("'" + path + "' has no config in its metadata");
    nlohmann::json cj;
    try {
        cj = nlohmann::json::parse(c->second);
    } catch (const std::exception& ex) {
        throw std::runtime_error("'" + path + "': metadata config is not valid JSON: " + ex.what());
    }
    e->cfg_ = Mamba2Config::from_json(cj);
    const Mamba2Config& cfg = e->cfg_;
    cfg.validate();
    if (cfg.d_intermediate != 0) throw std::runtime_error("'" + path + "': d_intermediate != 0 (MLP) is not supported");
    if (cfg.ssm.headdim <= 0 || cfg.nheads() % cfg.ssm.ngroups != 0)
        throw std::runtime_error("'" + path + "': nheads must be a multiple of ngroups");

    Reader R{*e->file_, e->kernel_};
    const int dm = cfg.d_model, di = cfg.d_inner(), cd = cfg.conv_dim(), nh = cfg.nheads();
    const int64_t emb_n = (int64_t)cfg.padded_vocab() * dm;
    if (e->file_->contains("backbone.embedding.q8")) {  // version 2: int8 rows + a scale per row
        e->embq8_ = reinterpret_cast<const int8_t*>(R.get("backbone.embedding.q8", base::DType::I8, emb_n).data);
        e->embq8_scale_ = R.f32("backbone.embedding.scale", cfg.padded_vocab());
    } else if (const auto& emb = e->file_->contains("backbone.embedding.weight")
                                     ? e->file_->get("backbone.embedding.weight")
                                     : R.get("backbone.embedding.weight", base::DType::F16, emb_n);
               emb.dtype == base::DType::F16)
        e->emb16_ = reinterpret_cast<const uint16_t*>(R.get("backbone.embedding.weight", base::DType::F16, emb_n).data);
    else
        e->emb32_ = R.f32("backbone.embedding.weight", emb_n);
    e->norm_f_ = R.f32("backbone.norm_f.weight", dm);
    for (int i = 0; i < cfg.n_layer; ++i) {
        const std::string L = "backbone.layers." + std::to_string(i) + ".", M = L + "mixer.";
        LayerWeights lw;
        lw.norm = R.f32(L + "norm.weight", dm);
        lw.in_proj = R.proj(M + "in_proj", cfg.in_proj_out(), dm);
        lw.out_proj = R.proj(M + "out_proj", dm, di);
        lw.conv_w = R.f32(M + "conv1d.weight", (int64_t)cd * cfg.ssm.d_conv);
        lw.conv_b = cfg.ssm.conv_bias ? R.f32(M + "conv1d.bias", cd) : nullptr;
        lw.dt_bias = R.f32(M + "dt_bias", nh);
        lw.A_log = R.f32(M + "A_log", nh);
        lw.D = R.f32(M + "D", nh);
        lw.gnorm = R.f32(M + "norm.weight", di);
        e->layers_.push_back(lw);
    }
    const int K = cfg.ssm.d_conv;
    e->conv_wT_.resize((size_t)cfg.n_layer * K * cd);
    for (int i = 0; i < cfg.n_layer; ++i) {
        float* t = e->conv_wT_.data() + (size_t)i * K * cd;
        for (int ch = 0; ch < cd; ++ch)
            for (int k = 0; k < K; ++k) t[(size_t)k * cd + ch] = e->layers_[i].conv_w[(size_t)ch * K + k];
        e->layers_[i].conv_wT = t;
    }
    if (e->file_->contains("tokenizer.model")) {
        const auto& t = R.get("tokenizer.model", base::DType::U8, e->file_->get("tokenizer.model").numel());
        e->tokenizer_ = Tokenizer::from_serialized(std::string(reinterpret_cast<const char*>(t.data), t.nbytes));
        if (e->tokenizer_->vocab_size() > cfg.vocab_size)
            throw std::runtime_error("'" + path + "': the embedded tokenizer has " +
                                     std::to_string(e->tokenizer_->vocab_size()) + " pieces, the model only " +
                                     std::to_string(cfg.vocab_size));
    }
    e->place_hot_weights();
    e->alloc_state();
    e->residual_.resize(dm);
    e->h_.resize(std::max(dm, di));
    e->zxbcdt_.resize(cfg.in_proj_out());
    e->xbc_.resize(cd);
    e->y_.resize(di);
    e->ssq_.resize(cfg.nheads());
    e->out_.resize(dm);
    size_t scratch = 0;
    for (const auto& l : e->layers_)
        scratch = std::max({scratch, l.in_proj.scratch_floats(1), l.out_proj.scratch_floats(1)});
    e->scratch_.resize(scratch);
    e->logits_.resize(cfg.vocab_size);
    return e;
}

void Engine::place_hot_weights() {
    // Pass 1 sizes the buffer, pass 2 copies; 64-byte aligned slots.
    struct Slot {
        const void* src;
        size_t bytes;
        bool from_file;                             // release the file's pages after copying
        std::function<void(const uint8_t*)> point;  // repoint the user at the copy
    };
    std::vector<Slot> slots;
    for (auto& l : layers_)
        for (Projection* p : {&l.in_proj, &l.out_proj}) {
            kernels::RepackedBits* bits = p->i16  ? static_cast<kernels::RepackedBits*>(p->i16.get())
                                          : p->i8 ? static_cast<kernels::RepackedBits*>(p->i8.get())
                                                  : p->lut.get();
            if (bits)
                slots.push_back(
                    {bits->data.data(), bits->data.size(), false, [bits](const uint8_t* d) { bits->place(d); }});
            else if (p->kind == Projection::Kind::F16)
                slots.push_back({p->w16, (size_t)p->rows * p->cols * 2, true,
                                 [p](const uint8_t* d) { p->w16 = reinterpret_cast<const uint16_t*>(d); }});
            else if (p->kind == Projection::Kind::F32)
                slots.push_back({p->w32, (size_t)p->rows * p->cols * 4, true,
                                 [p](const uint8_t* d) { p->w32 = reinterpret_cast<const float*>(d); }});
        }
    const size_t emb_n = (size_t)cfg_.padded_vocab() * cfg_.d_model;
    if (embq8_) {
        slots.push_back(
            {embq8_, emb_n, true, [this](const uint8_t* d) { embq8_ = reinterpret_cast<const int8_t*>(d); }});
        slots.push_back({embq8_scale_, (size_t)cfg_.padded_vocab() * 4, true,
                         [this](const uint8_t* d) { embq8_scale_ = reinterpret_cast<const float*>(d); }});
    } else if (emb16_)
        slots.push_back(
            {emb16_, emb_n * 2, true, [this](const uint8_t* d) { emb16_ = reinterpret_cast<const uint16_t*>(d); }});
    else if (emb32_)
        slots.push_back(
            {emb32_, emb_n * 4, true, [this](const uint8_t* d) { emb32_ = reinterpret_cast<const float*>(d); }});
    size_t total = 0;
    for (const auto& s : slots) total += (s.bytes + 63) / 64 * 64;
    hot_ = kernels::HugeBuffer(total);
    size_t off = 0;
    for (auto& s : slots) {
        std::memcpy(hot_.data() + off, s.src, s.bytes);
        if (s.from_file) release_pages(s.src, s.bytes);
        s.point(hot_.data() + off);
        off += (s.bytes + 63) / 64 * 64;
    }
}

const char* Engine::binary_kernel_path() const {
    if (cx_.isa == kernels::Isa::Scalar) return "reference";
    if (kernel_ == BinaryKernel::I8Lut && !kernels::i8lut_simd(cx_)) return "reference";
    return "simd";
}

std::string Engine::weight_kind() const {
    bool in_bin = true, out_bin = true, f16 = false;
    for (const auto& l : layers_) {
        in_bin &= l.in_proj.kind == Projection::Kind::Binary;
        out_bin &= l.out_proj.kind == Projection::Kind::Binary;
        f16 |= l.in_proj.kind == Projection::Kind::F16 || l.out_proj.kind == Projection::Kind::F16;
    }
    if (in_bin && out_bin) return "binary";
    if (in_bin) return "binary-in_proj";
    return f16 ? "f16" : "f32";
}

const Tokenizer& Engine::tokenizer() const {
    if (!tokenizer_) throw std::runtime_error("the deployment file has no tokenizer (export with --tokenizer)");
    return *tokenizer_;
}

size_t Engine::file_bytes() const {
    return file_->file_size();
}

uint64_t Engine::weight_bytes_per_token() const {
    const Mamba2Config& c = cfg_;
    // The head (the embedding row lookup is negligible).
    uint64_t b =
        embq8_ ? (uint64_t)c.vocab_size * (c.d_model + 4) : (uint64_t)c.vocab_size * c.d_model * (emb16_ ? 2 : 4);
    for (const auto& l : layers_) {
        b += l.in_proj.bytes() + l.out_proj.bytes();
        b += 4ull * (c.d_model + (uint64_t)c.conv_dim() * (c.ssm.d_conv + 1) + 3ull * c.nheads() + c.d_inner());
    }
    return b;
}

void Engine::alloc_state() {
    const Mamba2Config& c = cfg_;
    const size_t n = (size_t)c.n_layer * c.nheads() * c.ssm.headdim * c.ssm.d_state;
    conv_state_.assign((size_t)c.n_layer * c.conv_dim() * c.ssm.d_conv, 0.0f);
    conv_pos_.assign(c.n_layer, 0);
    ssm_state_.clear();
    ssm_state_.shrink_to_fit();
    ssm_state16_.clear();
    ssm_state16_.shrink_to_fit();
    if (opt_.state == kernels::StateType::F32)
        ssm_state_.assign(n, 0.0f);
    else
        ssm_state16_.assign(n, 0);  // +0 in both bf16 and fp16
    state_bound_.assign((size_t)c.n_layer * c.nheads(), 0.0f);
}

void Engine::set_state_precision(kernels::StateType t) {
    opt_.state = t;
    alloc_state();
    history_.clear();
}

void Engine::set_prefill_block(int tokens) {
    if (tokens < 1) throw std::invalid_argument("prefill block must be >= 1 token");
    opt_.prefill_block = tokens;
}

uint64_t Engine::state_bytes() const {
    return conv_state_.size() * sizeof(float) + ssm_state_.size() * sizeof(float) +
           ssm_state16_.size() * sizeof(uint16_t);
}

float Engine::state_max_abs(int layer, int head) const {
    if (ssm_state16_.empty()) return 0;
    const size_t per_head = (size_t)cfg_.ssm.headdim * cfg_.ssm.d_state;
    const uint16_t* s = ssm_state16_.data() + ((size_t)layer * cfg_.nheads() + head) * per_head;
    float m = 0;
    for (size_t i = 0; i < per_head; ++i) {
        const float v = opt_.state == kernels::StateType::BF16 ? base::bf16_to_f32(s[i]) : base::f16_to_f32(s[i]);
        m = std::max(m, std::fabs(v));
    }
    return m;
}

float Engine::state_abs_bound(int layer, int head) const {
    return state_bound_.empty() || ssm_state16_.empty() ? 0 : state_bound_[(size_t)layer * cfg_.nheads() + head];
}

void Engine::reset() {
    std::fill(conv_state_.begin(), conv_state_.end(), 0.0f);
    std::fill(conv_pos_.begin(), conv_pos_.end(), 0);
    std::fill(ssm_state_.begin(), ssm_state_.end(), 0.0f);
    std::fill(ssm_state16_.begin(), ssm_state16_.end(), (uint16_t)0);
    std::fill(state_bound_.begin(), state_bound_.end(), 0.0f);
    history_.clear();
}

// Causal depthwise conv over the last d_conv inputs, then SiLU, for channels
// [c0, c1): their input goes into ring row `pos` (the oldest), the taps read
// oldest to newest. Channels are independent, so B and C (shared by the heads)
// are convolved first and each head's x channels inside its own region
// (mix_heads), on whichever thread runs it, with the same result.
void Engine::conv_channels(int li, int pos, const float* in, float* out, int c0, int c1) {
    const int cd = cfg_.conv_dim(), K = cfg_.ssm.d_conv;
    const LayerWeights& L = layers_[li];
    float* ring = conv_state_.data() + (size_t)li * cd * K;
    std::memcpy(ring + (size_t)pos * cd + c0, in + c0, sizeof(float) * (c1 - c0));
    const float* taps[16];
    const float** tp = K <= 16 ? taps : new const float*[K];
    for (int k = 0; k < K; ++k) tp[k] = ring + (size_t)((pos + 1 + k) % K) * cd + c0;
    kernels::conv_silu(cx_, tp, K, L.conv_wT + c0, cd, L.conv_b ? L.conv_b + c0 : nullptr, c1 - c0, out + c0);
    if (tp != taps) delete[] tp;
}

// Heads [h0, h1) of one token: the conv of their x channels (ring row `pos`;
// B and C are already in xbc), the SSM step, the SiLU gate y·silu(z) and each
// head's Σy² for the gated RMSNorm, all while the head's values are in this
// core's cache.
void Engine::mix_heads(int li, int pos, int h0, int h1, const float* xbc_in, float* xbc, const float* dt,
                       const float* z, float* y, double* ssq) {
    const Mamba2Config& c = cfg_;
    const int hd = c.ssm.headdim, di = c.d_inner();
    conv_channels(li, pos, xbc_in, xbc, h0 * hd, h1 * hd);
    const float* B = xbc + di;
    ssm_heads(li, h0, h1, xbc, B, B + (size_t)c.ssm.ngroups * c.ssm.d_state, dt, y);
    const float* w = layers_[li].gnorm;
    for (int h = h0; h < h1; ++h) {
        float* yh = y + (size_t)h * hd;
        kernels::silu_mul(cx_, yh, z + (size_t)h * hd, hd);
        ssq[h] = kernels::sum_squares(cx_, yh, hd);
        if (scale_after_out_proj()) kernels::scale_rows(yh, 1.0f, w + (size_t)h * hd, hd, yh);  // y·w, exact
    }
}

// The gated RMSNorm's scale of the one group (scale_after_out_proj), from
// mix_heads' per-head sums added in head order, as gated_norm adds them.
float Engine::gate_scale(const double* ssq) const {
    double ss = 0;
    for (int h = 0; h < cfg_.nheads(); ++h) ss += ssq[h];
    return kernels::rms_scale(ss, cfg_.d_inner(), (float)cfg_.norm_epsilon);
}

// Gated RMSNorm per group of d_inner/ngroups channels, rmsnorm(y·silu(z))·w,
// from mix_heads' gated y and per-head sums (added in head order).
void Engine::gated_norm(int li, const float* y, const double* ssq, float* out) const {
    const Mamba2Config& c = cfg_;
    const int ng = c.ssm.ngroups, hpg = c.nheads() / ng, gs = c.d_inner() / ng;
    for (int g = 0; g < ng; ++g) {
        double ss = 0;
        for (int h = g * hpg; h < (g + 1) * hpg; ++h) ss += ssq[h];
        const float r = kernels::rms_scale(ss, gs, (float)c.norm_epsilon);
        kernels::scale_rows(y + (size_t)g * gs, r, layers_[li].gnorm + (size_t)g * gs, gs, out + (size_t)g * gs);
    }
}

void Engine::ssm_heads(int li, int h0, int h1, const float* x, const float* B, const float* C, const float* dt,
                       float* y) {
    const Mamba2Config& c = cfg_;
    const LayerWeights& L = layers_[li];
    const int nh = c.nheads(), hd = c.ssm.headdim, ns = c.ssm.d_state, heads_per_group = nh / c.ssm.ngroups;
    const size_t per_head = (size_t)hd * ns, layer_off = (size_t)li * nh * per_head;
    int bmax_group = -1;
    float bmax = 0;
    for (int h = h0; h < h1; ++h) {
        const float dth = softplus(dt[h] + L.dt_bias[h]);
        const float dA = std::exp(-dth * std::exp(L.A_log[h]));
        const int g = h / heads_per_group;
        if (opt_.state == kernels::StateType::F32)
            kernels::ssm_head_step(cx_, ssm_state_.data() + layer_off + h * per_head, hd, ns, dA, dth,
                                   x + (size_t)h * hd, B + (size_t)g * ns, C + (size_t)g * ns, L.D[h],
                                   y + (size_t)h * hd);
        else {
            // The f16 state's guard. The new state's |h| is at most dA·|h| + dt·max|x|·max|B| (times 1 + 2^-10
            // for the float and f16 roundings, plus an absolute 2^-10 for f16's subnormals) over the bound
            // held for the last one. While that stays under the limit, the kernel skips its exact max
            // (13-16 % of its time); past it, the exact max decides and the bound restarts from it. bf16
            // has float32's range: no guard.
            const float* xh = x + (size_t)h * hd;
            const float* Bg = B + (size_t)g * ns;
            auto step = [&](bool max_abs) {
                return kernels::ssm_head_step16(cx_, ssm_state16_.data() + layer_off + h * per_head, opt_.state, hd, ns,
                                                dA, dth, xh, Bg, C + (size_t)g * ns, L.D[h], y + (size_t)h * hd,
                                                max_abs);
            };
            if (opt_.state == kernels::StateType::BF16) {
                step(false);
                continue;
            }
            constexpr float kMargin = 1.0f + 0x1p-10f, kFloor = 0x1p-10f;
            if (g != bmax_group) {  // max |B| once per group (B is shared by its heads)
                bmax = kernels::max_abs(cx_, Bg, ns);
                bmax_group = g;
            }
            float& bound = state_bound_[(size_t)li * nh + h];
            const float next = (dA * bound + dth * kernels::max_abs(cx_, xh, hd) * bmax) * kMargin + kFloor;
            if (next <= kF16StateLimit) {
                step(false);
                bound = next;
                continue;
            }
            const float m = step(true);
            bound = m * kMargin + kFloor;
            if (!(m <= kF16StateLimit)) f16_near_overflow_ = true;
        }
    }
}

void Engine::start_f32_state(size_t refeed) {
    f16_near_overflow_ = false;
    std::fprintf(stderr,
                 "[bimamba] the float16 SSM state passed %g (float16 ends at 65504): this engine now keeps a float32 "
                 "state and re-feeds the %zu tokens of the sequence\n",
                 (double)kF16StateLimit, refeed);
    ++state_fallbacks_;
    set_state_precision(kernels::StateType::F32);  // a fresh, empty float32 state
}

void Engine::fall_back_to_f32_state() {
    const std::vector<int> seq = history_;
    start_f32_state(seq.size());
    prefill(seq);  // float32 from the start: the same logits as an f32 engine
}

void Engine::layer_step(int li, float* res) {
    const Mamba2Config& c = cfg_;
    const LayerWeights& L = layers_[li];
    const int dm = c.d_model, di = c.d_inner(), cd = c.conv_dim(), nh = c.nheads(), hd = c.ssm.headdim;
    const int ns = c.ssm.d_state;
    const float eps = (float)c.norm_epsilon;

    PartClock clock(profiling_);
    // The input RMSNorm inside the in_proj's hand-off (apply_in_pool), counted in its time.
    auto normed = [&](float* w) {
        kernels::rmsnorm(cx_, res, L.norm, dm, eps, w);
        return w;
    };
    const float* z = zxbcdt_.data();
    const float* xbc_in = z + di;
    const float* dt = xbc_in + cd;
    int& pos = conv_pos_[li];
    // The conv of B and C (conv channels [di, cd), in_proj rows [2·di, di + cd)) by the threads that
    // finish those rows, also inside the hand-off.
    auto conv_bc = [&](float*, int r0, int r1) {
        const int c0 = std::max(r0 - di, di), c1 = std::min(r1 - di, cd);
        if (c0 < c1) conv_channels(li, pos, xbc_in, xbc_.data(), c0, c1);
    };
    L.in_proj.apply_in_pool(cx_, normed, conv_bc, zxbcdt_.data(), scratch_.data());
    clock.tick(prof_.in_proj);
    // Per head: conv of x, h = exp(dt·A)·h + dt·x⊗B, y = C·h + D·x, y·silu(z), Σy².
    auto heads = [&](int h0, int h1) {
        mix_heads(li, pos, h0, h1, xbc_in, xbc_.data(), dt, z, y_.data(), ssq_.data());
    };
    if ((long long)nh * hd * ns < (1 << 15))
        heads(0, nh);
    else
        cx_.threads().parallel_for(nh, 1, heads);
    pos = (pos + 1) % c.ssm.d_conv;
    clock.tick(prof_.ssm);
    float r = 1.0f;  // the gated RMSNorm's scale where it follows the out_proj
    const float* gated = y_.data();
    if (scale_after_out_proj())
        r = gate_scale(ssq_.data());
    else {
        gated_norm(li, y_.data(), ssq_.data(), h_.data());
        gated = h_.data();
    }
    clock.tick(prof_.gate_norm);
    // The residual add on each thread's rows as the out_proj finishes them, counted in its time.
    auto add_to_residual = [&](float* out, int r0, int r1) {
        for (int i = r0; i < r1; ++i) res[i] += r * out[i];
    };
    L.out_proj.apply_in_pool(
        cx_, [&](float*) { return gated; }, add_to_residual, out_.data(), scratch_.data());
    clock.tick(prof_.out_proj);
}

const float* Engine::embed_row(int token, float* r) const {
    const int dm = cfg_.d_model;
    if (embq8_) {
        const float s = embq8_scale_[token];
        for (int i = 0; i < dm; ++i) r[i] = s * (float)embq8_[(size_t)token * dm + i];
    } else if (emb16_)
        for (int i = 0; i < dm; ++i) r[i] = base::f16_to_f32(emb16_[(size_t)token * dm + i]);
    else
        std::memcpy(r, emb32_ + (size_t)token * dm, sizeof(float) * dm);
    return r;
}

// One block of T prompt tokens through every layer: per layer the
// projections run as GEMMs over the block, the conv and the scan go token
// by token in order (the scan per head over the whole block, so one head's
// state stays in cache), with exactly the arithmetic of layer_step.
void Engine::prefill_block_run(const int* tokens, int T, bool last, float* all_logits) {
    const Mamba2Config& c = cfg_;
    const int dm = c.d_model, di = c.d_inner(), cd = c.conv_dim(), nh = c.nheads();
    const int ns = c.ssm.d_state, ipo = c.in_proj_out();
    const float eps = (float)c.norm_epsilon;
    const size_t wide = std::max(dm, di);
    if (b_res_.size() < (size_t)T * dm) {
        b_res_.resize((size_t)T * dm);
        b_h_.resize((size_t)T * wide);
        b_zx_.resize((size_t)T * ipo);
        b_xbc_.resize((size_t)T * cd);
        b_y_.resize((size_t)T * di);
        b_out_.resize((size_t)T * dm);
        b_ssq_.resize((size_t)T * nh);
        b_r_.resize(T);
        size_t sc = 0;
        for (const auto& l : layers_) sc = std::max({sc, l.in_proj.scratch_floats(T), l.out_proj.scratch_floats(T)});
        b_scratch_.resize(sc);
    }
    PartClock clock(profiling_);
    for (int j = 0; j < T; ++j) embed_row(tokens[j], b_res_.data() + (size_t)j * dm);
    clock.tick(pprof_.embed);
    for (int li = 0; li < c.n_layer; ++li) {
        const LayerWeights& L = layers_[li];
        for (int j = 0; j < T; ++j)
            kernels::rmsnorm(cx_, b_res_.data() + (size_t)j * dm, L.norm, dm, eps, b_h_.data() + (size_t)j * wide);
        clock.tick(pprof_.norm);
        L.in_proj.apply_batch(cx_, b_h_.data(), wide, T, b_zx_.data(), ipo, b_scratch_.data());
        clock.tick(pprof_.in_proj);
        // As layer_step token by token: B and C for the block, then per head
        // the block's tokens in order (one head's state stays in cache).
        const int K = c.ssm.d_conv, pos0 = conv_pos_[li];
        for (int j = 0; j < T; ++j)
            conv_channels(li, (pos0 + j) % K, b_zx_.data() + (size_t)j * ipo + di, b_xbc_.data() + (size_t)j * cd, di,
                          cd);
        clock.tick(pprof_.conv);
        auto heads = [&](int h0, int h1) {
            for (int j = 0; j < T; ++j) {
                const float* zj = b_zx_.data() + (size_t)j * ipo;
                mix_heads(li, (pos0 + j) % K, h0, h1, zj + di, b_xbc_.data() + (size_t)j * cd, zj + di + cd, zj,
                          b_y_.data() + (size_t)j * di, b_ssq_.data() + (size_t)j * nh);
            }
        };
        if ((long long)nh * c.ssm.headdim * ns * T < (1 << 15))
            heads(0, nh);
        else
            cx_.threads().parallel_for(nh, 1, heads);
        conv_pos_[li] = (pos0 + T) % K;
        clock.tick(pprof_.ssm);
        const bool after = scale_after_out_proj();  // as layer_step
        for (int j = 0; j < T; ++j)
            if (after)
                b_r_[j] = gate_scale(b_ssq_.data() + (size_t)j * nh);
            else {
                b_r_[j] = 1.0f;
                gated_norm(li, b_y_.data() + (size_t)j * di, b_ssq_.data() + (size_t)j * nh,
                           b_h_.data() + (size_t)j * wide);
            }
        clock.tick(pprof_.gate_norm);
        if (after)
            L.out_proj.apply_batch(cx_, b_y_.data(), di, T, b_out_.data(), dm, b_scratch_.data());
        else
            L.out_proj.apply_batch(cx_, b_h_.data(), wide, T, b_out_.data(), dm, b_scratch_.data());
        clock.tick(pprof_.out_proj);
        for (int j = 0; j < T; ++j)
            for (int i = 0; i < dm; ++i) b_res_[(size_t)j * dm + i] += b_r_[j] * b_out_[(size_t)j * dm + i];
        clock.tick(pprof_.residual);
    }
    for (int j = 0; j < T; ++j) history_.push_back(tokens[j]);
    if (profiling_) pprof_.tokens += T;
    if (all_logits) {  // every position: the final norm of each row, then one head GEMM
        for (int j = 0; j < T; ++j)
            kernels::rmsnorm(cx_, b_res_.data() + (size_t)j * dm, norm_f_, dm, eps, b_h_.data() + (size_t)j * wide);
        head_rows(b_h_.data(), wide, T, all_logits);
        clock.tick(pprof_.head);
        if (last)
            std::memcpy(logits_.data(), all_logits + (size_t)(T - 1) * c.vocab_size, sizeof(float) * c.vocab_size);
        return;
    }
    if (!last) return;
    std::memcpy(residual_.data(), b_res_.data() + (size_t)(T - 1) * dm, sizeof(float) * dm);
    kernels::rmsnorm(cx_, residual_.data(), norm_f_, dm, eps, h_.data());
    head(h_.data(), logits_.data());
    clock.tick(pprof_.head);
}

// Tied head: the first vocab_size rows of the (padded) embedding.
void Engine::head(const float* h, float* logits) const {
    const Mamba2Config& c = cfg_;
    if (embq8_)
        kernels::q8gemv(cx_, embq8_, embq8_scale_, c.vocab_size, c.d_model, h, logits);
    else if (emb16_)
        kernels::f16gemv(cx_, emb16_, c.vocab_size, c.d_model, h, logits);
    else
        kernels::f32gemv(cx_, emb32_, c.vocab_size, c.d_model, h, logits);
}

void Engine::head_rows(const float* h, size_t hstride, int T, float* logits) const {
    const Mamba2Config& c = cfg_;
    if (embq8_)
        kernels::q8gemm(cx_, embq8_, embq8_scale_, c.vocab_size, c.d_model, h, hstride, T, logits,
                        (size_t)c.vocab_size);
    else  // the float heads token by token: the same sums as step()
        for (int t = 0; t < T; ++t) head(h + t * hstride, logits + (size_t)t * c.vocab_size);
}

void Engine::check_token(int t) const {
    if (t < 0 || t >= cfg_.vocab_size)
        throw std::out_of_range("token id " + std::to_string(t) + " outside the vocabulary [0, " +
                                std::to_string(cfg_.vocab_size) + ")");
}

void Engine::check_tokens(const std::vector<int>& tokens, const char* what) const {
    if (tokens.empty()) throw std::invalid_argument(std::string(what) + ": empty prompt");
    for (int t : tokens) check_token(t);
}

const std::vector<float>& Engine::step(int token) {
    const Mamba2Config& c = cfg_;
    check_token(token);
    const int dm = c.d_model;
    float* r = residual_.data();
    PartClock clock(profiling_);
    embed_row(token, r);
    clock.tick(prof_.embed);
    for (int l = 0; l < c.n_layer; ++l) layer_step(l, r);
    clock.skip();  // the layers time their own parts
    kernels::rmsnorm(cx_, r, norm_f_, dm, (float)c.norm_epsilon, h_.data());
    head(h_.data(), logits_.data());
    clock.tick(prof_.head);
    if (profiling_) ++prof_.tokens;
    history_.push_back(token);
    if (f16_near_overflow_) fall_back_to_f32_state();
    return logits_;
}

const std::vector<float>& Engine::prefill(const std::vector<int>& tokens) {
    check_tokens(tokens, "prefill");
    if (opt_.prefill_block <= 1 || tokens.size() == 1) {
        for (int t : tokens) step(t);
        return logits_;
    }
    const int n = (int)tokens.size(), B = opt_.prefill_block;
    for (int i = 0; i < n; i += B) prefill_block_run(tokens.data() + i, std::min(B, n - i), i + B >= n);
    if (f16_near_overflow_) fall_back_to_f32_state();
    return logits_;
}

void Engine::prefill_logits(const std::vector<int>& tokens, float* logits) {
    check_tokens(tokens, "prefill_logits");
    const size_t before = history_.size();
    const int n = (int)tokens.size(), B = std::max(1, opt_.prefill_block), V = cfg_.vocab_size;
    for (int i = 0; i < n; i += B)
        prefill_block_run(tokens.data() + i, std::min(B, n - i), i + B >= n, logits + (size_t)i * V);
    if (!f16_near_overflow_) return;
    const std::vector<int> earlier(history_.begin(), history_.begin() + (long)before);
    start_f32_state(history_.size());
    if (!earlier.empty()) prefill(earlier);
    prefill_logits(tokens, logits);  // float32 from the start: no second fallback
}

namespace {
// Earliest position of any stop string in `text` at or after `from`, or npos.
size_t find_stop(const std::string& text, const std::vector<std::string>& stops, size_t from) {
    size_t best = std::string::npos;
    for (const auto& s : stops) {
        if (s.empty()) continue;
        const size_t start = from > s.size() ? from - s.size() : 0;
        const size_t p = text.find(s, start);
        if (p != std::string::npos && p < best) best = p;
    }
    return best;
}
}  // namespace

GenerationResult Engine::continue_with(const std::vector<int>& prompt_tokens, const SamplingParams& p,
                                       const std::function<void(const std::string&)>& on_text) {
    GenerationResult r;
    r.prompt_tokens = (int)prompt_tokens.size();
    Sampler sampler(p);
    auto t0 = Clock::now();
    std::vector<float> logits = prefill(prompt_tokens);
    auto t1 = Clock::now();
    r.prefill_seconds = secs(t0, t1);
    const int eos = tokenizer_ ? tokenizer_->eos_id() : -1;
    r.stop_reason = "max_tokens";
    size_t emitted = 0;
    for (int i = 0; i < p.max_tokens; ++i) {
        const int tok = sampler.sample(logits, history_);
        // Every sampled token is fed back, so the state always covers the whole
        // conversation (chat continues from it).
        logits = step(tok);
        if (tok == eos) {
            r.stop_reason = "eos";
            break;
        }
        r.tokens.push_back(tok);
        if (tokenizer_) {
            std::string text = tokenizer_->decode(r.tokens);
            const size_t stop = find_stop(text, p.stop, emitted);
            if (stop != std::string::npos) {
                text.resize(stop);
                if (on_text && text.size() > emitted) on_text(text.substr(emitted));
                r.text = text;
                r.stop_reason = "stop";
                break;
            }
            // Hold back a tail that could still become a stop string.
            size_t hold = 0;
            for (const auto& s : p.stop) hold = std::max(hold, s.empty() ? 0 : s.size() - 1);
            const size_t safe = text.size() > hold ? text.size() - hold : 0;
            if (on_text && safe > emitted) on_text(text.substr(emitted, safe - emitted));
            emitted = std::max(emitted, safe);
            r.text = text;
        }
    }
    if (r.stop_reason != "stop" && on_text && r.text.size() > emitted) on_text(r.text.substr(emitted));
    r.decode_seconds = secs(t1, Clock::now());
    return r;
}

GenerationResult Engine::generate(const std::string& prompt, const SamplingParams& p, bool add_bos,
                                  const std::function<void(const std::string&)>& on_text) {
    reset();
    std::vector<int> ids = tokenizer().encode(prompt);
    if (add_bos && tokenizer().bos_id() >= 0) ids.insert(ids.begin(), tokenizer().bos_id());
    if (ids.empty()) throw std::invalid_argument("generate: empty prompt");
    return continue_with(ids, p, on_text);
}

std::string chat_turn(const std::string& user_message, bool first_turn) {
    return std::string(first_turn ? "" : "\n") + "User: " + user_message + "\nAssistant:";
}

}  // namespace bimamba::engine
