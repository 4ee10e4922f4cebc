#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/base/FileUtil.h"
#include "core/data/TokenDataset.h"
#include "core/data/TokenShards.h"

namespace fs = std::filesystem;

namespace bimamba::data {

using base::fsync_dir;
using base::read_file;
using base::write_file_atomic;

// ---- writer -------------------------------------------------------------------

TokenShardWriter::TokenShardWriter(std::string dir, std::string split, int bytes_per_token, uint64_t shard_tokens,
                                   int eos_id)
    : dir_(std::move(dir)), split_(std::move(split)), bpt_(bytes_per_token), shard_tokens_(shard_tokens), eos_(eos_id) {
    if (bpt_ != 2 && bpt_ != 4) throw std::invalid_argument("token shards: bytes per token must be 2 or 4");
    if (shard_tokens_ == 0) throw std::invalid_argument("token shards: shard size must be positive");
}

TokenShardWriter::~TokenShardWriter() {
    if (bin_) std::fclose(bin_);
}

void TokenShardWriter::open_shard() {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%03zu.bin", split_.c_str(), names_.size());
    names_.push_back(name);
    std::string tmp = dir_ + "/" + name + ".tmp";
    tmp_paths_.push_back(tmp);
    bin_ = std::fopen(tmp.c_str(), "wb");
    if (!bin_) throw std::runtime_error("token shards: cannot create '" + tmp + "': " + std::strerror(errno));
    starts_.clear();
    shard_len_ = 0;
}

void TokenShardWriter::add_document(const std::vector<int>& ids) {
    if (!bin_) open_shard();
    const uint64_t limit = bpt_ == 2 ? 0xFFFFull : 0xFFFFFFFFull;
    buf_.resize((ids.size() + 1) * bpt_);
    char* p = buf_.data();
    auto put = [&](int id) {
        if (id < 0 || static_cast<uint64_t>(id) > limit)
            throw std::runtime_error("token shards: token id " + std::to_string(id) + " does not fit in " +
                                     (bpt_ == 2 ? "uint16" : "uint32"));
        if (bpt_ == 2) {
            uint16_t v = static_cast<uint16_t>(id);  // little-endian hosts only (x86-64, aarch64)
            std::memcpy(p, &v, 2);
        } else {
            uint32_t v = static_cast<uint32_t>(id);
            std::memcpy(p, &v, 4);
        }
        p += bpt_;
    };
    for (int id : ids) put(id);
    put(eos_);
    if (std::fwrite(buf_.data(), 1, buf_.size(), bin_) != buf_.size())
        throw std::runtime_error("token shards: write failed in '" + dir_ + "': " + std::strerror(errno));
    starts_.push_back(shard_len_);
    shard_len_ += ids.size() + 1;
    total_tokens_ += ids.size() + 1;
    total_docs_ += 1;
    if (shard_len_ >= shard_tokens_) close_shard();
}

void TokenShardWriter::close_shard() {
    if (!bin_) return;
    if (std::fflush(bin_) != 0 || fsync(fileno(bin_)) != 0)
        throw std::runtime_error("token shards: cannot flush '" + tmp_paths_.back() + "'");
    std::fclose(bin_);
    bin_ = nullptr;
    std::string idx(reinterpret_cast<const char*>(starts_.data()), starts_.size() * sizeof(uint64_t));
    std::string idx_name = names_.back().substr(0, names_.back().size() - 4) + ".idx";
    write_file_atomic(dir_ + "/" + idx_name, idx);
}

std::vector<std::string> TokenShardWriter::finish() {
    close_shard();
    for (size_t i = 0; i < names_.size(); ++i) {
        std::string dst = dir_ + "/" + names_[i];
        if (std::rename(tmp_paths_[i].c_str(), dst.c_str()) != 0)
            throw std::runtime_error("token shards: cannot rename to '" + dst + "': " + std::strerror(errno));
    }
    fsync_dir(dir_);
    return names_;
}

// ---- reader -------------------------------------------------------------------

namespace {

struct Shard {
    void* map = nullptr;
    size_t bytes = 0;
    uint64_t tokens = 0;
};

class MmapTokenDataset : public TokenDataset {
public:
    ~MmapTokenDataset() override {
        for (auto& s : shards_)
            if (s.map) munmap(s.map, s.bytes);
    }
    uint64_t num_tokens() const override { return starts_.empty() ? 0 : starts_.back(); }
    uint64_t num_documents() const override { return docs_; }
    int vocab_size() const override { return vocab_; }
    int eos_id() const override { return eos_; }
    std::string tokenizer_path() const override { return tokenizer_; }

    void read(uint64_t offset, size_t n, int32_t* out) const override {
        if (offset > num_tokens() || n > num_tokens() - offset)
            throw std::out_of_range("token dataset: read of " + std::to_string(n) + " tokens at " +
                                    std::to_string(offset) + " past the end (" + std::to_string(num_tokens()) +
                                    " tokens)");
        // starts_[i] = first global token of shard i; starts_.back() = total.
        size_t s = std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin() - 1;
        while (n > 0) {
            const Shard& sh = shards_[s];
            uint64_t local = offset - starts_[s];
            size_t take = static_cast<size_t>(std::min<uint64_t>(n, sh.tokens - local));
            if (bpt_ == 2) {
                auto* p = static_cast<const uint16_t*>(sh.map) + local;
                for (size_t i = 0; i < take; ++i) out[i] = p[i];
            } else {
                auto* p = static_cast<const uint32_t*>(sh.map) + local;
                for (size_t i = 0; i < take; ++i) out[i] = static_cast<int32_t>(p[i]);
            }
            out += take;
            offset += take;
            n -= take;
            ++s;
        }
    }

