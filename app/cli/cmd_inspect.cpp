// `bimamba inspect FILE|DIR`: config, tensors and parameter shares of a
// checkpoint (grouped as in the paper's Table 1). Reads safetensors headers
// only: the data stays mapped and unread.
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "app/cli/Command.h"
#include "core/base/ModelSource.h"
#include "core/base/RunDir.h"
#include "core/base/StringUtil.h"
#include "core/base/FileUtil.h"
#include "core/base/Mamba2Config.h"
#include "core/base/Safetensors.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::cli;
namespace fs = std::filesystem;

namespace {

const char* kHelp =
    "usage: bimamba inspect FILE|DIR\n"
    "  FILE   a .safetensors file (config.json beside it is shown when present)\n"
    "  DIR    a model folder (model.safetensors or a sharded model.safetensors.index.json),\n"
    "         or a run directory (its checkpoints/latest)\n";

const char* kPickle =
    "pickled .bin checkpoints are not loaded; convert to safetensors (e.g. with transformers' "
    "save_pretrained(safe_serialization=True))";

struct Located {
    fs::path folder;                 // where config.json would be
    std::vector<std::string> files;  // safetensors files
};

Located locate(const fs::path& p) {
    if (!fs::exists(p)) throw std::runtime_error("no such file or folder '" + p.string() + "'");
    if (!fs::is_directory(p)) {
        if (ends_with(p.string(), ".bin") || ends_with(p.string(), ".pt") || ends_with(p.string(), ".pth"))
            throw std::runtime_error("'" + p.string() + "': " + kPickle);
        return {p.parent_path(), {p.string()}};
    }
    if (fs::exists(p / "model.safetensors")) return {p, {(p / "model.safetensors").string()}};
    if (fs::exists(p / "model.safetensors.index.json")) {
        auto index = (p / "model.safetensors.index.json").string();
        std::set<std::string> shards;
        for (auto& [k, v] : base::parse_safetensors_index(read_file(index), index)) shards.insert(v);
        Located l{p, {}};
        for (auto& s : shards) l.files.push_back((p / s).string());
        return l;
    }
    const std::string latest = latest_checkpoint(p.string());
    if (!latest.empty()) return locate(latest);
    for (auto& e : fs::directory_iterator(p))
        if (ends_with(e.path().string(), ".bin")) throw std::runtime_error("'" + p.string() + "': " + kPickle);
    throw std::runtime_error("'" + p.string() +
                             "' has no model.safetensors (nor a sharded index, nor checkpoints/latest)");
}

// Module groups of the paper's Table 1 (plus attention/MLP for LLaMA-type teachers).
std::string group_of(const std::string& n) {
    auto has = [&](const char* s) { return n.find(s) != std::string::npos; };
    if (has("embed") || has("lm_head")) return "embedding";
    if (has("in_proj")) return "in_proj";
    if (has("out_proj")) return "out_proj";
    if (has("conv1d")) return "conv1d";
    if (has("norm")) return "norms";
    if (has("q_proj") || has("k_proj") || has("v_proj") || has("o_proj")) return "attention";
    if (has("gate_proj") || has("up_proj") || has("down_proj")) return "mlp";
    return "other";  // dt_bias, A_log, D, ...
}

std::string with_commas(long long v) {
    std::string s = std::to_string(v), out;
    int n = 0;
    for (auto it = s.rbegin(); it != s.rend(); ++it) {
        if (n && n % 3 == 0 && *it != '-') out.push_back(',');
        out.push_back(*it);
        ++n;
    }
    return {out.rbegin(), out.rend()};
}

std::string human_bytes(double b) {
    const char* u[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1024 && i < 4) b /= 1024, ++i;
    char buf[32];
    std::snprintf(buf, sizeof buf, i ? "%.2f %s" : "%.0f %s", b, u[i]);
    return buf;
}

void print_config(const fs::path& folder) {
    auto cfg_path = folder / "config.json";
    if (!fs::exists(cfg_path)) {
        std::printf("config: (no config.json beside the weights)\n");
        return;
    }
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(cfg_path.string()));
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error("'" + cfg_path.string() + "' is not valid JSON: " + e.what());
    }
    std::string type = j.is_object() && j.contains("model_type") && j["model_type"].is_string()
                           ? j["model_type"].get<std::string>()
                           : "";
    if (type.empty() || type == "mamba2") {
        auto c = Mamba2Config::from_json(j);
        std::printf("config: %s (Mamba-2%s)\n", cfg_path.string().c_str(), type.empty() ? "" : ", HF keys");
        std::printf(
            "  d_model %d  n_layer %d  vocab %d (padded %d)  d_state %d  headdim %d  nheads %d  ngroups %d"
            "  expand %d  d_conv %d  chunk %d\n",
            c.d_model, c.n_layer, c.vocab_size, c.padded_vocab(), c.ssm.d_state, c.ssm.headdim, c.nheads(),
            c.ssm.ngroups, c.ssm.expand, c.ssm.d_conv, c.ssm.chunk_size);
        std::printf("  binarize %s  tie_embeddings %s  parameters (from the config) %s\n",
                    to_string(c.binarize).c_str(), c.tie_embeddings ? "yes" : "no",
                    with_commas(c.num_parameters()).c_str());
    } else {
        std::printf("config: %s (model_type %s)\n  ", cfg_path.string().c_str(), type.c_str());
        for (const char* k :
             {"hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
              "vocab_size", "rope_theta", "dtype", "torch_dtype", "tie_word_embeddings"})
            if (j.contains(k)) std::printf("%s %s  ", k, j[k].dump().c_str());
        std::printf("\n");
    }
}

