"""`assay inspect` against the loaders people use, each as a whole fresh process.

Generates (once, under benchmarks/data/, git-ignored; again if missing) a ~2 GB safetensors file
and a ~2 GB PyTorch zip checkpoint of 500 float32 tensors of 1000x1000. Each case opens the file
and summarises it (parameter count and dtypes) in a fresh interpreter, start and imports
included, after one untimed run that warms the page cache and checks the printed summary:

- assay:        `assay inspect FILE --format json` (the JSON summary, to /dev/null)
- safe_open:    `safe_open(FILE, "pt")`, shape and dtype of every tensor, as Hugging Face
                transformers opens it: the peer the issue's numbers describe ("about 1.4 s and
                220 MB, almost all of it importing torch"); also `safe_open(FILE, "numpy")`, for
                reference (no torch import; about 0.1 s, mostly `import numpy`)
- torch.load:   `torch.load(FILE, mmap=True, weights_only=True)`, numel and dtype of every tensor

Each child prints its own peak RSS (VmHWM from /proc/self/status) at exit. The table reports
the median wall time and median peak RSS over the repetitions, and peer / assay ratios.

    python benchmarks/inspect_bench.py [--quick] [--reps N]

Exit 0 when every command ran (whether or not assay meets its targets); otherwise a one-line
message on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DATA, child_env, ensure, gen_safetensors, gen_torch

ROWS = COLS = 1000
TARGET_S, TARGET_MB, TARGET_SPEEDUP = 0.3, 100.0, 5.0

# Prepended to every child: print the process's own peak RSS to stderr at interpreter exit
# (atexit also runs when the code ends with SystemExit, as the assay CLI does).
HWM = """\
import atexit, sys
def _hwm():
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith('VmHWM:'):
                sys.__stderr__.write('VMHWM ' + line.split()[1] + '\\n')
atexit.register(_hwm)
"""

ASSAY = """\
from assay.cli.main import main
sys.argv = ['assay', 'inspect', {path!r}, '--format', 'json']
main()
"""

SAFE_OPEN = """\
from safetensors import safe_open
n, dtypes = 0, set()
with safe_open({path!r}, {framework!r}) as f:
    for k in f.keys():
        s = f.get_slice(k)
        p = 1
        for d in s.get_shape():
            p *= d
        n += p
        dtypes.add(s.get_dtype())
