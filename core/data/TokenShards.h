#pragma once
// Writer for the token shards of a prepared corpus (layout in TokenDataset.h).
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace bimamba::data {

// Appends documents to `<dir>/<split>_NNN.bin` (+ `.idx`), starting a new
// shard once one holds `shard_tokens` tokens (documents are never cut).
// Each document is written followed by eos_id. Files are written to
// temporary names and renamed by finish().
class TokenShardWriter {
public:
    TokenShardWriter(std::string dir, std::string split, int bytes_per_token, uint64_t shard_tokens, int eos_id);
    ~TokenShardWriter();
    TokenShardWriter(const TokenShardWriter&) = delete;
    TokenShardWriter& operator=(const TokenShardWriter&) = delete;

    void add_document(const std::vector<int>& ids);
    // Closes, fsyncs and renames the shards; returns their file names (relative to dir).
    std::vector<std::string> finish();

    uint64_t tokens() const { return total_tokens_; }
    uint64_t documents() const { return total_docs_; }

private:
    void open_shard();
    void close_shard();

    std::string dir_, split_;
    int bpt_;
    uint64_t shard_tokens_;
    int eos_;
    std::FILE* bin_ = nullptr;
    std::vector<uint64_t> starts_;  // document starts of the open shard
    uint64_t shard_len_ = 0;
    uint64_t total_tokens_ = 0, total_docs_ = 0;
    std::vector<std::string> names_;
    std::vector<std::string> tmp_paths_;
    std::vector<char> buf_;
};

}  // namespace bimamba::data
