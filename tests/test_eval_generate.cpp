// Generation: recurrent greedy decoding equals greedy decoding by full
// forward passes; stop strings and token limits; the side-by-side layout.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "core/eval/Generate.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
using namespace bimamba::model;
using namespace bimamba::eval;

namespace {
const std::string kTok = std::string(BIMAMBA_SHARED_DATA) + "/llama2-tokenizer/tokenizer.model";

Mamba2LM tiny_llama_vocab() {
    torch::manual_seed(3);
    auto cfg = Mamba2Config::preset("tiny");
    cfg.vocab_size = 32000;
    Mamba2LM m(cfg);
    m->eval();
    return m;
}
}  // namespace

TEST(Generate, RecurrentGreedyEqualsFullForwardGreedy) {
    auto tok = Tokenizer::load(kTok);
    auto model = tiny_llama_vocab();
    SamplingParams p;
    p.max_tokens = 12;
    const std::string prompt = "Who is the world's most famous painter?\nAnswer:";
    auto g = generate(model, *tok, prompt, p);
    // Reference: re-run the whole sequence and take the argmax each time.
    std::vector<int64_t> ids = {tok->bos_id()};
    for (int t : tok->encode(prompt)) ids.push_back(t);
    EXPECT_EQ(g.prompt_tokens, (int64_t)ids.size());
    std::vector<int> want;
    torch::NoGradGuard ng;
    for (int n = 0; n < p.max_tokens; ++n) {
        auto logits = model->forward(torch::tensor(ids).view({1, -1}));
        const int next = (int)logits[0][-1].argmax().item<int64_t>();
        if (next == tok->eos_id()) break;
        want.push_back(next);
        ids.push_back(next);
    }
    EXPECT_EQ(g.tokens, want);
    EXPECT_EQ(g.text, tok->decode(want));
    if ((int)want.size() == p.max_tokens) {
        EXPECT_EQ(g.stop_reason, "max_tokens");
    }
}

TEST(Generate, StopStringCutsTheText) {
    auto tok = Tokenizer::load(kTok);
    auto model = tiny_llama_vocab();
    SamplingParams p;
    p.max_tokens = 12;
    auto full = generate(model, *tok, "Once upon a time", p);
    ASSERT_GE(full.text.size(), 4u);
    // Stop at the text of the 3rd..4th characters: the output is cut right before it.
    const std::string stop = full.text.substr(2, 2);
    const size_t cut = full.text.find(stop);
    p.stop = {stop};
    auto g = generate(model, *tok, "Once upon a time", p);
    EXPECT_EQ(g.stop_reason, "stop");
    EXPECT_EQ(g.text, full.text.substr(0, cut));
    p.stop.clear();
    p.max_tokens = 3;
    auto s = generate(model, *tok, "Once upon a time", p);
    EXPECT_LE(s.tokens.size(), 3u);
}

TEST(Generate, SideBySideLayout) {
    auto t = side_by_side(
        "Who?\nAnswer:",
        {{"Mamba-2", "Leonardo da Vinci is the most famous painter of all time."}, {"GPTQ-2bit", "the the the"}}, 60);
    std::istringstream in(t);
    std::string line;
    size_t width = 0;
    int lines = 0;
    while (std::getline(in, line)) {
        if (!width) width = line.size();
        EXPECT_EQ(line.size(), width) << line;  // ASCII rows: every line the same width
        ++lines;
    }
    EXPECT_LE(width, 60u);
    EXPECT_NE(t.find("Prompt: Who?\\nAnswer:"), std::string::npos);
    EXPECT_NE(t.find("| Mamba-2 "), std::string::npos);
    EXPECT_NE(t.find("the the the"), std::string::npos);
    EXPECT_GT(lines, 8);
}
