// Checkpoints: tensors <-> safetensors for every supported dtype, model folders
// round-trip bit-exactly (same logits), Hugging Face names and sharded folders
// load into the same model, pickled .bin folders and broken folders are refused.
#include "core/base/FileUtil.h"
#include <gtest/gtest.h>

#include "tests/ModelTestUtil.h"
#include "tests/TestUtil.h"
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/base/Safetensors.h"
#include "core/model/Checkpoint.h"
#include "core/model/Mamba2Model.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::model;
namespace fs = std::filesystem;

namespace {
using test::fresh_dir;
using test::randomize;
using test::write_text;

Mamba2LM tiny_model(Binarize b, uint64_t seed) {
    torch::manual_seed(seed);
    auto cfg = Mamba2Config::preset("tiny");
    cfg.binarize = b;
    Mamba2LM m(cfg);
    randomize(m);
    m->eval();
    return m;
}

torch::Tensor sample_ids(int64_t vocab) {
    torch::manual_seed(123);
    return torch::randint(0, vocab, {2, 37}, torch::kInt64);
}

torch::Tensor logits_of(Mamba2LM m, const torch::Tensor& ids) {
    torch::NoGradGuard ng;
    return m->forward(ids);
}

// HF transformers' config.json for the same architecture.
nlohmann::json hf_config(const Mamba2Config& c) {
    return {{"model_type", "mamba2"},
            {"architectures", {"Mamba2ForCausalLM"}},
            {"hidden_size", c.d_model},
            {"num_hidden_layers", c.n_layer},
            {"vocab_size", c.padded_vocab()},
            {"state_size", c.ssm.d_state},
            {"conv_kernel", c.ssm.d_conv},
            {"expand", c.ssm.expand},
            {"head_dim", c.ssm.headdim},
            {"num_heads", c.nheads()},
            {"n_groups", c.ssm.ngroups},
            {"chunk_size", c.ssm.chunk_size},
            {"use_bias", c.ssm.bias},
            {"use_conv_bias", c.ssm.conv_bias},
            {"layer_norm_epsilon", c.norm_epsilon},
            {"residual_in_fp32", true},
            {"tie_word_embeddings", true},
            {"dtype", "float32"}};
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

TEST(Checkpoint, TensorsRoundTripEveryDtype) {
    torch::manual_seed(1);
    std::map<std::string, torch::Tensor> t = {
        {"f32", torch::randn({3, 5})},
        {"f16", torch::randn({4, 2}).to(torch::kFloat16)},
        {"bf16", torch::randn({7}).to(torch::kBFloat16)},
        {"f64", torch::randn({2, 2}, torch::kFloat64)},
        {"i64", torch::randint(-(int64_t(1) << 40), int64_t(1) << 40, {6}, torch::kInt64)},
        {"i32", torch::randint(-1000, 1000, {2, 3}, torch::kInt32)},
        {"u8", torch::randint(0, 256, {9}, torch::kUInt8)},
        {"bool", torch::rand({5}) > 0.5},
        {"transposed", torch::randn({3, 4}).t()},  // non-contiguous: stored as its contiguous copy
        {"scalar", torch::tensor(3.5f).reshape({})},
    };
    std::string path = fresh_dir("dtypes") + "/t.safetensors";
    save_tensors(path, t, {{"origin", "test"}});
    auto f = base::SafetensorsFile::open(path);
    EXPECT_EQ(f->metadata().at("origin"), "test");
    EXPECT_EQ(f->get("bf16").dtype, base::DType::BF16);
    EXPECT_EQ(f->get("f16").dtype, base::DType::F16);
    EXPECT_EQ(f->get("u8").dtype, base::DType::U8);
    EXPECT_EQ(f->get("i32").dtype, base::DType::I32);
    EXPECT_EQ(f->get("i64").dtype, base::DType::I64);
    auto back = load_tensors(path);
    ASSERT_EQ(back.size(), t.size());
    for (auto& [name, x] : t) {
        SCOPED_TRACE(name);
        ASSERT_TRUE(back.count(name));
        EXPECT_EQ(back[name].scalar_type(), x.scalar_type());
        EXPECT_EQ(back[name].sizes(), x.sizes());
        EXPECT_TRUE(torch::equal(back[name], x));
    }
    // bf16 bytes on disk are the tensor's own bits.
    uint16_t first;
    std::memcpy(&first, f->get("bf16").data, 2);
    EXPECT_EQ(base::bf16_to_f32(first), t["bf16"][0].item<float>());
    // Unsupported dtypes are refused by name.
    expect_error([&] { save_tensors(path, {{"c", torch::zeros({2}, torch::kComplexFloat)}}); }, "cannot store dtype");
}

TEST(Checkpoint, ModelRoundTripIsBitExact) {
    auto m = tiny_model(Binarize::InOutProj, 7);
    std::string dir = fresh_dir("roundtrip");
    save_model(m, dir);
    EXPECT_TRUE(fs::exists(dir + "/config.json"));
    EXPECT_TRUE(fs::exists(dir + "/model.safetensors"));
    for (auto& e : fs::directory_iterator(dir))
        EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();

    auto cfg = load_model_config(dir);
    EXPECT_EQ(cfg.to_json(), m->config().to_json());
    auto l = load_model(dir);
    EXPECT_EQ(l->config().binarize, Binarize::InOutProj);
    auto a = m->named_tensors(), b = l->named_tensors();
    ASSERT_EQ(a.size(), b.size());
    int binary_scales = 0;
    for (auto& [name, t] : a) {
        SCOPED_TRACE(name);
        ASSERT_TRUE(b.count(name));
        EXPECT_EQ(b[name].scalar_type(), t.scalar_type());
        EXPECT_TRUE(torch::equal(b[name], t));
        binary_scales += name.find("wscale") != std::string::npos;
    }
    EXPECT_EQ(binary_scales, 2 * cfg.n_layer);  // in_proj and out_proj of every layer
    auto ids = sample_ids(cfg.vocab_size);
    EXPECT_TRUE(torch::equal(logits_of(m, ids), logits_of(l, ids)));

    // The file path itself (config.json beside it) loads too.
    auto l2 = load_model(dir + "/model.safetensors");
    EXPECT_TRUE(torch::equal(logits_of(m, ids), logits_of(l2, ids)));

    // A different model really gives different logits (the check above can fail).
    auto other = tiny_model(Binarize::InOutProj, 8);
    EXPECT_FALSE(torch::equal(logits_of(m, ids), logits_of(other, ids)));
}

TEST(Checkpoint, HuggingFaceNamesLoadIntoSameLogits) {
    auto m = tiny_model(Binarize::None, 11);
    std::string dir = fresh_dir("hf");
    auto tensors = m->named_tensors();
    std::map<std::string, torch::Tensor> hf;
    for (auto& [k, v] : tensors) hf[k == "backbone.embedding.weight" ? "backbone.embeddings.weight" : k] = v;
    ASSERT_TRUE(hf.count("backbone.embeddings.weight"));
    ASSERT_FALSE(hf.count("backbone.embedding.weight"));
    save_tensors(dir + "/model.safetensors", hf);
    write_text(dir + "/config.json", hf_config(m->config()).dump(2));
    auto l = load_model(dir);
    auto ids = sample_ids(m->config().vocab_size);
    EXPECT_TRUE(torch::equal(logits_of(m, ids), logits_of(l, ids)));

    // Tied weights stored only as lm_head.weight (some exporters do this).
    std::string dir2 = fresh_dir("hf_head_only");
    auto head = hf;
    head["lm_head.weight"] = head["backbone.embeddings.weight"];
    head.erase("backbone.embeddings.weight");
    save_tensors(dir2 + "/model.safetensors", head);
    write_text(dir2 + "/config.json", hf_config(m->config()).dump(2));
    EXPECT_TRUE(torch::equal(logits_of(m, ids), logits_of(load_model(dir2), ids)));
}

TEST(Checkpoint, ShardedFolderLoads) {
    auto m = tiny_model(Binarize::InProj, 21);
    std::string dir = fresh_dir("sharded");
    auto tensors = m->named_tensors();
    // Three shards, names spread round-robin, with the HF index file.
    std::vector<std::map<std::string, torch::Tensor>> shards(3);
    nlohmann::json weight_map;
    int i = 0;
    for (auto& [k, v] : tensors) {
        int s = i++ % 3;
        shards[size_t(s)][k] = v;
        weight_map[k] = "model-0000" + std::to_string(s + 1) + "-of-00003.safetensors";
    }
    for (int s = 0; s < 3; ++s)
        save_tensors(dir + "/model-0000" + std::to_string(s + 1) + "-of-00003.safetensors", shards[size_t(s)]);
    nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
    write_text(dir + "/model.safetensors.index.json", index.dump(2));
    write_text(dir + "/config.json", m->config().to_json().dump(2));
    ASSERT_FALSE(fs::exists(dir + "/model.safetensors"));

    auto all = load_tensors_any(dir);
    ASSERT_EQ(all.size(), tensors.size());
    for (auto& [k, v] : tensors) EXPECT_TRUE(torch::equal(all.at(k), v)) << k;
    auto ids = sample_ids(m->config().vocab_size);
    EXPECT_TRUE(torch::equal(logits_of(m, ids), logits_of(load_model(dir), ids)));

    // Index naming a tensor no shard holds.
    weight_map["backbone.extra.weight"] = "model-00001-of-00003.safetensors";
    write_text(dir + "/model.safetensors.index.json", nlohmann::json({{"weight_map", weight_map}}).dump());
    expect_error([&] { load_tensors_any(dir); }, "'backbone.extra.weight' listed in the index is missing");
    // Index naming a shard that is not there.
    weight_map.erase("backbone.extra.weight");
    weight_map["backbone.norm_f.weight"] = "model-00004-of-00004.safetensors";
    write_text(dir + "/model.safetensors.index.json", nlohmann::json({{"weight_map", weight_map}}).dump());
    expect_error([&] { load_tensors_any(dir); }, "missing shard model-00004-of-00004.safetensors");
    // Index that is not JSON.
    write_text(dir + "/model.safetensors.index.json", "{\"weight_map\": ");
    expect_error([&] { load_tensors_any(dir); }, "is not valid JSON");
}

// A config.json that does not belong to the weights beside it, describing a
// model far larger than they are, is refused before the model is allocated
// (issue #17: 80 GB of parameters were allocated and initialised, then the
// process was killed for memory or failed minutes later).
TEST(Checkpoint, ConfigFarLargerThanTheWeightsIsRefusedBeforeAllocating) {
    std::string dir = fresh_dir("config_too_big");
    save_model(Mamba2LM(Mamba2Config::preset("tiny")), dir);
    write_text(dir + "/config.json", R"({"d_model": 8192, "n_layer": 48, "vocab_size": 50000})");
    expect_error([&] { load_model(dir); }, "describes a model of");
    expect_error([&] { load_model(dir); }, "the config does not belong to these weights");
    // The right config loads.
    write_text(dir + "/config.json", Mamba2Config::preset("tiny").to_json().dump());
    EXPECT_NO_THROW(load_model(dir));
}

TEST(Checkpoint, PickledBinFoldersAreRefused) {
    const std::string msg =
        "pickled .bin checkpoints are not loaded; convert to safetensors (e.g. with transformers' "
        "save_pretrained(safe_serialization=True))";
    std::string dir = fresh_dir("bin_only");
    write_text(dir + "/pytorch_model.bin", "PK\x03\x04 not really a zip");
    write_text(dir + "/config.json", hf_config(Mamba2Config::preset("tiny")).dump());
    expect_error([&] { load_tensors_any(dir); }, msg);
    expect_error([&] { load_model(dir); }, msg);
    expect_error([&] { load_tensors_any(dir + "/pytorch_model.bin"); }, msg);

    std::string dir2 = fresh_dir("bin_shards");
    write_text(dir2 + "/pytorch_model-00001-of-00002.bin", "x");
    write_text(dir2 + "/pytorch_model-00002-of-00002.bin", "x");
    expect_error([&] { load_tensors_any(dir2); }, msg);
}

TEST(Checkpoint, BrokenFoldersGiveClearErrors) {
    auto m = tiny_model(Binarize::None, 31);
    std::string dir = fresh_dir("broken");
    expect_error([&] { load_tensors_any(dir); }, "has no model.safetensors");
    expect_error([&] { load_model(dir + "/nope"); }, "no checkpoint at");
    save_model(m, dir);
    fs::remove(dir + "/config.json");
    expect_error([&] { load_model(dir); }, "no config.json");
    // A truncated weights file names the file.
    save_model(m, dir);
    fs::resize_file(dir + "/model.safetensors", fs::file_size(dir + "/model.safetensors") - 100);
    expect_error([&] { load_model(dir); }, dir + "/model.safetensors");
    // Weights of another architecture: the model names the mismatch.
    save_model(m, dir);
    auto cfg = m->config();
    cfg.d_model = 32;
    write_text(dir + "/config.json", cfg.to_json().dump());
    expect_error([&] { load_model(dir); }, "shape");
}

TEST(Checkpoint, RunDirectoryLoadsLatestCheckpoint) {
    auto m = tiny_model(Binarize::InOutProj, 41);
    std::string run = fresh_dir("run");
    save_model(m, run + "/checkpoints/step_00000010");
    write_text(run + "/checkpoints/latest", "step_00000010\n");
    auto ids = sample_ids(m->config().vocab_size);
    EXPECT_TRUE(torch::equal(logits_of(m, ids), logits_of(load_model(run), ids)));
    EXPECT_EQ(load_model_config(run).to_json(), m->config().to_json());
}
