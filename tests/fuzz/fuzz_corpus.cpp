// libFuzzer target: the corpus readers of `bimamba prepare`
// (data::read_corpus through DecompressingReader, then split_validation).
// Byte 0 chooses the file name (its suffix: plain text, JSONL, or a
// compression the bytes must then have: .gz, .xz, .zst), the format option
// and the document unit; the rest is the file. zlib, liblzma and libzstd are
// not instrumented; our reader is.
#include <cstdint>
#include <exception>
#include <string>

#include "core/data/Corpus.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    static const char* kNames[8] = {"c.txt",     "c.jsonl",    "c.txt.gz",    "c.txt.xz",
                                    "c.txt.zst", "c.jsonl.gz", "c.jsonl.zst", "c.jsonl.xz"};
    static const char* kFormats[4] = {"auto", "text", "jsonl", "auto"};
    static const DocUnit kUnits[4] = {DocUnit::File, DocUnit::Line, DocUnit::Paragraph, DocUnit::Percent};
    const uint8_t sel = data[0];
    static const std::string dir = [] {
        std::string d = fuzz::scratch("textcorpus");
        std::filesystem::create_directories(d);
        return d;
    }();
    const std::string path = dir + "/" + kNames[sel & 7];
    fuzz::write_bytes(path, data + 1, size - 1);
    CorpusOptions opt;
    opt.paths = {path};
    opt.format = kFormats[(sel >> 3) & 3];
    opt.unit = kUnits[(sel >> 5) & 3];
    opt.jsonl_field = (sel & 0x80) ? "content" : "text";
    // Inside libFuzzer's memory limit: a decompression bomb must be refused by
    // the reader's budget (as prepare's half of the memory), not run out of it.
    opt.max_bytes = 16u << 20;
    try {
        const auto docs = read_corpus(opt);
        FUZZ_CHECK(!docs.empty());
        for (const auto& d : docs) {
            FUZZ_CHECK(d.text.find_first_not_of(" \t\r\n\f\v") != std::string::npos);
            FUZZ_CHECK(d.source.compare(0, path.size(), path) == 0);
        }
        const auto val = split_validation(docs, 0.25, 7);
        FUZZ_CHECK(val.size() == docs.size());
        if (docs.size() >= 2) {
            size_t n_val = 0;
            for (bool v : val) n_val += v;
            FUZZ_CHECK(n_val >= 1 && n_val < docs.size());
        }
    } catch (const std::exception&) {
    }
    std::filesystem::remove(path);
    return 0;
}
