#pragma once
// `bimamba quickstart`: the whole pipeline in minutes on a laptop CPU —
// prepare the default corpus (Debian `fortunes`), train a small full-precision
// Mamba-2 teacher, then Bi-Mamba students (in_proj+out_proj binarized) with
// autoregressive distillation and with plain CE for comparison; write
// <workspace>/report.json and leave the run directories for the GUI.
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bimamba::train {

// What the quickstart reports as it goes: the CLI draws one progress bar per
// stage from it. Stages: "corpus" (documents encoded), then one per run
// ("teacher", "student_kd", "student_ce": optimizer steps).
struct QuickstartProgress {
    std::string stage;
    int64_t done = 0, total = 0;
    int64_t tokens = 0;
    double loss = std::nan("");     // last training loss
    double val_ppl = std::nan("");  // last validation perplexity
    bool finished = false;          // the stage is complete (called once more with this set)
};

struct QuickstartOptions {
    std::string workspace = "quickstart";
    std::string corpus_dir = "/usr/share/games/fortunes";
    int vocab_size = 2048;
    std::string preset = "small";
    int64_t teacher_steps = 300;
    int64_t student_steps = 150;
    int64_t seq_len = 128;
    int64_t batch_size = 8;
    int64_t threads = 0;
    bool echo = true;  // stage headers and per-step lines on stderr (each run's train.log has them either way)
    std::function<void(const QuickstartProgress&)> progress;
};

struct QuickstartRun {
    std::string name, run_dir, loss, binarize;
    int64_t steps = 0;
    double val_loss = 0, val_ppl = 0, seconds = 0;
};

// Runs everything; returns the runs in order (teacher first). Throws on errors.
std::vector<QuickstartRun> run_quickstart(const QuickstartOptions& opt);

}  // namespace bimamba::train
