#include "core/base/Safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/base/FileUtil.h"
#include "kernels/cpu/Half.h"

namespace bimamba::base {

namespace {
struct DTypeInfo {
    DType d;
    const char* name;
    size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},   {DType::I8, "I8", 1},     {DType::U16, "U16", 2},
    {DType::I16, "I16", 2},   {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2}, {DType::U32, "U32", 4},
    {DType::I32, "I32", 4},   {DType::F32, "F32", 4}, {DType::U64, "U64", 8},   {DType::I64, "I64", 8},
    {DType::F64, "F64", 8},
};
constexpr uint64_t kMaxHeader = 100ull << 20;  // 100 MB, as the reference implementation
}  // namespace

size_t dtype_size(DType d) {
    for (auto& i : kDTypes)
        if (i.d == d) return i.size;
    return 0;
}

std::string dtype_name(DType d) {
    for (auto& i : kDTypes)
        if (i.d == d) return i.name;
    return "?";
}

DType dtype_from_name(const std::string& name) {
    for (auto& i : kDTypes)
        if (name == i.name) return i.d;
    throw SafetensorsError("unknown dtype '" + name + "'");
}

int64_t TensorView::numel() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    auto fail = [&](const std::string& what) -> void {
        throw SafetensorsError("safetensors file '" + path + "': " + what);
    };
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) fail(std::string("cannot open (") + std::strerror(errno) + ")");
    struct stat sb {};
    if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ::close(fd);
        fail("not a regular file");
    }
    std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->path_ = path;
    f->size_ = size_t(sb.st_size);
    if (f->size_ < 8) {
        ::close(fd);
        fail("file is " + std::to_string(f->size_) + " bytes, too short for the 8-byte header length");
    }
    void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (m == MAP_FAILED) fail("mmap failed");
    f->map_ = m;
    const auto* bytes = static_cast<const uint8_t*>(m);
    uint64_t n = 0;
    std::memcpy(&n, bytes, 8);  // little-endian host assumed (x86-64, arm64)
    if (n > kMaxHeader) fail("header length " + std::to_string(n) + " is larger than the 100 MB limit");
    if (n > f->size_ - 8)
        fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(f->size_) +
             " bytes): truncated?");
    // nlohmann keeps the last of duplicate keys silently; the callback sees
    // every top-level key so duplicates can be refused.
    std::set<std::string> seen;
    std::string duplicate;
    auto on_event = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
        if (ev == nlohmann::json::parse_event_t::key && depth == 1) {
            auto k = parsed.get<std::string>();
            if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
        }
        return true;
    };
    nlohmann::json h;
    try {
        h = nlohmann::json::parse(bytes + 8, bytes + 8 + n, on_event);
    } catch (const nlohmann::json::exception& e) {
        fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (!h.is_object()) fail("header is not a JSON object");
    if (!duplicate.empty()) fail("duplicate tensor name '" + duplicate + "' in the header");
    const uint64_t data_size = f->size_ - 8 - n;
    const uint8_t* data = bytes + 8 + n;

    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (auto& [name, e] : h.items()) {
        if (name == "__metadata__") {
            if (!e.is_object()) fail("__metadata__ is not an object");
            for (auto& [k, v] : e.items()) {
                if (!v.is_string()) fail("__metadata__ value of '" + k + "' is not a string");
                f->metadata_[k] = v.get<std::string>();
            }
            continue;
        }
        if (!e.is_object()) fail("entry '" + name + "' is not an object");
        if (!e.contains("dtype") || !e["dtype"].is_string()) fail("tensor '" + name + "' has no dtype");
        if (!e.contains("shape") || !e["shape"].is_array()) fail("tensor '" + name + "' has no shape");
        if (!e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2)
            fail("tensor '" + name + "' has no data_offsets [begin, end]");
        TensorView t;
        t.name = name;
        try {
            t.dtype = dtype_from_name(e["dtype"].get<std::string>());
        } catch (const SafetensorsError&) {
            fail("tensor '" + name + "' has unknown dtype '" + e["dtype"].get<std::string>() + "'");
        }
        // Dimensions are int64 in TensorView (and LibTorch), and numel()
        // multiplies them in order: the product of the non-zero dimensions
        // stays within int64, so no prefix of it overflows, even before a 0
        // (found with tests/fuzz/fuzz_safetensors: [2^32, 2^31, 0]).
        uint64_t numel = 1, nonzero = 1;
        constexpr uint64_t kMaxDim = uint64_t(std::numeric_limits<int64_t>::max());
        for (auto& d : e["shape"]) {
            if (!d.is_number_unsigned()) fail("tensor '" + name + "' has a negative or non-integer dimension");
            uint64_t v = d.get<uint64_t>();
            if (v != 0 && nonzero > kMaxDim / v) fail("tensor '" + name + "' shape overflows");
            if (v != 0) nonzero *= v;
            numel *= v;
            t.shape.push_back(int64_t(v));
        }
        auto& off = e["data_offsets"];
        if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            fail("tensor '" + name + "' has non-integer data_offsets");
        uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
        if (b > en) fail("tensor '" + name + "' has data_offsets with begin > end");
        if (en > data_size)
            fail("tensor '" + name + "' ends at byte " + std::to_string(en) + " past the data section (" +
                 std::to_string(data_size) + " bytes): truncated?");
        size_t es = dtype_size(t.dtype);
        if (numel > std::numeric_limits<uint64_t>::max() / es || numel * es != en - b)
            fail("tensor '" + name + "' has " + std::to_string(en - b) + " bytes but its shape and dtype need " +
                 std::to_string(numel * es));
        t.data = data + b;
        t.nbytes = size_t(en - b);
        ranges.emplace_back(b, en);
        f->tensors_.emplace(name, std::move(t));
    }
    // Offsets must tile the data section exactly: contiguous from 0, no gaps, no overlaps.
    std::sort(ranges.begin(), ranges.end());
    uint64_t pos = 0;
    for (auto& [b, e] : ranges) {
        if (b < pos) fail("tensor data ranges overlap at byte " + std::to_string(b));
        if (b > pos) fail("gap in tensor data between bytes " + std::to_string(pos) + " and " + std::to_string(b));
        pos = e;
    }
    if (pos != data_size)
        fail("data section has " + std::to_string(data_size) + " bytes but the tensors cover " + std::to_string(pos));
    return f;
}

