// `bimamba logits --model DIR --expected FILE`: parity of our loader and
// forward pass against reference logits (e.g. from Hugging Face transformers,
// tests/reference/hf_*_parity.py). Any teacher type loads (Mamba-2, LLaMA).
#include <cstdio>
#include <iostream>

#include "app/cli/Command.h"
#include "core/model/Checkpoint.h"
#include "core/model/Teacher.h"

using namespace bimamba;
using namespace bimamba::model;
using namespace bimamba::cli;

namespace {

const char* kHelp =
    "usage: bimamba logits --model DIR --expected FILE [--tol X] [--device cpu|cuda]\n"
    "  --model DIR       model folder (Mamba-2 or LLaMA, config.json + safetensors)\n"
    "  --expected FILE   safetensors with `input_ids` (int, [b, l]) and `logits` (float, [b, l, vocab])\n"
    "  --tol X           largest accepted relative error ||ours-ref||inf/||ref||inf (default 1e-4)\n"
    "  --device D        cpu (default) or cuda\n"
    "Prints the relative and absolute errors; exits 1 when the error is above --tol.\n";

int run_logits(const Args& args) {
    Options opt(args, {"help"});
    if (opt.has("help")) {
        std::fputs(kHelp, stdout);
        return 0;
    }
    opt.check_known({"model", "expected", "tol", "device", "help"});
    const std::string model_dir = opt.require("model"), expected = opt.require("expected");
    const double tol = opt.get_double("tol", 1e-4);
    const torch::Device device(opt.get("device", "cpu"));

    auto ref = load_tensors(expected);
    for (const char* k : {"input_ids", "logits"})
        if (!ref.count(k)) throw std::runtime_error("'" + expected + "' has no tensor named '" + k + "'");
    auto ids = ref["input_ids"];
    auto want = ref["logits"].to(torch::kFloat64);
    if (ids.is_floating_point() || ids.dim() != 2)
        throw std::runtime_error("'" + expected + "': input_ids must be an integer tensor [batch, length]");
    ids = ids.to(torch::kInt64);
    if (want.dim() != 3 || want.size(0) != ids.size(0) || want.size(1) != ids.size(1))
        throw std::runtime_error("'" + expected + "': logits must be [batch, length, vocab] matching input_ids");

    auto teacher = Teacher::load(model_dir, device);
    if (teacher->vocab_size() != want.size(2))
        throw std::runtime_error("model '" + model_dir + "' has a vocabulary of " +
                                 std::to_string(teacher->vocab_size()) + " but the expected logits have " +
                                 std::to_string(want.size(2)));
    auto got = teacher->logits(ids).to(torch::kCPU, torch::kFloat64);
    const double ref_max = want.abs().max().item<double>();
    const double abs_err = (got - want).abs().max().item<double>();
    const double rel = abs_err / std::max(ref_max, 1e-300);
    // Agreement of the argmax is what a user of the logits notices first.
    const double argmax_agree = got.argmax(-1).eq(want.argmax(-1)).to(torch::kFloat64).mean().item<double>();
    std::printf("model %s (%s, vocab %lld), %lld x %lld tokens\n", model_dir.c_str(), teacher->kind().c_str(),
                (long long)teacher->vocab_size(), (long long)ids.size(0), (long long)ids.size(1));
    std::printf("max relative error %.3e (max abs error %.3e, max |ref| %.4f), argmax agreement %.2f %%\n", rel,
                abs_err, ref_max, 100.0 * argmax_agree);
    if (!(rel <= tol)) {
        std::printf("FAIL: relative error above %.1e\n", tol);
        return 1;
    }
    std::printf("OK (tolerance %.1e)\n", tol);
    return 0;
}

CommandRegistrar reg{"logits", "compare a model's logits with reference logits (HF parity)", run_logits};

}  // namespace
