"""The scan corpus is honest: every hostile sample that names a loader really runs its payload
when that loader reads it, and the benign files are ones the official libraries read.

The real loaders run only in child processes (this file run as a script, one child per loader,
each sample with its own marker file); the test process itself never loads a hostile file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
RULE_IDS = {f"PICKLE00{i}" for i in range(1, 9)} | {f"ARCHIVE{i:03d}" for i in range(1, 11)} | {
    "KERAS001", "KERAS002", "KERAS003", "ONNX001", "ONNX002", "GGUF001", "SAFETENSORS001", "FORMAT001",
    "FORMAT002", "TEMPLATE001", "TEMPLATE002"}
SAMPLE_TIMEOUT_S = 60


# ---------------------------------------------------------------- the child side

def _load(loader: str, path: str) -> None:
    """One real load of one corpus file. Errors after the payload ran are expected."""
    if loader == "pickle":
        import pickle
        with open(path, "rb") as f:
            pickle.load(f)  # unsafe-ok: honesty test runs the corpus in a child process
    elif loader in ("torch", "torch-legacy"):
        import torch
        with open(path, "rb") as f:     # an open file: torch.load would read a path named .safetensors
            torch.load(f, weights_only=False)  # unsafe-ok: honesty test runs the corpus in a child process
    elif loader == "joblib":
        import joblib
        joblib.load(path)  # unsafe-ok: honesty test runs the corpus in a child process
    elif loader == "numpy":
        import numpy as np
        data = np.load(path, allow_pickle=True)  # unsafe-ok: honesty test runs the corpus in a child process
        for key in getattr(data, "files", []):
            data[key]
    elif loader in ("keras", "keras-h5"):
        from keras.saving import load_model
        load_model(path, safe_mode=False)  # unsafe-ok: honesty test runs the corpus in a child process
    else:
        raise ValueError(f"unknown loader {loader}")


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError("sample took too long")


def child_main(loader: str, jobs_file: str) -> None:
    """Load every listed file in turn; note each path in `<jobs_file>.done` once its load is over
    (not on stdout, which payloads may write to)."""
    if loader.startswith("keras"):
        os.environ["KERAS_BACKEND"] = "torch"
    signal.signal(signal.SIGALRM, _timeout)
    with open(jobs_file + ".done", "a") as done:
        for path in json.loads(Path(jobs_file).read_text()):
            signal.alarm(SAMPLE_TIMEOUT_S)
            try:
                _load(loader, path)
            except BaseException:       # SystemExit, or anything a payload raises after running
                pass
            signal.alarm(0)
            done.write(path + "\n")
            done.flush()


# ---------------------------------------------------------------- the parent side

def run_loader(loader: str, paths: list[str], work: Path) -> list[str]:
    """Run `loader` on every path in child processes (a crashed child is restarted after the
    sample it died on). Returns the paths whose load killed the child."""
    crashed: list[str] = []
    todo = list(paths)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch", "PYTHONWARNINGS": "ignore"}
    while todo:
        jobs = work / f"jobs-{loader}-{len(crashed)}.json"
        jobs.write_text(json.dumps(todo))
        r = subprocess.run([sys.executable, str(HERE), loader, str(jobs)], cwd=work, env=env,
                           capture_output=True, text=True, timeout=SAMPLE_TIMEOUT_S * len(todo) + 60)
        done_file = Path(f"{jobs}.done")
        done = set(done_file.read_text().splitlines()) if done_file.exists() else set()
        rest = [p for p in todo if p not in done]
        if rest and r.returncode == 0:
            raise AssertionError(f"{loader} child ended early: {r.stderr[-2000:]}")
        if rest:
            crashed.append(rest[0])
            rest = rest[1:]
        todo = rest
    return crashed


def _wait_for(markers: list[Path], seconds: float = 5.0) -> None:
    """Some payloads start a process that outlives the load (Popen, posix_spawn)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not all(os.path.lexists(m) for m in markers):
        time.sleep(0.1)


