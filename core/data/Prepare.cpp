#include "core/data/Prepare.h"

#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "core/base/FileUtil.h"
#include "core/data/TokenShards.h"

namespace fs = std::filesystem;

namespace bimamba::data {

using base::write_file_atomic;

namespace {
double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int resolve_threads(int threads) {
    if (threads > 0) return threads;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}
}  // namespace

void encode_in_order(const Tokenizer& tok, const std::vector<Document>& docs, int threads,
                     const std::function<void(size_t doc, std::vector<int>& ids)>& sink, size_t chunk_bytes) {
    // Chunks of documents rather than single ones: the lock is taken rarely even for one-line documents.
    const int nt = resolve_threads(threads);
    if (nt == 1 || docs.size() < 2) {
        for (size_t i = 0; i < docs.size(); ++i) {
            std::vector<int> ids = tok.encode(docs[i].text);
            sink(i, ids);
        }
        return;
    }
    std::vector<size_t> chunk_begin{0};
    size_t bytes = 0;
    for (size_t i = 0; i + 1 < docs.size(); ++i) {
        bytes += docs[i].text.size() + 1;
        if (bytes >= chunk_bytes) {
            chunk_begin.push_back(i + 1);
            bytes = 0;
        }
    }
    chunk_begin.push_back(docs.size());
    const size_t nchunks = chunk_begin.size() - 1;

    // Chunk c is encoded into slots[c % window] by a worker and handed to the
    // sink by this thread in order; a worker takes chunk c only once chunk
    // c - window has been handed over, so at most `window` chunks are held.
    const size_t window = 4 * static_cast<size_t>(nt);
    struct Slot {
        std::vector<std::vector<int>> ids;
        bool ready = false;
    };
    std::vector<Slot> slots(window);
    std::mutex m;
    std::condition_variable work_cv, done_cv;
    size_t next = 0, handed = 0;
    bool stop = false;
    std::exception_ptr error;
    auto fail = [&](std::exception_ptr e) {
        std::lock_guard<std::mutex> lk(m);
        if (!error) error = e;
        stop = true;
        work_cv.notify_all();
        done_cv.notify_all();
    };
    auto worker = [&] {
        for (;;) {
            size_t c;
            {
                std::unique_lock<std::mutex> lk(m);
                work_cv.wait(lk, [&] { return stop || next >= nchunks || next < handed + window; });
                if (stop || next >= nchunks) return;
                c = next++;
            }
            std::vector<std::vector<int>> out;
            try {
                out.reserve(chunk_begin[c + 1] - chunk_begin[c]);
                for (size_t i = chunk_begin[c]; i < chunk_begin[c + 1]; ++i) out.push_back(tok.encode(docs[i].text));
            } catch (...) {
                fail(std::current_exception());
                return;
            }
            {
                std::lock_guard<std::mutex> lk(m);
                slots[c % window].ids = std::move(out);
                slots[c % window].ready = true;
            }
            done_cv.notify_all();
        }
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < nt; ++t) pool.emplace_back(worker);
    try {
        for (size_t c = 0; c < nchunks; ++c) {
            std::vector<std::vector<int>> ids;
            {
                std::unique_lock<std::mutex> lk(m);
                done_cv.wait(lk, [&] { return stop || slots[c % window].ready; });
                if (stop) break;
                ids = std::move(slots[c % window].ids);
                slots[c % window].ready = false;
            }
            for (size_t k = 0; k < ids.size(); ++k) sink(chunk_begin[c] + k, ids[k]);
            {
                std::lock_guard<std::mutex> lk(m);
                handed = c + 1;
            }
            work_cv.notify_all();
        }
    } catch (...) {
        fail(std::current_exception());
    }
    {
        std::lock_guard<std::mutex> lk(m);
        stop = true;
    }
    work_cv.notify_all();
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
}

PrepareSummary prepare_corpus(const PrepareOptions& opt, const std::function<void(const PrepareProgress&)>& progress) {
    if (opt.out_dir.empty()) throw std::invalid_argument("prepare: no output folder given");
    const auto t_start = std::chrono::steady_clock::now();
    auto report = [&](const PrepareProgress& p) {
        if (progress) progress(p);
    };

    PrepareProgress pr;
    pr.stage = "read";
    report(pr);
    std::vector<Document> docs = read_corpus(opt.corpus);
    std::vector<bool> is_val = split_validation(docs, opt.val_fraction, opt.seed);

    std::error_code ec;
    fs::create_directories(opt.out_dir, ec);
    if (ec) throw std::runtime_error("prepare: cannot create '" + opt.out_dir + "': " + ec.message());
    fs::remove(opt.out_dir + "/meta.json", ec);  // the folder is incomplete until meta.json is back

    // Tokenizer: load the given one or train on the training documents only.
    std::shared_ptr<Tokenizer> tok;
    pr.stage = "tokenizer";
    report(pr);
    if (!opt.tokenizer_path.empty()) {
        tok = Tokenizer::load(opt.tokenizer_path);
    } else {
        std::vector<std::string> train_texts;
        for (size_t i = 0; i < docs.size(); ++i)
            if (!is_val[i]) train_texts.push_back(docs[i].text);
        TokenizerTrainOptions to = opt.tokenizer;
        to.seed = opt.seed;
        tok = Tokenizer::from_serialized(train_tokenizer(train_texts, to));
    }
    if (tok->eos_id() < 0)
        throw std::runtime_error("prepare: the tokenizer has no EOS token (needed between documents)");
    tok->save(opt.out_dir + "/tokenizer.model");

    std::string dtype = opt.dtype;
    if (dtype == "auto") dtype = tok->vocab_size() <= 65536 ? "uint16" : "uint32";
    if (dtype != "uint16" && dtype != "uint32")
        throw std::invalid_argument("prepare: dtype must be auto, uint16 or uint32, got '" + opt.dtype + "'");
    if (dtype == "uint16" && tok->vocab_size() > 65536)
        throw std::invalid_argument("prepare: vocabulary of " + std::to_string(tok->vocab_size()) +
                                    " does not fit in uint16");
    const int bpt = dtype == "uint16" ? 2 : 4;

    // Remove shards of an earlier run so meta.json never lists a mix.
    for (auto& e : fs::directory_iterator(opt.out_dir)) {
        const std::string n = e.path().filename().string();
        if ((n.rfind("train_", 0) == 0 || n.rfind("val_", 0) == 0) &&
            (e.path().extension() == ".bin" || e.path().extension() == ".idx" || e.path().extension() == ".tmp"))
            fs::remove(e.path(), ec);
    }

    TokenShardWriter train_w(opt.out_dir, "train", bpt, opt.shard_tokens, tok->eos_id());
    TokenShardWriter val_w(opt.out_dir, "val", bpt, opt.shard_tokens, tok->eos_id());
    pr.stage = "encode";
    pr.docs_total = docs.size();
    for (auto& d : docs) pr.bytes_total += d.text.size();
    const auto t_enc = std::chrono::steady_clock::now();
    double last_report = -1;
    const int threads = resolve_threads(opt.threads);
    encode_in_order(*tok, docs, threads, [&](size_t i, std::vector<int>& ids) {
        (is_val[i] ? val_w : train_w).add_document(ids);
        pr.docs_done = i + 1;
        pr.bytes_done += docs[i].text.size();
        pr.tokens += ids.size() + 1;
        pr.seconds = since(t_enc);
        if (pr.seconds - last_report >= 0.1 || i + 1 == docs.size()) {
            report(pr);
            last_report = pr.seconds;
        }
    });
    const double enc_seconds = since(t_enc);
    auto train_shards = train_w.finish();
    auto val_shards = val_w.finish();

    nlohmann::json src = {
        {"paths", opt.corpus.paths},
        {"format", opt.corpus.format},
        {"unit", to_string(opt.corpus.unit)},
        {"jsonl_field", opt.corpus.jsonl_field},
        {"exclude_suffixes", opt.corpus.exclude_suffixes},
        {"val_fraction", opt.val_fraction},
        {"seed", opt.seed},
        {"tokenizer", opt.tokenizer_path.empty() ? nlohmann::json{{"trained", true},
                                                                  {"model_type", opt.tokenizer.model_type},
                                                                  {"vocab_size", opt.tokenizer.vocab_size}}
                                                 : nlohmann::json{{"trained", false}, {"path", opt.tokenizer_path}}}};
    nlohmann::json meta = {
        {"format", "bimamba-tokens-v1"},
        {"dtype", dtype},
        {"vocab_size", tok->vocab_size()},
        {"tokenizer", "tokenizer.model"},
        {"bos_id", tok->bos_id()},
        {"eos_id", tok->eos_id()},
        {"splits",
         {{"train", {{"shards", train_shards}, {"tokens", train_w.tokens()}, {"documents", train_w.documents()}}},
          {"val", {{"shards", val_shards}, {"tokens", val_w.tokens()}, {"documents", val_w.documents()}}}}},
        {"source", src}};
    write_file_atomic(opt.out_dir + "/meta.json", meta.dump(2) + "\n");

    PrepareSummary s;
    s.documents[0] = train_w.documents();
    s.documents[1] = val_w.documents();
    s.tokens[0] = train_w.tokens();
    s.tokens[1] = val_w.tokens();
    s.vocab_size = tok->vocab_size();
    s.dtype = dtype;
    s.seconds = since(t_start);
    s.tokens_per_s = enc_seconds > 0 ? (s.tokens[0] + s.tokens[1]) / enc_seconds : 0;
    s.threads = threads;
    pr.stage = "done";
    report(pr);
    return s;
}

}  // namespace bimamba::data
