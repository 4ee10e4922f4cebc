#include "core/eval/Perplexity.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/data/DecompressingReader.h"
#include "core/eval/Jsonl.h"

namespace bimamba::eval {

using data::read_decompressed;
using data::strip_compression_suffix;

double PerplexityResult::ppl() const {
    return std::exp(mean_nll());
}

namespace {

struct Window {
    int64_t begin, end;  // tokens [begin, end) are the input
    int64_t first;       // first target position scored (begin < first <= end)
};

std::vector<Window> plan_windows(int64_t n, const PerplexityOptions& opt) {
    std::vector<Window> w;
    if (opt.stride <= 0 || opt.stride >= opt.window) {
        for (int64_t b = 0; b + opt.window <= n; b += opt.window) w.push_back({b, b + opt.window, b + 1});
    } else {
        int64_t prev_end = 1;  // targets before this index are already scored
        for (int64_t b = 0; prev_end < n; b += opt.stride) {
            const int64_t e = std::min(n, b + opt.window);
            if (e > prev_end) w.push_back({b, e, std::max(prev_end, b + 1)});
            prev_end = std::max(prev_end, e);
        }
    }
    if (opt.max_windows > 0 && (int64_t)w.size() > opt.max_windows) w.resize(opt.max_windows);
    return w;
}

}  // namespace

PerplexityResult perplexity(const LogitsFn& model, const std::vector<int>& tokens, const PerplexityOptions& opt) {
    if (opt.window < 2) throw std::invalid_argument("perplexity: window must be at least 2 tokens");
    const auto windows = plan_windows((int64_t)tokens.size(), opt);
    if (windows.empty())
        throw std::invalid_argument("perplexity: " + std::to_string(tokens.size()) +
                                    " tokens do not fill one window of " + std::to_string(opt.window));
    torch::NoGradGuard ng;
    auto all = torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.end()), torch::kInt64);
    PerplexityResult r;
    const int64_t bs = std::max<int64_t>(1, opt.batch_size);
    size_t i = 0;
    while (i < windows.size()) {
        // A batch: consecutive windows of equal length.
        const int64_t len = windows[i].end - windows[i].begin;
        size_t j = i;
        std::vector<torch::Tensor> rows;
        while (j < windows.size() && (int64_t)rows.size() < bs && windows[j].end - windows[j].begin == len)
            rows.push_back(all.slice(0, windows[j].begin, windows[j].end)), ++j;
        auto ids = torch::stack(rows);
        auto logits = model(ids);
        if (logits.dim() != 3 || logits.size(0) != ids.size(0) || logits.size(1) != len)
            throw std::runtime_error("perplexity: model returned logits of the wrong shape");
        auto logp =
            torch::log_softmax(logits.narrow(1, 0, len - 1)
                                   .to(logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32),
                               -1);
        auto tgt = ids.narrow(1, 1, len - 1).to(logp.device());
        auto nll = -logp.gather(2, tgt.unsqueeze(-1)).squeeze(-1).to(torch::kFloat64).cpu();  // (b, len-1)
        for (size_t k = i; k < j; ++k) {
            const auto& w = windows[k];
            // Target position t sits at column t - begin - 1.
            auto part = nll[k - i].slice(0, w.first - w.begin - 1, len - 1);
            r.nll_sum += part.sum().item<double>();
            r.predictions += part.numel();
        }
        r.windows += (int64_t)(j - i);
        i = j;
        if (opt.progress) opt.progress((int64_t)i, (int64_t)windows.size());
    }
    return r;
}

CorpusProtocol corpus_protocol_from_string(const std::string& s) {
    if (s == "raw" || s == "text") return CorpusProtocol::Raw;
    if (s == "wikitext2" || s == "wikitext") return CorpusProtocol::WikiText2;
    if (s == "ptb") return CorpusProtocol::PTB;
    if (s == "c4") return CorpusProtocol::C4;
    throw std::invalid_argument("unknown corpus protocol '" + s + "' (expected raw, wikitext2, ptb or c4)");
}

std::string load_eval_text(const std::string& path, CorpusProtocol protocol, const std::string& field) {
    // A compressed file (.xz, .gz, .zst) reads as its content.
    const std::string ext = std::filesystem::path(strip_compression_suffix(path)).extension().string();
    std::vector<std::string> docs;
    if (ext == ".jsonl" || ext == ".json") {
        int line = 0;
        for (auto& j : read_jsonl(path)) {
            ++line;
            if (!j.is_object() || !j.contains(field) || !j[field].is_string())
                throw std::runtime_error(path + ": record " + std::to_string(line) + " has no string field '" + field +
                                         "'");
            docs.push_back(j[field].get<std::string>());
            if (protocol == CorpusProtocol::C4 && docs.size() == 1100) break;
        }
    } else {
        std::stringstream ss(read_decompressed(path));
        if (protocol == CorpusProtocol::Raw) return ss.str();
        std::string line;
        while (std::getline(ss, line)) {
            if (protocol == CorpusProtocol::WikiText2) line += "\n";  // HF rows keep their newline
            docs.push_back(line);
            if (protocol == CorpusProtocol::C4 && docs.size() == 1100) break;
        }
    }
    if (docs.empty()) throw std::runtime_error(path + ": no text");
    const std::string sep =
        protocol == CorpusProtocol::PTB || protocol == CorpusProtocol::C4 ? std::string(" ") : std::string("\n\n");
    std::string out = docs[0];
    for (size_t i = 1; i < docs.size(); ++i) out += sep + docs[i];
    return out;
}

}  // namespace bimamba::eval
