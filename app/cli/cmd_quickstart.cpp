// `bimamba quickstart [--workspace DIR]`: corpus -> teacher -> Bi-Mamba students, in minutes on a CPU.
#include <cstdio>

#include "app/cli/Command.h"
#include "core/train/Quickstart.h"

using namespace bimamba;
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
    "  --quiet\n";

int run_quickstart_cmd(const Args& args) {
    Options o(args, {"quiet", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"workspace", "corpus", "vocab-size", "preset", "teacher-steps", "student-steps", "seq-len",
                   "batch-size", "threads", "quiet", "help"});
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
    q.echo = !o.has("quiet");
    auto runs = run_quickstart(q);
    std::printf("\n%-22s %-18s %-8s %6s %10s %10s %8s\n", "model", "binarized", "loss", "steps", "val_loss", "val_ppl",
                "time_s");
    for (auto& r : runs)
        std::printf("%-22s %-18s %-8s %6lld %10.4f %10.2f %8.1f\n", r.name.c_str(), r.binarize.c_str(), r.loss.c_str(),
                    static_cast<long long>(r.steps), r.val_loss, r.val_ppl, r.seconds);
    std::printf("\nrun directories under %s/runs, summary in %s/report.json\n", q.workspace.c_str(), q.workspace.c_str());
    return 0;
}

CommandRegistrar reg{"quickstart", "prepare the default corpus, train a teacher and Bi-Mamba students", run_quickstart_cmd};

}  // namespace
