#include "core/base/LossType.h"

#include <stdexcept>

namespace bimamba::base {

LossType loss_type_from_string(const std::string& s) {
    if (s == "ce") return LossType::CE;
    if (s == "soft_ce" || s == "kd") return LossType::SoftCE;
    if (s == "kl") return LossType::KL;
    if (s == "mix") return LossType::Mix;
    throw std::invalid_argument("unknown loss '" + s + "' (known: ce, soft_ce, kl, mix)");
}

std::string to_string(LossType t) {
    switch (t) {
        case LossType::CE:
            return "ce";
        case LossType::SoftCE:
            return "soft_ce";
        case LossType::KL:
            return "kl";
        case LossType::Mix:
            return "mix";
    }
    return "?";
}

std::string loss_kind_label(LossType t) {
    switch (t) {
        case LossType::CE:
            return "CE";
        case LossType::SoftCE:
            return "soft-target CE";
        case LossType::KL:
            return "KL divergence";
        case LossType::Mix:
            return "CE + soft-target CE mix";
    }
    return "?";
}

}  // namespace bimamba::base
