"""The catalog through `assay.api`: files in, catalog entries, relatives and a forest out."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.numpy import save_file

from assay import api
from assay.errors import UsageError
from tests.catalog import synth


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    base = synth.base_model(31)
    ft = synth.finetune(base, 32)
    out = {}
    for name, w in (("base", base), ("ft", ft), ("pruned", synth.prune(base))):
        out[name] = str(tmp_path / f"{name}.safetensors")
        save_file(w, out[name])
    return out


def test_add_find_list_graph_through_the_api(files: dict[str, str], tmp_path: Path) -> None:
    cat = str(tmp_path / "c.sqlite")
    added = api.catalog_add([files["base"], files["ft"]], catalog=cat)
    assert [a.created for a in added] == [True, True]
    assert [a.entry.label for a in added] == [files["base"], files["ft"]]       # absolute paths
    one = api.catalog_add([files["pruned"]], catalog=cat, label="team/pruned-v1")
    assert one[0].entry.label == "team/pruned-v1"
    assert {x.parent.label for x in one[0].links if x.directed} == {files["base"]}
    assert [e.label for e in api.catalog_list(catalog=cat)] == [files["base"], files["ft"], "team/pruned-v1"]

    r = api.catalog_find(files["pruned"], catalog=cat)       # same path as a label: sides kept apart
    assert r.matches[0].verdict.relation == "same" and r.matches[0].entry.label == "team/pruned-v1"
    r = api.catalog_find(files["ft"], catalog=cat)
    same = [m for m in r.matches if m.entry.label == files["ft"]]
    assert same and same[0].verdict.relation == "same" and same[0].role == "peer"

    forest = api.catalog_graph(catalog=cat)
    assert len(forest.nodes) == 3 and forest.roots == (files["base"],)


def test_a_label_names_one_model(files: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="exactly one model"):
        api.catalog_add([files["base"], files["ft"]], catalog=str(tmp_path / "c.sqlite"), label="x")
