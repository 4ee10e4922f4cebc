#include "core/report/Hdf5File.h"

#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <type_traits>
#include <vector>

#include "core/base/FileUtil.h"

namespace bimamba::report {

static_assert(std::is_same<hid_t, int64_t>::value, "HDF5 >= 1.10 (64-bit hid_t) expected");

namespace {

void quiet_hdf5() {
    static const bool once = [] {
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become exceptions, not stderr dumps
        return true;
    }();
    (void)once;
}

// Closes an HDF5 handle at scope exit.
struct Handle {
    hid_t id;
    herr_t (*closer)(hid_t);
    Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), closer(c) {}
    ~Handle() {
        if (id >= 0) closer(id);
    }
    Handle(const Handle&) = delete;
    operator hid_t() const { return id; }
};

hid_t vlen_string_type() {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

// The memory type to read variable-length strings of file type `file_type`
// into: the same character set, because HDF5 1.14 refuses to convert between
// ASCII (the C library's default, used by other tools) and UTF-8 (ours), where
// 1.10 copied the bytes. ASCII is a subset of UTF-8, so the bytes are the same.
hid_t vlen_string_type_like(hid_t file_type) {
    hid_t t = vlen_string_type();
    const H5T_cset_t cset = H5Tget_cset(file_type);
    if (cset == H5T_CSET_ASCII) H5Tset_cset(t, H5T_CSET_ASCII);
    return t;
}

// The most a single read allocates (a dataset's values, a string attribute):
// a damaged or hostile file may declare any size; a report's largest
// datasets (metrics of long runs) are a few MB.
constexpr uint64_t kMaxReadBytes = uint64_t(256) << 20;

// The element count of a dataspace, or a negative value when it is damaged,
// its product overflows, or `elem_size` bytes each would exceed kMaxReadBytes.
int64_t checked_npoints(hid_t space, uint64_t elem_size) {
    const int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0 || rank > H5S_MAX_RANK) return -1;
    std::vector<hsize_t> dims(size_t(rank), 0);
    if (rank > 0 && H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0) return -1;
    uint64_t n = H5Sget_simple_extent_type(space) == H5S_NULL ? 0 : 1;
    const uint64_t cap = kMaxReadBytes / std::max<uint64_t>(elem_size, 1);
    for (hsize_t d : dims) {
        if (d != 0 && n > cap / d) return -2;
        n *= d;
    }
    return n > cap ? -2 : int64_t(n);
}

std::string parent_of(const std::string& obj) {
    const auto p = obj.find_last_of('/');
    return p == std::string::npos || p == 0 ? "/" : obj.substr(0, p);
}

}  // namespace

void Hdf5File::fail(const std::string& what, const std::string& obj) const {
    throw Hdf5Error(path_ + ": " + what + (obj.empty() ? "" : " '" + obj + "'"));
}

Hdf5File Hdf5File::create(const std::string& path) {
    quiet_hdf5();
    const std::filesystem::path p(path);
    const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
    if (::access(dir.c_str(), W_OK) != 0)
        throw Hdf5Error(path + ": cannot create HDF5 file (" + std::strerror(errno) + ": " + dir + ")");
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, /*backing_store=*/0) < 0)
        throw Hdf5Error(path + ": cannot set up HDF5's in-memory driver");
    hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (id < 0) throw Hdf5Error(path + ": cannot create HDF5 file");
    return Hdf5File(id, path, /*in_memory=*/true);
}

