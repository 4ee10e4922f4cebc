#include "core/data/Corpus.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>

#include "core/base/StringUtil.h"
#include "core/data/DecompressingReader.h"

namespace fs = std::filesystem;

namespace bimamba::data {

using base::ends_with;

DocUnit doc_unit_from_string(const std::string& s) {
    if (s == "file") return DocUnit::File;
    if (s == "line") return DocUnit::Line;
    if (s == "paragraph") return DocUnit::Paragraph;
    if (s == "percent") return DocUnit::Percent;
    throw std::invalid_argument("unknown document unit '" + s + "' (known: file, line, paragraph, percent)");
}

std::string to_string(DocUnit u) {
    switch (u) {
        case DocUnit::File:
            return "file";
        case DocUnit::Line:
            return "line";
        case DocUnit::Paragraph:
            return "paragraph";
        case DocUnit::Percent:
            return "percent";
    }
    return "?";
}

CorpusOptions fortunes_corpus(const std::string& dir) {
    CorpusOptions o;
    o.paths = {dir};
    o.format = "text";
    o.unit = DocUnit::Percent;
    o.exclude_suffixes = {".dat", ".u8"};  // strfile indexes
    o.skip_symlinks = true;
    return o;
}

uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
    auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

namespace {

bool is_blank(const std::string& s) {
    return s.find_first_not_of(" \t\r\n\f\v") == std::string::npos;
}

std::string trim_newlines(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    size_t b = 0;
    while (b < s.size() && (s[b] == '\n' || s[b] == '\r')) ++b;
    return s.substr(b);
}

// Files are read through DecompressingReader (.xz/.gz/.zst or plain); its
// errors name the file, these add the "corpus:" context.
struct CorpusReader : DecompressingReader {
    CorpusReader(const std::string& path, uint64_t limit) try : DecompressingReader(path, limit) {
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("corpus: ") + e.what());
    }
    bool next_line(std::string& line) try { return getline(line); } catch (const std::exception& e) {
        throw std::runtime_error(std::string("corpus: ") + e.what());
    }
};

bool is_jsonl(const CorpusOptions& o, const std::string& path) {
    if (o.format == "jsonl") return true;
    if (o.format == "text") return false;
    const std::string name = strip_compression_suffix(path);  // "a.jsonl.zst" is JSONL
    return ends_with(name, ".jsonl") || ends_with(name, ".json");
}

// `limit`: the decompressed bytes this file may still bring (read_corpus's
// budget); returns the bytes it brought.
uint64_t read_text(const std::string& path, DocUnit unit, uint64_t limit, std::vector<Document>& out) {
    auto add = [&](std::string text, size_t line) {
        text = trim_newlines(std::move(text));
        if (is_blank(text)) return;
        out.push_back({std::move(text), unit == DocUnit::File ? path : path + ":" + std::to_string(line)});
    };
    if (unit == DocUnit::File) {
        std::string all;
        try {
            all = read_decompressed(path, limit);
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("corpus: ") + e.what());
        }
        const uint64_t n = all.size();
        add(std::move(all), 1);
        return n;
    }
    CorpusReader in(path, limit);
    std::string line, cur;
    size_t lineno = 0, start = 1;
    while (in.next_line(line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (unit == DocUnit::Line) {
            add(line, lineno);
            continue;
        }
        bool sep = unit == DocUnit::Percent ? line == "%" : is_blank(line);
        if (sep) {
            add(cur, start);
            cur.clear();
            start = lineno + 1;
        } else {
            cur += line;
            cur += '\n';
        }
    }
    add(cur, start);
    return in.decompressed_bytes();
}

uint64_t read_jsonl(const std::string& path, const std::string& field, uint64_t limit, std::vector<Document>& out) {
    CorpusReader in(path, limit);
    std::string line;
    size_t lineno = 0;
    while (in.next_line(line)) {
        ++lineno;
        if (is_blank(line)) continue;
        const std::string where = path + ":" + std::to_string(lineno);
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const std::exception& e) {
            throw std::runtime_error("corpus: bad JSON on line " + std::to_string(lineno) + " of '" + path +
                                     "': " + e.what());
        }
        if (!j.is_object())
            throw std::runtime_error("corpus: line " + std::to_string(lineno) + " of '" + path +
                                     "' is not a JSON object");
        auto it = j.find(field);
        if (it == j.end())
            throw std::runtime_error("corpus: line " + std::to_string(lineno) + " of '" + path + "' has no \"" + field +
                                     "\" field");
        if (!it->is_string())
            throw std::runtime_error("corpus: field \"" + field + "\" on line " + std::to_string(lineno) + " of '" +
                                     path + "' is not a string");
        std::string text = it->get<std::string>();
        if (!is_blank(text)) out.push_back({std::move(text), where});
    }
    return in.decompressed_bytes();
}

}  // namespace

