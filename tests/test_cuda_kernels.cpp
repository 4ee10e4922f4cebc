// The fused CUDA kernels (kernels/cuda) against the LibTorch-ops references
// in core/model, forward and backward, on fresh random inputs of several
// shapes. Outputs are poisoned with NaN before each run, so an element a
// kernel forgets to write fails the comparison. Deterministic mode: the SSD's
// atomics-free backward against the same references, and every kernel (and a
// whole training step) run twice giving bit-identical results. Needs a GPU;
// without one the GPU tests skip (the SSD algebra test runs on the CPU everywhere).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <tuple>
#include <vector>

#include "core/base/Mamba2Config.h"
#include "core/model/Mamba2Model.h"
#include "core/model/Autocast.h"
#include "core/model/Ssd.h"
#include "core/train/Determinism.h"

#ifdef BIMAMBA_HAVE_CUDA_KERNELS
#include "kernels/cuda/CudaOps.h"
#include "kernels/cuda/Binarize.h"
#include "kernels/cuda/ConvSilu.h"
#include "kernels/cuda/RmsNorm.h"
#include "kernels/cuda/Ssd.h"
#endif

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::model;
using namespace bimamba::train;
namespace F = torch::nn::functional;

#ifndef BIMAMBA_HAVE_CUDA_KERNELS

TEST(CudaKernels, NotBuilt) {
    GTEST_SKIP() << "built without CUDA kernels (BIMAMBA_CUDA=OFF or no nvcc)";
}

#else

namespace {

#define REQUIRE_GPU()                                                                                 \
    do {                                                                                              \
        if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: GPU kernel tests skipped"; \
    } while (0)

// ‖a − b‖ / ‖b‖ in float64; NaN anywhere gives +inf (never passes).
double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
    auto ad = a.detach().to(torch::kCPU, torch::kFloat64), bd = b.detach().to(torch::kCPU, torch::kFloat64);
    if (!torch::isfinite(ad).all().item<bool>()) return INFINITY;
    double den = bd.norm().item<double>();
    return (ad - bd).norm().item<double>() / std::max(den, 1e-30);
}

struct Poison {
    Poison() { cuda::set_poison_outputs(true); }
    ~Poison() { cuda::set_poison_outputs(false); }
};

torch::Tensor grad_of(const torch::Tensor& t) {
    return t.grad().defined() ? t.grad() : torch::zeros_like(t);
}

// Bit-identical (same dtype, shape and bits; NaN never passes).
void expect_same_bits(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
                      const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].scalar_type(), b[i].scalar_type()) << what << " #" << i;
        ASSERT_EQ(a[i].sizes(), b[i].sizes()) << what << " #" << i;
        EXPECT_TRUE(torch::isfinite(a[i]).all().item<bool>()) << what << " #" << i;
        EXPECT_TRUE(torch::equal(a[i], b[i]))
            << what << " #" << i << ": two calls differ, max abs diff "
            << (a[i].to(torch::kFloat64) - b[i].to(torch::kFloat64)).abs().max().item<double>();
    }
}

const torch::Device kGpu(torch::kCUDA);

}  // namespace

// ---- binarized weight ---------------------------------------------------------

TEST(CudaKernels, BinarizeWeightMatchesReference) {
    REQUIRE_GPU();
    Poison poison;
    torch::manual_seed(1);
    for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t> >{{1, 1}, {64, 48}, {257, 1000}, {6448, 1536}}) {
        for (auto dt : {torch::kBFloat16, torch::kFloat32}) {
            auto f32 = torch::TensorOptions().device(kGpu).dtype(torch::kFloat32);
            auto W = torch::randn({rows, cols}, f32);
            W.index_put_({0, 0}, 0.0);  // sign(0) = 0
            W.requires_grad_(true);
            auto alpha = (torch::rand({1, cols}, f32) * 0.1 + 0.01).requires_grad_(true);
            auto beta = (torch::randn({1, cols}, f32) * 0.02).requires_grad_(true);
            auto out = cuda::binarize_weight(W, alpha, beta, dt);
            ASSERT_EQ(out.scalar_type(), dt);
            auto g = torch::randn({rows, cols}, f32).to(dt);
            out.backward(g);

            auto W2 = W.detach().clone().requires_grad_(true);
            auto a2 = alpha.detach().clone().requires_grad_(true), b2 = beta.detach().clone().requires_grad_(true);
            auto sgn = torch::sign(W2.detach()) + (W2 - W2.detach());  // straight-through sign
            auto ref = a2 * sgn + b2;
            ref.backward(g.to(torch::kFloat32));
            EXPECT_LT(rel_err(out, ref.to(dt)), 1e-6) << rows << "x" << cols;  // same rounding
            EXPECT_LT(rel_err(W.grad(), W2.grad()), 1e-6);
            EXPECT_LT(rel_err(alpha.grad(), a2.grad()), 1e-5);
            EXPECT_LT(rel_err(beta.grad(), b2.grad()), 1e-5);
        }
    }
}

// ---- causal conv1d + SiLU -----------------------------------------------------

