// The CPU engine against the LibTorch model on the same checkpoint: logits
// over a prompt and decode steps (relative error < 1e-3), greedy generations
// token for token for 64 tokens; binarized (in+out, in only) and unbinarized
// models; fp16 storage within fp16 rounding; bad files refused by name.
#include "core/base/FileUtil.h"
#include "core/base/StringUtil.h"
#include <gtest/gtest.h>

#include "tests/TestUtil.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/data/Tokenizer.h"
#include "core/engine/DeployFile.h"
#include "core/engine/Engine.h"
#include "core/eval/EngineScorer.h"
#include "core/eval/Perplexity.h"
#include "core/model/Checkpoint.h"
#include "core/model/Mamba2Model.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
using namespace bimamba::model;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
    return test::fresh_dir(name);
}

// Tiny model with every parameter randomised (not just the init), so a wrong
// α/β/D/dt_bias/norm handling in the engine shows up in the logits.
Mamba2LM make_model(Mamba2Config cfg, uint64_t seed) {
    torch::manual_seed(seed);
    Mamba2LM m(cfg);
    torch::NoGradGuard ng;
    for (auto& [name, t] : m->named_tensors()) {
        auto ends = [&](const char* suffix) { return ends_with(name, suffix); };
        if (ends("wscale"))
            t.copy_(torch::rand_like(t) * 0.05 + 0.02);
        else if (ends("wbias"))
            t.copy_((torch::rand_like(t) - 0.5) * 0.02);
        else if (ends("dt_bias") || ends("D"))
            t.copy_(torch::randn_like(t) * 0.5);
        else if (ends("A_log"))
            t.copy_(torch::rand_like(t) * 2.0);
        else if (ends("norm.weight") || ends("norm_f.weight"))
            t.copy_(torch::rand_like(t) + 0.5);
        else if (ends("conv1d.bias"))
            t.copy_(torch::randn_like(t) * 0.1);
        else if (ends("embedding.weight"))
            t.copy_(torch::randn_like(t) * 0.5);
    }
    return m;
}

Mamba2Config tiny(Binarize b, bool odd) {
    auto c = Mamba2Config::preset("tiny");
    if (odd) {  // input widths that are not multiples of 8 (tail bits) and 2 groups
        c.d_model = 60;
        c.ssm.headdim = 15;
        c.ssm.ngroups = 2;
        c.vocab_size = 509;
    }
    c.binarize = b;
    return c;
}

double rel_err(const std::vector<float>& got, const torch::Tensor& want) {
    auto w = want.to(torch::kFloat64).contiguous();
    auto g =
        torch::from_blob(const_cast<float*>(got.data()), {(int64_t)got.size()}, torch::kFloat32).to(torch::kFloat64);
    return (g - w).abs().max().item<double>() / w.abs().max().item<double>();
}

struct Parity {
    double max_rel = 0;
    bool greedy_equal = false;
    int greedy_first_diff = -1;
};

// These checkpoints have no tokenizer: the engine runs on token ids.
engine::ExportOptions ids_only() {
    engine::ExportOptions o;
    o.allow_no_tokenizer = true;
    return o;
}

Parity run_parity(Mamba2Config cfg, engine::FloatStorage storage, const std::string& name,
                  const engine::EngineOptions& eopt = {}, engine::HeadStorage head = engine::HeadStorage::AsFloat) {
    auto dir = temp_dir(name);
    auto model = make_model(cfg, 7);
    model->eval();
    save_model(model, dir.string());
    engine::ExportOptions opt = ids_only();
    opt.storage = storage;
    opt.head = head;
    auto rep = engine::export_checkpoint(dir.string(), (dir / "model.bmd").string(), opt);
    EXPECT_GT(rep.file_bytes, 0u);
    auto eng = engine::Engine::load((dir / "model.bmd").string(), eopt);
    EXPECT_EQ(eng->head_storage(), head == engine::HeadStorage::Q8        ? "q8"
                                   : storage == engine::FloatStorage::F16 ? "f16"
                                                                          : "f32");

    std::mt19937 rng(3);
    std::vector<int> prompt(12);
    for (auto& t : prompt) t = (int)(rng() % cfg.vocab_size);
    torch::NoGradGuard ng;
    Parity P;
    // Prompt: compare the logits after every prompt token.
    auto ids = torch::tensor(std::vector<int64_t>(prompt.begin(), prompt.end())).view({1, -1});
    auto full = model->forward(ids)[0];  // (l, vocab)
    eng->reset();
    for (size_t i = 0; i < prompt.size(); ++i) P.max_rel = std::max(P.max_rel, rel_err(eng->step(prompt[i]), full[i]));
    // Decode steps from the model's own prefill state.
    auto state = model->new_state(1);
    model->prefill(ids, state);
    for (int t : {5, 17, 300, 2}) {
        auto want = model->step(torch::tensor({(int64_t)t}), state)[0];
        P.max_rel = std::max(P.max_rel, rel_err(eng->step(t), want));
    }
    // Greedy 64 tokens from the prompt, both sides.
    auto st2 = model->new_state(1);
    auto logits = model->prefill(ids, st2)[0][-1];
    std::vector<int> want_tokens, got_tokens;
    for (int i = 0; i < 64; ++i) {
        const int t = (int)logits.argmax().item<int64_t>();
        want_tokens.push_back(t);
        logits = model->step(torch::tensor({(int64_t)t}), st2)[0];
    }
    eng->reset();
    std::vector<float> l = eng->prefill(prompt);
    for (int i = 0; i < 64; ++i) {
        const int t = (int)(std::max_element(l.begin(), l.end()) - l.begin());
        got_tokens.push_back(t);
        l = eng->step(t);
    }
    P.greedy_equal = want_tokens == got_tokens;
    for (int i = 0; i < 64; ++i)
        if (want_tokens[i] != got_tokens[i]) {
            P.greedy_first_diff = i;
            break;
        }
    std::printf("[%s] max relative logit error %.3e, greedy 64 tokens %s (first difference %d)\n", name.c_str(),
                P.max_rel, P.greedy_equal ? "identical" : "differ", P.greedy_first_diff);
    bimamba::base::remove_tree(dir);
    return P;
}

