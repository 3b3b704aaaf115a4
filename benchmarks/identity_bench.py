"""Content-identity throughput and memory against raw BLAKE3 and sha256sum; diff cost.

Generates (once, under benchmarks/data/) a ~2 GB safetensors file of 500 float32 tensors of
1000x1000, the same weights as a PyTorch zip checkpoint, and a second safetensors file where
50 tensors got a small update. Each measured command runs as a whole fresh process with the page
cache warm; the table reports median wall time, throughput, peak RSS (VmHWM) and ratios.

    python benchmarks/identity_bench.py [--quick] [--reps N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

# A child that runs `code`, then prints its own peak RSS as the last line.
WRAP = """
import sys, atexit
def _hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            sys.__stderr__.write('VMHWM ' + line.split()[1] + '\\n')
atexit.register(_hwm)
"""


def gen_safetensors(path: Path, n: int, rows: int, cols: int, seed: int, bump: int = 0) -> None:
    """Write the file tensor by tensor (never the whole model in memory)."""
    header: dict[str, object] = {}
    size = rows * cols * 4
    for i in range(n):
        header[f"layer.{i:03d}.weight"] = {"dtype": "F32", "shape": [rows, cols],
                                           "data_offsets": [i * size, (i + 1) * size]}
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)) + blob)
        for i in range(n):
            t = rng.standard_normal((rows, cols), dtype=np.float32)
            if bump and i % (n // bump) == 0:
                t += np.float32(1e-3)
            fh.write(t.tobytes())
    tmp.rename(path)


def gen_torch(src: Path, path: Path) -> None:
    import torch
    from safetensors.torch import load_file
    sd = load_file(str(src))
    tmp = path.with_suffix(".tmp")
    torch.save(sd, tmp)
    tmp.rename(path)


def run(cmd: list[str], reps: int) -> tuple[float, float]:
    """Median wall seconds and peak MB of `cmd` (python children report VmHWM themselves)."""
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # warm
    times, peaks = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode not in (0, 1):
            raise SystemExit(f"identity_bench: {' '.join(cmd[:3])} failed: {r.stderr.strip()[-300:]}")
        kb = [int(x.split()[1]) for x in r.stderr.splitlines() if x.startswith("VMHWM ")]
        peaks.append(kb[-1] / 1024 if kb else float("nan"))
    return statistics.median(times), statistics.median(peaks)


def py(code: str) -> list[str]:
    return [sys.executable, "-c", WRAP + code]


def assay_cli(*args: str) -> list[str]:
    return py("import sys\nfrom assay.cli.main import main\nsys.argv = ['assay', "
              + ", ".join(repr(a) for a in args) + "]\ntry:\n    main()\nexcept SystemExit:\n    pass\n")


def blake3_file(path: Path) -> list[str]:
    return py(f"import blake3\nblake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap({str(path)!r})"
              ".hexdigest()\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="50 tensors (200 MB) instead of 500")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    n = 50 if args.quick else 500
    DATA.mkdir(exist_ok=True)
    st = DATA / f"id-{n}.safetensors"
    st2 = DATA / f"id-{n}-updated.safetensors"
    pt = DATA / f"id-{n}.pt"
    for path, make in ((st, lambda: gen_safetensors(st, n, 1000, 1000, 0)),
                       (st2, lambda: gen_safetensors(st2, n, 1000, 1000, 0, bump=10)),
                       (pt, lambda: gen_torch(st, pt))):
        if not path.exists():
            print(f"generating {path.name} ...", file=sys.stderr)
            make()
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
    print("targets: >= 0.8x raw blake3 on safetensors, >= 0.6x on the PyTorch checkpoint, "
          "peak < 200 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
