// `bimamba quantize`: post-training quantization baselines of a full-precision
// Mamba-2 (RTN, GPTQ, BiLLM-style, sign), written as a normal checkpoint folder
// with the dequantized weights and the quantization metadata.
#include <cstdio>
#include <filesystem>
#include <random>

#include "app/cli/Command.h"
#include "core/base/FileUtil.h"
#include "core/data/TokenDataset.h"
#include "core/data/Tokenizer.h"
#include "core/eval/CliText.h"
#include "core/base/ModelSource.h"
#include "core/eval/Perplexity.h"
#include "core/model/Checkpoint.h"
#include "core/quant/Ptq.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
using namespace bimamba::model;
using namespace bimamba::cli;

namespace {

const char* kHelp =
    "usage: bimamba quantize --model M --method rtn|gptq|billm|sign --out DIR [options]\n"
    "  --model PATH         full-precision checkpoint folder or run directory\n"
    "  --method M           rtn | gptq (k-bit) | billm | sign (1-bit)\n"
    "  --bits N             rtn / gptq bits                              (default 4)\n"
    "  --group-size N       rtn / gptq: columns per group; 0 = per channel (default 0)\n"
    "  --calib PATH         calibration text / JSONL, or a prepared corpus folder (its train split)\n"
    "                       (gptq, billm; optional for rtn/sign: error statistics)\n"
    "  --calib-tokens N     calibration tokens                            (default 32768)\n"
    "  --seqlen N           calibration segment length                    (default 256)\n"
    "  --act-order          gptq: quantize columns by decreasing Hessian diagonal\n"
    "  --damp X             Hessian damping, fraction of mean diagonal    (default 0.01)\n"
    "  --block-size N       gptq lazy-update block / billm block          (default 128)\n"
    "  --modules LIST       in_proj,out_proj                              (default both)\n"
    "  --tokenizer FILE     (default: found beside the checkpoint); copied into DIR\n"
    "  --seed N             calibration segment sampling seed             (default 0)\n"
    "  --device D           cpu | cuda | cuda:N: where the calibration forward and the\n"
    "                       GPTQ/BiLLM updates run (float64 either way) (default cpu)\n"
    "  --threads N          CPU threads for LibTorch\n";

int run_quantize(const Args& args) {
    Options o(args, {"act-order", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"model", "method", "bits", "group-size", "calib", "calib-tokens", "seqlen", "act-order", "damp",
                   "block-size", "modules", "tokenizer", "seed", "device", "threads", "out", "help"});
    const torch::Device device(o.get("device", "cpu"));
    if (device.is_cuda() && !torch::cuda::is_available())
        throw std::invalid_argument("--device " + o.get("device") + ": CUDA is not available");
    if (o.has("threads")) torch::set_num_threads((int)o.get_int("threads", 1));
    quant::PtqOptions p;
    p.method = quant::ptq_method_from_string(o.require("method"));
    p.bits = (int)o.get_int("bits", 4);
    p.group_size = o.get_int("group-size", 0);
    p.damp = o.get_double("damp", 0.01);
    p.block_size = o.get_int("block-size", 128);
    p.act_order = o.has("act-order");
    if (o.has("modules")) {
        p.in_proj = p.out_proj = false;
        for (auto& m : eval::split_list(o.get("modules"))) {
            if (m == "in_proj")
                p.in_proj = true;
            else if (m == "out_proj")
                p.out_proj = true;
            else
                throw std::invalid_argument("--modules: unknown module '" + m + "' (in_proj, out_proj)");
        }
    }
    const std::string out = o.require("out");
    const std::string ckpt = resolve_checkpoint(o.require("model"));
    auto model = load_model(ckpt, device);

    torch::Tensor calib;
    if (o.has("calib")) {
        const std::string tok_path = o.has("tokenizer") ? o.get("tokenizer") : find_tokenizer(ckpt);
        if (tok_path.empty())
            throw std::invalid_argument("no tokenizer.model found for the calibration text; pass --tokenizer");
        const int64_t seqlen = o.get_int("seqlen", 256);
        const int64_t n = std::max<int64_t>(1, o.get_int("calib-tokens", 32768) / seqlen);
        // The calibration stream: a prepared corpus folder's train split (the
        // teacher's own training data, read from its shards), or a text file.
        std::shared_ptr<TokenDataset> prepared;
        std::vector<int> ids;
        int64_t stream_tokens = 0;
        if (std::filesystem::is_directory(o.get("calib"))) {
            prepared = TokenDataset::open(o.get("calib"), "train");
            stream_tokens = (int64_t)prepared->num_tokens();
        } else {
            auto tok = Tokenizer::load(tok_path);
            ids = tok->encode(eval::load_eval_text(o.get("calib"), eval::CorpusProtocol::Raw));
            stream_tokens = (int64_t)ids.size();
        }
        if (stream_tokens < seqlen + 1)
            throw std::invalid_argument("calibration data '" + o.get("calib") + "' has fewer than " +
                                        std::to_string(seqlen + 1) + " tokens");
        // Random segments, as GPTQ draws its calibration set.
        std::mt19937_64 rng(o.get_int("seed", 0));
        std::uniform_int_distribution<int64_t> start(0, stream_tokens - seqlen - 1);
        calib = torch::empty({n, seqlen}, torch::kInt64);
        auto a = calib.accessor<int64_t, 2>();
        std::vector<int32_t> seg(seqlen);
        for (int64_t i = 0; i < n; ++i) {
            const int64_t s = start(rng);
            if (prepared) {
                prepared->read((uint64_t)s, (size_t)seqlen, seg.data());
                for (int64_t t = 0; t < seqlen; ++t) a[i][t] = seg[t];
            } else {
                for (int64_t t = 0; t < seqlen; ++t) a[i][t] = ids[s + t];
            }
        }
        std::filesystem::create_directories(out);
        write_file_atomic(out + "/tokenizer.model", read_file(tok_path));  // names the file and free space on failure
    } else if (quant::needs_calibration(p.method)) {
        throw std::invalid_argument(quant::to_string(p.method) + " needs calibration text: pass --calib FILE");
    } else {
        const std::string tok_path = o.has("tokenizer") ? o.get("tokenizer") : find_tokenizer(ckpt);
        if (!tok_path.empty()) {
            std::filesystem::create_directories(out);
            write_file_atomic(out + "/tokenizer.model",
                              read_file(tok_path));  // names the file and free space on failure
        }
    }
    std::fprintf(stderr, "quantizing %s with %s%s...\n", ckpt.c_str(), quant::to_string(p.method).c_str(),
                 p.method == quant::PtqMethod::RTN || p.method == quant::PtqMethod::GPTQ
                     ? (" " + std::to_string(p.bits) + "-bit").c_str()
                     : "");
    if (calib.defined()) calib = calib.to(device);
    auto stats =
        quant::quantize_model(model, p, calib, [](const std::string& s) { std::fprintf(stderr, "  %s\n", s.c_str()); });
    auto meta = quant::ptq_metadata(p, calib.defined() ? calib.numel() : 0, ckpt);
    double werr = 0, oerr = 0;
    for (auto& s : stats) werr += s.rel_weight_error, oerr += s.rel_output_error;
    if (!stats.empty()) {
        meta["mean_rel_weight_error"] = werr / stats.size();
        if (calib.defined()) meta["mean_rel_output_error"] = oerr / stats.size();
    }
    model->to(torch::kCPU);
    quant::save_quantized_model(model, out, meta);
    std::printf("wrote %s (%s)\n", out.c_str(), meta.dump().c_str());
    return 0;
}

CommandRegistrar reg{"quantize", "post-training quantization baselines (rtn, gptq, billm, sign)", run_quantize};

}  // namespace
