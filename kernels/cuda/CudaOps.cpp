// Autograd wrappers around the CUDA kernels (Binarize.cu, ConvSilu.cu, RmsNorm.cu, Ssd.cu), plus the
// chunked SSD scan with an analytic backward. Every op also runs on the CPU
// (through LibTorch ops standing in for the kernels), so the SSD algebra is
// tested against core/model's reference without a GPU.
#include "kernels/cuda/CudaOps.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <limits>
#include <tuple>

#include "kernels/cuda/Binarize.h"
#include "kernels/cuda/ConvSilu.h"
#include "kernels/cuda/RmsNorm.h"
#include "kernels/cuda/Ssd.h"
#include "kernels/reference/Norms.h"

namespace bimamba::cuda {

namespace {

namespace F = torch::nn::functional;
using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

bool kernel_dtype(c10::ScalarType t) {
    return t == torch::kFloat32 || t == torch::kBFloat16 || t == torch::kFloat16;
}

k::DType kdtype(const Tensor& t) {
    switch (t.scalar_type()) {
        case torch::kFloat32:
            return k::DType::F32;
        case torch::kBFloat16:
            return k::DType::BF16;
        case torch::kFloat16:
            return k::DType::F16;
        default:
            TORCH_CHECK(false, "bimamba::cuda: unsupported dtype ", t.scalar_type());
    }
}

cudaStream_t stream() {
    return at::cuda::getCurrentCUDAStream().stream();
}

// Every buffer a kernel must fill comes from here; tests poison them with NaN.
bool g_poison = false;
Tensor new_out(at::IntArrayRef sizes, const torch::TensorOptions& o) {
    auto t = torch::empty(sizes, o);
    if (g_poison) t.fill_(std::numeric_limits<double>::quiet_NaN());
    return t;
}
bool g_ref_elementwise = false;
SsdFn g_ref_ssd;

Tensor new_out_like(const Tensor& like) {
    return new_out(like.sizes(), like.options());
}

// ============================================================================
// FBI binarized weight
// ============================================================================

struct BinarizeFn : torch::autograd::Function<BinarizeFn> {
    static Tensor forward(AutogradContext* ctx, const Tensor& W, const Tensor& alpha, const Tensor& beta,
                          c10::ScalarType out_dtype) {
        c10::cuda::CUDAGuard guard(W.device());
        auto Wf = W.to(torch::kFloat32).contiguous();
        auto a = alpha.to(torch::kFloat32).contiguous();
        auto b = beta.to(torch::kFloat32).contiguous();
        const int64_t rows = W.size(0), cols = W.size(1);
        auto out = new_out({rows, cols}, W.options().dtype(out_dtype));
        k::binarize_fwd(Wf.data_ptr<float>(), a.data_ptr<float>(), b.data_ptr<float>(), out.data_ptr(), kdtype(out),
                        rows, cols, stream());
        ctx->save_for_backward({W, alpha, beta});
        return out;
    }
    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        auto s = ctx->get_saved_variables();
        const auto &W = s[0], &alpha = s[1], &beta = s[2];
        c10::cuda::CUDAGuard guard(W.device());
        auto g = grads[0].contiguous();
        auto Wf = W.to(torch::kFloat32).contiguous();
        auto a = alpha.to(torch::kFloat32).contiguous();
        const int64_t rows = W.size(0), cols = W.size(1);
        const int rb = (int)std::max<int64_t>(1, std::min<int64_t>(rows, 64));
        auto opts = W.options().dtype(torch::kFloat32);
        auto gW = new_out({rows, cols}, opts);
        auto ga = new_out({rb, cols}, opts), gb = new_out({rb, cols}, opts);
        k::binarize_bwd(g.data_ptr(), kdtype(g), Wf.data_ptr<float>(), a.data_ptr<float>(), gW.data_ptr<float>(),
                        ga.data_ptr<float>(), gb.data_ptr<float>(), rows, cols, rb, stream());
        return {gW.to(W.scalar_type()), ga.sum(0).view(alpha.sizes()).to(alpha.scalar_type()),
                gb.sum(0).view(beta.sizes()).to(beta.scalar_type()), Tensor()};
    }
};

// Reference: sign with an identity gradient, as core/model/BinaryLinear.cpp.
struct SignSte : torch::autograd::Function<SignSte> {
    static Tensor forward(AutogradContext*, const Tensor& w) { return torch::sign(w); }
    static tensor_list backward(AutogradContext*, tensor_list g) { return {g[0]}; }
};

// ============================================================================
// Causal depthwise conv1d + SiLU
// ============================================================================

struct ConvSiluFn : torch::autograd::Function<ConvSiluFn> {
    static Tensor forward(AutogradContext* ctx, const Tensor& x_in, const Tensor& weight, const Tensor& bias) {
        c10::cuda::CUDAGuard guard(x_in.device());
        auto x = x_in.stride(2) == 1 ? x_in : x_in.contiguous();
        const int64_t b = x.size(0), l = x.size(1), c = x.size(2), kw = weight.size(-1);
        auto w = weight.to(torch::kFloat32).reshape({c, kw}).contiguous();
        auto bs = bias.to(torch::kFloat32).contiguous();
        auto out = new_out({b, l, c}, x.options());
        k::conv1d_silu_fwd(x.data_ptr(), kdtype(x), x.stride(0), x.stride(1), w.data_ptr<float>(), bs.data_ptr<float>(),
                           out.data_ptr(), b, l, c, (int)kw, stream());
        ctx->save_for_backward({x, weight, bias});
        return out;
    }
    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        auto s = ctx->get_saved_variables();
        const auto &x = s[0], &weight = s[1], &bias = s[2];
        c10::cuda::CUDAGuard guard(x.device());
        const int64_t b = x.size(0), l = x.size(1), c = x.size(2), kw = weight.size(-1);
        auto g = grads[0].to(x.scalar_type()).contiguous();
        auto w = weight.to(torch::kFloat32).reshape({c, kw}).contiguous();
        auto bs = bias.to(torch::kFloat32).contiguous();
        const int64_t ntiles = (l + k::conv_tile_len() - 1) / k::conv_tile_len();
        auto f32 = x.options().dtype(torch::kFloat32);
        auto dx = new_out({b, l, c}, x.options());
        auto dw = new_out({b * ntiles, c, kw}, f32), db = new_out({b * ntiles, c}, f32);
        k::conv1d_silu_bwd(x.data_ptr(), kdtype(x), x.stride(0), x.stride(1), w.data_ptr<float>(), bs.data_ptr<float>(),
                           g.data_ptr(), dx.data_ptr(), dw.data_ptr<float>(), db.data_ptr<float>(), b, l, c, (int)kw,
                           stream());
        return {dx, dw.sum(0).view(weight.sizes()).to(weight.scalar_type()), db.sum(0).to(bias.scalar_type())};
    }
};

