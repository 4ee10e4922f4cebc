// libFuzzer target: a sharded model's model.safetensors.index.json as
// base::parse_safetensors_index reads it (what `tensor_files`,
// `load_tensors_any` and `bimamba inspect` call). Every accepted shard must be
// a plain .safetensors file name in the index's folder.
#include <cstdint>
#include <exception>
#include <string>

#include "core/base/Safetensors.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::base;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        for (const auto& [tensor, file] : parse_safetensors_index(text, "model.safetensors.index.json")) {
            FUZZ_CHECK(file.size() > 12 && file.compare(file.size() - 12, 12, ".safetensors") == 0);
            FUZZ_CHECK(file.find('/') == std::string::npos && file.find('\\') == std::string::npos);
            FUZZ_CHECK(file.find('\0') == std::string::npos);
        }
    } catch (const std::exception&) {
    }
    return 0;
}
