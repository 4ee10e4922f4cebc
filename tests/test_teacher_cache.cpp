// Teacher top-k logits cache: exact contents, renormalised loss, errors, and a
// student that learns from the cache alone.
#include "core/base/FileUtil.h"
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/model/Mamba2Model.h"
#include "core/data/TeacherCacheFile.h"
#include "core/train/TeacherCache.h"
#include "tests/TestUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
using namespace bimamba::model;
using namespace bimamba::train;
namespace fs = std::filesystem;

namespace {
struct Fixture {
    fs::path dir = fs::temp_directory_path() / ("bm_tcache_" + std::to_string(::getpid()));
    Mamba2Config cfg = Mamba2Config::preset("tiny");
    Mamba2LM teacher{nullptr};
    torch::Tensor tokens;  // the "dataset": one long stream
    int S = 24, K = 16;
    int64_t N = 5;
    Fixture() {
        fs::create_directories(dir);
        torch::manual_seed(11);
        teacher = Mamba2LM(cfg);
        teacher->eval();
        tokens = torch::randint(0, cfg.vocab_size, {N * S + 1}, torch::kLong);
    }
    ~Fixture() { bimamba::base::remove_tree(dir); }
    std::string build(int k) {
        TeacherCacheSpec spec;
        spec.k = k;
        spec.seq_len = S;
        spec.vocab_size = cfg.vocab_size;
        spec.num_windows = N;
        spec.batch = 2;
        std::string path = (dir / ("cache_k" + std::to_string(k) + ".bin")).string();
        build_teacher_cache(
            path, spec, [&](int64_t w) { return tokens.narrow(0, w * S, S); },
            [&](const torch::Tensor& ids) { return teacher->forward(ids); });
        return path;
    }
};
}  // namespace

TEST(TeacherCache, StoresTheTeachersTopK) {
    Fixture fx;
    auto cache = TeacherCache::open(fx.build(fx.K));
    EXPECT_EQ(cache->k(), fx.K);
    EXPECT_EQ(cache->num_windows(), fx.N);
    torch::NoGradGuard ng;
    for (int64_t w : {0, 3, 4}) {
        auto logits = fx.teacher->forward(fx.tokens.narrow(0, w * fx.S, fx.S).unsqueeze(0))[0];
        auto [tv, ti] = logits.topk(fx.K, -1);
        auto [v, ids] = cache->window(w);
        EXPECT_TRUE(torch::equal(ids, ti)) << "window " << w;
        EXPECT_TRUE(torch::allclose(v, tv.to(torch::kFloat16).to(torch::kFloat32))) << "window " << w;
    }
    EXPECT_THROW(cache->window(fx.N), std::out_of_range);
}

TEST(TeacherCache, LossWithFullVocabularyEqualsSoftCrossEntropy) {
    torch::manual_seed(2);
    const int V = 12;
    auto student = torch::randn({2, 3, V}, torch::requires_grad());
    auto teacher = torch::randn({2, 3, V});
    auto [v, ids] = teacher.topk(V, -1);
    auto loss = loss_soft_ce_topk(student, v, ids);
    // −(1/n) Σ_k Σ_v p_T log p_S by hand
    double ref = 0;
    auto pt = torch::softmax(teacher.to(torch::kFloat64), -1),
         ls = torch::log_softmax(student.detach().to(torch::kFloat64), -1);
    for (int b = 0; b < 2; ++b)
        for (int t = 0; t < 3; ++t)
            for (int j = 0; j < V; ++j) ref -= pt[b][t][j].item<double>() * ls[b][t][j].item<double>();
    ref /= 6;
    EXPECT_NEAR(loss.item<double>(), ref, 1e-5);
    loss.backward();
    EXPECT_GT(student.grad().abs().sum().item<double>(), 0.0);
    // Top-1 cache: a one-hot teacher, i.e. plain next-token cross-entropy on the argmax.
    auto [v1, i1] = teacher.topk(1, -1);
    auto ce = torch::nn::functional::cross_entropy(student.detach().view({-1, V}), i1.view({-1}));
    EXPECT_NEAR(loss_soft_ce_topk(student.detach(), v1, i1).item<double>(), ce.item<double>(), 1e-6);
}

