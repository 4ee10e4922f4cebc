#pragma once
// Memory for the CPU engine's hot arrays on transparent huge pages (2 MiB).
//
// Decoding streams every weight and the whole recurrent state once per token
// (~350 MB at the 780M shape binary, 1.6 GB fp16). On 4 KiB pages that is a
// TLB miss every 4 KiB, and in a virtual machine each miss is a two-level page
// walk: on the development VM the ±1 kernel streamed 22 GB/s from 4 KiB pages
// and 28 GB/s from huge pages, the fp16 GEMV 21 against 26. Where the kernel's
// THP mode is "madvise" (Debian's default) the pages must be asked for; with
// "never" this is plain aligned memory.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

namespace bimamba::kernels {

constexpr size_t kHugePage = size_t(2) << 20;

// Owns `bytes` bytes (zeroed), 2 MiB aligned and rounded up to 2 MiB when
// bytes >= 1 MiB (smaller buffers would waste most of a huge page: plain
// 64-byte aligned memory). Move-only.
class HugeBuffer {
public:
    HugeBuffer() = default;
    explicit HugeBuffer(size_t bytes);
    ~HugeBuffer();
    HugeBuffer(HugeBuffer&& o) noexcept;
    HugeBuffer& operator=(HugeBuffer&& o) noexcept;
    HugeBuffer(const HugeBuffer&) = delete;
    HugeBuffer& operator=(const HugeBuffer&) = delete;
    uint8_t* data() const { return p_; }
    size_t size() const { return n_; }
    bool huge_aligned() const { return huge_; }  // 2 MiB aligned and madvise'd

private:
    uint8_t* p_ = nullptr;
    size_t n_ = 0;
    bool huge_ = false;
};

// std::vector storage from HugeBuffer's policy (for the recurrent state).
template <class T>
struct HugePageAllocator {
    using value_type = T;
    HugePageAllocator() = default;
    template <class U>
    HugePageAllocator(const HugePageAllocator<U>&) {}
    T* allocate(size_t n);
    void deallocate(T* p, size_t n) noexcept;
    template <class U>
    bool operator==(const HugePageAllocator<U>&) const {
        return true;
    }
    template <class U>
    bool operator!=(const HugePageAllocator<U>&) const {
        return false;
    }
};
void* huge_alloc(size_t bytes);  // the raw form: aligned as HugeBuffer; nullptr on failure
void huge_free(void* p, size_t bytes) noexcept;

template <class T>
T* HugePageAllocator<T>::allocate(size_t n) {
    void* p = huge_alloc(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
}
template <class T>
void HugePageAllocator<T>::deallocate(T* p, size_t n) noexcept {
    huge_free(p, n * sizeof(T));
}

template <class T>
using huge_vector = std::vector<T, HugePageAllocator<T>>;

}  // namespace bimamba::kernels
