// The `bimamba` CLI as a user meets it: every --help exits 0 (each command
// listed by `bimamba --help`, and the `bench` group), --version names the
// build, and the path from a quickstart run to a chat works with no extra
// flags: export from the run directory (the tokenizer comes from the run's
// prepared data), eval and chat of the deployment file, generate.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/FileUtil.h"
#include "tests/TestUtil.h"

namespace fs = std::filesystem;

namespace {

struct CliResult {
    int status = -1;
    std::string output;  // stdout and stderr together
};

// Runs `bimamba ARGS` through the shell; ARGS are quoted by the caller.
CliResult cli(const std::string& args) {
    const char* bin = std::getenv("BIMAMBA_CLI");
    CliResult r;
    FILE* p = popen(("'" + std::string(bin) + "' " + args + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

bool have_cli() {
    const char* bin = std::getenv("BIMAMBA_CLI");
    return bin && fs::exists(bin);
}

// The command names of `bimamba --help` ("  NAME<padding to 16> summary").
std::vector<std::string> command_names(const std::string& usage) {
    std::vector<std::string> names;
    std::istringstream in(usage);
    bool listing = false;
    for (std::string line; std::getline(in, line);) {
        if (line == "commands:") {
            listing = true;
            continue;
        }
        if (!listing || line.size() < 19 || line.compare(0, 2, "  ") != 0) continue;
        std::string name = line.substr(2, 16);
        while (!name.empty() && name.back() == ' ') name.pop_back();
        names.push_back(name);
    }
    return names;
}

}  // namespace

TEST(Cli, EveryHelpExitsZero) {
    if (!have_cli()) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    const CliResult usage = cli("--help");
    ASSERT_EQ(usage.status, 0) << usage.output;
    const auto names = command_names(usage.output);
    // The commands of the issue at least, bench's two among them.
    for (const char* must : {"prepare", "train", "quickstart", "eval", "export", "chat", "generate", "bench cpu",
                             "bench train", "report", "inspect"})
        EXPECT_NE(std::find(names.begin(), names.end(), must), names.end()) << must << " not in\n" << usage.output;
    for (const auto& name : names) {
        const CliResult r = cli(name + " --help");
        EXPECT_EQ(r.status, 0) << "bimamba " << name << " --help\n" << r.output;
        EXPECT_NE(r.output.find("usage"), std::string::npos) << "bimamba " << name << " --help\n" << r.output;
    }
    const CliResult group = cli("bench --help");
    EXPECT_EQ(group.status, 0) << group.output;
    EXPECT_NE(group.output.find("bench cpu"), std::string::npos) << group.output;
    // Without --help a group or an unknown command is still a usage error.
    EXPECT_EQ(cli("bench").status, 2);
    EXPECT_EQ(cli("no-such-command").status, 2);
    EXPECT_EQ(cli("").status, 2);
}

TEST(Cli, VersionNamesTheBuild) {
    if (!have_cli()) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    for (const char* flag : {"--version", "-V"}) {
        const CliResult r = cli(flag);
        ASSERT_EQ(r.status, 0) << r.output;
        EXPECT_EQ(r.output.rfind("bimamba 0.", 0), 0u) << r.output;
        EXPECT_NE(r.output.find("(git "), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("LibTorch 2.11"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("CUDA: "), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("CPU engine ISA: "), std::string::npos) << r.output;
    }
}

TEST(Cli, QuickstartRunToChatWithNoExtraFlags) {
    if (!have_cli()) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    if (!fs::exists("/usr/share/games/fortunes")) GTEST_SKIP() << "Debian package fortunes not installed";
    const std::string ws = bimamba::test::fresh_dir("quickstart");
    // A quickstart of the smallest size: the tiny model, a few steps.
    const CliResult qs = cli("quickstart --workspace '" + ws + "' --preset tiny --vocab-size 512 --teacher-steps 6 "
                       "--student-steps 4 --seq-len 32 --batch-size 2 --threads 1");
    ASSERT_EQ(qs.status, 0) << qs.output;
    // One progress bar per stage and the table; the per-step lines are in the runs' logs only.
    EXPECT_EQ(qs.output.find("step 3/6"), std::string::npos) << qs.output;
    for (const char* stage : {"corpus", "teacher", "student_kd", "student_ce"})
        EXPECT_NE(qs.output.find(std::string(stage) + " "), std::string::npos) << stage << "\n" << qs.output;
    EXPECT_NE(qs.output.find("val_ppl"), std::string::npos) << qs.output;
    EXPECT_NE(bimamba::read_file(ws + "/runs/teacher/train.log").find("step 3/6"), std::string::npos);

    const std::string run = ws + "/runs/student_kd", bmd = ws + "/kd.bmd";
    // export takes the run directory and embeds the run's tokenizer.
    const CliResult ex = cli("export --model '" + run + "' --out '" + bmd + "'");
    ASSERT_EQ(ex.status, 0) << ex.output;
    EXPECT_NE(ex.output.find("tokenizer: " + ws + "/data/fortunes/tokenizer.model"), std::string::npos) << ex.output;
    // eval of the deployment file and of the run directory, no --tokenizer.
    const std::string text = ws + "/eval.txt";
    bimamba::test::write_text(text, bimamba::read_file(std::string(BIMAMBA_SHARED_DATA) +
                                                       "/tinyshakespeare/input.txt").substr(0, 4000));
    const CliResult ev = cli("eval --model 'kd=" + bmd + ",run=" + run + "' --tasks 'text=" + text +
                       "' --window 64 --max-windows 4 --quiet --out '" + ws + "/eval.json'");
    ASSERT_EQ(ev.status, 0) << ev.output;
    auto res = nlohmann::json::parse(bimamba::read_file(ws + "/eval.json"));
    ASSERT_EQ(res["models"].size(), 2u);
    const double ppl_bmd = res["models"][0]["results"]["text"]["ppl"].get<double>();
    const double ppl_run = res["models"][1]["results"]["text"]["ppl"].get<double>();
    EXPECT_TRUE(std::isfinite(ppl_bmd) && ppl_bmd > 1) << ppl_bmd;
    // The same model and tokenizer through the engine (f16 weights, 16-bit kernels) and LibTorch.
    EXPECT_NEAR(ppl_bmd, ppl_run, 0.05 * ppl_run);
    // chat answers one message.
    const CliResult ch = cli("chat --model '" + bmd + "' --message 'Who are you?' --max-tokens 8");
    ASSERT_EQ(ch.status, 0) << ch.output;
    EXPECT_NE(ch.output.find("Assistant:"), std::string::npos) << ch.output;
    EXPECT_NE(ch.output.find(" tokens, "), std::string::npos) << ch.output;
    // generate: the run directory and the deployment file side by side.
    const CliResult ge = cli("generate --models 'run=" + run + ",kd=" + bmd + "' --prompt 'The' --max-tokens 6");
    ASSERT_EQ(ge.status, 0) << ge.output;
    EXPECT_NE(ge.output.find("] run"), std::string::npos) << ge.output;
    EXPECT_NE(ge.output.find("] kd"), std::string::npos) << ge.output;
    // chat on a run directory says how to get a deployment file.
    const CliResult wrong = cli("chat --model '" + run + "' --message hi");
    EXPECT_EQ(wrong.status, 1);
    EXPECT_NE(wrong.output.find("bimamba export --model"), std::string::npos) << wrong.output;
}
