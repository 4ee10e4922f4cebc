// `bimamba inspect FILE|DIR`: a checkpoint's config, tensors and parameter
// counts by module (as in the paper's Table 1). Plain safetensors reading.
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "app/cli/Command.h"
#include "core/base/FileUtil.h"
#include "core/base/Safetensors.h"

namespace fs = std::filesystem;
using namespace bimamba;

namespace {
std::string module_of(const std::string& name) {
    auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
    if (has("embedding") || has("lm_head") || has("embed_tokens")) return "embedding";
    if (has("in_proj")) return "in_proj";
    if (has("out_proj")) return "out_proj";
    if (has("conv1d")) return "conv1d";
    if (has("norm")) return "norms";
    if (has("dt_bias") || has("A_log") || has(".D")) return "ssm (dt_bias, A_log, D)";
    return "other";
}

int run_inspect(const cli::Args& args) {
    cli::Options opt(args);
    if (opt.positional().size() != 1) {
        std::fprintf(stderr, "usage: bimamba inspect FILE.safetensors|DIR\n");
        return 2;
    }
    fs::path p = opt.positional()[0];
    if (!fs::exists(p)) throw std::runtime_error("no such file or folder: " + p.string());
    std::vector<fs::path> files;
    fs::path dir = fs::is_directory(p) ? p : p.parent_path();
    if (fs::is_directory(p)) {
        for (auto& e : fs::directory_iterator(p))
            if (e.path().extension() == ".safetensors") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        if (files.empty()) throw std::runtime_error("'" + p.string() + "' holds no .safetensors file");
    } else {
        files.push_back(p);
    }
    if (fs::exists(dir / "config.json")) {
        auto j = nlohmann::json::parse(read_file((dir / "config.json").string()), nullptr, false);
        std::printf("config.json:\n%s\n\n", j.is_discarded() ? "(not valid JSON)" : j.dump(2).c_str());
    }
    std::map<std::string, long long> by_module;
    long long total = 0, bytes = 0;
    for (auto& f : files) {
        auto st = st::SafetensorsFile::open(f.string());
        bytes += (long long)st->file_size();
        std::printf("%s (%.2f MB)\n", f.filename().c_str(), st->file_size() / 1e6);
        for (auto& [k, v] : st->metadata()) std::printf("  metadata %s = %s\n", k.c_str(), v.c_str());
        for (auto& name : st->names()) {
            const auto& t = st->get(name);
            std::string shape;
            for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? "×" : "") + std::to_string(t.shape[i]);
            std::printf("  %-58s %-5s %s\n", name.c_str(), st::dtype_name(t.dtype).c_str(), shape.c_str());
            by_module[module_of(name)] += t.numel();
            total += t.numel();
        }
    }
    std::printf("\nparameters by module (%lld total, %.2f MB on disk):\n", total, bytes / 1e6);
    for (auto& [m, n] : by_module) std::printf("  %-26s %14lld  %6.2f %%\n", m.c_str(), n, total ? 100.0 * n / total : 0.0);
    return 0;
}

cli::CommandRegistrar reg{"inspect", "print a checkpoint's config, tensors and parameter counts by module", run_inspect};
}  // namespace
