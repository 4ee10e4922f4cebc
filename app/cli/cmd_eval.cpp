// `bimamba eval`: perplexity and zero-shot accuracy of one or more models,
// printed as the paper's Table 3 and stored as JSON (+ markdown and CSV).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <filesystem>
#include <map>
#include <memory>

#include "app/cli/Command.h"
#include "core/base/FileUtil.h"
#include "core/data/Tokenizer.h"
#include "core/eval/CliText.h"
#include "core/eval/EngineScorer.h"
#include "core/eval/EvalTable.h"
#include "core/base/ModelSource.h"
#include "core/eval/MultipleChoice.h"
#include "core/eval/Perplexity.h"
#include "core/model/Checkpoint.h"
#include "core/model/Teacher.h"
#include "core/quant/Ptq.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
using namespace bimamba::model;
using namespace bimamba::cli;
using nlohmann::json;

namespace {

const char* kHelp =
    "usage: bimamba eval --model M[,M...] --tasks NAME=PATH[,NAME=PATH...] [options]\n"
    "  --model LIST        checkpoint folders (ours, HF Mamba-2 or HF LLaMA), run directories or deployment\n"
    "                      files (.bmd, run by the CPU engine as `bimamba chat` runs them); LABEL=PATH names a row\n"
    "  --tasks LIST        perplexity: wikitext2|ptb|c4|text=FILE (text or JSONL)\n"
    "                      zero-shot:  boolq|piqa|hellaswag|winogrande|arc_easy|arc_challenge|openbookqa=FILE\n"
    "                      (the release files as they are: JSONL, PIQA/WinoGrande labels .lst beside, OBQA .tsv)\n"
    "                      (several corpora of one protocol: NAME:TAG=FILE, e.g. text:shakespeare=input.txt)\n"
    "  --tokenizer FILE    SentencePiece model (default: found beside the checkpoint or its run's data)\n"
    "  --window N          perplexity window in tokens                 (default 2048)\n"
    "  --stride N          sliding-window stride; 0 = non-overlapping   (default 0)\n"
    "  --max-windows N     cap on windows; c4 defaults to 256           (default 0 = all)\n"
    "  --batch-size N      windows / choices per forward pass           (default 4; 64+ on a GPU)\n"
    "  --limit N           zero-shot: first N documents only            (default all)\n"
    "  --samples FILE      zero-shot: per-document log-likelihoods, predictions and hits (JSONL, one line\n"
    "                      per model, task and document)\n"
    "  --full-sequences    zero-shot: score every choice as one full sequence, also for Mamba-2 (default:\n"
    "                      each context runs once and its choices continue from its recurrent state)\n"
    "  --device D          cpu | cuda | cuda:N (checkpoints; deployment files run on the CPU engine) (default cpu)\n"
    "  --no-bos            do not prepend BOS to the perplexity text and to zero-shot encodings (lm-eval's\n"
    "                      add_bos_token=False; by default BOS is prepended as lm-eval 0.4.13 does with a\n"
    "                      tokenizer that adds it, such as the hub's LLaMA-2)\n"
    "  --threads N         CPU threads (LibTorch and the CPU engine)\n"
    "  --binary-kernel LIST  deployment files: ±1 kernels to evaluate, one row each (i16lut, lut3, xor,\n"
    "                      i8lut; default i16lut, the engine's default)\n"
    "  --state S           deployment files: SSM state precision f16 (default), f32 or bf16\n"
    "  --out FILE          results JSON; FILE.md and FILE.csv beside it (default eval_results.json)\n"
    "  --quiet             no progress bars\n";

struct TaskSpec {
    std::string name, kind, path;  // kind: base protocol name
};

TaskSpec parse_task(const std::string& spec) {
    auto [name, path] = eval::label_and_path(spec);
    if (name.empty() || path.empty()) throw std::invalid_argument("task '" + spec + "': expected NAME=PATH");
    std::string kind = name.substr(0, name.find(':'));
    const auto mc = eval::mc_task_names();
    const bool is_mc = std::find(mc.begin(), mc.end(), kind) != mc.end();
    if (!is_mc) eval::corpus_protocol_from_string(kind);  // validates
    if (!std::filesystem::exists(path)) throw std::invalid_argument("task '" + name + "': no such file '" + path + "'");
    return {name, kind, path};
}

// One JSON line per document: the requests as lm-evaluation-harness builds
// them (its log_samples "arguments"), each choice's summed log-likelihood, the
// predictions and hits.
void write_samples(std::ofstream& f, const std::string& model, const std::string& task, const eval::McTask& t,
                   const eval::McResult& r) {
    for (size_t d = 0; d < t.docs.size(); ++d) {
        const auto& doc = t.docs[d];
        json args = json::array();
        for (const auto& q : doc.requests) args.push_back({q.context, q.continuation});
        json line = {{"model", model},
                     {"task", task},
                     {"doc_id", d},
                     {"target", doc.label},
                     {"arguments", args},
                     {"choices", doc.choices},
                     {"loglikelihoods", r.lls[d]},
                     {"pred", r.pred[d]},
                     {"pred_norm", r.pred_norm[d]},
                     {"acc", r.pred[d] == doc.label ? 1 : 0},
                     {"acc_norm", r.pred_norm[d] == doc.label ? 1 : 0}};
        f << line.dump() << "\n";
    }
    f.flush();
}

// The first `need` tokens of encode(text) (all of them if there are fewer),
// without encoding the whole text: a window cap needs only a prefix, and a
// validation split can be megabytes. Prefixes of growing length are encoded
// until two of them agree on at least `need` leading tokens (cutting the text
// changes only the tokens near the cut), so the result equals the head of
// encode(text).
std::vector<int> encode_prefix(const Tokenizer& tok, const std::string& text, int64_t need) {
    size_t len = std::max<size_t>(4096, size_t(need) * 8);
    std::vector<int> prev = tok.encode(text.substr(0, std::min(len, text.size())));
    while (len < text.size()) {
        len *= 2;
        std::vector<int> cur = tok.encode(text.substr(0, std::min(len, text.size())));
        size_t agree = 0;
        while (agree < prev.size() && agree < cur.size() && prev[agree] == cur[agree]) ++agree;
        if ((int64_t)agree >= need + 1) {
            cur.resize(size_t(need) + 1);
            return cur;
        }
        prev = std::move(cur);
    }
    return prev;  // the whole text
}

// The identity of a tokenizer file: its size and a hash of its bytes (cached per path).
std::string tokenizer_identity(const std::string& path) {
    static std::map<std::string, std::string> ids;
    auto it = ids.find(path);
    if (it != ids.end()) return it->second;
    std::string id = path;  // an unreadable file keys by its path
    try {
        const std::string bytes = read_file(path);
        id = std::to_string(bytes.size()) + ":" + std::to_string(std::hash<std::string>{}(bytes));
    } catch (const std::exception&) {
    }
    return ids.emplace(path, id).first->second;
}

int run_eval(const Args& args) {
    Options o(args, {"no-bos", "quiet", "full-sequences", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"model", "tasks", "tokenizer", "window", "stride", "max-windows", "batch-size", "limit", "no-bos",
                   "threads", "out", "quiet", "binary-kernel", "state", "samples", "device", "full-sequences", "help"});
    const torch::Device device(o.get("device", "cpu"));
    if (device.is_cuda() && !torch::cuda::is_available())
        throw std::invalid_argument("--device " + o.get("device") + ": CUDA is not available");
    std::unique_ptr<std::ofstream> samples;
    if (o.has("samples")) {
        samples = std::make_unique<std::ofstream>(o.get("samples"), std::ios::binary | std::ios::trunc);
        if (!*samples) throw std::runtime_error("--samples: cannot write '" + o.get("samples") + "'");
    }
    if (o.has("threads")) {
        torch::set_num_threads((int)o.get_int("threads", 1));
    }
    const auto engine_kernels = eval::split_list(o.get("binary-kernel", engine::kDefaultBinaryKernel));
    for (const auto& k : engine_kernels) engine::check_binary_kernel(k);
    engine::EngineOptions eng_opt;
    if (o.has("threads")) eng_opt.threads = (int)o.get_int("threads", 1);
    eng_opt.state =
        kernels::state_type_from_string(o.get("state", kernels::state_type_name(engine::EngineOptions{}.state)));
    const bool quiet = o.has("quiet");
    std::vector<TaskSpec> tasks;
    for (auto& s : eval::split_list(o.require("tasks"))) tasks.push_back(parse_task(s));
    const std::string out = o.get("out", "eval_results.json");
    if (std::filesystem::path(out).has_parent_path())
        std::filesystem::create_directories(std::filesystem::path(out).parent_path());
    const int64_t window = o.get_int("window", 2048), stride = o.get_int("stride", 0);
    const int64_t batch = o.get_int("batch-size", 4), limit = o.get_int("limit", 0);
    const bool add_bos = !o.has("no-bos");

    json results = {{"models", json::array()},
                    {"settings",
                     {{"window", window},
                      {"stride", stride},
                      {"batch_size", batch},
                      {"limit", limit},
                      {"add_bos", add_bos},
                      {"max_windows", o.get_int("max-windows", 0)}}}};
    std::map<std::string, std::vector<int>> token_cache;  // tokenizer path + task -> tokens
    std::map<std::string, eval::McTask> mc_cache;
    // One row: evaluate every task with `fn`, append to results.
    auto evaluate = [&](json m, const Tokenizer& tk, const std::string& tok_path, const eval::LogitsFn& fn,
                        const eval::PrefixLLFn& prefix = {}) {
        const Tokenizer* tok = &tk;
        for (auto& t : tasks) {
            const auto mc_names = eval::mc_task_names();
            if (std::find(mc_names.begin(), mc_names.end(), t.kind) != mc_names.end()) {
                auto it = mc_cache.find(t.name);
                if (it == mc_cache.end())
                    it = mc_cache.emplace(t.name, eval::load_mc_task(t.kind, t.path, limit)).first;
                eval::McOptions mo;
                mo.batch_size = batch;
                mo.max_length = window;
                mo.prefix_token =
                    tok->bos_id() >= 0 ? tok->bos_id() : std::max(0, tok->eos_id());  // lm-eval 0.4.13 prefix_token_id
                eval::ProgressBar bar(t.name, !quiet);
                mo.progress = [&](int64_t d, int64_t n) { bar.update(d, n); };
                mo.bos_token = add_bos ? tok->bos_id() : -1;
                auto enc = [&](const std::string& s) { return tok->encode(s); };
                const auto t0 = std::chrono::steady_clock::now();
                auto r = eval::evaluate_mc(eval::McModel(fn, prefix), enc, it->second, mo);
                const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                m["results"][t.name] = {{"kind", "mc"},           {"n", r.n},
                                        {"acc", r.acc},           {"acc_stderr", r.acc_stderr},
                                        {"acc_norm", r.acc_norm}, {"acc_norm_stderr", r.acc_norm_stderr},
                                        {"headline", r.headline}, {"file", t.path},
                                        {"seconds", secs}};
                if (samples) write_samples(*samples, m.value("label", ""), t.name, it->second, r);
            } else {
                const auto proto = eval::corpus_protocol_from_string(t.kind);
                // Keyed by the tokenizer's bytes, not its path: every quantized or
                // trained model carries its own copy of the same tokenizer, and
                // tokenizing a large validation split once per copy dominated the time.
                const std::string key = tokenizer_identity(tok_path) + "|" + t.name + "|" + t.path;
                auto it = token_cache.find(key);
                if (it == token_cache.end()) {
                    std::vector<int> ids;
                    if (add_bos && tok->bos_id() >= 0) ids.push_back(tok->bos_id());
                    const std::string text = eval::load_eval_text(t.path, proto);
                    const int64_t cap = o.get_int("max-windows", proto == eval::CorpusProtocol::C4 ? 256 : 0);
                    auto enc = cap > 0 && stride == 0 ? encode_prefix(*tok, text, cap * window) : tok->encode(text);
                    ids.insert(ids.end(), enc.begin(), enc.end());
                    it = token_cache.emplace(key, std::move(ids)).first;
                }
                eval::PerplexityOptions po;
                po.window = window;
                po.stride = stride;
                po.batch_size = batch;
                po.max_windows = o.get_int("max-windows", proto == eval::CorpusProtocol::C4 ? 256 : 0);
                eval::ProgressBar bar(t.name, !quiet);
                po.progress = [&](int64_t d, int64_t n) { bar.update(d, n); };
                auto r = eval::perplexity(fn, it->second, po);
                m["results"][t.name] = {{"kind", "ppl"},        {"ppl", r.ppl()},
                                        {"nll", r.mean_nll()},  {"predictions", r.predictions},
                                        {"windows", r.windows}, {"window", window},
                                        {"stride", stride},     {"tokens", (int64_t)it->second.size()},
                                        {"file", t.path}};
            }
        }
        results["models"].push_back(m);
    };
    for (auto& mspec : eval::split_list(o.require("model"))) {
        auto [label, mpath] = eval::label_and_path(mspec);
        const ModelSource src = resolve_model(mpath, true);
        if (src.is_deploy_file()) {
            // A deployment file: the CPU engine, once per requested ±1 kernel.
            std::shared_ptr<Tokenizer> own;
            if (o.has("tokenizer")) own = Tokenizer::load(o.get("tokenizer"));
            for (const auto& k : engine_kernels) {
                engine::EngineOptions ko = eng_opt;
                ko.binary_kernel = k;
                std::shared_ptr<engine::Engine> eng = engine::Engine::load(mpath, ko);
                if (!own && !eng->has_tokenizer())
                    throw std::invalid_argument("deployment file '" + mpath +
                                                "' has no tokenizer inside (an export without one); pass --tokenizer");
                const Tokenizer& tk = own ? *own : eng->tokenizer();
                const bool binary = eng->weight_kind() == "binary";
                std::string row = label.empty() ? std::filesystem::path(mpath).stem().string() : label;
                if (binary && engine_kernels.size() > 1) row += " [" + k + "]";
                if (!quiet)
                    std::fprintf(stderr, "== %s (%s, CPU engine%s%s)\n", row.c_str(), mpath.c_str(),
                                 binary ? ", kernel " : "", binary ? k.c_str() : "");
                json m = {{"label", row},
                          {"path", mpath},
                          {"tokenizer", o.has("tokenizer") ? o.get("tokenizer") : "(inside the file)"},
                          {"engine",
                           {{"binary_kernel", binary ? k : "-"},
                            {"state", kernels::state_type_name(eng_opt.state)},
                            {"weights", eng->weight_kind()}}},
                          {"binarize", to_string(eng->config().binarize)},
                          {"results", json::object()}};
                if (tk.vocab_size() > eng->config().vocab_size)
                    throw std::invalid_argument("the tokenizer has " + std::to_string(tk.vocab_size()) +
                                                " pieces, more than the vocabulary of '" + mpath + "'");
                evaluate(m, tk, o.has("tokenizer") ? o.get("tokenizer") : mpath + "#tokenizer",
                         eval::engine_logits_fn(eng));
                if (!binary) break;  // the kernel does not apply to an unbinarized file
            }
            continue;
        }
        const std::string ckpt = src.path;
        if (label.empty()) label = model_label(ckpt);
        const std::string tok_path = o.has("tokenizer") ? o.get("tokenizer") : find_tokenizer(ckpt);
        if (tok_path.empty())
            throw std::invalid_argument("model '" + mpath + "': no tokenizer.model found; pass --tokenizer");
        auto tok = Tokenizer::load(tok_path);
        auto check_vocab = [&](int64_t vocab) {
            if (tok->vocab_size() > vocab)
                throw std::invalid_argument("tokenizer '" + tok_path + "' has " + std::to_string(tok->vocab_size()) +
                                            " pieces, more than the model's vocabulary (" + std::to_string(vocab) +
                                            ")");
        };
        if (!quiet) std::fprintf(stderr, "== %s (%s)\n", label.c_str(), ckpt.c_str());
        if (Teacher::detect_kind(ckpt) == "llama") {  // an HF LLaMA-family folder (e.g. a distillation teacher)
            auto model = std::make_shared<LlamaLM>(LlamaLM::load(ckpt, device));
            check_vocab(model->config().vocab_size);
            json m = {{"label", label},
                      {"path", ckpt},
                      {"tokenizer", tok_path},
                      {"architecture", "llama"},
                      {"results", json::object()}};
            evaluate(m, *tok, tok_path, eval::llama_logits_fn(model));
            continue;
        }
        auto model = load_model(ckpt, device);
        check_vocab(model->config().vocab_size);
        json m = {{"label", label},
                  {"path", ckpt},
                  {"tokenizer", tok_path},
                  {"quantization", quant::read_quantization_metadata(ckpt)},
                  {"binarize", to_string(model->config().binarize)},
                  {"results", json::object()}};
        evaluate(m, *tok, tok_path, eval::logits_fn(model),
                 o.has("full-sequences") ? eval::PrefixLLFn{} : eval::mamba_prefix_ll_fn(model));
    }
    auto table = eval::eval_table(results);
    const std::string md = eval::table_markdown(table);
    std::printf("%s", md.c_str());
    write_file_atomic(out, results.dump(2) + "\n");
    const std::string stem = std::filesystem::path(out).replace_extension("").string();
    write_file_atomic(stem + ".md", md);
    write_file_atomic(stem + ".csv", eval::table_csv(table));
    if (!quiet) std::fprintf(stderr, "wrote %s, %s.md, %s.csv\n", out.c_str(), stem.c_str(), stem.c_str());
    return 0;
}

CommandRegistrar reg{"eval", "perplexity and zero-shot accuracy of models (the paper's Table 3)", run_eval};

}  // namespace
