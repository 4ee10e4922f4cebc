#include "core/quant/Quantizers.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace bimamba::quant {

namespace {

void check_weight(const torch::Tensor& W, const char* who) {
    if (W.dim() != 2) throw std::invalid_argument(std::string(who) + ": weight must be 2-D (out × in)");
}
void check_bits(int bits, const char* who) {
    if (bits < 1 || bits > 16)
        throw std::invalid_argument(std::string(who) + ": bits must be in 1..16, got " + std::to_string(bits));
}
void check_hessian(const torch::Tensor& W, const torch::Tensor& H, const char* who) {
    if (H.dim() != 2 || H.size(0) != W.size(1) || H.size(1) != W.size(1))
        throw std::invalid_argument(std::string(who) + ": Hessian must be (in × in) = (" + std::to_string(W.size(1)) +
                                    " × " + std::to_string(W.size(1)) + ")");
}

// ±1 with sign(0) = +1, so binarized entries never vanish.
torch::Tensor pm1(const torch::Tensor& x) {
    return torch::where(x >= 0, torch::ones_like(x), -torch::ones_like(x));
}

// One asymmetric min-max grid per row: q = clamp(round(x/scale)+zero, 0, maxq), x̂ = scale·(q−zero).
struct Grid {
    torch::Tensor scale, zero;  // (rows, 1)
    double maxq = 1;

    static Grid fit(const torch::Tensor& w, int bits) {
        Grid g;
        g.maxq = std::pow(2.0, bits) - 1;
        auto xmin = std::get<0>(w.min(1, true)).clamp_max(0);
        auto xmax = std::get<0>(w.max(1, true)).clamp_min(0);
        auto flat = (xmin == 0) & (xmax == 0);  // an all-zero row: any grid containing 0 will do
        xmin = torch::where(flat, -torch::ones_like(xmin), xmin);
        xmax = torch::where(flat, torch::ones_like(xmax), xmax);
        g.scale = (xmax - xmin) / g.maxq;
        g.zero = torch::round(-xmin / g.scale);
        return g;
    }
    torch::Tensor apply(const torch::Tensor& x) const {  // x (rows, k) or (rows)
        auto s = x.dim() == 1 ? scale.squeeze(1) : scale;
        auto z = x.dim() == 1 ? zero.squeeze(1) : zero;
        auto q = torch::clamp(torch::round(x / s) + z, 0, maxq);
        return s * (q - z);
    }
};

// GPTQ/OBC's inverse Hessian factor: upper Cholesky factor of (H + λI)^{-1}.
// Dead inputs (zero diagonal) get H=1 and a zero weight column, as in GPTQ.
torch::Tensor inverse_hessian_factor(torch::Tensor& W, torch::Tensor H, double damp) {
    H = H.clone();
    auto diag = H.diagonal();
    auto dead = diag == 0;
    diag.masked_fill_(dead, 1.0);
    W.index_put_({torch::indexing::Slice(), dead}, 0.0);
    const double lambda = damp * diag.mean().item<double>();
    diag.add_(lambda);
    auto L = torch::linalg_cholesky(H);
    auto Hinv = torch::cholesky_inverse(L);
    return torch::linalg_cholesky(Hinv, /*upper=*/true);
}

}  // namespace

torch::Tensor minmax_quantize_rows(const torch::Tensor& w, int bits) {
    check_bits(bits, "minmax_quantize_rows");
    return Grid::fit(w, bits).apply(w);
}

torch::Tensor rtn_quantize(const torch::Tensor& W, int bits, int64_t group_size) {
    check_weight(W, "rtn_quantize");
    check_bits(bits, "rtn_quantize");
    torch::NoGradGuard ng;
    auto w = W.detach().to(torch::kFloat64);
    const int64_t cols = w.size(1);
    if (group_size <= 0 || group_size >= cols) return minmax_quantize_rows(w, bits).to(W.scalar_type());
    auto out = torch::empty_like(w);
    for (int64_t c = 0; c < cols; c += group_size) {
        const int64_t e = std::min(cols, c + group_size);
        out.slice(1, c, e).copy_(minmax_quantize_rows(w.slice(1, c, e), bits));
    }
    return out.to(W.scalar_type());
}

