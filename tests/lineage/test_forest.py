"""`infer_forest` with hand-built fingerprints and relate functions (no weights, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from assay.analyses.lineage.forest import ALL_PAIRS_UP_TO, candidate_pairs, infer_forest
from assay.analyses.lineage.types import Fingerprint, Verdict
from tests.lineage.forest_cases import Table, fp, no_merge, verdict


def edges_of(f: object) -> set[tuple[str, str, str]]:
    return {(e.parent, e.child, e.relation) for e in f.edges}  # type: ignore[attr-defined]


def test_quantized_finetune_hangs_from_its_finetune() -> None:
    rel = Table({("base", "ft"): ("finetuned", 0.85, 0.05), ("ft", "q"): ("quantized", 0.95),
                 ("base", "q"): ("finetuned", 0.85, 0.051)})
    f = infer_forest([fp("q"), fp("base"), fp("ft")], rel, relate_merge=no_merge)
    assert edges_of(f) == {("base", "ft", "finetuned"), ("ft", "q", "quantized")}
    assert f.roots == ("base",)       # the chain is ambiguous in the weights: first named of base/ft
    assert f.compared == 3 and f.related == 3
    assert [{e.parent, e.child} for e in f.considered] == [{"base", "q"}]
    assert f.edge("ft", "q").directed and not f.edge("base", "ft").directed  # type: ignore[union-attr]
    assert f.parents("q") == ("ft",) and f.children("base") == ("ft",)


def test_a_base_is_the_centre_of_its_finetunes() -> None:
    rel = Table({("base", "ft1"): ("finetuned", 0.85, 0.05), ("base", "ft2"): ("finetuned", 0.85, 0.05),
                 ("base", "ft3"): ("finetuned", 0.85, 0.05), ("ft1", "ft2"): ("finetuned", 0.85, 0.07),
                 ("ft1", "ft3"): ("finetuned", 0.85, 0.07), ("ft2", "ft3"): ("finetuned", 0.85, 0.07),
                 ("ft1", "ft1-half"): ("cast", 0.99)})
    models = [fp("ft1"), fp("ft1-half"), fp("ft2"), fp("base"), fp("ft3")]
    f = infer_forest(models, rel, relate_merge=no_merge)
    assert f.roots == ("base",)
    assert edges_of(f) == {("base", "ft1", "finetuned"), ("base", "ft2", "finetuned"),
                           ("base", "ft3", "finetuned"), ("ft1", "ft1-half", "cast")}


def test_each_pair_is_judged_once() -> None:
    rel = Table({})
    infer_forest([fp(x) for x in "abcde"], rel, relate_merge=False)
    assert len(rel.calls) == 10 and len({frozenset(c) for c in rel.calls}) == 10


def test_direction_comes_from_the_verdict_not_the_input_order() -> None:
    rel = Table({("orig", "pruned"): ("pruned", 0.8)})
    f = infer_forest([fp("pruned"), fp("orig")], rel, relate_merge=False)
    assert f.roots == ("orig",)
    assert f.edges[0].parent == "orig" and f.edges[0].child == "pruned" and f.edges[0].directed


def test_directions_of_a_chain_of_copies_are_kept() -> None:
    rel = Table({("a", "b"): ("cast", 0.9), ("b", "c"): ("quantized", 0.8), ("a", "c"): ("quantized", 0.7)})
    f = infer_forest([fp("c"), fp("b"), fp("a")], rel, relate_merge=False)
    assert edges_of(f) == {("a", "b", "cast"), ("b", "c", "quantized")}
    assert f.roots == ("a",)


def test_a_model_has_one_origin() -> None:
    # a small update hides in the error of a coarse quantization: the pair says "quantized"
    rel = Table({("base", "q4"): ("quantized", 0.9), ("lora", "q4"): ("quantized", 0.9),
                 ("base", "lora"): ("adapter", 0.85)})
    f = infer_forest([fp("base"), fp("q4"), fp("lora")], rel, relate_merge=False)
    assert edges_of(f) == {("base", "q4", "quantized"), ("base", "lora", "adapter")}


def test_no_cycles_even_when_pair_directions_disagree() -> None:
    rel = Table({("a", "b"): ("pruned", 0.9), ("b", "c"): ("pruned", 0.8), ("c", "a"): ("pruned", 0.7)})
    f = infer_forest([fp("a"), fp("b"), fp("c")], rel, relate_merge=False)
    assert edges_of(f) == {("a", "b", "pruned"), ("b", "c", "pruned")}
    assert f.roots == ("a",)


def test_same_weights_are_undirected_and_oriented_by_input_order() -> None:
    rel = Table({("x", "y"): ("same", 1.0)})
    f = infer_forest([fp("y"), fp("x")], rel, relate_merge=False)
    e = f.edges[0]
    assert (e.parent, e.child, e.directed, e.relation) == ("y", "x", False, "same")
    assert f.roots == ("y",)


def test_unrelated_models_are_separate_roots_and_weak_edges_can_be_dropped() -> None:
    rel = Table({("a", "b"): ("finetuned", 0.4)})
    models = [fp("a"), fp("b"), fp("c")]
    assert infer_forest(models, rel, relate_merge=False).roots == ("a", "c")
    f = infer_forest(models, rel, relate_merge=False, min_confidence=0.5)
    assert f.roots == ("a", "b", "c") and f.edges == () and f.related == 0


def test_copies_link_before_changes() -> None:
    rel = Table({("p1", "c"): ("finetuned", 0.9), ("p2", "c"): ("cast", 0.6)})
    f = infer_forest([fp("p1"), fp("p2"), fp("c")], rel, relate_merge=False)
    assert f.parents("c") == ("p2",) and f.roots == ("p1", "p2")   # a copy hangs only from its origin


def test_a_merge_gets_several_parents_and_keeps_its_copies() -> None:
    rel = Table({("base", "a"): ("finetuned", 0.85, 0.05), ("base", "b"): ("finetuned", 0.85, 0.05),
                 ("a", "m"): ("finetuned", 0.85, 0.035), ("b", "m"): ("finetuned", 0.85, 0.035),
                 ("base", "m"): ("finetuned", 0.85, 0.035), ("a", "b"): ("finetuned", 0.85, 0.07),
                 ("m", "mq"): ("quantized", 0.9), ("a", "mq"): ("finetuned", 0.85, 0.036)})
    asked: list[tuple[str, tuple[str, ...]]] = []

    def merge(child: Fingerprint, parents: Sequence[Fingerprint]) -> Verdict | None:
        asked.append((child.label, tuple(p.label for p in parents)))
        if child.label != "m":
            return None
        v = verdict("merged", "a", "m", 0.9)
        return Verdict(v.relation, v.parent, v.child, v.confidence, "m = 0.5 a + 0.5 b", v.evidence,
                       {"parents": ["base", "a", "b"], "coefficients": {"base": 0.0, "a": 0.5, "b": 0.5}})

    f = infer_forest([fp("base"), fp("a"), fp("b"), fp("m"), fp("mq")], rel, relate_merge=merge)
    assert ("m", ("base", "a", "b")) in asked
    assert all(child != "mq" for child, _ in asked)       # a copy is never tested as a merge
    assert f.parents("m") == ("a", "b")
    assert all(e.relation == "merged" and e.confidence == 0.9 for e in f.edges if e.child == "m")
    assert f.parents("a") == ("base",) and f.parents("b") == ("base",) and f.parents("mq") == ("m",)
    assert f.roots == ("base",) and len(f.edges) == 5


def test_merge_test_refusing_leaves_one_parent() -> None:
    rel = Table({("a", "m"): ("finetuned", 0.85, 0.2), ("b", "m"): ("finetuned", 0.85, 0.1)})
    f = infer_forest([fp("a"), fp("b"), fp("m")], rel, relate_merge=no_merge)
    assert f.roots == ("m",) and set(f.children("m")) == {"a", "b"}


def test_labels_must_be_unique() -> None:
    with pytest.raises(ValueError, match="repeated: a"):
        infer_forest([fp("a"), fp("a")], Table({}), relate_merge=False)


def test_large_sets_compare_only_pairs_sharing_a_key() -> None:
    n = ALL_PAIRS_UP_TO + 6
    models = [fp(f"m{i:03d}") for i in range(n)]
    pairs = candidate_pairs(models, keys=lambda f: {int(f.label[1:]) % 2})
    assert all((i - j) % 2 == 0 for i, j in pairs)
    assert len(pairs) == 2 * (n // 2) * (n // 2 - 1) // 2
    assert len(candidate_pairs(models[:5], keys=lambda f: {f.label})) == 10   # small: all pairs


def test_nodes_carry_model_facts() -> None:
    f = infer_forest([fp("a", 123, "gguf", base_model="org/x")], Table({}), relate_merge=False)
    n = f.nodes[0]
    assert (n.label, n.parameters, n.format, n.declared) == ("a", 123, "gguf", {"base_model": "org/x"})
    assert f.roots == ("a",) and f.compared == 0


# -- with the real fingerprints and relation tests -----------------------------------------------
def test_tiny_trained_family(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from assay import api
    from tests.factories.lineage import build_lineage

    pairs = {p.name: p for p in build_lineage(tmp_path, minilm=False)}
    base = pairs["tiny-finetune"].a
    ft1_pt, ft1_st = pairs["tiny-finetune"].b, pairs["tiny-average"].parents[0]
    ft2 = pairs["tiny-average"].parents[1]
    f = api.lineage_forest([str(tmp_path)])
    assert len(f.nodes) == 10
    assert set(f.roots) == {base, pairs["tiny-scratch-seed1"].b, pairs["tiny-random-init"].b}
    assert f.parents(pairs["tiny-bf16"].b) == (base,)
    assert f.edge(base, pairs["tiny-bf16"].b).relation == "cast"  # type: ignore[union-attr]
    assert f.parents(ft1_st) == (ft1_pt,)                           # the same values, named later
    assert {pairs["tiny-lora4"].b, base} in [{e.parent, e.child} for e in f.edges]
    assert set(f.parents(pairs["tiny-average"].a)) == {ft1_pt, ft2}
    assert set(f.parents(pairs["tiny-task-arithmetic"].a)) == {base, ft1_pt, ft2}
    assert {e.relation for e in f.edges if e.child == pairs["tiny-average"].a} == {"merged"}
