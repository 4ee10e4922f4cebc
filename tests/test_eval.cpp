// Perplexity and zero-shot multiple choice against hand computations on fixed
// lookup-table models; task readers on small fixtures; JSONL errors.
#include "core/base/FileUtil.h"
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/eval/EvalTable.h"
#include "core/eval/Jsonl.h"
#include "core/base/ModelSource.h"
#include "core/eval/MultipleChoice.h"
#include "core/eval/Perplexity.h"
#include "core/model/Checkpoint.h"
#include "tests/TestUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::model;
using namespace bimamba::eval;
using bimamba::test::error_of;

namespace {

const std::string kFix = std::string(BIMAMBA_SOURCE_DIR) + "/tests/data/eval/";

// A fixed table T (V×V) in plain doubles; the model's logits at input position
// p are T[id]·(1 + 0.1·p), so scores depend on where a window starts.
struct TableModel {
    int V;
    std::vector<double> T;
    explicit TableModel(int v) : V(v), T(v * v) {
        for (int i = 0; i < V; ++i)
            for (int j = 0; j < V; ++j) T[i * V + j] = std::sin(1.3 * i + 0.7 * j * j) * 2.0;
    }
    LogitsFn fn(bool positional) const {
        auto t = torch::tensor(T, torch::kFloat64).view({V, V});
        return [t, positional](const torch::Tensor& ids) {
            auto lg = t.index_select(0, ids.flatten()).view({ids.size(0), ids.size(1), -1});
            if (!positional) return lg;
            auto pos = torch::arange(ids.size(1), torch::kFloat64).view({1, -1, 1});
            return lg * (1 + 0.1 * pos);
        };
    }
    // -log softmax(T[prev]·scale)[next], by hand.
    double nll(int prev, int next, double scale) const {
        double mx = -1e300;
        for (int j = 0; j < V; ++j) mx = std::max(mx, T[prev * V + j] * scale);
        double z = 0;
        for (int j = 0; j < V; ++j) z += std::exp(T[prev * V + j] * scale - mx);
        return -(T[prev * V + next] * scale - mx - std::log(z));
    }
};

std::string write_temp(const std::string& name, const std::string& text) {
    auto p = std::filesystem::temp_directory_path() / ("bimamba_test_eval_" + std::to_string(::getpid()) + "_" + name);
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
}

}  // namespace

TEST(Perplexity, NonOverlappingWindowsMatchHandComputation) {
    TableModel m(5);
    const std::vector<int> toks = {0, 1, 2, 3, 4, 0, 2, 4, 1, 3, 0};  // 11 tokens
    // window 4: windows [0,4) and [4,8); the 3-token tail is dropped.
    double want = 0;
    for (int b : {0, 4})
        for (int p = 1; p < 4; ++p) want += m.nll(toks[b + p - 1], toks[b + p], 1 + 0.1 * (p - 1));
    for (int64_t bs : {1, 2}) {
        PerplexityOptions o;
        o.window = 4;
        o.batch_size = bs;
        auto r = perplexity(m.fn(true), toks, o);
        EXPECT_EQ(r.windows, 2);
        EXPECT_EQ(r.predictions, 6);
        EXPECT_NEAR(r.nll_sum, want, 1e-12);
        EXPECT_NEAR(r.ppl(), std::exp(want / 6), 1e-12);
    }
    PerplexityOptions o;
    o.window = 4;
    o.max_windows = 1;  // C4-style cap
    EXPECT_EQ(perplexity(m.fn(true), toks, o).predictions, 3);
    o.window = 12;
    EXPECT_THROW(perplexity(m.fn(true), toks, o), std::invalid_argument);
}

