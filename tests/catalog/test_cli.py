"""`assay catalog` end to end, as whole processes: exit codes, JSON, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.numpy import save_file

from tests.catalog import synth
from tests.catalog.pg import fresh_pg_database


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli.main", "catalog", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of models: a base, its fine-tune, the fine-tune in fp16, and a stranger."""
    root = tmp_path_factory.mktemp("models")
    base = synth.base_model(7)
    ft = synth.finetune(base, 8)
    for name, w in (("base", base), ("ft", ft), ("ft-fp16", synth.cast(ft)),
                    ("stranger", synth.base_model(99))):
        save_file(w, str(root / f"{name}.safetensors"))
    save_file(synth.finetune(base, 9), str(root.parent / f"{root.name}-query.safetensors"))
    return root


def files(root: Path) -> list[str]:
    return [str(root / f"{n}.safetensors") for n in ("base", "ft", "ft-fp16", "stranger")]


def test_add_find_list_graph(models: Path, tmp_path: Path) -> None:
    cat = str(tmp_path / "team.sqlite")
    r = run("add", *files(models), "--catalog", cat, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "assay.catalog/1" and doc["kind"] == "add"
    assert [m["created"] for m in doc["models"]] == [True] * 4
    assert "added_at" not in doc["models"][0]                  # no timestamps unless asked
    cast = next(m for m in doc["models"] if m["label"].endswith("ft-fp16.safetensors"))
    assert [(x["relation"], Path(x["parent"]).name) for x in cast["relations"] if x["directed"]] == \
        [("cast", "ft.safetensors")]

    again = run("add", str(models / "base.safetensors"), "--catalog", cat)    # idempotent
    assert again.returncode == 0 and "already catalogued" in again.stdout

    r = run("find", str(models.parent / f"{models.name}-query.safetensors"), "--catalog", cat, "-f", "json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["kind"] == "find" and doc["catalogued"] == 4
    found = {Path(m["entry"]["label"]).stem for m in doc["matches"]}
    assert found == {"base", "ft", "ft-fp16"}

    r = run("find", str(models / "stranger.safetensors"), "--catalog", cat)
    assert r.returncode == 0 and "same" in r.stdout

    r = run("list", "--catalog", cat, "-f", "json")
    assert r.returncode == 0
    assert sorted(Path(m["label"]).stem for m in json.loads(r.stdout)["models"]) == \
        ["base", "ft", "ft-fp16", "stranger"]

    r = run("graph", "--catalog", cat, "-f", "json")
    assert r.returncode == 0
    g = json.loads(r.stdout)
    assert g["schema"] == "assay.lineage/1" and len(g["nodes"]) == 4 and g["edges"]
    dot = run("graph", "--catalog", cat, "-f", "dot")
    assert dot.returncode == 0 and dot.stdout.startswith("digraph")


def test_remove_by_file_identity_or_prefix(models: Path, tmp_path: Path) -> None:
    cat = str(tmp_path / "r.sqlite")
    assert run("add", *files(models), "--catalog", cat).returncode == 0
    listed = {Path(m["label"]).stem: m["content_id"]
              for m in json.loads(run("list", "--catalog", cat, "-f", "json").stdout)["models"]}
    r = run("remove", str(models / "ft.safetensors"), listed["stranger"], "--catalog", cat, "-f", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "remove" and doc["not_catalogued"] == []
    assert sorted(Path(m["label"]).stem for m in doc["removed"]) == ["ft", "stranger"]
    assert next(m for m in doc["removed"] if m["label"].endswith("ft.safetensors"))["relations"] >= 2
    prefix = listed["ft-fp16"].split(":")[1][:16]          # as `list` shows it
    r = run("remove", prefix, str(models / "ft.safetensors"), "--catalog", cat)
    assert r.returncode == 1 and "removed from" in r.stdout and "not in" in r.stdout
    left = json.loads(run("list", "--catalog", cat, "-f", "json").stdout)["models"]
    assert [Path(m["label"]).stem for m in left] == ["base"]
    r = run("remove", "no/such/model.safetensors", "--catalog", cat)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no/such/model.safetensors" in r.stderr


def test_an_unreadable_model_is_reported_and_the_others_added(models: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad}")
    cat = str(tmp_path / "c.sqlite")
    r = run("add", str(broken), str(models / "base.safetensors"), "--catalog", cat, "-f", "json")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and str(broken) in r.stderr
    assert [Path(m["label"]).stem for m in json.loads(r.stdout)["models"]] == ["base"]


def test_find_without_relatives_exits_1(models: Path, tmp_path: Path) -> None:
    env = {"ASSAY_CATALOG": str(tmp_path / "env.sqlite")}
    assert run("add", str(models / "base.safetensors"), env=env).returncode == 0
    r = run("find", str(models / "stranger.safetensors"), env=env)
    assert r.returncode == 1 and "no related model" in r.stdout


@pytest.mark.parametrize("catalog, says", [
    ("mysql://u@h/db", "unsupported database"),
    ("postgresql://u@/db?host=/nonexistent/dir", "cannot open"),
])
def test_bad_catalog_is_exit_2_with_one_line(models: Path, catalog: str, says: str) -> None:
    r = run("list", "--catalog", catalog)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in r.stderr


def test_unreadable_catalog_file_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.sqlite"
    bad.write_bytes(b"\x00garbage" * 512)
    r = run("list", "--catalog", str(bad))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and str(bad) in r.stderr
    r = run("list", "--catalog", str(tmp_path))          # a folder
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_postgresql_by_url(models: Path, pg_server: object) -> None:
    location = fresh_pg_database(pg_server)
    r = run("add", str(models / "ft.safetensors"), str(models / "base.safetensors"), "--catalog", location)
    assert r.returncode == 0, r.stderr
    r = run("find", str(models / "ft-fp16.safetensors"), "--catalog", location, "-f", "json")
    assert r.returncode == 0
    assert {Path(m["entry"]["label"]).stem for m in json.loads(r.stdout)["matches"]} == {"ft", "base"}
