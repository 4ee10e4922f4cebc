#pragma once
// SentencePiece tokenizer: load a tokenizer.model (the LLaMA-2 one of the
// paper, or one trained here by `bimamba prepare`), encode/decode, and train
// a new model on a corpus.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace bimamba::data {

class Tokenizer {
public:
    // Loads a SentencePiece model file; throws naming the path and the problem.
    static std::shared_ptr<Tokenizer> load(const std::string& path);
    // Loads from the bytes of a model file (e.g. embedded in a deployment file).
    static std::shared_ptr<Tokenizer> from_serialized(const std::string& bytes);
    ~Tokenizer();

    // Encodes without BOS/EOS (callers add bos_id() themselves when wanted).
    std::vector<int> encode(const std::string& text) const;
    std::string decode(const std::vector<int>& ids) const;
    // The piece of one id (with SentencePiece's U+2581 word marker); throws if out of range.
    std::string piece(int id) const;
    int vocab_size() const;
    int bos_id() const;  // -1 when the model has none
    int eos_id() const;  // -1 when the model has none
    int unk_id() const;
    int pad_id() const;  // -1 when the model has none
    // The model file's bytes (what from_serialized takes).
    const std::string& serialized() const { return serialized_; }
    // Writes the model file (atomically).
    void save(const std::string& path) const;

private:
    Tokenizer();
    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
    std::string serialized_;
};

struct TokenizerTrainOptions {
    std::string model_type = "bpe";  // "bpe" or "unigram"
    int vocab_size = 4096;
    double character_coverage = 0.9995;
    // Sentences fed to the trainer at most (the corpus is sampled evenly beyond that).
    int64_t max_sentences = 200000;
    int64_t max_sentence_length = 4192;  // bytes; longer lines are cut
    uint64_t seed = 0;
    int num_threads = 2;
    bool byte_fallback = true;  // unknown characters become bytes instead of <unk>
};

// Trains a SentencePiece model on `documents` (ids: unk 0, bos 1, eos 2, as
// LLaMA's) and returns the model file's bytes. Throws naming the problem
// (e.g. a vocabulary too large for the corpus).
std::string train_tokenizer(const std::vector<std::string>& documents, const TokenizerTrainOptions& opt);

}  // namespace bimamba::data