torch::Tensor gptq_quantize(const torch::Tensor& Win, const torch::Tensor& Hin, const GptqOptions& opt) {
    check_weight(Win, "gptq_quantize");
    check_hessian(Win, Hin, "gptq_quantize");
    check_bits(opt.bits, "gptq_quantize");
    if (opt.block_size <= 0) throw std::invalid_argument("gptq_quantize: block_size must be positive");
    torch::NoGradGuard ng;
    using torch::indexing::Slice;
    auto W = Win.detach().to(torch::kFloat64).clone();
    auto H = Hin.detach().to(torch::kFloat64);
    const int64_t n = W.size(1);

    torch::Tensor perm;
    if (opt.act_order) {
        perm = torch::argsort(H.diagonal(), /*dim=*/0, /*descending=*/true);
        W = W.index_select(1, perm);
        H = H.index_select(0, perm).index_select(1, perm);
    }
    auto Hinv = inverse_hessian_factor(W, H, opt.damp);
    Grid grid;
    if (opt.group_size <= 0) grid = Grid::fit(W, opt.bits);  // per row, from the weights before any update

    auto Q = torch::zeros_like(W);
    for (int64_t i1 = 0; i1 < n; i1 += opt.block_size) {
        const int64_t i2 = std::min(n, i1 + opt.block_size), count = i2 - i1;
        auto W1 = W.slice(1, i1, i2).clone();
        auto Q1 = torch::zeros_like(W1);
        auto Err1 = torch::zeros_like(W1);
        auto Hinv1 = Hinv.slice(0, i1, i2).slice(1, i1, i2);
        // The block's pivots, read once: on a GPU a per-column item() is a sync.
        const auto pivots = Hinv1.diagonal().cpu().contiguous();
        const double* pivot = pivots.data_ptr<double>();
        for (int64_t i = 0; i < count; ++i) {
            const int64_t col = i1 + i;
            if (opt.group_size > 0 && col % opt.group_size == 0) {
                // The group's current (already error-corrected) values: in-block ones live in W1.
                const int64_t g_end = std::min(n, col + opt.group_size);
                auto cur = W1.slice(1, i, std::min(count, g_end - i1));
                if (g_end > i2) cur = torch::cat({cur, W.slice(1, i2, g_end)}, 1);
                grid = Grid::fit(cur, opt.bits);
            }
            auto w = W1.select(1, i);
            const double d = pivot[i];
            auto q = grid.apply(w);
            Q1.select(1, i).copy_(q);
            auto err = (w - q) / d;
            W1.slice(1, i, count).sub_(err.unsqueeze(1) * Hinv1[i].slice(0, i, count).unsqueeze(0));
            Err1.select(1, i).copy_(err);
        }
        Q.slice(1, i1, i2).copy_(Q1);
        if (i2 < n) W.slice(1, i2, n).sub_(Err1.mm(Hinv.slice(0, i1, i2).slice(1, i2, n)));
    }
    if (opt.act_order) Q = Q.index_select(1, torch::argsort(perm));
    return Q.to(Win.scalar_type());
}

namespace {

// Row-wise mean of |x| over the entries selected by mask (0 where a row has none).
torch::Tensor masked_row_mean_abs(const torch::Tensor& x, const torch::Tensor& mask) {
    auto m = mask.to(x.scalar_type());
    return (x.abs() * m).sum(1, true) / m.sum(1, true).clamp_min(1);
}

struct BlockBinarization {
    torch::Tensor q, sparse;
    double err = std::numeric_limits<double>::infinity();
};

// Binarizes one block given its salient columns; searches the break point
// that splits the remaining magnitudes into a concentrated and a sparse group.
BlockBinarization binarize_block(const torch::Tensor& w, const torch::Tensor& salient_cols) {
    auto sal = salient_cols.unsqueeze(0).expand_as(w);
    auto rest = ~sal;
    auto q_sal = torch::zeros_like(w);
    if (salient_cols.any().item<bool>()) {
        auto a1 = masked_row_mean_abs(w, sal);
        auto b1 = a1 * pm1(w);
        auto r = w - b1;
        auto a2 = masked_row_mean_abs(r, sal);
        q_sal = (b1 + a2 * pm1(r)) * sal.to(w.scalar_type());
    }
    BlockBinarization best;
    auto mag = w.abs() * rest.to(w.scalar_type());
    const double top = mag.max().item<double>();
    const int steps = 20;
    for (int s = 0; s <= steps; ++s) {
        // s = 0: no split (one group); otherwise break at a fraction of the largest magnitude.
        const double p = s == 0 ? top : top * (0.05 + 0.9 * (s - 1) / (steps - 1));
        auto sparse = rest & (w.abs() > p);
        auto conc = rest & ~sparse;
        auto q = q_sal + masked_row_mean_abs(w, conc) * pm1(w) * conc.to(w.scalar_type()) +
                 masked_row_mean_abs(w, sparse) * pm1(w) * sparse.to(w.scalar_type());
        const double err = (w - q).pow(2).sum().item<double>();
        if (err < best.err) best = {q, sparse, err};
    }
    return best;
}

}  // namespace

