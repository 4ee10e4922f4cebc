// `bimamba generate`: the same prompt through several models, side by side
// (the layout of the paper's Figures 11–13), with recurrent O(1) decoding.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli/Command.h"
#include "app/cli/JsonEvents.h"
#include "core/base/EnergyMeter.h"
#include "core/base/FileUtil.h"
#include "core/base/ModelSource.h"
#include "core/base/Process.h"
#include "core/engine/Engine.h"
#include "core/eval/CliText.h"
#include "core/eval/Generate.h"
#include "core/model/Checkpoint.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
using namespace bimamba::model;
using namespace bimamba::cli;
using nlohmann::json;

namespace {

const char* kHelp =
    "usage: bimamba generate --models A[,B...] --prompt TEXT [options]\n"
    "  --models LIST            checkpoint folders, run directories (their latest checkpoint) or\n"
    "                           deployment files (.bmd: the CPU engine, with the tokenizer inside);\n"
    "                           LABEL=PATH names a row\n"
    "  --prompt TEXT            prompt (\\n and \\t are unescaped)\n"
    "  --prompt-file FILE       one prompt per line instead (\\n unescaped)\n"
    "  --max-tokens N           new tokens at most                 (default 64)\n"
    "  --temperature X          0 = greedy                          (default 0)\n"
    "  --top-k N                0 = off                             (default 0)\n"
    "  --top-p X                1 = off                             (default 1)\n"
    "  --repetition-penalty X   1 = off                             (default 1)\n"
    "  --stop LIST              comma-separated stop strings (\\, for a comma), e.g. '\\n\\n'\n"
    "  --seed N                 sampling seed                       (default 0)\n"
    "  --tokenizer FILE         for checkpoints (default: found beside each checkpoint or in its run's data)\n"
    "  --no-bos                 do not prepend BOS\n"
    "  --width N                table width                         (default 100)\n"
    "  --out FILE               also store the generations as JSON (for `bimamba report`)\n"
    "  --threads N              CPU threads for LibTorch\n"
    "  --device cpu|cuda[:N]    where the model runs                (default cpu)\n"
    "  --stream                 write each piece of text to stdout as soon as it is decoded (flushed),\n"
    "                           instead of the table; with several models or prompts each generation\n"
    "                           starts with a line '==> LABEL <==' (or '==> LABEL #P <==')\n"
    "  --json                   machine-readable (implies --stream): JSON lines on stdout, nothing else\n"
    "                           (docs/cli-events.md); the stats lines below are then left out of stderr:\n"
    "    {\"event\":\"start\",\"label\":L,\"model\":M,\"prompt_index\":I}   per generation\n"
    "    {\"event\":\"token\",\"label\":L,\"text\":PIECE}              per decoded piece\n"
    "    {\"event\":\"stats\",\"label\":L,\"model\":M,\"prompt_index\":I,\"tokens\":N,\"tok_per_s\":X,\n"
    "     \"prompt_tokens\":P,\"seconds\":S,\"rss_mb\":R,\"joules\":E,\"joules_per_token\":J,\n"
    "     \"energy_source\":\"NVML|RAPL|estimate\",\"energy_description\":D,\"stop\":REASON}\n"
    "    {\"event\":\"done\",\"generations\":N}                     at the end\n"
    "\n"
    "After each generation one stats line goes to stderr:\n"
    "  [N tokens, X tok/s, prompt P tokens, E J/token (SOURCE), stop: REASON] LABEL\n"
    "SOURCE is NVML (GPU board energy), RAPL (CPU package energy) or estimate (this process's\n"
    "CPU-seconds x 5 W per busy core, where no energy counter is readable).\n";

// Energy of one generation: NVML on CUDA, RAPL (or a labelled estimate) on CPU.
struct Energy {
    std::unique_ptr<CpuEnergyMeter> cpu;
    std::unique_ptr<GpuEnergyMeter> gpu;
    explicit Energy(const torch::Device& dev) {
        if (dev.is_cuda()) {
            gpu = std::make_unique<GpuEnergyMeter>(dev.has_index() ? (unsigned)dev.index() : 0u);
            if (!gpu->available()) gpu.reset();
        }
        if (!gpu) cpu = std::make_unique<CpuEnergyMeter>();
    }
    void start() {
        if (gpu)
            gpu->start();
        else
            cpu->start();
    }
    // joules, short label ("NVML" | "RAPL" | "estimate"), long description
    std::tuple<double, std::string, std::string> stop() const {
        if (gpu) {
            auto s = gpu->elapsed();
            return {s.joules, "NVML", s.source};
        }
        auto s = cpu->elapsed();
        return {s.joules, s.measured ? "RAPL" : "estimate", s.source};
    }
};

int run_generate(const Args& args) {
    Options o(args, {"no-bos", "stream", "json", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"models",      "model",      "prompt",
                   "prompt-file", "max-tokens", "temperature",
                   "top-k",       "top-p",      "repetition-penalty",
                   "stop",        "seed",       "tokenizer",
                   "no-bos",      "width",      "out",
                   "threads",     "device",     "stream",
                   "json",        "help"});
    if (o.has("threads")) torch::set_num_threads((int)o.get_int("threads", 1));
    std::vector<std::string> prompts;
    if (o.has("prompt-file")) {
        std::ifstream f(o.get("prompt-file"));
        if (!f) throw std::invalid_argument("cannot open prompt file '" + o.get("prompt-file") + "'");
        for (std::string line; std::getline(f, line);)
            if (!line.empty()) prompts.push_back(eval::unescape(line));
    } else {
        prompts.push_back(eval::unescape(o.require("prompt")));
    }
    SamplingParams sp;
    sp.max_tokens = (int)o.get_int("max-tokens", 64);
    sp.temperature = (float)o.get_double("temperature", 0);
    sp.top_k = (int)o.get_int("top-k", 0);
    sp.top_p = (float)o.get_double("top-p", 1);
    sp.repetition_penalty = (float)o.get_double("repetition-penalty", 1);
    sp.seed = (uint64_t)o.get_int("seed", 0);
    for (auto& s : eval::split_list(o.get("stop", ""))) sp.stop.push_back(eval::unescape(s));
    const bool add_bos = !o.has("no-bos");
    const std::string model_list = o.has("models") ? o.get("models") : o.require("model");
    const bool json_events = o.has("json");
    const bool stream = o.has("stream") || json_events;
    const torch::Device device(o.get("device", "cpu"));
    if (device.is_cuda() && !torch::cuda::is_available())
        throw std::invalid_argument("--device " + o.get("device") + ": CUDA is not available");
    const auto specs = eval::split_list(model_list);
    const bool framed = stream && specs.size() * prompts.size() > 1;
    Energy energy(device);

    json params = {{"max_tokens", sp.max_tokens},
                   {"temperature", sp.temperature},
                   {"top_k", sp.top_k},
                   {"top_p", sp.top_p},
                   {"repetition_penalty", sp.repetition_penalty},
                   {"seed", sp.seed},
                   {"stop", sp.stop},
                   {"add_bos", add_bos}};
    json gens = json::array();
    for (auto& p : prompts) gens.push_back({{"prompt", p}, {"outputs", json::array()}});
    int generations = 0;
    for (auto& spec : specs) {
        auto [label, path] = eval::label_and_path(spec);
        const ModelSource src = resolve_model(path, true);
        const std::string ckpt = src.path;
        std::shared_ptr<Tokenizer> tok;
        Mamba2LM model{nullptr};
        std::unique_ptr<engine::Engine> eng;
        if (src.is_deploy_file()) {
            if (device.is_cuda())
                throw std::invalid_argument("model '" + path +
                                            "' is a deployment file: it runs on the CPU engine, not --device " +
                                            o.get("device"));
            eng = engine::Engine::load(src.path);
            eng->tokenizer();  // throws naming the problem for a file without one
            if (label.empty()) label = std::filesystem::path(src.path).stem().string();
        } else {
            if (label.empty()) label = model_label(ckpt);
            const std::string tok_path = o.has("tokenizer") ? o.get("tokenizer") : find_tokenizer(ckpt);
            if (tok_path.empty())
                throw std::invalid_argument("model '" + path + "': no tokenizer.model found; pass --tokenizer");
            tok = Tokenizer::load(tok_path);
            model = load_model(ckpt, device);
        }
        for (size_t i = 0; i < prompts.size(); ++i) {
            eval::TextStreamer streamer(sp.stop);
            auto emit = [json_events, &label](const std::string& piece) {
                if (piece.empty()) return;
                if (json_events) return emit_event("token", {{"label", label}, {"text", piece}});
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
            };
            if (json_events) {
                emit_event("start", {{"label", label}, {"model", ckpt}, {"prompt_index", i}});
            } else if (framed) {
                std::printf("==> %s%s <==\n", label.c_str(),
                            prompts.size() > 1 ? (" #" + std::to_string(i + 1)).c_str() : "");
                std::fflush(stdout);
            }
            std::function<void(const std::string&)> on_text;
            if (device.is_cuda()) torch::cuda::synchronize();
            energy.start();
            eval::GenerationOutput g;
            if (eng) {
                // The engine streams pieces that are already safe to print.
                if (stream) on_text = emit;
                auto r = eng->generate(prompts[i], sp, add_bos, on_text);
                g.text = r.text;
                g.tokens = r.tokens;
                g.prompt_tokens = r.prompt_tokens;
                g.seconds = r.prefill_seconds + r.decode_seconds;
                g.stop_reason = r.stop_reason;
            } else {
                if (stream) on_text = [&](const std::string& t) { emit(streamer.update(t)); };
                g = eval::generate(model, *tok, prompts[i], sp, add_bos, on_text);
                if (stream) emit(streamer.finish(g.text));
            }
            if (device.is_cuda()) torch::cuda::synchronize();
            const auto [joules, esrc, edesc] = energy.stop();
            if (stream && !json_events && (framed || isatty(fileno(stdout)))) emit("\n");
            const int64_t n = (int64_t)g.tokens.size();
            const double jpt = joules / double(std::max<int64_t>(1, n));
            const double tps = g.seconds > 0 ? n / g.seconds : 0.0;
            ++generations;
            if (json_events) {
                emit_event("stats", {{"label", label},
                                     {"model", ckpt},
                                     {"prompt_index", i},
                                     {"tokens", n},
                                     {"tok_per_s", tps},
                                     {"prompt_tokens", g.prompt_tokens},
                                     {"seconds", g.seconds},
                                     {"rss_mb", rss_mib()},
                                     {"joules", joules},
                                     {"joules_per_token", jpt},
                                     {"energy_source", esrc},
                                     {"energy_description", edesc},
                                     {"stop", g.stop_reason}});
            } else {
                std::fprintf(stderr, "[%lld tokens, %.1f tok/s, prompt %lld tokens, %.4g J/token (%s), stop: %s] %s\n",
                             (long long)n, tps, (long long)g.prompt_tokens, jpt, esrc.c_str(), g.stop_reason.c_str(),
                             label.c_str());
                std::fflush(stderr);
            }
            gens[i]["outputs"].push_back({{"label", label},
                                          {"model", ckpt},
                                          {"text", g.text},
                                          {"new_tokens", n},
                                          {"prompt_tokens", g.prompt_tokens},
                                          {"seconds", g.seconds},
                                          {"stop_reason", g.stop_reason},
                                          {"tok_per_s", tps},
                                          {"joules", joules},
                                          {"joules_per_token", jpt},
                                          {"energy_source", edesc},
                                          {"energy_measured", esrc != "estimate"}});
        }
    }
    for (auto& g : gens) {
        if (stream) break;  // the text went out as it was decoded
        std::vector<std::pair<std::string, std::string>> rows;
        for (auto& out : g["outputs"])
            rows.push_back({out["label"].get<std::string>(), out["text"].get<std::string>()});
        std::printf("%s\n",
                    eval::side_by_side(g["prompt"].get<std::string>(), rows, (int)o.get_int("width", 100)).c_str());
    }
    if (o.has("out")) {
        write_file_atomic(o.get("out"), json{{"params", params}, {"generations", gens}}.dump(2) + "\n");
        std::fprintf(stderr, "wrote %s\n", o.get("out").c_str());
    }
    if (json_events) emit_event("done", {{"generations", generations}});
    return 0;
}

CommandRegistrar reg{"generate", "generate from one prompt with several models, side by side", run_generate};

}  // namespace
