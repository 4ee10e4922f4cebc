#include "kernels/cpu/HugePages.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <utility>

namespace bimamba::kernels {

namespace {
constexpr size_t kHugeFrom = size_t(1) << 20;  // smaller buffers: ordinary pages
size_t rounded(size_t bytes) {
    return bytes >= kHugeFrom ? (bytes + kHugePage - 1) / kHugePage * kHugePage : (bytes + 63) / 64 * 64;
}
}  // namespace

void* huge_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    const size_t n = rounded(bytes);
    void* p = std::aligned_alloc(bytes >= kHugeFrom ? kHugePage : 64, n);
    if (!p) return nullptr;
#ifdef MADV_HUGEPAGE
    if (bytes >= kHugeFrom) madvise(p, n, MADV_HUGEPAGE);  // advice only: no error if THP is off
#endif
    return p;
}

void huge_free(void* p, size_t) noexcept {
    std::free(p);
}

HugeBuffer::HugeBuffer(size_t bytes) : n_(bytes) {
    p_ = static_cast<uint8_t*>(huge_alloc(bytes));
    if (!p_) throw std::bad_alloc();
    std::memset(p_, 0, bytes);  // first touch: pages (huge where granted) are faulted in now, not mid-token
    huge_ = bytes >= kHugeFrom;
}

HugeBuffer::~HugeBuffer() {
    huge_free(p_, n_);
}

HugeBuffer::HugeBuffer(HugeBuffer&& o) noexcept
    : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), huge_(std::exchange(o.huge_, false)) {}

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& o) noexcept {
    if (this != &o) {
        huge_free(p_, n_);
        p_ = std::exchange(o.p_, nullptr);
        n_ = std::exchange(o.n_, 0);
        huge_ = std::exchange(o.huge_, false);
    }
    return *this;
}

}  // namespace bimamba::kernels
