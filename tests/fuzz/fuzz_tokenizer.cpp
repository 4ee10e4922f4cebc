// libFuzzer target: a tokenizer.model (SentencePiece ModelProto) as
// `bimamba` loads it from a checkpoint folder, a prepared corpus or a
// deployment file (Tokenizer::from_serialized; Tokenizer::load reads the file
// and calls it). A model that loads must encode and decode a fixed text and
// name the piece of every id. SentencePiece itself is not instrumented:
// ASan sees its heap (malloc/free), not its reads inside valid blocks.
#include <cstdint>
#include <exception>
#include <string>

#include "core/data/Tokenizer.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto tok = Tokenizer::from_serialized(std::string(reinterpret_cast<const char*>(data), size));
        const int n = tok->vocab_size();
        FUZZ_CHECK(n > 0);
        const auto ids = tok->encode("Hello, world! 123 \xc3\xa9t\xc3\xa9 \xe2\x96\x81x\n\t ");
        for (int id : ids) FUZZ_CHECK(id >= 0 && id < n);
        (void)tok->decode(ids);
        for (int id = 0; id < n && id < 4096; ++id) (void)tok->piece(id);
        (void)tok->bos_id();
        (void)tok->eos_id();
        (void)tok->unk_id();
        (void)tok->pad_id();
    } catch (const std::exception&) {
    }
    return 0;
}