print(n, ",".join(sorted(dtypes)))
"""

TORCH_LOAD = """\
import torch
p = {path!r}
sd = torch.load(p, mmap=True, weights_only=True)  # unsafe-ok: peer baseline on a file the benchmark wrote
print(sum(t.numel() for t in sd.values()), ",".join(sorted({{str(t.dtype) for t in sd.values()}})))
"""


class BenchError(Exception):
    """A command did not run or did not print what it should: the benchmark cannot report."""


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    code: str
    check: Callable[[str], None]
    target: bool = True     # a peer the targets are stated against


@dataclass(frozen=True)
class Result:
    case: Case
    seconds: float
    peak_mb: float


def child(code: str) -> list[str]:
    return [sys.executable, "-c", HWM + code]


def check_assay(n: int) -> Callable[[str], None]:
    def check(out: str) -> None:
        try:
            doc = json.loads(out)
        except ValueError:
            raise BenchError(f"assay inspect printed no JSON summary: {out[:120]!r}") from None
        got = (doc.get("schema"), doc.get("tensor_count"), doc.get("parameters"),
               sorted(doc.get("dtypes", {})))
        want = ("assay.inspect/1", n, n * ROWS * COLS, ["float32"])
        if got != want:
            raise BenchError(f"assay inspect summary is {got}, expected {want}")
    return check


def check_peer(n: int, dtype: str) -> Callable[[str], None]:
    def check(out: str) -> None:
        want = f"{n * ROWS * COLS} {dtype}"
        if out.strip() != want:
            raise BenchError(f"peer printed {out.strip()[:120]!r}, expected {want!r}")
    return check


def run_once(case: Case, stdout: int) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    r = subprocess.run(child(case.code), stdout=stdout, stderr=subprocess.PIPE, text=True, env=child_env())
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        lines = [x for x in r.stderr.strip().splitlines() if not x.startswith("VMHWM ")]
        last = (lines or ["no message"])[-1]
        raise BenchError(f"{case.name} on {case.file} exited {r.returncode}: {last[:200]}")
    return elapsed, r


def peak_mb(stderr: str, case: Case) -> float:
    kb = [int(x.split()[1]) for x in stderr.splitlines() if x.startswith("VMHWM ")]
    if not kb:
        raise BenchError(f"{case.name} on {case.file} reported no VmHWM")
    return kb[-1] / 1024


def measure(case: Case, reps: int) -> Result:
    """One untimed run (page cache warm-up, output checked), then `reps` timed runs to /dev/null."""
    _, first = run_once(case, subprocess.PIPE)
    case.check(first.stdout)
    times, peaks = [], []
    for _ in range(reps):
        elapsed, r = run_once(case, subprocess.DEVNULL)
        times.append(elapsed)
        peaks.append(peak_mb(r.stderr, case))
    return Result(case, statistics.median(times), statistics.median(peaks))


def data_files(n: int) -> tuple[Path, Path]:
    DATA.mkdir(exist_ok=True)
    st = DATA / f"id-{n}.safetensors"
    pt = DATA / f"id-{n}.pt"
    ensure(st, lambda: gen_safetensors(st, n, ROWS, COLS))
    ensure(pt, lambda: gen_torch(st, pt))
    return st, pt


def cases(n: int, st: Path, pt: Path) -> list[Case]:
    def assay(path: Path) -> Case:
        return Case("assay inspect", path.name, ASSAY.format(path=str(path)), check_assay(n))

    return [
        assay(st),
        Case("safe_open pt", st.name, SAFE_OPEN.format(path=str(st), framework="pt"),
             check_peer(n, "F32")),
        Case("safe_open numpy", st.name, SAFE_OPEN.format(path=str(st), framework="numpy"),
             check_peer(n, "F32"), target=False),
        assay(pt),
        Case("torch.load mmap", pt.name, TORCH_LOAD.format(path=str(pt)), check_peer(n, "torch.float32")),
    ]


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def report(n: int, reps: int, results: list[Result], startup: Result) -> None:
    print(f"# inspect benchmark: {n} float32 tensors of {ROWS}x{COLS} per file, median of {reps} fresh "
          f"processes after one warm-up, {os.cpu_count()} cores, {platform.machine()}")
    print(f"# python {platform.python_version()}, assay {version('assay')}, safetensors "
          f"{version('safetensors')}, torch {version('torch')}, numpy {version('numpy')}")
    print(f"{'case':16s} {'file':18s} {'GB':>5s} {'median s':>9s} {'peak MB':>8s} "
          f"{'time peer/assay':>16s} {'mem peer/assay':>15s}")
    assay = {r.case.file: r for r in results if r.case.name == "assay inspect"}
    for r in results:
        gb = (DATA / r.case.file).stat().st_size / 1e9
        ratios = ("", "")
        if r.case.name != "assay inspect":
            a = assay[r.case.file]
            ratios = (f"{r.seconds / a.seconds:.1f}x", f"{r.peak_mb / a.peak_mb:.1f}x")
        print(f"{r.case.name:16s} {r.case.file:18s} {gb:5.2f} {r.seconds:9.3f} {r.peak_mb:8.0f} "
              f"{ratios[0]:>16s} {ratios[1]:>15s}")
    print(f"{'python -c pass':16s} {'-':18s} {'':5s} {startup.seconds:9.3f} {startup.peak_mb:8.0f}   "
          "(interpreter start, for reference)")
    print(verdict(results))
    print("(safe_open numpy is for reference: it imports no framework; the targets are stated against "
          "the torch-importing loaders)")


def verdict(results: list[Result]) -> str:
    assay = [r for r in results if r.case.name == "assay inspect"]
    peers = [r for r in results if r.case.name != "assay inspect" and r.case.target]
    by_file = {r.case.file: r for r in assay}
    worst_s = max(r.seconds for r in assay)
    worst_mb = max(r.peak_mb for r in assay)
    speedup, slowest = min((p.seconds / by_file[p.case.file].seconds, p.case.name) for p in peers)
    checks = [(f"assay < {TARGET_S} s", worst_s < TARGET_S, f"{worst_s:.3f} s"),
              (f"assay < {TARGET_MB:.0f} MB", worst_mb < TARGET_MB, f"{worst_mb:.0f} MB"),
              (f">= {TARGET_SPEEDUP:.0f}x faster than either loader", speedup >= TARGET_SPEEDUP,
               f"{speedup:.1f}x against {slowest}")]
    return "targets: " + "; ".join(f"{name}: {'met' if ok else 'MISSED'} (worst {got})"
                                   for name, ok, got in checks)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 50 tensors (200 MB per file)")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per case (default 5)")
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    n = 50 if args.quick else 500
    try:
        st, pt = data_files(n)
        results = [measure(c, args.reps) for c in cases(n, st, pt)]
        startup = measure(Case("python -c pass", "-", "pass", lambda out: None), args.reps)
    except BenchError as exc:
        print(f"inspect_bench: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # any failure to generate or run: one line, exit 2
        print(f"inspect_bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    report(n, args.reps, results, startup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