TEST(Perplexity, SlidingWindowScoresEveryTokenOnceWithItsContext) {
    TableModel m(5);
    const std::vector<int> toks = {0, 1, 2, 3, 4, 0, 2, 4, 1, 3, 0};
    // window 4, stride 2: (start, first target, end) planned by hand.
    struct W {
        int b, first, end;
    };
    const W plan[] = {{0, 1, 4}, {2, 4, 6}, {4, 6, 8}, {6, 8, 10}, {8, 10, 11}};
    double want = 0;
    for (auto w : plan)
        for (int t = w.first; t < w.end; ++t) want += m.nll(toks[t - 1], toks[t], 1 + 0.1 * (t - 1 - w.b));
    PerplexityOptions o;
    o.window = 4;
    o.stride = 2;
    o.batch_size = 3;
    auto r = perplexity(m.fn(true), toks, o);
    EXPECT_EQ(r.predictions, 10);
    EXPECT_EQ(r.windows, 5);
    EXPECT_NEAR(r.nll_sum, want, 1e-12);
}

TEST(Perplexity, Mamba2BatchingDoesNotChangeTheResult) {
    torch::manual_seed(0);
    auto cfg = Mamba2Config::preset("tiny");
    Mamba2LM model(cfg);
    std::vector<int> toks(16 * 5 + 3);
    for (size_t i = 0; i < toks.size(); ++i) toks[i] = int((i * 37 + 11) % cfg.vocab_size);
    PerplexityOptions o;
    o.window = 16;
    auto a = perplexity(logits_fn(model), toks, o);
    o.batch_size = 3;
    auto b = perplexity(logits_fn(model), toks, o);
    EXPECT_EQ(a.predictions, 75);
    EXPECT_NEAR(a.nll_sum, b.nll_sum, 1e-3);
    EXPECT_GT(a.ppl(), 100);  // an untrained model is near uniform over 512 tokens
}

TEST(Perplexity, CorpusProtocolsJoinDocuments) {
    auto txt = write_temp("c.txt", "a\nb\n\nc\n");
    EXPECT_EQ(load_eval_text(txt, CorpusProtocol::Raw), "a\nb\n\nc\n");
    EXPECT_EQ(load_eval_text(txt, CorpusProtocol::WikiText2),
              "a\n\n\nb\n\n\n\n\n\nc\n");  // rows "a\n" "b\n" "\n" "c\n"
    EXPECT_EQ(load_eval_text(txt, CorpusProtocol::PTB), "a b  c");
    std::string jl;
    for (int i = 0; i < 1200; ++i) jl += "{\"text\": \"d" + std::to_string(i) + "\"}\n";
    auto js = write_temp("c4.jsonl", jl);
    auto c4 = load_eval_text(js, CorpusProtocol::C4);
    EXPECT_EQ(c4.substr(0, 8), "d0 d1 d2");
    EXPECT_EQ(c4.substr(c4.size() - 6), " d1099");  // first 1100 documents only
    auto bad = write_temp("nofield.jsonl", "{\"text\": \"x\"}\n{\"body\": \"y\"}\n");
    try {
        load_eval_text(bad, CorpusProtocol::Raw);
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("record 2 has no string field 'text'"), std::string::npos) << e.what();
    }
    std::filesystem::remove(txt);
    std::filesystem::remove(js);
    std::filesystem::remove(bad);
}