Tensor conv1d_silu_reference(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    const int64_t l = x.size(1), c = x.size(2), kw = weight.size(-1);
    auto ct = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    auto y = F::conv1d(x.transpose(1, 2).to(ct), weight.to(ct),
                       F::Conv1dFuncOptions().bias(bias.to(ct)).padding(kw - 1).groups(c));
    return F::silu(y.narrow(-1, 0, l)).transpose(1, 2).to(x.scalar_type());
}

// ============================================================================
// Gated RMSNorm
// ============================================================================

// The blocks' pre-norm. Output in `out_dtype` (the matmul's dtype under
// autocast); gradient to x in x's dtype.
struct RmsNormFn : torch::autograd::Function<RmsNormFn> {
    static Tensor forward(AutogradContext* ctx, const Tensor& x_in, const Tensor& weight, double eps,
                          c10::ScalarType out_dtype) {
        c10::cuda::CUDAGuard guard(x_in.device());
        const int64_t d = x_in.size(-1);
        auto x = x_in.reshape({-1, d}).contiguous();
        const int64_t m = x.size(0);
        auto w = weight.to(torch::kFloat32).contiguous();
        auto out = new_out({m, d}, x.options().dtype(out_dtype));
        auto rstd = new_out({m}, x.options().dtype(torch::kFloat32));
        k::rmsnorm_fwd(x.data_ptr(), kdtype(x), w.data_ptr<float>(), out.data_ptr(), kdtype(out),
                       rstd.data_ptr<float>(), m, d, (float)eps, stream());
        ctx->save_for_backward({x, weight, rstd});
        ctx->saved_data["x_shape"] = x_in.sizes().vec();
        return out.view(x_in.sizes());
    }
    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        auto s = ctx->get_saved_variables();
        const auto &x = s[0], &weight = s[1], &rstd = s[2];
        c10::cuda::CUDAGuard guard(x.device());
        auto shape = ctx->saved_data["x_shape"].toIntVector();
        const int64_t m = x.size(0), d = x.size(1);
        auto g = grads[0].reshape({m, d});
        if (!kernel_dtype(g.scalar_type())) g = g.to(x.scalar_type());
        g = g.contiguous();
        auto w = weight.to(torch::kFloat32).contiguous();
        auto dx = new_out({m, d}, x.options());
        const int rb = (int)std::max<int64_t>(1, std::min<int64_t>(m, 512));
        auto dw = new_out({rb, d}, x.options().dtype(torch::kFloat32));
        k::rmsnorm_bwd(x.data_ptr(), kdtype(x), w.data_ptr<float>(), rstd.data_ptr<float>(), g.data_ptr(), kdtype(g),
                       dx.data_ptr(), dw.data_ptr<float>(), m, d, rb, stream());
        return {dx.view(shape), dw.sum(0).to(weight.scalar_type()), Tensor(), Tensor()};
    }
};

// The residual add fused with the next pre-norm: {r = residual + delta, rmsnorm(r)}.
struct AddRmsNormFn : torch::autograd::Function<AddRmsNormFn> {
    static tensor_list forward(AutogradContext* ctx, const Tensor& res_in, const Tensor& delta_in, const Tensor& weight,
                               double eps, c10::ScalarType out_dtype) {
        c10::cuda::CUDAGuard guard(res_in.device());
        const int64_t d = res_in.size(-1);
        auto res = res_in.reshape({-1, d}).contiguous();
        auto delta = delta_in.reshape({-1, d}).contiguous();
        const int64_t m = res.size(0);
        auto w = weight.to(torch::kFloat32).contiguous();
        auto r = new_out({m, d}, res.options());
        auto out = new_out({m, d}, res.options().dtype(out_dtype));
        auto rstd = new_out({m}, res.options());
        k::add_rmsnorm_fwd(res.data_ptr<float>(), delta.data_ptr(), kdtype(delta), w.data_ptr<float>(),
                           r.data_ptr<float>(), out.data_ptr(), kdtype(out), rstd.data_ptr<float>(), m, d, (float)eps,
                           stream());
        ctx->save_for_backward({r, weight, rstd});
        ctx->saved_data["shape"] = res_in.sizes().vec();
        ctx->saved_data["delta_dtype"] = (int64_t)delta_in.scalar_type();
        ctx->set_materialize_grads(false);
        return {r.view(res_in.sizes()), out.view(res_in.sizes())};
    }
    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        auto s = ctx->get_saved_variables();
        const auto &r = s[0], &weight = s[1], &rstd = s[2];
        c10::cuda::CUDAGuard guard(r.device());
        auto shape = ctx->saved_data["shape"].toIntVector();
        const auto delta_dtype = (c10::ScalarType)ctx->saved_data["delta_dtype"].toInt();
        const int64_t m = r.size(0), d = r.size(1);
        Tensor g_r = grads[0].defined() ? grads[0].to(torch::kFloat32).reshape({m, d}).contiguous() : Tensor();
        Tensor g = grads[1].defined() ? grads[1].reshape({m, d}) : torch::zeros({m, d}, r.options());
        if (!kernel_dtype(g.scalar_type())) g = g.to(torch::kFloat32);
        g = g.contiguous();
        auto w = weight.to(torch::kFloat32).contiguous();
        auto d_res = new_out({m, d}, r.options());
        auto d_delta = new_out({m, d}, r.options().dtype(delta_dtype));
        const int rb = (int)std::max<int64_t>(1, std::min<int64_t>(m, 512));
        auto dw = new_out({rb, d}, r.options());
        k::add_rmsnorm_bwd(r.data_ptr<float>(), w.data_ptr<float>(), rstd.data_ptr<float>(), g.data_ptr(), kdtype(g),
                           g_r.defined() ? g_r.data_ptr<float>() : nullptr, d_res.data_ptr<float>(), d_delta.data_ptr(),
                           kdtype(d_delta), dw.data_ptr<float>(), m, d, rb, stream());
        return {d_res.view(shape), d_delta.view(shape), dw.sum(0).to(weight.scalar_type()), Tensor(), Tensor()};
    }
};

