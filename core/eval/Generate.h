#pragma once
// Text generation with O(1)-per-token recurrent decoding (prefill, then
// Mamba2LM::step), sampling by bimamba::base::Sampler, stop strings and EOS; and the
// side-by-side layout of the paper's Figures 11–13 (one prompt, one row per model).
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/base/Sampler.h"
#include "core/data/Tokenizer.h"
#include "core/model/Mamba2Model.h"

namespace bimamba::eval {

struct GenerationOutput {
    std::string text;         // generated text only (cut before a stop string)
    std::vector<int> tokens;  // generated tokens
    int64_t prompt_tokens = 0;
    double seconds = 0;       // prefill + decoding
    std::string stop_reason;  // "eos" | "stop" | "max_tokens"
};

// `on_text` receives the text generated so far after every token (streaming).
GenerationOutput generate(model::Mamba2LM& model, const data::Tokenizer& tok, const std::string& prompt,
                          const base::SamplingParams& p, bool add_bos = true,
                          const std::function<void(const std::string&)>& on_text = {});

// Streaming: turns the growing decoded text (what `generate`'s `on_text`
// receives) into pieces that are safe to print at once. It holds back a tail
// that could still turn into a stop string (the final text is cut before it)
// and a trailing incomplete UTF-8 sequence or U+FFFD (a byte-fallback
// character whose bytes have not all arrived), so the concatenated pieces
// equal the final text exactly.
class TextStreamer {
public:
    explicit TextStreamer(std::vector<std::string> stop = {}) : stop_(std::move(stop)) {}
    // The new printable piece, given the whole text generated so far.
    std::string update(const std::string& text_so_far);
    // The rest, given the final text (GenerationOutput::text).
    std::string finish(const std::string& final_text);
    const std::string& emitted() const { return emitted_; }
    // False when the decoded text changed before what was already printed
    // (then the pieces no longer add up to the final text).
    bool consistent() const { return consistent_; }

private:
    std::vector<std::string> stop_;
    std::string emitted_;
    bool consistent_ = true;
};

// Plain-text table: the prompt, then "model | generation" rows, text wrapped
// at word boundaries to `width` columns overall.
std::string side_by_side(const std::string& prompt, const std::vector<std::pair<std::string, std::string>>& rows,
                         int width = 100);

}  // namespace bimamba::eval
