"""`assay audit` on small word-vector files built here: table, JSON, HTML, --against exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assay import api
from assay.render import audit as render

TESTS = """
[[test]]
id = "toy"
name = "Tools vs toys / work vs play"
targets = [
  ["tools", ["hammer", "saw", "drill", "wrench", "pliers", "chisel", "axe", "spanner", "file", "vice"]],
  ["toys", ["doll", "kite", "yoyo", "puzzle", "marble", "teddy", "ball", "top", "robot", "blocks"]]]
attributes = [["work", ["job", "labour", "office", "task"]], ["play", ["game", "fun", "party", "joke"]]]

[[test]]
id = "absent"
name = "Words no model knows"
targets = [["a", ["qqq1", "qqq2"]], ["b", ["qqq3", "qqq4"]]]
attributes = [["c", ["qqq5", "qqq6"]], ["d", ["qqq7", "qqq8"]]]
"""
GROUPS = {"tools": ["hammer", "saw", "drill", "wrench", "pliers", "chisel", "axe", "spanner", "file", "vice"],
          "toys": ["doll", "kite", "yoyo", "puzzle", "marble", "teddy", "ball", "top", "robot", "blocks"],
          "work": ["job", "labour", "office", "task"], "play": ["game", "fun", "party", "joke"]}
NEUTRAL = [f"filler{i}" for i in range(20)]


def _write(path: Path, tools_toward_work: float, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    work, play = np.array([1.0, 0, 0, 0, 0, 0]), np.array([0, 1.0, 0, 0, 0, 0])
    lines = []
    for g, words in GROUPS.items():
        for w in words:
            tools = tools_toward_work * work + (1 - tools_toward_work) * play
            centre = {"work": work, "play": play, "tools": tools, "toys": 0.3 * work + 0.7 * play}[g]
            v = centre + rng.normal(0, 0.15, 6)
            lines.append(w + " " + " ".join(f"{x:.6f}" for x in v))
    for w in NEUTRAL:
        lines.append(w + " " + " ".join(f"{x:.6f}" for x in rng.normal(0, 1, 6)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    tests = tmp_path / "tests.toml"
    tests.write_text(TESTS, encoding="utf-8")
    return {"tests": tests, "base": _write(tmp_path / "base.txt", 0.8),
            "same": _write(tmp_path / "same.txt", 0.8, seed=0),
            "flipped": _write(tmp_path / "flipped.txt", 0.1, seed=0)}


def _assay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli.main", "audit", *args],
                          capture_output=True, text=True, timeout=120)


def test_audit_json_and_text(files: dict[str, Path]) -> None:
    r = _assay(str(files["base"]), "--tests", str(files["tests"]), "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "assay.audit/1" and doc["kind"] == "model"
    toy, absent = doc["tests"]
    assert toy["method"] == "WEAT" and toy["effect_size"] > 1 and toy["sizes"] == [10, 10, 4, 4]
    assert toy["p_value"]["method"] == "monte-carlo"       # C(20, 10) = 184,756 > 50,000 partitions
    assert absent["skipped"] and absent["effect_size"] is None
    text = _assay(str(files["base"]), "--tests", str(files["tests"]))
    assert text.returncode == 0 and "toy" in text.stdout and "n-1" in text.stdout


def test_against_flags_a_reversal_and_not_a_copy(files: dict[str, Path], tmp_path: Path) -> None:
    same = _assay(str(files["same"]), "--against", str(files["base"]), "--tests", str(files["tests"]))
    assert same.returncode == 0, same.stdout + same.stderr
    out = tmp_path / "cmp.json"
    r = _assay(str(files["flipped"]), "--against", str(files["base"]), "--tests", str(files["tests"]),
               "--format", "json", "-o", str(out), "--permutations", "2000")
    assert r.returncode == 1, r.stderr
    doc = json.loads(out.read_text())
    shift = doc["shifts"][0]
    assert doc["kind"] == "comparison" and doc["findings"] == 1
    assert shift["finding"] and shift["sign_changed"] and shift["change"] < -1


def test_html_report_is_self_contained(files: dict[str, Path]) -> None:
    tests = api.load_tests(str(files["tests"]), ["toy"])
    page = render.to_html(api.audit(str(files["base"]), tests=tests))
    assert '<svg id="effects"' in page and 'class="effect model"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page and "https://" not in page


def test_errors_exit_2(files: dict[str, Path]) -> None:
    r = _assay(str(files["base"]), "--tests", "weat99")
    assert r.returncode == 2 and "unknown test" in r.stderr and r.stderr.count("\n") == 1
    r = _assay(str(files["tests"]))
    assert r.returncode == 2 and "assay: error" in r.stderr
