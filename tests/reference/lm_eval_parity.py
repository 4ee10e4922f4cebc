#!/usr/bin/env python3
"""Zero-shot parity of `bimamba eval` with lm-evaluation-harness itself.

Builds a small random Hugging Face model (Mamba2ForCausalLM, or
LlamaForCausalLM with --arch llama) with the LLaMA-2 vocabulary (32000) and
tokenizer, saves it, runs lm-eval 0.4's own task definitions (boolq, piqa,
hellaswag, winogrande, arc_easy, arc_challenge, openbookqa) on the local
release files with log_samples (tokenizing with SentencePiece itself, as
bimamba does; --hf-tokenizer: transformers' converted tokenizer instead), then `bimamba eval --samples` on the same
checkpoint and files, and compares per document: the request strings
(context, continuation) of every choice, every choice's log-likelihood
(relative error), and the acc / acc_norm hits; per task: acc and acc_norm.

lm-eval reads the files through custom task YAMLs written into OUTDIR/tasks:
each `include`s the installed lm-eval YAML of the task (its doc_to_text,
doc_to_choice, doc_to_target, process_docs, metrics) and only replaces the
dataset with `dataset_path: json` on a local file. Where the release layout
is not the Hugging Face layout the YAML expects (ARC's nested question,
PIQA's and WinoGrande's labels files, BoolQ's "true"/"false" strings,
OpenBookQA's TSV), the file is first re-serialised into that layout under
OUTDIR/data by the small converters below. No hub access (HF_*_OFFLINE=1).

Dependencies go into a scratch virtualenv, never into the repository: when
lm_eval is not importable the script creates one with

    python -m venv $LMEVAL_VENV                                (default /tmp/lmeval-venv)
    echo <this python's site-packages> > $LMEVAL_VENV/lib/python3.X/site-packages/zz_parent_site.pth
    $LMEVAL_VENV/bin/pip install 'lm-eval==0.4.*' transformers sentencepiece protobuf accelerate

(run it with the project's .venv python so torch is reused through the .pth)
and re-runs itself in it.

BOS: lm-eval 0.4.13's HFLM encodes with the tokenizer's own default
(add_bos_token unset), so the hub's LLaMA-2 tokenizer (add_bos_token true)
prepends BOS to every context; `bimamba eval` does the same by default.
--no-bos saves the tokenizer with add_bos_token false and passes --no-bos to
bimamba (lm-eval's add_bos_token=False, the default of older 0.4 releases).

    tests/reference/lm_eval_parity.py --bimamba build/bimamba --data /work/shared/data \\
        --out /tmp/parity [--arch mamba2|llama] [--limit 200] [--tasks boolq,piqa,...]

Exit status 0 when every task agrees (LL rel. error <= --tol, identical
requests, identical acc / acc_norm), 1 otherwise. OUTDIR/summary.json and the
printed markdown table hold the figures.
"""
import argparse
import json
import os
import subprocess
import sys

TASKS = ["boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa"]
FILES = {
    "boolq": "boolq/val.jsonl",
    "piqa": "piqa/valid.jsonl",
    "hellaswag": "hellaswag/hellaswag_val.jsonl",
    "winogrande": "winogrande/dev.jsonl",
    "arc_easy": "arc_easy/ARC-Easy-Test.jsonl",
    "arc_challenge": "arc_challenge/ARC-Challenge-Test.jsonl",
    "openbookqa": "openbookqa/test.tsv",
}
# The lm-eval YAML of each task (relative to lm_eval/tasks) and the split it evaluates.
YAMLS = {
    "boolq": ("super_glue/boolq/default.yaml", "validation"),
    "piqa": ("piqa/piqa.yaml", "validation"),
    "hellaswag": ("hellaswag/hellaswag.yaml", "validation"),
    "winogrande": ("winogrande/default.yaml", "validation"),
    "arc_easy": ("arc/arc_easy.yaml", "test"),
    "arc_challenge": ("arc/arc_challenge.yaml", "test"),
    "openbookqa": ("openbookqa/openbookqa.yaml", "test"),
}


