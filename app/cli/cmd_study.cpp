// `bimamba study run FILE --workspace DIR` / `bimamba study status FILE --workspace DIR`:
// carries out a study file (core/study/Study.h) stage by stage. Each stage
// runs as a `bimamba` subprocess with its output in DIR/logs/<stage>.log; a
// finished stage is skipped, an interrupted training stage resumes from its
// checkpoint, so a lost connection costs at most the steps since the last
// checkpoint.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "app/cli/Command.h"
#include "app/cli/StageProgress.h"
#include "core/base/FileUtil.h"
#include "core/study/Study.h"
#include "core/study/Summary.h"

extern char** environ;

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::cli;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* kHelp =
    "usage: bimamba study run FILE --workspace DIR [options]     carry out a study (skips finished stages)\n"
    "       bimamba study status FILE --workspace DIR [options]  list its stages and their state\n"
    "  FILE               study file (TOML; format in docs/studies.md, example studies/paper-small.toml)\n"
    "  --workspace DIR    where runs, results, logs and stage records go\n"
    "  --scale NAME       use the file's [scale.NAME] variables (e.g. tiny: the whole pipeline in CPU minutes)\n"
    "  --set NAME=VALUE   override a [vars] entry (repeatable, or NAME=V,NAME2=V2)\n"
    "  --only LIST        run only these stages (comma-separated), in file order\n"
    "  --until STAGE      stop after this stage\n"
    "  --redo LIST        run these stages again although they finished (their records are cleared;\n"
    "                     a training stage then continues from its run's latest checkpoint, or\n"
    "                     starts afresh after you remove its run folder)\n"
    "  --dry-run          print what would run, run nothing\n"
    "Exit status: 0 every selected stage done, 1 a stage failed or the file is invalid, 130 interrupted\n"
    "(SIGINT/SIGTERM: a running training stage checkpoints first; run again to continue).\n";

volatile std::sig_atomic_t g_interrupted = 0;
void on_signal(int) {
    g_interrupted = 1;
}

std::string self_exe() {
    std::error_code ec;
    auto p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string("bimamba") : p.string();
}

std::string shell_quote(const std::string& s) {
    if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+") ==
                          std::string::npos)
        return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// The newest "train" line of a run's metrics.jsonl (read from the end).
