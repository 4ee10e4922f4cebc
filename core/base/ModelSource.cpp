#include "core/base/ModelSource.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/base/RunDir.h"
#include "core/base/Safetensors.h"

namespace bimamba::base {

namespace fs = std::filesystem;

bool is_deploy_file(const std::string& path) {
    if (!fs::is_regular_file(path)) return false;
    if (fs::path(path).extension() == ".bmd") return true;
    try {
        const auto& md = SafetensorsFile::open(path)->metadata();
        auto it = md.find("format");
        return it != md.end() && it->second == kDeployFileFormat;
    } catch (const std::exception&) {
        return false;  // not a safetensors file at all
    }
}

ModelSource resolve_model(const std::string& path, bool deploy_ok) {
    const fs::path p(path);
    if (!fs::exists(p)) throw std::runtime_error("model '" + path + "': no such file or folder");
    if (fs::is_regular_file(p)) {
        if (is_deploy_file(path)) {
            if (!deploy_ok)
                throw std::runtime_error(
                    "model '" + path +
                    "' is a deployment file; this command takes a checkpoint folder or a run directory");
            return {ModelSource::Kind::DeployFile, path};
        }
        const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
        if (!fs::exists(dir / "config.json"))
            throw std::runtime_error("model '" + path +
                                     "': a file with no config.json beside it (expected a checkpoint "
                                     "folder, a run directory" +
                                     std::string(deploy_ok ? " or a deployment file)" : ")"));
        return {ModelSource::Kind::Checkpoint, dir.string()};
    }
    if (fs::exists(p / "config.json")) return {ModelSource::Kind::Checkpoint, path};
    if (fs::exists(p / run_files::kCheckpoints)) {
        const std::string c = latest_checkpoint(path);
        if (c.empty())
            throw std::runtime_error("model '" + path + "': a run directory without a complete checkpoint yet");
        if (!fs::exists(fs::path(c) / "config.json"))
            throw std::runtime_error("model '" + path + "': its latest checkpoint '" + c + "' has no config.json");
        return {ModelSource::Kind::Checkpoint, c};
    }
    throw std::runtime_error("model '" + path + "': neither a checkpoint folder (config.json) nor a run directory" +
                             std::string(deploy_ok ? " nor a deployment file" : ""));
}

std::string resolve_checkpoint(const std::string& path) {
    return resolve_model(path, false).path;
}

std::string find_tokenizer(const std::string& checkpoint) {
    fs::path c = fs::absolute(checkpoint);
    if (fs::exists(c / "tokenizer.model")) return (c / "tokenizer.model").string();
    for (fs::path p = c; p.has_parent_path() && p != p.parent_path(); p = p.parent_path()) {
        const fs::path tc = p / "train_config.json";
        if (fs::exists(tc)) {
            try {
                std::ifstream f(tc);
                auto j = nlohmann::json::parse(f);
                if (j.contains("data") && j["data"].is_string()) {
                    fs::path d = j["data"].get<std::string>();
                    if (d.is_relative() && !fs::exists(d / "tokenizer.model")) d = p / d;
                    if (fs::exists(d / "tokenizer.model")) return (d / "tokenizer.model").string();
                }
            } catch (const nlohmann::json::exception&) {
                // a damaged train_config.json: keep looking upwards
            }
        }
        if (fs::exists(p / "tokenizer.model")) return (p / "tokenizer.model").string();
    }
    return "";
}

std::string model_label(const std::string& checkpoint) {
    fs::path c = fs::path(checkpoint).lexically_normal();
    if (c.filename().empty()) c = c.parent_path();
    const fs::path parent = c.parent_path();
    if (parent.filename() == run_files::kCheckpoints)
        return parent.parent_path().filename().string() + "/" + c.filename().string();
    return c.filename().string();
}

}  // namespace bimamba::base
