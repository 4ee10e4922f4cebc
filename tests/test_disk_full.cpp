// A full disk (issue #17, item 5; docs/reliability.md). The run directory and
// the outputs live on a small file system that the test fills:
//   - as root: a tmpfs mounted for the test, filled by a filler file until
//     a few KiB are left (the free space is real: statvfs sees it);
//   - otherwise: RLIMIT_FSIZE in the child process (SIGXFSZ ignored), so a
//     file cannot grow past the limit (EFBIG, "File too large").
// `bimamba train --resume` on the full disk stops at its next checkpoint with
// exit status 3 and status.json naming the file, the reason and the space
// left; `latest` still names the previous complete checkpoint; once space is
// back, --resume finishes with the weights of a run that never stopped (bit
// for bit, CPU). `export`, `quantize` and `report` fail with exit status 1
// and such a message, leave no partial output, and work once space is back.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/base/FileUtil.h"
#include "core/base/RunDir.h"
#include "core/model/Checkpoint.h"
#include "core/train/Trainer.h"
#include "tests/TestUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
using namespace bimamba::model;
using namespace bimamba::train;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The small file system: a tmpfs when the test may mount one, else a file size limit.
struct SmallDisk {
    std::string dir;
    bool tmpfs = false;
    uint64_t rlimit = 0;  // RLIMIT_FSIZE for the children while squeezed (no tmpfs)

    explicit SmallDisk(const std::string& d) : dir(d) {
        fs::create_directories(dir);
        if (::geteuid() == 0 && ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64m,mode=0755") == 0) tmpfs = true;
    }
    ~SmallDisk() {
        if (tmpfs) ::umount2(dir.c_str(), MNT_DETACH);
    }
    uint64_t free_bytes() const {
        struct statvfs v {};
        ::statvfs(dir.c_str(), &v);
        return uint64_t(v.f_bavail) * v.f_frsize;
    }
    // Leaves about `left` bytes that files can grow into.
    void squeeze(uint64_t left) {
        if (!tmpfs) {
            rlimit = left;
            return;
        }
        const std::string filler = dir + "/filler";
        const uint64_t avail = free_bytes();
        ASSERT_GT(avail, left + 8192);
        std::ofstream f(filler, std::ios::binary);
        const std::string block(4096, 'x');
        for (uint64_t n = 0; n + left + 4096 <= avail; n += 4096) f.write(block.data(), 4096);
        f.close();
        ASSERT_LE(free_bytes(), left + 8192);
    }
    void release() {
        rlimit = 0;
        if (tmpfs) fs::remove(dir + "/filler");
    }
    const char* why_full() const { return tmpfs ? "No space left on device" : "File too large"; }
};

// `bimamba ARGS` (under the file size limit, if any); exit status, stdout+stderr in `out`.
int run_cli(const std::vector<std::string>& args, uint64_t fsize_limit, std::string* out,
            const std::string& hooks = "") {
    const char* cli = std::getenv("BIMAMBA_CLI");
    const std::string log = test::scratch_root() + "/cli_output.txt";
    pid_t pid = fork();
    if (pid == 0) {
        if (!hooks.empty()) setenv("BIMAMBA_TEST_HOOKS", hooks.c_str(), 1);
        if (!freopen(log.c_str(), "w", stdout) || dup2(fileno(stdout), 2) < 0) _exit(126);
        if (fsize_limit) {
            signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead
            struct rlimit rl {
                fsize_limit, fsize_limit
            };
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(125);
        }
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(cli));
        for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(cli, argv.data());
        _exit(127);
    }
    int wst = 0;
    waitpid(pid, &wst, 0);
    *out = read_file(log);
    return WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
}

std::string model_of(const std::string& ck) {
    return ck + "/model.safetensors";
}

bool same_tensors(const std::string& a_path, const std::string& b_path) {
    auto a = load_tensors(a_path), b = load_tensors(b_path);
    if (a.size() != b.size()) return false;
    for (auto& [k, v] : a)
        if (!b.count(k) || !torch::equal(v, b.at(k))) return false;
    return true;
}

uint64_t folder_bytes(const std::string& d) {
    uint64_t n = 0;
    for (auto& e : fs::recursive_directory_iterator(d))
        if (e.is_regular_file()) n += (e.file_size() + 4095) / 4096 * 4096;
    return n;
}

bool any_temporary(const std::string& d) {
    for (auto& e : fs::recursive_directory_iterator(d))
        if (e.path().filename().string().find(".tmp") != std::string::npos) return true;
    return false;
}

}  // namespace