struct GatedRmsNormFn : torch::autograd::Function<GatedRmsNormFn> {
    static Tensor forward(AutogradContext* ctx, const Tensor& y_in, const Tensor& z_in, const Tensor& weight,
                          int64_t group_size, double eps) {
        c10::cuda::CUDAGuard guard(y_in.device());
        const int64_t d = y_in.size(-1);
        auto y = y_in.reshape({-1, d});
        if (y.stride(1) != 1) y = y.contiguous();
        auto z = z_in.to(y.scalar_type()).reshape({-1, d});
        if (z.stride(1) != 1) z = z.contiguous();
        const int64_t m = y.size(0), ng = d / group_size;
        auto w = weight.to(torch::kFloat32).contiguous();
        auto out = new_out({m, d}, y.options());
        auto rstd = new_out({m, ng}, y.options().dtype(torch::kFloat32));
        k::gated_rmsnorm_fwd(y.data_ptr(), z.data_ptr(), kdtype(y), y.stride(0), z.stride(0), w.data_ptr<float>(),
                             out.data_ptr(), rstd.data_ptr<float>(), m, ng, group_size, (float)eps, stream());
        ctx->save_for_backward({y, z, weight, rstd});
        ctx->saved_data["gs"] = group_size;
        ctx->saved_data["z_dtype"] = (int64_t)z_in.scalar_type();
        ctx->saved_data["y_shape"] = y_in.sizes().vec();
        return out.view(y_in.sizes());
    }
    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        auto s = ctx->get_saved_variables();
        const auto &y = s[0], &z = s[1], &weight = s[2], &rstd = s[3];
        c10::cuda::CUDAGuard guard(y.device());
        const int64_t gs = ctx->saved_data["gs"].toInt();
        const auto z_dtype = (c10::ScalarType)ctx->saved_data["z_dtype"].toInt();
        auto shape = ctx->saved_data["y_shape"].toIntVector();
        const int64_t m = y.size(0), d = y.size(1), ng = d / gs;
        auto g = grads[0].to(y.scalar_type()).reshape({m, d}).contiguous();
        auto w = weight.to(torch::kFloat32).contiguous();
        auto dy = new_out({m, d}, y.options()), dz = new_out({m, d}, y.options());
        const int rb = (int)std::max<int64_t>(1, std::min<int64_t>(m, 512));
        auto dw = new_out({rb, d}, y.options().dtype(torch::kFloat32));
        k::gated_rmsnorm_bwd(y.data_ptr(), z.data_ptr(), kdtype(y), y.stride(0), z.stride(0), w.data_ptr<float>(),
                             rstd.data_ptr<float>(), g.data_ptr(), dy.data_ptr(), dz.data_ptr(), dw.data_ptr<float>(),
                             m, ng, gs, rb, stream());
        return {dy.view(shape), dz.view(shape).to(z_dtype), dw.sum(0).to(weight.scalar_type()), Tensor(), Tensor()};
    }
};

// ============================================================================
// Chunked SSD scan.
//
// Per chunk of T positions and head h (a = inclusive cumsum of dt·A in the chunk):
//   M[t,s]  = (C_t·B_s) · exp(a_t − a_s) · dt_s            (s ≤ t)
//   Y       = M @ x  +  exp(a_t) · (C_t · S_prev)            (intra + carried-in state)
//   state   = Σ_s exp(a_T−1 − a_s) dt_s · x_s ⊗ B_s
//   S_c     = exp(a_T−1) · S_c−1 + state_c                    (sequential over chunks)
// C·Bᵀ is computed once per group (not per head, as the reference's einsum
// does); the matmuls run in the activations' dtype with fp32 accumulation
// (cuBLAS), the mask/exp/scale and its backward are one kernel each, and the
// state pass is one kernel. Nothing but the inputs is saved: the backward
// recomputes M and the chunk states (as mamba_ssm does) and applies the
// analytic gradient, so no (T×T)-per-head autograd graph is kept.
// ============================================================================

struct SsdDims {
    int64_t b, l, h, p, g, n, hg, T, pad, L, c;
};

SsdDims ssd_dims(const Tensor& x, const Tensor& B, int64_t T) {
    SsdDims d;
    d.b = x.size(0), d.l = x.size(1), d.h = x.size(2), d.p = x.size(3);
    d.g = B.size(2), d.n = B.size(3);
    TORCH_CHECK(d.h % d.g == 0, "ssd_chunked_fused: nheads (", d.h, ") must be a multiple of ngroups (", d.g, ")");
    d.hg = d.h / d.g;
    d.T = T;
    d.pad = (T - d.l % T) % T;
    d.L = d.l + d.pad;
    d.c = d.L / T;
    return d;
}

bool g_bmm_out_dtype_ok = true;

// Batched a @ b over identical leading dims, result in `out`. On CUDA, bf16/
// fp16 operands accumulate and store in fp32 directly when fp32 is asked for.
Tensor bmm_to(const Tensor& a, const Tensor& b, c10::ScalarType out) {
    auto shape = a.sizes().vec();
    shape.back() = b.size(-1);
    auto a3 = a.reshape({-1, a.size(-2), a.size(-1)});
    auto b3 = b.reshape({-1, b.size(-2), b.size(-1)});
    Tensor r;
    if (a.scalar_type() != out && a.is_cuda() && out == torch::kFloat32 && g_bmm_out_dtype_ok) {
        try {
            r = at::bmm(a3, b3, out);
        } catch (const std::exception&) {
            g_bmm_out_dtype_ok = false;  // older builds: fall back to a cast
        }
    }
    if (!r.defined()) r = at::bmm(a3, b3).to(out);
    return r.view(shape);
}

// (b,c,g,T,hg·p) seen as (b,c,g,hg,T,p): the heads layout as a strided view.
Tensor heads_view(const Tensor& t, const SsdDims& d) {
    return t.view({d.b, d.c, d.g, d.T, d.hg, d.p}).permute({0, 1, 2, 4, 3, 5});
}
Tensor pad_l(const Tensor& t, int64_t pad) {
    if (!pad) return t;
    std::vector<int64_t> p(2 * (t.dim() - 2), 0);  // pad pairs run from the last dim: dim 1 is last
    p.push_back(0);
    p.push_back(pad);
    return F::pad(t, F::PadFuncOptions(p));
}

