// `bimamba quickstart [--workspace DIR]`: corpus -> teacher -> Bi-Mamba students, in minutes on a CPU.
#include <cmath>
#include <cstdio>
#include <memory>

#include "app/cli/Command.h"
#include "app/cli/StageProgress.h"
#include "core/train/Quickstart.h"

using namespace bimamba;
using namespace bimamba::train;
using namespace bimamba::cli;

namespace {

const char* kHelp =
    "usage: bimamba quickstart [--workspace DIR] [options]\n"
    "  --workspace DIR       where data, runs and report.json go (default ./quickstart)\n"
    "  --corpus DIR          fortune-format corpus folder (default /usr/share/games/fortunes, Debian 'fortunes')\n"
    "  --vocab-size N        SentencePiece vocabulary trained on the corpus (default 2048)\n"
    "  --preset NAME         model preset (default small)\n"
    "  --teacher-steps N     (default 300)\n"
    "  --student-steps N     (default 150)\n"
    "  --seq-len N           (default 128)\n"
    "  --batch-size N        (default 8)\n"
    "  --threads N           LibTorch CPU threads (default: LibTorch's choice)\n"
    "  --log-steps           print every training step on stderr instead of one progress bar per stage\n"
    "  --quiet               no progress output, only the final table\n"
    "Every run's per-step log is in <workspace>/runs/<run>/train.log (metrics in metrics.jsonl).\n";

int run_quickstart_cmd(const Args& args) {
    Options o(args, {"quiet", "log-steps", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"workspace", "corpus", "vocab-size", "preset", "teacher-steps", "student-steps", "seq-len",
                   "batch-size", "threads", "quiet", "log-steps", "help"});
    QuickstartOptions q;
    q.workspace = o.get("workspace", q.workspace);
    q.corpus_dir = o.get("corpus", q.corpus_dir);
    q.vocab_size = static_cast<int>(o.get_int("vocab-size", q.vocab_size));
    q.preset = o.get("preset", q.preset);
    q.teacher_steps = o.get_int("teacher-steps", q.teacher_steps);
    q.student_steps = o.get_int("student-steps", q.student_steps);
    q.seq_len = o.get_int("seq-len", q.seq_len);
    q.batch_size = o.get_int("batch-size", q.batch_size);
    q.threads = o.get_int("threads", 0);
    const bool quiet = o.has("quiet");
    q.echo = !quiet && o.has("log-steps");
    std::unique_ptr<StageProgress> bar;  // the current stage's
    if (!quiet && !q.echo)
        q.progress = [&](const QuickstartProgress& p) {
            if (!bar) bar = std::make_unique<StageProgress>(p.stage, p.total, p.stage == "corpus" ? "docs" : "steps");
            char note[32] = "";
            if (!std::isnan(p.val_ppl)) std::snprintf(note, sizeof note, "val ppl %.2f", p.val_ppl);
            bar->set_note(note);
            bar->update(p.done, p.tokens, p.loss);
            if (p.finished) {
                bar->finish();
                bar.reset();
            }
        };
    auto runs = run_quickstart(q);
    std::printf("\n%-22s %-18s %-8s %6s %10s %10s %8s\n", "model", "binarized", "loss", "steps", "val_loss", "val_ppl",
                "time_s");
    for (auto& r : runs)
        std::printf("%-22s %-18s %-8s %6lld %10.4f %10.2f %8.1f\n", r.name.c_str(), r.binarize.c_str(), r.loss.c_str(),
                    static_cast<long long>(r.steps), r.val_loss, r.val_ppl, r.seconds);
    std::printf("\nrun directories under %s/runs (per-step logs in each train.log), summary in %s/report.json\n",
                q.workspace.c_str(), q.workspace.c_str());
    return 0;
}

CommandRegistrar reg{"quickstart", "prepare the default corpus, train a teacher and Bi-Mamba students",
                     run_quickstart_cmd};

}  // namespace
