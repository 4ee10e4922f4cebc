// LLaMA teacher: a tiny model written as an HF folder (sharded), loaded, and
// checked against a naive float64 re-implementation (explicit loops for the
// rotary embedding, grouped-query causal attention and SwiGLU); dtypes kept
// or cast; config/weight errors; Teacher kind detection and vocabulary checks.
#include "core/base/FileUtil.h"
#include <gtest/gtest.h>

#include "tests/TestUtil.h"
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/model/Checkpoint.h"
#include "core/model/LlamaModel.h"
#include "core/model/Mamba2Model.h"
#include "core/model/Teacher.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::model;
namespace fs = std::filesystem;
using Vec = std::vector<double>;

namespace {
using test::fresh_dir;
using test::write_text;

LlamaConfig tiny_config(bool tie) {
    LlamaConfig c;
    c.hidden_size = 24;
    c.intermediate_size = 40;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 8;  // q width 32 != hidden 24: catches hidden/heads confusions
    c.vocab_size = 50;
    c.rms_norm_eps = 1e-5;
    c.rope_theta = 300.0;  // not the default, and small enough that positions rotate a lot
    c.tie_word_embeddings = tie;
    return c;
}

std::map<std::string, torch::Tensor> random_weights(const LlamaConfig& c, uint64_t seed) {
    torch::manual_seed(seed);
    const int64_t H = c.hidden_size, I = c.intermediate_size, q = c.num_attention_heads * c.head_dim,
                  kv = c.num_key_value_heads * c.head_dim;
    std::map<std::string, torch::Tensor> w;
    auto mat = [](int64_t o, int64_t i) { return torch::randn({o, i}) / std::sqrt(double(i)); };
    w["model.embed_tokens.weight"] = torch::randn({c.vocab_size, H});
    w["model.norm.weight"] = torch::rand({H}) + 0.5;
    if (!c.tie_word_embeddings) w["lm_head.weight"] = mat(c.vocab_size, H);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        std::string p = "model.layers." + std::to_string(l) + ".";
        w[p + "input_layernorm.weight"] = torch::rand({H}) + 0.5;
        w[p + "post_attention_layernorm.weight"] = torch::rand({H}) + 0.5;
        w[p + "self_attn.q_proj.weight"] = mat(q, H) * 2.0;  // sharper attention
        w[p + "self_attn.k_proj.weight"] = mat(kv, H) * 2.0;
        w[p + "self_attn.v_proj.weight"] = mat(kv, H);
        w[p + "self_attn.o_proj.weight"] = mat(H, q);
        w[p + "mlp.gate_proj.weight"] = mat(I, H);
        w[p + "mlp.up_proj.weight"] = mat(I, H);
        w[p + "mlp.down_proj.weight"] = mat(H, I);
    }
    return w;
}

// Writes an HF-style folder: config.json and two shards with an index.
void write_folder(const std::string& dir, const LlamaConfig& c, const std::map<std::string, torch::Tensor>& w) {
    std::map<std::string, torch::Tensor> s1, s2;
    nlohmann::json wm;
    for (auto& [k, v] : w) {
        bool first = k.find("layers.1.") == std::string::npos && k != "lm_head.weight";
        (first ? s1 : s2)[k] = v;
        wm[k] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    }
    save_tensors(dir + "/model-00001-of-00002.safetensors", s1);
    save_tensors(dir + "/model-00002-of-00002.safetensors", s2);
    write_text(dir + "/model.safetensors.index.json", nlohmann::json({{"weight_map", wm}}).dump());
    write_text(dir + "/config.json", c.to_json().dump(2));
}

