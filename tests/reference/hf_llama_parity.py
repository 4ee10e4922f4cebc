#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers' LlamaForCausalLM.

Builds a small random LLaMA (float32, eager attention) with grouped-query
attention (4 query heads, 2 key/value heads), a non-default rope_theta and an
untied head, saves it with save_pretrained in 2+ safetensors shards into
OUTDIR/model, runs a fixed token sequence of length 37 and writes
OUTDIR/expected.safetensors with `input_ids` (int64, [1, 37]) and `logits`
(float32, [1, 37, vocab]). Check our loader and forward with:

    python3 tests/reference/hf_llama_parity.py OUTDIR
    bimamba logits --model OUTDIR/model --expected OUTDIR/expected.safetensors
"""
import glob
import json
import os
import sys

import torch


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: hf_llama_parity.py OUTDIR")
    out = sys.argv[1]
    import transformers
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    kw = dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
              max_position_embeddings=128, tie_word_embeddings=False, hidden_act="silu",
              attention_bias=False, mlp_bias=False, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    theta = 5000.0
    try:  # transformers >= 5
        cfg = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": theta}, **kw)
    except TypeError:
        cfg = LlamaConfig(rope_theta=theta, **kw)
    cfg._attn_implementation = "eager"
    model = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)  # non-trivial RMSNorm weights
            elif "embed_tokens" in name or "lm_head" in name:
                p.normal_(0.0, 0.5)
            else:
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5)

    mdir = os.path.join(out, "model")
    os.makedirs(mdir, exist_ok=True)
    model.save_pretrained(mdir, safe_serialization=True, max_shard_size="100KB")
    shards = sorted(glob.glob(os.path.join(mdir, "*.safetensors")))
    if len(shards) < 2 or not os.path.exists(os.path.join(mdir, "model.safetensors.index.json")):
        sys.exit("expected a sharded checkpoint, got %s" % shards)
    with open(os.path.join(mdir, "config.json")) as f:
        saved = json.load(f)
    saved_theta = saved.get("rope_theta", (saved.get("rope_parameters") or {}).get("rope_theta"))
    if saved_theta != theta:
        sys.exit("rope_theta not saved as %s (config: %s)" % (theta, saved))

    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, cfg.vocab_size, (1, 37), generator=g, dtype=torch.int64)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    save_file({"input_ids": ids.contiguous(), "logits": logits.contiguous()},
              os.path.join(out, "expected.safetensors"),
              metadata={"source": "transformers %s LlamaForCausalLM" % transformers.__version__})
    print("transformers %s, torch %s: wrote %s/model (%d shards) and %s/expected.safetensors (logits %s, max |logit| %.4f)"
          % (transformers.__version__, torch.__version__, out, len(shards), out, tuple(logits.shape),
             logits.abs().max().item()))


if __name__ == "__main__":
    main()
