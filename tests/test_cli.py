from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli.main", *args], capture_output=True,
                          text=True, timeout=120)


def test_inspect_json_document(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"
    save_file({"w": np.ones((3, 4), np.float32), "b": np.zeros(4, np.float16)}, str(p))
    r = run("inspect", str(p), "--format", "json", "--tensors")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "assay.inspect/1"
    assert doc["format"] == "safetensors"
    assert doc["parameters"] == 16 and doc["bytes"] == 48 + 8
    assert doc["dtypes"] == {"float16": {"tensors": 1, "parameters": 4, "bytes": 8},
                             "float32": {"tensors": 1, "parameters": 12, "bytes": 48}}
    assert {t["name"] for t in doc["tensors"]} == {"b", "w"}
    assert doc["largest"][0]["name"] == "w" and doc["largest"][0]["shape"] == [3, 4]
    assert r.stderr == ""


def test_inspect_text_on_bundled_examples() -> None:
    r = run("inspect", str(ROOT / "examples" / "tiny-classifier"))
    assert r.returncode == 0, r.stderr
    assert "folder:safetensors" in r.stdout and "apache-2.0" in r.stdout
    r = run("inspect", str(ROOT / "examples" / "tiny-checkpoint.pt"), "--tensors")
    assert r.returncode == 0 and "state_dict.0.weight" in r.stdout


def test_output_is_deterministic(tmp_path: Path) -> None:
    p = ROOT / "examples" / "tiny-checkpoint.pt"
    assert run("inspect", str(p), "-f", "json").stdout == run("inspect", str(p), "-f", "json").stdout


@pytest.mark.parametrize("content", [b"", b"hello world\n", b"\x80\x02", b"PK\x03\x04garbage",
                                     b"GGUF\x03\x00\x00\x00", b"\x93NUMPY\x01\x00\xff\xff",
                                     b"\x89HDF\r\n\x1a\n" + b"\0" * 50, b"\x1f\x8b\x08\x00garbage"])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.bin"
    p.write_bytes(content)
    r = run("inspect", str(p))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("assay: error: ") and str(p) in lines[0], r.stderr
    assert r.stdout == ""


def test_missing_path_and_bad_option(tmp_path: Path) -> None:
    r = run("inspect", str(tmp_path / "nope"))
    assert r.returncode == 2 and "no such file" in r.stderr
    r = run("inspect", str(tmp_path), "--format", "yaml")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_truncations_of_every_example_never_trace(tmp_path: Path) -> None:
    src = (ROOT / "examples" / "tiny-checkpoint.pt").read_bytes()
    for cut in (10, 100, 1000, len(src) // 2, len(src) - 1):
        p = tmp_path / f"cut{cut}"
        p.write_bytes(src[:cut])
        r = run("inspect", str(p))
        assert r.returncode == 2 and "Traceback" not in r.stderr and "internal error" not in r.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["scan"], "Missing argument 'paths'"),
    (["scan", "--no-such-option", "x"], "No such option: --no-such-option"),
    (["inspect", "--format", "yaml", "x"], "'yaml' is not one of 'text', 'json'"),
    (["scan", "--workers", "0", "x"], "0 is not in the range x>=1"),
    (["no-such-command"], "No such command 'no-such-command'"),
    (["catalog", "no-such-command"], "No such command 'no-such-command'"),
])
def test_usage_errors_are_one_line_exit_2(args: list[str], says: str) -> None:
    """Wrong arguments get one line on stderr, like every other error, not Typer's box."""
    r = run(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("assay: error: "), r.stderr
    assert says in r.stderr and "--help" in r.stderr


def test_version() -> None:
    import assay
    r = run("--version")
    assert r.returncode == 0 and r.stdout == f"assay {assay.__version__}\n" and r.stderr == ""
