#pragma once
// The training losses by name (docs/train-config.md, field `loss`); the
// losses themselves are LibTorch code in core/train/Losses.h.
#include <string>

namespace bimamba::base {

enum class LossType { CE, SoftCE, KL, Mix };
LossType loss_type_from_string(const std::string& s);  // "ce" | "soft_ce" (alias "kd") | "kl" | "mix"; throws
std::string to_string(LossType t);
// What the `loss` of a run's training lines measures, for a plot axis:
// "CE", "soft-target CE", "KL divergence", "CE + soft-target CE mix".
// Values of different kinds are not comparable (soft-target CE includes the
// teacher's entropy).
std::string loss_kind_label(LossType t);
inline bool loss_needs_teacher(LossType t) {
    return t != LossType::CE;
}

}  // namespace bimamba::base
