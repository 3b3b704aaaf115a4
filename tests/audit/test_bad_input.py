"""Bad arguments to `assay audit` are one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("csv_bytes", [None, b"a,b\n\xff\xfe,1\n"])
def test_unreadable_fairness_csv(tmp_path: Path, csv_bytes: bytes | None) -> None:
    data = tmp_path / "data.csv"
    if csv_bytes is not None:
        data.write_bytes(csv_bytes)
    r = subprocess.run([sys.executable, "-m", "assay.cli.main", "audit", str(tmp_path / "m.onnx"),
                        "--data", str(data)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert str(data) in r.stderr and "cannot read CSV" in r.stderr
