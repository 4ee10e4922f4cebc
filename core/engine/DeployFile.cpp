#include "core/engine/DeployFile.h"

#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "core/base/ModelSource.h"
#include "core/data/Tokenizer.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/Q8Gemv.h"

namespace fs = std::filesystem;

namespace bimamba::engine {

using base::Binarize;
using base::Mamba2Config;
using base::find_tokenizer;
using base::resolve_checkpoint;
using data::Tokenizer;

FloatStorage float_storage_from_string(const std::string& s) {
    if (s == "f16" || s == "fp16") return FloatStorage::F16;
    if (s == "f32" || s == "fp32") return FloatStorage::F32;
    throw std::invalid_argument("unknown float storage '" + s + "' (f16 or f32)");
}

HeadStorage head_storage_from_string(const std::string& s) {
    if (s.empty() || s == "auto") return HeadStorage::Auto;
    if (s == "f16" || s == "fp16") return HeadStorage::F16;
    if (s == "f32" || s == "fp32") return HeadStorage::F32;
    if (s == "q8" || s == "int8") return HeadStorage::Q8;
    throw std::invalid_argument("unknown head storage '" + s + "' (auto, f16, f32 or q8)");
}

HeadStorage resolve_head(HeadStorage h, bool binarized, FloatStorage storage) {
    if (h != HeadStorage::Auto) return h;
    return binarized && storage == FloatStorage::F16 ? HeadStorage::Q8 : HeadStorage::AsFloat;
}

const char* head_storage_name(HeadStorage h, FloatStorage storage) {
    switch (h) {
        case HeadStorage::Q8:
            return "q8";
        case HeadStorage::F16:
            return "f16";
        case HeadStorage::F32:
            return "f32";
        default:
            return storage == FloatStorage::F16 ? "f16" : "f32";
    }
}

uint64_t fp16_model_bytes(const Mamba2Config& cfg) {
    return (uint64_t)cfg.num_parameters() * 2;
}

namespace {

// Owns the buffers handed to SafetensorsWriter until write() returns.
struct Builder {
    base::SafetensorsWriter w;
    std::deque<std::vector<uint8_t>> bufs;
    uint64_t packed_bits = 0;

