#pragma once
// Perplexity with the protocol of the paper (GPTQ's evaluation code):
// the whole evaluation text is tokenized once, cut into non-overlapping
// windows of `window` tokens (the tail shorter than a window is dropped), and
// ppl = exp(mean next-token NLL over the window-1 predictions of every window).
// Sliding mode (stride > 0 and < window): windows start every `stride` tokens
// and each token is predicted once, from the window that ends nearest after it
// (Hugging Face's strided perplexity); the tail is kept.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/eval/Scorer.h"

namespace bimamba::eval {

struct PerplexityOptions {
    int64_t window = 2048;
    int64_t stride = 0;       // 0 (or >= window): non-overlapping windows
    int64_t max_windows = 0;  // 0 = all (C4 protocol: 256)
    int64_t batch_size = 1;   // windows per forward pass
    std::function<void(int64_t done, int64_t total)> progress;
};

struct PerplexityResult {
    double nll_sum = 0;  // nats
    int64_t predictions = 0;
    int64_t windows = 0;
    double mean_nll() const { return predictions ? nll_sum / predictions : 0.0; }
    double ppl() const;
};

PerplexityResult perplexity(const LogitsFn& model, const std::vector<int>& tokens, const PerplexityOptions& opt);

// Evaluation corpora. Protocols set how documents are joined and how many are used:
//   raw        the file's text as it is (JSONL: documents joined by "\n\n")
//   wikitext2  documents (text: lines, each keeping its '\n') joined by "\n\n"
//   ptb        sentences (text: lines without '\n') joined by " "
//   c4         the first 1100 documents (JSONL) joined by " "; evaluate with max_windows = 256
// `.jsonl`/`.json` files read the string field `field` of every line.
enum class CorpusProtocol { Raw, WikiText2, PTB, C4 };
CorpusProtocol corpus_protocol_from_string(const std::string& s);  // raw|wikitext2|ptb|c4
std::string load_eval_text(const std::string& path, CorpusProtocol protocol, const std::string& field = "text");

}  // namespace bimamba::eval
