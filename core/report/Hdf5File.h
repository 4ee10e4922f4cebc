#pragma once
// A small RAII layer over the HDF5 C API: groups, scalar attributes and
// n-dimensional float64 / int64 / string datasets. Plain C++ (no LibTorch):
// `bimamba report` writes reports through it, the workbench reads them. Every failure throws
// Hdf5Error naming the file and the object (HDF5's own error stack printing
// is switched off).
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace bimamba::report {

struct Hdf5Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Hdf5File {
public:
    // A new file, built in memory (HDF5's core driver) and written to `path`
    // by close() in one atomic write: a failed write (a full disk) throws
    // write_error's message (file, reason, free space) and leaves any old
    // file at `path` as it was; one destroyed without close() is discarded.
    // (HDF5 writing to a full disk itself fails in H5Fclose and then crashes
    // the process at exit, in H5F__close_cb: issue #17's disk-full test.)
    static Hdf5File create(const std::string& path);
    static Hdf5File open_read(const std::string& path);  // throws for a missing, foreign or damaged file
    Hdf5File(Hdf5File&& o) noexcept;
    Hdf5File& operator=(Hdf5File&& o) noexcept;
    Hdf5File(const Hdf5File&) = delete;
    ~Hdf5File();
    void close();  // finishes the file (a created one: writes it); errors throw

    const std::string& path() const { return path_; }
    // Object paths are absolute ("/eval/table"); parents are created as needed.
    void create_group(const std::string& obj);
    bool exists(const std::string& obj) const;
    std::vector<std::string> children(const std::string& group) const;  // sorted by name

    void set_attr(const std::string& obj, const std::string& name, const std::string& value);
    void set_attr(const std::string& obj, const std::string& name, const char* value) {
        set_attr(obj, name, std::string(value));
    }
    void set_attr(const std::string& obj, const std::string& name, double value);
    void set_attr(const std::string& obj, const std::string& name, int64_t value);
    std::vector<std::string> attr_names(const std::string& obj) const;
    bool has_attr(const std::string& obj, const std::string& name) const;
    std::string attr_string(const std::string& obj, const std::string& name) const;
    double attr_double(const std::string& obj, const std::string& name) const;
    int64_t attr_int(const std::string& obj, const std::string& name) const;

    // shape empty = 1-D of the vector's length; otherwise its product must equal the length.
    void write(const std::string& obj, const std::vector<double>& v, std::vector<uint64_t> shape = {});
    void write(const std::string& obj, const std::vector<int64_t>& v, std::vector<uint64_t> shape = {});
    void write(const std::string& obj, const std::vector<std::string>& v);
    std::vector<double> read_doubles(const std::string& obj, std::vector<uint64_t>* shape = nullptr) const;
    std::vector<int64_t> read_ints(const std::string& obj, std::vector<uint64_t>* shape = nullptr) const;
    std::vector<std::string> read_strings(const std::string& obj) const;  // variable- or fixed-length

private:
    Hdf5File(int64_t id, std::string path, bool in_memory = false)
        : id_(id), path_(std::move(path)), in_memory_(in_memory) {}
    [[noreturn]] void fail(const std::string& what, const std::string& obj) const;
    int64_t id_ = -1;  // hid_t
    std::string path_;
    bool in_memory_ = false;  // created: close() writes the image to path_
};

}  // namespace bimamba::report
