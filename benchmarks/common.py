"""Shared by the benchmarks: generated model files and whole-process timing with peak RSS."""

from __future__ import annotations

import json
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

# Children print their own peak RSS (VmHWM) to stderr at exit.
WRAP = """
import sys, atexit
def _hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            sys.__stderr__.write('VMHWM ' + line.split()[1] + '\\n')
atexit.register(_hwm)
"""


def child_env() -> dict[str, str]:
    """Children may write bytecode caches, as on a user's machine (this sandbox turns it off)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def gen_safetensors(path: Path, n: int, rows: int = 1000, cols: int = 1000, seed: int = 0,
                    bump: int = 0) -> None:
    """n float32 tensors written one at a time (never the whole model in memory)."""
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
            if bump and i % max(1, n // bump) == 0:
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


def ensure(path: Path, make: object) -> Path:
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr)
        make()  # type: ignore[operator]
    return path


def run(cmd: list[str], reps: int) -> tuple[float, float]:
    """Median wall seconds and median peak MB of `cmd` run `reps` times after one warm-up."""
    env = child_env()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
    times, peaks = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if r.returncode not in (0, 1):
            raise SystemExit(f"benchmark: {' '.join(cmd[:4])} failed: {r.stderr.strip()[-300:]}")
        kb = [int(x.split()[1]) for x in r.stderr.splitlines() if x.startswith("VMHWM ")]
        peaks.append(kb[-1] / 1024 if kb else float("nan"))
    return statistics.median(times), statistics.median(peaks)


def py(code: str) -> list[str]:
    return [sys.executable, "-c", WRAP + code]


def assay_cli(*args: str) -> list[str]:
    return py("import sys\nfrom assay.cli.main import main\nsys.argv = ['assay', "
              + ", ".join(repr(a) for a in args) + "]\ntry:\n    main()\nexcept SystemExit:\n    pass\n")