BillmResult billm_binarize(const torch::Tensor& Win, const torch::Tensor& Hin, const BillmOptions& opt) {
    check_weight(Win, "billm_binarize");
    check_hessian(Win, Hin, "billm_binarize");
    if (opt.block_size <= 0) throw std::invalid_argument("billm_binarize: block_size must be positive");
    torch::NoGradGuard ng;
    auto W = Win.detach().to(torch::kFloat64).clone();
    auto Hinv = inverse_hessian_factor(W, Hin.detach().to(torch::kFloat64), opt.damp);
    const int64_t n = W.size(1);
    auto Q = torch::zeros_like(W);
    const auto bool_opts = W.options().dtype(torch::kBool);  // on W's device
    auto salient = torch::zeros({n}, bool_opts);
    auto sparse = torch::zeros(W.sizes(), bool_opts);

    for (int64_t i1 = 0; i1 < n; i1 += opt.block_size) {
        const int64_t i2 = std::min(n, i1 + opt.block_size), count = i2 - i1;
        auto W1 = W.slice(1, i1, i2).clone();
        auto Hinv1 = Hinv.slice(0, i1, i2).slice(1, i1, i2);
        // Column salience: Σ_o w² / [H⁻¹]_jj² (the OBS saliency with the factor's diagonal).
        auto score = (W1.pow(2) / Hinv1.diagonal().pow(2).unsqueeze(0)).sum(0);
        auto order = torch::argsort(score, 0, /*descending=*/true);
        BlockBinarization best;
        torch::Tensor best_mask;
        for (int64_t k : {0, 1, 2, 4, 8, 16, 32}) {
            if (k > count / 2) break;
            auto mask = torch::zeros({count}, bool_opts);
            if (k > 0) mask.index_fill_(0, order.slice(0, 0, k), true);
            auto b = binarize_block(W1, mask);
            if (b.err < best.err) best = b, best_mask = mask;
        }
        Q.slice(1, i1, i2).copy_(best.q);
        salient.slice(0, i1, i2).copy_(best_mask);
        sparse.slice(1, i1, i2).copy_(best.sparse);
        // OBC error feedback of this block onto the later columns.
        auto Err1 = torch::zeros_like(W1);
        const auto pivots = Hinv1.diagonal().cpu().contiguous();
        const double* pivot = pivots.data_ptr<double>();
        for (int64_t i = 0; i < count; ++i) {
            auto err = (W1.select(1, i) - best.q.select(1, i)) / pivot[i];
            W1.slice(1, i, count).sub_(err.unsqueeze(1) * Hinv1[i].slice(0, i, count).unsqueeze(0));
            Err1.select(1, i).copy_(err);
        }
        if (i2 < n) W.slice(1, i2, n).sub_(Err1.mm(Hinv.slice(0, i1, i2).slice(1, i2, n)));
    }
    return {Q.to(Win.scalar_type()), salient, sparse};
}

torch::Tensor sign_binarize(const torch::Tensor& W) {
    check_weight(W, "sign_binarize");
    torch::NoGradGuard ng;
    auto w = W.detach().to(torch::kFloat64);
    return (pm1(w) * w.abs().mean(1, true)).to(W.scalar_type());
}

double output_error(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H) {
    auto D = (W.to(torch::kFloat64) - Q.to(torch::kFloat64));
    return (D.mm(H.to(torch::kFloat64)) * D).sum().item<double>();
}

}  // namespace bimamba::quant