namespace {
uint64_t load_le(const unsigned char* p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | p[i];
    return v;
}

// HDF5 (1.10 and 1.14 alike) trusts the object sizes of a global heap
// collection (where variable-length strings live): one that makes
// H5HG__cache_heap_deserialize step by 0 bytes (a free-space entry of size 0,
// or a size that wraps the step to 0) or wrap its pointer around (sizes near
// 2^64) makes it loop for ever, and H5HG_read copies an object's declared size
// whatever the collection holds. Reading any string of such a file would hang
// or crash the reader (the GUI with it), so open_read checks each collection
// first ("GCOL", version 1), walking it as HDF5 does: every object must lie
// inside it. The offset of the first, or -1 (also when the file has no
// superblock this understands: HDF5 then refuses it anyway, or is over 1 GiB,
// which no report is).
int64_t hanging_global_heap(const std::string& path) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    if (ec || bytes > (uint64_t(1) << 30)) return -1;  // reports are far smaller; not scanned
    std::string file;
    try {
        file = base::read_file(path);
    } catch (const std::exception&) {
        return -1;  // unreadable: H5Fopen says so
    }
    const auto* d = reinterpret_cast<const unsigned char*>(file.data());
    const size_t n = file.size();
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    int len = 0;  // the file's "size of lengths" (the width of a collection's and an object's size)
    for (size_t sb = 0; sb + 16 <= n && !len; sb = sb ? sb * 2 : 512) {
        if (std::memcmp(d + sb, sig, 8) != 0) continue;
        len = d[sb + 8] <= 1 ? d[sb + 14] : d[sb + 10];  // superblock version 0/1 vs 2/3
        if (len != 2 && len != 4 && len != 8) return -1;
    }
    if (!len) return -1;
    const size_t hdr = 8 + size_t(len), objhdr = 8 + size_t(len);
    const unsigned char gcol[4] = {'G', 'C', 'O', 'L'};
    for (auto it = d; (it = std::search(it, d + n, gcol, gcol + 4)) != d + n; ++it) {
        const size_t at = size_t(it - d);
        if (at + hdr > n || d[at + 4] != 1) continue;
        const uint64_t size = load_le(&d[at + 8], len);
        if (size < hdr || size > n - at) continue;  // HDF5 fails to read it: an error, not a hang
        const size_t end = at + size_t(size);
        size_t p = at + hdr;
        while (p < end) {
            if (p + objhdr > end) break;  // too small for an object: free space to the end
            const unsigned idx = unsigned(load_le(&d[p], 2));
            const uint64_t osize = load_le(&d[p + 8], len);
            // Every object must lie inside its collection: HDF5 does not check,
            // and a size past the end makes it loop (a step of 0, or one that
            // wraps the pointer around) or copy that many bytes out of the heap.
            const uint64_t room = end - p;
            if (idx > 0 ? osize > room - objhdr : osize == 0 || osize > room) return int64_t(at);
            const uint64_t need = idx > 0 ? objhdr + ((osize + 7) & ~uint64_t(7)) : osize;
            if (need >= room) break;
            p += size_t(need);
        }
    }
    return -1;
}
}  // namespace

Hdf5File Hdf5File::open_read(const std::string& path) {
    quiet_hdf5();
    if (!std::filesystem::exists(path)) throw Hdf5Error(path + ": no such file");
    if (H5Fis_hdf5(path.c_str()) <= 0) throw Hdf5Error(path + ": not an HDF5 file (no HDF5 signature)");
    if (const int64_t at = hanging_global_heap(path); at >= 0)
        throw Hdf5Error(path + ": damaged HDF5 file: the global heap at byte " + std::to_string(at) +
                        " has a damaged object size (the HDF5 library would loop forever or read past the heap)");
    hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (id < 0) throw Hdf5Error(path + ": cannot open HDF5 file: truncated or damaged");
    return Hdf5File(id, path);
}

Hdf5File::Hdf5File(Hdf5File&& o) noexcept : id_(o.id_), path_(std::move(o.path_)), in_memory_(o.in_memory_) {
    o.id_ = -1;
}
Hdf5File& Hdf5File::operator=(Hdf5File&& o) noexcept {
    if (this != &o) {
        if (id_ >= 0) H5Fclose(id_);  // unfinished: discarded, as by the destructor
        id_ = o.id_;
        path_ = std::move(o.path_);
        in_memory_ = o.in_memory_;
        o.id_ = -1;
    }
    return *this;
}
// A file created but never close()d (an error while writing it) is discarded:
// nothing is written to its path.
Hdf5File::~Hdf5File() {
    if (id_ >= 0) H5Fclose(id_);
}
void Hdf5File::close() {
    if (id_ < 0) return;
    hid_t id = id_;
    id_ = -1;
    if (!in_memory_) {
        if (H5Fclose(id) < 0) throw Hdf5Error(path_ + ": closing the file failed");
        return;
    }
    // The image of the in-memory file, then one atomic write of it.
    std::string image;
    const bool flushed = H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0;
    const ssize_t n = flushed ? H5Fget_file_image(id, nullptr, 0) : -1;
    if (n > 0) {
        image.resize(size_t(n));
        if (H5Fget_file_image(id, image.data(), image.size()) != n) image.clear();
    }
    if (H5Fclose(id) < 0 || image.empty()) throw Hdf5Error(path_ + ": HDF5 could not finish the file in memory");
    try {
        base::write_file_atomic(path_, image);
    } catch (const std::exception& e) {
        throw Hdf5Error(e.what());
    }
}

