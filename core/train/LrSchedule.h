#pragma once
// Learning-rate schedule: linear warm-up to the peak, then cosine decay to a
// final rate at the last step (the paper: 2000 warm-up steps, 2.5e-4 -> 2.5e-5).
// A pure function of the step, so a resumed run needs no scheduler state
// beyond the step counter.
#include <cstdint>

namespace bimamba::train {

struct LrSchedule {
    double peak_lr = 2.5e-4;
    double final_lr = 2.5e-5;
    int64_t warmup_steps = 0;
    int64_t total_steps = 1;

    // Rate for optimizer step `step` (0-based): peak·(step+1)/warmup during
    // warm-up, then final + ½(peak − final)(1 + cos(π·t)), t = (step − warmup)/(total − warmup − 1) ∈ [0, 1].
    double at(int64_t step) const;
};

}  // namespace bimamba::train
