#include "core/eval/ModelSource.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace bimamba::eval {

namespace fs = std::filesystem;

std::string resolve_checkpoint(const std::string& path) {
    fs::path p(path);
    if (!fs::exists(p)) throw std::runtime_error("model '" + path + "': no such file or folder");
    if (fs::is_regular_file(p)) return p.parent_path().string();
    if (fs::exists(p / "config.json")) return p.string();
    const fs::path latest = p / "checkpoints" / "latest";
    if (fs::exists(latest)) {
        std::ifstream f(latest);
        std::string name;
        std::getline(f, name);
        while (!name.empty() && (name.back() == '\r' || name.back() == ' ')) name.pop_back();
        const fs::path c = fs::path(name).is_absolute() ? fs::path(name) : p / "checkpoints" / name;
        if (!fs::exists(c / "config.json"))
            throw std::runtime_error("model '" + path + "': checkpoints/latest names '" + name + "', which has no config.json");
        return c.string();
    }
    throw std::runtime_error("model '" + path + "': neither a checkpoint folder (config.json) nor a run directory");
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
    if (parent.filename() == "checkpoints") return parent.parent_path().filename().string() + "/" + c.filename().string();
    return c.filename().string();
}

}  // namespace bimamba::eval
