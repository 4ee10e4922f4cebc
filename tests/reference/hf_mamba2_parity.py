#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers' Mamba2ForCausalLM.

Builds a small random Mamba-2 (float32, the pure-PyTorch path), saves it with
save_pretrained (safetensors) into OUTDIR/model, runs a fixed token sequence of
length 37 (not a multiple of chunk_size, so the padded last chunk is exercised)
and writes OUTDIR/expected.safetensors with `input_ids` (int64, [1, 37]) and
`logits` (float32, [1, 37, vocab]). Then check our loader and forward with:

    python3 tests/reference/hf_mamba2_parity.py OUTDIR
    bimamba logits --model OUTDIR/model --expected OUTDIR/expected.safetensors
"""
import os
import sys

import torch


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: hf_mamba2_parity.py OUTDIR")
    out = sys.argv[1]
    import transformers
    from safetensors.torch import save_file
    from transformers import Mamba2Config, Mamba2ForCausalLM

    torch.manual_seed(0)
    hidden, expand, head_dim = 64, 2, 16
    cfg = Mamba2Config(
        vocab_size=512,
        hidden_size=hidden,
        num_hidden_layers=2,
        state_size=16,
        expand=expand,
        head_dim=head_dim,
        num_heads=expand * hidden // head_dim,
        n_groups=1,
        conv_kernel=4,
        chunk_size=16,
        use_bias=False,
        use_conv_bias=True,
        layer_norm_epsilon=1e-5,
        residual_in_fp32=True,
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = Mamba2ForCausalLM(cfg).float().eval()
    # Move every parameter away from its default init so that a loader which
    # drops or mis-maps one (A_log, dt_bias, D, norms, conv bias) shows up.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.uniform_(-1.0, 1.5)
            elif name.endswith("dt_bias"):
                p.uniform_(-3.0, 0.5)
            elif name.endswith(".D"):
                p.uniform_(-1.0, 2.0)
            elif "norm" in name:
                p.uniform_(0.5, 1.5)
            elif name.endswith("conv1d.bias"):
                p.uniform_(-0.5, 0.5)
            elif name.endswith("conv1d.weight"):
                p.normal_(0.0, 0.3)
            elif "embeddings" in name:
                p.normal_(0.0, 0.5)
            elif p.dim() == 2:
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5)

    mdir = os.path.join(out, "model")
    os.makedirs(mdir, exist_ok=True)
    model.save_pretrained(mdir, safe_serialization=True)

    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, cfg.vocab_size, (1, 37), generator=g, dtype=torch.int64)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    save_file({"input_ids": ids.contiguous(), "logits": logits.contiguous()},
              os.path.join(out, "expected.safetensors"),
              metadata={"source": "transformers %s Mamba2ForCausalLM" % transformers.__version__})
    print("transformers %s, torch %s: wrote %s/model and %s/expected.safetensors (logits %s, max |logit| %.4f)"
          % (transformers.__version__, torch.__version__, out, out, tuple(logits.shape), logits.abs().max().item()))


if __name__ == "__main__":
    main()
