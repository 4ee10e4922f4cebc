// `bimamba chat`: multi-turn chat in the terminal on the native CPU engine
// (a deployment file from `bimamba export`); the conversation is one
// recurrent state, so each turn costs only its own tokens.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

#include "app/cli/Command.h"
#include "app/cli/JsonEvents.h"
#include "core/base/EnergyMeter.h"
#include "core/base/ModelSource.h"
#include "core/base/Process.h"
#include "core/data/Tokenizer.h"
#include "core/engine/Engine.h"
#include "core/eval/CliText.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
using namespace bimamba::cli;

namespace {

const char* kHelp =
    "usage: bimamba chat --model FILE [options]\n"
    "  --model FILE            deployment file (bimamba export; it embeds the tokenizer)\n"
    "  --system TEXT           text put before the first turn\n"
    "  --message TEXT          answer one message and exit (no prompt loop)\n"
    "  --temperature T         0 = greedy (default 0.7)\n"
    "  --top-k K               0 = off (default 40)\n"
    "  --top-p P               1 = off (default 0.95)\n"
    "  --repetition-penalty R  1 = off (default 1.1)\n"
    "  --max-tokens N          per reply (default 128)\n"
    "  --stop LIST             extra stop strings, comma-separated (\\, for a comma, \\n for a newline);\n"
    "                          \"\\nUser:\" always stops with the chat template\n"
    "  --template chat|text    chat (default): \"User: <message>\\nAssistant:\" per turn; text: the message\n"
    "                          as it is, continued by the model (a base model that was never taught the\n"
    "                          User/Assistant format, such as the paper's, often ends a chat reply at once)\n"
    "  --state f16|f32|bf16    SSM state precision (default f16: half the traffic of f32, which is exact;\n"
    "                          an f16 state nearing its range switches to f32 by itself)\n"
    "  --kernel K              ±1 kernel: i16lut (default; input quantized to int16 per 32 columns,\n"
    "                          logits within 1e-3 of the exact product), lut3 (float tables, exact), xor\n"
    "                          (exact) or i8lut (input quantized to int8: coarser, faster where i16lut is\n"
    "                          bound by compute, with AVX-512 VBMI + VNNI;\n"
    "                          elsewhere its reference runs: the same numbers, slowly)\n"
    "  --watts-per-core W      assumption of the energy estimate where RAPL is absent (default 5)\n"
    "  --seed N                sampling seed (default 0)\n"
    "  --threads N             worker threads (default: all cores)\n"
    "  --json                  machine-readable: JSON lines on stdout instead of the text (below)\n"
    "Template: \"User: <message>\\nAssistant:\" per turn. Commands: /reset, /quit.\n"
    "Per reply, stderr gets: [N tokens, X tok/s decode, prompt P tokens at Y tok/s, E J/token (RAPL|estimate), stop: R]\n"
    "(energy of the whole reply, prompt included, per generated token).\n"
    "With --json, stdout carries one JSON object per line and nothing else (no \"User: \" prompt; stdin\n"
    "is read as before); stderr only errors (docs/cli-events.md):\n"
    "  {\"event\":\"ready\",\"model\":F,\"weights\":W,\"d_model\":D,\"n_layer\":L,\"state\":S,\"binary_kernel\":K,\"binary_kernel_path\":P,\"isa\":I,\"threads\":T,\"weights_mb\":W,\"energy_method\":M}\n"
    "  {\"event\":\"token\",\"text\":PIECE}                        per decoded piece of the reply\n"
    "  {\"event\":\"stats\",\"tokens\":N,\"tok_per_s\":X,\"prompt_tokens\":P,\"prompt_tok_per_s\":Y,\"seconds\":S,\n"
    "   \"rss_mb\":R,\"joules_per_token\":J,\"energy_source\":\"RAPL|estimate\",\"cpu_seconds\":C,\"stop\":REASON,\n"
    "   \"state_fallbacks\":F}                                  after each reply\n"
    "  {\"event\":\"reset\"}                                      after /reset\n"
    "  {\"event\":\"done\",\"turns\":N}                            at exit\n";

int run_chat(const Args& args) {
    Options opt(args, {"help", "json"});
    if (opt.has("help")) {
        std::fputs(kHelp, stdout);
        return 0;
    }
    opt.check_known({"model", "system", "message", "temperature", "top-k", "top-p", "repetition-penalty", "max-tokens",
                     "stop", "seed", "threads", "state", "kernel", "watts-per-core", "template", "json", "help"});
    const bool json = opt.has("json");
    SamplingParams p;
    p.temperature = (float)opt.get_double("temperature", 0.7);
    p.top_k = (int)opt.get_int("top-k", 40);
    p.top_p = (float)opt.get_double("top-p", 0.95);
    p.repetition_penalty = (float)opt.get_double("repetition-penalty", 1.1);
    p.max_tokens = (int)opt.get_int("max-tokens", 128);
    p.seed = (uint64_t)opt.get_int("seed", 0);
    const std::string tmpl = opt.get("template", "chat");
    if (tmpl != "chat" && tmpl != "text")
        throw std::invalid_argument("--template must be chat or text, not '" + tmpl + "'");
    const bool chat_template = tmpl == "chat";
    if (chat_template) p.stop = {"\nUser:"};
    for (const auto& s : eval::split_list(opt.get("stop", ""))) p.stop.push_back(eval::unescape(s));
    const double wpc = opt.get_double("watts-per-core", 5.0);
    if (!(wpc > 0)) throw std::invalid_argument("--watts-per-core must be > 0");
    Sampler check(p);  // validates the options before loading

    engine::EngineOptions eo;
    eo.binary_kernel = opt.get("kernel", engine::kDefaultBinaryKernel);
    engine::check_binary_kernel(eo.binary_kernel);
    if (opt.has("threads")) eo.threads = (int)opt.get_int("threads", 1);
    eo.state =
        kernels::state_type_from_string(opt.get("state", kernels::state_type_name(engine::EngineOptions{}.state)));
    const std::string model = opt.require("model");
    const ModelSource src = resolve_model(model, true);
    if (!src.is_deploy_file())
        throw std::invalid_argument("chat runs the CPU engine on a deployment file, and '" + model +
                                    "' is a checkpoint or run directory: make one with `bimamba export --model " +
                                    model + " --out model.bmd`");
    auto eng = engine::Engine::load(src.path, eo);
    CpuEnergyMeter meter(wpc);
    const Tokenizer& tok = eng->tokenizer();
    const std::string system = eval::unescape(opt.get("system"));
    bool first = true;
    int turns = 0;
    auto reply = [&](const std::string& message) {
        std::string text = chat_template ? engine::chat_turn(message, first) : message;
        std::vector<int> ids;
        if (first) {
            if (tok.bos_id() >= 0) ids.push_back(tok.bos_id());
            if (!system.empty()) text = system + "\n" + text;
        }
        auto more = tok.encode(text);
        ids.insert(ids.end(), more.begin(), more.end());
        first = false;
        ++turns;
        if (!json && chat_template) std::fputs("Assistant:", stdout);
        meter.start();
        auto r = eng->continue_with(ids, p, [json](const std::string& piece) {
            if (json) return emit_event("token", {{"text", piece}});
            std::fputs(piece.c_str(), stdout);
            std::fflush(stdout);
        });
        const EnergySample e = meter.elapsed();
        const double jpt = e.joules / std::max<size_t>(1, r.tokens.size());
        if (json) {
            emit_event("stats", {{"tokens", r.tokens.size()},
                                 {"tok_per_s", r.tokens.size() / std::max(r.decode_seconds, 1e-9)},
                                 {"prompt_tokens", r.prompt_tokens},
                                 {"prompt_tok_per_s", r.prompt_tokens / std::max(r.prefill_seconds, 1e-9)},
                                 {"seconds", r.prefill_seconds + r.decode_seconds},
                                 {"rss_mb", rss_mib()},
                                 {"joules_per_token", jpt},
                                 {"energy_source", e.measured ? "RAPL" : "estimate"},
                                 {"cpu_seconds", e.cpu_seconds},
                                 {"stop", r.stop_reason},
                                 {"state_fallbacks", eng->state_fallbacks()}});
            p.seed += 1;
            return;
        }
        std::printf("\n");
        std::fflush(stdout);
        std::fprintf(stderr,
                     "[%zu tokens, %.1f tok/s decode, prompt %d tokens at %.1f tok/s, %.4g J/token (%s), stop: %s]\n",
                     r.tokens.size(), r.tokens.size() / std::max(r.decode_seconds, 1e-9), r.prompt_tokens,
                     r.prompt_tokens / std::max(r.prefill_seconds, 1e-9), jpt, e.measured ? "RAPL" : "estimate",
                     r.stop_reason.c_str());
        p.seed += 1;  // a new draw per turn
    };
    if (json)
        emit_event("ready", {{"model", opt.require("model")},
                             {"weights", eng->weight_kind()},
                             {"d_model", eng->config().d_model},
                             {"n_layer", eng->config().n_layer},
                             {"state", kernels::state_type_name(eng->state_precision())},
                             {"binary_kernel", eng->binary_kernel()},
                             {"binary_kernel_path", eng->binary_kernel_path()},
                             {"isa", eng->isa()},
                             {"threads", eng->threads()},
                             {"template", tmpl},
                             {"weights_mb", double(eng->weight_bytes_per_token()) / (1 << 20)},
                             {"energy_method", meter.describe()}});
    if (opt.has("message")) {
        reply(eval::unescape(opt.get("message")));
        if (json) emit_event("done", {{"turns", turns}});
        return 0;
    }
    if (!json)
        std::fprintf(stderr, "bimamba chat: %s (%s, d_model %d, %d layers, %s state). /reset clears, /quit exits.\n",
                     opt.require("model").c_str(), eng->weight_kind().c_str(), eng->config().d_model,
                     eng->config().n_layer, kernels::state_type_name(eng->state_precision()));
    if (!json) std::fprintf(stderr, "energy: %s\n", meter.describe().c_str());
    std::string line;
    while (true) {
        if (!json) {
            std::fputs("User: ", stdout);
            std::fflush(stdout);
        }
        if (!std::getline(std::cin, line) || line == "/quit") break;
        if (line == "/reset") {
            eng->reset();
            first = true;
            if (json)
                emit_event("reset");
            else
                std::fputs("(conversation cleared)\n", stdout);
            continue;
        }
        if (line.empty()) continue;
        reply(line);
    }
    if (json) emit_event("done", {{"turns", turns}});
    return 0;
}

CommandRegistrar reg{"chat", "multi-turn chat in the terminal on the native CPU engine", run_chat};

}  // namespace