@pytest.mark.slow
def test_every_hostile_sample_with_a_loader_runs_its_payload(tmp_path: Path) -> None:
    from tests.factories.hostile import build_hostile
    markers = tmp_path / "markers"
    markers.mkdir()
    samples = build_hostile(tmp_path / "corpus", markers / "PWNED", marker_per_sample=True)
    assert list(markers.iterdir()) == [], "building the corpus ran a payload"
    runnable = [s for s in samples if s.loader is not None]
    by_loader: dict[str, list[str]] = {}
    for s in runnable:
        assert s.marker is not None and s.marker.parent == markers
        by_loader.setdefault(s.loader, []).append(str(s.path))
    work = tmp_path / "work"
    work.mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(by_loader, pool.map(lambda kv: run_loader(kv[0], kv[1], work), by_loader.items())))
    _wait_for([s.marker for s in runnable if s.marker is not None])
    missing = [f"{s.technique} ({s.loader}): {s.path}" for s in runnable
               if s.marker is not None and not os.path.lexists(s.marker)]
    crashed = [p for ps in results.values() for p in ps]
    assert missing == [], f"{len(missing)}/{len(runnable)} payloads did not run (crashed on {crashed})"
    print(f"\n{len(runnable)} of {len(samples)} hostile samples ran their payload under their loader: "
          + ", ".join(f"{k} {len(v)}" for k, v in sorted(by_loader.items())))


def test_hostile_corpus_covers_every_family(tmp_path: Path) -> None:
    from tests.factories.hostile import FAMILIES, LOADERS, build_hostile
    root = tmp_path / "corpus"
    start = time.monotonic()
    samples = build_hostile(root, tmp_path / "PWNED")
    seconds = time.monotonic() - start
    assert len(samples) >= 150
    assert set(Counter(s.family for s in samples)) == set(FAMILIES)
    assert len({s.technique for s in samples}) == len(samples)
    for s in samples:
        assert s.path.exists() and root in s.path.parents, s
        assert s.rules and set(s.rules) <= RULE_IDS, s
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", s.technique), s.technique
        assert s.loader is None or s.loader in LOADERS
        assert (s.marker == tmp_path / "PWNED") == (s.loader is not None)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    assert size < 50 << 20 and seconds < 15
    assert not (tmp_path / "PWNED").exists()


# ---------------------------------------------------------------- benign files

def _read_official(path: Path) -> int:
    """Read one benign file with its format's official library; how many items (tensors, arrays,
    keys, estimators' attributes) it holds. The files were written by the test's own factory."""
    suffix = path.suffix
    if path.is_dir():
        inside = sorted(p for p in path.rglob("*") if p.suffix in (".json", ".safetensors"))
        return sum(_read_official(p) for p in inside)
    if suffix == ".json":
        return len(json.loads(path.read_text()))
    if suffix == ".safetensors":
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            return len([f.get_tensor(k) for k in f.keys()])
    if suffix == ".jit" or path.name == "scripted.pt":
        import torch
        return len(torch.jit.load(str(path)).state_dict())  # unsafe-ok: oracle; TorchScript the test wrote
    if suffix in (".pt", ".pth", ".ckpt", ".bin"):
        import torch
        return len(torch.load(path, weights_only=True))  # unsafe-ok: oracle on a file the test wrote
    if suffix in (".joblib", ".pkl"):
        import joblib
        return len(vars(joblib.load(path)))  # unsafe-ok: oracle on a scikit-learn file the test wrote
    if suffix in (".npy", ".npz"):
        import numpy as np
        data = np.load(path, allow_pickle=path.name.endswith("object.npy"))
        return len([data[k] for k in data.files]) if hasattr(data, "files") else data.size
    if suffix == ".onnx":
        import onnx
        onnx.checker.check_model(str(path))
        model = onnx.load(str(path))
        return len(model.graph.node)
    if suffix == ".gguf":
        from gguf import GGUFReader
        return len(GGUFReader(str(path)).tensors)
    if suffix in (".keras", ".h5"):
        os.environ.setdefault("KERAS_BACKEND", "torch")
        from keras.saving import load_model
        return len(load_model(path).weights)  # unsafe-ok: safe mode, a Dense model the test wrote
    raise AssertionError(f"no official reader for {path}")


@pytest.mark.slow
def test_benign_files_are_read_by_their_official_libraries(tmp_path: Path) -> None:
    from tests.factories.benign import build_benign
    paths = build_benign(tmp_path)
    assert len(paths) >= 30
    for p in paths:
        assert p.exists(), p
        assert _read_official(p) > 0, p


if __name__ == "__main__":
    child_main(sys.argv[1], sys.argv[2])
