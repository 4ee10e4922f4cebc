// libFuzzer target: a `.bmd` deployment file as the CPU engine loads it
// (Engine::load: safetensors, metadata format/version/config, every tensor's
// dtype and shape against the config, the embedded tokenizer), then one
// decoding step on what loaded. One thread, scalar kernels, the exact xor
// kernel: the input, not the machine, decides the path.
#include <cstdint>
#include <exception>

#include "core/engine/Engine.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::base;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = fuzz::scratch("input.bmd");
    fuzz::write_bytes(path, data, size);
    engine::EngineOptions opt;
    opt.threads = 1;
    opt.isa = "scalar";
    opt.binary_kernel = "xor";
    opt.prefill_block = 2;
    try {
        auto e = engine::Engine::load(path, opt);
        const auto& logits = e->step(0);
        FUZZ_CHECK(logits.size() == size_t(e->config().vocab_size));
        (void)e->prefill({0, 0, 0});
    } catch (const std::exception&) {
    }
    return 0;
}
