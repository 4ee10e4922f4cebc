#include "core/base/RemoteOps.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "core/base/RunDir.h"

namespace bimamba::base {

namespace {

// A folder on the target as an absolute path (relative: to the home
// folder), made first when `create`; args {dir}.
const char* kResolveDir = R"SH(cd || exit 1
if [ "$2" = create ]; then mkdir -p -- "$1" || exit 1; fi
cd -- "$1" 2>/dev/null || { echo "the folder $1 does not exist there" >&2; exit 2; }
pwd -P)SH";

// The last non-empty line: what our scripts print comes last, after anything
// a login shell's start-up files may print first.
std::string last_line(const std::string& s) {
    std::string last;
    size_t pos = 0;
    while (pos <= s.size()) {
        size_t nl = s.find('\n', pos);
        if (nl == std::string::npos) nl = s.size();
        std::string l = s.substr(pos, nl - pos);
        while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
        if (!l.empty()) last = l;
        pos = nl + 1;
    }
    return last;
}

// The name of a synced data folder on the target: its own name and a tag
// of its absolute path here, so that the same folder always goes to the same
// copy (rsync sends only what changed) and two folders of the same name
// never overwrite each other's copy.
std::string synced_name(const std::string& local) {
    const auto abs = std::filesystem::absolute(local).lexically_normal();
    std::string p = abs.string();
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    uint64_t x = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : p) x = (x ^ c) * 1099511628211ull;
    char tag[9];
    std::snprintf(tag, sizeof tag, "%08llx", static_cast<unsigned long long>(x & 0xffffffffull));
    std::string base = std::filesystem::path(p).filename().string();
    if (base.empty()) base = "data";
    return base + "-" + tag;
}

std::vector<std::string> train_args(const RemoteRun& r, bool resume) {
    if (resume) return {"--resume", r.remote_dir};
    return {"--config", r.remote_dir + "/" + run_files::kLaunchConfig, "--run-dir", r.remote_dir};
}

}  // namespace

RemoteOperation RemoteOperation::launch(const Host& h, const std::string& name, const nlohmann::json& config,
                                        bool sync_data) {
    if (h.kind == HostKind::Local) throw std::invalid_argument("host 'local' runs are started by `bimamba train`");
    for (const auto& p : host_problems(h)) throw std::invalid_argument(p);
    if (!config.is_object()) throw std::invalid_argument("the train config must be a JSON object");
    RemoteOperation op(h);
    op.name_ = name;
    op.config_ = config;
    op.run_.host = h.name;
    op.run_.kind = host_kind_name(h.kind);
    op.run_.launched = RunDir::iso8601_now();
    const std::string data = config.value("data", std::string());
    op.stages_.push_back(Stage::PrepareDir);
    if (sync_data) {
        if (data.empty()) throw std::invalid_argument("--sync-data: the config names no 'data' folder");
        std::error_code ec;
        if (!std::filesystem::is_directory(data, ec))
            throw std::invalid_argument("--sync-data: the data folder '" + data + "' does not exist here");
        op.local_data_ = data;
        op.stages_.insert(op.stages_.end(), {Stage::MakeDataDir, Stage::SyncData});
    } else if (!data.empty()) {
        op.remote_data_ = data;
        op.stages_.push_back(Stage::ResolveData);
    }
    op.stages_.push_back(Stage::WriteConfig);
    if (h.kind == HostKind::Slurm)
        op.stages_.insert(op.stages_.end(), {Stage::WriteSbatch, Stage::Submit});
    else
        op.stages_.push_back(Stage::Start);
    return op;
}

RemoteOperation RemoteOperation::resume(const Host& h, const RemoteRun& r) {
    RemoteOperation op(h);
    op.run_ = r;
    op.resume_ = true;
    op.name_ = std::filesystem::path(r.remote_dir).filename().string();
    op.run_.launched = RunDir::iso8601_now();
    if (h.kind == HostKind::Slurm)
        op.stages_ = {Stage::CheckCheckpoint, Stage::WriteSbatch, Stage::Submit};
    else
        op.stages_ = {Stage::CheckCheckpoint, Stage::Start};
    return op;
}

RemoteOperation RemoteOperation::stop(const Host& h, const RemoteRun& r) {
    RemoteOperation op(h);
    op.run_ = r;
    op.stages_ = {Stage::Stop};
    return op;
}

RemoteOperation RemoteOperation::fetch(const Host& h, const RemoteRun& r, const std::string& mirror_dir) {
    RemoteOperation op(h);
    op.run_ = r;
    op.mirror_ = mirror_dir;
    op.stages_ = {Stage::Fetch};
    return op;
}

