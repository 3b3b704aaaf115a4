"""The pieces of rebuild and challenge that need no training: array digests, the deterministic
writer, tolerances, the edit-after-training test, epoch comparison, environment capture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assay import api
from assay.recipes import environment
from assay.recipes.arrays import array_digest, digests, write_safetensors
from assay.recipes.challenge import (
    TensorDelta,
    apply_tolerance,
    compare_epochs,
    localised,
    measured_tolerance,
)
from assay.recipes.record import BuildRecord, EpochDigest, Resources


def test_array_digests_are_the_digests_assay_id_computes(tmp_path: Path) -> None:
    t = {"a.weight": np.arange(12, dtype=np.float32).reshape(3, 4), "a.bias": np.array([1.5, -2.0]),
         "ids": np.array([3, 1, 2], dtype=np.int64), "big": np.arange(6, dtype=">f4").reshape(2, 3)}
    write_safetensors(str(tmp_path / "m.safetensors"), t)
    ident = api.identify(str(tmp_path / "m.safetensors"))
    content, named, per = digests(t)
    assert (content, named) == (ident.content, ident.named)
    assert per == {d.name: d.text for d in ident.tensors}
    assert array_digest("x", np.asfortranarray(t["a.weight"])).digest == \
        array_digest("x", t["a.weight"]).digest                      # layout does not matter


def test_writer_is_deterministic_whatever_the_order(tmp_path: Path) -> None:
    a = {"z": np.ones(3, np.float32), "a": np.zeros((2, 2), np.float64)}
    b = dict(reversed(list(a.items())))
    write_safetensors(str(tmp_path / "a.safetensors"), a, {"k2": "v", "k1": "w"})
    write_safetensors(str(tmp_path / "b.safetensors"), b, {"k1": "w", "k2": "v"})
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    with pytest.raises(ValueError, match="object"):
        write_safetensors(str(tmp_path / "c.safetensors"), {"o": np.array([object()])})


def test_measured_tolerance_and_noise_free_builds() -> None:
    noise = [TensorDelta("w", "changed", 1e-3, 2e-3, 0.9)]
    tol = measured_tolerance(noise, ["w", "b"], threads=3)
    assert tol.rel_l2 == {"w": 4e-3, "b": 0.0} and tol.moved == {"w"} and not tol.noise_free
    inside, outside = apply_tolerance([TensorDelta("w", "changed", 3e-3, 1e-3, 0.9),
                                       TensorDelta("b", "changed", 1e-9, 1e-9, 0.1)], tol)
    assert inside.within and not outside.within          # noise never moved b: b must be exact
    assert measured_tolerance([], ["w"], threads=2).noise_free


def test_edit_after_training_is_recognised() -> None:
    trained = frozenset({"w1", "w2", "b"})
    d = [TensorDelta("b", "changed", 0.1, 0.5, 0.1)]
    assert "b differ" in (localised(d, trained) or "")
    everywhere = [TensorDelta(n, "changed", 1e-3, 1e-3, 1.0) for n in sorted(trained)]
    assert localised(everywhere, trained) is None
    assert localised(d, frozenset({"b"})) is None       # one trained tensor: nothing to compare with
    assert localised(d, None) is None


def _record(epochs: list[dict[str, str]]) -> BuildRecord:
    eps = tuple(EpochDigest(i + 1, "c", "|".join(f"{k}={v}" for k, v in sorted(e.items())), e)
                for i, e in enumerate(epochs))
    return BuildRecord("r", "r.toml", "d", "t.py", "d", (), {}, 0, 1, 1, {}, Resources(1, 1, 0, 1), eps, ())


def test_epoch_comparison_finds_where_builds_part() -> None:
    a = _record([{"w": "1"}, {"w": "2"}, {"w": "3"}])
    b = _record([{"w": "1"}, {"w": "X"}, {"w": "Y"}])
    c = compare_epochs(a, b)
    assert (c.compared, c.first_divergent, c.tensors) == (3, 2, ("w",))
    assert compare_epochs(a, a).first_divergent is None


def test_environment_capture_names_mismatches(tmp_path: Path) -> None:
    cpu = tmp_path / "cpuinfo"
    cpu.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: sse2 avx2 fma\n\n"
                   "processor\t: 1\n")
    info = environment.cpu_info(str(cpu))
    assert info["model"] == "Test CPU 9000" and info["flags"] == ["avx2", "fma", "sse2"]
    env = environment.capture({"numpy": "0.0.1", "no-such-package-xyz": "1.0"}, "2.7", 2, 5)
    assert env["packages"]["numpy"] == np.__version__ and env["packages"]["no-such-package-xyz"] is None
    assert len(env["mismatches"]) == 3 and env["variables"]["OPENBLAS_NUM_THREADS"] == "2"
    child = environment.child_env(2, 5, str(tmp_path), "ctx.json", "/src")
    assert child["PYTHONHASHSEED"] == "5" and child["HOME"] == str(tmp_path)
    assert all(child[v] == "2" for v in environment.THREAD_VARS)