TEST(Jsonl, CorruptAndTruncatedFilesNameFileAndLine) {
    try {
        read_jsonl(kFix + "corrupt.jsonl");
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("corrupt.jsonl:2: invalid JSON"), std::string::npos) << e.what();
    }
    try {
        read_jsonl(kFix + "truncated.jsonl");
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("truncated.jsonl:3: invalid JSON (truncated last line?)"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_EQ(read_jsonl(kFix + "truncated.jsonl", /*skip_incomplete_tail=*/true).size(), 2u);
    EXPECT_THROW(read_jsonl(kFix + "missing.jsonl"), std::runtime_error);
}

namespace {
// One token per byte.
std::vector<int> bytes(const std::string& s) {
    return std::vector<int>(s.begin(), s.end());
}
}  // namespace

TEST(MultipleChoice, LogLikelihoodsMatchHandComputation) {
    TableModel m(128);
    std::vector<McRequest> reqs = {{"Question: x\nAnswer:", " cat"}, {"ab ", "cd"}, {"", "hi"}};
    McOptions o;
    o.batch_size = 2;
    o.prefix_token = 2;
    auto got = loglikelihoods(m.fn(false), bytes, reqs, o);
    // Hand: Σ log p(c_j | c_{j-1}) over the continuation's bytes; the trailing
    // space of "ab " moves into the continuation; an empty context is token 2.
    auto ll = [&](const std::string& ctx, const std::string& cont, int first_prev) {
        double s = 0;
        int prev = ctx.empty() ? first_prev : (unsigned char)ctx.back();
        for (unsigned char c : cont) s -= m.nll(prev, c, 1.0), prev = c;
        return s;
    };
    EXPECT_NEAR(got[0], ll("Question: x\nAnswer:", " cat", 0), 1e-12);
    EXPECT_NEAR(got[1], ll("ab", " cd", 0), 1e-12);
    EXPECT_NEAR(got[2], ll("", "hi", 2), 1e-12);

    // bos_token: [BOS] + encode(ctx) + continuation, positions shift by one
    // (the positional table model sees it); an empty context still gets only
    // the prefix token.
    o.bos_token = 1;
    auto with_bos = loglikelihoods(m.fn(true), bytes, {{"ab ", "cd"}, {"", "hi"}}, o);
    // inputs [1, a, b, ' ', c]: ' ' from 'b' at position 2, 'c' from ' ' at 3, 'd' from 'c' at 4.
    const double want = -m.nll('b', ' ', 1.2) - m.nll(' ', 'c', 1.3) - m.nll('c', 'd', 1.4);
    EXPECT_NEAR(with_bos[0], want, 1e-12);
    EXPECT_NEAR(with_bos[1], -m.nll(2, 'h', 1.0) - m.nll('h', 'i', 1.1), 1e-12);
}

TEST(MultipleChoice, AccAndAccNormOnFixtureMatchHandComputation) {
    auto task = load_mc_task("arc_easy", kFix + "arc_easy.jsonl");
    ASSERT_EQ(task.docs.size(), 4u);
    EXPECT_EQ(task.docs[0].requests[0].context, "Question: Which is a mammal?\nAnswer:");
    EXPECT_EQ(task.docs[0].requests[0].continuation, " cat");
    EXPECT_EQ(task.docs[2].label, 1);  // numeric answer keys map through the labels
    // A uniform model over V tokens: ll(choice) = -(len+1)·log V (the leading
    // space is a token). acc picks the shortest choice, acc_norm (÷ len) the
    // longest; first maximum on ties. Docs: answer shortest / longest / middle
    // / shortest -> acc hits [1,0,0,1], acc_norm hits [0,1,0,0].
    const int V = 128;
    LogitsFn uniform = [](const torch::Tensor& ids) {
        return torch::zeros({ids.size(0), ids.size(1), 128}, torch::kFloat64);
    };
    auto r = evaluate_mc(uniform, bytes, task, {});
    for (size_t d = 0; d < 4; ++d)
        for (size_t c = 0; c < task.docs[d].choices.size(); ++c)
            EXPECT_NEAR(r.lls[d][c], -(task.docs[d].choices[c].size() + 1.0) * std::log(V), 1e-9);
    EXPECT_DOUBLE_EQ(r.acc, 0.5);
    EXPECT_DOUBLE_EQ(r.acc_norm, 0.25);
    // Sample std / sqrt(n): hits [1,0,0,1]: sqrt(1/3)/2; [0,1,0,0]: sqrt(0.75/3)/2.
    EXPECT_NEAR(r.acc_stderr, std::sqrt(1.0 / 3.0) / 2, 1e-12);
    EXPECT_NEAR(r.acc_norm_stderr, 0.25, 1e-12);
    EXPECT_EQ(r.pred, (std::vector<int>{0, 0, 0, 0}));
    EXPECT_EQ(r.pred_norm, (std::vector<int>{1, 1, 2, 2}));
}

TEST(MultipleChoice, TaskReadersBuildTheHarnessPrompts) {
    auto obqa = load_mc_task("openbookqa", kFix + "openbookqa.jsonl");
    EXPECT_EQ(obqa.docs[0].requests[1].context, "The sun is responsible for");
    EXPECT_EQ(obqa.docs[0].label, 1);
    EXPECT_EQ(obqa.headline, "acc_norm");

    auto boolq = load_mc_task("boolq", kFix + "boolq.jsonl");
    EXPECT_EQ(boolq.docs[0].requests[1].context,
              "The sky is blue on a clear day.\nQuestion: is the sky blue?\nAnswer:");
    EXPECT_EQ(boolq.docs[0].requests[1].continuation, " yes");
    EXPECT_EQ(boolq.docs[0].label, 1);
    EXPECT_EQ(boolq.docs[1].label, 0);

    auto piqa = load_mc_task("piqa", kFix + "piqa.jsonl");  // label from piqa-labels.lst
    EXPECT_EQ(piqa.docs[0].requests[0].context, "Question: To open a jar,\nAnswer:");
    EXPECT_EQ(piqa.docs[0].label, 0);

    auto hs = load_mc_task("hellaswag", kFix + "hellaswag.jsonl");
    EXPECT_EQ(hs.docs[0].requests[0].context,
              "Roof shingle removal: A man is sitting on a roof. He starts pulling up roofing on a roof.");
    EXPECT_EQ(hs.docs[0].choices[0], "is using wrap to wrap a pair of skis.. Step");
    EXPECT_EQ(hs.docs[0].label, 1);

    auto wg = load_mc_task("winogrande", kFix + "winogrande.jsonl");
    ASSERT_EQ(wg.docs[0].requests.size(), 2u);
    EXPECT_EQ(wg.docs[0].requests[1].context, "The trophy didn't fit in the suitcase because the suitcase");
    EXPECT_EQ(wg.docs[0].requests[1].continuation, " was too big.");
    EXPECT_EQ(wg.docs[0].label, 0);

    try {
        load_mc_task("boolq", kFix + "arc_easy.jsonl");
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("arc_easy.jsonl: record 1 lacks field"), std::string::npos) << e.what();
    }
    EXPECT_THROW(load_mc_task("arc_easy", kFix + "corrupt.jsonl"), std::runtime_error);
    EXPECT_THROW(load_mc_task("nope", kFix + "boolq.jsonl"), std::invalid_argument);
}

