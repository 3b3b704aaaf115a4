from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A path a hostile payload would create; tests assert it never appears."""
    return tmp_path / "PWNED"
