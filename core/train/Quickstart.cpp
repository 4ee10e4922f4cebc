#include "core/train/Quickstart.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/base/FileUtil.h"
#include "core/data/Prepare.h"
#include "core/base/RunDir.h"
#include "core/train/Trainer.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace bimamba::train {

using base::RunDir;
using base::TrainConfig;
using base::write_file_atomic;
using data::PrepareOptions;
using data::PrepareProgress;
using data::fortunes_corpus;
using data::prepare_corpus;

namespace {

TrainConfig base_config(const QuickstartOptions& o, const std::string& data, int64_t steps) {
    TrainConfig c;
    c.data = data;
    c.model = json{{"preset", o.preset}};
    c.steps = steps;
    c.seq_len = o.seq_len;
    c.batch_size = o.batch_size;
    c.lr = 2e-3;  // a small model and a short run: far above the paper's 2.5e-4
    c.final_lr = 2e-4;
    c.warmup_steps = std::max<int64_t>(1, steps / 10);
    c.eval_every = std::max<int64_t>(1, steps / 5);
    c.eval_batches = 8;
    c.checkpoint_every = std::max<int64_t>(1, steps / 3);
    c.keep_checkpoints = 2;
    c.threads = o.threads;
    c.device = "cpu";
    return c;
}

QuickstartRun run_one(const std::string& name, const TrainConfig& cfg, const std::string& run_dir,
                      const QuickstartOptions& o) {
    QuickstartRun r;
    r.name = name;
    r.run_dir = run_dir;
    r.loss = cfg.loss;
    r.steps = cfg.steps;
    const auto t0 = std::chrono::steady_clock::now();
    TrainOptions topt;
    topt.echo = o.echo;
    QuickstartProgress pr;
    pr.stage = fs::path(run_dir).filename().string();
    pr.total = cfg.steps;
    if (o.progress) {
        topt.on_metrics = [&](const json& row) {
            if (row.value("type", "") == "val") {
                pr.val_ppl = row.value("val_ppl", pr.val_ppl);
            } else {
                pr.done = row.value("step", pr.done);
                pr.tokens = row.value("tokens", pr.tokens);
                pr.loss = row.value("loss", pr.loss);
            }
            o.progress(pr);
        };
        o.progress(pr);
    }
    bimamba::base::remove_tree(run_dir);  // a quickstart re-run starts its runs afresh
    TrainResult res = train(cfg, run_dir, topt);
    if (o.progress) {
        pr.finished = true;
        o.progress(pr);
    }
    if (res.state != "finished")
        throw std::runtime_error("quickstart: run '" + name + "' " + res.state + ": " + res.message);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.val_loss = res.val_loss;
    r.val_ppl = res.val_ppl;
    return r;
}

}  // namespace

std::vector<QuickstartRun> run_quickstart(const QuickstartOptions& o) {
    const std::string ws = o.workspace;
    fs::create_directories(ws);
    const std::string data = ws + "/data/fortunes";
    const auto t0 = std::chrono::steady_clock::now();

    // 1. Corpus -> tokenizer -> shards (reused when already prepared).
    if (!fs::exists(data + "/meta.json")) {
        if (o.echo) std::fprintf(stderr, "== preparing the default corpus (%s) ==\n", o.corpus_dir.c_str());
        PrepareOptions p;
        p.corpus = fortunes_corpus(o.corpus_dir);
        p.out_dir = data;
        p.tokenizer.vocab_size = o.vocab_size;
        p.val_fraction = 0.05;
        QuickstartProgress pr;
        pr.stage = "corpus";
        auto s = prepare_corpus(p, [&](const PrepareProgress& pp) {
            if (!o.progress || pp.stage != "encode") return;
            pr.done = static_cast<int64_t>(pp.docs_done);
            pr.total = static_cast<int64_t>(pp.docs_total);
            pr.tokens = static_cast<int64_t>(pp.tokens);
            o.progress(pr);
        });
        if (o.progress) {
            pr.finished = true;
            o.progress(pr);
        }
        if (o.echo)
            std::fprintf(stderr, "prepared: vocab %d, train %llu tokens, val %llu tokens (%.1f s)\n", s.vocab_size,
                         (unsigned long long)s.tokens[0], (unsigned long long)s.tokens[1], s.seconds);
    }

    std::vector<QuickstartRun> runs;
    // 2. Full-precision teacher.
    if (o.echo) std::fprintf(stderr, "== training the full-precision Mamba-2 teacher ==\n");
    TrainConfig tc = base_config(o, data, o.teacher_steps);
    tc.loss = "ce";
    runs.push_back(run_one("teacher (fp32)", tc, ws + "/runs/teacher", o));
    runs.back().binarize = "none";
    const std::string teacher_ckpt = RunDir(ws + "/runs/teacher").latest_checkpoint();

    // 3. Bi-Mamba students, initialised from the teacher's weights (xnor init of α, β).
    for (auto [name, loss, dir] :
         {std::tuple<const char*, const char*, const char*>{"bi-mamba (AR-KD)", "soft_ce", "student_kd"},
          {"bi-mamba (CE only)", "ce", "student_ce"}}) {
        if (o.echo) std::fprintf(stderr, "== training %s ==\n", name);
        TrainConfig sc = base_config(o, data, o.student_steps);
        sc.model = json{{"preset", o.preset}, {"binarize", "in_proj+out_proj"}};
        sc.loss = loss;
        sc.init_from = teacher_ckpt;
        if (std::string(loss) != "ce") sc.teacher = teacher_ckpt;
        runs.push_back(run_one(name, sc, ws + "/runs/" + dir, o));
        runs.back().binarize = "in_proj+out_proj";
    }

    json jr = json::array();
    for (auto& r : runs)
        jr.push_back({{"name", r.name},
                      {"run_dir", fs::absolute(r.run_dir).string()},
                      {"binarize", r.binarize},
                      {"loss", r.loss},
                      {"steps", r.steps},
                      {"val_loss", r.val_loss},
                      {"val_ppl", r.val_ppl},
                      {"seconds", r.seconds}});
    json report = {
        {"format", "bimamba-quickstart-v1"},
        {"created", RunDir::iso8601_now()},
        {"corpus", {{"source", o.corpus_dir}, {"prepared", fs::absolute(data).string()}, {"vocab_size", o.vocab_size}}},
        {"preset", o.preset},
        {"seq_len", o.seq_len},
        {"batch_size", o.batch_size},
        {"students_init", "teacher weights (xnor init of binarized layers)"},
        {"runs", jr},
        {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
    write_file_atomic(ws + "/report.json", report.dump(2) + "\n");
    return runs;
}

}  // namespace bimamba::train