int run_inspect(const Args& args) {
    Options opt(args, {"help"});
    if (opt.has("help") || opt.positional().size() != 1) {
        std::fputs(kHelp, opt.has("help") ? stdout : stderr);
        return opt.has("help") ? 0 : 2;
    }
    opt.check_known({"help"});
    auto loc = locate(opt.positional()[0]);
    print_config(loc.folder);

    std::map<std::string, long long> groups;
    long long total = 0;
    uintmax_t bytes = 0;
    size_t count = 0;
    for (auto& file : loc.files) {
        if (!fs::exists(file)) throw std::runtime_error("shard '" + file + "' is missing");
        auto f = base::SafetensorsFile::open(file);
        bytes += f->file_size();
        std::printf("\n%s (%s)\n", file.c_str(), human_bytes(double(f->file_size())).c_str());
        for (auto& [k, v] : f->metadata()) std::printf("  metadata %s = %s\n", k.c_str(), v.c_str());
        for (auto& name : f->names()) {
            const auto& t = f->get(name);
            std::string shape = "[";
            for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
            shape += "]";
            std::printf("  %-56s %-5s %s\n", name.c_str(), base::dtype_name(t.dtype).c_str(), shape.c_str());
            groups[group_of(name)] += t.numel();
            total += t.numel();
            ++count;
        }
    }
    std::printf("\nparameters by module (%zu tensors):\n", count);
    for (std::string g : {"embedding", "in_proj", "out_proj", "conv1d", "norms", "attention", "mlp", "other"}) {
        if (!groups.count(g) && (g == "attention" || g == "mlp")) continue;
        long long n = groups.count(g) ? groups[g] : 0;
        std::printf("  %-10s %16s  %6.2f %%\n", g.c_str(), with_commas(n).c_str(),
                    total ? 100.0 * double(n) / double(total) : 0.0);
    }
    std::printf("  %-10s %16s\n", "total", with_commas(total).c_str());
    std::printf("file size: %s (%s bytes)\n", human_bytes(double(bytes)).c_str(),
                with_commas((long long)bytes).c_str());
    return 0;
}

CommandRegistrar reg{"inspect", "print a checkpoint's config, tensors and parameter shares (Table 1 groups)",
                     run_inspect};

}  // namespace