def ensure_venv():
    try:
        import lm_eval  # noqa: F401
        import transformers  # noqa: F401
        import sentencepiece  # noqa: F401
        import accelerate  # noqa: F401
        return
    except ImportError:
        pass
    venv = os.environ.get("LMEVAL_VENV", "/tmp/lmeval-venv")
    py = os.path.join(venv, "bin", "python")
    # Both pythons resolve to the same binary: compare the environments, not the executables.
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        sys.exit("lm_eval is still not importable in %s" % venv)
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        # Reuse this interpreter's packages (torch) after the venv's own: a venv
        # made from another venv's python does not see that venv's packages.
        import sysconfig
        site = subprocess.check_output([py, "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"], text=True).strip()
        with open(os.path.join(site, "zz_parent_site.pth"), "w") as f:
            f.write(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.check_call([py, "-m", "pip", "install", "-q", "lm-eval==0.4.*", "transformers", "sentencepiece", "protobuf", "accelerate"])
    os.execv(py, [py] + sys.argv)


# ---- release files -> the Hugging Face layout of each lm-eval YAML ----------

def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def side_labels(path):
    lst = os.path.splitext(path)[0] + "-labels.lst"
    if not os.path.exists(lst):
        return None
    with open(lst) as f:
        return [int(l) for l in f if l.strip()]


def convert(task, path):
    """Records in the layout lm-eval's YAML reads (HF datasets' fields)."""
    if task in ("arc_easy", "arc_challenge"):
        out = []
        for d in read_jsonl(path):
            q = d["question"]
            out.append({"id": d["id"], "question": q["stem"],
                        "choices": {"text": [c["text"] for c in q["choices"]], "label": [c["label"] for c in q["choices"]]},
                        "answerKey": d["answerKey"]})
        return out
    if task == "piqa":
        rows, labels = read_jsonl(path), side_labels(path)
        return [dict(goal=d["goal"], sol1=d["sol1"], sol2=d["sol2"], label=labels[i] if labels else int(d["label"]))
                for i, d in enumerate(rows)]
    if task == "winogrande":
        rows, labels = read_jsonl(path), side_labels(path)
        return [dict(sentence=d["sentence"], option1=d["option1"], option2=d["option2"],
                     answer=str(labels[i]) if "answer" not in d else d["answer"]) for i, d in enumerate(rows)]
    if task == "boolq":
        def lab(v):
            return int(v) if not isinstance(v, str) else {"true": 1, "false": 0}[v.lower()]
        return [dict(question=d["question"], passage=d["passage"], idx=i, label=lab(d.get("label", d.get("answer"))))
                for i, d in enumerate(read_jsonl(path))]
    if task == "openbookqa":
        if not path.endswith(".tsv"):
            return read_jsonl(path)
        out = []
        with open(path, encoding="utf-8") as f:
            header = f.readline().rstrip("\r\n").split("\t")
            for line in f:
                if not line.strip():
                    continue
                row = dict(zip(header, line.rstrip("\r\n").split("\t")))
                ch = row["Choices"]
                texts, labels = [], []
                letter, rest = "A", ch[len("(A) "):]
                while True:
                    nxt = " (%s) " % chr(ord(letter) + 1)
                    text, sep, rest = rest.partition(nxt)
                    texts.append(text)
                    labels.append(letter)
                    if not sep:
                        break
                    letter = chr(ord(letter) + 1)
                out.append({"id": row["ID"], "question_stem": row["Question Stem"],
                            "choices": {"text": texts, "label": labels}, "answerKey": row["Answer Key"]})
        return out
    return read_jsonl(path)  # hellaswag: the release layout is the HF one


# ---- models ------------------------------------------------------------------

def build_model(arch, tokenizer_model, out, add_bos):
    import torch
    torch.manual_seed(0)
    if arch == "mamba2":
        from transformers import Mamba2Config, Mamba2ForCausalLM
        hidden, expand, head_dim = 64, 2, 16
        cfg = Mamba2Config(vocab_size=32000, hidden_size=hidden, num_hidden_layers=2, state_size=16, expand=expand,
                           head_dim=head_dim, num_heads=expand * hidden // head_dim, n_groups=1, conv_kernel=4,
                           chunk_size=64, use_bias=False, use_conv_bias=True, layer_norm_epsilon=1e-5,
                           residual_in_fp32=True, tie_word_embeddings=True, pad_token_id=0, bos_token_id=1,
                           eos_token_id=2)
        model = Mamba2ForCausalLM(cfg).float().eval()
    else:
        from transformers import LlamaConfig, LlamaForCausalLM
        cfg = LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                          rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False, pad_token_id=0,
                          bos_token_id=1, eos_token_id=2)
        model = LlamaForCausalLM(cfg).float().eval()
    # Away from the default init so the choices' scores differ clearly
    # (as tests/reference/hf_mamba2_parity.py does).
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
            elif "embed" in name:
                p.normal_(0.0, 0.5)
            elif p.dim() == 2:
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    # The HF tokenizer of the LLaMA-2 SentencePiece model, saved beside the
    # weights as a hub checkpoint has it; add_bos_token as the hub's LLaMA-2
    # tokenizer_config.json (true), or false for --no-bos.
    import shutil
    import tempfile
    from transformers import LlamaTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(tokenizer_model, os.path.join(tmp, "tokenizer.model"))
        LlamaTokenizer.from_pretrained(tmp, add_bos_token=add_bos).save_pretrained(out)
    shutil.copy(tokenizer_model, os.path.join(out, "tokenizer.model"))


