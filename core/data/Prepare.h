#pragma once
// `bimamba prepare`: corpus -> (trained or loaded) SentencePiece tokenizer ->
// train/val token shards in a folder that TokenDataset opens.
#include <cstdint>
#include <functional>
#include <string>

#include "core/data/Corpus.h"
#include "core/data/Tokenizer.h"

namespace bimamba::data {

struct PrepareOptions {
    CorpusOptions corpus;
    std::string out_dir;
    std::string tokenizer_path;       // existing tokenizer.model; empty = train one on the train split
    TokenizerTrainOptions tokenizer;  // used when training
    double val_fraction = 0.05;
    uint64_t seed = 0;
    std::string dtype = "auto";           // "auto" (uint16 when the vocabulary fits), "uint16", "uint32"
    uint64_t shard_tokens = 100'000'000;  // tokens per shard before starting the next
    int threads = 0;                      // encoding threads; 0 = every core. The shards do not depend on it.
};

struct PrepareProgress {
    std::string stage;  // "read", "tokenizer", "encode", "done"
    uint64_t docs_done = 0, docs_total = 0;
    uint64_t bytes_done = 0, bytes_total = 0;
    uint64_t tokens = 0;
    double seconds = 0;  // since the stage began
};

struct PrepareSummary {
    uint64_t documents[2] = {0, 0};  // train, val
    uint64_t tokens[2] = {0, 0};
    int vocab_size = 0;
    std::string dtype;
    double seconds = 0;
    double tokens_per_s = 0;  // of the encoding stage
    int threads = 1;          // encoding threads used
};

// Writes out_dir/{meta.json, tokenizer.model, train_*.bin/.idx, val_*.bin/.idx};
// meta.json is written last, so a folder with meta.json is complete.
PrepareSummary prepare_corpus(const PrepareOptions& opt,
                              const std::function<void(const PrepareProgress&)>& progress = {});

// Encodes every document with `threads` threads (0 = every core) and hands
// the ids to `sink` in document order, on the calling thread: the result is
// the same as encoding one document after the other. A bounded window of
// documents is in flight, so memory does not grow with the corpus. A worker
// takes consecutive documents of about `chunk_bytes` of text at a time.
void encode_in_order(const Tokenizer& tok, const std::vector<Document>& docs, int threads,
                     const std::function<void(size_t doc, std::vector<int>& ids)>& sink,
                     size_t chunk_bytes = 256 * 1024);

}  // namespace bimamba::data
