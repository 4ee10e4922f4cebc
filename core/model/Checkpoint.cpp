#include "core/model/Checkpoint.h"

#include <filesystem>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/base/FileUtil.h"
#include "core/base/ModelSource.h"
#include "core/base/RunDir.h"
#include "core/base/StringUtil.h"
#include "core/base/Safetensors.h"

namespace bimamba::model {

using base::Mamba2Config;
using base::ends_with;
using base::fsync_dir;
using base::latest_checkpoint;
using base::read_file;
using base::write_file_atomic;

namespace fs = std::filesystem;

namespace {
base::DType to_st(torch::ScalarType t) {
    switch (t) {
        case torch::kFloat32:
            return base::DType::F32;
        case torch::kFloat16:
            return base::DType::F16;
        case torch::kBFloat16:
            return base::DType::BF16;
        case torch::kFloat64:
            return base::DType::F64;
        case torch::kInt64:
            return base::DType::I64;
        case torch::kInt32:
            return base::DType::I32;
        case torch::kInt16:
            return base::DType::I16;
        case torch::kInt8:
            return base::DType::I8;
        case torch::kUInt8:
            return base::DType::U8;
        case torch::kBool:
            return base::DType::BOOL;
        default:
            throw std::runtime_error(std::string("cannot store dtype ") + c10::toString(t) + " in safetensors");
    }
}

torch::ScalarType from_st(base::DType d, const std::string& name) {
    switch (d) {
        case base::DType::F32:
            return torch::kFloat32;
        case base::DType::F16:
            return torch::kFloat16;
        case base::DType::BF16:
            return torch::kBFloat16;
        case base::DType::F64:
            return torch::kFloat64;
        case base::DType::I64:
            return torch::kInt64;
        case base::DType::I32:
            return torch::kInt32;
        case base::DType::I16:
            return torch::kInt16;
        case base::DType::I8:
            return torch::kInt8;
        case base::DType::U8:
            return torch::kUInt8;
        case base::DType::BOOL:
            return torch::kBool;
        default:
            throw std::runtime_error("tensor '" + name + "': dtype " + base::dtype_name(d) + " is not supported");
    }
}

[[noreturn]] void refuse_pickle(const std::string& where) {
    // Unpickling can run arbitrary code, and LibTorch cannot read Python pickles anyway.
    throw std::runtime_error("'" + where +
                             "': pickled .bin checkpoints are not loaded; convert to safetensors (e.g. with "
                             "transformers' save_pretrained(safe_serialization=True))");
}

}  // namespace

void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata) {
    base::SafetensorsWriter w;
    std::vector<torch::Tensor> keep;  // contiguous CPU copies alive until write()
    for (auto& [name, t] : tensors) {
        auto c = t.detach().to(torch::kCPU).contiguous();
        keep.push_back(c);
        w.add(name, to_st(c.scalar_type()), c.sizes().vec(), c.data_ptr(), size_t(c.nbytes()));
    }
    for (auto& [k, v] : metadata) w.set_metadata(k, v);
    w.set_metadata("format", "pt");
    w.write(path);
}

std::map<std::string, torch::Tensor> load_tensors(const std::string& path) {
    auto f = base::SafetensorsFile::open(path);
    std::map<std::string, torch::Tensor> out;
    for (auto& name : f->names()) {
        const auto& v = f->get(name);
        auto t = torch::empty(v.shape, torch::TensorOptions().dtype(from_st(v.dtype, name)));
        if (v.nbytes) std::memcpy(t.data_ptr(), v.data, v.nbytes);
        out.emplace(name, std::move(t));
    }
    return out;
}

namespace {
// weight_map of a sharded folder's model.safetensors.index.json: tensor -> shard file.
std::map<std::string, std::string> read_shard_index(const std::string& index) {
    return base::parse_safetensors_index(read_file(index), index);
}
}  // namespace