// Each release format, with the contexts and continuations derived by hand
// from lm-evaluation-harness 0.4's task YAMLs (quoted in McTasks.cpp).
TEST(ZeroShotReaders, ReleaseFormatsAndHarnessStrings) {
    // BoolQ as OpenCompass re-serialised it: "true"/"false" strings;
    // super_glue/boolq/default.yaml: "{{passage}}\nQuestion: {{question}}?\nAnswer:", choices ["no", "yes"].
    auto bq = load_mc_task("boolq", kFix + "boolq_strings.jsonl");
    ASSERT_EQ(bq.docs.size(), 2u);
    EXPECT_EQ(bq.docs[0].requests[0].context,
              "Ice -- Ice is less dense than liquid water, so it floats.\nQuestion: does ice float on water?\nAnswer:");
    EXPECT_EQ(bq.docs[0].requests[0].continuation, " no");
    EXPECT_EQ(bq.docs[0].requests[1].continuation, " yes");
    EXPECT_EQ(bq.docs[0].label, 1);
    EXPECT_EQ(bq.docs[1].label, 0);
    EXPECT_EQ(bq.headline, "acc");

    // OpenBookQA's release TSV; openbookqa.yaml: doc_to_text question_stem (bare).
    auto ob = load_mc_task("openbookqa", kFix + "openbookqa.tsv");
    ASSERT_EQ(ob.docs.size(), 2u);
    EXPECT_EQ(ob.docs[0].requests.size(), 4u);
    EXPECT_EQ(ob.docs[0].requests[3].context, "The sun is responsible for");
    EXPECT_EQ(ob.docs[0].requests[0].continuation, " puppies learning new tricks");
    EXPECT_EQ(ob.docs[0].requests[1].continuation, " children growing up and getting old");
    EXPECT_EQ(ob.docs[0].requests[3].continuation, " plants sprouting, blooming and wilting");
    EXPECT_EQ(ob.docs[0].label, 3);
    EXPECT_EQ(ob.docs[1].requests[0].context, "When standing miles away from Mount Rushmore");
    EXPECT_EQ(ob.docs[1].choices[3], "the mountains seem smaller than in photographs");
    EXPECT_EQ(ob.headline, "acc_norm");

    // WinoGrande dev.jsonl without answers, dev-labels.lst beside it; partial
    // evaluation: contexts sentence[:idx] + option, continuation " " +
    // sentence[idx+1:].strip() (inner double space kept).
    auto wg = load_mc_task("winogrande", kFix + "winogrande_dev.jsonl");
    ASSERT_EQ(wg.docs.size(), 2u);
    EXPECT_EQ(wg.docs[0].label, 1);  // lst "2"
    EXPECT_EQ(wg.docs[1].label, 0);  // lst "1"
    EXPECT_EQ(wg.docs[0].requests[0].context, "Sarah was a much better surgeon than Maria so Sarah");
    EXPECT_EQ(wg.docs[0].requests[1].context, "Sarah was a much better surgeon than Maria so Maria");
    EXPECT_EQ(wg.docs[0].requests[1].continuation, " always got the easier cases.");
    EXPECT_EQ(wg.docs[1].requests[1].context, "The caf\xc3\xa9 was closer than the park, so the big park");
    EXPECT_EQ(wg.docs[1].requests[0].continuation, " was  the better choice.");
    EXPECT_EQ(wg.docs[1].choices[0], "The caf\xc3\xa9 was closer than the park, so the caf\xc3\xa9");

    // HellaSwag preprocess: strip, " [title]" -> ". " in one pass (no
    // rescanning), "[...]" removed, "  " -> " " in one pass (three spaces
    // leave two); ctx_b.capitalize() lowers the rest.
    auto hs = load_mc_task("hellaswag", kFix + "hellaswag_preprocess.jsonl");
    EXPECT_EQ(hs.docs[0].requests[0].context, "Making a sandwich:  A man lays bread on a board. He spreads");
    EXPECT_EQ(hs.docs[0].choices,
              (std::vector<std::string>{"Put it down  now ok.", "Step one. two", "butter on it.", "a rock."}));
    EXPECT_EQ(hs.docs[0].requests[2].continuation, " butter on it.");
    EXPECT_EQ(hs.docs[0].label, 2);

    // PIQA valid.jsonl + valid-labels.lst; ARC official nested layout.
    auto pq = load_mc_task("piqa", kFix + "piqa.jsonl");
    EXPECT_EQ(pq.docs[0].requests[1].context, "Question: To open a jar,\nAnswer:");
    EXPECT_EQ(pq.docs[0].requests[1].continuation, " eat the lid.");
    auto arc = load_mc_task("arc_challenge", kFix + "arc_easy.jsonl", 2);
    EXPECT_EQ(arc.docs.size(), 2u);  // --limit
    EXPECT_EQ(arc.docs[1].requests[2].continuation, " sand");
    EXPECT_EQ(arc.headline, "acc_norm");
}

