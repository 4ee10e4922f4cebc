#include "core/eval/Generate.h"

#include <algorithm>
#include <chrono>
#include <sstream>
#include <stdexcept>

namespace bimamba::eval {

using base::Sampler;
using base::SamplingParams;
using data::Tokenizer;
using model::InferenceState;
using model::Mamba2LM;

GenerationOutput generate(Mamba2LM& model, const Tokenizer& tok, const std::string& prompt, const SamplingParams& p,
                          bool add_bos, const std::function<void(const std::string&)>& on_text) {
    torch::NoGradGuard ng;
    model->eval();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<int> history;
    if (add_bos && tok.bos_id() >= 0) history.push_back(tok.bos_id());
    auto enc = tok.encode(prompt);
    history.insert(history.end(), enc.begin(), enc.end());
    if (history.empty()) throw std::invalid_argument("generate: empty prompt and no BOS token");
    if (tok.vocab_size() > model->config().vocab_size)
        throw std::invalid_argument("generate: tokenizer has " + std::to_string(tok.vocab_size()) +
                                    " pieces but the model only " + std::to_string(model->config().vocab_size));
    GenerationOutput out;
    out.prompt_tokens = (int64_t)history.size();
    const auto dev = model->backbone->embedding->weight.device();
    auto ids = torch::tensor(std::vector<int64_t>(history.begin(), history.end()), torch::kInt64).view({1, -1}).to(dev);
    InferenceState state = model->new_state(1);
    auto logits = model->prefill(ids, state).select(1, ids.size(1) - 1);  // (1, vocab)
    Sampler sampler(p);
    out.stop_reason = "max_tokens";
    for (int n = 0; n < p.max_tokens; ++n) {
        auto row = logits[0].to(torch::kCPU, torch::kFloat32).contiguous();
        // A padded vocabulary (mamba_ssm rounds it up) has ids the tokenizer
        // cannot decode: only the tokenizer's ids are candidates.
        const int64_t nv = std::min<int64_t>(row.numel(), tok.vocab_size());
        std::vector<float> v(row.data_ptr<float>(), row.data_ptr<float>() + nv);
        const int next = sampler.sample(v, history);
        if (next == tok.eos_id()) {
            out.stop_reason = "eos";
            break;
        }
        history.push_back(next);
        out.tokens.push_back(next);
        out.text = tok.decode(out.tokens);
        size_t cut = std::string::npos;
        for (const auto& s : p.stop)
            if (!s.empty()) cut = std::min(cut, out.text.find(s));
        if (cut != std::string::npos) {
            out.text.resize(cut);
            out.stop_reason = "stop";
            if (on_text) on_text(out.text);
            break;
        }
        if (on_text) on_text(out.text);
        if (n + 1 < p.max_tokens) logits = model->step(torch::tensor({(int64_t)next}, torch::kInt64).to(dev), state);
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

namespace {

// Bytes at the end of `s` that do not yet form a complete UTF-8 character,
// plus any trailing U+FFFD (EF BF BD: SentencePiece's placeholder for bytes
// of a character that is still incomplete).
size_t unstable_utf8_tail(const std::string& s) {
    size_t n = s.size(), held = 0;
    for (;;) {
        // an incomplete multi-byte sequence at the end
        size_t i = n, cont = 0;
        while (i > 0 && cont < 3 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i, ++cont;
        if (i > 0) {
            const unsigned char lead = static_cast<unsigned char>(s[i - 1]);
            const size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
            if (need > cont) {
                held += n - (i - 1);
                n = i - 1;
                continue;
            }
        }
        if (n >= 3 && s.compare(n - 3, 3, "\xEF\xBF\xBD") == 0) {
            held += 3;
            n -= 3;
            continue;
        }
        return held;
    }
}

}  // namespace

std::string TextStreamer::update(const std::string& text) {
    if (!consistent_) return {};
    if (text.compare(0, emitted_.size(), emitted_) != 0) {
        consistent_ = false;
        return {};
    }
    size_t end = text.size() - unstable_utf8_tail(text);
    // hold back the longest tail that is a proper prefix of a stop string
    size_t hold = 0;
    for (const auto& s : stop_)
        for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), end); k > hold; --k)
            if (text.compare(end - k, k, s, 0, k) == 0) {
                hold = k;
                break;
            }
    end -= hold;
    if (end <= emitted_.size()) return {};
    std::string piece = text.substr(emitted_.size(), end - emitted_.size());
    emitted_ += piece;
    return piece;
}

std::string TextStreamer::finish(const std::string& text) {
    if (!consistent_ || text.compare(0, emitted_.size(), emitted_) != 0) {
        consistent_ = false;
        return {};
    }
    std::string piece = text.substr(emitted_.size());
    emitted_ = text;
    return piece;
}

namespace {

// UTF-8 aware length in code points (good enough for column layout).
size_t display_len(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::vector<std::string> wrap(const std::string& text, size_t width) {
    std::vector<std::string> lines;
    std::istringstream paras(text);
    std::string para;
    while (std::getline(paras, para)) {
        std::istringstream words(para);
        std::string w, line;
        while (words >> w) {
            while (display_len(w) > width) {  // a word longer than the column: hard break
                if (!line.empty()) lines.push_back(line), line.clear();
                lines.push_back(w.substr(0, width));
                w = w.substr(width);
            }
            if (line.empty())
                line = w;
            else if (display_len(line) + 1 + display_len(w) <= width)
                line += " " + w;
            else
                lines.push_back(line), line = w;
        }
        lines.push_back(line);
    }
    if (lines.empty()) lines.push_back("");
    return lines;
}

std::string pad(const std::string& s, size_t w) {
    return s + std::string(w - std::min(w, display_len(s)), ' ');
}

}  // namespace

std::string side_by_side(const std::string& prompt, const std::vector<std::pair<std::string, std::string>>& rows,
                         int width) {
    size_t left = 5;
    for (auto& r : rows) left = std::max(left, display_len(r.first));
    left = std::min<size_t>(left, 28);
    const size_t right = std::max<size_t>(20, size_t(std::max(width, 40)) - left - 7);
    const std::string rule = "+" + std::string(left + 2, '-') + "+" + std::string(right + 2, '-') + "+\n";
    std::string s = rule;
    std::string p = prompt;
    for (size_t i; (i = p.find('\n')) != std::string::npos;) p.replace(i, 1, "\\n");  // show the prompt on one line
    for (auto& l : wrap("Prompt: " + p, left + right + 3)) s += "| " + pad(l, left + right + 3) + " |\n";
    s += rule + "| " + pad("Model", left) + " | " + pad("Generation", right) + " |\n" + rule;
    for (auto& [name, text] : rows) {
        auto l_lines = wrap(name, left);
        auto r_lines = wrap(text, right);
        const size_t n = std::max(l_lines.size(), r_lines.size());
        for (size_t i = 0; i < n; ++i)
            s += "| " + pad(i < l_lines.size() ? l_lines[i] : "", left) + " | " +
                 pad(i < r_lines.size() ? r_lines[i] : "", right) + " |\n";
        s += rule;
    }
    return s;
}

}  // namespace bimamba::eval
