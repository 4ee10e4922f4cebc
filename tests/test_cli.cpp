// The `bimamba` CLI as a user meets it: every --help exits 0 (each command
// listed by `bimamba --help`, and the `bench` group), --version names the
// build, and the path from a quickstart run to a chat works with no extra
// flags: export from the run directory (the tokenizer comes from the run's
// prepared data), eval and chat of the deployment file, generate; with --json,
// chat, generate --stream and bench cpu write JSON lines on stdout that parse
// and carry their fields (docs/cli-events.md).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
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

// Runs a shell command line; `output` is what it writes to stdout.
CliResult run_shell(const std::string& command) {
    CliResult r;
    FILE* p = popen(command.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// Runs `bimamba ARGS` through the shell; ARGS are quoted by the caller.
CliResult cli(const std::string& args) {
    return run_shell("'" + std::string(std::getenv("BIMAMBA_CLI")) + "' " + args + " 2>&1");
}

// Runs `bimamba ARGS` keeping stdout alone in `output` (stderr in `err`).
CliResult cli_stdout(const std::string& args, std::string* err) {
    const std::string ef = bimamba::test::fresh_dir("cli_stderr") + "/stderr.txt";
    CliResult r = run_shell("'" + std::string(std::getenv("BIMAMBA_CLI")) + "' " + args + " 2>'" + ef + "'");
    if (err) *err = bimamba::base::read_file(ef);
    return r;
}

// Every line of `out` is one JSON object with an "event" (docs/cli-events.md).
std::vector<nlohmann::json> json_events(const std::string& out) {
    std::vector<nlohmann::json> ev;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const std::exception& e) {
            ADD_FAILURE() << "not a JSON line: '" << line << "': " << e.what();
            continue;
        }
        EXPECT_TRUE(j.is_object() && j.contains("event") && j["event"].is_string()) << line;
        ev.push_back(j);
    }
    return ev;
}