    void add_bytes(const std::string& name, base::DType dt, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
        bufs.push_back(std::move(bytes));
        w.add(name, dt, std::move(shape), bufs.back().data(), bufs.back().size());
    }
    void add_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
        std::vector<uint8_t> b(v.size() * 4);
        std::memcpy(b.data(), v.data(), b.size());
        add_bytes(name, base::DType::F32, std::move(shape), std::move(b));
    }
    // The tied embedding/head: float, or int8 rows + a scale per row (format version 2).
    bool q8_head = false;
    void add_embedding(int rows, int cols, const std::vector<float>& v, FloatStorage s, HeadStorage h) {
        if (h == HeadStorage::Q8) {
            std::vector<uint8_t> q((size_t)rows * cols);
            std::vector<float> scale(rows);
            kernels::quantize_rows_q8(v.data(), rows, cols, reinterpret_cast<int8_t*>(q.data()), scale.data());
            add_bytes("backbone.embedding.q8", base::DType::I8, {rows, cols}, std::move(q));
            add_f32("backbone.embedding.scale", {rows}, scale);
            q8_head = true;
            return;
        }
        if (h == HeadStorage::F16) s = FloatStorage::F16;
        if (h == HeadStorage::F32) s = FloatStorage::F32;
        add_float("backbone.embedding.weight", {rows, cols}, v, s);
    }
    void add_float(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v, FloatStorage s) {
        if (s == FloatStorage::F32) return add_f32(name, std::move(shape), v);
        std::vector<uint8_t> b(v.size() * 2);
        auto* h = reinterpret_cast<uint16_t*>(b.data());
        for (size_t i = 0; i < v.size(); ++i) h[i] = base::f32_to_f16(v[i]);
        add_bytes(name, base::DType::F16, std::move(shape), std::move(b));
    }
    // Sign matrix (rows × cols floats, sign taken) + α, β per input column.
    void add_binary(const std::string& prefix, int rows, int cols, const std::vector<float>& w,
                    const std::vector<float>& alpha, const std::vector<float>& beta) {
        std::vector<uint8_t> packed(kernels::bit_row_stride(cols) * rows);
        kernels::pack_signs(w.data(), rows, cols, packed.data());
        add_bytes(prefix + ".signs", base::DType::U8, {rows, (int64_t)kernels::bit_row_stride(cols)},
                  std::move(packed));
        add_f32(prefix + ".wscale", {cols}, alpha);
        add_f32(prefix + ".wbias", {cols}, beta);
        packed_bits += (uint64_t)rows * cols;
    }
};

std::string layer(int i) {
    return "backbone.layers." + std::to_string(i) + ".";
}

void set_common_metadata(Builder& b, const Mamba2Config& cfg, const std::string& kind, const std::string& source) {
    b.w.set_metadata("format", kDeployFormat);
    b.w.set_metadata("format_version", b.q8_head ? "2" : "1");
    b.w.set_metadata("head", b.q8_head ? "q8" : "float");
    b.w.set_metadata("config", cfg.to_json().dump());
    b.w.set_metadata("weights", kind);
    b.w.set_metadata("sign_packing",
                     "U8 [rows, ceil(cols/8)], row-major; column c is bit c%8 (LSB first) of byte c/8; "
                     "bit 1 = -1, bit 0 = +1; W_hat[o,i] = wscale[i]*s[o,i] + wbias[i]");
    b.w.set_metadata("source", source);
}

std::vector<float> read_floats(const base::SafetensorsFile& f, const std::string& name, std::vector<int64_t> shape) {
    if (!f.contains(name)) throw std::runtime_error("checkpoint '" + f.path() + "' has no tensor '" + name + "'");
    const auto& t = f.get(name);
    int64_t want = 1;
    for (auto s : shape) want *= s;
    if (t.numel() != want) {
        std::ostringstream os;
        os << "checkpoint tensor '" << name << "' has " << t.numel() << " elements, the config implies " << want;
        throw std::runtime_error(os.str());
    }
    std::vector<float> v(want);
    for (int64_t i = 0; i < want; ++i) {
        switch (t.dtype) {
            case base::DType::F32: {
                float x;
                std::memcpy(&x, t.data + 4 * i, 4);
                v[i] = x;
                break;
            }
            case base::DType::F64: {
                double x;
                std::memcpy(&x, t.data + 8 * i, 8);
                v[i] = (float)x;
                break;
            }
            case base::DType::F16: {
                uint16_t x;
                std::memcpy(&x, t.data + 2 * i, 2);
                v[i] = base::f16_to_f32(x);
                break;
            }
            case base::DType::BF16: {
                uint16_t x;
                std::memcpy(&x, t.data + 2 * i, 2);
                v[i] = base::bf16_to_f32(x);
                break;
            }
            default:
                throw std::runtime_error("checkpoint tensor '" + name + "' has dtype " + base::dtype_name(t.dtype) +
                                         ", expected a float type");
        }
    }
    return v;
}

void add_tokenizer(Builder& b, const std::string& path, const Mamba2Config& cfg) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read tokenizer '" + path + "'");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.empty()) throw std::runtime_error("tokenizer '" + path + "' is empty");
    // Refused here rather than when the file is run: a tokenizer that does not load or does not fit the model.
    const auto tok = Tokenizer::from_serialized(std::string(bytes.begin(), bytes.end()));
    if (tok->vocab_size() > cfg.vocab_size)
        throw std::runtime_error("tokenizer '" + path + "' has " + std::to_string(tok->vocab_size()) +
                                 " pieces, more than the model's vocabulary (" + std::to_string(cfg.vocab_size) + ")");
    const int64_t n = (int64_t)bytes.size();  // before the move: argument order is unspecified
    b.add_bytes("tokenizer.model", base::DType::U8, {n}, std::move(bytes));
}

uint64_t file_size(const std::string& p) {
    return (uint64_t)fs::file_size(p);
}

}  // namespace

