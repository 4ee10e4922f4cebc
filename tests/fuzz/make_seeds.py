#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/):
small valid inputs of each format plus a few broken ones. Pure Python (no
numpy); rerun it after a format change:  python3 tests/fuzz/make_seeds.py
Crash inputs that were fixed are added by hand as corpus/<target>/crash-*."""
import json, os, struct, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, bytes), stored in that order."""
    h, off = {}, 0
    if metadata is not None:
        h["__metadata__"] = metadata
    for name, dt, shape, b in tensors:
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        off += len(b)
    hs = json.dumps(h, separators=(",", ":"))
    while pad and (8 + len(hs)) % 8:
        hs += " "
    return struct.pack("<Q", len(hs)) + hs.encode() + b"".join(t[3] for t in tensors)


def f32(n, v=0.5):
    return struct.pack("<%df" % n, *([v] * n))


def f16(n):
    return struct.pack("<%dH" % n, *([0x3800] * n))  # 0.5


# ---- safetensors ----------------------------------------------------------------
put("fuzz_safetensors", "valid_two.safetensors",
    safetensors([("a", "F32", [2, 2], f32(4)), ("b", "BF16", [3], b"\x00\x3f" * 3)], {"k": "v"}))
put("fuzz_safetensors", "valid_empty.safetensors", safetensors([]))
put("fuzz_safetensors", "valid_all_dtypes.safetensors", safetensors(
    [(dt, dt, [2], b"\x01" * (2 * sz)) for dt, sz in
     [("F64", 8), ("I64", 8), ("U64", 8), ("F32", 4), ("I32", 4), ("U32", 4), ("F16", 2), ("BF16", 2),
      ("I16", 2), ("U16", 2), ("I8", 1), ("U8", 1), ("BOOL", 1)]]))
put("fuzz_safetensors", "valid_zero_dim.safetensors", safetensors([("z", "F32", [0, 4], b""), ("s", "F32", [], f32(1))]))
good = safetensors([("a", "F32", [2], f32(2))])
put("fuzz_safetensors", "bad_truncated.safetensors", good[:-3])
put("fuzz_safetensors", "bad_header_len.safetensors", struct.pack("<Q", 1 << 40) + good[8:])
put("fuzz_safetensors", "bad_gap.safetensors",
    struct.pack("<Q", 64) + json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).ljust(64).encode() + b"\0" * 8)
