#!/usr/bin/env python3
"""Reference training throughput for `bimamba bench train`: a PyTorch Mamba-2
LM built with mamba_ssm's Triton kernels (the code Bi-Mamba trained with):
mamba_chunk_scan_combined for the SSD scan, its Triton gated RMSNorm and
fused add+RMSNorm, nn.Conv1d + SiLU for the conv (mamba_ssm's own fallback when
the causal_conv1d CUDA package is absent). Bi-Mamba = FBI-Linear (alpha*sign(W)+
beta, straight-through) for in_proj and out_proj. Same step as the C++ bench:
bf16 autocast, next-token CE or soft-target CE against a full-precision teacher
under no_grad, backward, clip 1.0, AdamW(0.9, 0.95, wd 0.1).

mamba_ssm is not installed on the GPU machine; pass --mamba-path, a folder that
holds mamba_ssm/ with only the pure-Python/Triton files (ops/triton/*.py,
utils/{determinism,torch}.py, empty __init__.py files). Never commit it.

  python3 tests/reference/bench_mamba_ssm_reference.py --mamba-path .ext/mamba_ref \
      --preset 780m --seq 2048 --micro-batch 4,8,16
"""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {  # d_model, n_layer (vocab 32000, d_state 128, headdim 64, expand 2)
    "130m": (768, 24), "370m": (1024, 48), "780m": (1536, 48), "1.3b": (2048, 48), "2.7b": (2560, 64),
    "small": (256, 4),
}


def sign_ste(w):
    return w + (torch.sign(w) - w).detach()


class FbiLinear(nn.Module):
    """alpha_i * sign(W[o,i]) + beta_i, alpha/beta per input column (FBI-LLM)."""

    def __init__(self, d_in, d_out, binarize):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.binarize = binarize
        if binarize:
            with torch.no_grad():
                beta = self.weight.mean(0, keepdim=True)
                alpha = (self.weight - beta).abs().mean(0, keepdim=True)
            self.wscale = nn.Parameter(alpha)
            self.wbias = nn.Parameter(beta)

    def forward(self, x):
        w = self.wscale * sign_ste(self.weight) + self.wbias if self.binarize else self.weight
        return F.linear(x, w)


