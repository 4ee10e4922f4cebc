#pragma once
// A study as a file: every stage of an experiment (corpus preparation,
// training runs, baselines, evaluations, reports, a summary) in one TOML file
// that `bimamba study run FILE --workspace DIR` carries out, and that the GUI
// reads to group a workspace's runs by stage. Torch-free: the CLI runs the
// stages as `bimamba` subprocesses, the GUI only reads.
//
// File layout (studies/paper-small.toml is the worked example):
//   [study]   name, description
//   [vars]    NAME = value ...            used as ${NAME} in any string below
//   [scale.S] NAME = value ...            `--scale S` overrides [vars] (e.g. a CPU-sized run)
//   [[stage]] name, group (optional), needs (optional), and exactly one of:
//     train = { ...train config... }      a `bimamba train` run in DIR/runs/<name>
//     run = ["subcommand", "arg", ...]    any other `bimamba` command; `outputs` lists
//                                         the files it writes (all must exist afterwards)
//     summary = { ... }                   the built-in study summary (core/study/Summary.h)
// Built-in variables: ${ws} (the workspace, absolute), ${study_dir} (the study
// file's folder, absolute), ${scale} (the scale name, "" by default). A string
// that is exactly "${NAME}" takes the variable's type (a number stays a number).
//
// Workspace layout: DIR/study.json (the resolved study as last run), DIR/runs/,
// DIR/configs/<stage>.json, DIR/logs/<stage>.log, DIR/stages/<stage>.json (a
// stage's completion record: fingerprint of its resolved definition, seconds).
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace bimamba::study {

struct Stage {
    std::string name;
    std::string group;                 // e.g. "teacher", "students", "baselines", "evaluation"
    std::string kind;                  // "train" | "run" | "summary"
    nlohmann::json train;              // kind train: the training config (resolved)
    std::vector<std::string> args;     // kind run: the bimamba subcommand and its arguments
    std::vector<std::string> outputs;  // kind run: files that must exist when it is done
    nlohmann::json summary;            // kind summary: its settings
    std::string run_dir;               // kind train: <workspace>/runs/<name>

    // Hash of the resolved definition: a stage whose definition changed after
    // it finished is not silently reused (see StageState::changed).
    std::string fingerprint() const;
    nlohmann::json to_json() const;
};

struct Study {
    std::string name, description;
    std::string file;       // the study file, absolute
    std::string workspace;  // absolute
    std::string scale;
    nlohmann::json vars;  // after scale and --set overrides
    std::vector<Stage> stages;

    const Stage* find(const std::string& stage_name) const;
    nlohmann::json to_json() const;
};

// Reads and resolves a study file. `sets` are NAME=VALUE overrides (--set),
// applied after [scale.S]; a value that parses as a JSON number or boolean
// keeps that type. Throws std::invalid_argument naming the file and, where it
// applies, the stage and the field (an unknown ${var}, a stage with no or two
// kinds, a duplicate stage name, an unknown scale).
Study load_study(const std::string& file, const std::string& workspace, const std::string& scale = "",
                 const std::vector<std::pair<std::string, std::string>>& sets = {});
Study parse_study(const std::string& text, const std::string& source, const std::string& workspace,
                  const std::string& scale = "", const std::vector<std::pair<std::string, std::string>>& sets = {});

enum class StageState {
    pending,  // never started
    partial,  // started, not finished (a train stage resumes from its checkpoint)
    done,     // finished with the same definition
    changed,  // finished, but its definition has changed since
};
const char* state_name(StageState s);

StageState stage_state(const Study& s, const Stage& st);
// Writes DIR/stages/<name>.json (atomically) after a stage succeeded.
void mark_done(const Study& s, const Stage& st, double seconds);
// Removes a stage's completion record (and nothing else): `--redo`.
void clear_done(const Study& s, const Stage& st);

// For readers of a workspace (the GUI): the group of the study stage that
// trains into `run_dir`, from <workspace>/study.json; "" when the workspace
// holds no study or no stage trains there.
std::string study_group_of_run(const std::string& workspace, const std::string& run_dir);

std::string stage_log_path(const Study& s, const Stage& st);
std::string stage_config_path(const Study& s, const Stage& st);

}  // namespace bimamba::study
