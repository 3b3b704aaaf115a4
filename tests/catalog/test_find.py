"""Candidate search through the LSH index, relations found at add time, and the catalog's graph,
on both backends, with real fingerprints and the real pairwise test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assay.analyses.lineage.types import Fingerprint
from assay.catalog import Catalog
from assay.catalog.graph import forest
from tests.catalog import synth
from tests.catalog.pg import fresh_pg_database


@pytest.fixture(scope="module")
def families() -> dict[str, list[Fingerprint]]:
    """Three families (base, fine-tune, its fp16 cast, a pruned base) and two loners."""
    out: dict[str, list[Fingerprint]] = {}
    for f in range(3):
        base = synth.base_model(10 + f)
        ft = synth.finetune(base, 20 + f)
        out[f"fam{f}"] = [synth.fp(base, f"fam{f}/base"), synth.fp(ft, f"fam{f}/ft"),
                          synth.fp(synth.cast(ft), f"fam{f}/ft-fp16"),
                          synth.fp(synth.prune(base), f"fam{f}/pruned")]
    out["loners"] = [synth.fp(synth.base_model(90 + i), f"loner{i}") for i in range(2)]
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           families: dict[str, list[Fingerprint]]) -> Iterator[Catalog]:
    """One catalog per backend for the read-only tests of this module."""
    if request.param == "sqlite":
        location = str(tmp_path_factory.mktemp("find") / "catalog.sqlite")
    else:
        location = fresh_pg_database(request.getfixturevalue("pg_server"))
    cat = Catalog.open(location)
    for fps in families.values():
        for fp in fps:
            cat.add(fp)
    yield cat
    cat.close()


def test_find_returns_the_family_and_nothing_else(filled: Catalog,
                                                  families: dict[str, list[Fingerprint]]) -> None:
    base = synth.base_model(11)
    query = synth.fp(synth.finetune(base, 77), "new-finetune-of-fam1")   # not catalogued
    r = filled.find(query)
    assert r.catalogued == 14
    assert {m.entry.label for m in r.matches} == {fp.label for fp in families["fam1"]}
    assert r.candidates < r.catalogued            # the index narrowed the search
    assert all(m.verdict.relation != "unrelated" and 0 < m.verdict.confidence <= 1 for m in r.matches)
    confidences = [m.verdict.confidence for m in r.matches]
    assert confidences == sorted(confidences, reverse=True)


def test_find_of_a_catalogued_model_says_same_first(filled: Catalog,
                                                    families: dict[str, list[Fingerprint]]) -> None:
    r = filled.find(families["fam2"][2])
    assert r.matches[0].entry.label == "fam2/ft-fp16" and r.matches[0].verdict.relation == "same"
    assert r.matches[0].role == "peer"
    cast_of = [m for m in r.matches if m.entry.label == "fam2/ft"]
    assert cast_of and cast_of[0].verdict.relation == "cast" and cast_of[0].role == "parent"


def test_unrelated_query_finds_nothing(filled: Catalog) -> None:
    r = filled.find(synth.fp(synth.base_model(12345), "stranger"))
    assert r.matches == () and r.candidates == 0


def test_relations_are_stored_when_adding(filled: Catalog) -> None:
    links = filled.links()
    assert links and all(x.parent.label.split("/")[0] == x.child.label.split("/")[0] for x in links)
    by_pair = {(x.parent.label, x.child.label): x for x in links}
    cast = by_pair[("fam0/ft", "fam0/ft-fp16")]
    assert cast.relation == "cast" and cast.directed and cast.evidence["evidence"]
    assert by_pair[("fam0/base", "fam0/pruned")].relation == "pruned"


def test_graph_is_a_forest_of_the_families(filled: Catalog) -> None:
    f = forest(filled.entries(), filled.links())
    assert len(f.nodes) == 14
    assert set(f.roots) >= {"loner0", "loner1"}
    for e in f.edges:
        assert e.parent.split("/")[0] == e.child.split("/")[0]
    for fam in ("fam0", "fam1", "fam2"):           # every non-root member hangs off its family
        members = {n.label for n in f.nodes if n.label.startswith(fam)}
        assert sum(1 for r in f.roots if r in members) == 1
        assert f.parents("fam0/ft-fp16") == ("fam0/ft",)


def test_a_merge_is_stored_with_its_parents_and_drawn_so(location: str) -> None:
    base = synth.base_model(3)
    ft1, ft2 = synth.finetune(base, 4, 0.01), synth.finetune(base, 5, 0.01)
    avg = {k: (0.5 * ft1[k] + 0.5 * ft2[k]).astype("float32") for k in base}
    with Catalog.open(location) as cat:
        for w, label in ((base, "base"), (ft1, "ft1"), (ft2, "ft2")):
            cat.add(synth.fp(w, label))
        added = cat.add(synth.fp(avg, "soup"))
        merged = sorted(x.parent.label for x in added.links if x.relation == "merged")
        assert merged == ["ft1", "ft2"]
        assert all(x.directed and x.child.label == "soup" for x in added.links if x.relation == "merged")
        f = forest(cat.entries(), cat.links())
    assert sorted(f.parents("soup")) == ["ft1", "ft2"]
    assert all(e.relation == "merged" for e in f.edges if e.child == "soup")