    std::vector<Shard> shards_;
    std::vector<uint64_t> starts_;
    uint64_t docs_ = 0;
    int vocab_ = 0, eos_ = 0, bpt_ = 2;
    std::string tokenizer_;
};

}  // namespace

std::shared_ptr<TokenDataset> TokenDataset::open(const std::string& dir, const std::string& split) {
    const std::string meta_path = dir + "/meta.json";
    if (!fs::exists(meta_path))
        throw std::runtime_error("token dataset: '" + dir +
                                 "' is not a prepared corpus (no meta.json; run `bimamba prepare`)");
    nlohmann::json meta;
    try {
        meta = nlohmann::json::parse(read_file(meta_path));
    } catch (const std::exception& e) {
        throw std::runtime_error("token dataset: cannot parse '" + meta_path + "': " + e.what());
    }
    auto bad = [&](const std::string& what) { return std::runtime_error("token dataset '" + dir + "': " + what); };
    if (meta.value("format", "") != "bimamba-tokens-v1") throw bad("meta.json format is not bimamba-tokens-v1");
    auto ds = std::make_shared<MmapTokenDataset>();
    const std::string dtype = meta.value("dtype", "");
    if (dtype == "uint16")
        ds->bpt_ = 2;
    else if (dtype == "uint32")
        ds->bpt_ = 4;
    else
        throw bad("meta.json dtype must be uint16 or uint32, got '" + dtype + "'");
    // Integers read as ints only when they are integers in range (a float
    // such as 6.6e70 converted to int is undefined behaviour).
    auto int_in = [&](const char* key, long long lo, long long hi, bool required, int def) {
        if (!meta.contains(key)) {
            if (required) throw bad(std::string("meta.json lacks ") + key);
            return def;
        }
        const auto& v = meta[key];
        if (!v.is_number_integer() ||
            (v.is_number_unsigned() && v.get<unsigned long long>() > (unsigned long long)hi) ||
            v.get<long long>() < lo || v.get<long long>() > hi)
            throw bad(std::string("meta.json ") + key + " must be an integer from " + std::to_string(lo) + " to " +
                      std::to_string(hi) + ", got " + v.dump());
        return int(v.get<long long>());
    };
    ds->vocab_ = int_in("vocab_size", 1, std::numeric_limits<int>::max(), true, 0);
    ds->eos_ = int_in("eos_id", 0, ds->vocab_ - 1, false, 2);
    ds->tokenizer_ = dir + "/" + meta.value("tokenizer", "tokenizer.model");
    if (!meta.contains("splits") || !meta["splits"].contains(split)) throw bad("no split '" + split + "' in meta.json");
    const auto& sp = meta["splits"][split];
    if (!sp.is_object()) throw bad("meta.json split '" + split + "' is not an object");
    // A count of the split, read only when it is a non-negative integer (a
    // float such as 6.6e70 converted to an integer is undefined behaviour:
    // found by tests/fuzz/fuzz_token_shards on a fresh Debian 12).
    auto count_in = [&](const char* key, uint64_t def) {
        if (!sp.contains(key)) return def;
        const auto& v = sp[key];
        if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<long long>() < 0))
            throw bad("meta.json split '" + split + "' " + key + " must be a non-negative integer, got " + v.dump());
        return v.is_number_unsigned() ? v.get<uint64_t>() : uint64_t(v.get<long long>());
    };
    ds->docs_ = count_in("documents", 0);
    ds->starts_.push_back(0);
    for (const auto& name_j : sp.at("shards")) {
        // A shard is a regular file in the corpus folder (prepare writes
        // "train_000.bin", ...): a name leading elsewhere, or a FIFO or device
        // (whose open or read could block for ever), is refused.
        const std::string name = name_j.get<std::string>();
        if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
            name.find('\0') != std::string::npos)
            throw bad("meta.json names shard " + name_j.dump() + ", not a file in the corpus folder");
        const std::string path = dir + "/" + name;
        int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
        if (fd < 0) throw bad("cannot open shard '" + path + "': " + std::strerror(errno));
        struct stat st {};
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            throw bad("shard '" + path + "' is not a regular file");
        }
        Shard sh;
        sh.bytes = static_cast<size_t>(st.st_size);
        if (sh.bytes % ds->bpt_ != 0) {
            ::close(fd);
            throw bad("shard '" + path + "' size " + std::to_string(sh.bytes) + " is not a multiple of " +
                      std::to_string(ds->bpt_) + " bytes (" + dtype + ")");
        }
        sh.tokens = sh.bytes / ds->bpt_;
        if (sh.bytes > 0) {
            sh.map = mmap(nullptr, sh.bytes, PROT_READ, MAP_SHARED, fd, 0);
            if (sh.map == MAP_FAILED) {
                ::close(fd);
                throw bad("cannot mmap shard '" + path + "'");
            }
        }
        ::close(fd);
        if (sh.tokens == 0) continue;
        ds->shards_.push_back(sh);
        ds->starts_.push_back(ds->starts_.back() + sh.tokens);
    }
    const uint64_t expect = count_in("tokens", ds->num_tokens());
    if (expect != ds->num_tokens())
        throw bad("split '" + split + "' shards hold " + std::to_string(ds->num_tokens()) +
                  " tokens but meta.json says " + std::to_string(expect));
    return ds;
}

}  // namespace bimamba::data
