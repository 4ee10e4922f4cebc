#pragma once
// Multiple-choice tasks as read from their release files (ARC, PIQA,
// HellaSwag, WinoGrande, BoolQ, OpenBookQA): the documents, their choices as
// (context, continuation) requests, and the labels. Torch-free (scoring is in
// MultipleChoice.h), so tests/fuzz/fuzz_mc_tasks can feed the readers any bytes.
#include <cstdint>
#include <string>
#include <vector>

namespace bimamba::eval {

struct McRequest {
    std::string context, continuation;
};
struct McDoc {
    std::vector<McRequest> requests;   // one per choice
    std::vector<std::string> choices;  // lm-eval's doc_to_choice strings: their length normalises acc_norm
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

}  // namespace bimamba::eval