// (b, l, X, Y) -> (b, c, X, T, Y) contiguous (with padding). On the GPU one
// vectorized pass reading t in place (its strided rows as the mixer's views
// give them) where the strides allow 16-byte accesses.
Tensor to_chunks4(const Tensor& t, const SsdDims& d) {
    if (t.is_cuda() && kernel_dtype(t.scalar_type()) && t.stride(3) == 1) {
        auto out = new_out({d.b, d.c, t.size(2), d.T, t.size(3)}, t.options());
        if (k::ssd_chunks_vec_ok(t.data_ptr(), out.data_ptr(), t.stride(0), t.stride(1), t.stride(2), t.size(3))) {
            k::ssd_to_chunks(t.data_ptr(), kdtype(t), t.stride(0), t.stride(1), t.stride(2), out.data_ptr(),
                             kdtype(out), d.b, d.l, t.size(2), t.size(3), d.T, stream());
            return out;
        }
    }
    return pad_l(t, d.pad).view({d.b, d.c, d.T, t.size(2), t.size(3)}).permute({0, 1, 3, 2, 4}).contiguous();
}
// from_chunks4 and a cast in one strided copy: (b,c,X,T,Y) -> (b,l,X,Y) in `dtype`.
Tensor from_chunks4_as(const Tensor& t, const SsdDims& d, c10::ScalarType dtype) {
    if (t.is_cuda() && kernel_dtype(t.scalar_type()) && kernel_dtype(dtype) && t.is_contiguous()) {
        auto out = new_out({d.b, d.l, t.size(2), t.size(4)}, t.options().dtype(dtype));
        if (k::ssd_chunks_vec_ok(t.data_ptr(), out.data_ptr(), 0, 0, 0, t.size(4))) {
            k::ssd_from_chunks(t.data_ptr(), kdtype(t), out.data_ptr(), kdtype(out), d.b, d.l, t.size(2), t.size(4),
                               d.T, stream());
            return out;
        }
    }
    auto out = torch::empty({d.b, d.L, t.size(2), t.size(4)}, t.options().dtype(dtype));
    out.view({d.b, d.c, d.T, t.size(2), t.size(4)}).copy_(t.permute({0, 1, 3, 2, 4}));
    return d.pad ? out.narrow(1, 0, d.l) : out;
}

// Quantities shared by forward and backward.
struct SsdCommon {
    Tensor xc;      // (b,c,h,T,p) cd
    Tensor dtc;     // (b,c,h,T) ad
    Tensor acum;    // (b,c,h,T) ad
    Tensor Bg, Cg;  // (b,c,g,T,n) cd
    Tensor CB;      // (b,c,g,T,T) ad
    Tensor M;       // (b,c,h,T,T) cd
    Tensor wdt;     // (b,c,h,T) ad: exp(a_last − a_s)·dt_s
    Tensor Xwg;     // (b,c,g,T,hg·p) cd: wdt·x, group layout
    Tensor alast;   // (b,c,h) ad
};

bool use_kernels(const Tensor& x, c10::ScalarType ad) {
    return x.is_cuda() && ad == torch::kFloat32;
}

// (b,c,h,T,p) heads layout × w (b,c,h,T) -> (b,c,g,T,hg,p) group layout, in
// t's dtype with fp32 math (what the next GEMM wants, in one pass).
Tensor heads_to_group(const Tensor& t, const Tensor& w, const SsdDims& d) {
    auto out = new_out({d.b, d.c, d.g, d.T, d.hg, d.p}, t.options());
    if (use_kernels(t, w.scalar_type())) {
        auto tc = t.contiguous(), wc = w.contiguous();
        k::ssd_heads_to_group(tc.data_ptr(), kdtype(tc), wc.data_ptr<float>(), out.data_ptr(), d.b * d.c * d.g, d.hg,
                              d.T, d.p, stream());
    } else {
        auto out_heads = out.permute({0, 1, 2, 4, 3, 5});
        at::mul_out(out_heads, t.view({d.b, d.c, d.g, d.hg, d.T, d.p}), w.view({d.b, d.c, d.g, d.hg, d.T, 1}));
    }
    return out;
}

// The SSD's D skip, folded into combine_chunks: out += D[h] · src (src (b,l,h,p):
// x in the forward, ∂y in the backward). With dD: also ∂D = Σ src · x2 over
// (b, l, p) (x2 = x), from per-(row, head) partials summed in a fixed order.
struct SkipArgs {
    Tensor D, src, x2;
    Tensor* dD = nullptr;
};

// Yh (b,c,h,T,p) + Q (b,c,g,T,hg·p) · w (b,c,h,T) (+ the skip), un-chunked to
// (b,l,h,p) in `dtype`. Yh is consumed (the reference path adds into it).
Tensor combine_chunks(Tensor& Yh, const Tensor& Q, const Tensor& w, const SsdDims& d, c10::ScalarType dtype,
                      const SkipArgs& skip = {}) {
    if (use_kernels(Yh, Yh.scalar_type())) {
        auto out = new_out({d.b, d.l, d.h, d.p}, Yh.options().dtype(dtype));
        auto yc = Yh.contiguous(), qc = Q.contiguous(), wc = w.contiguous();
        k::SsdSkip sk;
        Tensor Df, src, x2, part;
        auto rows_ok = [](Tensor t, c10::ScalarType dt) {
            t = t.to(dt);
            return t.stride(3) == 1 ? t : t.contiguous();
        };
        if (skip.D.defined()) {
            Df = skip.D.to(torch::kFloat32).contiguous();
            src = rows_ok(skip.src, dtype);
            sk.D = Df.data_ptr<float>();
            auto set_src = [&] {
                sk.src = src.data_ptr(), sk.sb = src.stride(0), sk.sl = src.stride(1), sk.sh = src.stride(2);
            };
            set_src();
            if (skip.dD) {
                x2 = rows_ok(skip.x2, dtype);
                auto set_x2 = [&] {
                    sk.x2 = x2.data_ptr(), sk.xb = x2.stride(0), sk.xl = x2.stride(1), sk.xh = x2.stride(2);
                };
                set_x2();
                if (!k::ssd_combine_chunks_dD_ok(d.p, sk) && d.p % 8 == 0) {
                    src = src.contiguous(), x2 = x2.contiguous();
                    set_src(), set_x2();
                }
                if (k::ssd_combine_chunks_dD_ok(d.p, sk)) {
                    part = new_out({d.b * d.c * d.g * d.T, d.hg}, Yh.options().dtype(torch::kFloat32));
                    sk.dD_part = part.data_ptr<float>();
                }
            }
        }
        k::ssd_combine_chunks(yc.data_ptr<float>(), qc.data_ptr<float>(), wc.data_ptr<float>(), out.data_ptr(),
                              kdtype(out), d.b, d.c, d.l, d.g, d.hg, d.T, d.p, sk, stream());
        if (skip.dD)
            *skip.dD = part.defined()
                           ? part.view({d.b * d.c, d.g, d.T, d.hg}).sum(std::vector<int64_t>{0, 2}).reshape({d.h})
                           : (src.to(torch::kFloat32) * x2.to(torch::kFloat32)).sum(std::vector<int64_t>{0, 1, 3});
        return out;
    }
    Yh.view({d.b, d.c, d.g, d.hg, d.T, d.p}).addcmul_(heads_view(Q, d), w.view({d.b, d.c, d.g, d.hg, d.T, 1}));
    if (!skip.D.defined()) return from_chunks4_as(Yh, d, dtype);
    const auto ad = Yh.scalar_type();
    auto out = from_chunks4_as(Yh, d, ad) + skip.src.to(ad) * skip.D.to(ad).view({1, 1, d.h, 1});
    if (skip.dD) *skip.dD = (skip.src.to(ad) * skip.x2.to(ad)).sum(std::vector<int64_t>{0, 1, 3});
    return out.to(dtype);
}