ExportReport export_checkpoint(const std::string& model, const std::string& output, const ExportOptions& opt) {
    const std::string dir = resolve_checkpoint(model);  // a checkpoint folder, a file in one, or a run directory
    fs::path d(dir);
    fs::path st_path = fs::is_regular_file(model) ? fs::path(model) : d / "model.safetensors";
    fs::path cfg_path = d / "config.json";
    if (!fs::exists(cfg_path)) throw std::runtime_error("no config.json in '" + dir + "'");
    if (!fs::exists(st_path)) throw std::runtime_error("no model.safetensors in '" + dir + "'");
    const Mamba2Config cfg = Mamba2Config::load(cfg_path.string());
    cfg.validate();
    if (cfg.d_intermediate != 0) throw std::runtime_error("the engine supports d_intermediate = 0 only (no MLP)");
    if (!cfg.tie_embeddings) throw std::runtime_error("the engine supports tied embeddings only");
    auto f = base::SafetensorsFile::open(st_path.string());

    const int dm = cfg.d_model, di = cfg.d_inner(), cd = cfg.conv_dim(), nh = cfg.nheads(), ip = cfg.in_proj_out();
    Builder b;
    // mamba_ssm names the embedding "backbone.embedding", transformers' Mamba2ForCausalLM "backbone.embeddings";
    // every other tensor has the same name in both.
    const std::string emb = f->contains("backbone.embedding.weight") || !f->contains("backbone.embeddings.weight")
                                ? "backbone.embedding.weight"
                                : "backbone.embeddings.weight";
    const HeadStorage head = resolve_head(opt.head, cfg.binarize != Binarize::None, opt.storage);
    b.add_embedding(cfg.padded_vocab(), dm, read_floats(*f, emb, {cfg.padded_vocab(), dm}), opt.storage, head);
    b.add_f32("backbone.norm_f.weight", {dm}, read_floats(*f, "backbone.norm_f.weight", {dm}));
    for (int i = 0; i < cfg.n_layer; ++i) {
        const std::string L = layer(i), M = L + "mixer.";
        b.add_f32(L + "norm.weight", {dm}, read_floats(*f, L + "norm.weight", {dm}));
        auto proj = [&](const std::string& name, int rows, int cols, bool bin) {
            auto w = read_floats(*f, M + name + ".weight", {rows, cols});
            if (bin)
                b.add_binary(M + name, rows, cols, w, read_floats(*f, M + name + ".wscale", {1, cols}),
                             read_floats(*f, M + name + ".wbias", {1, cols}));
            else
                b.add_float(M + name + ".weight", {rows, cols}, w, opt.storage);
        };
        proj("in_proj", ip, dm, cfg.binarize_in_proj());
        b.add_f32(M + "conv1d.weight", {cd, 1, cfg.ssm.d_conv},
                  read_floats(*f, M + "conv1d.weight", {cd, 1, cfg.ssm.d_conv}));
        if (cfg.ssm.conv_bias) b.add_f32(M + "conv1d.bias", {cd}, read_floats(*f, M + "conv1d.bias", {cd}));
        b.add_f32(M + "dt_bias", {nh}, read_floats(*f, M + "dt_bias", {nh}));
        b.add_f32(M + "A_log", {nh}, read_floats(*f, M + "A_log", {nh}));
        b.add_f32(M + "D", {nh}, read_floats(*f, M + "D", {nh}));
        b.add_f32(M + "norm.weight", {di}, read_floats(*f, M + "norm.weight", {di}));
        proj("out_proj", dm, di, cfg.binarize_out_proj());
    }

    ExportReport r;
    r.config = cfg;
    r.output = output;
    const std::string tok = !opt.tokenizer_path.empty() ? opt.tokenizer_path : find_tokenizer(dir);
    if (!tok.empty()) {
        add_tokenizer(b, tok, cfg);
        r.has_tokenizer = true;
        r.tokenizer_source = tok;
    } else if (!opt.allow_no_tokenizer) {
        throw std::runtime_error("no tokenizer found for '" + dir +
                                 "' (looked beside the checkpoint, in its run's prepared data and in the folders "
                                 "above it): pass --tokenizer FILE (a SentencePiece tokenizer.model)");
    }
    const std::string kind = cfg.binarize == Binarize::None
                                 ? (opt.storage == FloatStorage::F16 ? "f16" : "f32")
                                 : (cfg.binarize == Binarize::InProj ? "binary-in_proj" : "binary");
    set_common_metadata(b, cfg, kind, fs::absolute(d).string());
    b.w.set_metadata("float_storage", opt.storage == FloatStorage::F16 ? "f16" : "f32");
    b.w.write(output);
    r.file_bytes = file_size(output);
    r.fp16_bytes = fp16_model_bytes(cfg);
    r.packed_bits = b.packed_bits;
    r.head = head_storage_name(head, opt.storage);
    return r;
}

