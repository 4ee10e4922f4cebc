// `bimamba generate`: the same prompt through several models, side by side
// (the layout of the paper's Figures 11–13), with recurrent O(1) decoding.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli/Command.h"
#include "core/base/FileUtil.h"
#include "core/eval/CliText.h"
#include "core/eval/Generate.h"
#include "core/eval/ModelSource.h"
#include "core/model/Checkpoint.h"

using namespace bimamba;
using namespace bimamba::cli;
using nlohmann::json;

namespace {

const char* kHelp =
    "usage: bimamba generate --models A[,B...] --prompt TEXT [options]\n"
    "  --models LIST            checkpoint folders or run directories; LABEL=PATH names a row\n"
    "  --prompt TEXT            prompt (\\n and \\t are unescaped)\n"
    "  --prompt-file FILE       one prompt per line instead (\\n unescaped)\n"
    "  --max-tokens N           new tokens at most                 (default 64)\n"
    "  --temperature X          0 = greedy                          (default 0)\n"
    "  --top-k N                0 = off                             (default 0)\n"
    "  --top-p X                1 = off                             (default 1)\n"
    "  --repetition-penalty X   1 = off                             (default 1)\n"
    "  --stop LIST              comma-separated stop strings (\\, for a comma), e.g. '\\n\\n'\n"
    "  --seed N                 sampling seed                       (default 0)\n"
    "  --tokenizer FILE         (default: found beside each checkpoint)\n"
    "  --no-bos                 do not prepend BOS\n"
    "  --width N                table width                         (default 100)\n"
    "  --out FILE               also store the generations as JSON (for `bimamba report`)\n"
    "  --threads N              CPU threads for LibTorch\n";

int run_generate(const Args& args) {
    Options o(args, {"no-bos", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"models", "model", "prompt", "prompt-file", "max-tokens", "temperature", "top-k", "top-p",
                   "repetition-penalty", "stop", "seed", "tokenizer", "no-bos", "width", "out", "threads", "help"});
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

    json params = {{"max_tokens", sp.max_tokens}, {"temperature", sp.temperature}, {"top_k", sp.top_k},
                   {"top_p", sp.top_p}, {"repetition_penalty", sp.repetition_penalty}, {"seed", sp.seed},
                   {"stop", sp.stop}, {"add_bos", add_bos}};
    json gens = json::array();
    for (auto& p : prompts) gens.push_back({{"prompt", p}, {"outputs", json::array()}});
    for (auto& spec : eval::split_list(model_list)) {
        auto [label, path] = eval::label_and_path(spec);
        const std::string ckpt = eval::resolve_checkpoint(path);
        if (label.empty()) label = eval::model_label(ckpt);
        const std::string tok_path = o.has("tokenizer") ? o.get("tokenizer") : eval::find_tokenizer(ckpt);
        if (tok_path.empty()) throw std::invalid_argument("model '" + path + "': no tokenizer.model found; pass --tokenizer");
        auto tok = Tokenizer::load(tok_path);
        auto model = load_model(ckpt);
        for (size_t i = 0; i < prompts.size(); ++i) {
            auto g = eval::generate(model, *tok, prompts[i], sp, add_bos);
            gens[i]["outputs"].push_back({{"label", label}, {"model", ckpt}, {"text", g.text},
                                          {"new_tokens", (int64_t)g.tokens.size()}, {"prompt_tokens", g.prompt_tokens},
                                          {"seconds", g.seconds}, {"stop_reason", g.stop_reason},
                                          {"tok_per_s", g.seconds > 0 ? g.tokens.size() / g.seconds : 0.0}});
        }
    }
    for (auto& g : gens) {
        std::vector<std::pair<std::string, std::string>> rows;
        for (auto& out : g["outputs"]) rows.push_back({out["label"].get<std::string>(), out["text"].get<std::string>()});
        std::printf("%s\n", eval::side_by_side(g["prompt"].get<std::string>(), rows, (int)o.get_int("width", 100)).c_str());
    }
    if (o.has("out")) {
        write_file_atomic(o.get("out"), json{{"params", params}, {"generations", gens}}.dump(2) + "\n");
        std::fprintf(stderr, "wrote %s\n", o.get("out").c_str());
    }
    return 0;
}

CommandRegistrar reg{"generate", "generate from one prompt with several models, side by side", run_generate};

}  // namespace
