"""Names and messages come from files: the text renderers never read them as rich markup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assay.cli.main import app

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def test_tensor_names_that_look_like_markup(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    names = ["[/etc/passwd]", "[bold]x[/bold]", "w[0]"]
    safetensors_numpy.save_file({n: np.ones(3, np.float32) for n in names}, str(a))
    safetensors_numpy.save_file({n + "[/]": np.zeros(3, np.float32) for n in names}, str(b))
    runner = CliRunner()
    for args in (["inspect", str(a), "--tensors"], ["id", str(a), "--tensors"],
                 ["diff", str(a), str(b), "--max-depth", "3"]):
        res = runner.invoke(app, args)
        assert res.exit_code in (0, 1), res.output
        assert "[/etc/passwd]" in res.output
    bad = tmp_path / "[bold]x.pkl"
    bad.write_bytes(b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93"
                    b"\x8c\x05[/x]!\x85R.")
    res = runner.invoke(app, ["scan", str(bad)])
    assert res.exit_code == 1, res.output
    assert "[bold]x.pkl" in res.output.replace("\n", "")
