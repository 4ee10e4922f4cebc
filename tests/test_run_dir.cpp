// Run directories read the way the CLI and the workbench both read them
// (core/base/RunDir.h): checkpoints/latest with any surrounding whitespace,
// status.json, the workbench's launcher files, the metrics history; and the
// small shared helpers beside them (strings, file tails, /proc).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "core/base/FileUtil.h"
#include "core/base/MetricsRows.h"
#include "core/base/Process.h"
#include "core/base/RunDir.h"
#include "core/base/StringUtil.h"
#include "tests/TestUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using bimamba::test::error_of;
using bimamba::test::fresh_dir;
using bimamba::test::write_text;
namespace fs = std::filesystem;

TEST(RunDirRead, LatestCheckpointIgnoresSurroundingWhitespace) {
    const std::string run = fresh_dir("latest");
    EXPECT_EQ(latest_checkpoint(run), "");  // no checkpoints/ yet
    fs::create_directories(run + "/checkpoints/step_00000002");
    EXPECT_EQ(latest_checkpoint(run), "");  // no `latest` yet
    const std::string want = (fs::path(run) / "checkpoints" / "step_00000002").string();
    for (const char* text : {"step_00000002", "step_00000002\n", "step_00000002\r\n", "  step_00000002 \t\n\n"}) {
        write_text(run + "/checkpoints/latest", text);
        EXPECT_EQ(latest_checkpoint(run), want) << "latest = '" << text << "'";
    }
    write_text(run + "/checkpoints/latest", " \n");
    EXPECT_EQ(latest_checkpoint(run), "");
    write_text(run + "/checkpoints/latest", want + "\n");  // an absolute path
    EXPECT_EQ(latest_checkpoint(run), want);
    write_text(run + "/checkpoints/latest", "step_00000009\n");
    const std::string e = error_of([&] { latest_checkpoint(run); });
    EXPECT_NE(e.find("step_00000009"), std::string::npos) << e;
    EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
}

TEST(RunDirRead, WhatTheWriterWritesTheReadersRead) {
    const std::string run = fresh_dir("written");
    {
        RunDir rd(run);
        EXPECT_FALSE(read_run_status(run).valid);
        rd.write_status("running", 3, 10, "going");
        const std::string ck = rd.checkpoint_path(3);
        fs::create_directories(ck);
        rd.publish_checkpoint(ck, 2);
        EXPECT_EQ(rd.latest_checkpoint(), ck);
        EXPECT_EQ(latest_checkpoint(run), ck);
        rd.append_metrics({{"type", "train"}, {"step", 1}, {"loss", 5.0}});
        rd.append_metrics({{"type", "train"}, {"step", 2}, {"loss", 4.0}});
        rd.append_metrics({{"type", "train"}, {"step", 2}, {"loss", 3.5}});  // an old resume redid step 2
    }
    const RunStatus s = read_run_status(run);
    ASSERT_TRUE(s.valid);
    EXPECT_EQ(s.state, "running");
    EXPECT_EQ(s.pid, int64_t(getpid()));
    EXPECT_EQ(s.step, 3);
    EXPECT_EQ(s.total_steps, 10);
    EXPECT_EQ(s.message, "going");
    EXPECT_EQ(s.ended, "");  // null while running
    EXPECT_FALSE(s.started.empty());
    EXPECT_TRUE(looks_like_run_dir(run));
    EXPECT_FALSE(looks_like_run_dir(fresh_dir("empty")));

    // a line torn by a kill is skipped; the last row per (type, step) wins
    write_text(run + "/metrics.jsonl", read_file(run + "/metrics.jsonl") + "{\"type\": \"val\", \"st");
    const auto rows = read_metrics(run);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[1]["loss"], 3.5);
}

// The history rule (core/base/MetricsRows.h): a row of a type at step s
// replaces that type's earlier rows at steps >= s, other types untouched;
// rows without a numeric step all stay; file order is kept.
// Found with tests/fuzz/fuzz_metrics_rows: a number outside int64 in
// status.json was cast to int64 (undefined behaviour); it reads as 0.
TEST(RunDirRead, StatusNumbersOutOfRangeReadAsZero) {
    const std::string run = fresh_dir("status_range");
    write_text(run + "/status.json", R"({"state":"running","pid":12,"step":1e300,"total_steps":-1e300})");
    const RunStatus s = read_run_status(run);
    ASSERT_TRUE(s.valid);
    EXPECT_EQ(s.state, "running");
    EXPECT_EQ(s.pid, 12);
    EXPECT_EQ(s.step, 0);
    EXPECT_EQ(s.total_steps, 0);
}

