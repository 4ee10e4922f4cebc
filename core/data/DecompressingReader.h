#pragma once
// Streaming reader of a corpus file that may be compressed: xz (liblzma),
// gzip (zlib) or zstd (libzstd), chosen by the file's magic bytes, plain
// otherwise. Decompresses in fixed-size chunks, so a file is never held
// compressed and decompressed at once. Concatenated streams/members/frames
// are read through, as `xz -dc`, `gzip -dc` and `zstd -dc` do.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace bimamba::data {

enum class Compression { None, Xz, Gzip, Zstd };
std::string to_string(Compression c);  // "none" | "xz" | "gzip" | "zstd"

// The compression a file name announces (.xz, .gz, .zst); None otherwise.
Compression compression_of_name(const std::string& path);
// `path` without its compression suffix ("a.jsonl.gz" -> "a.jsonl").
std::string strip_compression_suffix(const std::string& path);

class DecompressingReader {
public:
    // Opens `path`. Throws naming the file when it cannot be opened or when
    // its name announces a compression its bytes do not have. At most `limit`
    // decompressed bytes (0: memory_budget_bytes()); past it read() throws
    // naming the file, the limit and the compression ratio so far: a
    // decompression bomb, or a corpus larger than the memory that is to hold
    // it, stops with a message instead of the OOM killer.
    explicit DecompressingReader(const std::string& path, uint64_t limit = 0);
    ~DecompressingReader();
    DecompressingReader(const DecompressingReader&) = delete;
    DecompressingReader& operator=(const DecompressingReader&) = delete;

    // Up to `n` decompressed bytes into `out`; 0 only at the end of the data.
    // Corrupt or truncated data throws naming the file, the compressed offset
    // and the decoder's reason.
    size_t read(char* out, size_t n);
    // The next line without its '\n' (a last line without one included);
    // false at the end, as std::getline.
    bool getline(std::string& line);

    uint64_t decompressed_bytes() const { return produced_; }

    Compression compression() const { return compression_; }
    const std::string& path() const { return path_; }
    uint64_t compressed_bytes_read() const;  // of the file, so far
    uint64_t file_size() const { return file_size_; }

    struct Codec;

private:
    size_t fill_input();  // reads more of the file into in_; returns the bytes added

    std::string path_;
    std::FILE* file_ = nullptr;
    uint64_t file_size_ = 0;
    Compression compression_ = Compression::None;
    std::unique_ptr<Codec> codec_;
    // Compressed input: in_[in_pos_, in_len_) not yet consumed.
    std::unique_ptr<unsigned char[]> in_;
    size_t in_pos_ = 0, in_len_ = 0;
    uint64_t in_file_offset_ = 0;  // file offset of in_[0]
    bool file_eof_ = false, data_end_ = false;
    // Decompressed bytes for getline: out_[out_pos_, out_len_).
    std::unique_ptr<char[]> out_;
    size_t out_pos_ = 0, out_len_ = 0;
    uint64_t produced_ = 0, limit_ = 0;
};

// What a reader that holds a whole corpus in memory (prepare, eval) may
// decompress: half of the memory available now (MemAvailable in
// /proc/meminfo), 8 GiB where that cannot be read.
uint64_t memory_budget_bytes();

// The whole decompressed content of `path`, at most `limit` bytes (0:
// memory_budget_bytes()).
std::string read_decompressed(const std::string& path, uint64_t limit = 0);

}  // namespace bimamba::data
