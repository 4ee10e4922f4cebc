// libFuzzer target: a study TOML file (core/study/Study.h) through
// parse_study: [study], [vars], [scale.S], [[stage]] with train/run/summary,
// ${var} resolution. The first byte picks the scale ("", "small", "cpu") and
// whether a --set override is given; the rest is the file.
#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "core/study/Study.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::base;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    static const char* const scales[] = {"", "small", "cpu", ""};
    const std::string scale = scales[data[0] & 3];
    std::vector<std::pair<std::string, std::string>> sets;
    if (data[0] & 4) sets.emplace_back("steps", "10");
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        const study::Study s = study::parse_study(text, "fuzz.toml", fuzz::scratch("ws"), scale, sets);
        for (const auto& st : s.stages) {
            (void)st.fingerprint();
            FUZZ_CHECK(s.find(st.name) != nullptr);
        }
        (void)s.to_json().dump();
    } catch (const std::exception&) {
    }
    return 0;
}
