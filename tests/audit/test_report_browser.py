"""The audit HTML report opened in headless Chromium: the effect-size plot is drawn."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assay.analyses.audit import Embedder, Settings, compare, parse_tests
from assay.render.audit import comparison_html
from tests.conftest import needs_chromium

pytestmark = needs_chromium

TESTS = parse_tests("""
[[test]]
id = "t1"
name = "one"
targets = [["x", ["x1", "x2", "x3", "x4", "x5"]], ["y", ["y1", "y2", "y3", "y4", "y5"]]]
attributes = [["a", ["a1", "a2", "a3"]], ["b", ["b1", "b2", "b3"]]]

[[test]]
id = "t2"
name = "two"
targets = [["x", ["x1", "x2", "x3", "x6", "x7"]], ["y", ["y1", "y2", "y6", "y7", "y8"]]]
attributes = [["a", ["a1", "a2", "a4"]], ["b", ["b1", "b2", "b4"]]]
""")


def _embedder(name: str, pull: float) -> Embedder:
    def embed(items: Sequence[str]) -> np.ndarray:
        out = []
        for it in items:
            rng = np.random.default_rng(zlib.crc32(it.encode()))
            v = rng.normal(0, 0.3, 8)
            v[0] += {"x": pull, "y": -pull, "a": 1.0, "b": -1.0}[it[0]]
            out.append(v)
        return np.array(out)
    return Embedder(name, "words", embed)




def test_plot_is_drawn(browser: Any, tmp_path: Path) -> None:
    c = compare(TESTS, _embedder("edited", -0.8), _embedder("base", 0.8),
                settings=Settings(permutations=500, bootstrap=200), probes=["x1", "y1", "a1"])
    path = tmp_path / "audit.html"
    path.write_text(comparison_html(c), encoding="utf-8")
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    assert errors == [] and [u for u in requests if not u.startswith("file://")] == []

    svg = page.locator("svg#effects")
    box = svg.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 50
    dots = page.locator("svg#effects circle.effect")
    assert dots.count() == 4                          # two tests, base and edited model
    assert page.locator("svg#effects line.interval").count() == 4
    centres = {}
    for i in range(dots.count()):
        d = dots.nth(i)
        b = d.bounding_box()
        assert b is not None and b["width"] > 4 and b["height"] > 4
        assert box["x"] <= b["x"] and b["x"] + b["width"] <= box["x"] + box["width"]
        cx, cy = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
        # the dot is what the browser paints at its centre (not hidden under something else)
        assert page.evaluate(f"document.elementFromPoint({cx}, {cy}).tagName") == "circle"
        key = (d.get_attribute("data-test"), d.get_attribute("class"))
        centres[key] = (cx, float(d.get_attribute("data-value")))
    # positions follow the values: the edited model's negative effects lie left of the base's
    for tid in ("t1", "t2"):
        (bx, bv), (mx, mv) = centres[(tid, "effect base")], centres[(tid, "effect model")]
        assert mv < 0 < bv and mx < bx
    png = page.screenshot()
    assert len(png) > 1000
    page.close()


def test_single_model_report_draws_one_dot_per_test(browser: Any, tmp_path: Path) -> None:
    from assay.analyses.audit import audit
    from assay.render.audit import to_html
    path = tmp_path / "one.html"
    path.write_text(to_html(audit(TESTS, _embedder("m", 0.8), Settings(permutations=300, bootstrap=100))),
                    encoding="utf-8")
    page = browser.new_page()
    page.goto(path.as_uri())
    dots = page.locator("svg#effects circle.effect.model")
    assert dots.count() == 2
    assert all((b := dots.nth(i).bounding_box()) is not None and b["width"] > 4 for i in range(2))
    assert page.locator("table tr").count() == 3
    page.close()
