#pragma once
// The layout of a teacher logits cache file (the format is described in
// core/train/TeacherCache.h, which reads and writes the logits): the magic,
// the JSON header and the checks that the header's sizes describe the file.
// Torch-free, so that tests/fuzz/fuzz_teacher_cache can feed it any bytes.
#include <cstddef>
#include <cstdint>
#include <string>

namespace bimamba::data {

inline constexpr char kTeacherCacheMagic[8] = {'B', 'M', 'T', 'C', 'A', 'C', 'H', 'E'};
inline constexpr const char* kTeacherCacheFormat = "bimamba-teacher-cache-v1";

// Where the logits start after a header of `header_len` bytes (64-byte aligned).
inline size_t teacher_cache_data_start(size_t header_len) {
    return (16 + header_len + 63) / 64 * 64;
}

struct TeacherCacheLayout {
    int k = 0, seq_len = 0, vocab_size = 0;
    int64_t num_windows = 0;
    size_t values_offset = 0;  // num_windows × seq_len × k float16
    size_t ids_offset = 0;     // num_windows × seq_len × k int32
};

// Checks the `size` bytes of a whole cache file (magic, header fields, that
// their products fit and that the file is exactly as long as they say);
// throws "teacher cache 'PATH': problem".
TeacherCacheLayout parse_teacher_cache(const uint8_t* bytes, size_t size, const std::string& path);

}  // namespace bimamba::data
