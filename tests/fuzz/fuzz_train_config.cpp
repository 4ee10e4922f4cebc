// libFuzzer target: a `bimamba train` config, JSON or TOML (the first byte
// selects: even = JSON, odd = TOML; the rest is the text), through
// TrainConfig::from_json / parse_toml and the workbench's problems() check,
// then the model it names (model_config, resolve_model).
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>

#include "core/base/TomlJson.h"
#include "core/base/TrainConfig.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::base;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const bool toml = data[0] & 1;
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    nlohmann::json j;
    try {
        j = toml ? parse_toml_as_json(text, "fuzz.toml") : nlohmann::json::parse(text);
    } catch (const std::exception&) {
        return 0;
    }
    try {
        (void)TrainConfig::problems(j, /*check_paths=*/false);
    } catch (const std::exception&) {
        FUZZ_CHECK(false && "problems() reports problems, it does not throw");
    }
    try {
        const TrainConfig c = toml ? TrainConfig::parse_toml(text, "fuzz.toml") : TrainConfig::from_json(j);
        (void)c.tokens_per_optimizer_step();
        (void)c.to_json().dump();
        try {
            (void)c.model_config();
            (void)c.resolve_model(512);
        } catch (const std::exception&) {
        }
    } catch (const std::exception&) {
    }
    return 0;
}