TEST(ZeroShotReaders, BadInputNamesFileRecordAndField) {
    auto e = error_of([] { load_mc_task("boolq", kFix + "boolq_bad.jsonl"); });
    EXPECT_NE(e.find("boolq_bad.jsonl: record 2: field 'label' must be true/false"), std::string::npos) << e;
    e = error_of([] { load_mc_task("openbookqa", kFix + "openbookqa_bad.tsv"); });
    EXPECT_NE(e.find("openbookqa_bad.tsv:3: field 'Choices' does not start with \"(A) \""), std::string::npos) << e;
    e = error_of([] { load_mc_task("winogrande", kFix + "winogrande_conflict.jsonl"); });
    EXPECT_NE(e.find("winogrande_conflict.jsonl: record 1: field 'answer' is 1 but"), std::string::npos) << e;
    EXPECT_NE(e.find("winogrande_conflict-labels.lst line 1 says 2"), std::string::npos) << e;
    e = error_of([] { load_mc_task("arc_easy", kFix + "openbookqa.tsv"); });
    EXPECT_NE(e.find("openbookqa.tsv: a .tsv file is read only as OpenBookQA"), std::string::npos) << e;
    e = error_of([] { load_mc_task("hellaswag", kFix + "boolq_strings.jsonl"); });
    EXPECT_NE(e.find("boolq_strings.jsonl: record 1 lacks field 'ctx_a'"), std::string::npos) << e;
}