bool Hdf5File::exists(const std::string& obj) const {
    if (obj == "/" || obj.empty()) return true;
    // H5Lexists fails on a missing intermediate group: check prefix by prefix.
    size_t pos = 1;
    while (true) {
        const size_t next = obj.find('/', pos);
        const std::string prefix = obj.substr(0, next);
        if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
        if (next == std::string::npos) return true;
        pos = next + 1;
    }
}

void Hdf5File::create_group(const std::string& obj) {
    if (exists(obj)) return;
    Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    H5Pset_create_intermediate_group(lcpl, 1);
    Handle g(H5Gcreate2(id_, obj.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (g < 0) fail("cannot create group", obj);
}

std::vector<std::string> Hdf5File::children(const std::string& group) const {
    Handle g(H5Gopen2(id_, group.c_str(), H5P_DEFAULT), H5Gclose);
    if (g < 0) fail("no group", group);
    H5G_info_t info;
    if (H5Gget_info(g, &info) < 0) fail("cannot list group", group);
    std::vector<std::string> out;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
        ssize_t n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
        if (n < 0) fail("cannot list group", group);
        std::string name(size_t(n), '\0');
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), size_t(n) + 1, H5P_DEFAULT);
        out.push_back(name);
    }
    return out;
}

// ---- attributes ---------------------------------------------------------------

namespace {
template <class WriteFn>
void put_attr(hid_t file, const std::string& obj, const std::string& name, hid_t type, WriteFn&& write,
              const Hdf5File& f) {
    Handle o(H5Oopen(file, obj.c_str(), H5P_DEFAULT), H5Oclose);
    if (o < 0) throw Hdf5Error(f.path() + ": no object '" + obj + "' for attribute '" + name + "'");
    if (H5Aexists(o, name.c_str()) > 0) H5Adelete(o, name.c_str());
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle a(H5Acreate2(o, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (a < 0 || write(a) < 0) throw Hdf5Error(f.path() + ": cannot write attribute '" + name + "' of '" + obj + "'");
}
}  // namespace

void Hdf5File::set_attr(const std::string& obj, const std::string& name, const std::string& value) {
    Handle t(vlen_string_type(), H5Tclose);
    const char* p = value.c_str();
    put_attr(
        id_, obj, name, t, [&](hid_t a) { return H5Awrite(a, t, &p); }, *this);
}
void Hdf5File::set_attr(const std::string& obj, const std::string& name, double value) {
    put_attr(
        id_, obj, name, H5T_IEEE_F64LE, [&](hid_t a) { return H5Awrite(a, H5T_NATIVE_DOUBLE, &value); }, *this);
}
void Hdf5File::set_attr(const std::string& obj, const std::string& name, int64_t value) {
    put_attr(
        id_, obj, name, H5T_STD_I64LE, [&](hid_t a) { return H5Awrite(a, H5T_NATIVE_INT64, &value); }, *this);
}

namespace {
herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* out) {
    static_cast<std::vector<std::string>*>(out)->push_back(name);
    return 0;
}
}  // namespace

std::vector<std::string> Hdf5File::attr_names(const std::string& obj) const {
    Handle o(H5Oopen(id_, obj.c_str(), H5P_DEFAULT), H5Oclose);
    if (o < 0) fail("no object", obj);
    std::vector<std::string> names;
    hsize_t idx = 0;
    if (H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr_name, &names) < 0)
        fail("cannot list attributes of", obj);
    return names;
}

bool Hdf5File::has_attr(const std::string& obj, const std::string& name) const {
    Handle o(H5Oopen(id_, obj.c_str(), H5P_DEFAULT), H5Oclose);
    return o >= 0 && H5Aexists(o, name.c_str()) > 0;
}