def sentencepiece_tokenizer(tokenizer_model, add_bos):
    """The LLaMA-2 SentencePiece model behind transformers' tokenizer API,
    encoding exactly as SentencePiece (and so `bimamba eval`) does. The
    tokenizers-library conversion transformers makes of the same model
    (--hf-tokenizer) splits runs of spaces differently ("a  b": SentencePiece
    "▁", "▁b"; converted "▁▁", "b"), a tokenizer difference, not an
    evaluation one."""
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    class SentencePieceLlama(SentencePieceBackend):
        def __init__(self, vocab_file, **kw):
            super().__init__(vocab_file=vocab_file, legacy=True, bos_token="<s>", eos_token="</s>", unk_token="<unk>", **kw)

        def build_inputs_with_special_tokens(self, a, b=None):  # add_special_tokens: BOS as the hub config says
            return ([self.bos_token_id] if add_bos else []) + a + (b or [])

    return SentencePieceLlama(tokenizer_model)


# ---- lm-eval -----------------------------------------------------------------

def run_lm_eval(tasks, model_dir, data_dir, out, limit, batch_size, tokenizer=None):
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    tasks_root = os.path.join(os.path.dirname(lm_eval.__file__), "tasks")
    ydir = os.path.join(out, "tasks")
    ddir = os.path.join(out, "data")
    os.makedirs(ydir, exist_ok=True)
    os.makedirs(ddir, exist_ok=True)
    names = []
    for t in tasks:
        src = os.path.join(data_dir, "zero-shot", FILES[t])
        recs = convert(t, src)
        conv = os.path.join(ddir, t + ".jsonl")
        with open(conv, "w", encoding="utf-8") as f:
            for r in recs:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        yaml_rel, split = YAMLS[t]
        split_key = "test_split" if split == "test" else "validation_split"
        other = "validation_split" if split == "test" else "test_split"
        name = "parity_" + t
        with open(os.path.join(ydir, name + ".yaml"), "w") as f:
            f.write("include: %s\n" % os.path.join(tasks_root, yaml_rel))
            f.write("task: %s\ntag: []\ndataset_path: json\ndataset_name: null\n" % name)
            f.write("dataset_kwargs:\n  data_files:\n    %s: %s\n" % (split, conv))
            f.write("%s: %s\n%s: null\ntraining_split: null\nfewshot_split: null\n" % (split_key, split, other))
        names.append(name)
    tm = TaskManager(include_path=ydir)
    lm = HFLM(pretrained=model_dir, tokenizer=tokenizer, batch_size=batch_size, device="cpu", dtype="float32")
    res = lm_eval.simple_evaluate(model=lm, tasks=names, task_manager=tm, limit=limit, log_samples=True,
                                  num_fewshot=0, bootstrap_iters=0)
    return res


