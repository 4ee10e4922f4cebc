// libFuzzer target: a safetensors file (header JSON, offsets, dtypes, data
// section) through SafetensorsFile::open, as checkpoints, imported Hugging
// Face models and deployment files are read.
#include <cstdint>
#include <exception>

#include "core/base/Safetensors.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::base;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = fuzz::scratch("input.safetensors");
    fuzz::write_bytes(path, data, size);
    try {
        auto f = base::SafetensorsFile::open(path);
        // What open() promises: every tensor lies inside the file, its byte
        // length is shape × dtype size, and the tensors tile the data section.
        uint64_t covered = 0;
        unsigned sum = 0;
        for (const auto& name : f->names()) {
            const auto& t = f->get(name);
            FUZZ_CHECK(uint64_t(t.numel()) * base::dtype_size(t.dtype) == t.nbytes);
            covered += t.nbytes;
            for (size_t i = 0; i < t.nbytes; ++i)
                sum += t.data[i];  // reads every byte: a range past the mapping faults
        }
        FUZZ_CHECK(covered <= f->file_size());
        (void)sum;
        for (const auto& [k, v] : f->metadata()) (void)v;
        (void)f->contains("x");
    } catch (const std::exception&) {
    }
    return 0;
}