class Mixer(nn.Module):
    """mamba_ssm.modules.mamba2.Mamba2, use_mem_eff_path=False, ngroups=1, no bias."""

    def __init__(self, d_model, binarize_in, binarize_out, d_state=128, d_conv=4, expand=2, headdim=64, chunk=256):
        super().__init__()
        self.d_inner = expand * d_model
        self.nheads = self.d_inner // headdim
        self.headdim, self.d_state, self.d_conv, self.chunk = headdim, d_state, d_conv, chunk
        d_in_proj = 2 * self.d_inner + 2 * d_state + self.nheads
        self.in_proj = FbiLinear(d_model, d_in_proj, binarize_in)
        conv_dim = self.d_inner + 2 * d_state
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1, bias=True)
        dt = torch.exp(torch.rand(self.nheads) * (math.log(0.1) - math.log(0.001)) + math.log(0.001)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = RMSNormGated(self.d_inner, eps=1e-5, norm_before_gate=False, group_size=self.d_inner)
        self.out_proj = FbiLinear(self.d_inner, d_model, binarize_out)

    def forward(self, u):
        zxbcdt = self.in_proj(u)
        A = -torch.exp(self.A_log.float())
        z, xBC, dt = torch.split(zxbcdt, [self.d_inner, self.d_inner + 2 * self.d_state, self.nheads], dim=-1)
        xBC = F.silu(self.conv1d(xBC.transpose(1, 2)).transpose(1, 2)[:, : -(self.d_conv - 1)])
        x, B, C = torch.split(xBC, [self.d_inner, self.d_state, self.d_state], dim=-1)
        b, l, _ = x.shape
        y = mamba_chunk_scan_combined(
            x.reshape(b, l, self.nheads, self.headdim), dt, A, B.reshape(b, l, 1, self.d_state),
            C.reshape(b, l, 1, self.d_state), chunk_size=self.chunk, D=self.D, z=None, dt_bias=self.dt_bias,
            dt_softplus=True)
        y = self.norm(y.reshape(b, l, self.d_inner), z)
        return self.out_proj(y)


class Block(nn.Module):
    def __init__(self, d_model, binarize_in, binarize_out):
        super().__init__()
        self.norm = RMSNorm(d_model, eps=1e-5)
        self.mixer = Mixer(d_model, binarize_in, binarize_out)

    def forward(self, hidden, residual):
        hidden, residual = rms_norm_fn(hidden, self.norm.weight, None, residual=residual, prenorm=True,
                                       residual_in_fp32=True, eps=1e-5)
        return self.mixer(hidden), residual


class LM(nn.Module):
    def __init__(self, d_model, n_layer, vocab, binarize):
        super().__init__()
        bi_in = binarize != "none"
        bi_out = binarize == "in_proj+out_proj"
        self.embedding = nn.Embedding(vocab, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.layers = nn.ModuleList([Block(d_model, bi_in, bi_out) for _ in range(n_layer)])
        self.norm_f = RMSNorm(d_model, eps=1e-5)

    def forward(self, ids):
        hidden, residual = self.embedding(ids), None
        for layer in self.layers:
            hidden, residual = layer(hidden, residual)
        hidden = rms_norm_fn(hidden, self.norm_f.weight, None, residual=residual, prenorm=False,
                             residual_in_fp32=True, eps=1e-5)
        return F.linear(hidden, self.embedding.weight).float()  # tied head


def bench(args, binarize, teacher_on, mb):
    d_model, n_layer = PRESETS[args.preset]
    vocab = 32000
    dev = torch.device("cuda")
    torch.manual_seed(args.seed)
    name = ("Mamba-2" if binarize == "none" else f"Bi-Mamba ({binarize})") + (" + teacher" if teacher_on else "")
    try:
        model = LM(d_model, n_layer, vocab, binarize).to(dev)
        teacher = None
        if teacher_on:
            teacher = LM(d_model, n_layer, vocab, "none").to(dev).eval().requires_grad_(False)
        opt = torch.optim.AdamW(model.parameters(), lr=2.5e-4, betas=(0.9, 0.95), weight_decay=0.1,
                                fused=args.fused_adamw or None)

        def step():
            ids = torch.randint(0, vocab, (mb, args.seq + 1), device=dev)
            inp, tgt = ids[:, :-1], ids[:, 1:]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(inp)
                if teacher is not None:
                    with torch.no_grad():
                        t = teacher(inp)
                    loss = -(F.softmax(t, -1) * F.log_softmax(logits, -1)).sum(-1).mean()
                else:
                    loss = F.cross_entropy(logits.reshape(-1, vocab), tgt.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss

        for _ in range(args.warmup):
            step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        torch.cuda.synchronize()
        s = time.perf_counter() - t0
        n_params = sum(p.numel() for p in model.parameters())
        tps = mb * args.seq * args.steps / s
        print(f"{name:<40} {mb:>4} {tps:12.0f} {1000 * s / args.steps:10.1f} "
              f"{torch.cuda.max_memory_allocated() / 2**30:10.2f} {torch.cuda.max_memory_reserved() / 2**30:10.2f} "
              f"{100 * 6 * n_params * tps / (args.peak_tflops * 1e12):6.1f}% {loss.item():8.3f}", flush=True)
        if args.profile:
            # Same table as `bimamba bench train --profile`: GPU kernels by time per step.
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                for _ in range(2):
                    step()
                torch.cuda.synchronize()
            rows = {}
            for e in prof.events():
                if e.device_type == torch.autograd.DeviceType.CUDA:
                    r = rows.setdefault(e.name, [0.0, 0])
                    r[0] += e.device_time
                    r[1] += 1
            total = sum(r[0] for r in rows.values())
            print(f"  GPU time per step {total / 2e3:.1f} ms in {len(rows)} kernel kinds; top kernels (ms/step, launches/step, share):")
            for k, (us, n) in sorted(rows.items(), key=lambda kv: -kv[1][0])[:30]:
                print(f"  {us / 2e3:8.2f} {n // 2:6d} {100 * us / max(total, 1):5.1f}%  {k[:100]}")
    except torch.OutOfMemoryError:
        print(f"{name:<40} {mb:>4} {'out of memory':>12}", flush=True)
    finally:
        model = teacher = opt = None
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mamba-path", required=True, help="folder holding the fetched mamba_ssm/ (Triton files only)")
    ap.add_argument("--preset", default="780m", choices=sorted(PRESETS))
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--micro-batch", default="4", help="comma list: sweep these micro-batches (e.g. 4,8,16)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--binarize", default="none,in_proj+out_proj")
    ap.add_argument("--teacher", default="off,on")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", action="store_true", help="after timing, print the top GPU kernels of 2 steps")
    ap.add_argument("--fused-adamw", action="store_true", help="torch.optim.AdamW(fused=True) (default: foreach)")
    args = ap.parse_args()

    sys.path.insert(0, args.mamba_path)
    global mamba_chunk_scan_combined, RMSNormGated, RMSNorm, rms_norm_fn
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    from mamba_ssm.ops.triton.layernorm_gated import RMSNorm as RMSNormGated
    from mamba_ssm.ops.triton.layer_norm import RMSNorm, rms_norm_fn

    print(f"reference (PyTorch {torch.__version__} + mamba_ssm Triton SSD): preset {args.preset}, seq {args.seq}, "
          f"micro-batch {args.micro_batch}, {args.warmup}+{args.steps} steps, bf16 autocast, "
          f"{'fused' if args.fused_adamw else 'foreach'} AdamW; "
          f"{torch.cuda.get_device_name()}")
    print(f"{'config':<40} {'mb':>4} {'tokens/s':>12} {'step ms':>10} {'peak GiB':>10} {'resv GiB':>10} {'MFU':>7} {'loss':>8}")
    for b in args.binarize.split(","):
        for t in args.teacher.split(","):
            for mb in (int(x) for x in args.micro_batch.split(",")):
                bench(args, b, t == "on", mb)


if __name__ == "__main__":
    main()