// ---- naive float64 reference -------------------------------------------------
struct Ref {
    const LlamaConfig& c;
    std::map<std::string, torch::Tensor> w;  // float64
    Ref(const LlamaConfig& cfg, const std::map<std::string, torch::Tensor>& weights) : c(cfg) {
        for (auto& [k, v] : weights) w[k] = v.to(torch::kFloat64).contiguous();
    }
    Vec matvec(const std::string& name, const Vec& x) const {
        auto& m = w.at(name);
        auto a = m.accessor<double, 2>();
        Vec y(size_t(m.size(0)), 0.0);
        for (int64_t o = 0; o < m.size(0); ++o)
            for (int64_t i = 0; i < m.size(1); ++i) y[size_t(o)] += a[o][i] * x[size_t(i)];
        return y;
    }
    Vec rmsnorm(const Vec& x, const std::string& name) const {
        double ss = 0;
        for (double v : x) ss += v * v;
        double r = 1.0 / std::sqrt(ss / double(x.size()) + c.rms_norm_eps);
        auto g = w.at(name).accessor<double, 1>();
        Vec y(x.size());
        for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * g[int64_t(i)];
        return y;
    }
    // Rotates pairs (i, i + hd/2) of one head by pos * theta^(-2i/hd).
    void rope(Vec& v, size_t off, int pos) const {
        const int hd = c.head_dim;
        for (int i = 0; i < hd / 2; ++i) {
            double ang = pos * std::pow(c.rope_theta, -2.0 * i / hd);
            double a = v[off + size_t(i)], b = v[off + size_t(i + hd / 2)];
            v[off + size_t(i)] = a * std::cos(ang) - b * std::sin(ang);
            v[off + size_t(i + hd / 2)] = b * std::cos(ang) + a * std::sin(ang);
        }
    }
    // logits (L, V) for one sequence
    std::vector<Vec> run(const std::vector<int64_t>& ids) const {
        const size_t L = ids.size(), H = size_t(c.hidden_size), hd = size_t(c.head_dim);
        const int nh = c.num_attention_heads, group = c.num_attention_heads / c.num_key_value_heads;
        auto emb = w.at("model.embed_tokens.weight").accessor<double, 2>();
        std::vector<Vec> x(L, Vec(H));
        for (size_t t = 0; t < L; ++t)
            for (size_t i = 0; i < H; ++i) x[t][i] = emb[ids[t]][int64_t(i)];
        for (int l = 0; l < c.num_hidden_layers; ++l) {
            std::string p = "model.layers." + std::to_string(l) + ".";
            std::vector<Vec> q(L), k(L), v(L);
            for (size_t t = 0; t < L; ++t) {
                auto h = rmsnorm(x[t], p + "input_layernorm.weight");
                q[t] = matvec(p + "self_attn.q_proj.weight", h);
                k[t] = matvec(p + "self_attn.k_proj.weight", h);
                v[t] = matvec(p + "self_attn.v_proj.weight", h);
                for (int hh = 0; hh < nh; ++hh) rope(q[t], size_t(hh) * hd, int(t));
                for (int hh = 0; hh < c.num_key_value_heads; ++hh) rope(k[t], size_t(hh) * hd, int(t));
            }
            for (size_t t = 0; t < L; ++t) {
                Vec att(size_t(nh) * hd, 0.0);
                for (int hh = 0; hh < nh; ++hh) {
                    size_t qo = size_t(hh) * hd, ko = size_t(hh / group) * hd;
                    Vec s(t + 1);
                    double mx = -1e300;
                    for (size_t u = 0; u <= t; ++u) {
                        double d = 0;
                        for (size_t i = 0; i < hd; ++i) d += q[t][qo + i] * k[u][ko + i];
                        s[u] = d / std::sqrt(double(hd));
                        mx = std::max(mx, s[u]);
                    }
                    double z = 0;
                    for (auto& e : s) z += (e = std::exp(e - mx));
                    for (size_t u = 0; u <= t; ++u)
                        for (size_t i = 0; i < hd; ++i) att[qo + i] += s[u] / z * v[u][ko + i];
                }
                auto o = matvec(p + "self_attn.o_proj.weight", att);
                for (size_t i = 0; i < H; ++i) x[t][i] += o[i];
                auto h = rmsnorm(x[t], p + "post_attention_layernorm.weight");
                auto g = matvec(p + "mlp.gate_proj.weight", h), up = matvec(p + "mlp.up_proj.weight", h);
                for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * up[i];
                auto d = matvec(p + "mlp.down_proj.weight", g);
                for (size_t i = 0; i < H; ++i) x[t][i] += d[i];
            }
        }
        std::vector<Vec> out(L);
        for (size_t t = 0; t < L; ++t)
            out[t] = matvec(c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight",
                            rmsnorm(x[t], "model.norm.weight"));
        return out;
    }
};

torch::Tensor sample_ids(int64_t vocab) {
    torch::manual_seed(99);
    return torch::randint(0, vocab, {2, 13}, torch::kInt64);
}

// max |ours - ref| / max |ref| over a batch
double rel_err_vs_ref(const torch::Tensor& logits, const Ref& ref, const torch::Tensor& ids) {
    double num = 0, den = 0;
    for (int64_t b = 0; b < ids.size(0); ++b) {
        std::vector<int64_t> row(size_t(ids.size(1)));
        for (int64_t t = 0; t < ids.size(1); ++t) row[size_t(t)] = ids[b][t].item<int64_t>();
        auto r = ref.run(row);
        auto got = logits[b].to(torch::kFloat64).contiguous();
        auto a = got.accessor<double, 2>();
        EXPECT_EQ(got.size(1), int64_t(r[0].size()));
        for (size_t t = 0; t < r.size(); ++t)
            for (size_t v = 0; v < r[t].size(); ++v) {
                num = std::max(num, std::abs(a[int64_t(t)][int64_t(v)] - r[t][v]));
                den = std::max(den, std::abs(r[t][v]));
            }
    }
    return num / den;
}

