"""The package source never calls a loader that would execute model-file content."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "assay"
SHARED_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "unsafe_calls.py"

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "torch", "joblib", "dill", "cloudpickle",
                     "pandas", "marshal", "shelve"}
FORBIDDEN_CALLS = {"load", "loads", "Unpickler", "read_pickle", "load_model", "eval", "exec"}


def offending_calls(tree: ast.AST) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for m in mods:
                if m.split(".")[0] in FORBIDDEN_MODULES:
                    out.append(f"imports {m}")
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        base = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
        if name in ("eval", "exec", "__import__") and not base:
            out.append(f"calls {name}")
        if base in FORBIDDEN_MODULES and name in FORBIDDEN_CALLS:
            out.append(f"calls {base}.{name}")
        if name == "load_model":
            out.append("calls load_model")
        for kw in node.keywords:
            if kw.arg in ("allow_pickle", "trust_remote_code") and \
                    isinstance(kw.value, ast.Constant) and kw.value.value is True:
                out.append(f"passes {kw.arg}=True")
    return out


def test_no_unsafe_loader_in_src() -> None:
    bad = {}
    for py in SRC.rglob("*.py"):
        hits = offending_calls(ast.parse(py.read_text(), str(py)))
        if py.relative_to(SRC).parts[0] == "runtime":   # builds known architectures in code with
            hits = [h for h in hits if not h.startswith("imports torch")]   # torch; torch.load still caught
        if py.relative_to(SRC) == Path("jobs.py"):
            # the worker processes' messages: values assay's own workers marshal.dumps (strings,
            # numbers, tuples), read back by the parent; never bytes from a file
            hits = [h for h in hits if h not in ("imports marshal", "calls marshal.loads")]
        if hits:
            bad[str(py.relative_to(SRC))] = hits
    assert bad == {}


def test_only_the_job_messages_use_marshal() -> None:
    users = sorted(str(py.relative_to(SRC)) for py in SRC.rglob("*.py")
                   if "imports marshal" in offending_calls(ast.parse(py.read_text(), str(py))))
    assert users == ["jobs.py"]


def test_checker_catches_what_it_should() -> None:
    sample = "import pickle\npickle.load(f)\nimport numpy as np\nnp.load(p, allow_pickle=True)\neval('1')\n"
    assert len(offending_calls(ast.parse(sample))) == 4


def test_shared_tool_prints_nothing() -> None:
    if not SHARED_TOOL.exists():
        import pytest
        pytest.skip("shared/tools/unsafe_calls.py is not beside this checkout")
    r = subprocess.run([sys.executable, str(SHARED_TOOL), str(SRC)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == ""
