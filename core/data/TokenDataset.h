#pragma once
// Token shards on disk, as written by `bimamba prepare`, read with mmap.
//
// A prepared corpus is a folder:
//   meta.json          {"format":"bimamba-tokens-v1","dtype":"uint16"|"uint32","vocab_size":N,
//                       "tokenizer":"tokenizer.model","bos_id":1,"eos_id":2,
//                       "splits":{"train":{"shards":["train_000.bin",...],"tokens":N,"documents":N},
//                                 "val":{...}}, "source": {...}}
//   tokenizer.model    the SentencePiece model used (copied in, so the folder is self-contained)
//   train_000.bin ...  raw little-endian token ids, documents separated by eos_id
//   train_000.idx      uint64 document start offsets (in tokens) within the shard
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bimamba::data {

class TokenDataset {
public:
    // Opens split "train" or "val" of a prepared folder; throws naming the problem
    // (missing meta.json, wrong format, shard size not a multiple of the dtype, ...).
    static std::shared_ptr<TokenDataset> open(const std::string& dir, const std::string& split);
    virtual ~TokenDataset() = default;

    virtual uint64_t num_tokens() const = 0;  // all shards of the split, concatenated
    virtual uint64_t num_documents() const = 0;
    virtual int vocab_size() const = 0;
    virtual int eos_id() const = 0;
    virtual std::string tokenizer_path() const = 0;
    // Copies tokens [offset, offset+n) of the concatenated stream into out (n <= num_tokens()-offset).
    virtual void read(uint64_t offset, size_t n, int32_t* out) const = 0;
};

}  // namespace bimamba::data
