"""`relate` and `relate_merge` on the lineage set: relation and direction for every pair."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from assay.analyses.lineage.relation import relate, relate_merge
from assay.analyses.lineage.types import RELATIONS, Verdict
from tests.factories.lineage import MINILM_PAIRS, TINY_PAIRS
from tests.lineage.lineage_set import LineageSet, lineage_set

__all__ = ["lineage_set"]

PAIRS = [n for n in (*TINY_PAIRS, *MINILM_PAIRS) if "average" not in n and "arithmetic" not in n]
MERGES = [n for n in (*TINY_PAIRS, *MINILM_PAIRS) if "average" in n or "arithmetic" in n]


def _side(v_parent: str | None, a: str, b: str) -> str | None:
    return None if v_parent is None else ("a" if v_parent == a else "b" if v_parent == b else "?")


@pytest.mark.parametrize("name", PAIRS)
def test_relation_and_direction(lineage_set: LineageSet, name: str) -> None:
    p = lineage_set.pairs[name]
    v = relate(lineage_set.fp(p.a), lineage_set.fp(p.b))
    assert v.relation in RELATIONS
    assert (v.relation, _side(v.parent, p.a, p.b)) == (p.relation, p.parent), v.summary
    assert 0 < v.confidence <= 1
    if v.parent is not None:
        assert v.child == (p.b if v.parent == p.a else p.a)
    assert v.evidence or v.relation in ("converted",)


def test_every_relation_is_covered(lineage_set: LineageSet) -> None:
    assert {p.relation for p in lineage_set.pairs.values()} == set(RELATIONS)
    assert set(lineage_set.pairs) == set(TINY_PAIRS) | set(MINILM_PAIRS)


def test_relation_is_symmetric_in_kind(lineage_set: LineageSet) -> None:
    for name in ("minilm-fp16", "minilm-q8_0", "minilm-pruned30", "tiny-lora4", "tiny-scratch-seed1"):
        p = lineage_set.pairs[name]
        fwd = relate(lineage_set.fp(p.a), lineage_set.fp(p.b))
        back = relate(lineage_set.fp(p.b), lineage_set.fp(p.a))
        assert (fwd.relation, fwd.parent, fwd.child) == (back.relation, back.parent, back.child)


def _verdict(s: LineageSet, name: str) -> Verdict:
    p = s.pairs[name]
    return relate(s.fp(p.a), s.fp(p.b))


def test_details_name_what_changed(lineage_set: LineageSet) -> None:
    s = lineage_set
    pruned = _verdict(s, "minilm-pruned30")
    assert pruned.details["pruned_fraction"] == pytest.approx(0.3, abs=0.01)
    assert pruned.details["magnitude"] is True
    assert _verdict(s, "minilm-lora8").details["rank"] == 8
    assert _verdict(s, "tiny-lora4").details["rank"] == 4
    q8 = _verdict(s, "minilm-q8_0")
    assert "gguf.q8_0" in q8.details["dtypes"] and q8.details["quantization_error"] < 0.02
    q4 = _verdict(s, "minilm-q4_0-swapped")
    assert q4.details["quantization_error"] > q8.details["quantization_error"]
    ext = _verdict(s, "minilm-vocab+64")
    assert ext.details["rows"] == {"embeddings.word_embeddings.weight": 64}
    trunc = _verdict(s, "minilm-drop-layer5")
    assert trunc.details["removed_layers"] == ["encoder.layer.5"]
    part = _verdict(s, "minilm-partial")
    assert part.details["replaced_layers"] == ["encoder.layer.3", "encoder.layer.4", "encoder.layer.5"]
    ft = _verdict(s, "tiny-finetune")
    assert ft.details["direction"] == "unknown" and ft.details["changed_layers"]
    head = _verdict(s, "minilm-finetune-head")
    assert head.details["added"] == ["classifier.bias", "classifier.weight"]
    assert head.confidence < ft.confidence
    conv = _verdict(s, "minilm-gguf-f32")
    assert conv.details["renamed"] > 90
    cast = _verdict(s, "minilm-fp16")
    assert cast.details["dtypes"] == ["float32 -> float16"]


@pytest.mark.parametrize("name", MERGES)
def test_merge_coefficients(lineage_set: LineageSet, name: str) -> None:
    p = lineage_set.pairs[name]
    v = relate_merge(lineage_set.fp(p.a), [lineage_set.fp(x) for x in p.parents])
    assert v is not None and v.relation == "merged"
    assert v.child == p.a and v.parent in p.parents
    got = [v.details["coefficients"][x] for x in p.parents]
    assert got == pytest.approx(list(p.coefficients), abs=0.02)
    assert v.details["method"] == ("weight-average" if "average" in name else "task-arithmetic")
    # pairwise, a merge still reads as a fine-tune of either parent
    assert relate(lineage_set.fp(p.a), lineage_set.fp(p.parents[-1])).relation == "finetuned"


def test_no_merge_without_it(lineage_set: LineageSet) -> None:
    s = lineage_set
    ft, scratch = s.pairs["tiny-finetune"], s.pairs["tiny-scratch-seed1"]
    assert relate_merge(s.fp(ft.b), [s.fp(ft.a), s.fp(scratch.b)]) is None
    assert relate_merge(s.fp(ft.b), [s.fp(ft.a)]) is None
    same = s.pairs["minilm-copy"]
    avg = s.pairs["minilm-average"]
    assert relate_merge(s.fp(same.b), [s.fp(same.a), s.fp(avg.a)]) is None


def _flip(src: str, dst: Path, from_end: int) -> str:
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as fh:
        fh.seek(-from_end, 2)
        byte = fh.read(1)
        fh.seek(-from_end, 2)
        fh.write(bytes([byte[0] ^ 0x01]))
    return str(dst)


def test_bit_flip_is_not_same(lineage_set: LineageSet, tmp_path: Path) -> None:
    s = lineage_set
    for name in ("tiny-finetune", "minilm-copy"):
        base = s.pairs[name].a
        flipped = _flip(base, tmp_path / (name + ".safetensors"), 3)
        v = relate(s.fp(base), s.fp(flipped))
        assert v.relation != "same" and v.relation != "converted", v.summary
        assert v.relation == "finetuned" and v.confidence <= 0.85


def _folder(path: Path, weights: str, config: dict | None = None, card: str | None = None) -> str:
    path.mkdir()
    shutil.copyfile(weights, path / "model.safetensors")
    if config is not None:
        (path / "config.json").write_text(json.dumps(config))
    if card is not None:
        (path / "README.md").write_text(f"---\n{card}\n---\n# model\n")
    return str(path)


def test_declared_metadata_and_contradiction(lineage_set: LineageSet, tmp_path: Path) -> None:
    from assay.api import lineage_pair
    s = lineage_set
    base = s.pairs["tiny-finetune"].a
    base_dir = _folder(tmp_path / "base", base, {"_name_or_path": "org/tiny-base", "model_type": "mlp"})
    liar = _folder(tmp_path / "liar", s.pairs["tiny-scratch-seed1"].b,
                   card="base_model: org/tiny-base\nbase_model_relation: finetune")
    v = lineage_pair(base_dir, liar)
    assert v.relation == "unrelated"
    assert v.declared["b"]["base_model"] == "org/tiny-base"
    assert v.declared["a"]["name_or_path"] == "org/tiny-base"
    assert v.contradiction and "unrelated" in v.contradiction
    ok = _folder(tmp_path / "ok", s.pairs["tiny-lora4"].b,
                 card="base_model: org/tiny-base\nbase_model_relation: adapter")
    v2 = lineage_pair(base_dir, ok)
    assert v2.relation == "adapter" and v2.contradiction is None


def test_api_fingerprint_path(lineage_set: LineageSet) -> None:
    from assay.api import fingerprint_path, lineage_pair
    p = lineage_set.pairs["tiny-bf16"]
    fp = fingerprint_path(p.a)
    assert fp.label == p.a and fp.content_id == lineage_set.fp(p.a).content_id
    assert fingerprint_path(p.a, "base").label == "base"
    v = lineage_pair(p.a, p.b)
    assert (v.relation, v.parent, v.child) == ("cast", p.a, p.b)


def test_combined_changes(lineage_set: LineageSet, tmp_path: Path) -> None:
    """A quantized fine-tune is a fine-tune; rows appended and cast is an extension (the cast
    noted); a high-rank update is a fine-tune, not an adapter."""
    from safetensors.numpy import load_file

    from tests.factories.lineage import _lora, write_gguf, write_torch
    s = lineage_set
    p = s.pairs["tiny-lora4"]
    base = dict(load_file(p.a))
    tuned = dict(load_file(s.pairs["tiny-average"].parents[0]))
    q = write_gguf(tuned, tmp_path / "q.gguf", "Q8_0")
    assert relate(s.fp(p.a), s.fp(str(q))).relation == "finetuned"
    grown = dict(base)
    grown["0.weight"] = np.concatenate([base["0.weight"], np.zeros((16, 64), np.float32) + 0.01])
    grown["0.bias"] = np.concatenate([base["0.bias"], np.zeros(16, np.float32) + 0.01])
    grown["2.weight"] = base["2.weight"]
    e = write_torch(grown, tmp_path / "e.pt", "float16")
    v = relate(s.fp(p.a), s.fp(str(e)))
    assert (v.relation, v.parent, v.details["also"]) == ("extended", p.a, ["cast"])
    high = write_torch(_lora(base, 5, 24, ("2.weight",)), tmp_path / "h.pt")
    low = write_torch(_lora(base, 5, 6, ("2.weight",)), tmp_path / "l.pt")
    assert relate(s.fp(p.a), s.fp(str(high))).relation == "finetuned"
    v = relate(s.fp(p.a), s.fp(str(low)))
    assert v.relation == "adapter" and v.details["rank"] == 6


def _permute_hidden(t: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """The tiny MLP with its first hidden units permuted: the same function, other layout."""
    order = np.random.default_rng(seed).permutation(t["0.weight"].shape[0])
    out = dict(t)
    out["0.weight"] = np.ascontiguousarray(t["0.weight"][order])
    out["0.bias"] = np.ascontiguousarray(t["0.bias"][order])
    out["2.weight"] = np.ascontiguousarray(t["2.weight"][:, order])
    return out


def test_permuted_layout(lineage_set: LineageSet, tmp_path: Path) -> None:
    """Permuted units (rows of one matrix, columns of the next) are a layout change, also when
    renamed and quantized; unrelated random initialisations stay unrelated when quantized."""
    from safetensors.numpy import load_file

    from tests.factories.lineage import write_gguf, write_safetensors
    s = lineage_set
    p = s.pairs["tiny-lora4"]
    base = dict(load_file(p.a))
    perm = _permute_hidden(base, 3)
    v = relate(s.fp(p.a), s.fp(str(write_safetensors(perm, tmp_path / "p.safetensors"))))
    assert v.relation == "converted"
    assert v.details["permuted"] == {"0.weight": "rows", "0.bias": "values", "2.weight": "columns"}
    renamed = {f"blk.{k}": x for k, x in perm.items()}
    v = relate(s.fp(p.a), s.fp(str(write_gguf(renamed, tmp_path / "p.gguf", "Q8_0"))))
    assert (v.relation, v.parent) == ("quantized", p.a) and len(v.details["permuted"]) == 3
    rnd = s.pairs["tiny-random-init"].b
    fresh = {k: np.asarray(x, np.float32) for k, x in np.load(rnd).items()}
    v = relate(s.fp(p.a), s.fp(str(write_gguf(fresh, tmp_path / "r.gguf", "Q8_0"))))
    assert v.relation == "unrelated"


def test_verdicts_are_plain_json(lineage_set: LineageSet) -> None:
    import dataclasses
    s = lineage_set
    for p in s.pairs.values():
        v = relate(s.fp(p.a), s.fp(p.b))
        doc = json.loads(json.dumps(dataclasses.asdict(v), allow_nan=False))
        assert doc["relation"] == v.relation and len(doc["evidence"]) == len(v.evidence) <= 48


def test_added_head_extends_and_dropped_layer_truncates(lineage_set: LineageSet, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from tests.factories.lineage import write_safetensors
    s = lineage_set
    a = s.pairs["tiny-lora4"].a
    base = dict(load_file(a))
    head = dict(base, **{"head.weight": np.full((3, 8), 0.1, np.float32) + np.arange(24).reshape(3, 8),
                         "head.bias": np.arange(3, dtype=np.float32)})
    v = relate(s.fp(a), s.fp(str(write_safetensors(head, tmp_path / "h.safetensors"))))
    assert (v.relation, v.parent, v.details["added"]) == ("extended", a, ["head.bias", "head.weight"])
    v = relate(s.fp(str(tmp_path / "h.safetensors")), s.fp(a))       # either order: same verdict
    assert (v.relation, v.parent, v.child) == ("extended", a, str(tmp_path / "h.safetensors"))
    short = {k: x for k, x in base.items() if not k.startswith("4.")}
    v = relate(s.fp(a), s.fp(str(write_safetensors(short, tmp_path / "s.safetensors"))))
    assert (v.relation, v.parent, v.details["removed_layers"]) == ("truncated", a, ["4"])


def test_coarser_quantization_derives_from_finer(lineage_set: LineageSet) -> None:
    s = lineage_set
    q8 = s.pairs["minilm-q8_0"].b
    q4 = s.pairs["minilm-q4_0-swapped"].a
    v = relate(s.fp(q4), s.fp(q8))
    assert (v.relation, v.parent, v.child) == ("quantized", q8, q4)
