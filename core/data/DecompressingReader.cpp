#include "core/data/DecompressingReader.h"

#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "core/base/Process.h"
#include "core/base/StringUtil.h"

namespace bimamba::data {

using base::ends_with;

namespace {

constexpr size_t kInChunk = 1 << 20;   // compressed bytes read from the file at a time
constexpr size_t kOutChunk = 1 << 18;  // decompressed bytes buffered for getline

// What the codecs throw; the reader adds the file and the offset.
struct DecodeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

Compression compression_of_magic(const unsigned char* b, size_t n) {
    static const unsigned char xz[] = {0xFD, '7', 'z', 'X', 'Z', 0x00};
    static const unsigned char zst[] = {0x28, 0xB5, 0x2F, 0xFD};
    if (n >= sizeof xz && std::memcmp(b, xz, sizeof xz) == 0) return Compression::Xz;
    if (n >= 2 && b[0] == 0x1F && b[1] == 0x8B) return Compression::Gzip;
    if (n >= sizeof zst && std::memcmp(b, zst, sizeof zst) == 0) return Compression::Zstd;
    return Compression::None;
}

}  // namespace

std::string to_string(Compression c) {
    switch (c) {
        case Compression::None:
            return "none";
        case Compression::Xz:
            return "xz";
        case Compression::Gzip:
            return "gzip";
        case Compression::Zstd:
            return "zstd";
    }
    return "?";
}

Compression compression_of_name(const std::string& path) {
    if (ends_with(path, ".xz")) return Compression::Xz;
    if (ends_with(path, ".gz")) return Compression::Gzip;
    if (ends_with(path, ".zst")) return Compression::Zstd;
    return Compression::None;
}

std::string strip_compression_suffix(const std::string& path) {
    for (const char* suf : {".xz", ".gz", ".zst"})
        if (ends_with(path, suf)) return path.substr(0, path.size() - std::strlen(suf));
    return path;
}

// One decoder. decode() consumes in[pos, len) (advancing pos), writes at most
// `cap` bytes to `out` (adding to `written`) and returns true once the data
// has ended properly; `input_end` says no input follows what is in `in`.
struct DecompressingReader::Codec {
    virtual ~Codec() = default;
    virtual bool decode(const unsigned char* in, size_t len, size_t& pos, char* out, size_t cap, size_t& written,
                        bool input_end) = 0;
};

namespace {

struct PlainCodec : DecompressingReader::Codec {
    bool decode(const unsigned char* in, size_t len, size_t& pos, char* out, size_t cap, size_t& written,
                bool input_end) override {
        const size_t n = std::min(cap, len - pos);
        std::memcpy(out, in + pos, n);
        pos += n;
        written += n;
        return input_end && pos == len;
    }
};

const char* lzma_reason(lzma_ret r) {
    switch (r) {
        case LZMA_MEM_ERROR:
            return "out of memory";
        case LZMA_MEMLIMIT_ERROR:
            return "memory limit reached";
        case LZMA_FORMAT_ERROR:
            return "not in the .xz format";
        case LZMA_OPTIONS_ERROR:
            return "unsupported compression options";
        case LZMA_DATA_ERROR:
            return "compressed data is corrupt";
        case LZMA_BUF_ERROR:
            return "compressed data is truncated (it ends inside a stream)";
        default:
            return "internal liblzma error";
    }
}

struct XzCodec : DecompressingReader::Codec {
    lzma_stream s = LZMA_STREAM_INIT;
    XzCodec() {
        // LZMA_CONCATENATED: read every stream of the file (and stream padding), as xz -dc.
        if (lzma_stream_decoder(&s, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
            throw DecodeError("cannot initialise the xz decoder");
    }
    ~XzCodec() override { lzma_end(&s); }
    bool decode(const unsigned char* in, size_t len, size_t& pos, char* out, size_t cap, size_t& written,
                bool input_end) override {
        s.next_in = in + pos;
        s.avail_in = len - pos;
        s.next_out = reinterpret_cast<uint8_t*>(out);
        s.avail_out = cap;
        const lzma_ret r = lzma_code(&s, input_end ? LZMA_FINISH : LZMA_RUN);
        pos = len - s.avail_in;
        written += cap - s.avail_out;
        if (r == LZMA_STREAM_END) return true;
        if (r == LZMA_OK) return false;
        throw DecodeError(lzma_reason(r));
    }
};

struct GzipCodec : DecompressingReader::Codec {
    z_stream z{};
    bool between_members = false;  // a member ended; another may follow
    GzipCodec() {
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw DecodeError("cannot initialise the gzip decoder");
    }
    ~GzipCodec() override { inflateEnd(&z); }
    bool decode(const unsigned char* in, size_t len, size_t& pos, char* out, size_t cap, size_t& written,
                bool input_end) override {
        if (between_members) {
            if (pos == len) return input_end;
            if (in[pos] != 0x1F) throw DecodeError("trailing bytes after the gzip data are not a gzip member");
            inflateReset(&z);
            between_members = false;
        }
        z.next_in = const_cast<unsigned char*>(in + pos);
        z.avail_in = static_cast<uInt>(len - pos);
        z.next_out = reinterpret_cast<unsigned char*>(out);
        z.avail_out = static_cast<uInt>(cap);
        const int r = inflate(&z, Z_NO_FLUSH);
        pos = len - z.avail_in;
        written += cap - z.avail_out;
        if (r == Z_STREAM_END) {
            between_members = true;
            return input_end && pos == len;
        }
        if (r == Z_OK) return false;
        if (r == Z_BUF_ERROR) {  // no progress possible
            if (input_end && pos == len)
                throw DecodeError("compressed data is truncated (it ends inside a gzip member)");
            return false;
        }
        throw DecodeError(std::string("compressed data is corrupt (") + (z.msg ? z.msg : zError(r)) + ")");
    }
};

struct ZstdCodec : DecompressingReader::Codec {
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    size_t last = 0;  // ZSTD_decompressStream's last answer: 0 = the frame ended and is flushed
    ZstdCodec() {
        if (!ctx) throw DecodeError("cannot initialise the zstd decoder");
    }
    ~ZstdCodec() override { ZSTD_freeDCtx(ctx); }
    bool decode(const unsigned char* in, size_t len, size_t& pos, char* out, size_t cap, size_t& written,
                bool input_end) override {
        ZSTD_inBuffer ib{in, len, pos};
        ZSTD_outBuffer ob{out, cap, 0};
        last = ZSTD_decompressStream(ctx, &ob, &ib);
        if (ZSTD_isError(last))
            throw DecodeError(std::string("compressed data is corrupt (") + ZSTD_getErrorName(last) + ")");
        pos = ib.pos;
        written += ob.pos;
        if (input_end && pos == len) {
            if (last == 0) return true;
            if (ob.pos == 0) throw DecodeError("compressed data is truncated (it ends inside a zstd frame)");
        }
        return false;
    }
};

}  // namespace

DecompressingReader::DecompressingReader(const std::string& path, uint64_t limit)
    : path_(path), limit_(limit ? limit : memory_budget_bytes()) {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
    if (std::fseek(file_, 0, SEEK_END) == 0) {
        const long sz = std::ftell(file_);
        file_size_ = sz > 0 ? static_cast<uint64_t>(sz) : 0;
        std::fseek(file_, 0, SEEK_SET);
    }
    in_.reset(new unsigned char[kInChunk]);
    fill_input();
    compression_ = compression_of_magic(in_.get(), in_len_);
    const Compression named = compression_of_name(path);
    if (named != Compression::None && named != compression_) {
        std::fclose(file_);
        file_ = nullptr;
        throw std::runtime_error("'" + path + "' is named like a " + to_string(named) + " file but does not hold " +
                                 to_string(named) + " data (" +
                                 (compression_ == Compression::None ? std::string("no known compression magic")
                                                                    : to_string(compression_) + " magic") +
                                 " at its start)");
    }
    try {
        switch (compression_) {
            case Compression::None:
                codec_ = std::make_unique<PlainCodec>();
                break;
            case Compression::Xz:
                codec_ = std::make_unique<XzCodec>();
                break;
            case Compression::Gzip:
                codec_ = std::make_unique<GzipCodec>();
                break;
            case Compression::Zstd:
                codec_ = std::make_unique<ZstdCodec>();
                break;
        }
    } catch (const std::exception& e) {
        std::fclose(file_);
        file_ = nullptr;
        throw std::runtime_error("'" + path + "': " + e.what());
    }
}

DecompressingReader::~DecompressingReader() {
    if (file_) std::fclose(file_);
}

uint64_t DecompressingReader::compressed_bytes_read() const {
    return in_file_offset_ + in_pos_;
}

size_t DecompressingReader::fill_input() {
    if (file_eof_) return 0;
    // Keep what is not consumed yet, then append.
    if (in_pos_ > 0) {
        std::memmove(in_.get(), in_.get() + in_pos_, in_len_ - in_pos_);
        in_file_offset_ += in_pos_;
        in_len_ -= in_pos_;
        in_pos_ = 0;
    }
    const size_t got = std::fread(in_.get() + in_len_, 1, kInChunk - in_len_, file_);
    if (got < kInChunk - in_len_) {
        if (std::ferror(file_)) throw std::runtime_error("cannot read '" + path_ + "': " + std::strerror(errno));
        file_eof_ = true;
    }
    in_len_ += got;
    return got;
}

size_t DecompressingReader::read(char* out, size_t n) {
    if (data_end_ || n == 0) return 0;
    size_t written = 0;
    while (written == 0 && !data_end_) {
        if (in_pos_ == in_len_) fill_input();
        const size_t pos_before = in_pos_;
        try {
            data_end_ = codec_->decode(in_.get(), in_len_, in_pos_, out, n, written, file_eof_);
        } catch (const DecodeError& e) {
            throw std::runtime_error("'" + path_ + "': " + to_string(compression_) + ": " + e.what() +
                                     ", near compressed byte " + std::to_string(compressed_bytes_read()) + " of " +
                                     std::to_string(file_size_));
        }
        // No progress although the decoder had all it could get: at the end of
        // the file the data stops early (liblzma says so only on a second call).
        if (written == 0 && !data_end_ && in_pos_ == pos_before && (file_eof_ || in_pos_ < in_len_))
            throw std::runtime_error("'" + path_ + "': " + to_string(compression_) +
                                     (file_eof_ ? ": compressed data is truncated (the file ends inside the data)"
                                                : ": the decoder stopped making progress") +
                                     ", near compressed byte " + std::to_string(compressed_bytes_read()) + " of " +
                                     std::to_string(file_size_));
    }
    produced_ += written;
    if (produced_ > limit_) {
        char size[160];
        if (compression_ == Compression::None)
            std::snprintf(size, sizeof size, "is larger than %.1f MB", limit_ / 1e6);
        else
            std::snprintf(size, sizeof size, "decompresses to more than %.1f MB (%.0f times the %.1f MB read of it)",
                          limit_ / 1e6, (double)produced_ / std::max<uint64_t>(1, compressed_bytes_read()),
                          compressed_bytes_read() / 1e6);
        throw std::runtime_error(
            "'" + path_ + "' " + size +
            ", more than this read may hold in memory (by default half of the memory available, shared by a "
            "corpus's files): a decompression bomb, or a corpus too large for this machine");
    }
    return written;
}

bool DecompressingReader::getline(std::string& line) {
    line.clear();
    if (!out_) out_.reset(new char[kOutChunk]);
    bool any = false;
    for (;;) {
        if (out_pos_ == out_len_) {
            out_len_ = read(out_.get(), kOutChunk);
            out_pos_ = 0;
            if (out_len_ == 0) return any;
        }
        any = true;
        const char* b = out_.get() + out_pos_;
        const char* nl = static_cast<const char*>(std::memchr(b, '\n', out_len_ - out_pos_));
        if (nl) {
            line.append(b, nl);
            out_pos_ += static_cast<size_t>(nl - b) + 1;
            return true;
        }
        line.append(b, out_len_ - out_pos_);
        out_pos_ = out_len_;
    }
}

uint64_t memory_budget_bytes() {
    const uint64_t avail = base::available_memory_bytes();
    return avail ? avail / 2 : 8ull << 30;
}

std::string read_decompressed(const std::string& path, uint64_t limit) {
    DecompressingReader r(path, limit);
    std::string all;
    if (r.compression() == Compression::None) all.reserve(r.file_size());
    std::unique_ptr<char[]> buf(new char[kOutChunk]);
    while (size_t n = r.read(buf.get(), kOutChunk)) all.append(buf.get(), n);
    return all;
}

}  // namespace bimamba::data
