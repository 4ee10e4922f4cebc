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

#include "core/eval/Scorer.h"

namespace bimamba::eval {

using Encoder = std::function<std::vector<int>(const std::string&)>;

struct McRequest {
    std::string context, continuation;
};
struct McDoc {
    std::vector<McRequest> requests;  // one per choice
    std::vector<std::string> choices; // lm-eval's doc_to_choice strings: their length normalises acc_norm
                                      // (WinoGrande: the two contexts, as the harness's partial evaluation)
    int label = 0;
};
struct McTask {
    std::string name;
    std::string headline;  // "acc" or "acc_norm": the metric the summary table shows
    std::vector<McDoc> docs;
};

// Names: arc_easy, arc_challenge, openbookqa, piqa, hellaswag, winogrande, boolq.
std::vector<std::string> mc_task_names();
// The metric the paper's Table 3 reports for a task: acc_norm for HellaSwag,
// ARC-Challenge and OpenBookQA, acc otherwise.
std::string mc_headline(const std::string& name);
// Reads a task's release file as it is: ARC JSONL, PIQA JSONL (labels in a
// `label` field or <name>-labels.lst beside it), HellaSwag JSONL, WinoGrande
// JSONL (`answer` field or <name>-labels.lst), BoolQ JSONL (boolean, 0/1 or
// "true"/"false" labels), OpenBookQA JSONL or its release TSV (*.tsv); the
// Hugging Face datasets' JSONL exports too. `limit` > 0 keeps the first
// `limit` documents. Errors name the file, the record and the field.
McTask load_mc_task(const std::string& name, const std::string& path, int64_t limit = 0);

// Python's str.strip()/rstrip()/lstrip() (Unicode whitespace) on UTF-8 text.
std::string py_strip(const std::string& s, bool left = true, bool right = true);
// Python's len() of UTF-8 text: the number of code points.
size_t utf8_length(const std::string& s);

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
