// `bimamba export`: checkpoint folder -> deployment file of the CPU engine
// (docs/deploy-format.md), with the size against fp16 (paper Table 7).
#include <cstdio>

#include "app/cli/Command.h"
#include "core/base/ModelSource.h"
#include "core/engine/DeployFile.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::cli;

namespace {

const char* kHelp =
    "usage: bimamba export --model DIR --out FILE [--tokenizer FILE] [--dtype f16|f32] [--head auto|f16|f32|q8]\n"
    "  --model DIR       checkpoint folder (config.json + model.safetensors) or run directory\n"
    "                    (its latest checkpoint)\n"
    "  --out FILE        deployment file to write (safetensors; .bmd by convention)\n"
    "  --tokenizer FILE  SentencePiece model to embed (default: found as `eval` finds it: tokenizer.model\n"
    "                    beside the checkpoint, else the run's prepared data, else a folder above;\n"
    "                    export fails when there is none, so the file can always chat)\n"
    "  --dtype D         storage of the embedding/head and unbinarized projections: f16 (default) or f32\n"
    "  --head H          storage of the tied embedding/head: q8 (int8 rows with a float scale per row:\n"
    "                    half the bytes of f16; deployment format version 2, docs/deploy-format.md), f16\n"
    "                    or f32; auto (default): q8 for a binarized model at --dtype f16 (faster decode,\n"
    "                    no perplexity cost measured), else as --dtype (the fp16 baseline stays fp16)\n"
    "Binarized projections (config `binarize`) are packed at 1 bit per weight with alpha, beta per\n"
    "input column; an unbinarized checkpoint exports as the fp16 (or fp32) baseline.\n";

double gb(uint64_t b) {
    return b / 1e9;
}

int run_export(const Args& args) {
    Options opt(args, {"help"});
    if (opt.has("help")) {
        std::fputs(kHelp, stdout);
        return 0;
    }
    opt.check_known({"model", "out", "tokenizer", "dtype", "head", "help"});
    engine::ExportOptions eo;
    eo.storage = engine::float_storage_from_string(opt.get("dtype", "f16"));
    eo.head = engine::head_storage_from_string(opt.get("head", ""));
    eo.tokenizer_path = opt.get("tokenizer");
    const std::string model = opt.require("model");
    const std::string checkpoint = resolve_checkpoint(model);
    auto r = engine::export_checkpoint(checkpoint, opt.require("out"), eo);
    const auto& c = r.config;
    std::printf("exported %s -> %s\n", checkpoint.c_str(), r.output.c_str());
    std::printf("  model: d_model %d, %d layers, vocab %d, binarize %s, %.1f M parameters\n", c.d_model, c.n_layer,
                c.vocab_size, to_string(c.binarize).c_str(), c.num_parameters() / 1e6);
    std::printf("  weights packed at 1 bit: %.1f M (%.1f %% of parameters)\n", r.packed_bits / 1e6,
                100.0 * r.packed_bits / c.num_parameters());
    std::printf("  tokenizer: %s\n", r.tokenizer_source.c_str());
    std::printf("  embedding/head: %s\n", r.head.c_str());
    std::printf("  size: %.4f GB, fp16 model %.4f GB: %.2fx smaller (%.1f %% saved)\n", gb(r.file_bytes),
                gb(r.fp16_bytes), (double)r.fp16_bytes / r.file_bytes,
                100.0 * (1.0 - (double)r.file_bytes / r.fp16_bytes));
    std::printf("  (paper Table 7: Bi-Mamba 2.7B 5.03 GB -> 0.55 GB, 89 %% smaller)\n");
    return 0;
}

CommandRegistrar reg{"export", "checkpoint -> bit-packed deployment file for the CPU engine", run_export};

}  // namespace