SafetensorsFile::~SafetensorsFile() {
    if (map_) ::munmap(map_, size_);
}

std::vector<std::string> SafetensorsFile::names() const {
    std::vector<const TensorView*> v;
    for (auto& [k, t] : tensors_) v.push_back(&t);
    std::sort(v.begin(), v.end(),
              [](auto* a, auto* b) { return a->data < b->data || (a->data == b->data && a->name < b->name); });
    std::vector<std::string> out;
    for (auto* t : v) out.push_back(t->name);
    return out;
}

const TensorView& SafetensorsFile::get(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end())
        throw SafetensorsError("safetensors file '" + path_ + "': no tensor named '" + name + "'");
    return it->second;
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
                            size_t nbytes) {
    if (name.empty() || name == "__metadata__") throw SafetensorsError("invalid tensor name '" + name + "'");
    int64_t numel = 1;
    for (auto s : shape) {
        if (s < 0) throw SafetensorsError("tensor '" + name + "' has a negative dimension");
        numel *= s;
    }
    if (size_t(numel) * dtype_size(dtype) != nbytes)
        throw SafetensorsError("tensor '" + name + "': " + std::to_string(nbytes) + " bytes do not match its shape");
    for (auto& e : entries_)
        if (e.name == name) throw SafetensorsError("duplicate tensor name '" + name + "'");
    entries_.push_back({name, dtype, std::move(shape), data, nbytes});
}

void SafetensorsWriter::write(const std::string& path) const {
    nlohmann::ordered_json h;
    if (!metadata_.empty()) h["__metadata__"] = metadata_;
    uint64_t off = 0;
    for (auto& e : entries_) {
        h[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {off, off + e.nbytes}}};
        off += e.nbytes;
    }
    std::string hs = h.dump();
    // Pad the header with spaces so the data section starts 8-byte aligned.
    while ((8 + hs.size()) % 8) hs.push_back(' ');
    uint64_t n = hs.size();
    std::string head(reinterpret_cast<const char*>(&n), 8);
    head += hs;

    // Streamed (a model can be larger than the memory left for a copy):
    // temporary file beside the target, fsync, rename, fsync of the folder.
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw SafetensorsError(write_error(path, errno));
    auto put = [&](const void* p, size_t len) {
        const char* b = static_cast<const char*>(p);
        while (len > 0) {
            ssize_t k = ::write(fd, b, std::min<size_t>(len, size_t(1) << 30));
            if (k < 0) {
                if (errno == EINTR) continue;
                int e = errno;
                ::close(fd);
                ::unlink(tmp.c_str());
                throw SafetensorsError(write_error(path, e));
            }
            b += k;
            len -= size_t(k);
        }
    };
    put(head.data(), head.size());
    for (auto& e : entries_) put(e.data, e.nbytes);
    const int synced = ::fsync(fd) == 0 ? 0 : errno;
    const int closed = ::close(fd) == 0 ? 0 : errno;
    if (synced || closed) {
        ::unlink(tmp.c_str());
        throw SafetensorsError(write_error(path, synced ? synced : closed));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw SafetensorsError("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(e));
    }
    auto slash = path.find_last_of('/');
    fsync_dir(slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash));
}

// One implementation of the conversions, shared with the CPU kernels (which
// may not link core): IEEE round to nearest even, as F16C does; NaN payloads
// keep their high bits.
float f16_to_f32(uint16_t h) {
    return kernels::half_to_float(h);
}
uint16_t f32_to_f16(float f) {
    return kernels::float_to_half(f);
}
float bf16_to_f32(uint16_t b) {
    return kernels::bf16_to_float(b);
}
uint16_t f32_to_bf16(float f) {
    return kernels::float_to_bf16(f);
}

std::map<std::string, std::string> parse_safetensors_index(const std::string& text, const std::string& index_path) {
    const std::string where = "'" + index_path + "'";
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw SafetensorsError(where + " is not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j.at("weight_map").is_object())
        throw SafetensorsError(where + " has no weight_map object");
    static const std::string kSuffix = ".safetensors";
    std::map<std::string, std::string> out;
    for (const auto& [name, file] : j.at("weight_map").items()) {
        if (!file.is_string()) throw SafetensorsError(where + ": weight_map entry '" + name + "' is not a file name");
        const std::string& s = file.get_ref<const std::string&>();
        const bool plain = s.size() > kSuffix.size() &&
                           s.compare(s.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0 &&
                           s.find_first_of(std::string("/\\\0", 3)) == std::string::npos;
        if (!plain)
            throw SafetensorsError(where + ": weight_map entry '" + name + "' names " + file.dump() +
                                   ", not a .safetensors file in the index's folder");
        out.emplace(name, s);
    }
    return out;
}

}  // namespace bimamba::base
