from __future__ import annotations

from pathlib import Path

from assay.analyses.scan import CATALOG

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules"


def test_every_rule_has_a_page_and_every_page_a_rule() -> None:
    pages = {p.stem for p in DOCS.glob("*.md")}
    assert pages == set(CATALOG)
    for rid in CATALOG:
        text = (DOCS / f"{rid}.md").read_text()
        assert text.startswith(f"# {rid}:") and "## What it finds" in text
