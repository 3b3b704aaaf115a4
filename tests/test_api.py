"""The public API is small and pinned."""

from __future__ import annotations

from pathlib import Path

import assay

ROOT = Path(__file__).resolve().parents[1]


def test_exported_members() -> None:
    assert sorted(assay.__all__) == sorted([
        "AssayError", "FormatError", "LimitError", "Limits", "ModelArtifact", "Observation",
        "TensorRecord", "UnknownFormatError", "UnsupportedError", "UsageError", "__version__",
        "diff", "identify", "inspect", "open_model", "scan", "verify"])


def test_py_typed_ships() -> None:
    assert (Path(assay.__file__).parent / "py.typed").exists()


def test_inspect_summary_of_example_folder() -> None:
    s = assay.inspect(str(ROOT / "examples" / "tiny-classifier"), tensors=True)
    assert s.format == "folder:safetensors"
    assert s.parameters == 16 * 32 + 32 + 32 * 4 + 4
    assert s.metadata["card"]["license"] == "apache-2.0"
    assert s.metadata["config"]["num_labels"] == 4
    assert {t.name for t in s.tensors} == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_limits_are_frozen() -> None:
    import dataclasses

    import pytest
    with pytest.raises(dataclasses.FrozenInstanceError):
        assay.Limits().max_tensors = 1  # type: ignore[misc]