// acc_norm divides by Python's len() of lm-eval's doc_to_choice strings: code
// points, not bytes; for WinoGrande those are the two contexts.
TEST(ZeroShotScoring, AccNormByCharactersAndStandardErrors) {
    auto wg = load_mc_task("winogrande", kFix + "winogrande_dev.jsonl");
    // Doc 2: contexts of 46 and 50 characters (48 and 51 bytes). -47/46 <
    // -50.5/50, so acc_norm picks choice 2 (bytes would pick choice 1).
    auto r = score_mc(wg, {{-3.0, -2.0}, {-47.0, -50.5}});
    EXPECT_EQ(r.pred, (std::vector<int>{1, 0}));
    EXPECT_EQ(r.pred_norm, (std::vector<int>{1, 1}));
    EXPECT_DOUBLE_EQ(r.acc, 1.0);
    EXPECT_DOUBLE_EQ(r.acc_norm, 0.5);
    EXPECT_DOUBLE_EQ(r.acc_stderr, 0.0);
    // hits [1, 0]: sample std sqrt(0.5) / sqrt(2) = 0.5 (Python: statistics.stdev([1,0]) / 2**0.5).
    EXPECT_NEAR(r.acc_norm_stderr, 0.5, 1e-15);
    EXPECT_EQ(utf8_length("caf\xc3\xa9"), 4u);
    EXPECT_EQ(py_strip(" \xc2\xa0x y\t\xe3\x80\x80"), "x y");
    EXPECT_EQ(py_strip("ab \n", false, true), "ab");
}

// The prefix-state path (each context once, choices stepped from its saved
// Mamba-2 state) against full sequences through the same model.
TEST(ZeroShotScoring, PrefixStatePathMatchesFullSequences) {
    torch::manual_seed(3);
    Mamba2LM model(Mamba2Config::preset("tiny"));
    // Token = byte; contexts shared by several choices, one-token and long
    // continuations, a trailing space moved into the continuation, and one
    // request longer than max_length (scored on the full path, cut from the left).
    std::vector<McRequest> reqs = {{"Question: what?\nAnswer:", " a"},
                                   {"Question: what?\nAnswer:", " a much longer answer here"},
                                   {"Question: what?\nAnswer:", " bc"},
                                   {"Other ctx ", "x"},
                                   {"Other ctx ", "yz"},
                                   {"same len", " q"},
                                   {std::string(70, 'w'), " tail beyond the window"}};
    McOptions o;
    o.max_length = 64;
    o.batch_size = 4;
    auto full = loglikelihoods(logits_fn(model), bytes, reqs, o);
    // Every context of two or more choices goes through the state path
    // (one-choice contexts and the cut request stay on the full path).
    size_t via_state = 0;
    auto state_fn = mamba_prefix_ll_fn(model);
    PrefixLLFn counted = [&](const torch::Tensor& ctx, const std::vector<std::vector<std::vector<int>>>& conts) {
        for (auto& c : conts) via_state += c.size();
        return state_fn(ctx, conts);
    };
    auto pref = loglikelihoods(McModel(logits_fn(model), counted), bytes, reqs, o);
    EXPECT_EQ(via_state, 5u);
    ASSERT_EQ(full.size(), pref.size());
    for (size_t i = 0; i < full.size(); ++i) {
        EXPECT_LT(full[i], 0);
        EXPECT_NEAR(pref[i], full[i], 1e-4 * std::abs(full[i])) << i;
    }
}

