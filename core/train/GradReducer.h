#pragma once
// Bucketed gradient all-reduce overlapped with backward, for data-parallel
// training (the job of DDP's Reducer, small enough to read). Parameters are
// grouped, in reverse registration order (roughly the order backward finishes
// them), into buckets of at most `bucket_mb` MiB of one dtype and device. A
// post-accumulate-grad hook on each parameter marks it ready; when every
// parameter of a bucket is ready its gradients are copied into one flat
// buffer and an async sum all-reduce is launched, while backward goes on with
// the earlier layers. Buckets are launched strictly in order so every rank
// issues the same collectives in the same sequence. finish() waits, divides by
// the world size and copies the averaged gradients back.
//
// With gradient accumulation call prepare(false) before the backward of every
// micro-batch but the last and prepare(true) before the last: gradients are
// then synchronised once per optimizer step.
#include <memory>
#include <mutex>
#include <vector>

#include <torch/torch.h>

namespace c10d {
class Work;
}

namespace bimamba::train {

class Distributed;

class GradReducer {
public:
    GradReducer(Distributed& dist, const std::vector<torch::Tensor>& params, double bucket_mb = 25.0);
    ~GradReducer();  // removes the hooks
    GradReducer(const GradReducer&) = delete;
    GradReducer& operator=(const GradReducer&) = delete;

    // Before each backward: whether this backward's gradients are to be synchronised.
    void prepare(bool sync);
    // After the synchronising backward: launches buckets whose parameters got
    // no gradient (their slot is zero, the gradient stays undefined), waits for
    // all, and writes the rank-averaged gradients into .grad.
    void finish();

    size_t num_buckets() const { return buckets_.size(); }

    // Called by the hook (autograd thread).
    void mark_ready(size_t param_index);

private:
    struct Bucket {
        std::vector<size_t> params;    // indices into params_
        std::vector<int64_t> offsets;  // element offset of each in flat
        torch::Tensor flat;
        size_t pending = 0;  // parameters not yet ready
        c10::intrusive_ptr<c10d::Work> work;
        bool launched = false;
    };
    void launch(Bucket& b);
    void launch_ready_in_order();

    Distributed& dist_;
    std::vector<torch::Tensor> params_;
    std::vector<size_t> bucket_of_;  // param index -> bucket index
    std::vector<char> ready_;
    std::vector<Bucket> buckets_;
    size_t next_launch_ = 0;
    bool sync_ = false;
    std::mutex mu_;
};

}  // namespace bimamba::train