TEST(TeacherCache, BrokenFilesAreRefusedByName) {
    Fixture fx;
    std::string path = fx.build(4);
    auto size = fs::file_size(path);
    std::string trunc = (fx.dir / "trunc.bin").string();
    fs::copy_file(path, trunc);
    fs::resize_file(trunc, size - 10);
    try {
        TeacherCache::open(trunc);
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
    std::string junk = (fx.dir / "junk.bin").string();
    std::ofstream(junk) << "definitely not a cache file";
    try {
        TeacherCache::open(junk);
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("magic"), std::string::npos) << e.what();
    }
    EXPECT_THROW(TeacherCache::open((fx.dir / "absent.bin").string()), std::runtime_error);
}

// Headers whose sizes overflow or do not fit their fields (issue #17; seeds
// of tests/fuzz/fuzz_teacher_cache): num_windows · seq_len · k · 6 bytes
// wrapping around 2^64 to the size of a tiny file was accepted, and the
// windows were then read far outside the mapping; a k of 1e300 was cast to
// int (undefined behaviour). Token ids outside the vocabulary are refused
// when their window is read.
TEST(TeacherCache, HeadersWithOverflowingOrBadSizesAreRefused) {
    Fixture fx;
    auto write_cache = [&](const std::string& name, const nlohmann::json& h, size_t body_bytes) {
        const std::string hs = h.dump();
        std::string bytes(kTeacherCacheMagic, 8);
        const uint64_t hl = hs.size();
        bytes.append(reinterpret_cast<const char*>(&hl), 8);
        bytes += hs;
        bytes.resize(teacher_cache_data_start(hs.size()) + body_bytes, '\0');
        const std::string path = (fx.dir / name).string();
        test::write_text(path, bytes);
        return path;
    };
    nlohmann::json h = {{"format", kTeacherCacheFormat},
                        {"k", 1},
                        {"seq_len", 1},
                        {"vocab_size", 4},
                        {"num_windows", 3074457345618258603LL}};  // · 6 = 2^64 + 2
    EXPECT_NE(
        test::error_of([&] { TeacherCache::open(write_cache("wrap.bin", h, 2)); }).find("does not match the header"),
        std::string::npos);
    h["num_windows"] = 1;
    h["k"] = 1e300;
    EXPECT_NE(
        test::error_of([&] { TeacherCache::open(write_cache("float_k.bin", h, 6)); }).find("'k' is not an integer"),
        std::string::npos);
    h["k"] = 5;
    EXPECT_NE(test::error_of([&] { TeacherCache::open(write_cache("k_big.bin", h, 30)); }).find("outside [1, 4]"),
              std::string::npos);
    // A well-formed file whose ids are garbage: opening works, reading the window says why not.
    h["k"] = 1;
    std::string path = write_cache("bad_ids.bin", h, 6);
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(std::streamoff(fs::file_size(path) - 4));
        const int32_t id = 9;
        f.write(reinterpret_cast<const char*>(&id), 4);
    }
    auto c = TeacherCache::open(path);
    EXPECT_NE(test::error_of([&] { c->window(0); }).find("token ids outside [0, 4)"), std::string::npos);
}

TEST(TeacherCache, StudentLearnsFromCacheAlone) {
    Fixture fx;
    auto cache = TeacherCache::open(fx.build(fx.K));
    fx.teacher = nullptr;  // distillation must not need the teacher any more
    auto cfg = fx.cfg;
    cfg.binarize = Binarize::InOutProj;
    torch::manual_seed(5);
    Mamba2LM student(cfg);
    torch::optim::AdamW opt(student->parameters(), torch::optim::AdamWOptions(3e-3));
    auto [v, ids] = cache->windows({0, 1, 2, 3, 4});
    std::vector<torch::Tensor> inputs;
    for (int64_t w = 0; w < fx.N; ++w) inputs.push_back(fx.tokens.narrow(0, w * fx.S, fx.S));
    auto x = torch::stack(inputs);
    double first = 0, last = 0;
    for (int step = 0; step < 30; ++step) {
        opt.zero_grad();
        auto loss = loss_soft_ce_topk(student->forward(x), v, ids);
        loss.backward();
        opt.step();
        if (step == 0) first = loss.item<double>();
        last = loss.item<double>();
    }
    EXPECT_LT(last, first * 0.8) << "first " << first << " last " << last;
}
