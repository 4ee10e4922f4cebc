#pragma once
// Teacher logits cache: run a teacher once over the training windows and keep
// its top-k logits per position, so distillation needs no teacher in memory.
//
// File (memory-mapped, little-endian):
//   bytes 0..7    magic "BMTCACHE"
//   bytes 8..15   u64 length H of a JSON header
//   H bytes       {"format":"bimamba-teacher-cache-v1","k":K,"seq_len":S,"vocab_size":V,
//                  "num_windows":N,"teacher":"...","dataset":"...","split":"train"}
//   padding to a multiple of 64
//   N windows × S positions × K  float16 logits (the teacher's raw logits, descending)
//   N windows × S positions × K  int32 token ids
// Window w covers tokens [w·S, w·S + S) of the split (inputs); the logits at
// position t predict token w·S + t + 1, as in training.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace bimamba::train {

class TeacherCache {
public:
    // Opens and validates (size, magic, header fields); throws naming the problem.
    static std::shared_ptr<TeacherCache> open(const std::string& path);
    ~TeacherCache();
    int k() const { return k_; }
    int seq_len() const { return seq_len_; }
    int vocab_size() const { return vocab_; }
    int64_t num_windows() const { return windows_; }
    // Returns (values float32 (S, K), ids int64 (S, K)) of one window.
    std::pair<torch::Tensor, torch::Tensor> window(int64_t w) const;
    // Stacks several windows: (values (n, S, K), ids (n, S, K)).
    std::pair<torch::Tensor, torch::Tensor> windows(const std::vector<int64_t>& ws) const;

private:
    TeacherCache() = default;
    void* map_ = nullptr;
    size_t size_ = 0;
    int k_ = 0, seq_len_ = 0, vocab_ = 0;
    int64_t windows_ = 0;
    const uint16_t* values_ = nullptr;
    const int32_t* ids_ = nullptr;
};

struct TeacherCacheSpec {
    int k = 64;
    int seq_len = 256;
    int vocab_size = 0;  // student vocabulary (teacher logits are sliced to it)
    int64_t num_windows = 0;
    int batch = 8;
    std::string teacher_name, dataset_name, split = "train";
};

// Writes a cache. `window_tokens(w)` returns the S input ids of window w
// (int64, shape (S)); `teacher_logits(ids (b, S))` returns logits (b, S, >=V).
// `progress(done, total)` is called after each batch. Atomic: temp file + rename.
void build_teacher_cache(const std::string& path, const TeacherCacheSpec& spec,
                         const std::function<torch::Tensor(int64_t)>& window_tokens,
                         const std::function<torch::Tensor(const torch::Tensor&)>& teacher_logits,
                         const std::function<void(int64_t, int64_t)>& progress = {});

// Soft-target cross-entropy against a top-k teacher, renormalised over the k
// kept tokens:  −mean_positions Σ_j softmax(v)_j · log_softmax(student)[id_j].
// student (b, S, V), values/ids (b, S, K).
torch::Tensor loss_soft_ce_topk(const torch::Tensor& student_logits, const torch::Tensor& values,
                                const torch::Tensor& ids);

}  // namespace bimamba::train
