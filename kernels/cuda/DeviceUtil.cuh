#pragma once
// Helpers shared by the .cu files (device code; host code includes only the
// launcher headers: Binarize.h, ConvSilu.h, RmsNorm.h, Ssd.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/DType.h"

#include <stdexcept>
#include <string>

namespace bimamba::cuda::k {

// Throws if the last kernel launch failed.
inline void check_launch(const char* what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// Loads and stores of fp32 / bf16 / fp16 through float arithmetic.
__device__ __forceinline__ float to_f(float v) {
    return v;
}
__device__ __forceinline__ float to_f(__nv_bfloat16 v) {
    return __bfloat162float(v);
}
__device__ __forceinline__ float to_f(__half v) {
    return __half2float(v);
}
template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) {
    return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
    return __float2bfloat16(v);
}
template <>
__device__ __forceinline__ __half from_f<__half>(float v) {
    return __float2half(v);
}

// Calls f(T{}) with T the C++ type of `t`.
template <typename F>
void dispatch(DType t, F&& f) {
    switch (t) {
        case DType::F32:
            f(float{});
            break;
        case DType::BF16:
            f(__nv_bfloat16{});
            break;
        case DType::F16:
            f(__half{});
            break;
    }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float sigmoidf_(float v) {
    return 1.f / (1.f + __expf(-v));
}

// Sum over the block; every thread gets the result. `sh` holds >= 32 floats.
__device__ __forceinline__ float block_sum(float v, float* sh) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();  // sh may still be read by a previous call
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float r = lane < nw ? sh[lane] : 0.f;
    return warp_sum(r);
}

}  // namespace bimamba::cuda::k
