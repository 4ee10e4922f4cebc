#include "core/study/Study.h"

#include <filesystem>
#include <functional>
#include <set>
#include <stdexcept>

#include "core/base/FileUtil.h"
#include "core/base/TomlJson.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace bimamba::study {

using base::parse_toml_as_json;
using base::read_file;
using base::write_file_atomic;

namespace {

std::invalid_argument bad(const std::string& source, const std::string& msg) {
    return std::invalid_argument("study " + source + ": " + msg);
}

// FNV-1a, 64 bit: a stable fingerprint (std::hash may differ between builds).
std::string fnv1a_hex(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

// A --set value: a JSON number/boolean keeps its type, anything else is a string.
json typed_value(const std::string& v) {
    if (v == "true") return true;
    if (v == "false") return false;
    try {
        json j = json::parse(v);
        if (j.is_number()) return j;
    } catch (const json::exception&) {
    }
    return v;
}

class Resolver {
public:
    Resolver(const json& vars, std::string source) : vars_(vars), source_(std::move(source)) {}

    // Resolves ${NAME} references in every string of `v`; `where` names the
    // field for errors.
    json resolve(const json& v, const std::string& where) const {
        if (v.is_string()) return resolve_string(v.get<std::string>(), where, 0);
        if (v.is_array()) {
            json out = json::array();
            for (const auto& e : v) out.push_back(resolve(e, where));
            return out;
        }
        if (v.is_object()) {
            json out = json::object();
            for (auto it = v.begin(); it != v.end(); ++it) out[it.key()] = resolve(it.value(), where + "." + it.key());
            return out;
        }
        return v;
    }

private:
    json lookup(const std::string& name, const std::string& where, int depth) const {
        auto it = vars_.find(name);
        if (it == vars_.end())
            throw bad(source_,
                      where + ": unknown variable ${" + name + "} (define it under [vars], or --set " + name + "=...)");
        if (depth > 16) throw bad(source_, where + ": variables refer to each other in a loop (${" + name + "})");
        return it->is_string() ? resolve_string(it->get<std::string>(), where, depth + 1) : *it;
    }

    json resolve_string(const std::string& s, const std::string& where, int depth) const {
        // Exactly one reference and nothing else: keep the variable's type.
        if (s.size() > 3 && s.rfind("${", 0) == 0 && s.back() == '}' && s.find("${", 2) == std::string::npos &&
            s.find('}') == s.size() - 1)
            return lookup(s.substr(2, s.size() - 3), where, depth);
        std::string out;
        size_t i = 0;
        while (i < s.size()) {
            size_t a = s.find("${", i);
            if (a == std::string::npos) {
                out += s.substr(i);
                break;
            }
            size_t b = s.find('}', a);
            if (b == std::string::npos) throw bad(source_, where + ": unterminated ${ in \"" + s + "\"");
            out += s.substr(i, a - i);
            json v = lookup(s.substr(a + 2, b - a - 2), where, depth);
            if (v.is_string())
                out += v.get<std::string>();
            else if (v.is_number() || v.is_boolean())
                out += v.dump();
            else
                throw bad(source_, where + ": ${" + s.substr(a + 2, b - a - 2) + "} is not a string or number");
            i = b + 1;
        }
        return out;
    }

    const json& vars_;
    std::string source_;
};

std::vector<std::string> string_list(const json& v, const std::string& source, const std::string& where) {
    if (!v.is_array()) throw bad(source, where + " must be an array of strings");
    std::vector<std::string> out;
    for (const auto& e : v) {
        if (e.is_string())
            out.push_back(e.get<std::string>());
        else if (e.is_number() || e.is_boolean())
            out.push_back(e.dump());  // "--steps", 300 reads naturally in a study file
        else
            throw bad(source, where + " must be an array of strings, got " + e.dump());
    }
    return out;
}

}  // namespace

std::string Stage::fingerprint() const {
    return fnv1a_hex(to_json().dump());
}

json Stage::to_json() const {
    json j{{"name", name}, {"group", group}, {"kind", kind}};
    if (kind == "train") {
        j["train"] = train;
        j["run_dir"] = run_dir;
    } else if (kind == "run") {
        j["args"] = args;
        j["outputs"] = outputs;
    } else {
        j["summary"] = summary;
    }
    return j;
}

const Stage* Study::find(const std::string& stage_name) const {
    for (const auto& st : stages)
        if (st.name == stage_name) return &st;
    return nullptr;
}

json Study::to_json() const {
    json st = json::array();
    for (const auto& s : stages) st.push_back(s.to_json());
    return json{{"name", name},   {"description", description},
                {"file", file},   {"workspace", workspace},
                {"scale", scale}, {"vars", vars},
                {"stages", st}};
}

Study parse_study(const std::string& text, const std::string& source, const std::string& workspace,
                  const std::string& scale, const std::vector<std::pair<std::string, std::string>>& sets) {
    json doc = parse_toml_as_json(text, source);
    for (auto it = doc.begin(); it != doc.end(); ++it)
        if (it.key() != "study" && it.key() != "vars" && it.key() != "scale" && it.key() != "stage")
            throw bad(source, "unknown table [" + it.key() + "] (known: study, vars, scale, stage)");
    Study s;
    s.file = source;
    s.workspace = fs::absolute(workspace).lexically_normal().string();
    while (s.workspace.size() > 1 && s.workspace.back() == '/') s.workspace.pop_back();
    s.scale = scale;
    const json head = doc.value("study", json::object());
    s.name = head.value("name", fs::path(source).stem().string());
    s.description = head.value("description", "");

    json vars = doc.value("vars", json::object());
    if (!vars.is_object()) throw bad(source, "[vars] must be a table");
    if (!scale.empty()) {
        const json scales = doc.value("scale", json::object());
        if (!scales.contains(scale)) {
            std::string known;
            for (auto it = scales.begin(); it != scales.end(); ++it) known += (known.empty() ? "" : ", ") + it.key();
            throw bad(source, "no [scale." + scale + "] (known: " + (known.empty() ? "none" : known) + ")");
        }
        for (auto it = scales[scale].begin(); it != scales[scale].end(); ++it) {
            if (!vars.contains(it.key()))
                throw bad(source, "[scale." + scale + "] sets '" + it.key() + "', which [vars] does not define");
            vars[it.key()] = it.value();
        }
    }
    for (const auto& [k, v] : sets) {
        if (!vars.contains(k) && k != "ws" && k != "study_dir")
            throw bad(source, "--set " + k + ": no such variable under [vars]");
        vars[k] = typed_value(v);
    }
    vars["ws"] = s.workspace;
    vars["study_dir"] = fs::absolute(source).parent_path().lexically_normal().string();
    vars["scale"] = scale;
    Resolver r(vars, source);
    // Variables resolved once, for the record in study.json.
    for (auto it = vars.begin(); it != vars.end(); ++it) s.vars[it.key()] = r.resolve(it.value(), "vars." + it.key());

    const json stages = doc.value("stage", json::array());
    if (!stages.is_array() || stages.empty()) throw bad(source, "no [[stage]] entries");
    std::set<std::string> names;
    for (size_t i = 0; i < stages.size(); ++i) {
        const json& sj = stages[i];
        const std::string where0 = "stage " + std::to_string(i + 1);
        if (!sj.contains("name") || !sj["name"].is_string() || sj["name"].get<std::string>().empty())
            throw bad(source, where0 + " has no name");
        Stage st;
        st.name = sj["name"].get<std::string>();
        const std::string where = "stage '" + st.name + "'";
        if (st.name.find_first_of("/\\ ") != std::string::npos || st.name[0] == '.')
            throw bad(source, where + ": a name may not contain '/', '\\' or spaces, nor start with '.'");
        if (!names.insert(st.name).second) throw bad(source, where + " appears twice");
        for (auto it = sj.begin(); it != sj.end(); ++it)
            if (it.key() != "name" && it.key() != "group" && it.key() != "train" && it.key() != "run" &&
                it.key() != "outputs" && it.key() != "summary")
                throw bad(source, where + ": unknown field '" + it.key() +
                                      "' (known: name, group, train, run, outputs, summary)");
        st.group = r.resolve(sj.value("group", json("")), where + ".group").get<std::string>();
        const int kinds = sj.contains("train") + sj.contains("run") + sj.contains("summary");
        if (kinds != 1) throw bad(source, where + " needs exactly one of train = {...}, run = [...], summary = {...}");
        if (sj.contains("train")) {
            st.kind = "train";
            if (!sj["train"].is_object()) throw bad(source, where + ".train must be a table");
            st.train = r.resolve(sj["train"], where + ".train");
            st.run_dir = s.workspace + "/runs/" + st.name;
        } else if (sj.contains("run")) {
            st.kind = "run";
            st.args = string_list(r.resolve(sj["run"], where + ".run"), source, where + ".run");
            if (st.args.empty()) throw bad(source, where + ".run is empty (it starts with a bimamba subcommand)");
            if (sj.contains("outputs"))
                st.outputs = string_list(r.resolve(sj["outputs"], where + ".outputs"), source, where + ".outputs");
        } else {
            st.kind = "summary";
            if (!sj["summary"].is_object()) throw bad(source, where + ".summary must be a table");
            st.summary = r.resolve(sj["summary"], where + ".summary");
        }
        if (st.kind != "run" && sj.contains("outputs")) throw bad(source, where + ": outputs belongs to run stages");
        s.stages.push_back(std::move(st));
    }
    return s;
}

Study load_study(const std::string& file, const std::string& workspace, const std::string& scale,
                 const std::vector<std::pair<std::string, std::string>>& sets) {
    std::string text;
    try {
        text = read_file(file);
    } catch (const std::exception& e) {
        throw std::invalid_argument(std::string("study: ") + e.what());
    }
    return parse_study(text, fs::absolute(file).lexically_normal().string(), workspace, scale, sets);
}

const char* state_name(StageState s) {
    switch (s) {
        case StageState::pending:
            return "pending";
        case StageState::partial:
            return "partial";
        case StageState::done:
            return "done";
        case StageState::changed:
            return "changed";
    }
    return "?";
}

namespace {
std::string record_path(const Study& s, const Stage& st) {
    return s.workspace + "/stages/" + st.name + ".json";
}
}  // namespace

StageState stage_state(const Study& s, const Stage& st) {
    const std::string rec = record_path(s, st);
    if (fs::exists(rec)) {
        try {
            json j = json::parse(read_file(rec));
            return j.value("fingerprint", "") == st.fingerprint() ? StageState::done : StageState::changed;
        } catch (const std::exception&) {
            return StageState::changed;  // an unreadable record is not trusted
        }
    }
    if (st.kind == "train" && fs::exists(st.run_dir + "/checkpoints/latest")) return StageState::partial;
    return StageState::pending;
}

void mark_done(const Study& s, const Stage& st, double seconds) {
    fs::create_directories(s.workspace + "/stages");
    json j{{"stage", st.name}, {"fingerprint", st.fingerprint()}, {"seconds", seconds}, {"definition", st.to_json()}};
    write_file_atomic(record_path(s, st), j.dump(2) + "\n");
}

void clear_done(const Study& s, const Stage& st) {
    std::error_code ec;
    fs::remove(record_path(s, st), ec);
}

std::string study_group_of_run(const std::string& workspace, const std::string& run_dir) {
    const fs::path rec = fs::path(workspace) / "study.json";
    if (!fs::exists(rec)) return "";
    try {
        const json j = json::parse(read_file(rec.string()));
        std::error_code ec;
        for (const auto& st : j.value("stages", json::array())) {
            if (st.value("kind", "") != "train") continue;
            // The recorded path, or the same stage in a workspace that was moved
            // or copied since (runs/<stage> under the workspace given).
            const fs::path recorded = st.value("run_dir", "");
            const bool same = fs::equivalent(recorded, run_dir, ec) ||
                              (recorded.filename() == fs::path(run_dir).filename() &&
                               fs::equivalent(fs::path(run_dir).parent_path(), fs::path(workspace) / "runs", ec));
            if (same) return st.value("group", "").empty() ? std::string("study") : st.value("group", "");
        }
    } catch (const std::exception&) {  // a damaged study.json: the runs are still shown, ungrouped
    }
    return "";
}

std::string stage_log_path(const Study& s, const Stage& st) {
    return s.workspace + "/logs/" + st.name + ".log";
}
std::string stage_config_path(const Study& s, const Stage& st) {
    return s.workspace + "/configs/" + st.name + ".json";
}

}  // namespace bimamba::study