TEST(RunDirRead, MetricsRowsKept) {
    const std::vector<nlohmann::json> rows = {
        {{"type", "train"}, {"step", 1}},    // 0
        {{"type", "train"}, {"step", 2}},    // 1
        {{"type", "val"}, {"step", 2}},      // 2
        {{"type", "train"}, {"step", 3}},    // 3
        {{"event", "note"}},                 // 4: no step
        {{"step", 2}},                       // 5: no type = train; replaces 1 and 3
        {{"type", "val"}, {"step", 4}},      // 6
        {{"type", "train"}, {"step", "x"}},  // 7: not a number
        {{"type", "val"}, {"step", 3}},      // 8: replaces 6
        nlohmann::json::array(),             // 9: not an object
    };
    EXPECT_EQ(metrics_rows_kept(rows), (std::vector<size_t>{0, 2, 4, 5, 7, 8, 9}));
    const std::vector<double> steps = {1, 2, 3, 5};
    EXPECT_EQ(metrics_rows_kept_before(steps.data(), 4, 6), 4u);
    EXPECT_EQ(metrics_rows_kept_before(steps.data(), 4, 5), 3u);
    EXPECT_EQ(metrics_rows_kept_before(steps.data(), 4, 2.5), 2u);
    EXPECT_EQ(metrics_rows_kept_before(steps.data(), 4, 1), 0u);
    EXPECT_EQ(metrics_rows_kept_before(steps.data(), 0, 1), 0u);
}

TEST(RunDirRead, ConfigAndLauncherFiles) {
    const std::string run = fresh_dir("launcher");
    EXPECT_TRUE(read_run_config(run).empty());
    write_text(run + "/" + run_files::kLaunchConfig, R"({"data": "launched"})");
    EXPECT_EQ(read_run_config(run)["data"], "launched");
    write_text(run + "/" + run_files::kTrainConfig, R"({"data": "resolved"})");
    EXPECT_EQ(read_run_config(run)["data"], "resolved");  // train_config.json first

    EXPECT_EQ(read_exit_code(run), -1);
    EXPECT_EQ(read_launcher_pid(run), 0);
    write_text(run + "/" + run_files::kExitCode, "0\n");
    EXPECT_EQ(read_exit_code(run), 0);
    write_text(run + "/" + run_files::kExitCode, " 3 \n");
    EXPECT_EQ(read_exit_code(run), 3);
    write_text(run + "/" + run_files::kExitCode, "three");
    EXPECT_EQ(read_exit_code(run), -1);
    write_text(run + "/" + run_files::kLauncherPid, "4242\n");
    EXPECT_EQ(read_launcher_pid(run), 4242);
}

TEST(SharedHelpers, StringsTailsAndProcesses) {
    EXPECT_TRUE(ends_with("model.safetensors", ".safetensors"));
    EXPECT_FALSE(ends_with("a", "abc"));
    EXPECT_TRUE(starts_with("step_00000001", "step_"));
    EXPECT_EQ(trim(" \t x y \r\n"), "x y");
    EXPECT_EQ(trim(" \n"), "");

    const std::string d = fresh_dir("tail");
    write_text(d + "/log", "one\ntwo\nthree\n\n  \n");
    EXPECT_EQ(tail_lines(d + "/log", 2), "two\nthree");
    EXPECT_EQ(tail_lines(d + "/log", 10), "one\ntwo\nthree");
    EXPECT_EQ(tail_lines(d + "/missing", 3), "");

    EXPECT_GT(rss_kib(), 0);
    EXPECT_TRUE(pid_alive(getpid()));
    EXPECT_FALSE(pid_alive(0));
    const pid_t child = fork();
    if (child == 0) _exit(0);
    int st = 0;
    waitpid(child, &st, 0);
    EXPECT_FALSE(pid_alive(child));
    EXPECT_EQ(rss_kib(child), -1);
}