json last_train_row(const std::string& metrics) {
    std::ifstream f(metrics, std::ios::binary | std::ios::ate);
    if (!f) return nullptr;
    const std::streamoff size = f.tellg();
    const std::streamoff from = std::max<std::streamoff>(0, size - 16384);
    f.seekg(from);
    std::string tail((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::istringstream lines(tail);
    std::string line;
    json last = nullptr;
    while (std::getline(lines, line)) {
        if (line.find("\"train\"") == std::string::npos) continue;
        try {
            json j = json::parse(line);
            if (j.value("type", "") == "train") last = j;
        } catch (const json::exception&) {  // a partial first line of the window, or a torn last line
        }
    }
    return last;
}

// A stage's progress line (app/cli/StageProgress.h): for a training stage the
// run's steps, tokens and loss, read from its metrics.jsonl as they arrive.
class StageWatch {
public:
    StageWatch(const std::string& label, const study::Stage& st)
        : st_(st),
          bar_(label, st.kind == "train" ? std::max<int64_t>(1, st.train.value("steps", int64_t(1))) : 1,
               st.kind == "train" ? "steps" : "stage") {
        t0_ = std::chrono::steady_clock::now();
    }
    void update() {
        if (st_.kind != "train") return;
        json row = last_train_row(st_.run_dir + "/metrics.jsonl");
        if (row.is_null()) return;
        bar_.update(row.value("step", int64_t(0)), row.value("tokens", int64_t(-1)), row.value("loss", NAN));
        const double tps = row.value("tok_per_s", 0.0);
        if (tps > 0) {
            char buf[48];
            std::snprintf(buf, sizeof buf, "%.0f tok/s", tps);
            bar_.set_note(buf);
        }
    }
    void finish(const std::string& result) {
        if (result == "done" && st_.kind != "train") bar_.update(1);
        bar_.set_note(result);
        bar_.finish();
    }
    double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

private:
    const study::Stage& st_;
    cli::StageProgress bar_;
    std::chrono::steady_clock::time_point t0_;
};

// Runs `bimamba ARGS` with stdout and stderr appended to `log`; returns the
// exit status (128+signal when killed). A SIGINT/SIGTERM of ours is passed on
// as SIGTERM, which makes a training child checkpoint and stop.
int run_child(const std::vector<std::string>& args, const std::string& log, StageWatch& progress) {
    fs::create_directories(fs::path(log).parent_path());
    {
        std::ofstream l(log, std::ios::app);
        l << "\n$ bimamba";
        for (auto& a : args) l << ' ' << shell_quote(a);
        l << "\n";
    }
    const int fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open log '" + log + "'");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fd, STDERR_FILENO);
    const std::string exe = self_exe();
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fd);
    if (rc != 0) throw std::runtime_error("cannot start '" + exe + "': " + std::strerror(rc));
    bool forwarded = false;
    int status = 0;
    for (;;) {
        const pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
        if (g_interrupted && !forwarded) {
            ::kill(pid, SIGTERM);
            forwarded = true;
        }
        progress.update();
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

std::string tail_of(const std::string& file, int lines) {
    std::ifstream f(file);
    std::vector<std::string> all;
    std::string l;
    while (std::getline(f, l)) all.push_back(l);
    std::string out;
    for (size_t i = all.size() > size_t(lines) ? all.size() - lines : 0; i < all.size(); ++i)
        out += "    " + all[i] + "\n";
    return out;
}

std::set<std::string> name_set(const Options& o, const std::string& key, const study::Study& s) {
    std::set<std::string> out;
    if (!o.has(key)) return out;
    std::stringstream ss(o.get(key));
    std::string n;
    while (std::getline(ss, n, ','))
        if (!n.empty()) {
            if (!s.find(n)) throw std::invalid_argument("--" + key + ": the study has no stage '" + n + "'");
            out.insert(n);
        }
    return out;
}

std::vector<std::pair<std::string, std::string>> parse_sets(const Args& args) {
    std::vector<std::pair<std::string, std::string>> sets;
    for (size_t i = 0; i < args.size(); ++i) {
        std::string v;
        if (args[i] == "--set" && i + 1 < args.size())
            v = args[++i];
        else if (args[i].rfind("--set=", 0) == 0)
            v = args[i].substr(6);
        else
            continue;
        std::stringstream ss(v);
        std::string kv;
        while (std::getline(ss, kv, ',')) {
            const auto eq = kv.find('=');
            if (eq == std::string::npos || eq == 0)
                throw std::invalid_argument("--set expects NAME=VALUE, got '" + kv + "'");
            sets.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        }
    }
    return sets;
}

// What a stage runs: its bimamba arguments (train stages: the config is written first).
std::vector<std::string> stage_args(const study::Study& s, const study::Stage& st, study::StageState state) {
    if (st.kind == "run") return st.args;
    if (state == study::StageState::partial) return {"train", "--resume", st.run_dir, "--quiet"};
    return {"train", "--config", study::stage_config_path(s, st), "--run-dir", st.run_dir, "--quiet"};
}

int run_study(const Args& all) {
    if (all.empty() || all[0] == "--help" || all[0] == "-h" || all[0] == "help") {
        std::printf("%s", kHelp);
        return 0;
    }
    const std::string verb = all[0];
    if (verb != "run" && verb != "status")
        throw std::invalid_argument("unknown study command '" + verb + "' (run or status)\n" + kHelp);
    Args args(all.begin() + 1, all.end());
    Options o(args, {"dry-run", "help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"workspace", "scale", "set", "only", "until", "redo", "dry-run", "help"});
    if (o.positional().size() != 1) throw std::invalid_argument("expected one study FILE\n" + std::string(kHelp));
    study::Study s = study::load_study(o.positional()[0], o.require("workspace"), o.get("scale"), parse_sets(args));
    const auto only = name_set(o, "only", s), redo = name_set(o, "redo", s);
    if (o.has("until") && !s.find(o.get("until")))
        throw std::invalid_argument("--until: the study has no stage '" + o.get("until") + "'");

    if (verb == "status") {
        std::printf("study %s (%s)%s, workspace %s\n", s.name.c_str(), s.file.c_str(),
                    s.scale.empty() ? "" : (", scale " + s.scale).c_str(), s.workspace.c_str());
        for (const auto& st : s.stages)
            std::printf("  %-9s %-22s %-10s %s\n", study::state_name(study::stage_state(s, st)), st.name.c_str(),
                        st.group.c_str(), st.kind == "train" ? st.run_dir.c_str() : st.kind.c_str());
        return 0;
    }

    const bool dry = o.has("dry-run");
    if (!dry) {
        fs::create_directories(s.workspace);
        write_file_atomic(s.workspace + "/study.json", s.to_json().dump(2) + "\n");
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    const auto t0 = std::chrono::steady_clock::now();
    int n = 0, ran = 0;
    const int total = int(s.stages.size());
    for (const auto& st : s.stages) {
        ++n;
        if (!only.empty() && !only.count(st.name)) continue;
        char label_buf[256];
        std::snprintf(label_buf, sizeof label_buf, "[%d/%d] %s", n, total, st.name.c_str());
        const std::string label = label_buf;
        if (redo.count(st.name) && !dry) study::clear_done(s, st);
        auto state = study::stage_state(s, st);
        if (redo.count(st.name) && dry) state = study::StageState::pending;
        if (state == study::StageState::done) {
            std::fprintf(stderr, "%s done before, skipped\n", label.c_str());
        } else if (state == study::StageState::changed) {
            throw std::runtime_error("stage '" + st.name +
                                     "' finished earlier with a different definition (the study file or --scale/--set "
                                     "changed). Its results are kept; run with --redo " +
                                     st.name + " to run it again, or use another --workspace");
        } else if (dry) {
            std::printf("%s (%s)\n  bimamba", label.c_str(), study::state_name(state));
            for (auto& a : stage_args(s, st, state)) std::printf(" %s", shell_quote(a).c_str());
            std::printf("\n");
            if (st.kind == "train") std::printf("  config: %s\n", st.train.dump().c_str());
        } else {
            StageWatch progress(label, st);
            int rc = 0;
            if (st.kind == "summary") {
                try {
                    const std::string md = study::run_summary(st.summary);
                    std::ofstream(study::stage_log_path(s, st)) << md;
                } catch (const std::exception& e) {
                    progress.finish("FAILED");
                    throw std::runtime_error("stage '" + st.name + "': " + e.what());
                }
            } else {
                if (st.kind == "train") {
                    fs::create_directories(fs::path(study::stage_config_path(s, st)).parent_path());
                    write_file_atomic(study::stage_config_path(s, st), st.train.dump(2) + "\n");
                }
                for (const auto& f : st.outputs)  // a stage's output folders exist before it runs
                    if (fs::path(f).has_parent_path()) fs::create_directories(fs::path(f).parent_path());
                rc = run_child(stage_args(s, st, state), study::stage_log_path(s, st), progress);
            }
            std::string why;
            if (rc == 0 && st.kind == "train") {
                json status;
                try {
                    status = json::parse(read_file(st.run_dir + "/status.json"));
                } catch (const std::exception& e) {
                    why = std::string("no readable status.json: ") + e.what();
                }
                if (why.empty() && status.value("state", "") != "finished") {
                    if (g_interrupted || status.value("state", "") == "stopped") {
                        progress.finish("interrupted (checkpointed)");
                        std::fprintf(stderr, "study interrupted: run the same command again to continue\n");
                        return 130;
                    }
                    why = "run state '" + status.value("state", std::string("?")) + "': " + status.value("message", "");
                }
            }
            if (rc == 0 && st.kind == "run")
                for (const auto& f : st.outputs)
                    if (!fs::exists(f)) why = "it exited 0 but did not write " + f;
            if (g_interrupted) {
                progress.finish("interrupted");
                std::fprintf(stderr, "study interrupted: run the same command again to continue\n");
                return 130;
            }
            if (rc != 0 || !why.empty()) {
                progress.finish("FAILED");
                throw std::runtime_error("stage '" + st.name + "' failed (" +
                                         (rc ? "exit status " + std::to_string(rc) : why) + "); last lines of " +
                                         study::stage_log_path(s, st) + ":\n" +
                                         tail_of(study::stage_log_path(s, st), 12));
            }
            study::mark_done(s, st, progress.elapsed());
            progress.finish("done");
            ++ran;
        }
        if (o.has("until") && st.name == o.get("until")) break;
    }
    if (!dry)
        std::fprintf(
            stderr, "study %s: %d stage(s) run, all selected stages done (%s); workspace %s\n", s.name.c_str(), ran,
            cli::StageProgress::clock(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count())
                .c_str(),
            s.workspace.c_str());
    return 0;
}

CommandRegistrar reg{"study", "carry out a study file: every stage of an experiment, resumable (run, status)",
                     run_study};

}  // namespace