// Options of an engine with the ±1 kernel `k` (the rest default).
engine::EngineOptions with_kernel(const std::string& k, engine::EngineOptions o = {}) {
    o.binary_kernel = k;
    return o;
}

}  // namespace

// Every ±1 kernel, the default (int16-quantized input) included, meets the
// 1e-3 bound and the 64 greedy tokens.
TEST(Engine, BinaryInOutProjMatchesLibTorch) {
    for (const char* kernel : {"i16lut", "lut3", "xor"}) {
        for (bool odd : {false, true}) {
            auto P = run_parity(tiny(Binarize::InOutProj, odd), engine::FloatStorage::F32,
                                std::string(odd ? "bin_odd_" : "bin_") + kernel, with_kernel(kernel));
            EXPECT_LT(P.max_rel, 1e-3) << kernel << " odd=" << odd;
            EXPECT_TRUE(P.greedy_equal) << kernel << " odd=" << odd << " first difference at token "
                                        << P.greedy_first_diff;
        }
    }
}

TEST(Engine, BinaryInProjOnlyMatchesLibTorch) {
    for (const char* kernel : {"i16lut", "lut3"}) {
        auto P = run_parity(tiny(Binarize::InProj, true), engine::FloatStorage::F32, std::string("binin_") + kernel,
                            with_kernel(kernel));
        EXPECT_LT(P.max_rel, 1e-3) << kernel;
        EXPECT_TRUE(P.greedy_equal) << kernel << " first difference at token " << P.greedy_first_diff;
    }
}

TEST(Engine, UnbinarizedFp32MatchesLibTorch) {
    for (bool odd : {false, true}) {
        auto P = run_parity(tiny(Binarize::None, odd), engine::FloatStorage::F32, odd ? "fp_odd" : "fp");
        EXPECT_LT(P.max_rel, 1e-3) << "odd=" << odd;
        EXPECT_TRUE(P.greedy_equal) << "odd=" << odd << " first difference at token " << P.greedy_first_diff;
    }
}

TEST(Engine, Fp16StorageStaysWithinHalfPrecision) {
    // Embedding/head in fp16: logits move by about fp16 rounding, not more.
    auto P = run_parity(tiny(Binarize::InOutProj, false), engine::FloatStorage::F16, "bin16");
    EXPECT_LT(P.max_rel, 1e-2);
    EXPECT_GT(P.max_rel, 0.0);  // it really is stored in fp16
}

// The int8 head/embedding (export --head q8): logits within int8 rounding of
// the LibTorch model; the file is format version 2 with the int8 rows, their
// scales and no float embedding, and half the embedding bytes of fp16.
TEST(Engine, Q8HeadStaysWithinInt8Precision) {
    auto P =
        run_parity(tiny(Binarize::InOutProj, true), engine::FloatStorage::F32, "binq8", {}, engine::HeadStorage::Q8);
    EXPECT_LT(P.max_rel, 2e-2);
    EXPECT_GT(P.max_rel, 1e-5);  // it really is int8

    auto dir = temp_dir("q8file");
    auto cfg = Mamba2Config::preset("tiny");
    engine::write_random_deploy(cfg, true, engine::FloatStorage::F16, (dir / "f16.bmd").string(), 3,
                                engine::HeadStorage::F16);
    engine::write_random_deploy(cfg, true, engine::FloatStorage::F16, (dir / "q8.bmd").string(), 3,
                                engine::HeadStorage::Q8);
    // The default (auto): int8 for a binary model at f16, the float storage for the fp16 baseline or at f32.
    EXPECT_EQ(engine::write_random_deploy(cfg, true, engine::FloatStorage::F16, (dir / "auto.bmd").string(), 3).head,
              "q8");
    EXPECT_EQ(engine::write_random_deploy(cfg, false, engine::FloatStorage::F16, (dir / "base.bmd").string(), 3).head,
              "f16");
    EXPECT_EQ(engine::write_random_deploy(cfg, true, engine::FloatStorage::F32, (dir / "f32.bmd").string(), 3).head,
              "f32");
    EXPECT_EQ(base::read_file((dir / "auto.bmd").string()), base::read_file((dir / "q8.bmd").string()));
    {
        auto f = base::SafetensorsFile::open((dir / "q8.bmd").string());
        EXPECT_EQ(f->metadata().at("format_version"), "2");
        EXPECT_EQ(f->metadata().at("head"), "q8");
        EXPECT_FALSE(f->contains("backbone.embedding.weight"));
        EXPECT_EQ(f->get("backbone.embedding.q8").dtype, base::DType::I8);
        EXPECT_EQ(f->get("backbone.embedding.scale").numel(), cfg.padded_vocab());
        auto g = base::SafetensorsFile::open((dir / "f16.bmd").string());
        EXPECT_EQ(g->metadata().at("format_version"), "1");  // older engines still read every file without an int8 head
        const int64_t emb = (int64_t)cfg.padded_vocab() * cfg.d_model;
        EXPECT_NEAR((double)g->file_size() - (double)f->file_size(), (double)emb - 4.0 * cfg.padded_vocab(), 4096);
    }
    auto a = engine::Engine::load((dir / "f16.bmd").string()), b = engine::Engine::load((dir / "q8.bmd").string());
    EXPECT_EQ(a->weight_bytes_per_token() - b->weight_bytes_per_token(),
              (uint64_t)cfg.vocab_size * cfg.d_model - 4ull * cfg.vocab_size);
    bimamba::base::remove_tree(dir);
}