RemoteStep RemoteOperation::next() const {
    if (done()) throw std::logic_error("RemoteOperation::next: no step left");
    const Host& h = host_;
    const std::string& dir = run_.remote_dir;
    switch (stages_[stage_]) {
        case Stage::CheckCheckpoint:
            return {"find a checkpoint to resume from",
                    target_script(h, R"SH(cd -- "$1" || exit 1
[ -s checkpoints/latest ] || { echo "$PWD has no checkpoint (checkpoints/latest) to resume from" >&2; exit 2; })SH",
                                  {dir}),
                    ""};
        case Stage::PrepareDir:
            return {"create the run folder " + remote_run_path(h, name_),
                    target_script(h, prepare_dir_script(), {remote_run_path(h, name_)}), ""};
        case Stage::ResolveData:
            return {"find the data folder " + remote_data_ + " there",
                    target_script(h, kResolveDir, {remote_data_, ""}), ""};
        case Stage::MakeDataDir: {
            std::string w = remote_run_path(h, "x");
            w = w.substr(0, w.size() - std::string("runs/x").size()) + "data";
            return {"create the data folder " + w, target_script(h, kResolveDir, {w, "create"}), ""};
        }
        case Stage::SyncData: {
            const std::string base = synced_name(local_data_);
            return {"copy " + local_data_ + " (rsync)",
                    rsync_argv(h, local_data_ + "/", "remote:" + remote_data_ + "/" + base + "/", {"--delete"}), ""};
        }
        case Stage::WriteConfig:
            return {"write the config", target_script(h, write_file_script(), {dir + "/" + run_files::kLaunchConfig}),
                    config_.dump(2) + "\n"};
        case Stage::WriteSbatch:
            return {"write the sbatch script",
                    target_script(h, write_file_script(), {dir + "/" + run_files::kSbatchScript}),
                    sbatch_script(h, name_, train_args(run_, resume_))};
        case Stage::Submit:
            return {"submit the job (sbatch)", target_script(h, submit_script(), {dir}), ""};
        case Stage::Start: {
            std::vector<std::string> args = {dir, h.bimamba, "train"};
            const auto t = train_args(run_, resume_);
            args.insert(args.end(), t.begin(), t.end());
            return {"start bimamba train", target_script(h, start_detached_script(), args), ""};
        }
        case Stage::Stop:
            return {"stop the run", target_script(h, stop_script(h), {h.kind == HostKind::Slurm ? run_.job_id : dir}),
                    ""};
        case Stage::Fetch:
            return {"fetch the run folder (rsync)",
                    rsync_argv(h, "remote:" + dir + "/", mirror_ + "/", {"--exclude", run_files::kRemote}), ""};
    }
    throw std::logic_error("RemoteOperation::next: unknown stage");
}

void RemoteOperation::finish(const ProcessResult& res) {
    const RemoteStep step = next();
    if (res.exit_code != 0) {
        if (is_connection_failure(host_, res.exit_code)) throw std::runtime_error(explain_ssh_failure(host_, res.err));
        std::string err = res.err;
        while (!err.empty() && err.back() == '\n') err.pop_back();
        if (res.exit_code == 127 && err.find("not found") != std::string::npos && step.argv[0] == "rsync")
            err += " (install rsync on both machines)";
        throw std::runtime_error("host '" + host_.name + "': could not " + step.what + " (exit status " +
                                 std::to_string(res.exit_code) + ")" + (err.empty() ? "" : ": " + err));
    }
    const std::string out = last_line(res.out);
    switch (stages_[stage_]) {
        case Stage::PrepareDir:
            if (out.empty() || out[0] != '/')
                throw std::runtime_error("host '" + host_.name + "': could not " + step.what + " (no path came back)");
            run_.remote_dir = out;
            break;
        case Stage::ResolveData:
            remote_data_ = out;
            config_["data"] = out;
            break;
        case Stage::MakeDataDir:
            remote_data_ = out;
            break;
        case Stage::SyncData:
            remote_data_ += "/" + synced_name(local_data_);
            config_["data"] = remote_data_;
            break;
        case Stage::Submit:
            run_.job_id = parse_sbatch_job_id(res.out);
            break;
        case Stage::Start:
            try {
                run_.pid = std::stoll(out);
            } catch (const std::exception&) {
                throw std::runtime_error("host '" + host_.name + "': the launcher printed no pid ('" + res.out + "')");
            }
            break;
        default:
            break;
    }
    ++stage_;
}

void RemoteOperation::run_all(void (*progress)(const std::string&)) {
    while (!done()) {
        const RemoteStep s = next();
        if (progress) progress(s.what);
        finish(run_process(s.argv, s.input));
    }
}

}  // namespace bimamba::base
