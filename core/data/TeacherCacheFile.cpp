#include "core/data/TeacherCacheFile.h"

#include <climits>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace bimamba::data {

namespace {
[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error("teacher cache '" + path + "': " + what);
}

// A header field that must be an integer in [lo, hi].
int64_t integer_field(const nlohmann::json& h, const char* key, int64_t lo, int64_t hi, const std::string& path) {
    const auto it = h.find(key);
    if (it == h.end()) fail(path, std::string("header has no '") + key + "'");
    if (!it->is_number_integer()) fail(path, std::string("header field '") + key + "' is not an integer");
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX))
        fail(path, std::string("header field '") + key + "' is out of range");
    const int64_t v = it->is_number_unsigned() ? int64_t(it->get<uint64_t>()) : it->get<int64_t>();
    if (v < lo || v > hi)
        fail(path, std::string("header field '") + key + "' is " + std::to_string(v) + ", outside [" +
                       std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v;
}
}  // namespace

TeacherCacheLayout parse_teacher_cache(const uint8_t* bytes, size_t size, const std::string& path) {
    if (size < 16) fail(path, "file too short (" + std::to_string(size) + " bytes) to be a cache");
    if (std::memcmp(bytes, kTeacherCacheMagic, 8) != 0) fail(path, "bad magic (not a bimamba teacher cache)");
    uint64_t hl = 0;
    std::memcpy(&hl, bytes + 8, 8);
    if (hl > size - 16) fail(path, "header length " + std::to_string(hl) + " runs past the end of the file");
    const auto h = nlohmann::json::parse(bytes + 16, bytes + 16 + hl, nullptr, /*allow_exceptions=*/false);
    if (!h.is_object()) fail(path, "bad header: not a JSON object");
    const auto format = h.find("format");
    if (format == h.end() || !format->is_string() || format->get<std::string>() != kTeacherCacheFormat)
        fail(path, "unknown format " + (format == h.end() ? std::string("(none)") : format->dump()));
    TeacherCacheLayout l;
    l.vocab_size = int(integer_field(h, "vocab_size", 1, INT_MAX, path));
    l.k = int(integer_field(h, "k", 1, l.vocab_size, path));
    l.seq_len = int(integer_field(h, "seq_len", 1, INT_MAX, path));
    l.num_windows = integer_field(h, "num_windows", 0, INT64_MAX, path);
    // per = windows × seq_len × k entries; the file holds 6 bytes for each after the header.
    uint64_t per = 0, bytes_needed = 0;
    const uint64_t start = teacher_cache_data_start(size_t(hl));
    if (__builtin_mul_overflow(uint64_t(l.num_windows), uint64_t(l.seq_len), &per) ||
        __builtin_mul_overflow(per, uint64_t(l.k), &per) || __builtin_mul_overflow(per, uint64_t(6), &bytes_needed) ||
        __builtin_add_overflow(bytes_needed, start, &bytes_needed) || bytes_needed != size)
        fail(path, "size " + std::to_string(size) + " bytes does not match the header (" +
                       std::to_string(l.num_windows) + " windows of " + std::to_string(l.seq_len) + " positions, top " +
                       std::to_string(l.k) + "); the file is truncated or corrupt");
    l.values_offset = size_t(start);
    l.ids_offset = size_t(start + per * 2);
    return l;
}

}  // namespace bimamba::data
