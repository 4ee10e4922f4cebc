#pragma once
// The torchrun-style launch environment of a data-parallel `bimamba train`
// (docs/multi-gpu.md). Plain C++: Trainer.h and the CLI include it.
#include <string>

namespace bimamba::train {

// The launch environment. world_size 1 (no WORLD_SIZE, or WORLD_SIZE=1) is a
// plain single-process run.
struct DistEnv {
    int rank = 0;
    int world_size = 1;
    int local_rank = 0;
    int local_world_size = 0;  // LOCAL_WORLD_SIZE if set (torchrun), else 0
    std::string master_addr;
    int master_port = 0;
    double bucket_mb = 25.0;  // BIMAMBA_DDP_BUCKET_MB: gradient bucket size in MiB (GradReducer)

    bool distributed() const { return world_size > 1; }

    // Reads the variables; throws std::invalid_argument with a clear message
    // for a bad setup (WORLD_SIZE > 1 without RANK / MASTER_ADDR / MASTER_PORT,
    // RANK >= WORLD_SIZE, non-numeric values, LOCAL_RANK >= LOCAL_WORLD_SIZE).
    // LOCAL_RANK defaults to RANK (one host).
    static DistEnv from_environment();
};

}  // namespace bimamba::train
