"""`assay inspect` against the loaders people use, each as a whole fresh process.

Generates (once, under benchmarks/data/) a ~2 GB safetensors file and a ~2 GB PyTorch zip
checkpoint of 500 float32 tensors of 1000x1000. Each case opens the file and summarises it
(parameter count and dtypes), interpreter start and imports included, page cache warm:

- assay:        `assay inspect FILE --format json`
- safetensors:  `safe_open(FILE, "pt")`, shapes and dtypes of every tensor
- torch:        `torch.load(FILE, mmap=True, weights_only=True)`, numel and dtypes

    python benchmarks/inspect_bench.py [--quick] [--reps N]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from common import DATA, assay_cli, ensure, gen_safetensors, gen_torch, py, run

SAFE_OPEN = """
from safetensors import safe_open
n, dtypes = 0, set()
with safe_open({path!r}, "pt") as f:
    for k in f.keys():
        s = f.get_slice(k)
        shape = s.get_shape()
        dtypes.add(s.get_dtype())
        p = 1
        for d in shape:
            p *= d
        n += p
print(n, sorted(dtypes))
"""

TORCH_LOAD = """
import torch
sd = torch.load({path!r}, mmap=True, weights_only=True)  # unsafe-ok: peer baseline, file we wrote
print(sum(t.numel() for t in sd.values()), sorted({{str(t.dtype) for t in sd.values()}}))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="50 tensors (200 MB) instead of 500")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    n = 50 if args.quick else 500
    DATA.mkdir(exist_ok=True)
    st = ensure(DATA / f"id-{n}.safetensors", lambda: gen_safetensors(DATA / f"id-{n}.safetensors", n))
    pt = ensure(DATA / f"id-{n}.pt", lambda: gen_torch(st, DATA / f"id-{n}.pt"))
    rows = []
    for label, path, peer_name, peer in (("safetensors", st, "safe_open", SAFE_OPEN),
                                         ("pytorch zip", pt, "torch.load", TORCH_LOAD)):
        ta, ma = run(assay_cli("inspect", str(path), "--format", "json"), args.reps)
        tp, mp = run(py(peer.format(path=str(path))), args.reps)
        rows.append((label, os.path.getsize(path) / 1e9, ta, ma, peer_name, tp, mp))
    import safetensors
    import torch

    import assay
    print(f"# inspect benchmark: {n} float32 tensors of 1000x1000, median of {args.reps} fresh processes, "
          f"page cache warm, {os.cpu_count()} cores")
    print(f"# python {platform.python_version()}, assay {assay.__version__}, "
          f"safetensors {safetensors.__version__}, torch {torch.__version__}")
    print(f"{'file':12s} {'GB':>5s} {'assay s':>8s} {'assay MB':>9s} {'peer':>10s} {'peer s':>7s} "
          f"{'peer MB':>8s} {'time ratio':>10s} {'mem ratio':>9s}")
    for label, gb, ta, ma, name, tp, mp in rows:
        print(f"{label:12s} {gb:5.2f} {ta:8.3f} {ma:9.0f} {name:>10s} {tp:7.3f} {mp:8.0f} {tp / ta:9.1f}x "
              f"{mp / ma:8.1f}x")
    print("targets: assay inspect < 0.3 s and < 100 MB on either file, >= 5x faster than either loader")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