std::vector<std::string> tensor_files(const std::string& path_or_dir) {
    fs::path p(path_or_dir);
    if (!fs::exists(p)) throw std::runtime_error("no checkpoint at '" + path_or_dir + "'");
    if (!fs::is_directory(p)) {
        if (ends_with(p.string(), ".bin") || ends_with(p.string(), ".pt") || ends_with(p.string(), ".pth"))
            refuse_pickle(p.string());
        return {p.string()};
    }
    if (fs::exists(p / "model.safetensors")) return {(p / "model.safetensors").string()};
    auto index = p / "model.safetensors.index.json";
    if (fs::exists(index)) {
        std::set<std::string> shards;
        for (auto& [name, file] : read_shard_index(index.string())) shards.insert(file);
        std::vector<std::string> out;
        for (auto& s : shards) {
            if (s.find('/') != std::string::npos || s.find("..") != std::string::npos)
                throw std::runtime_error("'" + index.string() + "' names a shard outside the folder: " + s);
            if (!fs::exists(p / s)) throw std::runtime_error("'" + index.string() + "' names a missing shard " + s);
            out.push_back((p / s).string());
        }
        return out;
    }
    for (auto& e : fs::directory_iterator(p))
        if (ends_with(e.path().string(), ".bin") || ends_with(e.path().string(), ".pt")) refuse_pickle(p.string());
    // Run directories: use the newest checkpoint.
    const std::string latest = latest_checkpoint(p.string());
    if (!latest.empty()) return tensor_files(latest);
    throw std::runtime_error("'" + path_or_dir + "' has no model.safetensors (nor a sharded index)");
}

std::map<std::string, torch::Tensor> load_tensors_any(const std::string& path_or_dir) {
    const auto files = tensor_files(path_or_dir);
    const fs::path dir(path_or_dir);
    const auto index = (dir / "model.safetensors.index.json").string();
    const bool sharded = fs::is_directory(dir) && !fs::exists(dir / "model.safetensors") && fs::exists(index);
    if (!sharded) return load_tensors(files.at(0));
    std::map<std::string, torch::Tensor> out;
    for (auto& f : files)
        for (auto& [k, v] : load_tensors(f))
            if (!out.emplace(k, v).second)
                throw std::runtime_error("tensor '" + k + "' appears in more than one shard of '" + path_or_dir + "'");
    // Every tensor the index lists must be in its shard.
    for (auto& [name, file] : read_shard_index(index))
        if (!out.count(name))
            throw std::runtime_error("tensor '" + name + "' listed in the index is missing from " + file);
    return out;
}

namespace {
// The folder holding config.json for a path (folder, file in it, or run dir).
fs::path model_folder(const std::string& path_or_dir) {
    fs::path p(path_or_dir);
    if (!fs::exists(p)) throw std::runtime_error("no checkpoint at '" + path_or_dir + "'");
    if (!fs::is_directory(p)) return p.parent_path();
    if (!fs::exists(p / "config.json")) {
        const std::string latest = latest_checkpoint(p.string());  // a run directory
        if (!latest.empty()) return latest;
    }
    return p;
}
}  // namespace

Mamba2Config load_model_config(const std::string& path_or_dir) {
    auto dir = model_folder(path_or_dir);
    auto cfg_path = dir / "config.json";
    if (!fs::exists(cfg_path))
        throw std::runtime_error("no config.json beside the checkpoint in '" + dir.string() + "'");
    return Mamba2Config::load(cfg_path.string());
}

void save_model(const Mamba2LM& model, const std::string& dir) {
    fs::create_directories(dir);
    write_file_atomic((fs::path(dir) / "config.json").string(), model->config().to_json().dump(2) + "\n");
    save_tensors((fs::path(dir) / "model.safetensors").string(), model->named_tensors(),
                 {{"binarize", to_string(model->config().binarize)}});
    fsync_dir(dir);
}

Mamba2LM load_model(const std::string& path_or_dir, torch::Device device) {
    auto dir = model_folder(path_or_dir);
    auto cfg = load_model_config(dir.string());
    auto tensors = load_tensors_any(fs::is_directory(path_or_dir) ? dir.string() : path_or_dir);
    // A config.json that does not belong to these weights (hand-edited, or
    // hostile) could describe a model of billions of parameters: refuse it
    // before allocating and initialising that model (which would take minutes
    // or exhaust memory only to fail on the first missing tensor). Loadable
    // checkpoints hold every parameter in full precision.
    long long values = 0;
    for (const auto& [name, t] : tensors) values += t.numel();
    if (cfg.num_parameters() > 2 * values + (1 << 16))
        throw std::runtime_error("config.json in '" + dir.string() + "' describes a model of " +
                                 std::to_string(cfg.num_parameters()) + " parameters, but the checkpoint holds only " +
                                 std::to_string(values) + " values: the config does not belong to these weights");
    Mamba2LM model(cfg);
    model->load_tensors(tensors);
    model->to(device);
    model->eval();
    return model;
}

}  // namespace bimamba::model
