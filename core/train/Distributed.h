#pragma once
// Data-parallel plumbing for `bimamba train` over torch's c10d, without Python:
// a c10d::TCPStore rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 hosts it) and
// a process group, ProcessGroupNCCL for CUDA devices (when this build has it)
// or ProcessGroupGloo on CPU. Launched like torchrun: RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT (docs/multi-gpu.md).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "core/train/DistributedEnv.h"

namespace c10d {
class Backend;
class Store;
class Work;
}  // namespace c10d

namespace bimamba::train {

// Seconds before a collective or the rendezvous gives up
// (BIMAMBA_DIST_TIMEOUT_S, default 1800).
std::chrono::milliseconds dist_timeout();

// True when this build can create ProcessGroupNCCL (built with CUDA and nccl.h).
bool nccl_available();

class Distributed {
public:
    // Rendezvous only (the store): cheap, and enough for agree()/share_string().
    explicit Distributed(const DistEnv& env);
    ~Distributed();
    Distributed(const Distributed&) = delete;
    Distributed& operator=(const Distributed&) = delete;

    // Creates the process group for tensors on `device`: NCCL for CUDA, Gloo
    // for CPU. Throws if the backend is not available in this build.
    void init_process_group(const torch::Device& device);

    int rank() const { return env_.rank; }
    int world_size() const { return env_.world_size; }
    bool is_main() const { return env_.rank == 0; }
    const DistEnv& env() const { return env_; }
    const std::string& backend_name() const { return backend_name_; }

    // In-place sum over ranks.
    c10::intrusive_ptr<c10d::Work> allreduce_sum_async(torch::Tensor& t);
    void allreduce_sum(torch::Tensor& t);
    // In-place broadcast of each tensor from `root`.
    void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
    void barrier();
    // Orderly end (after the last collective on every rank); without it the
    // destructor aborts the process group instead.
    void shutdown();

    // Every rank calls this at the same point with its own error ("" if fine).
    // Returns only when every rank passed ""; otherwise throws on every rank,
    // naming each failed rank and its message.
    void agree(const std::string& phase, const std::string& error);
    // Rank 0's `value` (ignored on other ranks) returned on every rank.
    std::string share_string(const std::string& key, const std::string& value);

private:
    DistEnv env_;
    torch::Device device_{torch::kCPU};
    std::string backend_name_;
    c10::intrusive_ptr<c10d::Store> store_;
    c10::intrusive_ptr<c10d::Backend> pg_;
    bool shut_down_ = false;
};

}  // namespace bimamba::train
