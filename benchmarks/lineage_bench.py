"""Catalog benchmark: `catalog add` and `catalog find` on 1,000 synthetic models in families.

Each family is a base model and derived members (fine-tunes, casts, prunes, a low-rank adapter
update, an extended vocabulary). Models are small (a few 10^4 parameters) and built in memory;
their fingerprints come from the real `fingerprint` function, relations from the real `relate`.

Measured, in process, on an SQLite catalog (and with `--postgres` also on a PostgreSQL 16 server
started with pgserver): the time to add each model (fingerprint given: index lookup, pairwise
tests with the candidates, the write), and the time of `find` for held-out relatives (new
fine-tunes of catalogued bases) when the catalog holds 100 and then 1,000 models. Checks: every
member of the query's family is found, no model of another family is returned, and the query
time at 1,000 models is at most 2x the time at 100 (the LSH index keeps it from growing with the
catalog). Exit 0 when all checks pass, 1 when one fails, 2 on error.

    .venv/bin/python benchmarks/lineage_bench.py              # 100 families of 10 = 1,000 models
    .venv/bin/python benchmarks/lineage_bench.py --families 20 --postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from assay.analyses.lineage.fingerprint import fingerprint  # noqa: E402
from assay.analyses.lineage.types import Fingerprint  # noqa: E402
from assay.catalog import Catalog  # noqa: E402
from assay.formats.base import record_from_array  # noqa: E402
from assay.model.artifact import ModelArtifact  # noqa: E402

Weights = dict[str, np.ndarray]
MEMBERS = ("base", "ft1", "ft2", "ft3", "base-fp16", "ft1-bf16", "pruned", "ft2-pruned", "adapter",
           "extended")
QUERIES_PER_POINT = 10


# -- synthetic families ---------------------------------------------------------------------------
def base_model(rng: np.random.Generator, dim: int = 32, layers: int = 2, vocab: int = 64) -> Weights:
    w: Weights = {"embed.weight": rng.standard_normal((vocab, dim), dtype=np.float32) * 0.05}
    for i in range(layers):
        w[f"layers.{i}.attn.weight"] = rng.standard_normal((dim, dim), dtype=np.float32) * 0.05
        w[f"layers.{i}.mlp.weight"] = rng.standard_normal((2 * dim, dim), dtype=np.float32) * 0.05
        w[f"layers.{i}.norm.weight"] = np.ones(dim, dtype=np.float32)
    return w


def finetune(w: Weights, rng: np.random.Generator, scale: float = 0.003) -> Weights:
    return {k: v + rng.standard_normal(v.shape, dtype=np.float32) * scale if v.ndim == 2 else v.copy()
            for k, v in w.items()}


def cast(w: Weights, dtype: str) -> Weights:
    if dtype == "bfloat16":
        import ml_dtypes
        return {k: v.astype(ml_dtypes.bfloat16) for k, v in w.items()}
    return {k: v.astype(dtype) for k, v in w.items()}


def prune(w: Weights, fraction: float = 0.3) -> Weights:
    out = {}
    for k, v in w.items():
        if v.ndim == 2:
            v = np.where(np.abs(v) < np.quantile(np.abs(v), fraction), np.float32(0), v)
        out[k] = v.astype(np.float32)
    return out


def adapter(w: Weights, rng: np.random.Generator, rank: int = 2) -> Weights:
    out = {}
    for k, v in w.items():
        if v.ndim == 2 and "layers" in k:
            a = rng.standard_normal((v.shape[0], rank), dtype=np.float32) * 0.02
            b = rng.standard_normal((rank, v.shape[1]), dtype=np.float32) * 0.02
            v = v + a @ b
        out[k] = v.copy()
    return out


def extended(w: Weights, rng: np.random.Generator, rows: int = 8) -> Weights:
    out = {k: v.copy() for k, v in w.items()}
    e = out["embed.weight"]
    more = rng.standard_normal((rows, e.shape[1]), dtype=np.float32) * 0.05
    out["embed.weight"] = np.concatenate([e, more])
    return out


def family(seed: int) -> list[tuple[str, Weights]]:
    rng = np.random.default_rng(seed)
    base = base_model(rng)
    ft1, ft2, ft3 = finetune(base, rng), finetune(base, rng), finetune(base, rng)
    return list(zip(MEMBERS, (base, ft1, ft2, ft3, cast(base, "float16"), cast(ft1, "bfloat16"),
                              prune(base), prune(ft2), adapter(base, rng), extended(base, rng))))


def fp_of(w: Weights, label: str) -> Fingerprint:
    art = ModelArtifact(label, "synthetic",
                        tensors=[record_from_array(k, np.ascontiguousarray(v), label) for k, v in w.items()])
    return fingerprint(art, label)


def query_of(f: int) -> Fingerprint:
    """A held-out relative of family `f`: a new fine-tune of its base, never catalogued."""
    rng = np.random.default_rng(10_000 + f)
    base = family(f)[0][1]
    return fp_of(finetune(base, rng), f"query/fam{f:03d}")


# -- measurement ----------------------------------------------------------------------------------
def check(r_matches: list[str], f: int, n_models: int) -> list[str]:
    """Problems with the labels `find` returned for a held-out relative of family `f`."""
    found = set(r_matches)
    want = {f"fam{f:03d}/{m}" for m in MEMBERS}
    problems = []
    if want - found:
        problems.append(f"at {n_models}: fam{f:03d}: missed {sorted(want - found)}")
    stray = sorted(x for x in found if not x.startswith(f"fam{f:03d}/"))
    if stray:
        problems.append(f"at {n_models}: fam{f:03d}: unrelated models returned {stray}")
    return problems


def timed_find(cat: Catalog, q: Fingerprint) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    r = cat.find(q, limit=50)
    return time.perf_counter() - t0, [m.entry.label for m in r.matches]


def run(location: str, backend: str, n_families: int, fps: list[list[Fingerprint]]) -> tuple[dict, list[str]]:
    """Time adds into a catalog of every family; then time the same queries against it and
    against a catalog of its first 10 families (100 models), alternating rounds, so that both
    sizes are measured under the same load of this shared machine."""
    add_times: list[float] = []
    problems: list[str] = []
    small_loc = location + "-100" if backend == "sqlite" else location.replace("/bench?", "/bench100?")
    with Catalog.open(location) as big, Catalog.open(small_loc) as small:
        for f in range(n_families):
            for fp in fps[f]:
                t0 = time.perf_counter()
                added = big.add(fp)
                add_times.append(time.perf_counter() - t0)
                if not added.created:
                    problems.append(f"{fp.label}: not added (content identity clash)")
                if f < 10:
                    small.add(fp)
        links = big.links()
        n_big = n_families * len(MEMBERS)
        # Correctness on held-out relatives of families across the whole catalog...
        spread = list(range(0, n_families, max(1, n_families // QUERIES_PER_POINT)))[:QUERIES_PER_POINT]
        for f in spread:
            problems += check(timed_find(big, query_of(f))[1], f, n_big)
        # ... and timing: the same queries (families 0-9, in both catalogs), each run on the
        # small and the big catalog back to back, so both sizes see the same load.
        points: dict[int, list[float]] = {100: [], n_big: []}
        queries = [query_of(f) for f in range(10)]
        for _round in range(3):
            for f, q in enumerate(queries):
                for n, cat in ((100, small), (n_big, big)):
                    t, labels = timed_find(cat, q)
                    points[n].append(t)
                    problems += check(labels, f, n)
    stats = {"backend": backend, "models": len(add_times), "links": len(links),
             "add_median_ms": 1e3 * statistics.median(add_times),
             "add_p95_ms": 1e3 * sorted(add_times)[int(0.95 * (len(add_times) - 1))],
             "add_total_s": sum(add_times),
             "find_ms": {n: 1e3 * statistics.median(t) for n, t in points.items()},
             "find_max_ms": {n: 1e3 * max(t) for n, t in points.items()},
             "queries": {n: len(t) for n, t in points.items()}}
    ratio = statistics.median(points[n_big]) / statistics.median(points[100])
    stats["ratio"] = ratio
    if ratio > 2.0:
        problems.append(f"{backend}: find at {n_big} models is {ratio:.2f}x the time at 100 (> 2x)")
    cross = [x for x in links if x.parent.label.split("/")[0] != x.child.label.split("/")[0]]
    if cross:
        problems.append(f"{backend}: {len(cross)} relations stored across families")
    return stats, problems


def report(s: dict) -> None:
    small, large = min(s["find_ms"]), max(s["find_ms"])
    print(f"{s['backend']:<10} models={s['models']}  relations stored={s['links']}")
    print(f"  add:  median {s['add_median_ms']:.1f} ms, p95 {s['add_p95_ms']:.1f} ms, "
          f"total {s['add_total_s']:.1f} s")
    for n in sorted(s["find_ms"]):
        print(f"  find at {n:>5} models: median {s['find_ms'][n]:.1f} ms, max {s['find_max_ms'][n]:.1f} ms "
              f"({s['queries'][n]} queries)")
    print(f"  find time {large} / {small} models: {s['ratio']:.2f}x (target <= 2x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", type=int, default=100, help="families of 10 models (default 100)")
    ap.add_argument("--postgres", action="store_true", help="also run on a PostgreSQL server (pgserver)")
    args = ap.parse_args()
    if args.families < 10:
        print("lineage_bench: --families must be at least 10", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    fps = [[fp_of(w, f"fam{f:03d}/{name}") for name, w in family(f)] for f in range(args.families)]
    t_fp = time.perf_counter() - t0
    n = args.families * len(MEMBERS)
    print(f"# lineage catalog benchmark: {args.families} families x {len(MEMBERS)} members = {n} models, "
          f"{len(fps[0][0].tensors)} tensors / {fps[0][0].parameters} parameters per base")
    print(f"# fingerprints: {1e3 * t_fp / n:.1f} ms per model (in memory; not part of the add times)")
    print(f"# python {sys.version.split()[0]}, {os.cpu_count()} cores")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        stats, bad = run(os.path.join(tmp, "catalog.sqlite"), "sqlite", args.families, fps)
        report(stats)
        problems += bad
        if args.postgres:
            stats, bad = run(_pg_url(), "postgresql", args.families, fps)
            report(stats)
            problems += bad
    problems = list(dict.fromkeys(problems))
    for p in problems:
        print(f"FAIL {p}")
    print("all checks passed: every family member found, no unrelated model returned"
          if not problems else f"{len(problems)} checks failed")
    return 1 if problems else 0


def _pg_url() -> str:
    import atexit
    import shutil
    import warnings

    import pgserver
    base = tempfile.mkdtemp(prefix="assay-bench-pg-")      # reachable by pgserver's system user
    os.chmod(base, 0o755)
    atexit.register(shutil.rmtree, base, True)     # registered first: runs after pgserver's stop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(os.path.join(base, "data"), cleanup_mode="delete")
    server.psql("CREATE DATABASE bench; CREATE DATABASE bench100;")
    return "postgresql+psycopg://" + server.get_uri("bench")[len("postgresql://"):]


if __name__ == "__main__":
    sys.exit(main())