TEST(CudaKernels, CausalConv1dSiluMatchesReference) {
    REQUIRE_GPU();
    Poison poison;
    torch::manual_seed(2);
    struct Case {
        int64_t b, l, c, k;
    };
    for (auto cs : std::vector<Case>{
             {1, 1, 8, 4}, {2, 37, 40, 4}, {3, 200, 3328, 4}, {2, 64, 16, 3}, {2, 100, 24, 2}, {1, 129, 130, 4}}) {
        for (auto dt : {torch::kBFloat16, torch::kFloat32}) {
            auto o = torch::TensorOptions().device(kGpu);
            // x is a narrow of a wider tensor, as in the mixer (rows strided).
            auto wide = torch::randn({cs.b, cs.l, cs.c + 7}, o.dtype(torch::kFloat32)).to(dt);
            auto x = wide.narrow(2, 3, cs.c).detach().requires_grad_(false);
            auto xg = x.clone();  // contiguous leaf for the reference
            auto xs = wide.clone().requires_grad_(true);
            auto x_in = xs.narrow(2, 3, cs.c);
            auto w = (torch::randn({cs.c, 1, cs.k}, o) * 0.5).requires_grad_(true);
            auto bias = (torch::randn({cs.c}, o) * 0.5).requires_grad_(true);
            auto out = cuda::causal_conv1d_silu(x_in, w, bias);
            ASSERT_EQ(out.scalar_type(), dt);
            auto g = torch::randn_like(out, o.dtype(torch::kFloat32)).to(dt);
            out.backward(g);

            auto xr = xg.to(torch::kFloat64).requires_grad_(true);
            auto wr = w.detach().to(torch::kFloat64).requires_grad_(true);
            auto br = bias.detach().to(torch::kFloat64).requires_grad_(true);
            auto ref = F::silu(F::conv1d(xr.transpose(1, 2), wr,
                                         F::Conv1dFuncOptions().bias(br).padding(cs.k - 1).groups(cs.c))
                                   .narrow(-1, 0, cs.l))
                           .transpose(1, 2);
            ref.backward(g.to(torch::kFloat64));
            const double tol = dt == torch::kBFloat16 ? 8e-3 : 1e-5;
            EXPECT_LT(rel_err(out, ref), tol) << cs.b << "," << cs.l << "," << cs.c << "," << cs.k;
            EXPECT_LT(rel_err(xs.grad().narrow(2, 3, cs.c), xr.grad()), tol);
            EXPECT_EQ(xs.grad().narrow(2, 0, 3).abs().sum().item<double>(), 0.0);
            EXPECT_LT(rel_err(w.grad(), wr.grad()), tol);
            EXPECT_LT(rel_err(bias.grad(), br.grad()), tol);
        }
    }
}

// ---- gated RMSNorm --------------------------------------------------------------

TEST(CudaKernels, GatedRmsNormMatchesReference) {
    REQUIRE_GPU();
    Poison poison;
    torch::manual_seed(3);
    struct Case {
        int64_t b, l, d, gs, zoff;  // zoff: z's offset in its wider rows (a multiple of 8: 16-byte kernels)
    };
    for (auto cs : std::vector<Case>{{1, 1, 8, 8, 5},
                                     {4, 7, 64, 64, 5},
                                     {2, 33, 3072, 3072, 5},
                                     {3, 5, 256, 64, 5},
                                     {2, 10, 100, 50, 5},
                                     {1, 3, 5120, 5120, 5},
                                     // the vectorized kernels (rows of 16-byte multiples, aligned)
                                     {1, 1, 8, 8, 8},
                                     {4, 7, 64, 64, 8},
                                     {2, 33, 3072, 3072, 8},
                                     {3, 5, 256, 64, 8},
                                     {1, 3, 5120, 5120, 8},
                                     {2, 2, 8192, 8192, 0},
                                     {4, 300, 3072, 3072, 3376},  // many rows per backward block
                                     {2, 401, 1536, 768, 8}}) {
        for (auto dt : {torch::kBFloat16, torch::kFloat32}) {
            auto o = torch::TensorOptions().device(kGpu);
            auto y = (torch::randn({cs.b, cs.l, cs.d}, o) * 2).to(dt).requires_grad_(true);
            auto zw = (torch::randn({cs.b, cs.l, cs.d + cs.zoff}, o) * 2).to(dt).requires_grad_(true);
            auto z = zw.narrow(-1, cs.zoff, cs.d);  // strided rows, as in the mixer
            auto w = (torch::rand({cs.d}, o) + 0.5).requires_grad_(true);
            auto out = cuda::gated_rmsnorm(y, z, w, cs.gs, 1e-5);
            ASSERT_EQ(out.scalar_type(), dt);
            auto g = torch::randn_like(out, o.dtype(torch::kFloat32)).to(dt);
            out.backward(g);

            auto yr = y.detach().to(torch::kFloat64).requires_grad_(true);
            auto zr = z.detach().to(torch::kFloat64).requires_grad_(true);
            auto wr = w.detach().to(torch::kFloat64).requires_grad_(true);
            GatedRMSNorm ref_mod(cs.d, cs.gs, 1e-5);
            ref_mod->to(kGpu, torch::kFloat64);
            {
                torch::NoGradGuard ng;
                ref_mod->weight.copy_(wr);
            }
            auto ref = ref_mod->forward(yr, zr);  // float64: the LibTorch-ops path
            ref.backward(g.to(torch::kFloat64));
            const double tol = dt == torch::kBFloat16 ? 8e-3 : 1e-5;
            EXPECT_LT(rel_err(out, ref), tol) << cs.b << "," << cs.l << "," << cs.d << "," << cs.gs;
            EXPECT_LT(rel_err(y.grad(), yr.grad()), tol * 2);
            EXPECT_LT(rel_err(zw.grad().narrow(-1, cs.zoff, cs.d), zr.grad()), tol * 2);
            EXPECT_LT(rel_err(w.grad(), ref_mod->weight.grad()), tol);
        }
    }
}

