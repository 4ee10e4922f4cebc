#pragma once
// A run's lineage: a student whose `init_from` is a checkpoint of another run
// (a teacher trained here) continues that run's history, so its tokens count
// from where the parent's checkpoint stood ("tokens since the start of the
// lineage" in the workbench's plots). Plain C++, no LibTorch.
#include <string>
#include <vector>

namespace bimamba::base {

struct LineageLink {
    std::string run_dir;     // the parent run's folder
    std::string checkpoint;  // the checkpoint the child started from ("" = the parent's end)
    double tokens = 0;       // the parent's own tokens at that checkpoint
};

// The run folder and checkpoint a run's `init_from` names, when it is one of
// our runs: a run folder (its latest checkpoint), or
// <run>/checkpoints/step_N. A relative path is tried against the run folder
// and the folders above it; a path that no longer exists (a workspace copied
// elsewhere) is matched by name to a sibling of `run_dir` (…/<name>/checkpoints/step_N).
// False when init_from is empty or not a run of ours.
bool init_from_parent(const std::string& run_dir, LineageLink* link);

// The ancestors of `run_dir`, nearest first (at most 32; a cycle stops it).
std::vector<LineageLink> run_lineage(const std::string& run_dir);

// The tokens before this run's own first one: the sum of its ancestors'
// tokens at the checkpoints each child started from; 0 for a run started
// from scratch or from a model that is not a run of ours.
double lineage_token_offset(const std::string& run_dir);

}  // namespace bimamba::base