// A transformers Mamba2ForCausalLM folder (its config keys, the embedding as
// "backbone.embeddings.weight", Bi-Mamba's wscale/wbias beside the weights and
// "binarize" in the config, as tests/reference/llama_cpp_bench_model.py writes
// it) exports to the same deployment model as this project's checkpoint.
TEST(Engine, ExportReadsTransformersMamba2Folders) {
    const auto cfg = tiny(Binarize::InOutProj, false);
    auto dir = temp_dir("hf_export");
    auto model = make_model(cfg, 11);
    save_model(model, (dir / "ours").string());
    auto f = base::SafetensorsFile::open((dir / "ours" / "model.safetensors").string());
    base::SafetensorsWriter w;
    int renamed = 0;
    for (const auto& name : f->names()) {
        const auto& t = f->get(name);
        const bool emb = name == "backbone.embedding.weight";
        renamed += emb;
        w.add(emb ? "backbone.embeddings.weight" : name, t.dtype, t.shape, t.data, t.nbytes);
    }
    ASSERT_EQ(renamed, 1);
    fs::create_directories(dir / "hf");
    w.write((dir / "hf" / "model.safetensors").string());
    std::ofstream((dir / "hf" / "config.json").string())
        << "{\"architectures\": [\"Mamba2ForCausalLM\"], \"hidden_size\": " << cfg.d_model
        << ", \"num_hidden_layers\": " << cfg.n_layer << ", \"vocab_size\": " << cfg.padded_vocab()
        << ", \"state_size\": " << cfg.ssm.d_state << ", \"conv_kernel\": " << cfg.ssm.d_conv
        << ", \"expand\": " << cfg.ssm.expand << ", \"head_dim\": " << cfg.ssm.headdim
        << ", \"num_heads\": " << cfg.nheads() << ", \"n_groups\": " << cfg.ssm.ngroups
        << ", \"chunk_size\": " << cfg.ssm.chunk_size
        << ", \"use_bias\": false, \"use_conv_bias\": true, \"layer_norm_epsilon\": 1e-05, "
           "\"residual_in_fp32\": true, \"tie_word_embeddings\": true, \"binarize\": \"in_proj+out_proj\"}";
    engine::export_checkpoint((dir / "ours").string(), (dir / "ours.bmd").string(), ids_only());
    engine::export_checkpoint((dir / "hf").string(), (dir / "hf.bmd").string(), ids_only());
    auto a = engine::Engine::load((dir / "ours.bmd").string()), b = engine::Engine::load((dir / "hf.bmd").string());
    EXPECT_EQ(b->weight_kind(), "binary");
    for (int t : {3, 100, 7, 511, 42}) ASSERT_EQ(a->step(t), b->step(t)) << "token " << t;
    bimamba::base::remove_tree(dir);
}

TEST(Engine, ExportPacksOneBitPerWeightAndStoresTheLayout) {
    auto dir = temp_dir("layout");
    auto cfg = tiny(Binarize::InOutProj, true);
    save_model(make_model(cfg, 1), dir.string());
    auto rep = engine::export_checkpoint(dir.string(), (dir / "m.bmd").string(), ids_only());
    EXPECT_EQ(rep.head, "q8");  // the default for a binary model at f16
    const uint64_t per_layer = (uint64_t)cfg.in_proj_out() * cfg.d_model + (uint64_t)cfg.d_model * cfg.d_inner();
    EXPECT_EQ(rep.packed_bits, per_layer * cfg.n_layer);
    auto f = base::SafetensorsFile::open((dir / "m.bmd").string());
    const auto& s = f->get("backbone.layers.1.mixer.in_proj.signs");
    EXPECT_EQ(s.dtype, base::DType::U8);
    EXPECT_EQ(s.shape, (std::vector<int64_t>{cfg.in_proj_out(), (cfg.d_model + 7) / 8}));
    EXPECT_EQ(f->get("backbone.embedding.q8").dtype, base::DType::I8);
    EXPECT_EQ(f->metadata().at("format"), "bimamba-deploy");
    EXPECT_NE(f->metadata().at("sign_packing").find("LSB first"), std::string::npos);
    // Spot-check the packed bits against the checkpoint's signs.
    auto ck = load_tensors((dir / "model.safetensors").string());
    auto w = ck.at("backbone.layers.1.mixer.in_proj.weight");
    for (int r : {0, 3, cfg.in_proj_out() - 1})
        for (int c = 0; c < cfg.d_model; ++c) {
            const bool neg = w[r][c].item<float>() < 0;
            const bool bit = (s.data[r * s.shape[1] + c / 8] >> (c % 8)) & 1;
            ASSERT_EQ(neg, bit) << r << "," << c;
        }
    bimamba::base::remove_tree(dir);
}

TEST(Engine, BadFilesAndTokensAreRefusedByName) {
    auto dir = temp_dir("bad");
    auto cfg = tiny(Binarize::InOutProj, false);
    save_model(make_model(cfg, 2), dir.string());
    // A checkpoint is not a deployment file.
    try {
        engine::Engine::load((dir / "model.safetensors").string());
        FAIL() << "no exception";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("not a bimamba deployment file"), std::string::npos) << e.what();
    }
    // A truncated deployment file.
    engine::export_checkpoint(dir.string(), (dir / "m.bmd").string(), ids_only());
    fs::resize_file(dir / "m.bmd", fs::file_size(dir / "m.bmd") - 100);
    EXPECT_THROW(engine::Engine::load((dir / "m.bmd").string()), std::exception);
    // Missing checkpoint folder.
    try {
        engine::export_checkpoint((dir / "nope").string(), (dir / "x.bmd").string(), ids_only());
        FAIL() << "no exception";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("no such file or folder"), std::string::npos) << e.what();
    }
    // Token ids outside the vocabulary.
    engine::export_checkpoint(dir.string(), (dir / "ok.bmd").string(), ids_only());
    auto eng = engine::Engine::load((dir / "ok.bmd").string());
    EXPECT_THROW(eng->step(cfg.vocab_size), std::out_of_range);
    EXPECT_THROW(eng->step(-1), std::out_of_range);
    bimamba::base::remove_tree(dir);
}

