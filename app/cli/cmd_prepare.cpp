// `bimamba prepare`: corpus -> tokenizer -> train/val token shards.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "app/cli/Command.h"
#include "core/eval/CliText.h"
#include "core/data/Prepare.h"

using namespace bimamba;
using namespace bimamba::data;
using namespace bimamba::cli;

namespace {

const char* kHelp =
    "usage: bimamba prepare [PATH...] --out DIR [options]\n"
    "  PATH...              text/JSONL files or folders, plain or compressed (.xz, .gz, .zst;\n"
    "                       see docs/corpus-format.md)\n"
    "  --fortunes           use the Debian 'fortunes' package (/usr/share/games/fortunes) as the corpus\n"
    "  --out DIR            output folder (meta.json, tokenizer.model, *.bin/*.idx)\n"
    "  --format F           auto | text | jsonl                 (default auto: .jsonl/.json are JSONL)\n"
    "  --unit U             file | line | paragraph | percent   (text files; default file)\n"
    "  --field NAME         JSONL field holding the text        (default text)\n"
    "  --exclude SUFFIXES   comma-separated file suffixes skipped in folders\n"
    "  --tokenizer FILE     use this SentencePiece model (e.g. the LLaMA-2 tokenizer.model)\n"
    "  --vocab-size N       train a tokenizer of N pieces        (default 4096)\n"
    "  --model-type T       bpe | unigram                        (default bpe)\n"
    "  --val-fraction X     share of documents for validation   (default 0.05)\n"
    "  --seed N             split/tokenizer seed                 (default 0)\n"
    "  --dtype D            auto | uint16 | uint32               (default auto)\n"
    "  --shard-tokens N     tokens per shard                     (default 100000000)\n"
    "  --threads N          encoding threads (0 = every core)    (default 0; same shards for any N)\n"
    "  --quiet              no progress bar\n";

void draw_progress(const PrepareProgress& p) {
    if (p.stage == "read") {
        std::fprintf(stderr, "reading corpus...\n");
    } else if (p.stage == "tokenizer") {
        std::fprintf(stderr, "tokenizer...\n");
    } else if (p.stage == "encode") {
        const double frac = p.bytes_total ? double(p.bytes_done) / p.bytes_total : 1.0;
        const int width = 30, fill = static_cast<int>(frac * width);
        std::string bar(fill, '#');
        bar += std::string(width - fill, '.');
        const double tps = p.seconds > 0 ? p.tokens / p.seconds : 0;
        std::fprintf(stderr, "\rencode [%s] %5.1f%%  %llu/%llu docs  %llu tokens  %.0f tok/s", bar.c_str(), 100 * frac,
                     (unsigned long long)p.docs_done, (unsigned long long)p.docs_total, (unsigned long long)p.tokens,
                     tps);
        if (p.docs_done == p.docs_total) std::fprintf(stderr, "\n");
    }
}

int run_prepare(const Args& args) {
    Options o(args, {"fortunes", "quiet", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"fortunes", "out", "format", "unit", "field", "exclude", "tokenizer", "vocab-size", "model-type",
                   "val-fraction", "seed", "dtype", "shard-tokens", "threads", "quiet", "help"});
    PrepareOptions p;
    if (o.has("fortunes")) {
        p.corpus = fortunes_corpus();
        p.corpus.paths.insert(p.corpus.paths.end(), o.positional().begin(), o.positional().end());
    } else {
        p.corpus.paths = o.positional();
        if (p.corpus.paths.empty())
            throw std::invalid_argument("no corpus given (PATH... or --fortunes)\n" + std::string(kHelp));
    }
    if (o.has("format")) p.corpus.format = o.get("format");
    if (o.has("unit")) p.corpus.unit = doc_unit_from_string(o.get("unit"));
    if (o.has("field")) p.corpus.jsonl_field = o.get("field");
    if (o.has("exclude")) p.corpus.exclude_suffixes = eval::split_list(o.get("exclude"));
    p.out_dir = o.require("out");
    p.tokenizer_path = o.get("tokenizer");
    p.tokenizer.vocab_size = static_cast<int>(o.get_int("vocab-size", 4096));
    p.tokenizer.model_type = o.get("model-type", "bpe");
    p.val_fraction = o.get_double("val-fraction", 0.05);
    p.seed = static_cast<uint64_t>(o.get_int("seed", 0));
    p.dtype = o.get("dtype", "auto");
    long long shard = o.get_int("shard-tokens", 100000000);
    if (shard <= 0) throw std::invalid_argument("--shard-tokens must be positive");
    p.shard_tokens = static_cast<uint64_t>(shard);
    const long long threads = o.get_int("threads", 0);
    if (threads < 0) throw std::invalid_argument("--threads must be 0 (every core) or positive");
    p.threads = static_cast<int>(threads);

    const bool quiet = o.has("quiet");
    auto s = prepare_corpus(p, quiet ? std::function<void(const PrepareProgress&)>{} : draw_progress);
    std::printf(
        "prepared %s: vocab %d (%s), train %llu docs / %llu tokens, val %llu docs / %llu tokens, "
        "%.1f s, encoding %.0f tok/s on %d thread%s\n",
        p.out_dir.c_str(), s.vocab_size, s.dtype.c_str(), (unsigned long long)s.documents[0],
        (unsigned long long)s.tokens[0], (unsigned long long)s.documents[1], (unsigned long long)s.tokens[1], s.seconds,
        s.tokens_per_s, s.threads, s.threads == 1 ? "" : "s");
    return 0;
}

CommandRegistrar reg{"prepare", "tokenize a corpus into train/val token shards", run_prepare};

}  // namespace
