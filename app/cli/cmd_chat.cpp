// `bimamba chat`: multi-turn chat in the terminal on the native CPU engine
// (a deployment file from `bimamba export`); the conversation is one
// recurrent state, so each turn costs only its own tokens.
#include <cstdio>
#include <iostream>
#include <string>

#include "app/cli/Command.h"
#include "core/data/Tokenizer.h"
#include "core/engine/Engine.h"
#include "core/eval/CliText.h"
#include "kernels/cpu/ThreadPool.h"

using namespace bimamba;
using namespace bimamba::cli;

namespace {

const char* kHelp =
    "usage: bimamba chat --model FILE [options]\n"
    "  --model FILE            deployment file (bimamba export) with an embedded tokenizer\n"
    "  --system TEXT           text put before the first turn\n"
    "  --message TEXT          answer one message and exit (no prompt loop)\n"
    "  --temperature T         0 = greedy (default 0.7)\n"
    "  --top-k K               0 = off (default 40)\n"
    "  --top-p P               1 = off (default 0.95)\n"
    "  --repetition-penalty R  1 = off (default 1.1)\n"
    "  --max-tokens N          per reply (default 128)\n"
    "  --stop S                extra stop string (\\n escapes allowed); \"\\nUser:\" always stops\n"
    "  --seed N                sampling seed (default 0)\n"
    "  --threads N             worker threads (default: all cores)\n"
    "Template: \"User: <message>\\nAssistant:\" per turn. Commands: /reset, /quit.\n";


int run_chat(const Args& args) {
    Options opt(args, {"help"});
    if (opt.has("help")) {
        std::fputs(kHelp, stdout);
        return 0;
    }
    opt.check_known({"model", "system", "message", "temperature", "top-k", "top-p", "repetition-penalty",
                     "max-tokens", "stop", "seed", "threads", "help"});
    if (opt.has("threads")) kernels::ThreadPool::set_global_threads((int)opt.get_int("threads", 1));
    SamplingParams p;
    p.temperature = (float)opt.get_double("temperature", 0.7);
    p.top_k = (int)opt.get_int("top-k", 40);
    p.top_p = (float)opt.get_double("top-p", 0.95);
    p.repetition_penalty = (float)opt.get_double("repetition-penalty", 1.1);
    p.max_tokens = (int)opt.get_int("max-tokens", 128);
    p.seed = (uint64_t)opt.get_int("seed", 0);
    p.stop = {"\nUser:"};
    if (opt.has("stop")) p.stop.push_back(eval::unescape(opt.get("stop")));
    Sampler check(p);  // validates the options before loading

    auto eng = engine::Engine::load(opt.require("model"));
    const Tokenizer& tok = eng->tokenizer();
    const std::string system = eval::unescape(opt.get("system"));
    bool first = true;
    auto reply = [&](const std::string& message) {
        std::string text = engine::chat_turn(message, first);
        std::vector<int> ids;
        if (first) {
            if (tok.bos_id() >= 0) ids.push_back(tok.bos_id());
            if (!system.empty()) text = system + "\n" + text;
        }
        auto more = tok.encode(text);
        ids.insert(ids.end(), more.begin(), more.end());
        first = false;
        std::fputs("Assistant:", stdout);
        auto r = eng->continue_with(ids, p, [](const std::string& piece) {
            std::fputs(piece.c_str(), stdout);
            std::fflush(stdout);
        });
        std::printf("\n");
        std::fprintf(stderr, "[%zu tokens, %.1f tok/s decode, prompt %d tokens at %.1f tok/s, stop: %s]\n",
                     r.tokens.size(), r.tokens.size() / std::max(r.decode_seconds, 1e-9), r.prompt_tokens,
                     r.prompt_tokens / std::max(r.prefill_seconds, 1e-9), r.stop_reason.c_str());
        p.seed += 1;  // a new draw per turn
    };
    if (opt.has("message")) {
        reply(eval::unescape(opt.get("message")));
        return 0;
    }
    std::fprintf(stderr, "bimamba chat: %s (%s, d_model %d, %d layers). /reset clears, /quit exits.\n",
                 opt.require("model").c_str(), eng->weight_kind().c_str(), eng->config().d_model, eng->config().n_layer);
    std::string line;
    while (true) {
        std::fputs("User: ", stdout);
        std::fflush(stdout);
        if (!std::getline(std::cin, line) || line == "/quit") break;
        if (line == "/reset") {
            eng->reset();
            first = true;
            std::fputs("(conversation cleared)\n", stdout);
            continue;
        }
        if (line.empty()) continue;
        reply(line);
    }
    return 0;
}

CommandRegistrar reg{"chat", "multi-turn chat in the terminal on the native CPU engine", run_chat};

}  // namespace