// export takes a run directory (its latest checkpoint) and embeds the
// tokenizer of the run's prepared data, as eval finds it; without one it is
// refused at export time, naming the way out.
TEST(Engine, ExportOfARunDirectoryEmbedsItsTokenizer) {
    auto root = temp_dir("export_run");
    auto cfg = tiny(Binarize::InOutProj, false);
    const fs::path ck = root / "run/checkpoints/step_00000007";
    save_model(make_model(cfg, 4), ck.string());
    test::write_text((root / "run/checkpoints/latest").string(), "step_00000007\n");
    // Without train_config.json nothing leads to a tokenizer.
    try {
        engine::export_checkpoint((root / "run").string(), (root / "a.bmd").string(), {});
        FAIL() << "no exception";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("no tokenizer found"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--tokenizer"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(root / "a.bmd"));
    // The run's prepared data holds one (trained here: vocabulary within the model's).
    fs::create_directories(root / "data");
    std::vector<std::string> docs;
    for (int i = 0; i < 200; ++i)
        docs.push_back("the quick brown fox " + std::to_string(i) + " jumps over the lazy dog");
    TokenizerTrainOptions to;
    to.vocab_size = 300;
    Tokenizer::from_serialized(train_tokenizer(docs, to))->save((root / "data/tokenizer.model").string());
    ASSERT_LE(300, cfg.vocab_size);
    test::write_text((root / "run/train_config.json").string(), "{\"data\": \"" + (root / "data").string() + "\"}");
    auto rep = engine::export_checkpoint((root / "run").string(), (root / "a.bmd").string(), {});
    EXPECT_TRUE(rep.has_tokenizer);
    EXPECT_EQ(fs::path(rep.tokenizer_source), root / "data/tokenizer.model");
    auto eng = engine::Engine::load((root / "a.bmd").string());
    ASSERT_TRUE(eng->has_tokenizer());
    EXPECT_EQ(eng->tokenizer().serialized(), read_file((root / "data/tokenizer.model").string()));
    // --tokenizer overrides; one larger than the model's vocabulary is refused at export.
    engine::ExportOptions big;
    big.tokenizer_path = std::string(BIMAMBA_SHARED_DATA) + "/llama2-tokenizer/tokenizer.model";
    try {
        engine::export_checkpoint((root / "run").string(), (root / "b.bmd").string(), big);
        FAIL() << "no exception";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("more than the model's vocabulary"), std::string::npos) << e.what();
    }
    bimamba::base::remove_tree(root);
}

TEST(Engine, StateIsConstantAndResetRestartsTheSequence) {
    auto dir = temp_dir("reset");
    auto cfg = tiny(Binarize::InOutProj, false);
    save_model(make_model(cfg, 3), dir.string());
    engine::export_checkpoint(dir.string(), (dir / "m.bmd").string(), ids_only());
    auto eng = engine::Engine::load((dir / "m.bmd").string());
    auto a = eng->prefill({1, 2, 3});
    for (int i = 0; i < 200; ++i) eng->step(i % cfg.vocab_size);
    eng->reset();
    auto b = eng->prefill({1, 2, 3});
    EXPECT_EQ(a, b);
    bimamba::base::remove_tree(dir);
}

// Batched prefill (blocks of tokens through each layer, projections as GEMMs)
// against feeding the same prompt token by token: identical logits and an
// identical state afterwards (the decode that follows matches too), for
// binary and fp16 projections, both state precisions, a block size that
// leaves a partial last block, and a prompt split over two calls (chat turns).
TEST(Engine, BatchedPrefillIsBitIdenticalToTokenByToken) {
    struct Case {
        Binarize b;
        bool odd;
        engine::FloatStorage storage;
        const char* name;
    };
    for (const char* kernel : {"i16lut", "lut3"})
        for (const Case& k : {Case{Binarize::InOutProj, false, engine::FloatStorage::F16, "pb_bin"},
                              Case{Binarize::InOutProj, true, engine::FloatStorage::F32, "pb_bin_odd"},
                              Case{Binarize::None, true, engine::FloatStorage::F16, "pb_f16_odd"},
                              Case{Binarize::InProj, false, engine::FloatStorage::F32, "pb_binin"}}) {
            auto dir = temp_dir(k.name);
            auto cfg = tiny(k.b, k.odd);
            save_model(make_model(cfg, 11), dir.string());
            engine::ExportOptions eo = ids_only();
            eo.storage = k.storage;
            engine::export_checkpoint(dir.string(), (dir / "m.bmd").string(), eo);
            std::mt19937 rng(17);
            std::vector<int> prompt(23), more(9);
            for (auto& t : prompt) t = (int)(rng() % cfg.vocab_size);
            for (auto& t : more) t = (int)(rng() % cfg.vocab_size);
            for (auto st : {kernels::StateType::F32, kernels::StateType::BF16}) {
                engine::EngineOptions one = with_kernel(kernel), blk = with_kernel(kernel);
                one.state = blk.state = st;
                one.prefill_block = 1;
                blk.prefill_block = 5;
                auto a = engine::Engine::load((dir / "m.bmd").string(), one);
                auto b = engine::Engine::load((dir / "m.bmd").string(), blk);
                const std::string what = std::string(k.name) + "/" + kernel + "/" + kernels::state_type_name(st);
                const std::vector<float> la = a->prefill(prompt), lb = b->prefill(prompt);
                ASSERT_EQ(la.size(), lb.size());
                EXPECT_EQ(la, lb) << what;
                EXPECT_EQ(a->history(), b->history()) << what;
                // A second prompt on top of the state (a chat turn), then decoding.
                EXPECT_EQ(a->prefill(more), b->prefill(more)) << what;
                for (int t : {3, 1, 4, 1, 5}) EXPECT_EQ(a->step(t), b->step(t)) << what << " decode token " << t;
            }
            bimamba::base::remove_tree(dir);
        }
}

// A state wide enough (d_inner·d_state >= 2^15) for the engine to split the
// heads across threads: the per-head region (conv of x, scan, gate, Σy²) meets
// the LibTorch model, and 1, 2 or 3 threads, token by token or in blocks, give
// bit-identical logits (each head is computed the same way on any thread, the
// norm's per-head sums are added in head order). Odd head width and 2 groups.
TEST(Engine, HeadsSplitAcrossThreadsMatchLibTorchAndEveryThreadCount) {
    auto cfg = tiny(Binarize::InOutProj, true);
    cfg.d_model = 120;  // d_inner 240 = 16 heads of 15
    cfg.ssm.d_state = 144;
    ASSERT_GE(cfg.d_inner() * cfg.ssm.d_state, 1 << 15);
    engine::EngineOptions three = with_kernel("lut3");
    three.threads = 3;
    auto P = run_parity(cfg, engine::FloatStorage::F32, "wide_heads", three);
    EXPECT_LT(P.max_rel, 1e-3);
    EXPECT_TRUE(P.greedy_equal) << "first difference at token " << P.greedy_first_diff;

    auto dir = temp_dir("wide_heads_threads");
    save_model(make_model(cfg, 5), dir.string());
    engine::export_checkpoint(dir.string(), (dir / "m.bmd").string(), ids_only());
    std::mt19937 rng(9);
    std::vector<int> prompt(13);
    for (auto& t : prompt) t = (int)(rng() % cfg.vocab_size);
    std::vector<std::vector<float>> first;
    for (int threads : {1, 2, 3})
        for (int block : {1, 4}) {
            engine::EngineOptions o;
            o.threads = threads;
            o.prefill_block = block;
            auto e = engine::Engine::load((dir / "m.bmd").string(), o);
            ASSERT_EQ(e->threads(), threads);
            std::vector<std::vector<float>> got{e->prefill(prompt)};
            for (int t : {7, 300, 2, 41}) got.push_back(e->step(t));
            if (first.empty())
                first = got;
            else
                EXPECT_EQ(got, first) << threads << " threads, prefill block " << block;
        }
    bimamba::base::remove_tree(dir);
}

// 16-bit SSM state: against the LibTorch model the logits stay within a
// 16-bit-state tolerance (looser than the float32 engine's 1e-3) and really
// differ from the float32 state's (the option takes effect); the greedy
// agreement is reported, not required (random weights have near-ties). The
// exact lut3 kernel keeps the int16 input rounding out of the comparison.
TEST(Engine, SixteenBitStateStaysCloseToLibTorch) {
    for (auto st : {kernels::StateType::BF16, kernels::StateType::F16}) {
        engine::EngineOptions o = with_kernel("lut3");
        o.state = st;
        auto P = run_parity(tiny(Binarize::InOutProj, true), engine::FloatStorage::F32,
                            std::string("state_") + kernels::state_type_name(st), o);
        EXPECT_LT(P.max_rel, st == kernels::StateType::BF16 ? 2e-2 : 5e-3) << kernels::state_type_name(st);
        engine::EngineOptions o32 = with_kernel("lut3");
        o32.state = kernels::StateType::F32;
        auto P32 = run_parity(tiny(Binarize::InOutProj, true), engine::FloatStorage::F32, "state_f32_ref", o32);
        EXPECT_GT(P.max_rel, P32.max_rel) << "the 16-bit state made no difference: is the option applied?";
    }
}

TEST(Engine, StatePrecisionHalvesTheStateAndCanBeSwitched) {
    auto dir = temp_dir("statebytes");
    auto cfg = tiny(Binarize::InOutProj, false);
    save_model(make_model(cfg, 4), dir.string());
    engine::export_checkpoint(dir.string(), (dir / "m.bmd").string(), ids_only());
    auto eng = engine::Engine::load((dir / "m.bmd").string());
    const uint64_t conv = 4ull * cfg.n_layer * cfg.conv_dim() * cfg.ssm.d_conv;
    const uint64_t ssm = (uint64_t)cfg.n_layer * cfg.nheads() * cfg.ssm.headdim * cfg.ssm.d_state;
    EXPECT_EQ(eng->state_precision(), kernels::StateType::F16);  // the default
    EXPECT_EQ(eng->state_bytes(), conv + 2 * ssm);
    eng->set_state_precision(kernels::StateType::F32);
    EXPECT_EQ(eng->state_bytes(), conv + 4 * ssm);
    const auto l32 = eng->prefill({1, 2, 3, 4});
    eng->set_state_precision(kernels::StateType::BF16);
    EXPECT_EQ(eng->state_bytes(), conv + 2 * ssm);
    EXPECT_TRUE(eng->history().empty());  // switching resets
    const auto l16 = eng->prefill({1, 2, 3, 4});
    EXPECT_NE(l32, l16);
    eng->set_state_precision(kernels::StateType::F32);
    EXPECT_EQ(eng->prefill({1, 2, 3, 4}), l32);
    EXPECT_THROW(eng->set_prefill_block(0), std::invalid_argument);
    bimamba::base::remove_tree(dir);
}

// An f16 state that nears its range: a model whose SSM barely decays
// (A ≈ 0) and whose inputs are large accumulates past 32768 within a few
// dozen tokens. The default (f16) engine must notice, switch to float32 and
// re-feed the sequence: from then on its logits are exactly the f32 engine's,
// finite, through prefill and decoding alike.
// That model, exported to dir/m.bmd.
static void export_growing_state_model(const fs::path& dir, const Mamba2Config& cfg) {
    auto model = make_model(cfg, 5);
    {
        torch::NoGradGuard ng;
        for (auto& [name, t] : model->named_tensors()) {
            auto ends = [&](const char* suffix) { return ends_with(name, suffix); };
            if (ends("A_log"))
                t.fill_(-30.0);  // A = -e^-30: no decay
            else if (ends("dt_bias"))
                t.fill_(10.0);  // dt = softplus(10) ≈ 10
            else if (ends("in_proj.weight")) {
                t.mul_(30.0);
                t.narrow(0, t.size(0) - cfg.nheads(), cfg.nheads()).zero_();  // the dt rows: dt = softplus(dt_bias)
            }
        }
    }
    save_model(model, dir.string());
    engine::export_checkpoint(dir.string(), (dir / "m.bmd").string(), ids_only());
}

TEST(Engine, F16StateNearItsRangeFallsBackToF32) {
    auto dir = temp_dir("f16range");
    auto cfg = tiny(Binarize::None, false);
    export_growing_state_model(dir, cfg);
    engine::EngineOptions o32;
    o32.state = kernels::StateType::F32;
    auto e16 = engine::Engine::load((dir / "m.bmd").string());
    auto e32 = engine::Engine::load((dir / "m.bmd").string(), o32);
    std::mt19937 rng(8);
    std::vector<int> prompt(120);
    for (auto& t : prompt) t = (int)(rng() % cfg.vocab_size);
    EXPECT_EQ(e16->prefill(prompt), e32->prefill(prompt));  // batched prefill crosses the limit
    EXPECT_EQ(e16->state_fallbacks(), 1);
    EXPECT_EQ(e16->state_precision(), kernels::StateType::F32);
    for (int i = 0; i < 5; ++i) {
        const auto& a = e16->step(i);
        EXPECT_EQ(a, e32->step(i));
        for (float v : a) ASSERT_TRUE(std::isfinite(v));
    }
    // Token by token from a fresh engine: the fallback happens inside step().
    auto f16 = engine::Engine::load((dir / "m.bmd").string());
    e32->reset();
    std::vector<float> a, b;
    for (int t : prompt) a = f16->step(t), b = e32->step(t);
    EXPECT_EQ(a, b);
    EXPECT_EQ(f16->state_fallbacks(), 1);
    EXPECT_EQ(f16->history(), e32->history());
    // prefill_logits after earlier tokens: the whole call runs again on an f32
    // state, so every row (and the state after it) is the f32 engine's.
    auto g16 = engine::Engine::load((dir / "m.bmd").string());
    e32->reset();
    const std::vector<int> head(prompt.begin(), prompt.begin() + 3), rest(prompt.begin() + 3, prompt.end());
    g16->prefill(head);
    e32->prefill(head);
    std::vector<float> l16(rest.size() * cfg.vocab_size), l32(l16.size());
    g16->prefill_logits(rest, l16.data());
    e32->prefill_logits(rest, l32.data());
    EXPECT_EQ(g16->state_fallbacks(), 1);
    EXPECT_EQ(l16, l32);
    EXPECT_EQ(g16->history(), e32->history());
    EXPECT_EQ(g16->step(2), e32->step(2));
    bimamba::base::remove_tree(dir);
}

// The f16 guard skips the kernel's exact max |h| while a bound it carries
// (dA·bound + dt·max|x|·max|B|, with margins) stays under the limit. The bound
// must hold the stored state's true max at every step, in every layer and
// head: on the model above, whose state grows to the limit (token by token,
// until the fallback), and on an ordinary one, where the bound must stay
// under the limit (the skipping path is the one that runs) and above 0.
TEST(Engine, F16StateBoundHoldsTheStateMax) {
    auto dir = temp_dir("f16bound");
    auto cfg = tiny(Binarize::None, false);
    export_growing_state_model(dir, cfg);
    auto grow = engine::Engine::load((dir / "m.bmd").string());
    std::mt19937 rng(8);
    int checked = 0;
    float largest = 0;
    for (int i = 0; i < 120 && grow->state_precision() == kernels::StateType::F16; ++i) {
        grow->step((int)(rng() % cfg.vocab_size));
        if (grow->state_precision() != kernels::StateType::F16) break;  // fell back: the state is f32 now
        for (int l = 0; l < cfg.n_layer; ++l)
            for (int h = 0; h < cfg.nheads(); ++h) {
                const float m = grow->state_max_abs(l, h);
                ASSERT_GE(grow->state_abs_bound(l, h), m) << "token " << i << " layer " << l << " head " << h;
                largest = std::max(largest, m);
                ++checked;
            }
    }
    EXPECT_EQ(grow->state_fallbacks(), 1);
    EXPECT_GT(largest, 1000.f);  // the bound was checked on a large state, not only near 0
    EXPECT_GT(checked, 0);
    auto plain_dir = temp_dir("f16bound-plain");
    save_model(make_model(cfg, 3), plain_dir.string());
    engine::export_checkpoint(plain_dir.string(), (plain_dir / "m.bmd").string(), ids_only());
    auto plain = engine::Engine::load((plain_dir / "m.bmd").string());
    for (int i = 0; i < 64; ++i) {
        plain->step((int)(rng() % cfg.vocab_size));
        for (int l = 0; l < cfg.n_layer; ++l)
            for (int h = 0; h < cfg.nheads(); ++h) {
                const float m = plain->state_max_abs(l, h), b = plain->state_abs_bound(l, h);
                ASSERT_GE(b, m) << "token " << i << " layer " << l << " head " << h;
                ASSERT_GT(b, 0.f);
                ASSERT_LT(b, 32768.f);
            }
    }
    bimamba::base::remove_tree(dir);
    bimamba::base::remove_tree(plain_dir);
}

// The integer-table kernel quantizes the projection inputs to int16: within
// the 1e-3 bound (above), really different from the exact lut3 engine, and
// batched prefill still equals token by token.
// prefill_logits (what `bimamba eval` scores a window with): the logits after
// every token equal step()'s token by token, bit for bit, for each ±1 kernel,
// with the int8 head (a GEMM) and a float one, in blocks that do not divide
// the sequence, after earlier tokens, and the engine goes on from the same state.
TEST(Engine, PrefillLogitsEqualStepByStepBitForBit) {
    auto dir = temp_dir("prefill_logits");
    auto cfg = tiny(Binarize::InOutProj, true);
    save_model(make_model(cfg, 21), dir.string());
    const int V = cfg.vocab_size;
    for (auto head : {engine::HeadStorage::Q8, engine::HeadStorage::F16}) {
        engine::ExportOptions eo = ids_only();
        eo.head = head;
        const std::string file = (dir / "m.bmd").string();
        engine::export_checkpoint(dir.string(), file, eo);
        for (const char* k : {"i16lut", "lut3", "i8lut"}) {
            engine::EngineOptions o = with_kernel(k);
            o.prefill_block = 5;
            auto stepped = engine::Engine::load(file, o);
            auto batched = engine::Engine::load(file, o);
            const std::string what = std::string(k) + " head " + stepped->head_storage();
            std::vector<int> earlier = {3, 1, 4}, seq;
            for (int i = 0; i < 11; ++i) seq.push_back((i * 29 + 7) % V);  // blocks of 5, 5 and 1
            for (int t : earlier) stepped->step(t);
            batched->prefill(earlier);
            std::vector<float> all((size_t)seq.size() * V, -1.f);
            batched->prefill_logits(seq, all.data());
            for (size_t t = 0; t < seq.size(); ++t) {
                const auto& want = stepped->step(seq[t]);
                for (int v = 0; v < V; ++v)
                    ASSERT_EQ(all[t * V + v], want[v]) << what << " position " << t << " token " << v;
            }
            EXPECT_EQ(batched->step(9), stepped->step(9)) << what << ": the state after the call";
            EXPECT_THROW(batched->prefill_logits({}, all.data()), std::invalid_argument);
            EXPECT_THROW(batched->prefill_logits({V}, all.data()), std::out_of_range);
        }
    }
    bimamba::base::remove_tree(dir);
}

TEST(Engine, I16LutKernelIsQuantizedButClose) {
    double rel_i16, rel_lut3;
    rel_i16 =
        run_parity(tiny(Binarize::InOutProj, true), engine::FloatStorage::F32, "i16lut", with_kernel("i16lut")).max_rel;
    rel_lut3 =
        run_parity(tiny(Binarize::InOutProj, true), engine::FloatStorage::F32, "i16lut_ref_lut3", with_kernel("lut3"))
            .max_rel;
    EXPECT_LT(rel_i16, 1e-3);
    EXPECT_GT(rel_i16, rel_lut3) << "the i16lut kernel made no difference: is it used?";
    EXPECT_THROW(engine::check_binary_kernel("lut9"), std::invalid_argument);

    auto dir = temp_dir("i16_prefill");
    auto cfg = tiny(Binarize::InOutProj, true);
    save_model(make_model(cfg, 12), dir.string());
    engine::export_checkpoint(dir.string(), (dir / "m.bmd").string(), ids_only());
    engine::EngineOptions one = with_kernel("i16lut"), blk = with_kernel("i16lut");
    one.prefill_block = 1;
    blk.prefill_block = 4;
    auto a = engine::Engine::load((dir / "m.bmd").string(), one);
    auto b = engine::Engine::load((dir / "m.bmd").string(), blk);
    std::vector<int> prompt;
    for (int i = 0; i < 11; ++i) prompt.push_back((i * 37 + 5) % cfg.vocab_size);
    EXPECT_EQ(a->prefill(prompt), b->prefill(prompt));
    EXPECT_EQ(a->step(3), b->step(3));
    bimamba::base::remove_tree(dir);
}

// The int8-table kernel (opt-in, lossier): on a CPU with AVX-512 VBMI + VNNI
// its SIMD path, elsewhere its reference (on every ISA); its logits stay
// within 6e-2 of LibTorch on the tiny random model (4.4e-2 measured; i16lut
// 6e-4: int8 steps on random Gaussian weights add up over the layers), the 64
// greedy tokens stay the same, batched prefill equals token by token, and the
// scalar engine's reference gives this CPU's path's logits to float rounding.
TEST(Engine, I8LutKernelIsCoarserButClose) {
    engine::EngineOptions o = with_kernel("i8lut");
    const auto P = run_parity(tiny(Binarize::InOutProj, true), engine::FloatStorage::F32, "i8lut", o);
    const double rel_i16 =
        run_parity(tiny(Binarize::InOutProj, true), engine::FloatStorage::F32, "i8lut_ref_i16", with_kernel("i16lut"))
            .max_rel;
    EXPECT_LT(P.max_rel, 6e-2);
    EXPECT_TRUE(P.greedy_equal) << "first difference at " << P.greedy_first_diff;
    EXPECT_GT(P.max_rel, rel_i16) << "the i8lut kernel made no difference: is it used?";

    auto dir = temp_dir("i8_prefill");
    auto cfg = tiny(Binarize::InOutProj, true);
    save_model(make_model(cfg, 12), dir.string());
    engine::export_checkpoint(dir.string(), (dir / "m.bmd").string(), ids_only());
    engine::EngineOptions one = o, blk = o;
    one.prefill_block = 1;
    blk.prefill_block = 4;
    auto a = engine::Engine::load((dir / "m.bmd").string(), one);
    auto b = engine::Engine::load((dir / "m.bmd").string(), blk);
    EXPECT_STREQ(a->binary_kernel(), "i8lut");
    const bool simd = kernels::best_isa() == kernels::Isa::Avx512 && kernels::cpu_has_avx512_vbmi_vnni();
    EXPECT_STREQ(a->binary_kernel_path(), simd ? "simd" : "reference");
    // Every ISA runs it: where the SIMD kernel is missing, the reference gives the same tokens.
    engine::EngineOptions scalar = o;
    scalar.isa = "scalar";
    auto s = engine::Engine::load((dir / "m.bmd").string(), scalar);
    EXPECT_STREQ(s->binary_kernel_path(), "reference");
    std::vector<int> prompt;
    for (int i = 0; i < 11; ++i) prompt.push_back((i * 37 + 5) % cfg.vocab_size);
    EXPECT_EQ(a->prefill(prompt), b->prefill(prompt));
    EXPECT_EQ(a->step(3), b->step(3));
    a->reset();
    const std::vector<float> ls = s->prefill(prompt), la = a->prefill(prompt);
    ASSERT_EQ(ls.size(), la.size());
    float d = 0;
    for (size_t i = 0; i < ls.size(); ++i) d = std::max(d, std::fabs(ls[i] - la[i]));
    EXPECT_LT(d, 1e-3f) << "the i8lut reference and this CPU's i8lut path differ beyond float rounding";
    bimamba::base::remove_tree(dir);
}

// Engine options, not process-wide settings: engines with different ±1
// kernels (and ISAs, thread counts) loaded from one file live side by side in
// one process, decode interleaved, and each gives the logits of the reference
// (the scalar path of the exact sign-flip kernel, one thread) within its
// kernel's bound: lut3 exact to float rounding, i16lut within the 1e-3 bound of
// its int16 input. Each also equals, bit for bit, an engine of its options
// loaded alone afterwards (nothing leaks from one engine to another).
TEST(Engine, EnginesWithDifferentKernelsLiveSideBySide) {
    auto dir = temp_dir("side_by_side");
    auto cfg = tiny(Binarize::InOutProj, true);
    save_model(make_model(cfg, 31), dir.string());
    const std::string file = (dir / "m.bmd").string();
    engine::export_checkpoint(dir.string(), file, ids_only());

    engine::EngineOptions ref_o = with_kernel("xor");
    ref_o.state = kernels::StateType::F32;
    ref_o.isa = "scalar";
    ref_o.threads = 1;
    engine::EngineOptions lut3_o = with_kernel("lut3"), i16_o = with_kernel("i16lut");
    lut3_o.state = i16_o.state = kernels::StateType::F32;
    i16_o.threads = 1;  // a pool of its own next to lut3's (all cores)
    auto ref = engine::Engine::load(file, ref_o);
    auto lut3 = engine::Engine::load(file, lut3_o);
    auto i16 = engine::Engine::load(file, i16_o);
    EXPECT_STREQ(ref->binary_kernel(), "xor");
    EXPECT_STREQ(ref->isa(), "scalar");
    EXPECT_EQ(ref->threads(), 1);
    EXPECT_STREQ(lut3->binary_kernel(), "lut3");
    EXPECT_STREQ(i16->binary_kernel(), "i16lut");
    EXPECT_STREQ(lut3->isa(), kernels::isa_name(kernels::best_isa()));
    EXPECT_EQ(i16->threads(), 1);
    // "auto" resolves per engine by capability score: the default kernel.
    auto dflt = engine::Engine::load(file);
    EXPECT_STREQ(dflt->binary_kernel(), engine::kDefaultBinaryKernel);
    EXPECT_STREQ(dflt->isa(), kernels::isa_name(kernels::best_isa()));
    EXPECT_THROW(engine::Engine::load(file, with_kernel("lut9")), std::invalid_argument);
    engine::EngineOptions bad_isa;
    bad_isa.isa = "avx9000";
    EXPECT_THROW(engine::Engine::load(file, bad_isa), std::invalid_argument);

    auto rel = [](const std::vector<float>& a, const std::vector<float>& b) {
        double d = 0, m = 0;
        for (size_t i = 0; i < a.size(); ++i) {
            d = std::max(d, (double)std::fabs(a[i] - b[i]));
            m = std::max(m, (double)std::fabs(b[i]));
        }
        return d / std::max(m, 1e-30);
    };
    std::mt19937 rng(9);
    std::vector<int> prompt(13), tokens(24);
    for (auto& t : prompt) t = (int)(rng() % cfg.vocab_size);
    for (auto& t : tokens) t = (int)(rng() % cfg.vocab_size);
    std::vector<std::vector<float>> got_lut3, got_i16;
    double max_lut3 = 0, max_i16 = 0;
    {
        const std::vector<float> r = ref->prefill(prompt), a = lut3->prefill(prompt), b = i16->prefill(prompt);
        max_lut3 = rel(a, r);
        max_i16 = rel(b, r);
        got_lut3.push_back(a);
        got_i16.push_back(b);
    }
    for (int t : tokens) {  // interleaved: one token on each engine in turn
        const std::vector<float> r = ref->step(t), a = lut3->step(t), b = i16->step(t);
        max_lut3 = std::max(max_lut3, rel(a, r));
        max_i16 = std::max(max_i16, rel(b, r));
        got_lut3.push_back(a);
        got_i16.push_back(b);
    }
    // lut3 is exact up to float rounding: its sums run in another order than
    // the scalar reference's (8 lanes under AVX2, 16 under AVX-512, e.g. the
    // SSM's y), measured 9.1e-6 (AVX2) and 1.3e-5 (AVX-512) on this model,
    // against i16lut's 4.8e-4.
    EXPECT_LT(max_lut3, 3e-5) << "lut3 is exact to float rounding";
    EXPECT_LT(max_i16, 1e-3);
    EXPECT_GT(max_i16, max_lut3) << "the i16lut engine gave lut3's logits: is its kernel used?";

    // Alone afterwards, with the same options: the same logits bit for bit.
    ref = nullptr;  // the others go too: only the new engine is loaded
    lut3 = nullptr;
    i16 = nullptr;
    for (auto [o, want] : {std::make_pair(lut3_o, &got_lut3), std::make_pair(i16_o, &got_i16)}) {
        auto e = engine::Engine::load(file, o);
        EXPECT_EQ(e->prefill(prompt), (*want)[0]) << o.binary_kernel;
        for (size_t i = 0; i < tokens.size(); ++i)
            EXPECT_EQ(e->step(tokens[i]), (*want)[i + 1]) << o.binary_kernel << " " << i;
    }
    bimamba::base::remove_tree(dir);
}

// `bimamba eval` on a deployment file: the engine as a LogitsFn gives, for a
// batch of sequences, the logits step() gives from a reset state at every
// position, and the perplexity of a token stream stays within the engine's
// 1e-3 logit bound of the LibTorch model's (here: |Δ log ppl| < 1e-3).
TEST(Engine, EvalScorerMatchesStepAndLibTorchPerplexity) {
    auto dir = temp_dir("scorer");
    auto cfg = tiny(Binarize::InOutProj, true);
    auto model = make_model(cfg, 21);
    save_model(model, dir.string());
    engine::ExportOptions eo = ids_only();
    eo.head = engine::HeadStorage::AsFloat;  // the 1e-3 bound is the float head's (int8: Q8HeadStaysWithin...)
    engine::export_checkpoint(dir.string(), (dir / "m.bmd").string(), eo);
    std::shared_ptr<engine::Engine> eng = engine::Engine::load((dir / "m.bmd").string());
    auto fn = eval::engine_logits_fn(eng);

    std::mt19937 rng(3);
    std::vector<int> stream(200);
    for (auto& t : stream) t = (int)(rng() % cfg.vocab_size);
    auto ids = torch::tensor(std::vector<int64_t>(stream.begin(), stream.begin() + 20), torch::kInt64).view({2, 10});
    auto got = fn(ids);
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{2, 10, cfg.vocab_size}));
    auto other = engine::Engine::load((dir / "m.bmd").string());
    for (int b = 0; b < 2; ++b) {
        other->reset();
        for (int t = 0; t < 10; ++t) {
            const auto& want = other->step(stream[b * 10 + t]);
            auto row = got[b][t].contiguous();
            ASSERT_EQ(std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + cfg.vocab_size), want)
                << "sequence " << b << " position " << t;
        }
    }
    eval::PerplexityOptions po;
    po.window = 50;
    po.batch_size = 2;
    const auto pe = eval::perplexity(fn, stream, po);
    const auto pt = eval::perplexity(eval::logits_fn(model), stream, po);
    EXPECT_EQ(pe.predictions, pt.predictions);
    EXPECT_NEAR(pe.mean_nll(), pt.mean_nll(), 1e-3) << "engine ppl " << pe.ppl() << " vs LibTorch " << pt.ppl();
    EXPECT_GT(pe.ppl(), 1.0);
    bimamba::base::remove_tree(dir);
}