namespace {
// An attribute holding exactly one value (what the readers below read into
// one variable): a scalar or a one-element array; any other shape is refused.
Handle open_attr(hid_t file, const std::string& obj, const std::string& name, const Hdf5File& f) {
    Handle o(H5Oopen(file, obj.c_str(), H5P_DEFAULT), H5Oclose);
    if (o < 0) throw Hdf5Error(f.path() + ": no object '" + obj + "'");
    hid_t a = H5Aopen(o, name.c_str(), H5P_DEFAULT);
    if (a < 0) throw Hdf5Error(f.path() + ": '" + obj + "' has no attribute '" + name + "'");
    const hid_t space = H5Aget_space(a);
    const bool single = space >= 0 && checked_npoints(space, 1) == 1;
    if (space >= 0) H5Sclose(space);
    if (!single) {
        H5Aclose(a);
        throw Hdf5Error(f.path() + ": attribute '" + name + "' of '" + obj + "' is not a single value");
    }
    return Handle(a, H5Aclose);
}
}  // namespace

std::string Hdf5File::attr_string(const std::string& obj, const std::string& name) const {
    Handle a = open_attr(id_, obj, name, *this);
    Handle t(H5Aget_type(a), H5Tclose);
    if (H5Tget_class(t) != H5T_STRING) fail("attribute '" + name + "' is not a string on", obj);
    if (H5Tis_variable_str(t) > 0) {
        Handle mt(vlen_string_type_like(t), H5Tclose);
        char* p = nullptr;
        if (H5Aread(a, mt, &p) < 0) fail("cannot read attribute '" + name + "' of", obj);
        std::string s = p ? p : "";
        H5free_memory(p);
        return s;
    }
    const size_t size = H5Tget_size(t);
    if (size == 0 || size > kMaxReadBytes) fail("attribute '" + name + "' has a damaged string size on", obj);
    std::string s(size, '\0');
    if (H5Aread(a, t, s.data()) < 0) fail("cannot read attribute '" + name + "' of", obj);
    return s.substr(0, s.find('\0'));
}

double Hdf5File::attr_double(const std::string& obj, const std::string& name) const {
    Handle a = open_attr(id_, obj, name, *this);
    Handle t(H5Aget_type(a), H5Tclose);
    const auto cls = H5Tget_class(t);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) fail("attribute '" + name + "' is not numeric on", obj);
    double v = 0;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) fail("cannot read attribute '" + name + "' of", obj);
    return v;
}

int64_t Hdf5File::attr_int(const std::string& obj, const std::string& name) const {
    Handle a = open_attr(id_, obj, name, *this);
    Handle t(H5Aget_type(a), H5Tclose);
    if (H5Tget_class(t) != H5T_INTEGER) fail("attribute '" + name + "' is not an integer on", obj);
    int64_t v = 0;
    if (H5Aread(a, H5T_NATIVE_INT64, &v) < 0) fail("cannot read attribute '" + name + "' of", obj);
    return v;
}

// ---- datasets -----------------------------------------------------------------

