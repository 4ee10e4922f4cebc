#pragma once
// Zero-shot multiple choice with lm-evaluation-harness semantics: every choice
// is a (context, continuation) request scored by the summed log-likelihood of
// the continuation's tokens given the context. acc = argmax of the sums;
// acc_norm = argmax of sum / (UTF-8 byte length of the choice text); standard
// errors are sample standard deviation / sqrt(n), as the harness reports them.
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
    std::vector<std::string> choices; // the texts whose byte length normalises acc_norm
    int label = 0;
};
struct McTask {
    std::string name;
    std::string headline;  // "acc" or "acc_norm": the metric the summary table shows
    std::vector<McDoc> docs;
};

// Names: arc_easy, arc_challenge, openbookqa, piqa, hellaswag, winogrande, boolq.
std::vector<std::string> mc_task_names();
// Reads the task's official JSONL (or the Hugging Face datasets' JSONL export).
// PIQA's labels may sit beside the file as <name>-labels.lst. `limit` > 0 keeps
// the first `limit` documents. Errors name the file and record.
McTask load_mc_task(const std::string& name, const std::string& path, int64_t limit = 0);

struct McOptions {
    int64_t batch_size = 8;
    int64_t max_length = 2048;  // context is cut from the left beyond this
    int prefix_token = 2;       // the harness's EOT: stands in for an empty context
    std::function<void(int64_t done, int64_t total)> progress;
};

// Summed log-likelihood of each request's continuation (lm-eval's _encode_pair:
// trailing context whitespace moves to the continuation; the continuation's
// tokens are those of encode(context+continuation) past len(encode(context))).
std::vector<double> loglikelihoods(const LogitsFn& model, const Encoder& encode, const std::vector<McRequest>& reqs,
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
McResult evaluate_mc(const LogitsFn& model, const Encoder& encode, const McTask& task, const McOptions& opt);
// acc/acc_norm and their standard errors from per-choice log-likelihoods.
McResult score_mc(const McTask& task, const std::vector<std::vector<double>>& lls);

}  // namespace bimamba::eval
