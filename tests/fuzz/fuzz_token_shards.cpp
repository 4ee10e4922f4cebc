// libFuzzer target: a prepared corpus as TokenDataset::open reads it:
// meta.json (format, dtype, vocabulary, splits and their shards) and one
// shard. The input is meta.json, a NUL byte, then the bytes of the shard
// "train_000.bin"; every token of the split is then read back.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <vector>

#include "core/data/TokenDataset.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string dir = [] {
        std::string d = fuzz::scratch("corpus");
        std::filesystem::create_directories(d);
        return d;
    }();
    const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
    const size_t meta_len = nul ? size_t(nul - data) : size;
    fuzz::write_bytes(dir + "/meta.json", data, meta_len);
    const size_t shard_off = nul ? meta_len + 1 : size;
    fuzz::write_bytes(dir + "/train_000.bin", data + shard_off, size - shard_off);
    try {
        auto ds = TokenDataset::open(dir, "train");
        std::vector<int32_t> buf(64);
        const uint64_t n = ds->num_tokens();
        for (uint64_t off = 0; off < n; off += buf.size()) {
            const size_t take = size_t(std::min<uint64_t>(buf.size(), n - off));
            ds->read(off, take, buf.data());
        }
        (void)ds->vocab_size();
        (void)ds->eos_id();
    } catch (const std::exception&) {
    }
    return 0;
}