TEST(EvalTable, Table3LayoutAndFormatting) {
    EXPECT_EQ(format_ppl(1.6e8), "1.6e8");
    EXPECT_EQ(format_ppl(18000), "1.8e4");
    EXPECT_EQ(format_ppl(13.421), "13.42");
    EXPECT_EQ(format_ppl(148.44), "148.4");
    auto j = nlohmann::json::parse(R"({"models": [
        {"label": "fp", "results": {"arc_challenge": {"kind": "mc", "acc": 0.2, "acc_norm": 0.3, "acc_norm_stderr": 0.0456,
                                                      "acc_stderr": 0.04, "headline": "acc_norm"},
                                    "boolq": {"kind": "mc", "acc": 0.6, "acc_stderr": 0.049, "acc_norm": 0.6, "headline": "acc"},
                                    "wikitext2": {"kind": "ppl", "ppl": 31.5}}},
        {"label": "bi", "results": {"wikitext2": {"kind": "ppl", "ppl": 40.25}}}]})");
    auto t = eval_table(j);
    // Perplexity first, zero-shot in the paper's order (BoolQ before ARC-c), then the average.
    EXPECT_EQ(t.columns, (std::vector<std::string>{"wikitext2", "boolq", "arc_challenge", "avg"}));
    const std::string md = table_markdown(t);
    // Each zero-shot column shows the paper's metric (acc_norm for ARC-c) ± its standard error.
    EXPECT_NE(md.find("| model | wikitext2 | boolq (acc) | arc_challenge (acc_norm) | avg |"), std::string::npos) << md;
    EXPECT_NE(md.find("| fp | 31.50 | 60.0 ± 4.9 | 30.0 ± 4.6 | 45.0 |"), std::string::npos) << md;
    EXPECT_NE(md.find("| bi | 40.25 | - | - | - |"), std::string::npos) << md;
    const std::string csv = table_csv(t);
    EXPECT_NE(csv.find("model,wikitext2,boolq,boolq_stderr,arc_challenge,arc_challenge_stderr,avg\n"),
              std::string::npos)
        << csv;
    EXPECT_NE(csv.find("fp,31.5,60,4.9,30,4.56,45\n"), std::string::npos) << csv;
    EXPECT_NE(csv.find("bi,40.25,,,,,\n"), std::string::npos) << csv;
}

TEST(ModelSource, RunDirectoriesAndTokenizers) {
    namespace fs = std::filesystem;
    const fs::path root = fs::temp_directory_path() / ("bimamba_test_src_" + std::to_string(::getpid()));
    fs::create_directories(root / "data");
    fs::create_directories(root / "run/checkpoints/step_00000010");
    std::ofstream(root / "data/tokenizer.model") << "x";
    std::ofstream(root / "run/checkpoints/step_00000010/config.json") << "{}";
    std::ofstream(root / "run/checkpoints/latest") << "step_00000010\n";
    std::ofstream(root / "run/train_config.json") << "{\"data\": \"" << (root / "data").string() << "\"}";
    const std::string ck = resolve_checkpoint((root / "run").string());
    EXPECT_EQ(fs::path(ck), root / "run/checkpoints/step_00000010");
    EXPECT_EQ(model_label(ck), "run/step_00000010");
    EXPECT_EQ(fs::path(find_tokenizer(ck)), root / "data/tokenizer.model");
    EXPECT_THROW(resolve_checkpoint((root / "data").string()), std::runtime_error);
    EXPECT_THROW(resolve_checkpoint((root / "nope").string()), std::runtime_error);
    bimamba::base::remove_tree(root);
}