put("fuzz_safetensors", "bad_dup.safetensors",
    struct.pack("<Q", 120) + b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'.ljust(120) + b"\0\0")

# ---- model config ------------------------------------------------------------------
mamba = {"d_model": 64, "d_intermediate": 0, "n_layer": 2, "vocab_size": 512,
         "ssm_cfg": {"layer": "Mamba2", "d_state": 16, "d_conv": 4, "expand": 2, "headdim": 16, "ngroups": 1,
                     "chunk_size": 16, "A_init_range": [1.0, 16.0], "dt_min": 0.001, "dt_max": 0.1},
         "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
         "pad_vocab_size_multiple": 8, "tie_embeddings": True, "norm_epsilon": 1e-5, "binarize": "in_proj+out_proj"}
put("fuzz_model_config", "mamba_ssm.json", json.dumps(mamba, indent=1))
put("fuzz_model_config", "minimal.json", '{"d_model": 256, "n_layer": 4, "vocab_size": 4096}')
hf = {"model_type": "mamba2", "hidden_size": 768, "num_hidden_layers": 24, "vocab_size": 50288, "state_size": 128,
      "conv_kernel": 4, "expand": 2, "head_dim": 64, "num_heads": 24, "n_groups": 1, "chunk_size": 256,
      "use_bias": False, "use_conv_bias": True, "time_step_min": 0.001, "time_step_max": 0.1,
      "time_step_floor": 1e-4, "layer_norm_epsilon": 1e-5, "residual_in_fp32": True, "tie_word_embeddings": True}
put("fuzz_model_config", "hf_mamba2.json", json.dumps(hf, indent=1))
put("fuzz_model_config", "bad_types.json", '{"d_model": "64", "n_layer": 2.5, "ssm_cfg": {"A_init_range": [1]}}')
put("fuzz_model_config", "bad_values.json", '{"d_model": 2000000000, "n_layer": 1, "ssm_cfg": {"expand": 4, "headdim": 3}}')

# ---- train config (first byte: even = JSON, odd = TOML) -------------------------------
put("fuzz_train_config", "json_full", "\x00" + json.dumps({
    "data": "prep/x", "model": {"preset": "tiny", "binarize": "in_proj"}, "steps": 500, "seq_len": 128,
    "batch_size": 4, "tokens_per_step": 2048, "lr": 1e-3, "final_lr": 1e-4, "warmup_steps": 50, "loss": "mix",
    "ce_weight": 0.25, "teacher": "runs/t", "seed": 42, "device": "cpu", "precision": "float32"}))
put("fuzz_train_config", "json_min", '\x00{"data": "x"}')
put("fuzz_train_config", "json_bad", '\x00{"data": 3, "steps": -1, "model": {"preset": 7}, "loss": "zz", "x": 1}')
put("fuzz_train_config", "toml_full", "\x01" + """data = "prep/fortunes"
steps = 500
seq_len = 128
batch_size = 4
tokens_per_step = 2048
lr = 1e-3
final_lr = 1e-4
loss = "mix"
ce_weight = 0.25
teacher_cache = "cache.bin"
seed = 42
deterministic = true
[model]
preset = "tiny"
binarize = "in_proj+out_proj"
d_model = 128
[model.ssm_cfg]
d_state = 8
""")
put("fuzz_train_config", "toml_bad", "\x01data = 1979-05-27\nsteps = [1, 2]\n[model\n")

# ---- deployment file (tiny Bi-Mamba: d_model 8, one layer) ----------------------------
cfg = {"d_model": 8, "d_intermediate": 0, "n_layer": 1, "vocab_size": 8,
       "ssm_cfg": {"layer": "Mamba2", "d_state": 2, "d_conv": 2, "expand": 2, "headdim": 4, "ngroups": 1,
                   "chunk_size": 4, "A_init_range": [1.0, 16.0], "dt_min": 0.001, "dt_max": 0.1},
       "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8,
       "tie_embeddings": True, "norm_epsilon": 1e-5, "binarize": "in_proj+out_proj"}
dm, di, ds, K, ng, hd = 8, 16, 2, 2, 1, 4
nh, cd = di // hd, di + 2 * ng * ds
ip = 2 * di + 2 * ng * ds + nh


def deploy(binary=True, emb="F16", version="1", fmt="bimamba-deploy", c=cfg):
    f32s, f16s, u8s = [], [], []
    f32s.append(("backbone.norm_f.weight", "F32", [dm], f32(dm, 1.0)))
    if emb == "F16":
        f16s.append(("backbone.embedding.weight", "F16", [8, dm], f16(8 * dm)))
    else:
        f32s.append(("backbone.embedding.weight", "F32", [8, dm], f32(8 * dm)))
    M = "backbone.layers.0.mixer."
    f32s.append(("backbone.layers.0.norm.weight", "F32", [dm], f32(dm, 1.0)))
    for name, rows, cols in [("in_proj", ip, dm), ("out_proj", dm, di)]:
        if binary:
            u8s.append((M + name + ".signs", "U8", [rows, (cols + 7) // 8], bytes(range(rows * ((cols + 7) // 8))) ))
            f32s.append((M + name + ".wscale", "F32", [cols], f32(cols, 0.1)))
            f32s.append((M + name + ".wbias", "F32", [cols], f32(cols, 0.0)))
        else:
            f16s.append((M + name + ".weight", "F16", [rows, cols], f16(rows * cols)))
    f32s += [(M + "conv1d.weight", "F32", [cd, 1, K], f32(cd * K)), (M + "conv1d.bias", "F32", [cd], f32(cd)),
             (M + "dt_bias", "F32", [nh], f32(nh)), (M + "A_log", "F32", [nh], f32(nh)), (M + "D", "F32", [nh], f32(nh)),
             (M + "norm.weight", "F32", [di], f32(di, 1.0))]
    md = {"format": fmt, "format_version": version, "config": json.dumps(c),
          "weights": "binary" if binary else "f16", "float_storage": "f16"}
    return safetensors(f32s + f16s + u8s, md)


put("fuzz_deploy_file", "binary.bmd", deploy())
put("fuzz_deploy_file", "f16.bmd", deploy(binary=False))
put("fuzz_deploy_file", "f32_embedding.bmd", deploy(emb="F32"))
put("fuzz_deploy_file", "bad_version.bmd", deploy(version="2"))
put("fuzz_deploy_file", "bad_config.bmd", deploy(c=dict(cfg, d_model=16)))
put("fuzz_deploy_file", "bad_truncated.bmd", deploy()[:-40])

# ---- metrics.jsonl / status.json / train_config.json ---------------------------------
put("fuzz_metrics_rows", "metrics.jsonl",
    '{"type":"train","step":1,"loss":5.2,"lr":0.001,"tokens":1024}\n'
    '{"type":"train","step":2,"loss":5.0}\n{"type":"eval","step":2,"val_loss":5.1}\n'
    '{"type":"train","step":2,"loss":4.9}\n{"note":"no step"}\n{"type":"train","step":3,"lo')
put("fuzz_metrics_rows", "status.json",
    '{"state":"running","pid":1234,"step":20,"total_steps":100,"started":"2026-01-01T00:00:00Z","ended":"","message":""}')
put("fuzz_metrics_rows", "config.json", '{"data":"prep/x","model":"tiny","steps":10}')
put("fuzz_metrics_rows", "odd.jsonl", '[1,2]\n{"step":"x"}\n{"step":1e300,"type":3}\n\n{"step":-1}\n')

# ---- study file (first byte: scale and --set) -----------------------------------------
study = """[study]
name = "t"
description = "fuzz seed"
[vars]
data = "/data"
steps = 100
device = "cuda"
[scale.small]
steps = 5
[[stage]]
name = "corpus"
run = ["prepare", "${data}/a.txt", "--out", "${ws}/data"]
outputs = ["${ws}/data/meta.json"]
[[stage]]
name = "teacher"
group = "teacher"
needs = ["corpus"]
[stage.train]
data = "${ws}/data"
steps = "${steps}"
device = "${device}"
note = "steps=${steps} on ${device}"
[[stage]]
name = "summary"
group = "report"
[stage.summary]
evals = ["${ws}/eval/perplexity.json"]
out = "${ws}/summary"
rows = ["teacher"]
[[stage.summary.claims]]
text = "a claim"
metric = "wikitext2"
better = "teacher"
than = ["teacher"]
"""
put("fuzz_study_file", "study.toml", "\x00" + study)
put("fuzz_study_file", "study_small_set.toml", "\x05" + study)
put("fuzz_study_file", "bad_loop.toml", '\x00[vars]\na = "${b}"\nb = "${a}"\n[[stage]]\nname = "x"\nrun = ["${a}"]\n')
put("fuzz_study_file", "bad_two_kinds.toml", '\x00[[stage]]\nname = "x"\nrun = ["a"]\ntrain = {data = "d"}\n[[stage]]\nname = "x"\n')

# ---- token shards (meta.json, NUL, shard bytes) -----------------------------------------
def corpus(dtype, tokens, n_tokens=None, extra=None):
    bpt = 2 if dtype == "uint16" else 4
    shard = struct.pack("<%d%s" % (len(tokens), "H" if bpt == 2 else "I"), *tokens)
    meta = {"format": "bimamba-tokens-v1", "dtype": dtype, "vocab_size": 512, "eos_id": 2,
            "tokenizer": "tokenizer.model",
            "splits": {"train": {"shards": ["train_000.bin"], "documents": 2,
                                 "tokens": len(tokens) if n_tokens is None else n_tokens}}}
    if extra:
        meta.update(extra)
    return json.dumps(meta).encode() + b"\0" + shard


put("fuzz_token_shards", "u16", corpus("uint16", [5, 6, 7, 2, 8, 9, 2]))
put("fuzz_token_shards", "u32", corpus("uint32", list(range(3, 80)) + [2]))
put("fuzz_token_shards", "bad_count", corpus("uint16", [5, 6, 2], n_tokens=9))
put("fuzz_token_shards", "bad_dtype", corpus("float32", [5, 6, 2]))
put("fuzz_token_shards", "bad_odd_bytes", corpus("uint16", [5, 6, 2]) + b"\x01")

# ---- teacher logits cache (core/data/TeacherCacheFile.h) --------------------------------
def teacher_cache(k, seq_len, vocab, windows, header_extra=None, fmt="bimamba-teacher-cache-v1", cut=0):
    h = {"format": fmt, "k": k, "seq_len": seq_len, "vocab_size": vocab, "num_windows": windows,
         "teacher": "t", "dataset": "d", "split": "train"}
    if header_extra:
        h.update(header_extra)
    hs = json.dumps(h).encode()
    start = (16 + len(hs) + 63) // 64 * 64
    n = windows * seq_len * k
    body = struct.pack("<%dH" % n, *([0x3C00] * n)) + struct.pack("<%di" % n, *[i % vocab for i in range(n)])
    out = b"BMTCACHE" + struct.pack("<Q", len(hs)) + hs + b"\0" * (start - 16 - len(hs)) + body
    return out[:len(out) - cut] if cut else out


put("fuzz_teacher_cache", "valid_2x4x3", teacher_cache(3, 4, 16, 2))
put("fuzz_teacher_cache", "valid_empty", teacher_cache(1, 1, 1, 0))
put("fuzz_teacher_cache", "bad_truncated", teacher_cache(3, 4, 16, 2, cut=5))
put("fuzz_teacher_cache", "bad_k_over_vocab", teacher_cache(20, 4, 16, 0))
put("fuzz_teacher_cache", "bad_float_k", teacher_cache(3, 4, 16, 0, {"k": 1e300}))
put("fuzz_teacher_cache", "bad_format", teacher_cache(3, 4, 16, 1, fmt="v0"))
# num_windows · seq_len · k · 6 wraps around 2^64 to the size of a tiny file
# (3074457345618258603 · 6 = 2^64 + 2: the file is the header and 2 bytes)
put("fuzz_teacher_cache", "crash-wrapping-windows", teacher_cache(1, 1, 4, 0, {"num_windows": 3074457345618258603}) + b"\0\0")

# ---- multiple-choice tasks (byte 0: task index in mc_task_names(), bit 7: OpenBookQA TSV) ----
# mc_task_names(): arc_easy, arc_challenge, openbookqa, piqa, hellaswag, winogrande, boolq
def jl(*rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


arc = {"question": {"stem": "Which is a gas?", "choices": [{"text": "ice", "label": "A"}, {"text": "steam", "label": "B"}]},
       "answerKey": "B"}
arc_hf = {"question": "Which is a gas?", "choices": {"text": ["ice", "steam"], "label": ["A", "B"]}, "answerKey": "B"}
put("fuzz_mc_tasks", "arc_easy", "\x00" + jl(arc, arc_hf))
put("fuzz_mc_tasks", "arc_challenge_bad_key", "\x01" + jl(dict(arc, answerKey="Z")))
put("fuzz_mc_tasks", "openbookqa", "\x02" + jl({"question_stem": "Sun is a", "choices": {"text": ["star", "moon"], "label": ["A", "B"]},
                                                "answerKey": "A"}))
put("fuzz_mc_tasks", "openbookqa_tsv", "\x82ID\tQuestion Stem\tChoices\tAnswer Key\n"
    "7-980\tThe sun is\t(A) a star (B) a moon (C) a rock (D) cold\tA\n")
put("fuzz_mc_tasks", "piqa_field", "\x03" + jl({"goal": "open a jar", "sol1": "twist", "sol2": "sing", "label": 0}))
put("fuzz_mc_tasks", "piqa_side", "\x03" + jl({"goal": "open a jar", "sol1": "twist", "sol2": "sing"}) + "\x001\n")
put("fuzz_mc_tasks", "piqa_side_bad", "\x03" + jl({"goal": "g", "sol1": "a", "sol2": "b"}) + "\x00x\n2\n")
put("fuzz_mc_tasks", "hellaswag", "\x04" + jl({"activity_label": "Cooking", "ctx_a": "A man cuts", "ctx_b": "bread",
                                              "endings": ["and eats [title] it.", "then  sleeps."], "label": "1"}))
put("fuzz_mc_tasks", "winogrande", "\x05" + jl({"sentence": "The cup fell because _ was slippery.", "option1": "the cup",
                                               "option2": "the table", "answer": "1"}))
put("fuzz_mc_tasks", "winogrande_no_blank", "\x05" + jl({"sentence": "no blank", "option1": "a", "option2": "b", "answer": "2"}))
put("fuzz_mc_tasks", "boolq", "\x06" + jl({"question": "is it", "passage": "It is.", "answer": True},
                                          {"question": "is it", "passage": "It is.", "label": 0},
                                          {"question": "is it", "passage": "It is.", "answer": "false"}))
put("fuzz_mc_tasks", "bad_not_object", "\x06[1,2]\n\"x\"\n")

print("seeds written under", ROOT)

# ---- sharded safetensors index (model.safetensors.index.json) -------------------------
put("fuzz_safetensors_index", "valid.json", json.dumps({
    "metadata": {"total_size": 1024},
    "weight_map": {"backbone.embeddings.weight": "model-00001-of-00002.safetensors",
                   "backbone.layers.0.mixer.in_proj.weight": "model-00001-of-00002.safetensors",
                   "lm_head.weight": "model-00002-of-00002.safetensors"}}, indent=1))
put("fuzz_safetensors_index", "valid_empty.json", '{"weight_map": {}}')
put("fuzz_safetensors_index", "bad_escape.json", '{"weight_map": {"a": "../model.safetensors"}}')
put("fuzz_safetensors_index", "bad_not_string.json", '{"weight_map": {"a": ["model.safetensors"]}}')
put("fuzz_safetensors_index", "bad_truncated.json", '{"weight_map": {"a": "model-000')

# ---- corpus readers (bimamba prepare): byte 0 = name | format << 3 | unit << 5 | field << 7 -----
# names: 0 c.txt 1 c.jsonl 2 c.txt.gz 3 c.txt.xz 4 c.txt.zst 5 c.jsonl.gz 6 c.jsonl.zst 7 c.jsonl.xz
# formats: 0 auto 1 text 2 jsonl; units: 0 file 1 line 2 paragraph 3 percent
import gzip, lzma
text = "Once upon a time.\n\nA second paragraph\nof two lines.\n%\nA fortune.\n%\n"
jsonl = '{"text": "first doc"}\n\n{"text": "second", "id": 2}\n{"content": "third"}\n'
put("fuzz_corpus", "text_file", bytes([0 | 0 << 3 | 0 << 5]) + text.encode())
put("fuzz_corpus", "text_lines", bytes([0 | 1 << 3 | 1 << 5]) + text.encode())
put("fuzz_corpus", "text_paragraphs", bytes([0 | 0 << 3 | 2 << 5]) + text.encode())
put("fuzz_corpus", "text_percent", bytes([0 | 0 << 3 | 3 << 5]) + text.encode())
put("fuzz_corpus", "jsonl", bytes([1]) + jsonl.encode())
put("fuzz_corpus", "jsonl_content_field", bytes([2 << 3 | 1 << 7]) + b'{"content": "x"}\n{"content": "y"}\n')
put("fuzz_corpus", "gzip_text", bytes([2 | 1 << 5]) + gzip.compress(text.encode(), mtime=0))
put("fuzz_corpus", "xz_text", bytes([3 | 2 << 5]) + lzma.compress(text.encode()))
put("fuzz_corpus", "gzip_jsonl", bytes([5]) + gzip.compress(jsonl.encode(), mtime=0))
# zstd: one raw-block frame (magic, frame header with single-segment size, last raw block), no checksum
body = jsonl.encode()
zst = struct.pack("<I", 0xFD2FB528) + bytes([0x20, len(body)]) + struct.pack("<I", (len(body) << 3) | 1)[:3] + body
put("fuzz_corpus", "zstd_jsonl", bytes([6]) + zst)
put("fuzz_corpus", "bad_gzip_truncated", bytes([2 | 1 << 5]) + gzip.compress(text.encode(), mtime=0)[:20])
put("fuzz_corpus", "bad_jsonl_line", bytes([1]) + b'{"text": "ok"}\n{"text": \n')
put("fuzz_corpus", "bad_name_says_xz", bytes([3]) + text.encode())

# ---- HDF5 reports: written by make_hdf5_seeds.c (C, since h5py is no dependency) -------
import shutil, subprocess, tempfile
if shutil.which("h5cc"):
    d = os.path.join(ROOT, "fuzz_hdf5_report")
    os.makedirs(d, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "make_hdf5_seeds")
        subprocess.run(["h5cc", "-o", exe, os.path.join(os.path.dirname(ROOT), "make_hdf5_seeds.c")], check=True)
        subprocess.run([exe, d], check=True)
    with open(os.path.join(d, "valid_report_latest.h5"), "rb") as f:
        good = f.read()
    put("fuzz_hdf5_report", "bad_truncated.h5", good[:3000])
    put("fuzz_hdf5_report", "bad_signature_only.h5", b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 2)
else:
    print("make_seeds: h5cc not found (libhdf5-dev): fuzz_hdf5_report's seeds left as they are", file=sys.stderr)
