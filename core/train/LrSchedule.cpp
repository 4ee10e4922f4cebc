#include "core/train/LrSchedule.h"

#include <algorithm>
#include <cmath>

namespace bimamba::train {

double LrSchedule::at(int64_t step) const {
    if (step < warmup_steps) return peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    const int64_t decay = total_steps - warmup_steps - 1;
    if (decay <= 0) return peak_lr;
    const double t = std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(decay), 0.0, 1.0);
    return final_lr + 0.5 * (peak_lr - final_lr) * (1.0 + std::cos(M_PI * t));
}

}  // namespace bimamba::train
