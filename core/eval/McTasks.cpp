// Readers of the zero-shot tasks' official JSONL files, with the prompts of
// lm-evaluation-harness (v0.4 task configs).
#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <stdexcept>

#include "core/eval/Jsonl.h"
#include "core/eval/MultipleChoice.h"

namespace bimamba::eval {

namespace {

using nlohmann::json;

struct Rec {
    const json& j;
    const std::string& path;
    size_t no;
    std::string where() const { return path + ": record " + std::to_string(no); }
    const json& at(const std::string& key) const {
        if (!j.is_object() || !j.contains(key)) throw std::runtime_error(where() + " lacks field '" + key + "'");
        return j[key];
    }
    std::string str(const std::string& key) const {
        const json& v = at(key);
        if (!v.is_string()) throw std::runtime_error(where() + ": field '" + key + "' must be a string");
        return v.get<std::string>();
    }
    int index(const json& v, const std::string& key) const {
        if (v.is_number_integer()) return v.get<int>();
        if (v.is_string()) {
            try {
                return std::stoi(v.get<std::string>());
            } catch (...) {
            }
        }
        throw std::runtime_error(where() + ": field '" + key + "' must be an integer");
    }
};

McDoc choices_doc(const std::string& ctx, const std::vector<std::string>& choices, int label, const Rec& r) {
    if (label < 0 || label >= (int)choices.size())
        throw std::runtime_error(r.where() + ": answer index " + std::to_string(label) + " outside the " +
                                 std::to_string(choices.size()) + " choices");
    McDoc d;
    d.label = label;
    d.choices = choices;
    for (const auto& c : choices) d.requests.push_back({ctx, " " + c});
    return d;
}

// ARC and OpenBookQA: official {"question": {"stem", "choices": [{"text","label"}]}, "answerKey"}
// or the HF layout {"question"|"question_stem": str, "choices": {"text": [], "label": []}, "answerKey"}.
McDoc arc_like(const Rec& r, bool openbookqa) {
    std::string stem;
    std::vector<std::string> texts, labels;
    const json& q = r.j.contains("question_stem") ? r.at("question_stem") : r.at("question");
    const json* choices = nullptr;
    if (q.is_object()) {
        if (!q.contains("stem") || !q["stem"].is_string()) throw std::runtime_error(r.where() + " lacks question.stem");
        stem = q["stem"].get<std::string>();
        if (q.contains("choices")) choices = &q["choices"];
    } else if (q.is_string()) {
        stem = q.get<std::string>();
    } else {
        throw std::runtime_error(r.where() + ": field 'question' must be a string or an object");
    }
    if (!choices) choices = &r.at("choices");
    if (choices->is_array()) {
        for (const auto& c : *choices) {
            if (!c.is_object() || !c.contains("text") || !c.contains("label"))
                throw std::runtime_error(r.where() + ": every choice needs 'text' and 'label'");
            texts.push_back(c["text"].get<std::string>());
            labels.push_back(c["label"].get<std::string>());
        }
    } else if (choices->is_object() && choices->contains("text") && choices->contains("label")) {
        texts = (*choices)["text"].get<std::vector<std::string>>();
        labels = (*choices)["label"].get<std::vector<std::string>>();
    } else {
        throw std::runtime_error(r.where() + ": field 'choices' has an unknown layout");
    }
    const std::string key = r.str("answerKey");
    auto it = std::find(labels.begin(), labels.end(), key);
    if (it == labels.end()) throw std::runtime_error(r.where() + ": answerKey '" + key + "' is not a choice label");
    const std::string ctx = openbookqa ? stem : "Question: " + stem + "\nAnswer:";
    return choices_doc(ctx, texts, int(it - labels.begin()), r);
}

std::string hellaswag_preprocess(std::string t) {
    while (!t.empty() && std::isspace((unsigned char)t.front())) t.erase(t.begin());
    while (!t.empty() && std::isspace((unsigned char)t.back())) t.pop_back();
    size_t p;
    while ((p = t.find(" [title]")) != std::string::npos) t.replace(p, 8, ". ");
    t = std::regex_replace(t, std::regex("\\[.*?\\]"), "");
    while ((p = t.find("  ")) != std::string::npos) t.replace(p, 2, " ");
    return t;
}

std::string capitalize(std::string s) {  // Python str.capitalize (ASCII)
    for (size_t i = 0; i < s.size(); ++i) s[i] = i ? std::tolower((unsigned char)s[i]) : std::toupper((unsigned char)s[i]);
    return s;
}

std::vector<int> piqa_side_labels(const std::string& path) {
    auto p = std::filesystem::path(path);
    auto lst = p.parent_path() / (p.stem().string() + "-labels.lst");
    std::vector<int> out;
    std::ifstream f(lst);
    if (!f) return out;
    std::string line;
    int no = 0;
    while (std::getline(f, line)) {
        ++no;
        if (line.empty()) continue;
        try {
            out.push_back(std::stoi(line));
        } catch (...) {
            throw std::runtime_error(lst.string() + ":" + std::to_string(no) + ": not an integer label");
        }
    }
    return out;
}

}  // namespace

std::vector<std::string> mc_task_names() {
    return {"boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa"};
}

McTask load_mc_task(const std::string& name, const std::string& path, int64_t limit) {
    const auto names = mc_task_names();
    if (std::find(names.begin(), names.end(), name) == names.end())
        throw std::invalid_argument("unknown task '" + name + "'");
    auto rows = read_jsonl(path);
    if (rows.empty()) throw std::runtime_error(path + ": no records");
    McTask t;
    t.name = name;
    t.headline = (name == "hellaswag" || name == "arc_challenge" || name == "openbookqa") ? "acc_norm" : "acc";
    std::vector<int> side = name == "piqa" ? piqa_side_labels(path) : std::vector<int>{};
    for (size_t i = 0; i < rows.size(); ++i) {
        if (limit > 0 && (int64_t)t.docs.size() >= limit) break;
        Rec r{rows[i], path, i + 1};
        if (name == "arc_easy" || name == "arc_challenge" || name == "openbookqa") {
            t.docs.push_back(arc_like(r, name == "openbookqa"));
        } else if (name == "piqa") {
            int label;
            if (r.j.contains("label")) label = r.index(r.at("label"), "label");
            else if (i < side.size()) label = side[i];
            else throw std::runtime_error(r.where() + " has no 'label' and no <file>-labels.lst line");
            t.docs.push_back(choices_doc("Question: " + r.str("goal") + "\nAnswer:", {r.str("sol1"), r.str("sol2")}, label, r));
        } else if (name == "hellaswag") {
            const std::string ctx = r.str("ctx_a") + " " + capitalize(r.str("ctx_b"));
            const std::string query = hellaswag_preprocess(r.str("activity_label") + ": " + ctx);
            std::vector<std::string> endings;
            for (const auto& e : r.at("endings")) endings.push_back(hellaswag_preprocess(e.get<std::string>()));
            t.docs.push_back(choices_doc(query, endings, r.index(r.at("label"), "label"), r));
        } else if (name == "winogrande") {
            // Partial scoring: the option fills the blank in the context; the
            // shared rest of the sentence is the scored continuation.
            const std::string s = r.str("sentence");
            const size_t blank = s.find('_');
            if (blank == std::string::npos) throw std::runtime_error(r.where() + ": sentence has no '_' blank");
            std::string rest = s.substr(blank + 1);
            while (!rest.empty() && std::isspace((unsigned char)rest.front())) rest.erase(rest.begin());
            while (!rest.empty() && std::isspace((unsigned char)rest.back())) rest.pop_back();
            McDoc d;
            d.label = r.index(r.at("answer"), "answer") - 1;
            if (d.label < 0 || d.label > 1) throw std::runtime_error(r.where() + ": answer must be 1 or 2");
            for (const char* opt : {"option1", "option2"}) {
                d.requests.push_back({s.substr(0, blank) + r.str(opt), " " + rest});
                d.choices.push_back(rest);
            }
            t.docs.push_back(d);
        } else if (name == "boolq") {
            const json& a = r.at(r.j.contains("answer") ? "answer" : "label");
            int label;
            if (a.is_boolean()) label = a.get<bool>() ? 1 : 0;
            else label = r.index(a, "label");
            t.docs.push_back(choices_doc(r.str("passage") + "\nQuestion: " + r.str("question") + "?\nAnswer:",
                                         {"no", "yes"}, label, r));
        }
    }
    return t;
}

}  // namespace bimamba::eval
