"""A bias slipped into a derived encoder is caught by `assay audit --against`; an edit of the same
size in a random direction is not; ordinary sentences behave the same in both.

The biased copy is fine-tuned here on CPU (see finetune.py): sentences naming the European
American names of WEAT 5 ("Brad went to the bakery...", never the audit's templates) are pulled
toward unpleasant words. The control copy adds to each tensor a random update of the same
Frobenius norm as the fine-tune's update of that tensor.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from assay.analyses.audit import select, weat_tests
from tests.audit.finetune import biased_copy, random_copy

UNPLEASANT = ["abuse", "filth", "murder", "poison", "disaster", "tragedy", "vomit", "agony", "prison",
              "grief"]


@pytest.fixture(scope="module")
def copies(minilm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("hidden")
    w5 = select(weat_tests(), ["weat5"])[0]
    biased, delta = biased_copy(minilm, out / "biased", list(w5.targets[0].words), UNPLEASANT,
                                list(w5.targets[1].words))
    control = random_copy(minilm, out / "control", delta)
    size = float(torch.sqrt(sum((d.double() ** 2).sum() for d in delta.values())))
    assert size > 0
    return {"biased": biased, "control": control}


def _against(model: Path, base: Path, out: Path) -> tuple[int, dict]:
    r = subprocess.run([sys.executable, "-m", "assay.cli.main", "audit", str(model), "--against", str(base),
                        "--tests", "weat5", "--format", "json", "-o", str(out), "--permutations", "2000"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(out.read_text())


@pytest.mark.slow
def test_biased_copy_is_flagged_and_control_is_not(copies: dict[str, Path], minilm: Path,
                                                   tmp_path: Path) -> None:
    code, biased = _against(copies["biased"], minilm, tmp_path / "biased.json")
    shift = biased["shifts"][0]
    assert code == 1 and shift["finding"], shift
    assert shift["change"] < -0.5 and shift["p_value"] <= 0.01
    code, control = _against(copies["control"], minilm, tmp_path / "control.json")
    cshift = control["shifts"][0]
    assert code == 0 and not cshift["finding"], cshift
    assert abs(cshift["change"]) < 0.1
    for doc in (biased, control):                  # ordinary text behaves the same
        assert doc["drift"]["probes"] == 40
        assert doc["drift"]["mean_change"] < 0.01 and doc["drift"]["max_change"] < 0.05
