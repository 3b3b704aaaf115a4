"""Lineage renderers on hand-built verdicts and forests: text, JSON, DOT, HTML."""

from __future__ import annotations

import json
import re

from rich.console import Console

from assay.analyses.lineage.forest import Forest, infer_forest
from assay.render import lineage as render
from tests.lineage.forest_cases import Table, fp, verdict


def text_of(renderable: object) -> str:
    c = Console(width=200, record=True, color_system=None)
    c.print(renderable)
    return c.export_text()


def forest() -> Forest:
    rel = Table({("base", "ft"): ("finetuned", 0.9), ("ft", "q"): ("quantized", 0.95),
                 ("base", "copy"): ("same", 1.0)})
    models = [fp("base", 22_700_000, base_model="nothing"), fp("ft"), fp("q", fmt="gguf"), fp("copy"),
              fp("other")]
    return infer_forest(models, rel, relate_merge=False)


def test_pair_json_is_versioned_and_loads_back() -> None:
    v = verdict("finetuned", "a", "b", 0.91234567, contradiction="b declares base z")
    doc = render.pair_to_json("a", "b", v)
    assert doc["schema"] == "assay.lineage/1" and doc["kind"] == "pair"
    assert doc["relation"] == "finetuned" and doc["confidence"] == 0.912346
    assert doc["evidence"][1] == {"tensor": "layer.0.weight", "statistic": "rel_l2", "value": 0.0123}
    back = render.from_json(json.loads(json.dumps(doc)))
    assert back.relation == v.relation and back.evidence == v.evidence
    assert back.contradiction == "b declares base z"


def test_pair_text_shows_relation_direction_evidence_and_contradiction() -> None:
    v = verdict("pruned", "a", "b", 0.8, contradiction="b declares it is a finetune of c")
    out = text_of(render.pair_to_text("a", "b", v))
    assert "a -> b: pruned (confidence 0.80)" in out
    assert "b derives from a" in out
    assert "rel_l2" in out and "layer.0.weight" in out and "(model)" in out
    assert "declared metadata" in out and "base_model" in out and "model_type" in out
    assert "contradicts the weights: b declares it is a finetune of c" in out
    out = text_of(render.pair_to_text("a", "b", verdict("unrelated", None, None, 0.99)))
    assert "unrelated" in out and "no common origin" in out


def test_forest_json_loads_back() -> None:
    f = forest()
    doc = render.forest_to_json(f)
    assert doc["schema"] == "assay.lineage/1" and doc["kind"] == "forest"
    assert [n["label"] for n in doc["nodes"]] == ["base", "ft", "q", "copy", "other"]
    assert doc["roots"] == ["base", "other"]
    assert next(n for n in doc["nodes"] if n["label"] == "q")["parents"] == ["ft"]
    assert render.from_json(json.loads(json.dumps(doc))) == f


def test_json_values_are_plain() -> None:
    import numpy as np
    v = verdict("adapter", "a", "b", 0.7)
    v = type(v)(v.relation, v.parent, v.child, v.confidence, v.summary, v.evidence,
                {"rank": np.int64(8), "layers": (1, 2), "x": float("nan"), "raw": b"\x01"})
    doc = render.pair_to_json("a", "b", v)
    assert doc["details"] == {"layers": [1, 2], "rank": 8, "raw": "01", "x": "nan"}
    json.dumps(doc, allow_nan=False)


def test_forest_tree_text() -> None:
    out = text_of(render.forest_to_tree(forest()))
    assert "lineage of 5 models: 3 edges, 2 roots" in out
    assert "finetuned 0.90 (direction from the forest): ft" in out and "quantized 0.95: q" in out
    assert "same 1.00: copy" in out
    assert "22.7M parameters" in out and "declares base nothing" in out
    assert out.index("base") < out.index("ft") < out.index("q")


def test_merged_child_is_shown_once() -> None:
    from assay.analyses.lineage.forest import Edge, Node
    v = verdict("merged", "a", "m", 0.8)
    f = Forest(tuple(Node(x, "safetensors", 10, x) for x in ("a", "b", "m")),
               (Edge("a", "m", "merged", 0.8, True, v), Edge("b", "m", "merged", 0.8, True, v)),
               ("a", "b"), 3, 2)
    out = text_of(render.forest_to_tree(f))
    assert "merge of a, b" in out and "(merged; shown under a)" in out
    dot = render.forest_to_dot(f)
    assert dot.count("->") == 2


def test_dot() -> None:
    dot = render.forest_to_dot(forest())
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert '"base" -> "ft" [label="finetuned 0.90", style=dashed];' in dot
    assert '"ft" -> "q" [label="quantized 0.95"];' in dot
    assert '"base" -> "copy" [label="same 1.00", style=dashed, dir=none];' in dot
    assert '"q" [label="q\\ngguf, 1K"];' in dot
    f = infer_forest([fp('we"ird\\name')], Table({}), relate_merge=False)
    assert '"we\\"ird\\\\name"' in render.forest_to_dot(f)


def test_html_is_self_contained_and_escapes_labels() -> None:
    hostile = '</script><script>alert(1)</script><img src="http://evil.example/x">'
    f = infer_forest([fp("base"), fp(hostile)], Table({("base", hostile): ("finetuned", 0.8)}),
                     relate_merge=False)
    page = render.forest_to_html(f, title="<b>t</b>")
    assert page.count("</script>") == 2 and "alert(1)</script>" not in page
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page
    data = re.search(r'<script type="application/json" id="lineage-data">(.*?)</script>', page, re.S)
    assert data is not None
    # no network: outside the inert data, the only URLs are XML namespaces
    code = page.replace(data.group(1), "")
    assert set(re.findall(r"https?://[^\s\"'<>]+", code)) == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert json.loads(data.group(1))["nodes"][1]["label"] == hostile


def test_forest_contradictions_are_flagged_everywhere() -> None:
    f = infer_forest([fp("base"), fp("tuned", base_model="org/other"), fp("unnamed")],
                     Table({("base", "tuned"): ("finetuned", 0.9)}), relate_merge=False)
    assert f.contradictions == {}                   # names no model of the set
    f = infer_forest([fp("base"), fp("tuned", base_model="org/other"), fp("org/other")],
                     Table({("base", "tuned"): ("finetuned", 0.9)}), relate_merge=False)
    assert set(f.contradictions) == {"tuned"} and "org/other" in f.contradictions["tuned"]
    assert render.forest_to_json(f)["contradictions"] == f.contradictions
    assert render.from_json(render.forest_to_json(f)) == f
    assert '"tuned" [label="tuned\\nsafetensors, 1K", color=red];' in render.forest_to_dot(f)
    assert "! tuned declares base_model 'org/other'" in text_of(render.forest_to_tree(f))
    # declared and found agree: no contradiction
    f = infer_forest([fp("org/other"), fp("tuned", base_model="org/other")],
                     Table({("org/other", "tuned"): ("finetuned", 0.9)}), relate_merge=False)
    assert f.contradictions == {}