// Inclusive cumulative sum over the last dim (reverse: suffix sums). On the
// GPU our fixed-order kernel: LibTorch's CUDA cumsum is nondeterministic and
// refuses to run under its deterministic mode.
Tensor cumsum_last(const Tensor& t, bool reverse) {
    if (!use_kernels(t, t.scalar_type())) return reverse ? t.flip(-1).cumsum(-1).flip(-1) : t.cumsum(-1);
    auto in = t.contiguous();
    auto out = new_out_like(in);
    const int64_t T = in.size(-1);
    k::chunk_cumsum(in.data_ptr<float>(), out.data_ptr<float>(), T ? in.numel() / T : 0, T, reverse, stream());
    return out;
}

// exp(a_t − a_s) for s ≤ t, 0 above the diagonal: (…, T) -> (…, T, T)
Tensor decay_matrix(const Tensor& acum) {
    auto diff = acum.unsqueeze(-1) - acum.unsqueeze(-2);
    const int64_t T = acum.size(-1);
    auto upper = torch::triu(torch::ones({T, T}, acum.options().dtype(torch::kBool)), 1);
    return torch::exp(diff.masked_fill(upper, -std::numeric_limits<double>::infinity()));
}

SsdCommon ssd_common(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                     const SsdDims& d, c10::ScalarType cd, c10::ScalarType ad) {
    SsdCommon s;
    s.xc = to_chunks4(x.to(cd), d);
    s.dtc = pad_l(dt.to(ad), d.pad).view({d.b, d.c, d.T, d.h}).permute({0, 1, 3, 2}).contiguous();
    s.acum = cumsum_last(s.dtc * A.to(ad).view({1, 1, d.h, 1}), /*reverse=*/false);
    s.Bg = to_chunks4(B.to(cd), d);
    s.Cg = to_chunks4(C.to(cd), d);
    s.CB = bmm_to(s.Cg, s.Bg.transpose(-1, -2), ad);
    if (use_kernels(x, ad)) {
        s.M = new_out({d.b, d.c, d.h, d.T, d.T}, x.options().dtype(cd));
        k::ssd_build_m(s.CB.data_ptr<float>(), s.acum.data_ptr<float>(), s.dtc.data_ptr<float>(), s.M.data_ptr(),
                       kdtype(s.M), d.b * d.c, d.g, d.hg, d.T, stream());
    } else {
        auto CBh = s.CB.repeat_interleave(d.hg, 2);
        s.M = (CBh * decay_matrix(s.acum) * s.dtc.unsqueeze(-2)).to(cd);
    }
    s.alast = s.acum.select(-1, d.T - 1).contiguous();
    s.wdt = torch::exp(s.alast.unsqueeze(-1) - s.acum) * s.dtc;
    // wdt·x in one pass: mixed-dtype multiply (fp32 math), written in cd
    // straight into the group layout (b,c,g,T,hg,p) through a permuted view.
    auto Xw = heads_to_group(s.xc, s.wdt, d);
    s.Xwg = Xw.view({d.b, d.c, d.g, d.T, d.hg * d.p});
    return s;
}

// S_prev (b,c,h,p,n): the state entering each chunk, in fp32 (`need_f32`: the
// backward's ∂a_last reads it) and in the activation dtype cd (the GEMMs'
// operand, written by the scan itself); final (b,h,p,n).
struct SsdStates {
    Tensor S_prev, S_prev_cd, fin;
};
SsdStates ssd_states(const SsdCommon& s, const Tensor& init, const SsdDims& d, c10::ScalarType cd, c10::ScalarType ad,
                     bool need_f32) {
    auto states = bmm_to(s.Xwg.transpose(-1, -2), s.Bg, ad).view({d.b, d.c, d.h, d.p, d.n});
    auto init_a = init.defined() ? init.to(ad).contiguous() : Tensor();
    SsdStates r;
    if (use_kernels(s.xc, ad) && kernel_dtype(cd)) {
        if (need_f32) r.S_prev = new_out_like(states);
        r.S_prev_cd = new_out(states.sizes(), states.options().dtype(cd));
        r.fin = new_out({d.b, d.h, d.p, d.n}, states.options());
        k::ssd_state_scan(states.data_ptr<float>(), s.alast.data_ptr<float>(),
                          init_a.defined() ? init_a.data_ptr<float>() : nullptr,
                          need_f32 ? r.S_prev.data_ptr<float>() : nullptr, r.S_prev_cd.data_ptr(), kdtype(r.S_prev_cd),
                          r.fin.data_ptr<float>(), d.b, d.c, d.h, d.p * d.n, stream());
        return r;
    }
    auto S = init_a.defined() ? init_a : torch::zeros({d.b, d.h, d.p, d.n}, states.options());
    std::vector<Tensor> prev;
    for (int64_t ci = 0; ci < d.c; ++ci) {
        prev.push_back(S);
        S = torch::exp(s.alast.select(1, ci)).view({d.b, d.h, 1, 1}) * S + states.select(1, ci);
    }
    r.S_prev = torch::stack(prev, 1);
    r.S_prev_cd = r.S_prev.to(cd);
    r.fin = S;
    return r;
}