std::vector<nlohmann::json> of_event(const std::vector<nlohmann::json>& ev, const std::string& name) {
    std::vector<nlohmann::json> r;
    for (const auto& e : ev)
        if (e.value("event", "") == name) r.push_back(e);
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
    const CliResult qs = cli("quickstart --workspace '" + ws +
                             "' --preset tiny --vocab-size 512 --teacher-steps 6 "
                             "--student-steps 4 --seq-len 32 --batch-size 2 --threads 1");
    ASSERT_EQ(qs.status, 0) << qs.output;
    // One progress bar per stage and the table; the per-step lines are in the runs' logs only.
    EXPECT_EQ(qs.output.find("step 3/6"), std::string::npos) << qs.output;
    for (const char* stage : {"corpus", "teacher", "student_kd", "student_ce"})
        EXPECT_NE(qs.output.find(std::string(stage) + " "), std::string::npos) << stage << "\n" << qs.output;
    EXPECT_NE(qs.output.find("val_ppl"), std::string::npos) << qs.output;
    EXPECT_NE(bimamba::base::read_file(ws + "/runs/teacher/train.log").find("step 3/6"), std::string::npos);

    const std::string run = ws + "/runs/student_kd", bmd = ws + "/kd.bmd";
    // export takes the run directory and embeds the run's tokenizer.
    const CliResult ex = cli("export --model '" + run + "' --out '" + bmd + "'");
    ASSERT_EQ(ex.status, 0) << ex.output;
    EXPECT_NE(ex.output.find("tokenizer: " + ws + "/data/fortunes/tokenizer.model"), std::string::npos) << ex.output;
    // eval of the deployment file and of the run directory, no --tokenizer.
    const std::string text = ws + "/eval.txt";
    bimamba::test::write_text(
        text,
        bimamba::base::read_file(std::string(BIMAMBA_SHARED_DATA) + "/tinyshakespeare/input.txt").substr(0, 4000));
    const CliResult ev = cli("eval --model 'kd=" + bmd + ",run=" + run + "' --tasks 'text=" + text +
                             "' --window 64 --max-windows 4 --quiet --out '" + ws + "/eval.json'");
    ASSERT_EQ(ev.status, 0) << ev.output;
    auto res = nlohmann::json::parse(bimamba::base::read_file(ws + "/eval.json"));
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
    // --json: JSON lines on stdout, nothing else, with the documented fields.
    {
        std::string err;
        const CliResult cj =
            cli_stdout("chat --model '" + bmd + "' --message 'Who are you?' --max-tokens 8 --json", &err);
        ASSERT_EQ(cj.status, 0) << cj.output << err;
        const auto ev = json_events(cj.output);
        ASSERT_GE(ev.size(), 3u) << cj.output;
        EXPECT_EQ(ev.front()["event"], "ready");
        for (const char* k : {"model", "weights", "state", "binary_kernel", "isa", "threads", "weights_mb"})
            EXPECT_TRUE(ev.front().contains(k)) << k;
        // The weights read per token: more than nothing, no more than the whole file.
        const double weights_mb = ev.front().value("weights_mb", -1.0);
        EXPECT_GT(weights_mb, 0.0);
        EXPECT_LE(weights_mb, double(std::filesystem::file_size(bmd)) / (1 << 20));
        EXPECT_EQ(ev.back()["event"], "done");
        EXPECT_EQ(ev.back()["turns"], 1);
        const auto stats = of_event(ev, "stats");
        ASSERT_EQ(stats.size(), 1u) << cj.output;
        for (const char* k : {"tokens", "tok_per_s", "prompt_tokens", "rss_mb", "joules_per_token"})
            EXPECT_TRUE(stats[0][k].is_number()) << k << " " << stats[0].dump();
        const std::string src = stats[0]["energy_source"];
        EXPECT_TRUE(src == "RAPL" || src == "estimate") << src;
        EXPECT_GT(stats[0]["rss_mb"].get<double>(), 0.0);
        // The token events add up to the reply: as many as the text mode prints.
        std::string text;
        for (const auto& t : of_event(ev, "token")) text += t["text"].get<std::string>();
        const CliResult plain =
            cli_stdout("chat --model '" + bmd + "' --message 'Who are you?' --max-tokens 8", nullptr);
        // (bytes that are not UTF-8, which a tiny model emits, are U+FFFD in the
        // JSON: compare the ASCII text)
        auto ascii = [](std::string t) {
            t.erase(std::remove_if(t.begin(), t.end(), [](char c) { return (unsigned char)c >= 0x80; }), t.end());
            return t;
        };
        EXPECT_EQ(ascii(plain.output), ascii("Assistant:" + text + "\n"));
        // `bimamba chat` runs as bimamba-chat (no LibTorch) from beside the
        // CLI; kept in this process it gives the same tokens.
        setenv("BIMAMBA_CHAT_IN_PROCESS", "1", 1);
        const CliResult here =
            cli_stdout("chat --model '" + bmd + "' --message 'Who are you?' --max-tokens 8 --json", nullptr);
        unsetenv("BIMAMBA_CHAT_IN_PROCESS");
        ASSERT_EQ(here.status, 0) << here.output;
        std::string here_text;
        for (const auto& t : of_event(json_events(here.output), "token")) here_text += t["text"].get<std::string>();
        EXPECT_EQ(here_text, text);
        // --template text: the message alone is the prompt (BOS + its tokens,
        // fewer than with "User: …\nAssistant:"), no "Assistant:" label.
        const CliResult tj = cli_stdout(
            "chat --model '" + bmd + "' --message 'Who are you?' --max-tokens 8 --json --template text", nullptr);
        ASSERT_EQ(tj.status, 0) << tj.output;
        const auto tev = json_events(tj.output);
        EXPECT_EQ(tev.front()["template"], "text");
        EXPECT_EQ(ev.front()["template"], "chat");
        const auto tstats = of_event(tev, "stats");
        ASSERT_EQ(tstats.size(), 1u) << tj.output;
        EXPECT_LT(tstats[0]["prompt_tokens"].get<int>(), stats[0]["prompt_tokens"].get<int>());
        const CliResult tt =
            cli_stdout("chat --model '" + bmd + "' --message 'Who are you?' --max-tokens 8 --template text", nullptr);
        ASSERT_EQ(tt.status, 0) << tt.output;
        EXPECT_EQ(tt.output.find("Assistant:"), std::string::npos) << tt.output;
        const CliResult bad = cli("chat --model '" + bmd + "' --message x --template alpaca");
        EXPECT_NE(bad.status, 0);
        EXPECT_NE(bad.output.find("--template must be chat or text"), std::string::npos) << bad.output;
        EXPECT_EQ(err.find("tok/s"), std::string::npos) << "no human stats line on stderr with --json: " << err;
    }
    {
        std::string err;
        const CliResult gj =
            cli_stdout("generate --models 'run=" + run + ",kd=" + bmd + "' --prompt 'The' --max-tokens 6 --json", &err);
        ASSERT_EQ(gj.status, 0) << gj.output << err;
        const auto ev = json_events(gj.output);
        EXPECT_EQ(of_event(ev, "start").size(), 2u) << gj.output;
        const auto stats = of_event(ev, "stats");
        ASSERT_EQ(stats.size(), 2u) << gj.output;
        EXPECT_EQ(stats[0]["label"], "run");
        EXPECT_EQ(stats[1]["label"], "kd");
        for (const auto& st : stats)
            for (const char* k : {"tokens", "tok_per_s", "prompt_tokens", "seconds", "rss_mb", "joules_per_token"})
                EXPECT_TRUE(st[k].is_number()) << k << " " << st.dump();
        ASSERT_FALSE(ev.empty());
        EXPECT_EQ(ev.back()["event"], "done");
        EXPECT_EQ(ev.back()["generations"], 2);
    }
    // chat on a run directory says how to get a deployment file.
    const CliResult wrong = cli("chat --model '" + run + "' --message hi");
    EXPECT_EQ(wrong.status, 1);
    EXPECT_NE(wrong.output.find("bimamba export --model"), std::string::npos) << wrong.output;
}

