#include "core/data/Tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <stdexcept>
#include <unordered_map>

#include "core/base/FileUtil.h"

namespace bimamba::data {

using base::read_file;
using base::write_file_atomic;

Tokenizer::Tokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Tokenizer::~Tokenizer() = default;

std::shared_ptr<Tokenizer> Tokenizer::from_serialized(const std::string& bytes) {
    if (bytes.empty()) throw std::runtime_error("tokenizer: empty model data");
    std::shared_ptr<Tokenizer> t(new Tokenizer());
    auto st = t->sp_->LoadFromSerializedProto(bytes);
    if (!st.ok()) throw std::runtime_error("tokenizer: not a SentencePiece model (" + std::string(st.message()) + ")");
    t->serialized_ = bytes;
    return t;
}

std::shared_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
    std::string bytes;
    try {
        bytes = read_file(path);
    } catch (const std::exception& e) {
        throw std::runtime_error("tokenizer: cannot read '" + path + "': " + e.what());
    }
    try {
        return from_serialized(bytes);
    } catch (const std::exception& e) {
        throw std::runtime_error("tokenizer '" + path + "': " + e.what());
    }
}

std::vector<int> Tokenizer::encode(const std::string& text) const {
    std::vector<int> ids;
    auto st = sp_->Encode(text, &ids);
    if (!st.ok()) throw std::runtime_error("tokenizer: encode failed: " + std::string(st.message()));
    return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
    const int n = vocab_size();
    for (int id : ids)
        if (id < 0 || id >= n)
            throw std::out_of_range("tokenizer: id " + std::to_string(id) + " outside vocabulary of " +
                                    std::to_string(n));
    std::string out;
    auto st = sp_->Decode(ids, &out);
    if (!st.ok()) throw std::runtime_error("tokenizer: decode failed: " + std::string(st.message()));
    return out;
}

std::string Tokenizer::piece(int id) const {
    if (id < 0 || id >= vocab_size())
        throw std::out_of_range("tokenizer: id " + std::to_string(id) + " outside vocabulary of " +
                                std::to_string(vocab_size()));
    return sp_->IdToPiece(id);
}

int Tokenizer::vocab_size() const {
    return sp_->GetPieceSize();
}
int Tokenizer::bos_id() const {
    return sp_->bos_id();
}
int Tokenizer::eos_id() const {
    return sp_->eos_id();
}
int Tokenizer::unk_id() const {
    return sp_->unk_id();
}
int Tokenizer::pad_id() const {
    return sp_->pad_id();
}

void Tokenizer::save(const std::string& path) const {
    write_file_atomic(path, serialized_);
}

namespace {

// Feeds lines to the SentencePiece trainer from memory (no temporary file).
class LineIterator : public sentencepiece::SentenceIterator {
public:
    explicit LineIterator(const std::vector<std::string>& lines) : lines_(lines) {}
    bool done() const override { return i_ >= lines_.size(); }
    void Next() override { ++i_; }
    const std::string& value() const override { return lines_[i_]; }
    sentencepiece::util::Status status() const override { return {}; }

private:
    const std::vector<std::string>& lines_;
    size_t i_ = 0;
};

}  // namespace

std::string train_tokenizer(const std::vector<std::string>& documents, const TokenizerTrainOptions& opt) {
    if (opt.model_type != "bpe" && opt.model_type != "unigram")
        throw std::invalid_argument("tokenizer: model_type must be 'bpe' or 'unigram', got '" + opt.model_type + "'");
    if (opt.vocab_size < 300)
        throw std::invalid_argument("tokenizer: vocab_size must be at least 300 (byte fallback needs 256 ids), got " +
                                    std::to_string(opt.vocab_size));
    // SentencePiece trains on lines; newlines are left to byte fallback as in LLaMA's tokenizer.
    std::vector<std::string> lines;
    for (const auto& d : documents) {
        size_t start = 0;
        while (start <= d.size()) {
            size_t end = d.find('\n', start);
            if (end == std::string::npos) end = d.size();
            if (end > start) {
                std::string line = d.substr(start, end - start);
                if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(std::move(line));
            }
            start = end + 1;
        }
    }
    if (lines.empty()) throw std::invalid_argument("tokenizer: the corpus has no text to train on");

    const std::unordered_map<std::string, std::string> kw = {
        {"model_type", opt.model_type},
        {"vocab_size", std::to_string(opt.vocab_size)},
        {"character_coverage", std::to_string(opt.character_coverage)},
        {"input_sentence_size", std::to_string(opt.max_sentences)},
        {"shuffle_input_sentence", "true"},
        {"max_sentence_length", std::to_string(opt.max_sentence_length)},
        {"num_threads", std::to_string(opt.num_threads)},
        {"byte_fallback", opt.byte_fallback ? "true" : "false"},
        // LLaMA-style: keep text as is (no NFKC, no whitespace collapsing), split digits.
        {"normalization_rule_name", "identity"},
        {"remove_extra_whitespaces", "false"},
        {"split_digits", "true"},
        {"allow_whitespace_only_pieces", "true"},
        {"unk_id", "0"},
        {"bos_id", "1"},
        {"eos_id", "2"},
        {"pad_id", "-1"},
        {"hard_vocab_limit", "true"},
        {"minloglevel", "2"},
    };
    // Sentence sampling is seeded globally (-1 is reserved for "random device").
    sentencepiece::SetRandomGeneratorSeed(static_cast<unsigned int>(opt.seed == 0xFFFFFFFFu ? 0 : opt.seed));
    LineIterator it(lines);
    std::string model;
    auto st = sentencepiece::SentencePieceTrainer::Train(kw, &it, &model);
    if (!st.ok()) throw std::runtime_error("tokenizer training failed: " + std::string(st.message()));
    return model;
}

}  // namespace bimamba::data
