#pragma once
// safetensors reader/writer in plain C++ (no LibTorch), used by checkpoints,
// imported Hugging Face models and the bit-packed deployment files.
//
// Format: u64 little-endian header length N, then N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"k": "v"}}, then the data section. The reader checks the
// format's rules: header within the file, offsets contiguous from 0 without
// gaps or overlaps and covering the whole data section, byte length equal to
// shape × dtype size, no duplicate names, known dtypes. Files are mmap'ed.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bimamba::base {

enum class DType { BOOL, U8, I8, U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64 };
size_t dtype_size(DType d);
std::string dtype_name(DType d);                 // "F32", "BF16", ...
DType dtype_from_name(const std::string& name);  // throws SafetensorsError

struct SafetensorsError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct TensorView {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;  // points into the mapping
    size_t nbytes = 0;
    int64_t numel() const;
};

class SafetensorsFile {
public:
    // Opens and validates; throws SafetensorsError naming the file and the problem.
    static std::shared_ptr<SafetensorsFile> open(const std::string& path);
    ~SafetensorsFile();
    const std::string& path() const { return path_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    std::vector<std::string> names() const;  // in data-offset order
    bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
    const TensorView& get(const std::string& name) const;  // throws if absent
    size_t file_size() const { return size_; }

private:
    SafetensorsFile() = default;
    std::string path_;
    void* map_ = nullptr;
    size_t size_ = 0;
    std::map<std::string, TensorView> tensors_;
    std::map<std::string, std::string> metadata_;
};

class SafetensorsWriter {
public:
    // Copies nothing: `data` must stay valid until write() returns.
    void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data, size_t nbytes);
    void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
    // Writes atomically: temporary file in the same folder, fsync, rename.
    void write(const std::string& path) const;

private:
    struct Entry {
        std::string name;
        DType dtype;
        std::vector<int64_t> shape;
        const void* data;
        size_t nbytes;
    };
    std::vector<Entry> entries_;
    std::map<std::string, std::string> metadata_;
};

// The weight_map of a sharded model's `model.safetensors.index.json` (Hugging
// Face layout: {"metadata": {...}, "weight_map": {"tensor": "shard file"}}):
// tensor name -> shard file name. `text` is the file's content, `index_path`
// names it in errors. Throws SafetensorsError for invalid JSON, a missing or
// non-object weight_map, and a shard that is not a plain file name in the
// index's folder (empty, ".", "..", a '/' or '\\', a NUL byte, or a name not
// ending in ".safetensors").
std::map<std::string, std::string> parse_safetensors_index(const std::string& text, const std::string& index_path);

// Float conversions shared by loaders and the CPU engine.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);  // round to nearest even

}  // namespace bimamba::base
