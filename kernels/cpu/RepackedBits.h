#pragma once
// The bytes of a sign matrix repacked for one of the ±1 kernels (BitGemvLut.h,
// BitGemvI16.h): owned as repacked, or moved by the engine into its huge-page
// buffer (core/engine/Engine.cpp), after which the kernels read them there.
#include <cstdint>
#include <vector>

namespace bimamba::kernels {

struct RepackedBits {
    std::vector<uint8_t> data;        // as repacked
    const uint8_t* placed = nullptr;  // the same bytes moved elsewhere; data is then empty
    const uint8_t* bytes() const { return placed ? placed : data.data(); }
    // Read from `at` (a copy of data, which the caller keeps alive) from now on.
    void place(const uint8_t* at) {
        placed = at;
        std::vector<uint8_t>().swap(data);
    }
};

}  // namespace bimamba::kernels
