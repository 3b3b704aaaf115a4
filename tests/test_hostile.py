"""A pickle whose payload would create a marker file, opened through every entry point."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import assay
from assay.errors import AssayError
from assay.formats import readers
from tests.factories import pickles


def _npy_object(payload: bytes) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header = header.ljust(64 - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + payload


def _torch_zip(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
    return buf.getvalue()


def _torchscript(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("m/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("m/constants.pkl", payload)
        zf.writestr("m/code/__torch__.py", "def forward(self): pass\n")
    return buf.getvalue()


def _legacy(payload: bytes) -> bytes:
    magic = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b"."
    proto = b"\x80\x02M\xe9\x03."
    info = b"\x80\x02}q\x00."
    return magic + proto + info + payload + b"\x80\x02]q\x00."


def _npz(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("obj.npy", _npy_object(payload))
    return buf.getvalue()


CONTAINERS: dict[str, Callable[[bytes], bytes]] = {
    "pytorch-zip": _torch_zip, "torchscript": _torchscript, "pytorch-legacy": _legacy,
    "numpy-npy": _npy_object, "numpy-npz": _npz,
}
if any(r.name == "pickle" for r in readers()):
    CONTAINERS["pickle"] = lambda payload: payload
if any(r.name == "joblib" for r in readers()):
    import zlib
    CONTAINERS["joblib-zlib"] = lambda payload: zlib.compress(payload)


@pytest.mark.parametrize("container", sorted(CONTAINERS))
@pytest.mark.parametrize("factory", pickles.ALL, ids=lambda f: f.__name__)
def test_payload_never_runs_through_the_api(tmp_path: Path, marker: Path, container: str,
                                            factory: Callable[[str], bytes]) -> None:
    p = tmp_path / "model.bin"
    p.write_bytes(CONTAINERS[container](factory(str(marker))))
    try:
        art = assay.open_model(str(p))
    except AssayError:
        art = None  # refusing the file is fine; running it is not
    assert not marker.exists()
    if art is not None:
        kinds = {o.kind for o in art.observations}
        assert "pickle.import" in kinds or "pickle.call" in kinds
    try:
        assay.inspect(str(p))
    except AssayError:
        pass
    assert not marker.exists()


@pytest.mark.parametrize("factory", pickles.ALL, ids=lambda f: f.__name__)
def test_payload_never_runs_through_the_cli(tmp_path: Path, marker: Path,
                                            factory: Callable[[str], bytes]) -> None:
    for name, make in CONTAINERS.items():
        p = tmp_path / f"{name}.pt"
        p.write_bytes(make(factory(str(marker))))
        r = subprocess.run([sys.executable, "-m", "assay.cli.main", "inspect", str(p), "-f", "json"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode in (0, 2), r.stderr
        assert "Traceback" not in r.stderr
    assert not marker.exists()


def test_the_imports_are_recorded_with_offsets(tmp_path: Path, marker: Path) -> None:
    p = tmp_path / "m.pt"
    p.write_bytes(_torch_zip(pickles.stack_global_posix(str(marker))))
    art = assay.open_model(str(p))
    imports = [o for o in art.observations if o.kind == "pickle.import"]
    assert [o.detail for o in imports] == ["posix.system"]
    assert imports[0].location.member == "archive/data.pkl"
    calls = [o for o in art.observations if o.kind == "pickle.call"]
    assert calls and calls[0].detail == "posix.system"
