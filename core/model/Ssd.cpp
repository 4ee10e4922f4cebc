#include "core/model/Ssd.h"

#include <limits>

#ifdef BIMAMBA_HAVE_CUDA_KERNELS
#include "kernels/cuda/CudaOps.h"
#endif

namespace bimamba::model {

namespace F = torch::nn::functional;
using torch::indexing::Slice;

namespace {

// Heads share B and C within a group: (b, l, g, n) -> (b, l, h, n).
torch::Tensor expand_groups(const torch::Tensor& t, int64_t nheads) {
    int64_t g = t.size(-2);
    TORCH_CHECK(nheads % g == 0, "SSD: nheads (", nheads, ") must be a multiple of ngroups (", g, ")");
    return g == nheads ? t : t.repeat_interleave(nheads / g, /*dim=*/-2);
}

// segsum(x)[..., i, j] = sum_{k=j+1..i} x[k] for i >= j, -inf above the diagonal.
// Built from a masked cumulative sum (not a difference of cumsums) for stability.
torch::Tensor segsum(const torch::Tensor& x) {
    int64_t T = x.size(-1);
    auto opts = torch::TensorOptions().dtype(torch::kBool).device(x.device());
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.push_back(T);
    auto xe = x.unsqueeze(-1).expand(shape);  // xe[..., i, j] = x[i]
    auto strict_lower = torch::tril(torch::ones({T, T}, opts), -1);
    xe = xe.masked_fill(strict_lower.logical_not(), 0);
    auto xs = torch::cumsum(xe, -2);
    auto lower = torch::tril(torch::ones({T, T}, opts), 0);
    return xs.masked_fill(lower.logical_not(), -std::numeric_limits<double>::infinity());
}

std::pair<torch::Tensor, torch::Tensor> ssd_chunked_torch(const torch::Tensor& x_in, const torch::Tensor& dt_in,
                                                          const torch::Tensor& A_in, const torch::Tensor& B_in,
                                                          const torch::Tensor& C_in, int64_t T,
                                                          const torch::Tensor& initial_state) {
    // The scan runs in float32 (float64 stays float64) whatever autocast says:
    // exp of long cumulative sums is not safe in bf16.
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    auto ct = x_in.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    auto x = x_in.to(ct), dt = dt_in.to(ct), A = A_in.to(ct);
    const int64_t b = x.size(0), l = x.size(1), h = x.size(2), p = x.size(3);
    auto Bh = expand_groups(B_in.to(ct), h), Ch = expand_groups(C_in.to(ct), h);
    const int64_t n = Bh.size(-1);

    auto X = x * dt.unsqueeze(-1);  // (b, l, h, p)
    auto Adt = dt * A;              // (b, l, h)
    const int64_t pad = (T - l % T) % T;
    if (pad) {
        // Zero dt past the end: decay 1 and no input, so outputs and the final state are unchanged.
        X = F::pad(X, F::PadFuncOptions({0, 0, 0, 0, 0, pad}));
        Adt = F::pad(Adt, F::PadFuncOptions({0, 0, 0, pad}));
        Bh = F::pad(Bh, F::PadFuncOptions({0, 0, 0, 0, 0, pad}));
        Ch = F::pad(Ch, F::PadFuncOptions({0, 0, 0, 0, 0, pad}));
    }
    const int64_t L = l + pad, c = L / T;
    X = X.view({b, c, T, h, p});
    Bh = Bh.view({b, c, T, h, n});
    Ch = Ch.view({b, c, T, h, n});
    auto Ac = Adt.view({b, c, T, h}).permute({0, 3, 1, 2});  // (b, h, c, T)
    auto A_cumsum = torch::cumsum(Ac, -1);

    // 1. Within each chunk: the quadratic (attention-like) form.
    auto Lmat = torch::exp(segsum(Ac));                       // (b, h, c, T, T)
    auto CB = torch::einsum("bclhn,bcshn->bchls", {Ch, Bh});  // (b, c, h, T, T)
    auto M = CB * Lmat.permute({0, 2, 1, 3, 4});
    auto Y_diag = torch::einsum("bchls,bcshp->bclhp", {M, X});

    // 2. State at the end of each chunk from its own inputs.
    auto decay_states =
        torch::exp(A_cumsum.index({Slice(), Slice(), Slice(), Slice(-1, torch::indexing::None)}) - A_cumsum);
    auto Xd = X * decay_states.permute({0, 2, 3, 1}).unsqueeze(-1);  // (b, c, T, h, p)
    auto states = torch::einsum("bclhn,bclhp->bchpn", {Bh, Xd});     // (b, c, h, p, n)

    // 3. Pass states across chunks.
    auto init =
        initial_state.defined() ? initial_state.to(ct).unsqueeze(1) : torch::zeros({b, 1, h, p, n}, x.options());
    states = torch::cat({init, states}, 1);                                          // (b, c+1, h, p, n)
    auto last = A_cumsum.index({Slice(), Slice(), Slice(), -1});                     // (b, h, c)
    auto decay_chunk = torch::exp(segsum(F::pad(last, F::PadFuncOptions({1, 0}))));  // (b, h, c+1, c+1)
    auto new_states = torch::einsum("bhzc,bchpn->bzhpn", {decay_chunk, states});
    auto chunk_states = new_states.index({Slice(), Slice(0, c)});
    auto final_state = new_states.index({Slice(), c});

    // 4. Contribution of the carried-in state to each position.
    auto Y_off = torch::einsum("bclhn,bchpn->bclhp", {Ch, chunk_states}) *
                 torch::exp(A_cumsum).permute({0, 2, 3, 1}).unsqueeze(-1);
    auto Y = (Y_diag + Y_off).reshape({b, L, h, p});
    if (pad) Y = Y.index({Slice(), Slice(0, l)});
    return {Y.to(x_in.scalar_type()), final_state};
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> ssd_chunked(const torch::Tensor& x, const torch::Tensor& dt,
                                                    const torch::Tensor& A, const torch::Tensor& B,
                                                    const torch::Tensor& C, int64_t chunk_size,
                                                    const torch::Tensor& initial_state, bool allow_fused,
                                                    bool deterministic, const torch::Tensor& D) {
    TORCH_CHECK(x.dim() == 4 && dt.dim() == 3 && A.dim() == 1 && B.dim() == 4 && C.dim() == 4,
                "ssd_chunked: expected x (b,l,h,p), dt (b,l,h), A (h), B/C (b,l,g,n)");
    TORCH_CHECK(chunk_size > 0, "ssd_chunked: chunk_size must be > 0");
    TORCH_CHECK(!D.defined() || D.numel() == x.size(2), "ssd_chunked: D must have one element per head");
#ifdef BIMAMBA_HAVE_CUDA_KERNELS
    if (allow_fused && x.is_cuda() && x.scalar_type() != torch::kFloat64)
        return bimamba::cuda::ssd_chunked_fused(x, dt, A, B, C, chunk_size, initial_state,
                                                bimamba::cuda::SsdOptions{deterministic}, D);
#else
    (void)allow_fused;
    (void)deterministic;
#endif
    auto [y, fin] = ssd_chunked_torch(x, dt, A, B, C, chunk_size, initial_state);
    if (D.defined()) y = y + x * D.view({1, 1, x.size(2), 1}).to(x.scalar_type());
    return {y, fin};
}

torch::Tensor ssd_step(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& B,
                       const torch::Tensor& C, torch::Tensor& state) {
    const int64_t h = x.size(1);
    auto Bh = expand_groups(B.to(state.scalar_type()), h);  // (b, h, n)
    auto Ch = expand_groups(C.to(state.scalar_type()), h);
    auto dtf = dt.to(state.scalar_type());
    auto dA = torch::exp(dtf * A.to(state.scalar_type()));                                       // (b, h)
    auto dBx = (dtf.unsqueeze(-1) * x.to(state.scalar_type())).unsqueeze(-1) * Bh.unsqueeze(2);  // (b,h,p,n)
    state.mul_(dA.unsqueeze(-1).unsqueeze(-1)).add_(dBx);
    return torch::einsum("bhpn,bhn->bhp", {state, Ch});
}

std::pair<torch::Tensor, torch::Tensor> ssd_recurrent(const torch::Tensor& x, const torch::Tensor& dt,
                                                      const torch::Tensor& A, const torch::Tensor& B,
                                                      const torch::Tensor& C, const torch::Tensor& initial_state) {
    const int64_t b = x.size(0), l = x.size(1), h = x.size(2), p = x.size(3), n = B.size(-1);
    auto ct = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    auto state =
        initial_state.defined() ? initial_state.to(ct).clone() : torch::zeros({b, h, p, n}, x.options().dtype(ct));
    std::vector<torch::Tensor> ys;
    ys.reserve(l);
    for (int64_t t = 0; t < l; ++t)
        ys.push_back(ssd_step(x.select(1, t), dt.select(1, t), A, B.select(1, t), C.select(1, t), state));
    return {torch::stack(ys, 1).to(x.scalar_type()), state};
}

}  // namespace bimamba::model
