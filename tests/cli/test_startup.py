"""`assay scan` starts fast: in a fresh process, a JSON scan imports only what the scan needs.

Each module named here was imported by every command before and is now imported only by the
commands that use it (or, for rich, only for text output); a module-level import added back
to `assay`, `assay.api` or `assay.cli.main` fails this test. The readers and rules are
imported by the nursery the scan's workers fork from (started before Typer is imported), never
by the process that parses the arguments and writes the report."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

# never needed by `assay scan --format json`
NOT_FOR_A_JSON_SCAN = (
    "assay.analyses.summary",            # `inspect` only (was imported by `assay` itself)
    "assay.cli.lineage", "assay.cli.catalog", "assay.cli.audit", "assay.cli.recipes",
    "assay.cli.adapt",                   # other commands' modules (were registered at import)
    "assay.render.inspect",
    "rich",                              # tables and progress bars: text output on a terminal
    "numpy", "h5py",                     # plain pickles need no array library
    "importlib.resources",               # the default policy is read as a plain file
)

RUN = """
import json, sys
sys.argv = ["assay", "scan", "--format", "json", *sys.argv[1:]]
from assay.cli.entry import run
code = run(True)
sys.stdout.flush()
sys.stderr.write("MODULES " + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""


def _scan(folder: Path) -> tuple[dict, int, set[str]]:
    r = subprocess.run([sys.executable, "-c", RUN, str(folder)], capture_output=True, text=True,
                       timeout=120)
    tail = [line for line in r.stderr.splitlines() if line.startswith("MODULES ")]
    assert tail, r.stderr
    info = json.loads(tail[-1].removeprefix("MODULES "))
    return json.loads(r.stdout), info["code"], set(info["modules"])


def test_json_scan_of_small_pickles_imports_only_what_it_needs(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"p{i}.pkl").write_bytes(pickle.dumps({"a": i, "b": [1, 2, 3], "c": "x" * i}))
    report, code, modules = _scan(tmp_path)
    assert code == 0
    assert report["schema"] == "assay.scan/1" and report["totals"]["files"] == 3
    assert [f["status"] for f in report["files"]] == ["clean"] * 3
    # the workers read the pickles; this process imported no reader, rule or policy
    assert not {"assay.formats.pickle.machine", "assay.analyses.scan.rules",
                "assay.analyses.scan.policy", "tomllib", "jinja2"} & modules
    loaded = sorted(m for m in NOT_FOR_A_JSON_SCAN if m in modules)
    assert not loaded, f"imported by a JSON scan that never uses them: {loaded}"


def test_json_scan_of_an_empty_folder_starts_no_workers(tmp_path: Path) -> None:
    report, code, modules = _scan(tmp_path)
    assert code == 0 and report["totals"]["files"] == 0
    loaded = sorted(m for m in (*NOT_FOR_A_JSON_SCAN, "multiprocessing", "assay.formats") if m in modules)
    assert not loaded, f"imported by a scan with nothing to read: {loaded}"


def test_a_scan_ends_with_its_report_written_and_its_exit_code(tmp_path: Path) -> None:
    """The program leaves a scan without the interpreter's teardown: what it printed must
    still all arrive, with the scan's exit code."""
    for i in range(40):
        (tmp_path / f"p{i:02}.pkl").write_bytes(pickle.dumps({"weights": list(range(i))}))
    cmd = [sys.executable, "-m", "assay.cli.entry", "scan", "--format", "json", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [f["status"] for f in json.loads(r.stdout)["files"]] == ["clean"] * 40
    (tmp_path / "evil.pkl").write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["totals"]["files"] == 41
    r = subprocess.run([*cmd[:4], "--no-such-option"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no-such-option" in r.stderr