// D (h) or undefined: y += D[h] · x (the Mamba-2 skip, folded into the output pass).
std::pair<Tensor, Tensor> ssd_forward_impl(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B,
                                           const Tensor& C, int64_t T, const Tensor& init, const Tensor& D) {
    const auto d = ssd_dims(x, B, T);
    const auto cd = x.scalar_type();
    const auto ad = cd == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    auto s = ssd_common(x, dt, A, B, C, d, cd, ad);
    auto st = ssd_states(s, init, d, cd, ad, /*need_f32=*/false);
    auto Y = bmm_to(s.M, s.xc, ad);  // (b,c,h,T,p)
    auto Sg = st.S_prev_cd.view({d.b, d.c, d.g, d.hg * d.p, d.n});
    auto Qg = bmm_to(s.Cg, Sg.transpose(-1, -2), ad);  // C_t · S_prev, (b,c,g,T,hg·p)
    SkipArgs skip;
    if (D.defined()) skip.D = D, skip.src = x;
    return {combine_chunks(Y, Qg, torch::exp(s.acum), d, x.scalar_type(), skip), st.fin};
}

// Returns {dx, ddt, dA, dB, dC, dinit, dD}. `det`: no float atomics (SsdOptions).
tensor_list ssd_backward_impl(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                              int64_t T, const Tensor& init, const Tensor& D, const Tensor& dy_in, const Tensor& dfinal,
                              bool det) {
    const auto d = ssd_dims(x, B, T);
    const auto cd = x.scalar_type();
    const auto ad = cd == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    auto s = ssd_common(x, dt, A, B, C, d, cd, ad);
    auto st = ssd_states(s, init, d, cd, ad, /*need_f32=*/true);
    const auto& S_prev = st.S_prev;
    auto dy = dy_in.defined() ? dy_in.to(cd) : torch::zeros_like(x, x.options().dtype(cd));
    auto dyc = to_chunks4(dy, d);  // (b,c,h,T,p)

    // 1. Y_intra = M @ x
    auto dM = bmm_to(dyc, s.xc.transpose(-1, -2), cd);  // (b,c,h,T,T)
    auto dxc = bmm_to(s.M.transpose(-1, -2), dyc, ad);  // (b,c,h,T,p)
    s.M = Tensor();

    // 2. through M = CB · exp(a_t − a_s) · dt_s
    Tensor dCB, da, ddt;
    if (use_kernels(x, ad)) {
        dCB = new_out({d.b, d.c, d.g, d.T, d.T}, s.CB.options());
        auto da_row = new_out({d.b, d.c, d.h, d.T}, s.acum.options());
        Tensor ucol;
        if (det) {
            // One partial per row tile, summed in a fixed order (LibTorch's reductions are deterministic).
            auto part = new_out({d.b, d.c, d.h, k::ssd_m_bwd_row_tiles(d.T), d.T}, s.acum.options());
            k::ssd_m_bwd(dM.data_ptr(), kdtype(dM), s.CB.data_ptr<float>(), s.acum.data_ptr<float>(),
                         s.dtc.data_ptr<float>(), dCB.data_ptr<float>(), da_row.data_ptr<float>(),
                         part.data_ptr<float>(), /*deterministic=*/true, d.b * d.c, d.g, d.hg, d.T, stream());
            ucol = part.sum(-2);
        } else {
            // Like LibTorch's own nondeterministic ops: throws (or warns) under
            // LibTorch's deterministic mode, so a caller that forgot to pass
            // SsdOptions::deterministic does not silently lose reproducibility.
            at::globalContext().alertNotDeterministic(
                "bimamba::cuda::ssd_chunked_fused backward without SsdOptions::deterministic (float atomics)");
            ucol = torch::zeros({d.b, d.c, d.h, d.T}, s.acum.options());
            k::ssd_m_bwd(dM.data_ptr(), kdtype(dM), s.CB.data_ptr<float>(), s.acum.data_ptr<float>(),
                         s.dtc.data_ptr<float>(), dCB.data_ptr<float>(), da_row.data_ptr<float>(),
                         ucol.data_ptr<float>(), /*deterministic=*/false, d.b * d.c, d.g, d.hg, d.T, stream());
        }
        da = da_row - s.dtc * ucol;
        ddt = ucol;
    } else {
        auto e = dM.to(ad) * decay_matrix(s.acum);
        auto u = e * s.CB.repeat_interleave(d.hg, 2);
        auto v = u * s.dtc.unsqueeze(-2);
        dCB = (e * s.dtc.unsqueeze(-2)).view({d.b, d.c, d.g, d.hg, d.T, d.T}).sum(3);
        auto ucol = u.sum(-2);
        da = v.sum(-1) - s.dtc * ucol;
        ddt = ucol;
    }
    dM = Tensor();
    auto dC = bmm_to(dCB, s.Bg.to(ad), ad);  // (b,c,g,T,n)
    auto dB = bmm_to(dCB.transpose(-1, -2), s.Cg.to(ad), ad);
    dCB = Tensor();

    // 3. Y_state = exp(a_t) · C_t · S_prev
    // ey = exp(a_t)·dy in cd, written straight into the group layout (one pass).
    auto ey = heads_to_group(dyc, torch::exp(s.acum), d);
    auto eyg_cd = ey.view({d.b, d.c, d.g, d.T, d.hg * d.p});  // (b,c,g,T,hg·p)
    auto Sg_cd = st.S_prev_cd.view({d.b, d.c, d.g, d.hg * d.p, d.n});
    dC += bmm_to(eyg_cd, Sg_cd, ad);
    auto dS_prev = bmm_to(eyg_cd.transpose(-1, -2), s.Cg, ad).view({d.b, d.c, d.h, d.p, d.n});
    auto Qg = bmm_to(s.Cg, Sg_cd.transpose(-1, -2), ad);  // (b,c,g,T,hg·p)
    if (use_kernels(x, ad))                               // da += Σ_p ey·Q per head, without the fp32 product
        k::ssd_head_dot(eyg_cd.data_ptr(), kdtype(eyg_cd), /*a_group=*/true, Qg.data_ptr<float>(), /*b_group=*/true,
                        da.data_ptr<float>(), /*accumulate=*/true, d.b * d.c * d.g, d.hg, d.T, d.p, stream());
    else
        da += (eyg_cd * Qg)
                  .view({d.b, d.c, d.g, d.T, d.hg, d.p})
                  .sum(-1)
                  .permute({0, 1, 2, 4, 3})
                  .reshape({d.b, d.c, d.h, d.T});

    // 4. state passing, backwards: G_c = dL/dS_c; the kernel writes G in cd (the
    // GEMMs' operand) and, where P allows, ∂a_last's Σ G·S_prev as partials.
    Tensor Gg, dinit, dalast;
    auto dfin = dfinal.defined() ? dfinal.to(ad).contiguous() : Tensor();
    if (use_kernels(x, ad) && kernel_dtype(cd)) {
        const int64_t P = d.p * d.n, parts = k::ssd_state_scan_bwd_dal_parts(P);
        auto G_cd = new_out(dS_prev.sizes(), dS_prev.options().dtype(cd));
        Tensor G = parts ? Tensor() : new_out_like(dS_prev);
        Tensor dal = parts ? new_out({d.b, d.c, d.h, parts}, dS_prev.options()) : Tensor();
        dinit = new_out({d.b, d.h, d.p, d.n}, dS_prev.options());
        k::ssd_state_scan_bwd(
            dS_prev.data_ptr<float>(), s.alast.data_ptr<float>(), dfin.defined() ? dfin.data_ptr<float>() : nullptr,
            G.defined() ? G.data_ptr<float>() : nullptr, G_cd.data_ptr(), kdtype(G_cd), S_prev.data_ptr<float>(),
            parts ? dal.data_ptr<float>() : nullptr, dinit.data_ptr<float>(), d.b, d.c, d.h, P, stream());
        dalast = (parts ? dal.sum(-1) : (G * S_prev).sum({-1, -2})) * torch::exp(s.alast);  // (b,c,h)
        Gg = G_cd.view({d.b, d.c, d.g, d.hg * d.p, d.n});
    } else {
        auto Gc = dfin.defined() ? dfin : torch::zeros({d.b, d.h, d.p, d.n}, dS_prev.options());
        std::vector<Tensor> gs(d.c);
        for (int64_t ci = d.c - 1; ci >= 0; --ci) {
            gs[ci] = Gc;
            Gc = dS_prev.select(1, ci) + torch::exp(s.alast.select(1, ci)).view({d.b, d.h, 1, 1}) * Gc;
        }
        auto G = torch::stack(gs, 1);
        dinit = Gc;
        dalast = (G * S_prev).sum({-1, -2}) * torch::exp(s.alast);  // (b,c,h)
        Gg = G.view({d.b, d.c, d.g, d.hg * d.p, d.n}).to(cd);
    }

    // 5. state_c = Xwᵀ B with Xw = wdt · x
    // dXw read in place through a heads view of the group layout (no copy).
    auto dXw_group = bmm_to(s.Bg, Gg.transpose(-1, -2), ad);  // (b,c,g,T,hg·p)
    auto dXw = heads_view(dXw_group, d);                      // (b,c,g,hg,T,p) view
    dB += bmm_to(s.Xwg, Gg, ad);
    Tensor dwdt;
    if (use_kernels(x, ad)) {
        dwdt = new_out({d.b, d.c, d.h, d.T}, s.acum.options());
        k::ssd_head_dot(s.xc.data_ptr(), kdtype(s.xc), /*a_group=*/false, dXw_group.data_ptr<float>(), /*b_group=*/true,
                        dwdt.data_ptr<float>(), /*accumulate=*/false, d.b * d.c * d.g, d.hg, d.T, d.p, stream());
    } else {
        dwdt = (s.xc.view({d.b, d.c, d.g, d.hg, d.T, d.p}) * dXw).sum(-1).view({d.b, d.c, d.h, d.T});
    }
    Tensor dD;
    SkipArgs skip;
    if (D.defined()) skip.D = D, skip.src = dy, skip.x2 = x, skip.dD = &dD;
    auto dx_out = combine_chunks(dxc, dXw_group, s.wdt, d, x.scalar_type(), skip);
    dxc = Tensor();
    ddt += torch::exp(s.alast.unsqueeze(-1) - s.acum) * dwdt;
    auto q = s.wdt * dwdt;
    da -= q;
    da.select(-1, d.T - 1).add_(q.sum(-1) + dalast);

    // 6. a = cumsum(dt·A): reverse cumsum
    auto ddA = cumsum_last(da, /*reverse=*/true);
    ddt += ddA * A.to(ad).view({1, 1, d.h, 1});
    auto dA = (ddA * s.dtc).sum({0, 1, 3});

    auto ddt_out = ddt.permute({0, 1, 3, 2}).reshape({d.b, d.L, d.h});
    if (d.pad) ddt_out = ddt_out.narrow(1, 0, d.l);
    return {dx_out,
            ddt_out.to(dt.scalar_type()),
            dA.to(A.scalar_type()),
            from_chunks4_as(dB, d, B.scalar_type()),
            from_chunks4_as(dC, d, C.scalar_type()),
            init.defined() ? dinit.to(init.scalar_type()) : Tensor(),
            D.defined() ? dD.to(D.scalar_type()) : Tensor()};
}

