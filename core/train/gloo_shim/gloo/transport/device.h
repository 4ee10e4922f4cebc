#pragma once
// See core/train/gloo_shim/README.md: incomplete types, only held by smart pointers.
namespace gloo::transport {
class Device;
class UnboundBuffer;
}  // namespace gloo::transport