void expect_error(const std::function<void()>& f, const std::string& needle) {
    try {
        f();
        ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
            << "expected '" << needle << "' in: " << e.what();
    }
}
}  // namespace

TEST(Llama, ShardedFolderMatchesNaiveFloat64) {
    for (bool tie : {false, true}) {
        SCOPED_TRACE(tie ? "tied head" : "untied head");
        auto cfg = tiny_config(tie);
        auto w = random_weights(cfg, tie ? 2 : 1);
        std::string dir = fresh_dir(tie ? "tied" : "untied");
        write_folder(dir, cfg, w);
        auto m = LlamaLM::load(dir);
        EXPECT_EQ(m.dtype(), torch::kFloat32);
        EXPECT_EQ(m.config().rope_theta, 300.0);
        auto ids = sample_ids(cfg.vocab_size);
        auto logits = m.forward(ids);
        ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 13, 50}));
        EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
        Ref ref(cfg, w);
        double err = rel_err_vs_ref(logits, ref, ids);
        EXPECT_LT(err, 1e-5);
        // The reference is sensitive to what it checks: a different rope_theta moves the logits.
        auto cfg2 = cfg;
        cfg2.rope_theta = 10000.0;
        Ref ref2(cfg2, w);
        EXPECT_GT(rel_err_vs_ref(logits, ref2, ids), 1e-3);
        // The first position attends to itself only, so it does not depend on later tokens.
        auto ids2 = ids.clone();
        ids2.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None)}, 0);
        EXPECT_TRUE(torch::allclose(m.forward(ids2).select(1, 0), logits.select(1, 0), 1e-6, 1e-6));
    }
}

TEST(Llama, Bf16WeightsKeptOrCast) {
    auto cfg = tiny_config(false);
    auto w = random_weights(cfg, 3);
    std::map<std::string, torch::Tensor> wb;
    for (auto& [k, v] : w) wb[k] = v.to(torch::kBFloat16);
    std::string dir = fresh_dir("bf16");
    write_folder(dir, cfg, wb);
    auto ids = sample_ids(cfg.vocab_size);
    Ref ref(cfg, wb);  // the reference uses the same (bf16-rounded) weights in float64

    auto kept = LlamaLM::load(dir);
    EXPECT_EQ(kept.dtype(), torch::kBFloat16);
    auto lk = kept.forward(ids);
    EXPECT_EQ(lk.scalar_type(), torch::kFloat32);
    EXPECT_LT(rel_err_vs_ref(lk, ref, ids), 0.05);  // bf16 activations: ~3 significant digits

    auto cast = LlamaLM::load(dir, torch::kCPU, torch::kFloat32);
    EXPECT_EQ(cast.dtype(), torch::kFloat32);
    EXPECT_LT(rel_err_vs_ref(cast.forward(ids), ref, ids), 1e-5);
}