TEST(CudaKernels, RmsNormMatchesFloat64Reference) {
    REQUIRE_GPU();
    Poison poison;
    torch::manual_seed(4);
    struct Case {
        int64_t m, d;
    };
    struct Types {
        c10::ScalarType x, out;
    };
    for (auto cs :
         std::vector<Case>{{1, 3}, {3, 7}, {33, 1536}, {5, 2050}, {2, 8192}, {300, 768}, {3001, 1536}, {4, 6144}}) {
        // fp32 residual -> bf16 (the training path), and same-dtype uses.
        for (auto ty : std::vector<Types>{{torch::kFloat32, torch::kBFloat16},
                                          {torch::kFloat32, torch::kFloat32},
                                          {torch::kBFloat16, torch::kBFloat16}}) {
            auto o = torch::TensorOptions().device(kGpu);
            auto x = (torch::randn({cs.m, cs.d}, o) * 3 + 0.5).to(ty.x).requires_grad_(true);
            auto w = (torch::rand({cs.d}, o) + 0.5).requires_grad_(true);
            auto out = cuda::rmsnorm(x, w, 1e-5, ty.out);
            ASSERT_EQ(out.scalar_type(), ty.out);
            auto g = torch::randn(out.sizes(), o).to(ty.out);
            out.backward(g);

            // Independent reference: explicit float64 formula and autograd.
            auto xr = x.detach().to(torch::kFloat64).requires_grad_(true);
            auto wr = w.detach().to(torch::kFloat64).requires_grad_(true);
            auto ref = xr / torch::sqrt(xr.pow(2).mean(-1, true) + 1e-5) * wr;
            ref.backward(g.to(torch::kFloat64));
            const bool low = ty.x == torch::kBFloat16 || ty.out == torch::kBFloat16;
            const double tol = low ? 8e-3 : 1e-5;
            EXPECT_LT(rel_err(out, ref), tol) << cs.m << "x" << cs.d;
            EXPECT_LT(rel_err(x.grad(), xr.grad()), ty.x == torch::kBFloat16 ? 1.6e-2 : tol) << cs.m << "x" << cs.d;
            EXPECT_EQ(x.grad().scalar_type(), ty.x);
            EXPECT_LT(rel_err(w.grad(), wr.grad()), tol) << cs.m << "x" << cs.d;
        }
    }
}

// The residual add fused with the next pre-norm: {r = residual + delta,
// rmsnorm(r)} and every gradient (r's own gradient and the norm's summed),
// against float64 autograd; with and without a gradient reaching r directly
// (the last block feeds only norm_f); d not a multiple of 8: the LibTorch
// fallback; many rows per backward block; 6144 channels: two chunks a thread.
TEST(CudaKernels, AddRmsNormMatchesFloat64Reference) {
    REQUIRE_GPU();
    Poison poison;
    torch::manual_seed(12);
    struct Case {
        int64_t m, d;
    };
    for (auto cs : std::vector<Case>{{1, 8}, {33, 1536}, {3001, 1536}, {5, 2050}, {4, 6144}, {300, 768}}) {
        for (auto dd : {torch::kBFloat16, torch::kFloat32}) {
            for (bool use_r : {true, false}) {
                auto o = torch::TensorOptions().device(kGpu);
                auto res = (torch::randn({cs.m, cs.d}, o) * 3 + 0.5).requires_grad_(true);
                auto delta = torch::randn({cs.m, cs.d}, o).to(dd).requires_grad_(true);
                auto w = (torch::rand({cs.d}, o) + 0.5).requires_grad_(true);
                auto [r, out] = cuda::add_rmsnorm(res, delta, w, 1e-5, dd);
                ASSERT_EQ(r.scalar_type(), torch::kFloat32);
                ASSERT_EQ(out.scalar_type(), dd);
                auto gr = torch::randn({cs.m, cs.d}, o), g = torch::randn({cs.m, cs.d}, o).to(dd);
                auto loss = (out.to(torch::kFloat64) * g.to(torch::kFloat64)).sum();
                if (use_r) loss = loss + (r.to(torch::kFloat64) * gr.to(torch::kFloat64)).sum();
                loss.backward();

                auto resr = res.detach().to(torch::kFloat64).requires_grad_(true);
                auto deltar = delta.detach().to(torch::kFloat64).requires_grad_(true);
                auto wr = w.detach().to(torch::kFloat64).requires_grad_(true);
                auto rr = resr + deltar;
                auto ref = rr / torch::sqrt(rr.pow(2).mean(-1, true) + 1e-5) * wr;
                auto lr = (ref * g.to(torch::kFloat64)).sum();
                if (use_r) lr = lr + (rr * gr.to(torch::kFloat64)).sum();
                lr.backward();
                const double tol = dd == torch::kBFloat16 ? 8e-3 : 1e-5;
                const std::string name =
                    std::to_string(cs.m) + "x" + std::to_string(cs.d) + (use_r ? " r+norm" : " norm");
                EXPECT_LT(rel_err(r, rr), 1e-6) << name;
                EXPECT_LT(rel_err(out, ref), tol) << name;
                EXPECT_LT(rel_err(res.grad(), resr.grad()), 1e-5) << name;
                EXPECT_LT(rel_err(delta.grad(), deltar.grad()), tol) << name;
                EXPECT_EQ(delta.grad().scalar_type(), dd);
                EXPECT_LT(rel_err(w.grad(), wr.grad()), 1e-5) << name;
            }
        }
    }
}

// ---- SSD chunked scan -----------------------------------------------------------

