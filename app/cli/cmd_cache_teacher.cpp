// `bimamba cache-teacher`: run a teacher once over a prepared corpus's train
// split and store its top-k logits per position (core/train/TeacherCache.h),
// so training can distil with `teacher_cache` and no teacher in memory.
#include <chrono>
#include <cstdio>

#include "app/cli/Command.h"
#include "core/data/TokenDataset.h"
#include "core/model/Teacher.h"
#include "core/train/TeacherCache.h"

using namespace bimamba;
using namespace bimamba::data;
using namespace bimamba::model;
using namespace bimamba::train;

namespace {
const char* kHelp =
    "usage: bimamba cache-teacher --teacher DIR --data PREPARED --out FILE [options]\n"
    "  --teacher DIR       full-precision teacher folder (Mamba-2 or LLaMA family)\n"
    "  --data DIR          prepared corpus (bimamba prepare); its train split is cached\n"
    "  --out FILE          cache file to write\n"
    "  --seq-len N         window length; must equal the training config's seq_len (default 256)\n"
    "  --k N               logits kept per position                      (default 64)\n"
    "  --max-windows N     cache only the first N windows                (default all)\n"
    "  --batch-size N      windows per teacher forward                   (default 8)\n"
    "  --vocab-slice       allow a larger teacher vocabulary, sliced to the corpus's\n"
    "  --device D          cpu | cuda | auto                             (default auto)\n";

int run_cache_teacher(const cli::Args& args) {
    cli::Options o(args, {"vocab-slice", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known(
        {"teacher", "data", "out", "seq-len", "k", "max-windows", "batch-size", "vocab-slice", "device", "help"});
    const std::string dev = o.get("device", "auto");
    torch::Device device = (dev == "cuda" || (dev == "auto" && torch::cuda::is_available()))
                               ? torch::Device(torch::kCUDA)
                               : torch::Device(torch::kCPU);
    if (device.is_cuda() && !torch::cuda::is_available())
        throw std::runtime_error("--device cuda: no CUDA GPU is available");
    auto ds = TokenDataset::open(o.require("data"), "train");
    auto teacher = Teacher::load(o.require("teacher"), device);
    teacher->match_vocab(ds->vocab_size(), o.has("vocab-slice"));

    TeacherCacheSpec spec;
    spec.seq_len = int(o.get_int("seq-len", 256));
    spec.k = int(o.get_int("k", 64));
    spec.batch = int(o.get_int("batch-size", 8));
    spec.vocab_size = ds->vocab_size();
    spec.teacher_name = o.get("teacher");
    spec.dataset_name = o.get("data");
    if (spec.seq_len <= 0 || spec.batch <= 0) throw std::invalid_argument("--seq-len and --batch-size must be > 0");
    int64_t windows = ds->num_tokens() > 1 ? int64_t((ds->num_tokens() - 1) / uint64_t(spec.seq_len)) : 0;
    if (o.has("max-windows")) windows = std::min<int64_t>(windows, o.get_int("max-windows", windows));
    if (windows <= 0)
        throw std::runtime_error("the train split is shorter than one window of " + std::to_string(spec.seq_len) +
                                 " tokens");
    spec.num_windows = windows;

    std::vector<int32_t> buf(size_t(spec.seq_len));
    auto t0 = std::chrono::steady_clock::now();
    build_teacher_cache(
        o.require("out"), spec,
        [&](int64_t w) {
            ds->read(uint64_t(w) * uint64_t(spec.seq_len), buf.size(), buf.data());
            return torch::from_blob(buf.data(), {spec.seq_len}, torch::kInt32).to(torch::kLong);
        },
        [&](const torch::Tensor& ids) {
            torch::NoGradGuard ng;
            return teacher->logits(ids.to(device));
        },
        [&](int64_t done, int64_t total) {
            double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::fprintf(stderr, "\rcache-teacher %lld/%lld windows  %.0f tok/s", (long long)done, (long long)total,
                         done * spec.seq_len / std::max(s, 1e-9));
        });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\n");
    std::printf("wrote %s: %lld windows x %d positions x top-%d, %.1f s\n", o.get("out").c_str(), (long long)windows,
                spec.seq_len, spec.k, s);
    return 0;
}

cli::CommandRegistrar reg{"cache-teacher", "run a teacher once and cache its top-k logits for distillation",
                          run_cache_teacher};
}  // namespace
