// Malformed files fed to the CLI (issue #17: "refused with a message and an
// exit code below 124, never a crash or hang"). A tiny valid model, its
// deployment file and tokenizer are made first; then broken variants of every
// kind of file the commands read (safetensors, config.json, the sharded
// index, .bmd, tokenizer.model, training configs, study files, a run
// directory's metrics/status/config, prepared data, task JSONL) are passed to
// the commands that read them. Each must exit normally with a status from 1
// to 123 and print "error"; a signal (a crash), a sanitizer abort or the
// 120 s timeout fails the test.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/base/FileUtil.h"
#include "core/base/Mamba2Config.h"
#include "core/model/Checkpoint.h"
#include "core/model/Mamba2Model.h"
#include "tests/TestUtil.h"

namespace fs = std::filesystem;
using bimamba::test::write_text;

namespace {

struct CliRun {
    bool exited = false;
    int status = -1;
    std::string output;
};

// `bimamba ARGS` (quoted by the caller) under `timeout -s KILL 120`.
CliRun cli(const std::string& args) {
    const std::string cmd = "timeout -s KILL 120 '" + std::string(std::getenv("BIMAMBA_CLI")) + "' " + args + " 2>&1";
    CliRun r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    const int st = pclose(p);
    r.exited = WIFEXITED(st);
    r.status = r.exited ? WEXITSTATUS(st) : -1;
    return r;
}

// The command must refuse its input cleanly: a normal exit, 0 < status < 124
// (timeout's 124 and the shell's 128+signal are above), "error" in the output.
void expect_refused(const std::string& args) {
    const CliRun r = cli(args);
    EXPECT_TRUE(r.exited && r.status > 0 && r.status < 124) << "bimamba " << args << "\nstatus " << r.status << "\n"
                                                            << r.output.substr(0, 4000);
    EXPECT_NE(r.output.find("error"), std::string::npos) << "bimamba " << args << "\n" << r.output.substr(0, 4000);
}

std::string q(const std::string& s) {
    return "'" + s + "'";
}

std::string garbage(size_t n, unsigned seed) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) {
        seed = seed * 1103515245u + 12345u;
        s[i] = char(seed >> 16);
    }
    return s;
}

// A model folder: the good model's files, then `changes` written over them.
std::string model_dir(const std::string& root, const std::string& name, const std::string& good,
                      const std::vector<std::pair<std::string, std::string>>& changes, bool keep_weights = true) {
    const std::string d = root + "/" + name;
    fs::create_directories(d);
    fs::copy_file(good + "/config.json", d + "/config.json", fs::copy_options::overwrite_existing);
    if (keep_weights)
        fs::copy_file(good + "/model.safetensors", d + "/model.safetensors", fs::copy_options::overwrite_existing);
    for (const auto& [file, bytes] : changes) write_text(d + "/" + file, bytes);
    return d;
}

}  // namespace