namespace {
struct SsdCase {
    int64_t b, l, h, p, g, n, chunk;
    bool init;
};

struct SsdInputs {
    torch::Tensor x, dt, A, B, C, init, gy, gs;
};

SsdInputs ssd_inputs(const SsdCase& c, torch::Device dev, torch::ScalarType act) {
    auto o = torch::TensorOptions().device(dev).dtype(torch::kFloat64);
    SsdInputs in;
    in.x = torch::randn({c.b, c.l, c.h, c.p}, o).to(act);
    in.dt = F::softplus(torch::randn({c.b, c.l, c.h}, o) - 2.0);
    in.A = -torch::exp(torch::rand({c.h}, o) * std::log(16.0));
    in.B = torch::randn({c.b, c.l, c.g, c.n}, o).to(act);
    in.C = torch::randn({c.b, c.l, c.g, c.n}, o).to(act);
    if (c.init) in.init = torch::randn({c.b, c.h, c.p, c.n}, o);
    in.gy = torch::randn({c.b, c.l, c.h, c.p}, o);
    in.gs = torch::randn({c.b, c.h, c.p, c.n}, o);
    return in;
}

// Runs f on leaf copies of the inputs (cast to `act` / float32) and returns
// (y, final, dx, ddt, dA, dB, dC, dinit).
template <typename Fn>
std::vector<torch::Tensor> ssd_run(const SsdInputs& in, torch::ScalarType act, torch::ScalarType f, Fn fn) {
    auto leaf = [](const torch::Tensor& t, torch::ScalarType d) {
        return t.defined() ? t.detach().to(d).requires_grad_(true) : torch::Tensor();
    };
    auto x = leaf(in.x, act), dt = leaf(in.dt, f), A = leaf(in.A, f), B = leaf(in.B, act), C = leaf(in.C, act);
    auto init = leaf(in.init, f);
    auto [y, s] = fn(x, dt, A, B, C, init);
    auto loss = (y.to(torch::kFloat64) * in.gy).sum() + (s.to(torch::kFloat64) * in.gs).sum();
    loss.backward();
    return {y,          s,          grad_of(x), grad_of(dt),
            grad_of(A), grad_of(B), grad_of(C), init.defined() ? grad_of(init) : torch::zeros({1})};
}

const char* kSsdNames[] = {"y", "final_state", "dx", "ddt", "dA", "dB", "dC", "dinit"};

void expect_ssd_close(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& ref,
                      const std::vector<double>& tol, const std::string& what) {
    for (size_t i = 0; i < got.size(); ++i) {
        const double e = rel_err(got[i], ref[i]);
        std::printf("  %-40s %-12s rel err %.3e (tol %.0e)\n", what.c_str(), kSsdNames[i], e, tol[i]);
        EXPECT_LT(e, tol[i]) << what << " " << kSsdNames[i];
    }
}

std::string ssd_name(const SsdCase& c, const char* dt) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "b%ld l%ld h%ld p%ld g%ld n%ld T%ld%s %s", (long)c.b, (long)c.l, (long)c.h,
                  (long)c.p, (long)c.g, (long)c.n, (long)c.chunk, c.init ? " init" : "", dt);
    return buf;
}

auto fused_fn(int64_t chunk, bool deterministic = false) {
    return [chunk, deterministic](const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                                  const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& init) {
        return cuda::ssd_chunked_fused(x, dt, A, B, C, chunk, init, cuda::SsdOptions{deterministic});
    };
}
auto reference_fn(int64_t chunk) {
    return [chunk](const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& B,
                   const torch::Tensor& C, const torch::Tensor& init) {
        return ssd_chunked(x, dt, A, B, C, chunk, init, /*allow_fused=*/false);
    };
}
}  // namespace

// The SSD algebra (chunking, analytic backward) on the CPU in float64,
// against autograd through core/model's LibTorch-ops reference. Runs without a GPU.
TEST(SsdFused, AnalyticBackwardMatchesReferenceCpuFloat64) {
    torch::manual_seed(4);
    for (auto c : std::vector<SsdCase>{{2, 37, 4, 8, 2, 16, 8, false},
                                       {1, 64, 2, 4, 1, 8, 16, true},
                                       {2, 5, 3, 4, 3, 4, 16, true},
                                       {1, 50, 4, 8, 1, 16, 7, true},
                                       {1, 40, 6, 4, 2, 8, 40, false}}) {
        auto in = ssd_inputs(c, torch::kCPU, torch::kFloat64);
        auto got = ssd_run(in, torch::kFloat64, torch::kFloat64, fused_fn(c.chunk));
        auto ref = ssd_run(in, torch::kFloat64, torch::kFloat64, reference_fn(c.chunk));
        expect_ssd_close(got, ref, std::vector<double>(8, 1e-10), ssd_name(c, "f64 cpu"));
    }
}

