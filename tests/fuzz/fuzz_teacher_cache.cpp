// libFuzzer target: a teacher logits cache file as the trainer opens it
// (core/data/TeacherCacheFile.h: magic, JSON header, sizes; the torch-free
// part of core/train/TeacherCache). When the layout is accepted, every
// window's logits and token ids are read where the trainer reads them, so
// a layout that points outside the file is an ASan report.
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "core/data/TeacherCacheFile.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // An exact-size copy, so that a read past the end is one past the heap block.
    std::vector<uint8_t> file(data, data + size);
    try {
        const TeacherCacheLayout l = parse_teacher_cache(file.data(), file.size(), "fuzz.cache");
        FUZZ_CHECK(l.k >= 1 && l.k <= l.vocab_size && l.seq_len >= 1 && l.num_windows >= 0);
        const size_t per_window = size_t(l.seq_len) * size_t(l.k);
        FUZZ_CHECK(l.ids_offset + size_t(l.num_windows) * per_window * 4 == size);
        uint64_t sum = 0;
        for (int64_t w = 0; w < l.num_windows; ++w) {
            const size_t off = size_t(w) * per_window;
            uint16_t v;
            int32_t id;
            std::memcpy(&v, file.data() + l.values_offset + (off + per_window - 1) * 2, 2);
            std::memcpy(&id, file.data() + l.ids_offset + (off + per_window - 1) * 4, 4);
            sum += v + uint32_t(id);
        }
        (void)sum;
    } catch (const std::exception&) {
    }
    return 0;
}
