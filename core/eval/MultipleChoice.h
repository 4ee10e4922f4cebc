#pragma once
// Zero-shot multiple choice with lm-evaluation-harness 0.4 semantics: every
// choice is a (context, continuation) request scored by the summed
// log-likelihood of the continuation's tokens given the context. acc = argmax
// of the sums; acc_norm = argmax of sum / len(choice) where len counts
// characters (Unicode code points, Python's len of the doc_to_choice string:
// equal to the byte length for ASCII text); standard errors are sample
// standard deviation / sqrt(n), as the harness reports them.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/eval/McTask.h"
#include "core/eval/Scorer.h"

namespace bimamba::eval {

using Encoder = std::function<std::vector<int>(const std::string&)>;

// What scores the requests: a LogitsFn (any causal LM: full sequences,
// batched by length), plus, for a recurrent model, a PrefixLLFn that runs each
// distinct context once and its choices from the saved state.
struct McModel {
    LogitsFn logits;
    PrefixLLFn prefix;
    McModel(LogitsFn l, PrefixLLFn p = {}) : logits(std::move(l)), prefix(std::move(p)) {}
};

struct McOptions {
    int64_t batch_size = 8;     // requests (choices) per forward pass
    int64_t max_length = 2048;  // context is cut from the left beyond this
    int bos_token = -1;         // >= 0: put in front of every encoding (lm-eval with a BOS-adding tokenizer)
    int prefix_token = 1;       // stands in for an empty context (lm-eval 0.4.13: BOS, else EOS)
    std::function<void(int64_t done, int64_t total)> progress;
};

// Summed log-likelihood of each request's continuation (lm-eval's _encode_pair:
// trailing context whitespace moves to the continuation; the continuation's
// tokens are those of encode(context+continuation) past len(encode(context)),
// both encodings with bos_token in front when it is set).
// Both scoring paths of McModel give the same numbers (up to float rounding).
std::vector<double> loglikelihoods(const McModel& model, const Encoder& encode, const std::vector<McRequest>& reqs,
                                   const McOptions& opt);

struct McResult {
    std::string task;
    std::string headline;
    int64_t n = 0;
    double acc = 0, acc_stderr = 0, acc_norm = 0, acc_norm_stderr = 0;
    std::vector<std::vector<double>> lls;  // per doc, per choice
    std::vector<int> pred, pred_norm;
    double headline_value() const { return headline == "acc_norm" ? acc_norm : acc; }
};
McResult evaluate_mc(const McModel& model, const Encoder& encode, const McTask& task, const McOptions& opt);
// acc/acc_norm and their standard errors from per-choice log-likelihoods.
McResult score_mc(const McTask& task, const std::vector<std::vector<double>>& lls);

}  // namespace bimamba::eval
