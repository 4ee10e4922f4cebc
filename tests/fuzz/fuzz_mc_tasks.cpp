// libFuzzer target: the multiple-choice task readers of `bimamba eval`
// (core/eval/McTasks.cpp, load_mc_task). Byte 0 picks the task (of the seven)
// and, for OpenBookQA, its release TSV instead of JSONL; then the task file,
// and after a NUL byte the <name>-labels.lst side file (PIQA, WinoGrande).
// Every document that is accepted has a label in range and one request per choice.
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>

#include "core/eval/McTask.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static const auto names = eval::mc_task_names();
    const std::string name = names[data[0] % names.size()];
    const bool tsv = name == "openbookqa" && (data[0] & 0x80);
    const std::string path = fuzz::scratch(std::string("task") + (tsv ? ".tsv" : ".jsonl"));
    const std::string labels = fuzz::scratch("task-labels.lst");
    ++data;
    --size;
    const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
    const size_t file_len = nul ? size_t(nul - data) : size;
    fuzz::write_bytes(path, data, file_len);
    if (nul)
        fuzz::write_bytes(labels, nul + 1, size - file_len - 1);
    else
        std::filesystem::remove(labels);
    try {
        const eval::McTask t = eval::load_mc_task(name, path, 0);
        FUZZ_CHECK(!t.docs.empty());
        for (const auto& d : t.docs) {
            FUZZ_CHECK(d.label >= 0 && size_t(d.label) < d.requests.size());
            FUZZ_CHECK(d.requests.size() == d.choices.size());
            for (const auto& c : d.choices) (void)eval::utf8_length(c);
        }
    } catch (const std::exception&) {
    }
    return 0;
}