struct SsdChunkedFn : torch::autograd::Function<SsdChunkedFn> {
    static tensor_list forward(AutogradContext* ctx, const Tensor& x, const Tensor& dt, const Tensor& A,
                               const Tensor& B, const Tensor& C, int64_t T, const Tensor& init_or_empty, bool has_init,
                               const Tensor& D_or_empty, bool has_D, bool deterministic) {
        // Autograd Functions take no undefined tensors: without an initial
        // state (or D), the argument is an empty placeholder.
        c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
        c10::OptionalDeviceGuard guard(x.device());
        ctx->set_materialize_grads(false);
        const Tensor init = has_init ? init_or_empty : Tensor();
        const Tensor D = has_D ? D_or_empty : Tensor();
        auto [y, fin] = ssd_forward_impl(x, dt, A, B, C, T, init, D);
        ctx->save_for_backward({x, dt, A, B, C, init_or_empty, D_or_empty});
        ctx->saved_data["T"] = T;
        ctx->saved_data["has_init"] = has_init;
        ctx->saved_data["has_D"] = has_D;
        ctx->saved_data["det"] = deterministic;
        return {y, fin};
    }
    static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
        c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
        auto s = ctx->get_saved_variables();
        c10::OptionalDeviceGuard guard(s[0].device());
        const int64_t T = ctx->saved_data["T"].toInt();
        const bool has_init = ctx->saved_data["has_init"].toBool();
        const bool has_D = ctx->saved_data["has_D"].toBool();
        const bool det = ctx->saved_data["det"].toBool();
        auto g = ssd_backward_impl(s[0], s[1], s[2], s[3], s[4], T, has_init ? s[5] : Tensor(), has_D ? s[6] : Tensor(),
                                   grads[0], grads[1], det);
        return {g[0],
                g[1],
                g[2],
                g[3],
                g[4],
                Tensor(),
                has_init ? g[5] : Tensor(),
                Tensor(),
                has_D ? g[6] : Tensor(),
                Tensor(),
                Tensor()};
    }
};

}  // namespace