def sample_lls(s):
    """Per-choice log-likelihoods of an lm-eval logged sample."""
    r = s["resps"]
    return [float(x[0][0]) if isinstance(x[0], (list, tuple)) else float(x[0]) for x in r]


def sample_args(s):
    a = s["arguments"]
    if isinstance(a, dict):  # {"gen_args_0": {"arg_0": ctx, "arg_1": cont}, ...}
        return [[a[k]["arg_0"], a[k]["arg_1"]] for k in sorted(a, key=lambda k: int(k.split("_")[-1]))]
    return [[x[0], x[1]] for x in a]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bimamba", required=True)
    ap.add_argument("--data", required=True, help="shared data folder (zero-shot/, llama2-tokenizer/)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", default="mamba2", choices=["mamba2", "llama"])
    ap.add_argument("--limit", type=int, default=200, help="documents per task; 0 = all")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--hf-tokenizer", action="store_true",
                    help="lm-eval with transformers' own (tokenizers) conversion of the LLaMA-2 tokenizer")
    ap.add_argument("--no-bos", action="store_true",
                    help="tokenizer without BOS (add_bos_token false) and bimamba eval --no-bos")
    args = ap.parse_args()
    ensure_venv()
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tasks = [t for t in args.tasks.split(",") if t]
    tok = os.path.join(args.data, "llama2-tokenizer", "tokenizer.model")
    out = os.path.abspath(args.out)
    tag = args.arch + ("-nobos" if args.no_bos else "") + ("-hftok" if args.hf_tokenizer else "")
    model_dir = os.path.join(out, "model-" + tag)
    limit = args.limit or None

    # lm-eval's side is cached in OUTDIR (it is the slow half on a CPU):
    # rerunning with the same settings compares a new bimamba build only.
    cache = os.path.join(out, "lm-eval-%s.json" % tag)
    key = dict(tasks=tasks, limit=limit, arch=args.arch, bos=not args.no_bos, hf_tokenizer=args.hf_tokenizer)
    res = None
    if os.path.exists(cache):
        with open(cache) as f:
            res = json.load(f)
        if res.get("key") != key:
            res = None
    if res is None:
        build_model(args.arch, tok, model_dir, add_bos=not args.no_bos)
        tokenizer = None if args.hf_tokenizer else sentencepiece_tokenizer(tok, add_bos=not args.no_bos)
        full = run_lm_eval(tasks, model_dir, args.data, out, limit, args.batch_size, tokenizer)
        keep = ("doc_id", "arguments", "resps", "acc", "acc_norm", "target")
        res = dict(key=key, results=full["results"],
                   samples={n: [{k: s[k] for k in keep if k in s} for s in v] for n, v in full["samples"].items()})
        with open(cache, "w") as f:
            json.dump(res, f, default=str)

    samples = os.path.join(out, "bimamba-samples-%s.jsonl" % tag)
    spec = ",".join("%s=%s" % (t, os.path.join(args.data, "zero-shot", FILES[t])) for t in tasks)
    cmd = [args.bimamba, "eval", "--quiet", "--model", model_dir, "--tokenizer", tok, "--tasks", spec,
           "--batch-size", str(args.batch_size), "--out", os.path.join(out, "bimamba-%s.json" % tag),
           "--samples", samples]
    if limit:
        cmd += ["--limit", str(limit)]
    if args.no_bos:
        cmd += ["--no-bos"]
    subprocess.check_call(cmd)
    ours = {}
    with open(samples) as f:
        for line in f:
            s = json.loads(line)
            ours.setdefault(s["task"], {})[s["doc_id"]] = s
    with open(os.path.join(out, "bimamba-%s.json" % tag)) as f:
        our_res = json.load(f)["models"][0]["results"]

    rows, ok = [], True
    for t in tasks:
        name = "parity_" + t
        theirs = sorted(res["samples"][name], key=lambda s: s["doc_id"])
        r = res["results"][name]
        max_rel, max_abs, prompt_diff, hit_diff = 0.0, 0.0, 0, 0
        for s in theirs:
            o = ours[t][s["doc_id"]]
            if sample_args(s) != o["arguments"]:
                prompt_diff += 1
                if prompt_diff <= 3:
                    print("%s doc %d: requests differ:\n  lm-eval %r\n  bimamba %r"
                          % (t, s["doc_id"], sample_args(s), o["arguments"]), file=sys.stderr)
            for a, b in zip(sample_lls(s), o["loglikelihoods"]):
                max_abs = max(max_abs, abs(a - b))
                max_rel = max(max_rel, abs(a - b) / max(abs(a), 1e-12))
            if int(s["acc"]) != o["acc"] or ("acc_norm" in s and int(s["acc_norm"]) != o["acc_norm"]):
                hit_diff += 1
        acc_theirs = r.get("acc,none")
        accn_theirs = r.get("acc_norm,none")
        # lm-eval's acc standard error (mean_stderr over the per-document hits;
        # its aggregate is "N/A" when run with bootstrap_iters=0)
        from lm_eval.api.metrics import mean_stderr
        se_theirs = r.get("acc_stderr,none")
        if not isinstance(se_theirs, (int, float)):
            se_theirs = mean_stderr([float(s["acc"]) for s in theirs])
        agree = (prompt_diff == 0 and hit_diff == 0 and max_rel <= args.tol and len(theirs) == our_res[t]["n"]
                 and abs(se_theirs - our_res[t]["acc_stderr"]) <= 1e-12
                 and acc_theirs == our_res[t]["acc"] and (accn_theirs is None or accn_theirs == our_res[t]["acc_norm"]))
        ok &= agree
        rows.append(dict(task=t, n=len(theirs), max_ll_rel_err=max_rel, max_ll_abs_err=max_abs, requests_differ=prompt_diff,
                         hits_differ=hit_diff, acc_lm_eval=acc_theirs, acc_bimamba=our_res[t]["acc"],
                         acc_stderr_lm_eval=se_theirs, acc_stderr_bimamba=our_res[t]["acc_stderr"],
                         acc_norm_lm_eval=accn_theirs, acc_norm_bimamba=our_res[t]["acc_norm"], agree=agree))
    import lm_eval
    import transformers
    meta = dict(arch=args.arch, bos=not args.no_bos, tokenizer="transformers" if args.hf_tokenizer else "sentencepiece", lm_eval=getattr(lm_eval, "__version__", "?"), transformers=transformers.__version__,
                limit=limit)
    with open(os.path.join(out, "summary-%s.json" % tag), "w") as f:
        json.dump(dict(meta=meta, tasks=rows), f, indent=1)
    print("lm-eval %s, transformers %s, random %s (vocab 32000, LLaMA-2 tokenizer through %s, %s), first %s documents per task"
          % (meta["lm_eval"], meta["transformers"], args.arch, meta["tokenizer"], "no BOS" if args.no_bos else "BOS",
             limit or "all"))
    print("| task | docs | max LL rel. err | requests differ | hits differ | acc lm-eval / bimamba | acc stderr lm-eval / bimamba | acc_norm lm-eval / bimamba |")
    print("|---|---:|---:|---:|---:|---|---|---|")
    fmt = lambda v: "-" if v is None else "%.4f" % v
    for r in rows:
        print("| %s | %d | %.1e | %d | %d | %s / %s | %s / %s | %s / %s |"
              % (r["task"], r["n"], r["max_ll_rel_err"], r["requests_differ"], r["hits_differ"], fmt(r["acc_lm_eval"]),
                 fmt(r["acc_bimamba"]), fmt(r["acc_stderr_lm_eval"]), fmt(r["acc_stderr_bimamba"]),
                 fmt(r["acc_norm_lm_eval"]), fmt(r["acc_norm_bimamba"])))
    print("PARITY OK" if ok else "PARITY FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
