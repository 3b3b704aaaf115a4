"""The HTML lineage graph opened in headless Chromium: what its script draws in the DOM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assay.analyses.lineage.forest import infer_forest
from assay.render.lineage import forest_to_html
from tests.conftest import needs_chromium
from tests.lineage.forest_cases import Table, fp

pytestmark = needs_chromium




def open_page(browser: Any, page_html: str, tmp_path: Path) -> tuple[Any, list[str]]:
    path = tmp_path / "lineage.html"
    path.write_text(page_html, encoding="utf-8")
    page = browser.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)
    assert errors == []
    return page, [u for u in requests if not u.startswith("file://")]


def test_graph_draws_every_node_and_edge(browser: Any, tmp_path: Path) -> None:
    rel = Table({("base", "ft"): ("finetuned", 0.9), ("ft", "q"): ("quantized", 0.95),
                 ("base", "copy"): ("same", 1.0), ("a2", "m"): ("finetuned", 0.7)})
    models = [fp("runs/base", 22_700_000), fp("ft"), fp("q", fmt="gguf"), fp("copy"), fp("a2"), fp("m"),
              fp("lonely", 5)]
    rel.table = {(("runs/base" if p == "base" else p), c): v for (p, c), v in rel.table.items()}
    f = infer_forest(models, rel, relate_merge=False)
    page, outside = open_page(browser, forest_to_html(f, "test forest"), tmp_path)
    assert outside == []                     # nothing fetched from the network

    nodes = page.locator("svg g.node")
    assert nodes.count() == 7
    assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.label)")) == sorted(
        ["runs/base", "ft", "q", "copy", "a2", "m", "lonely"])
    shown = page.locator("svg g.node text.node-label").all_text_contents()
    assert sorted(shown) == sorted(["base", "ft", "q", "copy", "a2", "m", "lonely"])
    assert "gguf" in page.locator("svg g.node[data-label='q'] text.node-format").text_content()
    assert page.locator("svg g.node[data-label='runs/base'] text.node-params").text_content() \
        == "22.7M parameters"
    assert page.locator("svg g.node.root").count() == 3

    edges = page.locator("svg g.edge")
    assert edges.count() == 4
    pairs = edges.evaluate_all("els => els.map(e => [e.dataset.parent, e.dataset.child])")
    assert sorted(map(tuple, pairs)) == sorted([("runs/base", "ft"), ("ft", "q"), ("runs/base", "copy"),
                                                ("a2", "m")])
    labels = page.locator("svg text.edge-label").all_text_contents()
    assert sorted(labels) == ["finetuned 0.70", "finetuned 0.90", "quantized 0.95", "same 1.00"]
    assert page.locator("svg g.edge.undirected").count() == 3     # same, and two fine-tunes

    # children are drawn below their parents
    def y(label: str) -> float:
        return page.locator(f"svg g.node[data-label='{label}']").bounding_box()["y"]
    assert y("runs/base") < y("ft") < y("q")

    # clicking an edge shows its evidence, clicking a node its facts
    page.locator("svg text.edge-label[data-child='q']").click()
    info = page.locator("#info").text_content()
    assert "quantized (0.95)" in info and "rel_l2" in info and "layer.0.weight" in info
    page.locator("svg g.node[data-label='lonely'] rect").click()
    info = page.locator("#info").text_content()
    assert "lonely" in info and "(root)" in info
    assert "7 models, 4 edges, 3 roots" in page.locator("#summary").text_content()
    page.close()


def test_hostile_labels_stay_text(browser: Any, tmp_path: Path) -> None:
    hostile = '<img src=x onerror="document.title=\'pwned\'">'
    f = infer_forest([fp("a"), fp(hostile)], Table({("a", hostile): ("pruned", 0.8)}), relate_merge=False)
    page, outside = open_page(browser, forest_to_html(f, "t"), tmp_path)
    assert page.locator("svg g.node").count() == 2 and page.locator("svg g.edge").count() == 1
    page.locator(f"svg g.node[data-label='{hostile.replace(chr(39), chr(92) + chr(39))}'] rect").click()
    assert page.title() == "t" and page.locator("img").count() == 0
    assert outside == []
    page.close()


def test_real_forest_of_the_tiny_family(browser: Any, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from assay import api
    from tests.factories.lineage import build_lineage

    pairs = {p.name: p for p in build_lineage(tmp_path / "set", minilm=False)}
    f = api.lineage_forest([str(tmp_path / "set")])
    page, outside = open_page(browser, forest_to_html(f), tmp_path)
    assert outside == []
    assert page.locator("svg g.node").count() == len(f.nodes) == 10
    assert page.locator("svg g.edge").count() == len(f.edges)
    merged = page.locator(f"svg g.edge[data-child='{pairs['tiny-average'].a}']")
    assert merged.count() == 2
    assert set(merged.evaluate_all("els => els.map(e => e.dataset.relation)")) == {"merged"}
    labels = page.locator(f"svg text.edge-label[data-child='{pairs['tiny-bf16'].b}']").all_text_contents()
    assert len(labels) == 1 and labels[0].startswith("cast ")
    page.close()