// scripts/ab-cpu.sh (two builds alternated): its medians are those of the
// runs' own JSON lines, and a bad pair count is refused.
TEST(Cli, AbCpuScriptSummarisesTheAlternatedRuns) {
    if (!have_cli()) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    const std::string dir = bimamba::test::fresh_dir("ab_cpu");
    const std::string bin = std::getenv("BIMAMBA_CLI");
    const std::string script = std::string(BIMAMBA_SOURCE_DIR) + "/scripts/ab-cpu.sh";
    auto run = [&](const std::string& args) {
        return run_shell("AB_DIR='" + dir + "/ab' bash '" + script + "' '" + bin + "' '" + bin + "' " + args + " 2>&1");
    };
    const CliResult bad = run("0 --shape tiny");
    EXPECT_EQ(bad.status, 2) << bad.output;
    EXPECT_NE(bad.output.find("PAIRS must be at least 1"), std::string::npos) << bad.output;

    const CliResult r =
        run("2 --shape tiny --tokens 4 --reps 2 --prompt 4 --prefill-block 2 --bandwidth-mb 64 "
            "--state f32 --kernels i16lut --threads 1 --dir '" +
            dir + "/w'");
    ASSERT_EQ(r.status, 0) << r.output;
    // From the JSON lines: the binary row of each run.
    auto medians = [&](const std::string& who, double* tok, double* roof) {
        std::vector<double> t, f;
        for (int i = 1; i <= 2; ++i)
            for (const auto& e : of_event(
                     json_events(bimamba::base::read_file(dir + "/ab/" + who + "-" + std::to_string(i) + ".jsonl")),
                     "stats"))
                if (e["weights"] == "binary") {
                    t.push_back(e["tok_per_s"].get<double>());
                    for (const auto& v : e["roofline_reps"]) f.push_back(v.get<double>());
                    break;
                }
        ASSERT_EQ(t.size(), 2u);
        ASSERT_EQ(f.size(), 4u);
        std::sort(f.begin(), f.end());
        *tok = (t[0] + t[1]) / 2;
        *roof = 100 * (f[1] + f[2]) / 2;
    };
    double ot = 0, orf = 0, nt = 0, nrf = 0;
    medians("old", &ot, &orf);
    medians("new", &nt, &nrf);
    double got_ot = 0, got_nt = 0, got_orf = 0, got_nrf = 0;
    const size_t a = r.output.find("median decode tok/s: old ");
    const size_t b = r.output.find("median % of the roofline over all reps: old ");
    ASSERT_NE(a, std::string::npos) << r.output;
    ASSERT_NE(b, std::string::npos) << r.output;
    ASSERT_EQ(std::sscanf(r.output.c_str() + a, "median decode tok/s: old %lf, new %lf", &got_ot, &got_nt), 2);
    ASSERT_EQ(std::sscanf(r.output.c_str() + b, "median %% of the roofline over all reps: old %lf, new %lf", &got_orf,
                          &got_nrf),
              2);
    EXPECT_NEAR(got_ot, ot, 0.006);
    EXPECT_NEAR(got_nt, nt, 0.006);
    EXPECT_NEAR(got_orf, orf, 0.06);
    EXPECT_NEAR(got_nrf, nrf, 0.06);
    EXPECT_NE(r.output.find("of 2 pairs"), std::string::npos) << r.output;
}