TEST(CudaKernels, SsdChunkedFusedMatchesReference) {
    REQUIRE_GPU();
    Poison poison;
    torch::manual_seed(5);
    for (auto c : std::vector<SsdCase>{{2, 300, 4, 16, 1, 32, 64, false},
                                       {1, 256, 8, 64, 1, 128, 256, true},
                                       {2, 77, 6, 8, 2, 16, 32, true},
                                       {1, 20, 4, 8, 4, 16, 64, false},
                                       {1, 2048, 48, 64, 1, 128, 256, false},
                                       {1, 450, 4, 16, 2, 32, 200, true},
                                       {2, 130, 4, 48, 1, 16, 128, false},
                                       // T not a multiple of 8: the general (scalar) backward through M
                                       {2, 100, 6, 16, 2, 32, 50, true},
                                       // head dim not a multiple of 8: the general layout and dot kernels
                                       {1, 70, 4, 6, 2, 16, 32, true}}) {
        for (auto act : {torch::kFloat32, torch::kBFloat16}) {
            auto in = ssd_inputs(c, kGpu, act);
            auto got = ssd_run(in, act, torch::kFloat32, fused_fn(c.chunk));
            // Reference in float64 on the same (already act-rounded) inputs.
            auto ref = ssd_run(in, torch::kFloat64, torch::kFloat64, reference_fn(c.chunk));
            std::vector<double> tol = act == torch::kFloat32
                                          ? std::vector<double>{2e-4, 2e-4, 2e-4, 1e-3, 1e-3, 2e-4, 2e-4, 2e-4}
                                          : std::vector<double>{1.5e-2, 1.5e-2, 3e-2, 3e-2, 3e-2, 3e-2, 3e-2, 3e-2};
            const std::string name = ssd_name(c, act == torch::kFloat32 ? "f32" : "bf16");
            expect_ssd_close(got, ref, tol, name);
            // The deterministic backward (no float atomics): same reference,
            // same bounds, and a second call gives the same bits.
            auto det = ssd_run(in, act, torch::kFloat32, fused_fn(c.chunk, true));
            expect_ssd_close(det, ref, tol, name + " det");
            expect_same_bits(det, ssd_run(in, act, torch::kFloat32, fused_fn(c.chunk, true)), name + " det repeat");
        }
    }
}

// The D skip folded into the fused SSD (y += D·x in the output pass, ∂x += D·∂y
// and ∂D = Σ ∂y·x in the backward's): against ssd_chunked's LibTorch path in
// float64, with x read through strided rows as the mixer's view of in_proj's
// output gives it; both the vectorized pass (p a multiple of 8, with the ∂D
// partials) and the general one (p = 6); both backward modes, and the
// deterministic one repeats bit for bit.
TEST(CudaKernels, SsdDSkipMatchesReference) {
    REQUIRE_GPU();
    Poison poison;
    torch::manual_seed(11);
    struct Case {
        SsdCase c;
        int64_t extra;  // channels beside x in each row
    };
    for (auto cs : std::vector<Case>{{{2, 300, 4, 16, 1, 32, 64, false}, 264},
                                     {{1, 2048, 48, 64, 1, 128, 256, false}, 264},
                                     {{2, 77, 6, 8, 2, 16, 32, true}, 0},
                                     {{1, 70, 4, 6, 2, 16, 32, true}, 5}}) {
        const auto& c = cs.c;
        for (auto act : {torch::kFloat32, torch::kBFloat16}) {
            for (bool det : {false, true}) {
                auto in = ssd_inputs(c, kGpu, act);
                auto wide0 = torch::randn({c.b, c.l, c.h * c.p + cs.extra}, kGpu);
                wide0.narrow(-1, 0, c.h * c.p).copy_(in.x.reshape({c.b, c.l, c.h * c.p}));
                auto D0 = torch::randn({c.h}, torch::TensorOptions().device(kGpu).dtype(torch::kFloat64));
                auto run = [&](torch::ScalarType a, torch::ScalarType f, bool fused) {
                    auto wide = wide0.to(a).detach().requires_grad_(true);
                    auto x = wide.narrow(-1, 0, c.h * c.p).view({c.b, c.l, c.h, c.p});
                    auto leaf = [](const torch::Tensor& t, torch::ScalarType d) {
                        return t.defined() ? t.detach().to(d).requires_grad_(true) : torch::Tensor();
                    };
                    auto dt = leaf(in.dt, f), A = leaf(in.A, f), B = leaf(in.B, a), C = leaf(in.C, a);
                    auto init = leaf(in.init, f), D = leaf(D0, f);
                    auto [y, st] =
                        fused ? cuda::ssd_chunked_fused(x, dt, A, B, C, c.chunk, init, cuda::SsdOptions{det}, D)
                              : ssd_chunked(x, dt, A, B, C, c.chunk, init, false, false, D);
                    auto loss = (y.to(torch::kFloat64) * in.gy).sum() + (st.to(torch::kFloat64) * in.gs).sum();
                    loss.backward();
                    return std::vector<torch::Tensor>{y,           grad_of(wide).narrow(-1, 0, c.h * c.p),
                                                      grad_of(dt), grad_of(A),
                                                      grad_of(B),  grad_of(C),
                                                      grad_of(D)};
                };
                auto got = run(act, torch::kFloat32, true);
                auto ref = run(torch::kFloat64, torch::kFloat64, false);
                const char* names[] = {"y", "dx", "ddt", "dA", "dB", "dC", "dD"};
                const double tol = act == torch::kFloat32 ? 1e-3 : 3e-2;
                const std::string name = ssd_name(c, act == torch::kFloat32 ? "f32" : "bf16") + (det ? " det" : "");
                for (size_t i = 0; i < got.size(); ++i) {
                    const double e = rel_err(got[i], ref[i]);
                    std::printf("  %-44s D skip %-4s rel err %.3e\n", name.c_str(), names[i], e);
                    EXPECT_LT(e, i == 0 ? tol / 2 : tol) << name << " " << names[i];
                }
                if (det) expect_same_bits(got, run(act, torch::kFloat32, true), name + " D skip det repeat");
            }
        }
    }
}

