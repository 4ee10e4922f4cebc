#!/usr/bin/env python3
"""A random-weight Mamba-2 of a paper shape for tests/reference/llama_cpp_bench.sh.

Builds transformers' Mamba2ForCausalLM at the 780M or 2.7B shape (the shapes
of `bimamba bench cpu --shape`), fills every parameter deterministically with
the magnitudes of core/engine/DeployFile.cpp's write_random_deploy (so neither
engine meets inf/NaN), and writes

  OUTDIR/hf/      config.json + model.safetensors (float16) + tokenizer.model:
                  what llama.cpp's convert_hf_to_gguf.py converts and what
                  `bimamba export` exports as the fp16 deployment file;
  OUTDIR/binary/  the same tensors plus, for every in_proj/out_proj, the
                  Bi-Mamba per-input-column scale and bias (wscale = mean |W - b|,
                  wbias = b = mean W over the rows) and "binarize" in the config:
                  `bimamba export` packs sign(W) of these same weights at 1 bit.

usage: llama_cpp_bench_model.py OUTDIR --shape 780m|2.7b --tokenizer tokenizer.model
"""
import argparse
import json
import math
import os
import shutil

import torch

SHAPES = {  # d_model, n_layer (the rest: d_state 128, headdim 64, expand 2, ngroups 1, d_conv 4, vocab 32000)
    "780m": (1536, 48),
    "2.7b": (2560, 64),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--shape", default="780m", choices=sorted(SHAPES))
    ap.add_argument("--tokenizer", required=True, help="SentencePiece model of 32000 pieces (llama-2's)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    import transformers
    from safetensors.torch import save_file
    from transformers import Mamba2Config, Mamba2ForCausalLM

    d_model, n_layer = SHAPES[a.shape]
    expand, head_dim, d_state = 2, 64, 128
    cfg = Mamba2Config(
        vocab_size=32000,
        hidden_size=d_model,
        num_hidden_layers=n_layer,
        state_size=d_state,
        expand=expand,
        head_dim=head_dim,
        num_heads=expand * d_model // head_dim,
        n_groups=1,
        conv_kernel=4,
        chunk_size=256,
        use_bias=False,
        use_conv_bias=True,
        layer_norm_epsilon=1e-5,
        residual_in_fp32=True,
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(a.seed)
    model = Mamba2ForCausalLM(cfg).to(torch.float16).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.empty(p.shape).uniform_(1.0, 16.0).log())
            elif name.endswith("dt_bias"):
                dt = torch.empty(p.shape).uniform_(math.log(1e-3), math.log(0.1)).exp()
                p.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1
            elif name.endswith(".D") or "norm" in name:
                p.fill_(1.0)
            elif name.endswith("conv1d.bias"):
                p.uniform_(-0.1, 0.1)
            elif name.endswith("conv1d.weight"):
                p.uniform_(-0.5, 0.5)
            elif "embeddings" in name:
                p.uniform_(-0.05, 0.05)
            elif p.dim() == 2:
                b = 1.0 / p.shape[1] ** 0.5
                p.uniform_(-b, b)

    hf = os.path.join(a.outdir, "hf")
    os.makedirs(hf, exist_ok=True)
    model.save_pretrained(hf, safe_serialization=True, max_shard_size="100GB")
    shutil.copy(a.tokenizer, os.path.join(hf, "tokenizer.model"))

    # The same weights with Bi-Mamba's per-input-column scale and bias.
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    for k in list(sd):
        if k.endswith(("in_proj.weight", "out_proj.weight")):
            w = sd[k].float()
            beta = w.mean(dim=0, keepdim=True)
            alpha = (w - beta).abs().mean(dim=0, keepdim=True)
            base = k[: -len(".weight")]
            sd[base + ".wscale"] = alpha.contiguous()
            sd[base + ".wbias"] = beta.contiguous()
    binary = os.path.join(a.outdir, "binary")
    os.makedirs(binary, exist_ok=True)
    save_file(sd, os.path.join(binary, "model.safetensors"))
    with open(os.path.join(hf, "config.json")) as f:
        c = json.load(f)
    c["binarize"] = "in_proj+out_proj"
    with open(os.path.join(binary, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    shutil.copy(a.tokenizer, os.path.join(binary, "tokenizer.model"))
    n = sum(p.numel() for p in model.parameters())
    print("transformers %s, torch %s: %s shape, %.1f M parameters -> %s, %s"
          % (transformers.__version__, torch.__version__, a.shape, n / 1e6, hf, binary))


if __name__ == "__main__":
    main()
