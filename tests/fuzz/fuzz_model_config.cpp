// libFuzzer target: a model config.json (mamba_ssm keys or Hugging Face
// transformers Mamba2 keys) as Mamba2Config::load reads it: JSON parse, then
// Mamba2Config::from_json, lenient and strict.
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>

#include "core/base/Mamba2Config.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::base;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(data, data + size);
    } catch (const std::exception&) {
        return 0;
    }
    for (bool strict : {false, true}) {
        try {
            const Mamba2Config c = Mamba2Config::from_json(j, strict);
            // A config that validates has sizes that fit their types, and
            // writing it back gives the same config.
            (void)c.num_parameters();
            (void)c.padded_vocab();
            const Mamba2Config back = Mamba2Config::from_json(c.to_json(), /*strict=*/true);
            FUZZ_CHECK(back.to_json() == c.to_json());
        } catch (const std::exception&) {
        }
    }
    return 0;
}