// The chunk-wise cumulative sums of the SSD (forward: prefix, backward:
// suffix) against float64, and bit-identical on a second call.
TEST(CudaKernels, ChunkCumsumMatchesFloat64AndRepeats) {
    REQUIRE_GPU();
    Poison poison;
    torch::manual_seed(8);
    for (int64_t T : {1, 7, 31, 32, 33, 64, 256, 1000}) {
        for (bool reverse : {false, true}) {
            const int64_t rows = 37;
            auto in = torch::randn({rows, T}, torch::TensorOptions().device(kGpu));
            auto run = [&] {
                auto out = torch::full({rows, T}, std::nan(""), in.options());
                cuda::k::chunk_cumsum(in.data_ptr<float>(), out.data_ptr<float>(), rows, T, reverse, nullptr);
                torch::cuda::synchronize();
                return out;
            };
            auto a = run();
            auto d = in.to(torch::kFloat64);
            auto ref = reverse ? d.flip(-1).cumsum(-1).flip(-1) : d.cumsum(-1);
            EXPECT_LT(rel_err(a, ref), 1e-6) << "T " << T << (reverse ? " reverse" : "");
            expect_same_bits({a}, {run()}, "chunk_cumsum T " + std::to_string(T));
        }
    }
}

// The SSD's layout kernels against LibTorch ops: heads layout -> group layout
// with a per-(head, position) scale (the same fp32 product, then the same
// rounding: bit-identical), and the chunks' output assembled, un-chunked and
// cast, against float64 (within the output dtype's rounding).
TEST(CudaKernels, SsdLayoutKernelsMatchLibTorch) {
    REQUIRE_GPU();
    Poison poison;
    torch::manual_seed(9);
    struct Case {
        int64_t b, c, g, hg, T, p, pad;
    };
    for (auto cs : std::vector<Case>{
             {2, 3, 1, 5, 7, 6, 3}, {1, 2, 2, 4, 64, 64, 0}, {3, 1, 3, 2, 33, 8, 32}, {2, 8, 1, 48, 256, 64, 0}}) {
        for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
            auto f = torch::TensorOptions().device(kGpu);
            const int64_t r = cs.b * cs.c * cs.g;
            auto in = torch::randn({r, cs.hg, cs.T, cs.p}, f).to(dt);
            auto w = torch::randn({r, cs.hg, cs.T}, f);
            auto out = torch::full({r, cs.T, cs.hg, cs.p}, std::nan(""), f.dtype(dt));
            cuda::k::ssd_heads_to_group(in.data_ptr(),
                                        dt == torch::kFloat32    ? cuda::k::DType::F32
                                        : dt == torch::kBFloat16 ? cuda::k::DType::BF16
                                                                 : cuda::k::DType::F16,
                                        w.data_ptr<float>(), out.data_ptr(), r, cs.hg, cs.T, cs.p, nullptr);
            auto ref = (in.to(torch::kFloat32) * w.unsqueeze(-1)).permute({0, 2, 1, 3}).to(dt);
            EXPECT_TRUE(torch::equal(out, ref)) << "heads_to_group T " << cs.T << " dtype " << dt;

            const int64_t l = cs.c * cs.T - cs.pad;
            auto Yh = torch::randn({cs.b, cs.c, cs.g, cs.hg, cs.T, cs.p}, f);
            auto Q = torch::randn({cs.b, cs.c, cs.g, cs.T, cs.hg, cs.p}, f);
            auto wc = torch::randn({cs.b, cs.c, cs.g, cs.hg, cs.T}, f);
            auto y = torch::full({cs.b, l, cs.g * cs.hg, cs.p}, std::nan(""), f.dtype(dt));
            cuda::k::ssd_combine_chunks(Yh.data_ptr<float>(), Q.data_ptr<float>(), wc.data_ptr<float>(), y.data_ptr(),
                                        dt == torch::kFloat32    ? cuda::k::DType::F32
                                        : dt == torch::kBFloat16 ? cuda::k::DType::BF16
                                                                 : cuda::k::DType::F16,
                                        cs.b, cs.c, l, cs.g, cs.hg, cs.T, cs.p, cuda::k::SsdSkip{}, nullptr);
            auto full = (Yh.to(torch::kFloat64) +
                         Q.to(torch::kFloat64).permute({0, 1, 2, 4, 3, 5}) * wc.to(torch::kFloat64).unsqueeze(-1))
                            .permute({0, 1, 4, 2, 3, 5})
                            .reshape({cs.b, cs.c * cs.T, cs.g * cs.hg, cs.p})
                            .narrow(1, 0, l);
            const double tol = dt == torch::kFloat32 ? 1e-6 : dt == torch::kBFloat16 ? 4e-3 : 5e-4;
            EXPECT_LT(rel_err(y, full), tol) << "combine_chunks T " << cs.T << " pad " << cs.pad << " dtype " << dt;
        }
    }
}

