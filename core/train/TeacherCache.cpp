#include "core/train/TeacherCache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/base/FileUtil.h"
#include "core/data/TeacherCacheFile.h"

namespace bimamba::train {

using data::parse_teacher_cache;
using data::TeacherCacheLayout;
using data::kTeacherCacheFormat;
using data::kTeacherCacheMagic;
using data::teacher_cache_data_start;

namespace {
[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error("teacher cache '" + path + "': " + what);
}
}  // namespace

std::shared_ptr<TeacherCache> TeacherCache::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) fail(path, "cannot open");
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(path, "not a regular file");
    }
    size_t size = size_t(st.st_size);
    if (size < 16) {
        ::close(fd);
        fail(path, "file too short (" + std::to_string(size) + " bytes) to be a cache");
    }
    void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (m == MAP_FAILED) fail(path, "mmap failed");
    std::shared_ptr<TeacherCache> c(new TeacherCache());
    c->map_ = m;
    c->size_ = size;
    auto* bytes = static_cast<const uint8_t*>(m);
    const TeacherCacheLayout l = parse_teacher_cache(bytes, size, path);
    c->k_ = l.k;
    c->seq_len_ = l.seq_len;
    c->vocab_ = l.vocab_size;
    c->windows_ = l.num_windows;
    c->values_ = reinterpret_cast<const uint16_t*>(bytes + l.values_offset);
    c->ids_ = reinterpret_cast<const int32_t*>(bytes + l.ids_offset);
    return c;
}

TeacherCache::~TeacherCache() {
    if (map_) ::munmap(map_, size_);
}

std::pair<torch::Tensor, torch::Tensor> TeacherCache::window(int64_t w) const {
    if (w < 0 || w >= windows_)
        throw std::out_of_range("teacher cache: window " + std::to_string(w) + " out of range (have " +
                                std::to_string(windows_) + ")");
    size_t off = size_t(w) * seq_len_ * k_;
    auto v =
        torch::from_blob(const_cast<uint16_t*>(values_ + off), {seq_len_, k_}, torch::kFloat16).to(torch::kFloat32);
    auto ids = torch::from_blob(const_cast<int32_t*>(ids_ + off), {seq_len_, k_}, torch::kInt32).to(torch::kLong);
    if (ids.numel() && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= vocab_))
        throw std::runtime_error("teacher cache: window " + std::to_string(w) + " holds token ids outside [0, " +
                                 std::to_string(vocab_) + "): the file is corrupt");
    return {v, ids};
}

std::pair<torch::Tensor, torch::Tensor> TeacherCache::windows(const std::vector<int64_t>& ws) const {
    std::vector<torch::Tensor> vs, is;
    for (auto w : ws) {
        auto [v, i] = window(w);
        vs.push_back(v);
        is.push_back(i);
    }
    return {torch::stack(vs), torch::stack(is)};
}

void build_teacher_cache(const std::string& path, const TeacherCacheSpec& spec,
                         const std::function<torch::Tensor(int64_t)>& window_tokens,
                         const std::function<torch::Tensor(const torch::Tensor&)>& teacher_logits,
                         const std::function<void(int64_t, int64_t)>& progress) {
    if (spec.k <= 0 || spec.seq_len <= 0 || spec.vocab_size <= 0 || spec.k > spec.vocab_size)
        throw std::invalid_argument("teacher cache: need 0 < k <= vocab_size and seq_len > 0");
    nlohmann::json h = {{"format", kTeacherCacheFormat},   {"k", spec.k},
                        {"seq_len", spec.seq_len},         {"vocab_size", spec.vocab_size},
                        {"num_windows", spec.num_windows}, {"teacher", spec.teacher_name},
                        {"dataset", spec.dataset_name},    {"split", spec.split}};
    std::string hs = h.dump();
    const size_t per = size_t(spec.num_windows) * spec.seq_len * spec.k;
    const size_t start = teacher_cache_data_start(hs.size());
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw std::runtime_error("teacher cache: cannot write '" + tmp + "'");
        f.write(kTeacherCacheMagic, 8);
        uint64_t hl = hs.size();
        f.write(reinterpret_cast<const char*>(&hl), 8);
        f.write(hs.data(), std::streamsize(hs.size()));
        std::string pad(start - 16 - hs.size(), '\0');
        f.write(pad.data(), std::streamsize(pad.size()));
        // Values and ids live in two regions: write values now, ids to a side file, then append.
        std::string ids_tmp = tmp + ".ids";
        std::ofstream fi(ids_tmp, std::ios::binary | std::ios::trunc);
        torch::NoGradGuard ng;
        for (int64_t w0 = 0; w0 < spec.num_windows; w0 += spec.batch) {
            int64_t n = std::min<int64_t>(spec.batch, spec.num_windows - w0);
            std::vector<torch::Tensor> rows;
            for (int64_t i = 0; i < n; ++i) rows.push_back(window_tokens(w0 + i).to(torch::kLong).view({-1}));
            auto ids = torch::stack(rows);
            if (ids.size(1) != spec.seq_len) throw std::runtime_error("teacher cache: window has wrong length");
            auto logits = teacher_logits(ids).to(torch::kCPU, torch::kFloat32);
            if (logits.size(-1) < spec.vocab_size)
                throw std::runtime_error("teacher cache: teacher vocabulary (" + std::to_string(logits.size(-1)) +
                                         ") is smaller than the student's (" + std::to_string(spec.vocab_size) + ")");
            logits = logits.narrow(-1, 0, spec.vocab_size);
            auto [v, i] = logits.topk(spec.k, -1, /*largest=*/true, /*sorted=*/true);
            auto v16 = v.to(torch::kFloat16).contiguous();
            auto i32 = i.to(torch::kInt32).contiguous();
            f.write(reinterpret_cast<const char*>(v16.data_ptr()), std::streamsize(v16.numel() * 2));
            fi.write(reinterpret_cast<const char*>(i32.data_ptr()), std::streamsize(i32.numel() * 4));
            if (progress) progress(w0 + n, spec.num_windows);
        }
        fi.close();
        std::ifstream ri(ids_tmp, std::ios::binary);
        f << ri.rdbuf();
        ri.close();
        ::unlink(ids_tmp.c_str());
        f.flush();
        if (!f) throw std::runtime_error("teacher cache: write to '" + tmp + "' failed (disk full?)");
    }
    struct stat st {};
    ::stat(tmp.c_str(), &st);
    if (size_t(st.st_size) != start + per * 6) {
        ::unlink(tmp.c_str());
        throw std::runtime_error("teacher cache: wrote " + std::to_string(st.st_size) + " bytes, expected " +
                                 std::to_string(start + per * 6));
    }
    int fd = ::open(tmp.c_str(), O_RDONLY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        throw std::runtime_error("teacher cache: cannot rename to '" + path + "'");
}

torch::Tensor loss_soft_ce_topk(const torch::Tensor& student_logits, const torch::Tensor& values,
                                const torch::Tensor& ids) {
    auto logp = torch::log_softmax(student_logits.to(torch::kFloat32), -1);
    auto picked = logp.gather(-1, ids.to(torch::kLong));       // (b, S, K)
    auto pt = torch::softmax(values.to(torch::kFloat32), -1);  // renormalised over the top-k
    return -(pt * picked).sum(-1).mean();
}

}  // namespace bimamba::train
