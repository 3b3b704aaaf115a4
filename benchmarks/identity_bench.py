"""Content-identity throughput and memory against raw BLAKE3 and sha256sum; diff cost.

Generates (once, under benchmarks/data/) a ~2 GB safetensors file of 500 float32 tensors of
1000x1000, the same weights as a PyTorch zip checkpoint, and a second safetensors file where
50 tensors got a small update. Each measured command runs as a whole fresh process with the page
cache warm; the table reports median wall time, throughput, peak RSS (VmHWM) and ratios.

    python benchmarks/identity_bench.py [--quick] [--reps N]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
from common import DATA, assay_cli, ensure, gen_safetensors, gen_torch, py, run


def blake3_file(path: Path) -> list[str]:
    return py(f"import blake3\nblake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap({str(path)!r})"
              ".hexdigest()\n")


IN_PROCESS = """
import time, sys
from assay.api import open_model
from assay.analyses.identity import identify
import blake3
art = open_model({path!r})
best_a = best_b = 1e9
for _ in range(3):
    t = time.perf_counter(); identify(art); best_a = min(best_a, time.perf_counter() - t)
    t = time.perf_counter()
    blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap({path!r}).digest()
    best_b = min(best_b, time.perf_counter() - t)
print(best_a, best_b)
"""


def in_process(path: Path) -> tuple[float, float]:
    """Hashing alone, after imports and open: assay's identity vs raw BLAKE3 of the file."""
    import subprocess

    from common import child_env
    out = subprocess.run([sys.executable, "-c", IN_PROCESS.format(path=str(path))], capture_output=True,
                         text=True, check=True, env=child_env()).stdout.split()
    return float(out[0]), float(out[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="50 tensors (200 MB) instead of 500")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    n = 50 if args.quick else 500
    DATA.mkdir(exist_ok=True)
    st = ensure(DATA / f"id-{n}.safetensors", lambda: gen_safetensors(DATA / f"id-{n}.safetensors", n))
    st2 = ensure(DATA / f"id-{n}-updated.safetensors",
                 lambda: gen_safetensors(DATA / f"id-{n}-updated.safetensors", n, bump=10))
    pt = ensure(DATA / f"id-{n}.pt", lambda: gen_torch(st, DATA / f"id-{n}.pt"))
    rows = []
    for label, path in (("safetensors", st), ("pytorch zip", pt)):
        size = path.stat().st_size
        t_assay, m_assay = run(assay_cli("id", str(path), "--format", "json"), args.reps)
        t_b3, m_b3 = run(blake3_file(path), args.reps)
        t_sha, _ = run(["sha256sum", str(path)], args.reps)
        rows.append((label, size, t_assay, m_assay, t_b3, m_b3, t_sha))
    t_diff, m_diff = run(assay_cli("diff", str(st), str(st2), "--format", "json"), args.reps)
    t_id2, _ = run(assay_cli("id", str(st2), "--format", "json"), args.reps)
    t_id1 = rows[0][2]

    import blake3

    import assay
    print(f"# identity benchmark, {n} float32 tensors of 1000x1000, {args.reps} reps, medians, "
          f"{os.cpu_count()} cores")
    print(f"# python {platform.python_version()}, assay {assay.__version__}, numpy {np.__version__}, "
          f"blake3 {blake3.__version__}, {shutil.which('sha256sum')}")
    print(f"{'file':12s} {'GB':>5s} {'assay s':>8s} {'GB/s':>6s} {'MB':>6s} {'blake3 s':>9s} {'GB/s':>6s} "
          f"{'sha256 s':>9s} {'vs blake3':>9s} {'vs sha256':>9s}")
    for label, size, ta, ma, tb, _mb, ts in rows:
        gb = size / 1e9
        print(f"{label:12s} {gb:5.2f} {ta:8.3f} {gb / ta:6.2f} {ma:6.0f} {tb:9.3f} {gb / tb:6.2f} {ts:9.3f} "
              f"{tb / ta:8.2f}x {ts / ta:8.2f}x")
    print(f"diff of two {rows[0][1] / 1e9:.1f} GB models: {t_diff:.3f} s, {m_diff:.0f} MB peak; "
          f"hashing both: "
          f"{t_id1 + t_id2:.3f} s; ratio {t_diff / (t_id1 + t_id2):.2f} (target < 2)")
    inproc = {}
    for label, path in (("safetensors", st), ("pytorch zip", pt)):
        ta, tb = in_process(path)
        inproc[label] = tb / ta
        print(f"in-process, hashing only ({label}): assay {ta:.3f} s, raw blake3 {tb:.3f} s, "
              f"ratio {tb / ta:.2f}x")

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    peak = max(r[3] for r in rows)
    whole = {r[0]: r[4] / r[2] for r in rows}
    print(f"targets (hashing throughput, in process): safetensors {inproc['safetensors']:.2f}x >= 0.8: "
          f"{verdict(inproc['safetensors'] >= 0.8)}; pytorch zip {inproc['pytorch zip']:.2f}x >= 0.6: "
          f"{verdict(inproc['pytorch zip'] >= 0.6)}; peak {peak:.0f} MB < 200: {verdict(peak < 200)}; "
          f"diff {t_diff / (t_id1 + t_id2):.2f}x < 2: {verdict(t_diff / (t_id1 + t_id2) < 2)}")
    print(f"whole processes (interpreter start and imports included, not throughput): safetensors "
          f"{whole['safetensors']:.2f}x, pytorch zip {whole['pytorch zip']:.2f}x of raw BLAKE3")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