// The SSD's chunked layout copies against LibTorch: (b, l, X, Y) read in
// place through strided rows (as the mixer's views of in_proj's output) ->
// (b, c, X, T, Y) zero-padded past l, and back with a cast (fp32 -> the
// activation dtype, as dB and dC): copies and one rounding, so bit-identical.
TEST(CudaKernels, SsdChunkCopiesMatchLibTorch) {
    REQUIRE_GPU();
    Poison poison;
    torch::manual_seed(10);
    struct Case {
        int64_t b, l, X, Y, T, extra;  // extra: channels beside the view in each row
    };
    for (auto cs : std::vector<Case>{{2, 300, 4, 16, 64, 8},
                                     {1, 256, 48, 64, 256, 0},
                                     {3, 77, 1, 128, 32, 264},
                                     {2, 2048, 48, 64, 256, 264},
                                     {1, 5, 2, 8, 16, 16}}) {
        for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
            auto f = torch::TensorOptions().device(kGpu);
            const int64_t c = (cs.l + cs.T - 1) / cs.T, L = c * cs.T;
            auto wide = torch::randn({cs.b, cs.l, cs.X * cs.Y + cs.extra}, f).to(dt);
            auto t = wide.narrow(-1, cs.extra, cs.X * cs.Y).view({cs.b, cs.l, cs.X, cs.Y});
            auto out = torch::full({cs.b, c, cs.X, cs.T, cs.Y}, std::nan(""), f.dtype(dt));
            const auto kd = dt == torch::kFloat32    ? cuda::k::DType::F32
                            : dt == torch::kBFloat16 ? cuda::k::DType::BF16
                                                     : cuda::k::DType::F16;
            ASSERT_TRUE(
                cuda::k::ssd_chunks_vec_ok(t.data_ptr(), out.data_ptr(), t.stride(0), t.stride(1), t.stride(2), cs.Y));
            cuda::k::ssd_to_chunks(t.data_ptr(), kd, t.stride(0), t.stride(1), t.stride(2), out.data_ptr(), kd, cs.b,
                                   cs.l, cs.X, cs.Y, cs.T, nullptr);
            auto ref = F::pad(t, F::PadFuncOptions({0, 0, 0, 0, 0, L - cs.l}))
                           .view({cs.b, c, cs.T, cs.X, cs.Y})
                           .permute({0, 1, 3, 2, 4});
            EXPECT_TRUE(torch::equal(out, ref)) << "to_chunks l " << cs.l << " T " << cs.T << " dtype " << dt;

            auto src = torch::randn({cs.b, c, cs.X, cs.T, cs.Y}, f);
            auto back = torch::full({cs.b, cs.l, cs.X, cs.Y}, std::nan(""), f.dtype(dt));
            cuda::k::ssd_from_chunks(src.data_ptr(), cuda::k::DType::F32, back.data_ptr(), kd, cs.b, cs.l, cs.X, cs.Y,
                                     cs.T, nullptr);
            auto ref_back =
                src.permute({0, 1, 3, 2, 4}).reshape({cs.b, L, cs.X, cs.Y}).narrow(1, 0, cs.l).to(dt).contiguous();
            EXPECT_TRUE(torch::equal(back, ref_back)) << "from_chunks l " << cs.l << " T " << cs.T << " dtype " << dt;
        }
    }
}

// Under LibTorch's deterministic mode the SSD's atomics backward refuses to
// run (as LibTorch's own nondeterministic ops do); the deterministic one runs.
TEST(CudaKernels, SsdAtomicsBackwardAlertsInDeterministicMode) {
    REQUIRE_GPU();
    torch::manual_seed(9);
    const SsdCase c{1, 300, 4, 16, 1, 32, 64, false};
    auto in = ssd_inputs(c, kGpu, torch::kBFloat16);
    DeterminismScope on(true);
    EXPECT_TRUE(at::globalContext().deterministicAlgorithms());
    EXPECT_ANY_THROW(ssd_run(in, torch::kBFloat16, torch::kFloat32, fused_fn(c.chunk, false)));
    EXPECT_NO_THROW(ssd_run(in, torch::kBFloat16, torch::kFloat32, fused_fn(c.chunk, true)));
}