// ---- public API ----------------------------------------------------------------

bool available() {
    return torch::cuda::is_available();
}

void set_poison_outputs(bool on) {
    g_poison = on;
}
void set_reference_ssd(SsdFn reference) {
    g_ref_ssd = std::move(reference);
}
void set_reference_elementwise(bool on) {
    g_ref_elementwise = on;
}

torch::Tensor binarize_weight(const torch::Tensor& W, const torch::Tensor& alpha, const torch::Tensor& beta,
                              c10::ScalarType out_dtype) {
    TORCH_CHECK(W.dim() == 2 && alpha.numel() == W.size(1) && beta.numel() == W.size(1),
                "binarize_weight: W (out,in) with alpha/beta of `in` elements");
    if (g_ref_elementwise || !W.is_cuda() || !kernel_dtype(out_dtype) || W.scalar_type() == torch::kFloat64)
        return (alpha * SignSte::apply(W) + beta).to(out_dtype);
    return BinarizeFn::apply(W, alpha, beta, out_dtype);
}

torch::Tensor causal_conv1d_silu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
    TORCH_CHECK(x.dim() == 3 && weight.dim() == 3 && weight.size(0) == x.size(2) && weight.size(1) == 1 &&
                    bias.numel() == x.size(2),
                "causal_conv1d_silu: x (b,l,c), weight (c,1,k), bias (c)");
    if (g_ref_elementwise || !x.is_cuda() || !kernel_dtype(x.scalar_type()) ||
        !k::conv_supported_k((int)weight.size(-1)))
        return conv1d_silu_reference(x, weight, bias);
    return ConvSiluFn::apply(x, weight, bias);
}

torch::Tensor rmsnorm(const torch::Tensor& x, const torch::Tensor& weight, double eps, c10::ScalarType out_dtype) {
    TORCH_CHECK(x.dim() >= 1 && weight.numel() == x.size(-1), "rmsnorm: x (..., d), weight (d)");
    if (g_ref_elementwise || !x.is_cuda() || !kernel_dtype(x.scalar_type()) || !kernel_dtype(out_dtype) ||
        x.size(-1) > k::rmsnorm_max_group())
        return reference::rmsnorm(x, weight, eps,
                                  x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32)
            .to(out_dtype);
    return RmsNormFn::apply(x, weight, eps, out_dtype);
}

std::pair<torch::Tensor, torch::Tensor> add_rmsnorm(const torch::Tensor& residual, const torch::Tensor& delta,
                                                    const torch::Tensor& weight, double eps,
                                                    c10::ScalarType out_dtype) {
    TORCH_CHECK(residual.sizes() == delta.sizes() && weight.numel() == residual.size(-1),
                "add_rmsnorm: residual, delta (..., d), weight (d)");
    const int64_t d = residual.size(-1);
    // 16-byte rows: contiguous inputs from the caching allocator (checked again by the launcher).
    if (!g_ref_elementwise && residual.is_cuda() && residual.scalar_type() == torch::kFloat32 &&
        kernel_dtype(delta.scalar_type()) && kernel_dtype(out_dtype) && weight.scalar_type() == torch::kFloat32 &&
        residual.is_contiguous() && delta.is_contiguous() &&
        k::add_rmsnorm_supported(residual.data_ptr(), delta.data_ptr(), nullptr, d)) {
        auto out = AddRmsNormFn::apply(residual, delta, weight, eps, out_dtype);
        return {out[0], out[1]};
    }
    auto r = residual + delta.to(residual.scalar_type());
    return {r, rmsnorm(r, weight, eps, out_dtype)};
}

torch::Tensor gated_rmsnorm(const torch::Tensor& y, const torch::Tensor& z, const torch::Tensor& weight,
                            int64_t group_size, double eps) {
    TORCH_CHECK(
        y.sizes() == z.sizes() && weight.numel() == y.size(-1) && group_size > 0 && y.size(-1) % group_size == 0,
        "gated_rmsnorm: y, z (..., d), weight (d), d a multiple of group_size");
    if (g_ref_elementwise || !y.is_cuda() || !kernel_dtype(y.scalar_type()) || group_size > k::rmsnorm_max_group())
        return reference::gated_rmsnorm(y, z, weight, group_size, eps);
    return GatedRmsNormFn::apply(y, z, weight, group_size, eps);
}

std::pair<torch::Tensor, torch::Tensor> ssd_chunked_fused(const torch::Tensor& x, const torch::Tensor& dt,
                                                          const torch::Tensor& A, const torch::Tensor& B,
                                                          const torch::Tensor& C, int64_t chunk_size,
                                                          const torch::Tensor& initial_state, const SsdOptions& options,
                                                          const torch::Tensor& D) {
    TORCH_CHECK(x.dim() == 4 && dt.dim() == 3 && A.dim() == 1 && B.dim() == 4 && C.dim() == 4 &&
                    B.sizes() == C.sizes() && chunk_size > 0 && (!D.defined() || D.numel() == x.size(2)),
                "ssd_chunked_fused: expected x (b,l,h,p), dt (b,l,h), A (h), B/C (b,l,g,n), D (h) or none");
    if (g_ref_ssd) {
        auto [y, fin] = g_ref_ssd(x, dt, A, B, C, chunk_size, initial_state);
        if (D.defined()) y = y + x * D.view({1, 1, x.size(2), 1}).to(x.scalar_type());
        return {y, fin};
    }
    const bool has_init = initial_state.defined(), has_D = D.defined();
    auto out = SsdChunkedFn::apply(x, dt, A, B, C, chunk_size, has_init ? initial_state : x.new_empty({0}), has_init,
                                   has_D ? D : x.new_empty({0}), has_D, options.deterministic);
    return {out[0], out[1]};
}

std::pair<size_t, size_t> device_memory(int device_index) {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_index));
    size_t free_b = 0, total_b = 0;
    C10_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return {free_b, total_b};
}

}  // namespace bimamba::cuda
