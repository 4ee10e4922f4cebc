// Readers of the zero-shot tasks' release files, with the prompts of
// lm-evaluation-harness 0.4.x (its task YAMLs and utils, quoted per task).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <stdexcept>

#include "core/eval/Jsonl.h"
#include "core/eval/McTask.h"

namespace bimamba::eval {

namespace {

using nlohmann::json;

// One record of a task file: typed field access whose errors name the file,
// the record (1-based) and the field.
struct Rec {
    const json& j;
    const std::string& path;
    size_t no;
    std::string where() const { return path + ": record " + std::to_string(no); }
    std::string bad(const std::string& key, const std::string& what) const {
        return where() + ": field '" + key + "' " + what;
    }
    bool has(const std::string& key) const { return j.is_object() && j.contains(key); }
    const json& at(const std::string& key) const {
        if (!has(key)) throw std::runtime_error(where() + " lacks field '" + key + "'");
        return j[key];
    }
    std::string str(const std::string& key) const {
        const json& v = at(key);
        if (!v.is_string()) throw std::runtime_error(bad(key, "must be a string"));
        return v.get<std::string>();
    }
    int index(const std::string& key) const {  // an integer, or a string holding one ("1")
        const json& v = at(key);
        if (v.is_number_integer()) return v.get<int>();
        if (v.is_string()) {
            const std::string s = v.get<std::string>();
            size_t used = 0;
            try {
                const int i = std::stoi(s, &used);
                if (used == s.size()) return i;
            } catch (...) {
            }
        }
        throw std::runtime_error(bad(key, "must be an integer (got " + v.dump() + ")"));
    }
    std::vector<std::string> strings(const json& v, const std::string& key) const {
        if (!v.is_array()) throw std::runtime_error(bad(key, "must be a list of strings"));
        std::vector<std::string> out;
        for (const auto& e : v) {
            if (!e.is_string()) throw std::runtime_error(bad(key, "must be a list of strings"));
            out.push_back(e.get<std::string>());
        }
        return out;
    }
};

McDoc choices_doc(const std::string& ctx, const std::vector<std::string>& choices, int label, const Rec& r) {
    if (label < 0 || label >= (int)choices.size())
        throw std::runtime_error(r.where() + ": answer index " + std::to_string(label) + " outside the " +
                                 std::to_string(choices.size()) + " choices");
    McDoc d;
    d.label = label;
    d.choices = choices;
    for (const auto& c : choices) d.requests.push_back({ctx, " " + c});  // target_delimiter " "
    return d;
}

// ARC (arc_easy.yaml): doc_to_text "Question: {{question}}\nAnswer:", choices
// choices.text, target choices.label.index(answerKey). OpenBookQA
// (openbookqa.yaml): doc_to_text question_stem, target
// choices.label.index(answerKey.lstrip()). Official layout {"question": {"stem",
// "choices": [{"text","label"}]}, "answerKey"} or the HF one {"question" |
// "question_stem": str, "choices": {"text": [], "label": []}, "answerKey"}.
McDoc arc_like(const Rec& r, bool openbookqa) {
    std::string stem;
    std::vector<std::string> texts, labels;
    const std::string qkey = r.has("question_stem") ? "question_stem" : "question";
    const json& q = r.at(qkey);
    const json* choices = nullptr;
    if (q.is_object()) {
        if (!q.contains("stem") || !q["stem"].is_string())
            throw std::runtime_error(r.bad("question.stem", "must be a string"));
        stem = q["stem"].get<std::string>();
        if (q.contains("choices")) choices = &q["choices"];
    } else if (q.is_string()) {
        stem = q.get<std::string>();
    } else {
        throw std::runtime_error(r.bad(qkey, "must be a string or an object"));
    }
    if (!choices) choices = &r.at("choices");
    if (choices->is_array()) {
        for (const auto& c : *choices) {
            if (!c.is_object() || !c.contains("text") || !c.contains("label") || !c["text"].is_string() ||
                !c["label"].is_string())
                throw std::runtime_error(r.bad("choices", "needs a string 'text' and 'label' in every choice"));
            texts.push_back(c["text"].get<std::string>());
            labels.push_back(c["label"].get<std::string>());
        }
    } else if (choices->is_object() && choices->contains("text") && choices->contains("label")) {
        texts = r.strings((*choices)["text"], "choices.text");
        labels = r.strings((*choices)["label"], "choices.label");
        if (texts.size() != labels.size())
            throw std::runtime_error(r.bad("choices", "has unequal text and label lists"));
    } else {
        throw std::runtime_error(r.bad("choices", "has an unknown layout"));
    }
    std::string key = r.str("answerKey");
    if (openbookqa) key.erase(0, key.find_first_not_of(" \t\n\r\f\v"));
    auto it = std::find(labels.begin(), labels.end(), key);
    if (it == labels.end()) throw std::runtime_error(r.bad("answerKey", "'" + key + "' is not a choice label"));
    const std::string ctx = openbookqa ? stem : "Question: " + stem + "\nAnswer:";
    return choices_doc(ctx, texts, int(it - labels.begin()), r);
}

// Python's str.replace(old, new): one left-to-right pass, no rescanning.
std::string py_replace(const std::string& s, const std::string& from, const std::string& to) {
    std::string out;
    size_t pos = 0, hit;
    while ((hit = s.find(from, pos)) != std::string::npos) {
        out.append(s, pos, hit - pos).append(to);
        pos = hit + from.size();
    }
    return out.append(s, pos, std::string::npos);
}

// hellaswag/utils.py preprocess(): strip, " [title]" -> ". ", drop "[...]",
// "  " -> " " (each a single pass, as Python's replace/re.sub).
std::string hellaswag_preprocess(const std::string& text) {
    std::string t = py_strip(text);
    t = py_replace(t, " [title]", ". ");
    static const std::regex brackets("\\[.*?\\]");
    t = std::regex_replace(t, brackets, "");
    return py_replace(t, "  ", " ");
}

std::string capitalize(std::string s) {  // Python str.capitalize on ASCII letters
    for (size_t i = 0; i < s.size(); ++i)
        s[i] = i ? std::tolower((unsigned char)s[i]) : std::toupper((unsigned char)s[i]);
    return s;
}

// Labels kept beside a task file, one a line: <stem>-labels.lst (PIQA's
// valid-labels.lst, WinoGrande's dev-labels.lst). Empty when there is none.
std::vector<int> side_labels(const std::string& path, std::string* lst_path) {
    auto p = std::filesystem::path(path);
    auto lst = p.parent_path() / (p.stem().string() + "-labels.lst");
    *lst_path = lst.string();
    std::vector<int> out;
    std::ifstream f(lst);
    if (!f) return out;
    std::string line;
    int no = 0;
    while (std::getline(f, line)) {
        ++no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        size_t used = 0;
        int v = 0;
        try {
            v = std::stoi(line, &used);
        } catch (...) {
            used = 0;
        }
        if (used != line.size())
            throw std::runtime_error(lst.string() + ":" + std::to_string(no) + ": not an integer label");
        out.push_back(v);
    }
    return out;
}

// A label from the record's field, or else from the side file; both present
// must agree.
int field_or_side_label(const Rec& r, const std::string& key, const std::vector<int>& side, const std::string& lst) {
    const size_t i = r.no - 1;
    const bool in_side = i < side.size();
    if (r.has(key)) {
        const int v = r.index(key);
        if (in_side && side[i] != v)
            throw std::runtime_error(r.bad(key, "is " + std::to_string(v) + " but " + lst + " line " +
                                                    std::to_string(r.no) + " says " + std::to_string(side[i])));
        return v;
    }
    if (in_side) return side[i];
    throw std::runtime_error(r.where() + " lacks field '" + key + "' and " + lst + " has no line " +
                             std::to_string(r.no));
}

// BoolQ's answer: a JSON boolean (the original release's "answer", HF's
// super_glue "label" 0/1) or the strings "true"/"false" (OpenCompass' copy).
int boolq_label(const Rec& r) {
    const std::string key = r.has("answer") ? "answer" : "label";
    const json& a = r.at(key);
    if (a.is_boolean()) return a.get<bool>() ? 1 : 0;
    if (a.is_number_integer() && (a.get<int>() == 0 || a.get<int>() == 1)) return a.get<int>();
    if (a.is_string()) {
        std::string s = a.get<std::string>();
        for (auto& ch : s) ch = (char)std::tolower((unsigned char)ch);
        if (s == "true" || s == "1") return 1;
        if (s == "false" || s == "0") return 0;
    }
    throw std::runtime_error(
        r.bad(key, "must be true/false (a boolean, 0/1 or the string \"true\"/\"false\"; got " + a.dump() + ")"));
}

// OpenBookQA's release TSV (Data/Main/*.tsv): a header row "ID, Question
// Stem, Choices, Complete Question, Answer Key"; Choices reads
// "(A) text (B) text (C) text (D) text". Records become the HF layout.
std::vector<json> read_openbookqa_tsv(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot open");
    auto split = [](const std::string& line) {
        std::vector<std::string> cols;
        size_t pos = 0, tab;
        while ((tab = line.find('\t', pos)) != std::string::npos)
            cols.push_back(line.substr(pos, tab - pos)), pos = tab + 1;
        cols.push_back(line.substr(pos));
        return cols;
    };
    std::string line;
    if (!std::getline(f, line)) throw std::runtime_error(path + ": empty file");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto header = split(line);
    auto col = [&](const std::string& name) {
        auto it = std::find(header.begin(), header.end(), name);
        if (it == header.end()) throw std::runtime_error(path + ": header lacks column '" + name + "'");
        return size_t(it - header.begin());
    };
    const size_t c_id = col("ID"), c_stem = col("Question Stem"), c_choices = col("Choices"), c_key = col("Answer Key");
    std::vector<json> out;
    int line_no = 1;
    while (std::getline(f, line)) {
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        const auto cols = split(line);
        const std::string where = path + ":" + std::to_string(line_no);
        if (cols.size() != header.size())
            throw std::runtime_error(where + ": " + std::to_string(cols.size()) + " columns, the header has " +
                                     std::to_string(header.size()));
        const std::string& ch = cols[c_choices];
        json texts = json::array(), labels = json::array();
        std::string marker = "(A) ";
        if (ch.compare(0, marker.size(), marker) != 0)
            throw std::runtime_error(where + ": field 'Choices' does not start with \"(A) \"");
        size_t start = marker.size();
        for (char L = 'A';; ++L) {
            const std::string next = std::string(" (") + char(L + 1) + ") ";
            const size_t end = ch.find(next, start);
            labels.push_back(std::string(1, L));
            texts.push_back(ch.substr(start, end == std::string::npos ? std::string::npos : end - start));
            if (end == std::string::npos) break;
            start = end + next.size();
        }
        out.push_back({{"id", cols[c_id]},
                       {"question_stem", cols[c_stem]},
                       {"choices", {{"text", texts}, {"label", labels}}},
                       {"answerKey", cols[c_key]}});
    }
    return out;
}

}  // namespace

std::string py_strip(const std::string& s, bool left, bool right) {
    // Python's str.isspace() set (Unicode White_Space plus the separators
    // \x1c-\x1f), as UTF-8 sequences.
    static const std::vector<std::string> ws = {" ",
                                                "\t",
                                                "\n",
                                                "\v",
                                                "\f",
                                                "\r",
                                                "\x1c",
                                                "\x1d",
                                                "\x1e",
                                                "\x1f",
                                                "\xc2\x85",
                                                "\xc2\xa0",
                                                "\xe1\x9a\x80",
                                                "\xe2\x80\x80",
                                                "\xe2\x80\x81",
                                                "\xe2\x80\x82",
                                                "\xe2\x80\x83",
                                                "\xe2\x80\x84",
                                                "\xe2\x80\x85",
                                                "\xe2\x80\x86",
                                                "\xe2\x80\x87",
                                                "\xe2\x80\x88",
                                                "\xe2\x80\x89",
                                                "\xe2\x80\x8a",
                                                "\xe2\x80\xa8",
                                                "\xe2\x80\xa9",
                                                "\xe2\x80\xaf",
                                                "\xe2\x81\x9f",
                                                "\xe3\x80\x80"};
    size_t b = 0, e = s.size();
    auto match_front = [&]() -> size_t {
        for (const auto& w : ws)
            if (e - b >= w.size() && s.compare(b, w.size(), w) == 0) return w.size();
        return 0;
    };
    auto match_back = [&]() -> size_t {
        for (const auto& w : ws)
            if (e - b >= w.size() && s.compare(e - w.size(), w.size(), w) == 0) return w.size();
        return 0;
    };
    for (size_t n; left && (n = match_front());) b += n;
    for (size_t n; right && (n = match_back());) e -= n;
    return s.substr(b, e - b);
}

size_t utf8_length(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // count everything but continuation bytes
    return n;
}

std::vector<std::string> mc_task_names() {
    return {"boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa"};
}

std::string mc_headline(const std::string& name) {
    return (name == "hellaswag" || name == "arc_challenge" || name == "openbookqa") ? "acc_norm" : "acc";
}

McTask load_mc_task(const std::string& name, const std::string& path, int64_t limit) {
    const auto names = mc_task_names();
    if (std::find(names.begin(), names.end(), name) == names.end())
        throw std::invalid_argument("unknown task '" + name + "'");
    const bool tsv = std::filesystem::path(path).extension() == ".tsv";
    if (tsv && name != "openbookqa")
        throw std::runtime_error(path + ": a .tsv file is read only as OpenBookQA's release TSV, not as " + name);
    auto rows = tsv ? read_openbookqa_tsv(path) : read_jsonl(path);
    if (rows.empty()) throw std::runtime_error(path + ": no records");
    McTask t;
    t.name = name;
    t.headline = mc_headline(name);
    std::string lst;
    std::vector<int> side = (name == "piqa" || name == "winogrande") ? side_labels(path, &lst) : std::vector<int>{};
    if (!side.empty() && side.size() != rows.size())
        throw std::runtime_error(lst + ": " + std::to_string(side.size()) + " labels for the " +
                                 std::to_string(rows.size()) + " records of " + path);
    for (size_t i = 0; i < rows.size(); ++i) {
        if (limit > 0 && (int64_t)t.docs.size() >= limit) break;
        Rec r{rows[i], path, i + 1};
        if (!r.j.is_object()) throw std::runtime_error(r.where() + ": not a JSON object");
        if (name == "arc_easy" || name == "arc_challenge" || name == "openbookqa") {
            t.docs.push_back(arc_like(r, name == "openbookqa"));
        } else if (name == "piqa") {
            // piqa.yaml: "Question: {{goal}}\nAnswer:", choices [sol1, sol2], target label.
            const int label = field_or_side_label(r, "label", side, lst);
            const std::string goal = r.str("goal"), sol1 = r.str("sol1"), sol2 = r.str("sol2");
            t.docs.push_back(choices_doc("Question: " + goal + "\nAnswer:", {sol1, sol2}, label, r));
        } else if (name == "hellaswag") {
            // hellaswag/utils.py process_docs: query = preprocess(activity_label
            // + ": " + ctx_a + " " + ctx_b.capitalize()), choices = preprocess(endings).
            const std::string ctx_a = r.str("ctx_a"), ctx_b = r.str("ctx_b"), activity = r.str("activity_label");
            const std::string query = hellaswag_preprocess(activity + ": " + ctx_a + " " + capitalize(ctx_b));
            std::vector<std::string> endings;
            for (const auto& e : r.strings(r.at("endings"), "endings")) endings.push_back(hellaswag_preprocess(e));
            t.docs.push_back(choices_doc(query, endings, r.index("label"), r));
        } else if (name == "winogrande") {
            // winogrande/preprocess_winogrande.py, partial evaluation: doc_to_choice
            // = sentence[:idx] + option (these are the contexts, and what
            // acc_norm divides by), doc_to_target = sentence[idx+1:].strip().
            const std::string s = r.str("sentence");
            const size_t blank = s.find('_');
            if (blank == std::string::npos) throw std::runtime_error(r.bad("sentence", "has no '_' blank"));
            const std::string rest = py_strip(s.substr(blank + 1));
            McDoc d;
            d.label = field_or_side_label(r, "answer", side, lst) - 1;
            if (d.label < 0 || d.label > 1) throw std::runtime_error(r.bad("answer", "must be 1 or 2"));
            for (const char* opt : {"option1", "option2"}) {
                const std::string ctx = s.substr(0, blank) + r.str(opt);
                d.requests.push_back({ctx, " " + rest});
                d.choices.push_back(ctx);
            }
            t.docs.push_back(d);
        } else if (name == "boolq") {
            // super_glue/boolq/default.yaml: "{{passage}}\nQuestion: {{question}}?\nAnswer:", choices ["no", "yes"].
            const std::string passage = r.str("passage"), question = r.str("question");
            t.docs.push_back(
                choices_doc(passage + "\nQuestion: " + question + "?\nAnswer:", {"no", "yes"}, boolq_label(r), r));
        }
    }
    return t;
}

}  // namespace bimamba::eval