// The kernels without a separate deterministic path reduce through per-block
// partials summed in a fixed order: two calls give the same bits (shapes of
// the 780M model, under LibTorch's deterministic mode, which must not object
// to any op in their autograd functions).
TEST(CudaKernels, ElementwiseKernelsRepeatBitIdentically) {
    REQUIRE_GPU();
    DeterminismScope on(true);
    Poison poison;
    torch::manual_seed(10);
    auto f32 = torch::TensorOptions().device(kGpu).dtype(torch::kFloat32);
    const auto bf = torch::kBFloat16;
    // Each lambda runs forward + backward on fresh leaves and returns output and gradients.
    auto twice = [](const std::string& what, const std::function<std::vector<torch::Tensor>()>& f) {
        auto a = f();
        expect_same_bits(a, f(), what);
    };
    {
        auto W = torch::randn({6144, 1536}, f32), alpha = torch::rand({1, 1536}, f32) * 0.1 + 0.01;
        auto beta = torch::randn({1, 1536}, f32) * 0.02, g = torch::randn({6144, 1536}, f32).to(bf);
        twice("binarize_weight", [&] {
            auto w = W.clone().requires_grad_(true), a = alpha.clone().requires_grad_(true);
            auto b = beta.clone().requires_grad_(true);
            auto out = cuda::binarize_weight(w, a, b, bf);
            out.backward(g);
            return std::vector<torch::Tensor>{out, w.grad(), a.grad(), b.grad()};
        });
    }
    {
        auto wide = torch::randn({4, 2048, 3328 + 6}, f32).to(bf);
        auto w = torch::randn({3328, 1, 4}, f32) * 0.5, bias = torch::randn({3328}, f32) * 0.5;
        auto g = torch::randn({4, 2048, 3328}, f32).to(bf);
        twice("causal_conv1d_silu", [&] {
            auto xs = wide.clone().requires_grad_(true);
            auto wl = w.clone().requires_grad_(true), bl = bias.clone().requires_grad_(true);
            auto out = cuda::causal_conv1d_silu(xs.narrow(2, 3, 3328), wl, bl);
            out.backward(g);
            return std::vector<torch::Tensor>{out, xs.grad(), wl.grad(), bl.grad()};
        });
    }
    {
        auto x = torch::randn({4 * 2048, 1536}, f32), w = torch::rand({1536}, f32) + 0.5;
        auto g = torch::randn({4 * 2048, 1536}, f32).to(bf);
        twice("rmsnorm", [&] {
            auto xl = x.clone().requires_grad_(true), wl = w.clone().requires_grad_(true);
            auto out = cuda::rmsnorm(xl, wl, 1e-5, bf);
            out.backward(g);
            return std::vector<torch::Tensor>{out, xl.grad(), wl.grad()};
        });
    }
    {
        auto y = torch::randn({4, 2048, 3072}, f32).to(bf), z = torch::randn({4, 2048, 3072}, f32).to(bf);
        auto w = torch::rand({3072}, f32) + 0.5, g = torch::randn({4, 2048, 3072}, f32).to(bf);
        twice("gated_rmsnorm", [&] {
            auto yl = y.clone().requires_grad_(true), zl = z.clone().requires_grad_(true);
            auto wl = w.clone().requires_grad_(true);
            auto out = cuda::gated_rmsnorm(yl, zl, wl, 3072, 1e-5);
            out.backward(g);
            return std::vector<torch::Tensor>{out, yl.grad(), zl.grad(), wl.grad()};
        });
    }
    {
        auto res = torch::randn({4, 2048, 1536}, f32), dl = torch::randn({4, 2048, 1536}, f32).to(bf);
        auto w = torch::rand({1536}, f32) + 0.5, g = torch::randn({4, 2048, 1536}, f32).to(bf);
        auto gr = torch::randn({4, 2048, 1536}, f32);
        twice("add_rmsnorm", [&] {
            auto rl = res.clone().requires_grad_(true), dll = dl.clone().requires_grad_(true);
            auto wl = w.clone().requires_grad_(true);
            auto [r, out] = cuda::add_rmsnorm(rl, dll, wl, 1e-5, bf);
            torch::autograd::backward({out, r}, {g, gr});
            return std::vector<torch::Tensor>{r, out, rl.grad(), dll.grad(), wl.grad()};
        });
    }
}

// A whole bf16-autocast training step of a Bi-Mamba model (every fused kernel,
// cuBLAS, the loss) twice from the same weights and batch in deterministic
// mode: the loss, logits and every gradient are bit-identical.
TEST(CudaKernels, ModelStepIsBitIdenticalInDeterministicMode) {
    REQUIRE_GPU();
    DeterminismScope on(true);
    torch::manual_seed(11);
    auto cfg = Mamba2Config::preset("tiny");
    cfg.d_model = 128;
    cfg.ssm.chunk_size = 64;  // several row tiles per chunk in the SSD backward
    cfg.binarize = binarize_from_string("in_proj+out_proj");
    Mamba2LM model(cfg);
    model->to(kGpu);
    model->train();
    model->set_deterministic(true);
    auto ids = torch::randint(0, cfg.vocab_size, {4, 301}, torch::TensorOptions().dtype(torch::kLong).device(kGpu));
    auto step = [&] {
        for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
        torch::Tensor logits, loss;
        {
            AutocastScope ac(true);
            logits = model->forward(ids.narrow(1, 0, 300));
            loss = F::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32),
                                    ids.narrow(1, 1, 300).reshape({-1}));
        }
        loss.backward();
        std::vector<torch::Tensor> out{loss.detach(), logits.detach()};
        for (auto& p : model->parameters()) out.push_back(grad_of(p).clone());
        return out;
    };
    auto a = step();
    expect_same_bits(a, step(), "training step");
}

// The whole model on the GPU (every fused kernel in play) against the same
// model on the CPU (LibTorch-ops references throughout), float32.
TEST(CudaKernels, ModelForwardBackwardMatchesCpu) {
    REQUIRE_GPU();
    torch::manual_seed(6);
    for (auto bin : {"none", "in_proj+out_proj"}) {
        auto cfg = Mamba2Config::preset("tiny");
        cfg.binarize = binarize_from_string(bin);
        Mamba2LM cpu(cfg), gpu(cfg);
        {
            torch::NoGradGuard ng;
            auto src = cpu->named_parameters();
            for (auto& kv : gpu->named_parameters()) kv.value().copy_(src[kv.key()]);
        }
        gpu->to(kGpu);
        auto ids = torch::randint(0, cfg.vocab_size, {2, 100}, torch::kLong);
        auto run = [&](Mamba2LM& m, torch::Device dev) {
            auto logits = m->forward(ids.to(dev));
            auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).narrow(0, 0, 150),
                                                             ids.to(dev).reshape({-1}).narrow(0, 50, 150));
            loss.backward();
            return logits;
        };
        auto lc = run(cpu, torch::kCPU), lg = run(gpu, kGpu);
        EXPECT_LT(rel_err(lg, lc), 1e-4) << bin;
        auto pc = cpu->named_parameters();
        double worst = 0;
        std::string worst_name;
        for (auto& kv : gpu->named_parameters()) {
            const double e = rel_err(grad_of(kv.value()), grad_of(pc[kv.key()]));
            if (e > worst) worst = e, worst_name = kv.key();
        }
        std::printf("  model %s: logits rel err %.3e, worst grad rel err %.3e (%s)\n", bin, rel_err(lg, lc), worst,
                    worst_name.c_str());
        EXPECT_LT(worst, 2e-3) << bin << " " << worst_name;
    }
}

#endif