// Every release file in the shared zero-shot folder, end to end through the
// CLI with --limit 20, on a tiny random Mamba-2 with the LLaMA-2 vocabulary.
TEST(ZeroShotFiles, EverySharedTaskFileEvaluatesEndToEnd) {
    const char* cli = std::getenv("BIMAMBA_CLI");
    if (!cli || !std::filesystem::exists(cli)) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    const std::string zs = std::string(BIMAMBA_SHARED_DATA) + "/zero-shot/";
    const std::string tok = std::string(BIMAMBA_SHARED_DATA) + "/llama2-tokenizer/tokenizer.model";
    if (!std::filesystem::exists(zs) || !std::filesystem::exists(tok))
        GTEST_SKIP() << "no shared zero-shot data under " << BIMAMBA_SHARED_DATA;
    const std::string dir = test::fresh_dir("zeroshot_files");
    torch::manual_seed(0);
    auto cfg = Mamba2Config::preset("tiny");
    cfg.vocab_size = 32000;
    cfg.d_model = 32;
    save_model(Mamba2LM(cfg), dir + "/model");
    const std::vector<std::pair<std::string, std::string>> files = {
        {"boolq", "boolq/val.jsonl"},
        {"piqa", "piqa/valid.jsonl"},
        {"hellaswag", "hellaswag/hellaswag_val.jsonl"},
        {"winogrande", "winogrande/dev.jsonl"},
        {"arc_easy", "arc_easy/ARC-Easy-Test.jsonl"},
        {"arc_challenge", "arc_challenge/ARC-Challenge-Test.jsonl"},
        {"openbookqa", "openbookqa/test.tsv"}};
    std::string tasks;
    for (auto& [n, f] : files) tasks += (tasks.empty() ? "" : ",") + n + "=" + zs + f;
    const std::string cmd = std::string(cli) + " eval --quiet --limit 20 --batch-size 16 --model " + dir +
                            "/model --tokenizer " + tok + " --tasks " + tasks + " --out " + dir +
                            "/res.json --samples " + dir + "/samples.jsonl > " + dir + "/log.txt 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << bimamba::base::read_file(dir + "/log.txt");
    auto j = nlohmann::json::parse(bimamba::base::read_file(dir + "/res.json"));
    const auto& res = j["models"][0]["results"];
    ASSERT_EQ(res.size(), 7u) << res.dump();
    for (auto& [n, f] : files) {
        ASSERT_TRUE(res.contains(n)) << n;
        EXPECT_EQ(res[n]["n"], 20) << n;
        EXPECT_EQ(res[n]["kind"], "mc");
        for (const char* k : {"acc", "acc_norm", "acc_stderr", "acc_norm_stderr"}) {
            const double v = res[n][k];
            EXPECT_TRUE(v >= 0 && v <= 1) << n << " " << k << " " << v;
        }
    }
    // --samples: one line per document of each task, with the harness's requests.
    auto samples = read_jsonl(dir + "/samples.jsonl");
    EXPECT_EQ(samples.size(), 140u);
    const auto& s0 = samples[0];
    EXPECT_EQ(s0["task"], "boolq");
    EXPECT_EQ(s0["arguments"].size(), 2u);
    EXPECT_EQ(s0["arguments"][1][1], " yes");
    EXPECT_LT(s0["loglikelihoods"][0].get<double>(), 0.0);
}