ExportReport write_random_deploy(Mamba2Config cfg, bool binary, FloatStorage storage, const std::string& output,
                                 uint64_t seed, HeadStorage head) {
    cfg.binarize = binary ? Binarize::InOutProj : Binarize::None;
    cfg.validate();
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    auto next = [&] {  // splitmix64
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    };
    auto uni = [&](float lo, float hi) { return lo + (hi - lo) * (float)((next() >> 40) * (1.0 / 16777216.0)); };
    auto vec = [&](size_t n, float lo, float hi) {
        std::vector<float> v(n);
        for (auto& x : v) x = uni(lo, hi);
        return v;
    };
    const int dm = cfg.d_model, di = cfg.d_inner(), cd = cfg.conv_dim(), nh = cfg.nheads(), ip = cfg.in_proj_out();
    Builder b;
    head = resolve_head(head, binary, storage);
    b.add_embedding(cfg.padded_vocab(), dm, vec((size_t)cfg.padded_vocab() * dm, -0.05f, 0.05f), storage, head);
    b.add_f32("backbone.norm_f.weight", {dm}, std::vector<float>(dm, 1.0f));
    for (int i = 0; i < cfg.n_layer; ++i) {
        const std::string L = layer(i), M = L + "mixer.";
        b.add_f32(L + "norm.weight", {dm}, std::vector<float>(dm, 1.0f));
        auto proj = [&](const std::string& name, int rows, int cols) {
            const float bound = 1.0f / std::sqrt((float)cols);
            auto w = vec((size_t)rows * cols, -bound, bound);
            if (binary)
                b.add_binary(M + name, rows, cols, w, vec(cols, 0.3f * bound, 0.7f * bound),
                             vec(cols, -0.05f * bound, 0.05f * bound));
            else
                b.add_float(M + name + ".weight", {rows, cols}, w, storage);
        };
        proj("in_proj", ip, dm);
        b.add_f32(M + "conv1d.weight", {cd, 1, cfg.ssm.d_conv}, vec((size_t)cd * cfg.ssm.d_conv, -0.5f, 0.5f));
        if (cfg.ssm.conv_bias) b.add_f32(M + "conv1d.bias", {cd}, vec(cd, -0.1f, 0.1f));
        std::vector<float> dtb(nh), alog(nh);
        for (int h = 0; h < nh; ++h) {
            const float dt = std::exp(uni(std::log(1e-3f), std::log(0.1f)));
            dtb[h] = dt + std::log(-std::expm1(-dt));  // softplus^-1
            alog[h] = std::log(uni(1.0f, 16.0f));
        }
        b.add_f32(M + "dt_bias", {nh}, dtb);
        b.add_f32(M + "A_log", {nh}, alog);
        b.add_f32(M + "D", {nh}, std::vector<float>(nh, 1.0f));
        b.add_f32(M + "norm.weight", {di}, std::vector<float>(di, 1.0f));
        proj("out_proj", dm, di);
    }
    set_common_metadata(b, cfg, binary ? "binary" : (storage == FloatStorage::F16 ? "f16" : "f32"), "random");
    b.w.set_metadata("float_storage", storage == FloatStorage::F16 ? "f16" : "f32");
    b.w.write(output);
    ExportReport r;
    r.config = cfg;
    r.output = output;
    r.file_bytes = file_size(output);
    r.fp16_bytes = fp16_model_bytes(cfg);
    r.packed_bits = b.packed_bits;
    r.head = head_storage_name(head, storage);
    return r;
}

}  // namespace bimamba::engine