namespace {
std::vector<hsize_t> dims_for(size_t n, const std::vector<uint64_t>& shape, const Hdf5File& f, const std::string& obj) {
    if (shape.empty()) return {hsize_t(n)};
    uint64_t prod = 1;
    for (auto d : shape) prod *= d;
    if (prod != n) throw Hdf5Error(f.path() + ": shape does not match the data of '" + obj + "'");
    return std::vector<hsize_t>(shape.begin(), shape.end());
}

template <class T>
void write_numeric(hid_t file, const std::string& obj, const std::vector<T>& v, const std::vector<uint64_t>& shape,
                   hid_t file_type, hid_t mem_type, const Hdf5File& f) {
    auto dims = dims_for(v.size(), shape, f, obj);
    Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
    Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    H5Pset_create_intermediate_group(lcpl, 1);
    Handle d(H5Dcreate2(file, obj.c_str(), file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
    if (d < 0) throw Hdf5Error(f.path() + ": cannot create dataset '" + obj + "' (exists already?)");
    if (!v.empty() && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
        throw Hdf5Error(f.path() + ": cannot write dataset '" + obj + "'");
}

template <class T>
std::vector<T> read_numeric(hid_t file, const std::string& obj, std::vector<uint64_t>* shape, hid_t mem_type,
                            H5T_class_t want, const char* what, const Hdf5File& f) {
    Handle d(H5Dopen2(file, obj.c_str(), H5P_DEFAULT), H5Dclose);
    if (d < 0) throw Hdf5Error(f.path() + ": no dataset '" + obj + "'");
    Handle t(H5Dget_type(d), H5Tclose);
    const auto cls = H5Tget_class(t);
    if (cls != want && !(want == H5T_FLOAT && cls == H5T_INTEGER))
        throw Hdf5Error(f.path() + ": dataset '" + obj + "' is not " + what);
    Handle space(H5Dget_space(d), H5Sclose);
    const int64_t npoints = space < 0 ? -1 : checked_npoints(space, sizeof(T));
    if (npoints == -2)
        throw Hdf5Error(f.path() + ": dataset '" + obj + "' is larger than " + std::to_string(kMaxReadBytes >> 20) +
                        " MiB (damaged file?)");
    if (npoints < 0) throw Hdf5Error(f.path() + ": damaged dataspace of '" + obj + "'");
    const size_t n = size_t(npoints);
    if (shape) {
        const int rank = H5Sget_simple_extent_ndims(space);
        std::vector<hsize_t> dims(size_t(rank), 0);
        if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
        shape->assign(dims.begin(), dims.end());
    }
    std::vector<T> out(n);
    if (n > 0 && H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
        throw Hdf5Error(f.path() + ": cannot read dataset '" + obj + "' (truncated or damaged file?)");
    return out;
}
}  // namespace

void Hdf5File::write(const std::string& obj, const std::vector<double>& v, std::vector<uint64_t> shape) {
    write_numeric(id_, obj, v, shape, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, *this);
}
void Hdf5File::write(const std::string& obj, const std::vector<int64_t>& v, std::vector<uint64_t> shape) {
    write_numeric(id_, obj, v, shape, H5T_STD_I64LE, H5T_NATIVE_INT64, *this);
}
void Hdf5File::write(const std::string& obj, const std::vector<std::string>& v) {
    std::vector<const char*> ptrs;
    for (auto& s : v) ptrs.push_back(s.c_str());
    hsize_t n = v.size();
    Handle t(vlen_string_type(), H5Tclose);
    Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    H5Pset_create_intermediate_group(lcpl, 1);
    Handle d(H5Dcreate2(id_, obj.c_str(), t, space, lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
    if (d < 0) fail("cannot create dataset (exists already?)", obj);
    if (n > 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) fail("cannot write dataset", obj);
}

std::vector<double> Hdf5File::read_doubles(const std::string& obj, std::vector<uint64_t>* shape) const {
    return read_numeric<double>(id_, obj, shape, H5T_NATIVE_DOUBLE, H5T_FLOAT, "numeric", *this);
}
std::vector<int64_t> Hdf5File::read_ints(const std::string& obj, std::vector<uint64_t>* shape) const {
    return read_numeric<int64_t>(id_, obj, shape, H5T_NATIVE_INT64, H5T_INTEGER, "integer", *this);
}

std::vector<std::string> Hdf5File::read_strings(const std::string& obj) const {
    Handle d(H5Dopen2(id_, obj.c_str(), H5P_DEFAULT), H5Dclose);
    if (d < 0) fail("no dataset", obj);
    Handle t(H5Dget_type(d), H5Tclose);
    if (H5Tget_class(t) != H5T_STRING) fail("not a string dataset:", obj);
    Handle space(H5Dget_space(d), H5Sclose);
    const bool vlen = H5Tis_variable_str(t) > 0;
    const size_t size = vlen ? sizeof(char*) : H5Tget_size(t);
    if (size == 0) fail("damaged string type of", obj);
    const int64_t n = space < 0 ? -1 : checked_npoints(space, size);
    if (n == -2) fail("dataset larger than " + std::to_string(kMaxReadBytes >> 20) + " MiB (damaged file?):", obj);
    if (n < 0) fail("damaged dataspace of", obj);
    if (!vlen) {  // fixed-length strings (written by other tools), NUL-padded
        std::string buf(size * size_t(n), '\0');
        if (n > 0 && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
            fail("cannot read dataset (truncated or damaged file?)", obj);
        std::vector<std::string> out;
        for (int64_t i = 0; i < n; ++i) {
            const std::string s = buf.substr(size_t(i) * size, size);
            out.push_back(s.substr(0, s.find('\0')));
        }
        return out;
    }
    std::vector<char*> ptrs(size_t(n), nullptr);
    Handle mt(vlen_string_type_like(t), H5Tclose);
    if (n > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
        fail("cannot read dataset (truncated or damaged file?)", obj);
    std::vector<std::string> out;
    for (char* p : ptrs) out.push_back(p ? p : "");
    if (n > 0) H5Dvlen_reclaim(mt, space, H5P_DEFAULT, ptrs.data());
    return out;
}

}  // namespace bimamba::report