std::vector<std::string> list_corpus_files(const CorpusOptions& opt) {
    if (opt.paths.empty()) throw std::invalid_argument("corpus: no input path given");
    if (opt.format != "auto" && opt.format != "text" && opt.format != "jsonl")
        throw std::invalid_argument("corpus: unknown format '" + opt.format + "' (known: auto, text, jsonl)");
    std::vector<std::string> files;
    for (const auto& p : opt.paths) {
        std::error_code ec;
        auto st = fs::status(p, ec);
        if (ec || !fs::exists(st)) throw std::runtime_error("corpus: path '" + p + "' does not exist");
        if (fs::is_regular_file(st)) {
            files.push_back(p);
            continue;
        }
        if (!fs::is_directory(st)) throw std::runtime_error("corpus: '" + p + "' is neither a file nor a folder");
        std::vector<std::string> found;
        for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            const auto& e = *it;
            const std::string name = e.path().filename().string();
            if (!name.empty() && name[0] == '.') {
                if (e.is_directory()) it.disable_recursion_pending();
                continue;
            }
            if (opt.skip_symlinks && e.is_symlink()) continue;
            if (!e.is_regular_file()) continue;
            bool excluded = false;
            for (auto& suf : opt.exclude_suffixes) excluded |= ends_with(name, suf);
            if (!excluded) found.push_back(e.path().string());
        }
        if (ec) throw std::runtime_error("corpus: cannot list '" + p + "': " + ec.message());
        std::sort(found.begin(), found.end());
        files.insert(files.end(), found.begin(), found.end());
    }
    return files;
}

std::vector<Document> read_corpus(const CorpusOptions& opt) {
    std::vector<Document> docs;
    auto files = list_corpus_files(opt);
    if (files.empty()) throw std::runtime_error("corpus: no files found under the given paths");
    const uint64_t budget = opt.max_bytes ? opt.max_bytes : memory_budget_bytes();
    uint64_t held = 0;  // decompressed bytes of the files read so far
    for (const auto& f : files) {
        const uint64_t left = budget > held ? budget - held : 1;  // never 0, which would mean the default
        held += is_jsonl(opt, f) ? read_jsonl(f, opt.jsonl_field, left, docs) : read_text(f, opt.unit, left, docs);
    }
    if (docs.empty())
        throw std::runtime_error("corpus: the input is empty (no non-blank documents in " +
                                 std::to_string(files.size()) + " file(s))");
    return docs;
}

std::vector<bool> split_validation(const std::vector<Document>& docs, double val_fraction, uint64_t seed) {
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        throw std::invalid_argument("val_fraction must be in [0, 1), got " + std::to_string(val_fraction));
    const size_t n = docs.size();
    std::vector<bool> val(n, false);
    size_t n_val = static_cast<size_t>(std::ceil(val_fraction * static_cast<double>(n)));
    if (val_fraction > 0 && n >= 2) n_val = std::max<size_t>(n_val, 1);
    n_val = std::min(n_val, n >= 1 ? n - 1 : 0);  // keep at least one training document
    if (n_val == 0) return val;
    std::vector<uint64_t> key(n);
    for (size_t i = 0; i < n; ++i) {
        uint64_t h = fnv1a64(&seed, sizeof seed);
        uint64_t idx = i;
        h = fnv1a64(&idx, sizeof idx, h);
        key[i] = fnv1a64(docs[i].text.data(), docs[i].text.size(), h);
    }
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return key[a] != key[b] ? key[a] < key[b] : a < b; });
    for (size_t i = 0; i < n_val; ++i) val[order[i]] = true;
    return val;
}

}  // namespace bimamba::data