TEST(DiskFull, TrainingStopsKeepsItsCheckpointAndResumesOnceSpaceIsBack) {
    const char* cli = std::getenv("BIMAMBA_CLI");
    if (!cli || !fs::exists(cli)) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    const std::string root = test::fresh_dir("diskfull");
    const std::string data = test::prepare_shakespeare(root, 60000, 512);
    SmallDisk disk(root + "/small");
    std::printf("small disk: %s\n", disk.tmpfs ? "a 64 MiB tmpfs (root), filled by a filler file"
                                               : "RLIMIT_FSIZE in the child (no tmpfs: not root or mount refused)");

    TrainConfig c;
    c.data = data;
    c.model = "tiny";
    c.device = "cpu";
    c.threads = 1;
    c.steps = 12;
    c.seq_len = 32;
    c.batch_size = 2;
    c.eval_every = 0;
    c.eval_batches = 2;
    c.checkpoint_every = 4;
    c.keep_checkpoints = 2;
    c.seed = 5;
    TrainOptions quiet;
    quiet.echo = false;
    quiet.handle_signals = false;
    const std::string ref = root + "/ref";
    TrainConfig keep_all = c;  // the reference keeps steps 4, 8 and 12
    keep_all.keep_checkpoints = 3;
    ASSERT_EQ(train::train(keep_all, ref, quiet).state, "finished");
    const uint64_t ckpt_bytes = folder_bytes(ref + "/checkpoints/step_00000004");
    const uint64_t model_bytes = fs::file_size(model_of(ref + "/checkpoints/step_00000004"));

    const std::string cfg_path = root + "/c.json";
    test::write_text(cfg_path, c.to_json().dump());
    const std::string run = disk.dir + "/run";
    std::string out;
    // Four steps and a checkpoint while there is space.
    ASSERT_EQ(run_cli({"train", "--config", cfg_path, "--run-dir", run, "--quiet"}, 0, &out, "stop_after_steps=4"), 0)
        << out;
    ASSERT_EQ(latest_checkpoint(run), run + "/checkpoints/step_00000004");

    // The disk fills: room for the metrics lines, not for the next checkpoint.
    disk.squeeze(disk.tmpfs ? ckpt_bytes / 2 : model_bytes / 2);
    EXPECT_EQ(run_cli({"train", "--resume", run, "--quiet"}, disk.rlimit, &out), 3) << out;
    const RunStatus st = read_run_status(run);
    EXPECT_EQ(st.state, "failed");
    EXPECT_EQ(st.step, 8);
    for (const std::string& part :
         {std::string("cannot write '") + run + "/checkpoints/step_00000008.tmp/", std::string(disk.why_full()),
          std::string(" free of "), std::string("the last good checkpoint is ") + run + "/checkpoints/step_00000004"})
        EXPECT_NE(st.message.find(part), std::string::npos) << "status message lacks '" << part << "': " << st.message;
    EXPECT_NE(out.find(st.message), std::string::npos) << "the message is not on the terminal: " << out;
    EXPECT_EQ(latest_checkpoint(run), run + "/checkpoints/step_00000004");
    EXPECT_TRUE(
        same_tensors(model_of(run + "/checkpoints/step_00000004"), model_of(ref + "/checkpoints/step_00000004")));
    EXPECT_FALSE(fs::exists(run + "/checkpoints/step_00000008.tmp"))
        << "the failed checkpoint's space is not given back";

    // Space is back: --resume finishes as the uninterrupted run did.
    disk.release();
    ASSERT_EQ(run_cli({"train", "--resume", run, "--quiet"}, 0, &out), 0) << out;
    EXPECT_EQ(read_run_status(run).state, "finished");
    EXPECT_TRUE(
        same_tensors(model_of(run + "/checkpoints/step_00000012"), model_of(ref + "/checkpoints/step_00000012")));
    EXPECT_EQ(read_metrics(run).size(), read_metrics(ref).size());
    EXPECT_FALSE(any_temporary(run));

    // export, quantize and report on a full disk: a message naming the output
    // and the space left, exit status 1, no partial output; then they work.
    const std::string ck = ref + "/checkpoints/step_00000012";
    const std::string tok = data + "/tokenizer.model";
    struct Command {
        const char* name;
        std::vector<std::string> args;
        std::string output;  // the file (or folder) it writes
        std::string named;   // the file its message names
    };
    const std::string o = disk.dir + "/out";
    fs::create_directories(o);
    const std::vector<Command> commands = {
        {"export", {"export", "--model", ck, "--out", o + "/m.bmd", "--tokenizer", tok}, o + "/m.bmd", o + "/m.bmd"},
        {"quantize",
         {"quantize", "--model", ck, "--method", "rtn", "--bits", "4", "--out", o + "/q", "--tokenizer", tok},
         o + "/q/model.safetensors",
         o + "/q/"},
        {"report", {"report", "--run", ref, "--out", o + "/r.h5"}, o + "/r.h5", o + "/r.h5"},
    };
    for (const auto& cmd : commands) {
        SCOPED_TRACE(cmd.name);
        disk.squeeze(8192);
        EXPECT_EQ(run_cli(cmd.args, disk.rlimit, &out), 1) << out;
        EXPECT_NE(out.find("cannot write"), std::string::npos) << out;
        EXPECT_NE(out.find(cmd.named), std::string::npos) << out;
        EXPECT_NE(out.find(" free of "), std::string::npos) << out;
        EXPECT_FALSE(fs::exists(cmd.output)) << "a partial output is left";
        EXPECT_FALSE(any_temporary(o));
        disk.release();
        EXPECT_EQ(run_cli(cmd.args, 0, &out), 0) << out;
        EXPECT_TRUE(fs::exists(cmd.output)) << out;
    }
}