TEST(MalformedFiles, EveryCommandRefusesBrokenInputCleanly) {
    if (!std::getenv("BIMAMBA_CLI") || !fs::exists(std::getenv("BIMAMBA_CLI")))
        GTEST_SKIP() << "BIMAMBA_CLI not set (run through ctest)";
    const std::string root = bimamba::test::fresh_dir("malformed");
    const std::string data = bimamba::test::prepare_shakespeare(root, 60000, 500);
    const std::string tok = data + "/tokenizer.model";
    const std::string good = root + "/good";
    auto cfg = bimamba::base::Mamba2Config::preset("tiny");
    bimamba::model::save_model(bimamba::model::Mamba2LM(cfg), good);
    const std::string bmd = root + "/good.bmd";
    {
        const CliRun r = cli("export --model " + q(good) + " --out " + q(bmd) + " --tokenizer " + q(tok));
        ASSERT_EQ(r.status, 0) << r.output;
    }
    const std::string weights = bimamba::base::read_file(good + "/model.safetensors");
    const std::string text = root + "/eval.txt";
    write_text(text, "To be, or not to be, that is the question.\n");

    // ---- checkpoints: safetensors, config.json, the sharded index ----------------
    const std::vector<std::string> models = {
        model_dir(root, "garbage_weights", good, {{"model.safetensors", garbage(5000, 1)}}),
        model_dir(root, "truncated_weights", good, {{"model.safetensors", weights.substr(0, weights.size() / 2)}}),
        model_dir(root, "header_only", good, {{"model.safetensors", weights.substr(0, 300)}}),
        model_dir(root, "garbage_config", good, {{"config.json", garbage(300, 2)}}),
        model_dir(root, "config_array", good, {{"config.json", "[1, 2, 3]"}}),
        // A config of ~2·10^10 parameters (80 GB in float32) beside the tiny
        // weights: refused, not allocated and initialised.
        model_dir(root, "config_huge", good,
                  {{"config.json", R"({"d_model": 8192, "n_layer": 48, "vocab_size": 50000})"}}),
        model_dir(root, "index_escapes", good,
                  {{"model.safetensors.index.json", R"({"weight_map": {"a": "../good/model.safetensors"}})"}},
                  /*keep_weights=*/false),
        model_dir(root, "index_garbage", good, {{"model.safetensors.index.json", garbage(200, 3)}},
                  /*keep_weights=*/false),
    };
    for (size_t i = 0; i < models.size(); ++i) {
        const std::string& m = models[i];
        SCOPED_TRACE(m);
        expect_refused("export --model " + q(m) + " --out " + q(root + "/x.bmd") + " --tokenizer " + q(tok));
        if (i % 2 == 1)  // every other one: each bimamba start loads LibTorch (about a second)
            expect_refused("generate --models " + q(m) + " --prompt hi --max-tokens 2 --tokenizer " + q(tok));
    }
    expect_refused("inspect " + q(models[0]));
    expect_refused("inspect " + q(models[1]));
    expect_refused("inspect " + q(models[6]));
    expect_refused("eval --model " + q(models[1]) + " --tasks text=" + q(text) + " --tokenizer " + q(tok));
    expect_refused("quantize --model " + q(models[5]) + " --method rtn --out " + q(root + "/q"));

    // ---- deployment files (.bmd) -----------------------------------------------
    const std::string good_bmd = bimamba::base::read_file(bmd);
    for (const auto& [name, bytes] :
         std::vector<std::pair<std::string, std::string>>{{"garbage.bmd", garbage(4096, 4)},
                                                          {"truncated.bmd", good_bmd.substr(0, good_bmd.size() / 2)},
                                                          {"header_only.bmd", good_bmd.substr(0, 64)},
                                                          {"empty.bmd", ""}}) {
        const std::string f = root + "/" + name;
        write_text(f, bytes);
        SCOPED_TRACE(name);
        expect_refused("chat --model " + q(f) + " --message hi --max-tokens 2");
        if (name == "truncated.bmd") expect_refused("eval --model " + q(f) + " --tasks text=" + q(text));
    }

    // ---- tokenizer.model ---------------------------------------------------------
    const std::string bad_tok = root + "/bad_tokenizer.model";
    write_text(bad_tok, garbage(1000, 5));
    expect_refused("prepare " + q(root + "/shakespeare.txt") + " --out " + q(root + "/prep_bad") + " --tokenizer " +
                   q(bad_tok));
    expect_refused("export --model " + q(good) + " --out " + q(root + "/y.bmd") + " --tokenizer " + q(bad_tok));
    expect_refused("generate --models " + q(good) + " --prompt hi --max-tokens 2 --tokenizer " + q(bad_tok));

    // ---- training configs and prepared data --------------------------------------
    const std::string bad_data = root + "/bad_data";
    fs::create_directories(bad_data);
    write_text(bad_data + "/meta.json", R"({"format": "bimamba-tokens", "splits": {"train": {"shards": ["../x"]}}})");
    for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
             {"garbage.json", garbage(500, 6)},
             {"garbage.toml", "steps = [[[\n" + garbage(100, 7)},
             {"wrong_types.json", R"({"data": 5, "steps": "many", "model": {"preset": []}})"},
             {"huge_batch.json", R"({"data": ")" + data + R"(", "model": {"preset": "tiny"},
                                     "batch_size": 4294967296, "seq_len": 4294967296, "steps": 1})"},
             {"bad_data.json", R"({"data": ")" + bad_data + R"(", "model": {"preset": "tiny"}, "steps": 1})"}}) {
        const std::string f = root + "/" + name;
        write_text(f, bytes);
        SCOPED_TRACE(name);
        expect_refused("train --config " + q(f) + " --run-dir " + q(root + "/run_" + name) + " --quiet");
    }

    // ---- a run directory written by something else: train --resume, report ------
    const std::string run = root + "/broken_run";
    fs::create_directories(run + "/checkpoints");
    write_text(run + "/train_config.json", garbage(300, 8));
    write_text(run + "/metrics.jsonl", "{\"type\": \"train\", \"step\": 1e300, \"loss\": \n" + garbage(200, 9));
    write_text(run + "/status.json", garbage(100, 10));
    write_text(run + "/checkpoints/latest", "../../../../etc\n");
    expect_refused("train --resume " + q(run) + " --quiet");
    expect_refused("report --out " + q(root + "/r.h5") + " --run " + q(run));
    write_text(root + "/eval_bad.json", garbage(300, 11));
    expect_refused("report --out " + q(root + "/r2.h5") + " --eval " + q(root + "/eval_bad.json"));

    // ---- study files ---------------------------------------------------------------
    const std::string study = root + "/bad_study.toml";
    write_text(study, "[study]\nname = \"x\"\n[[stage]]\nkind = 7\n" + garbage(200, 12));
    expect_refused("study run " + q(study) + " --workspace " + q(root + "/ws"));
    expect_refused("study status " + q(study) + " --workspace " + q(root + "/ws"));

    // ---- multiple-choice task JSONL ----------------------------------------------
    const std::string tasks = std::string(BIMAMBA_SOURCE_DIR) + "/tests/data/eval";
    write_text(root + "/hellaswag_garbage.jsonl", garbage(2000, 13));
    for (const std::string& t :
         {"hellaswag=" + q(tasks + "/corrupt.jsonl"), "piqa=" + q(tasks + "/truncated.jsonl"),
          "hellaswag=" + q(root + "/hellaswag_garbage.jsonl"), "openbookqa=" + q(tasks + "/openbookqa_bad.tsv"),
          "boolq=" + q(tasks + "/boolq_bad.jsonl")}) {
        SCOPED_TRACE(t);
        expect_refused("eval --model " + q(bmd) + " --tasks " + t);
    }
}