// `bench cpu --json` at the tiny shape: JSON lines on stdout (the report on
// stderr), one stats event per row with its kernel, done at the end.
TEST(Cli, BenchCpuJsonLinesCarryTheFields) {
    if (!have_cli()) GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    const std::string dir = bimamba::test::fresh_dir("bench_json");
    std::string err;
    const CliResult b = cli_stdout(
        "bench cpu --shape tiny --tokens 4 --reps 3 --prompt 4 --prefill-block 2 --bandwidth-mb 64 "
        "--state f32 --kernels i16lut,lut3 --threads 1 --dir '" +
            dir + "' --json",
        &err);
    ASSERT_EQ(b.status, 0) << b.output << err;
    EXPECT_NE(err.find("where decode time goes"), std::string::npos) << "the human report goes to stderr: " << err;
    const auto ev = json_events(b.output);
    ASSERT_GE(ev.size(), 5u) << b.output;
    EXPECT_EQ(ev.front()["event"], "machine");
    EXPECT_EQ(ev.front()["threads"], 1);
    EXPECT_TRUE(ev.front()["read_gbps"].is_number());
    EXPECT_EQ(ev.front()["handoff_us"], 0.0);  // one thread hands nothing off
    EXPECT_EQ(ev.front()["handoff_work_us"], 0.0);
    const auto rows = of_event(ev, "stats");
    ASSERT_EQ(rows.size(), 3u) << b.output;  // binary i16lut, binary lut3, fp16
    EXPECT_EQ(rows[0]["binary_kernel"], "i16lut");
    EXPECT_EQ(rows[1]["binary_kernel"], "lut3");
    EXPECT_EQ(rows[2]["binary_kernel"], "-");
    EXPECT_EQ(rows[0]["head"], "q8");   // the binary file as export writes it by default
    EXPECT_EQ(rows[2]["head"], "f16");  // the fp16 baseline keeps its fp16 head
    for (const auto& r : rows) {
        for (const char* k : {"tokens", "tok_per_s", "prompt_tokens", "rss_mb", "joules_per_token", "prefill_tok_per_s",
                              "mb_per_token", "cpu_seconds_per_token"})
            EXPECT_TRUE(r[k].is_number()) << k << " " << r.dump();
        EXPECT_EQ(r["state"], "f32");
        EXPECT_EQ(r["tokens"], 12);  // 3 reps of 4
        EXPECT_GT(r["tok_per_s"].get<double>(), 0.0);
        // Each decode rep has the bandwidths measured just before it, and the
        // row's roofline is the median of the reps' own.
        ASSERT_EQ(r["read_gbps_reps"].size(), 3u) << r.dump();
        ASSERT_EQ(r["update_gbps_reps"].size(), 3u) << r.dump();
        ASSERT_EQ(r["roofline_reps"].size(), 3u) << r.dump();
        std::vector<double> roof;
        for (int i = 0; i < 3; ++i) {
            EXPECT_GT(r["read_gbps_reps"][i].get<double>(), 0.0);
            EXPECT_GT(r["update_gbps_reps"][i].get<double>(), 0.0);
            roof.push_back(r["roofline_reps"][i].get<double>());
            EXPECT_GT(roof.back(), 0.0);
        }
        std::sort(roof.begin(), roof.end());
        EXPECT_DOUBLE_EQ(r["roofline"].get<double>(), roof[1]);
        EXPECT_TRUE(r["profile_ms"]["total"].is_number());
        // The batched prefill's parts add up to its total, which is timed inside
        // the measured prefills: per token (the mean of the reps) at most the
        // slowest rep's wall time, and most of the fastest's.
        const auto& pp = r["prefill_profile_ms"];
        double parts = 0;
        for (const char* k : {"embed", "norm", "in_proj", "conv", "ssm", "gate_norm", "out_proj", "residual", "head"})
            parts += pp[k].get<double>();
        EXPECT_NEAR(parts, pp["total"].get<double>(), 1e-9 + 1e-9 * parts) << pp.dump();
        const double slowest_ms = 1e3 / r["prefill_tok_per_s_min"].get<double>();
        const double fastest_ms = 1e3 / r["prefill_tok_per_s_max"].get<double>();
        EXPECT_GT(pp["in_proj"].get<double>(), 0.0) << pp.dump();
        EXPECT_LE(pp["total"].get<double>(), 1.02 * slowest_ms) << pp.dump();
        EXPECT_GE(pp["total"].get<double>(), 0.2 * fastest_ms) << pp.dump();
        const std::string src = r["energy_source"];
        EXPECT_TRUE(src == "RAPL" || src == "estimate") << src;
    }
    EXPECT_EQ(ev.back()["event"], "done");
    EXPECT_EQ(ev.back()["rows"], 3);
    bimamba::base::remove_tree(dir);
}