TEST(Llama, ConfigAndWeightErrorsAreNamed) {
    auto cfg = tiny_config(false);
    auto j = cfg.to_json();
    auto round = LlamaConfig::from_json(j);
    EXPECT_EQ(round.to_json(), j);
    // transformers 5 puts rope_theta under rope_parameters.
    auto j5 = j;
    j5.erase("rope_theta");
    j5["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1234.0}};
    EXPECT_EQ(LlamaConfig::from_json(j5).rope_theta, 1234.0);
    // Defaults: head_dim = hidden / heads, kv heads = heads.
    auto jd = j;
    jd.erase("head_dim");
    jd.erase("num_key_value_heads");
    auto cd = LlamaConfig::from_json(jd);
    EXPECT_EQ(cd.head_dim, 6);
    EXPECT_EQ(cd.num_key_value_heads, 4);

    auto jm = j;
    jm.erase("intermediate_size");
    expect_error([&] { LlamaConfig::from_json(jm); }, "missing field 'intermediate_size'");
    auto js = j;
    js["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
    expect_error([&] { LlamaConfig::from_json(js); }, "'llama3' is not supported");
    auto jk = j;
    jk["num_key_value_heads"] = 3;
    expect_error([&] { LlamaConfig::from_json(jk); }, "multiple of num_key_value_heads");
    auto ja = j;
    ja["hidden_act"] = "gelu";
    expect_error([&] { LlamaConfig::from_json(ja); }, "hidden_act 'gelu'");

    auto w = random_weights(cfg, 4);
    auto missing = w;
    missing.erase("model.layers.1.mlp.up_proj.weight");
    expect_error([&] { LlamaLM(cfg, missing); }, "missing tensor 'model.layers.1.mlp.up_proj.weight'");
    auto wrong = w;
    wrong["model.layers.0.self_attn.k_proj.weight"] = torch::zeros({32, 24});
    expect_error([&] { LlamaLM(cfg, wrong); }, "'model.layers.0.self_attn.k_proj.weight' has shape");
    auto extra = w;
    extra["model.layers.2.mlp.up_proj.weight"] = torch::zeros({40, 24});
    expect_error([&] { LlamaLM(cfg, extra); }, "unexpected tensor(s) (first: 'model.layers.2.mlp.up_proj.weight')");
    LlamaLM ok(cfg, w);
    expect_error([&] { ok.forward(torch::full({1, 3}, 50, torch::kInt64)); }, "outside [0, 50)");
}

TEST(Teacher, LoadsEitherKindAndChecksVocabulary) {
    // LLaMA folder.
    auto cfg = tiny_config(false);
    auto w = random_weights(cfg, 5);
    std::string ldir = fresh_dir("teacher_llama");
    write_folder(ldir, cfg, w);
    EXPECT_EQ(Teacher::detect_kind(ldir), "llama");
    auto t = Teacher::load(ldir);
    EXPECT_EQ(t->kind(), "llama");
    EXPECT_EQ(t->vocab_size(), 50);
    auto ids = sample_ids(40);
    auto full = t->logits(ids);
    EXPECT_TRUE(torch::equal(full, LlamaLM::load(ldir).forward(ids)));

    t->match_vocab(50, false);  // equal: fine
    expect_error([&] { t->match_vocab(40, false); }, "teacher vocabulary (50) differs from the student's (40)");
    expect_error([&] { t->match_vocab(60, true); }, "smaller than the student's (60)");
    t->match_vocab(40, true);
    EXPECT_EQ(t->vocab_size(), 40);
    EXPECT_EQ(t->native_vocab_size(), 50);
    auto sliced = t->logits(ids);
    ASSERT_EQ(sliced.size(-1), 40);
    EXPECT_TRUE(torch::equal(sliced, full.narrow(-1, 0, 40)));
    expect_error([&] { t->logits(torch::full({1, 2}, 45, torch::kInt64)); }, "outside the vocabulary of 40");

    // Mamba-2 folder of ours.
    torch::manual_seed(6);
    Mamba2LM m(Mamba2Config::preset("tiny"));
    m->eval();
    std::string mdir = fresh_dir("teacher_mamba");
    save_model(m, mdir);
    EXPECT_EQ(Teacher::detect_kind(mdir), "mamba2");
    auto tm = Teacher::load(mdir);
    EXPECT_EQ(tm->kind(), "mamba2");
    EXPECT_EQ(tm->vocab_size(), m->config().vocab_size);
    auto mids = sample_ids(m->config().vocab_size);
    torch::Tensor direct;
    {
        torch::NoGradGuard ng;
        direct = m->forward(mids);
    }
    EXPECT_TRUE(torch::equal(tm->logits(mids), direct.narrow(-1, 0, m->config().vocab_size)));
    expect_error([&] { tm->match_vocab(32000, true); }, "smaller than the student's (32000)");

    // Unsupported / unknown folders.
    std::string gdir = fresh_dir("teacher_gpt2");
    write_text(gdir + "/config.json", R"({"model_type": "gpt2", "n_embd": 8})");
    expect_error([&] { Teacher::load(gdir); }, "model_type 'gpt2'; supported teachers are mamba2 and llama");
    expect_error([&] { Teacher::load(fresh_dir("teacher_empty")); }, "no config.json");
}

namespace {
// A safetensors file whose header declares `shape` in BF16, the data left as a
// hole (sparse): sizes a teacher of any size without the disk space for it.
void write_sparse_safetensors(const std::string& path, const std::string& name, std::vector<int64_t> shape) {
    uint64_t nbytes = 2;
    for (auto d : shape) nbytes *= static_cast<uint64_t>(d);
    std::string header =
        nlohmann::json({{name, {{"dtype", "BF16"}, {"shape", shape}, {"data_offsets", {0, nbytes}}}}}).dump();
    header.resize((header.size() + 7) / 8 * 8, ' ');
    {
        std::ofstream f(path, std::ios::binary);
        const uint64_t n = header.size();
        f.write(reinterpret_cast<const char*>(&n), 8);
        f << header;
    }
    fs::resize_file(path, 8 + header.size() + nbytes);
}
}  // namespace

TEST(Teacher, SizedFromHeadersAndRefusedWhenTooLarge) {
    // Exact bytes from the headers of a sharded fp32 LLaMA folder.
    auto cfg = tiny_config(false);
    auto w = random_weights(cfg, 7);
    std::string ldir = fresh_dir("teacher_size");
    write_folder(ldir, cfg, w);
    uint64_t expect = 0;
    for (auto& [k, v] : w) expect += v.nbytes();
    EXPECT_EQ(Teacher::weight_bytes(ldir, torch::kCPU), expect);

    // Ours: float32 on the CPU.
    torch::manual_seed(8);
    Mamba2LM m(Mamba2Config::preset("tiny"));
    std::string mdir = fresh_dir("teacher_size_mamba");
    save_model(m, mdir);
    uint64_t mexpect = 0;
    for (auto& p : m->named_tensors()) mexpect += 4 * p.second.numel();
    EXPECT_EQ(Teacher::weight_bytes(mdir, torch::kCPU), mexpect);

    // The limit: fits with room, refused (naming sizes and the way out) without.
    setenv("BIMAMBA_MEMORY_LIMIT_GB", "1", 1);
    EXPECT_NO_THROW(Teacher::check_fits(ldir, torch::kCPU, 0));
    setenv("BIMAMBA_MEMORY_LIMIT_GB", "0.00001", 1);  // 10 kB
    expect_error([&] { Teacher::check_fits(ldir, torch::kCPU, 0); }, "does not fit: its weights need 0.00 GB");
    expect_error([&] { Teacher::check_fits(ldir, torch::kCPU, 0); }, "has 0.00 GB free. Nothing was loaded");
    expect_error([&] { Teacher::check_fits(ldir, torch::kCPU, 0); }, "cache-teacher");
    setenv("BIMAMBA_MEMORY_LIMIT_GB", "zero", 1);
    expect_error([&] { Teacher::check_fits(ldir, torch::kCPU, 0); }, "BIMAMBA_MEMORY_LIMIT_GB='zero'");
    unsetenv("BIMAMBA_MEMORY_LIMIT_GB");

    // A 2 TB (sparse) teacher against this machine's real free memory: sized
    // from its header without reading, and refused before loading.
    std::string hdir = fresh_dir("teacher_huge");
    write_text(hdir + "/config.json", R"({"model_type": "llama", "hidden_size": 1048576, "vocab_size": 1048576,
        "intermediate_size": 4, "num_hidden_layers": 0, "num_attention_heads": 1})");
    write_sparse_safetensors(hdir + "/model.safetensors", "model.embed_tokens.weight", {1 << 20, 1 << 20});
    EXPECT_EQ(Teacher::weight_bytes(hdir, torch::kCPU), 2ull << 40);
    expect_error([&] { Teacher::check_fits(hdir, torch::kCPU, 0); }, "its weights need 2199.02 GB");
    expect_error([&] { Teacher::check_fits(hdir, torch::kCPU, 0); }, "this machine's memory (MemAvailable)");
}

TEST(Teacher, Bf16Mamba2TeacherRunsInBf16OnCuda) {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the bf16 teacher path is CUDA-only";
    torch::manual_seed(9);
    Mamba2LM m(Mamba2Config::preset("tiny"));
    std::string dir32 = fresh_dir("teacher_f32"), dir16 = fresh_dir("teacher_bf16");
    save_model(m, dir32);
    std::map<std::string, torch::Tensor> half;
    for (auto& [k, v] : m->named_tensors()) half[k] = v.to(torch::kBFloat16);
    save_tensors(dir16 + "/model.safetensors", half);
    fs::copy_file(dir32 + "/config.json", dir16 + "/config.json");
    const torch::Device cuda(torch::kCUDA, 0);
    EXPECT_LT(Teacher::weight_bytes(dir16, cuda), 0.6 * Teacher::weight_bytes(dir32, cuda));
    auto t16 = Teacher::load(dir16, cuda);
    auto t32 = Teacher::load(dir32, cuda);
    auto ids = sample_ids(m->config().vocab_size).to(cuda);
    auto a = t16->logits(ids), b = t32->logits(ids);
    EXPECT_EQ(a.scalar_type(), torch::kFloat32);
    const double rel = ((a - b).norm() / b.norm()).item<double>();
    EXPECT_LT(rel, 3e-2);  // bf16 matrices: close to the float32 teacher...
    EXPECT_GT(rel, 1e-6);  // ...but not the float32 computation itself
}
