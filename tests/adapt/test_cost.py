"""`assay cost`: measured throughput, four estimates with their assumptions."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay import api
from assay.adapt.cost import estimate
from assay.render.adapt import cost_json
from assay.runtime.adapted import Throughput


def test_estimates_are_tokens_over_throughput() -> None:
    m = {k: Throughput(k, v, 8, 16, 2, 1 << 20) for k, v in (("forward", 1000.0), ("lora", 500.0),
                                                             ("full", 100.0))}
    est = {e.method: e for e in estimate(1000, m, 10, 2000, 50, epochs=2, setup=1.0)}
    head = 1.0 + 2.0 + 100 * 1 * 0.001          # setup, features, 100 epochs of one minibatch
    assert est["head"].seconds == pytest.approx(head)
    assert est["lora"].seconds == pytest.approx(head + 2 * (0.8 * 2000 / 500 + 0.2 * 2000 / 1000))
    # LoRA on the top third of the layers: the lower layers' forward is cached, not repeated
    top = {e.method: e for e in estimate(1000, m, 10, 2000, 50, epochs=2, setup=1.0, top_share=1 / 3)}
    step = 1 / 500 - (2 / 3) / 1000
    assert top["lora"].seconds == pytest.approx(head + 2 * (0.8 * 2000 * step + 0.2 * 2000 / 3 / 1000))
    assert est["full"].seconds == pytest.approx(1.0 + 2 * 2000 / 100)
    assert est["scratch"].seconds == 20 * 1000 / 100
    assert "20 tokens per parameter" in est["scratch"].assumptions


def test_cost_measures_here(minilm: Path) -> None:
    rep = api.cost(str(minilm), batch=2, seq_len=16, threads=1)
    doc = cost_json(rep)
    assert doc["schema"] == "assay.cost/1" and doc["parameters"] == 22_713_728
    assert [m["mode"] for m in doc["measured"]] == ["forward", "lora", "full"]
    assert all(m["tokens_per_second"] > 0 for m in doc["measured"])
    assert [e["method"] for e in doc["estimates"]] == ["head", "lora", "full", "scratch"]
    assert doc["estimates"][0]["seconds"] < doc["estimates"][2]["seconds"] < doc["estimates"][3]["seconds"]


def test_cli_cost_filters_methods(minilm: Path) -> None:
    import json

    from typer.testing import CliRunner

    from assay.cli.main import app
    r = CliRunner().invoke(app, ["cost", str(minilm), "--batch", "2", "--seq-len", "8", "--method", "head",
                                 "--method", "scratch", "-f", "json"])
    assert r.exit_code == 0, r.output
    assert [e["method"] for e in json.loads(r.stdout)["estimates"]] == ["head", "scratch"]
    r = CliRunner().invoke(app, ["cost", str(minilm), "--batch", "2", "--seq-len", "8", "--method", "nope"])
    assert r.exit_code == 2 and "unknown method 'nope'" in r.stderr
