#pragma once
// Element type of an activation buffer handed to a CUDA launcher.
namespace bimamba::cuda::k {

enum class DType : int { F32 = 0, BF16 = 1, F16 = 2 };

}  // namespace bimamba::cuda::k
