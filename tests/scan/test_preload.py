"""What scanning a file imports, and what `preload` predicts it will import.

Each file of the benign corpus is scanned in a forked child of a process that has imported
assay and nothing heavy, and the child reports which of the big libraries its scan imported.
Scanning must never need the `onnx` package (ONNX is read from the wire format) nor ml_dtypes;
no file of the benign corpus (pickles, PyTorch zips, NumPy, joblib, ONNX, safetensors, GGUF,
Keras HDF5 and .keras) needs NumPy or h5py; and `preload`,
which imports libraries in the parent before workers fork, predicts those that are needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.factories.benign import build_benign

HEAVY = ("numpy", "h5py", "onnx", "ml_dtypes", "jinja2", "torch", "gguf")

CHILD = r"""
import json, os, sys
os.environ["ASSAY_ISOLATED"] = "1"
from assay.api import scan_file
from assay.formats import _libraries
heavy = json.loads(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        res = scan_file(path)
        got = [m for m in heavy if m in sys.modules]
        os.write(w, json.dumps({"got": got, "status": res.status}).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    with open(path, "rb") as fh:
        out[path] = {**json.loads(data), "predicted": list(_libraries(fh.read(4096)))}
print(json.dumps(out))
"""


def _files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def test_scan_imports_only_what_the_format_needs(tmp_path: Path) -> None:
    build_benign(tmp_path)
    files = _files(tmp_path)
    assert len(files) > 30
    before = subprocess.run([sys.executable, "-c", "import sys, assay.api, assay.analyses.scan; "
                             f"print([m for m in {HEAVY!r} if m in sys.modules])"],
                            capture_output=True, text=True, check=True)
    assert before.stdout.strip() == "[]"           # assay itself imports none of them
    run = subprocess.run([sys.executable, "-c", CHILD, json.dumps(HEAVY), *files],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout)
    assert set(seen) == set(files)
    for path, r in seen.items():
        assert r["status"] != "error", path
        assert "onnx" not in r["got"] and "ml_dtypes" not in r["got"] and "torch" not in r["got"], (path, r)
        # no weight format needs NumPy or h5py to be scanned any more
        assert "numpy" not in r["got"] and "h5py" not in r["got"], (path, r)
        if "jinja2" in r["got"]:
            assert "jinja2" in r["predicted"] or path.endswith(".json"), (path, r)
    onnx_files = [p for p in seen if p.endswith(".onnx")]
    assert onnx_files and all(seen[p]["predicted"] == [] for p in onnx_files)
