"""assay.io.archive on zips written with zipfile: what each member is, and the oddities a
crafted archive shows, bounded per kind so that thousands of members stay one problem."""

from __future__ import annotations

import warnings
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from assay.io.archive import ODDITIES_PER_CODE, open_zip
from assay.limits import Limits


def test_oddities_are_bounded_per_code_and_counted(tmp_path: Path) -> None:
    p = tmp_path / "many.zip"
    with zipfile.ZipFile(p, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")        # zipfile warns about the duplicate names
        for i in range(ODDITIES_PER_CODE + 50):
            z.writestr(f"../up{i}", b"x")       # a path leaving the extraction folder
            z.writestr("same", b"y")            # the same name again and again
        z.writestr("ok/a/../b", b"z")           # `..` that stays inside: not an oddity
    arc = open_zip(str(p), Limits())
    assert len(arc.members) == 2 * (ODDITIES_PER_CODE + 50) + 1
    counts = Counter(o.code for o in arc.oddities)
    # the first ODDITIES_PER_CODE of each code, then one line counting the rest
    assert counts == {"traversal": ODDITIES_PER_CODE + 1, "duplicate": ODDITIES_PER_CODE + 1}
    listed = [o for o in arc.oddities if o.code == "traversal"]
    assert [o.member for o in listed[:3]] == ["../up0", "../up1", "../up2"]
    assert listed[-1].member == "" and listed[-1].text.startswith("50 more members")
    dup = [o for o in arc.oddities if o.code == "duplicate"]
    assert dup[-1].text.startswith("49 more members")      # the first "same" is no duplicate
    assert not any(o.member == "ok/a/../b" for o in arc.oddities)


def test_absolute_and_drive_names_are_traversal(tmp_path: Path) -> None:
    p = tmp_path / "abs.zip"
    with zipfile.ZipFile(p, "w") as z:
        for name in ("/etc/x", "C:/x", "a/../../x", "fine/x"):
            zi = zipfile.ZipInfo("placeholder")
            zi.filename = name                  # zipfile would strip a leading "/" on its own
            z.writestr(zi, b"1")
    arc = open_zip(str(p), Limits())
    assert sorted(o.member for o in arc.oddities if o.code == "traversal") == \
        ["/etc/x", "C:/x", "a/../../x"]


def _zipfile_view(data: bytes) -> list[tuple] | None:
    """The directory as Python's zipfile reads it (the oracle), or None when it refuses."""
    import io
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return [(i.filename, i.flag_bits, i.compress_type, i.CRC, i.compress_size, i.file_size,
                     i.header_offset) for i in z.infolist()]
    except Exception:
        return None


def _own_view(data: bytes) -> list[tuple] | None:
    from assay.io.archive import _directory, _Unreadable
    try:
        return _directory(data)
    except _Unreadable:
        return None


def _sample_zips(tmp_path: Path) -> dict[str, bytes]:
    out = {}
    p = tmp_path / "plain.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("a.txt", b"hello" * 100)
        z.writestr("dir/b.bin", bytes(range(256)) * 40, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("naïve/ünïcode.txt", b"x")          # UTF-8 flag set
        z.comment = b"an archive comment"
    out["plain"] = p.read_bytes()
    p = tmp_path / "zip64.zip"
    with zipfile.ZipFile(p, "w", allowZip64=True) as z:
        with z.open("big.bin", "w", force_zip64=True) as fh:   # ZIP64 extra field and records
            fh.write(b"\0" * 5000)
        z.writestr("small", b"y")
    out["zip64"] = p.read_bytes()
    out["prepended"] = b"#!/bin/sh\necho a script in front\n" + out["plain"]   # offsets move
    p = tmp_path / "many.zip"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for i in range(300):
            z.writestr(f"m/{i:04d}", f"member {i}".encode() * (i % 7))
    out["many"] = p.read_bytes()
    return out


def test_the_directory_is_read_as_zipfile_reads_it(tmp_path: Path) -> None:
    for name, data in _sample_zips(tmp_path).items():
        ref = _zipfile_view(data)
        assert ref, name
        assert _own_view(data) == ref, name
    prepended = _own_view(_sample_zips(tmp_path)["prepended"])
    assert prepended is not None and prepended[0][-1] > 0       # local headers found after the script


def test_damaged_directories_are_refused_where_zipfile_refuses_them(tmp_path: Path) -> None:
    import random
    rng = random.Random(7)
    samples = list(_sample_zips(tmp_path).values())
    refused = 0
    for k in range(600):
        b = bytearray(samples[k % len(samples)])
        if k % 3 == 0:
            b = b[:rng.randrange(len(b))]                      # truncated
        else:
            for _ in range(rng.randint(1, 4)):                 # bytes changed, mostly in the directory
                near_end = rng.random() < 0.85
                at = len(b) - 1 - rng.randrange(min(len(b), 600)) if near_end else rng.randrange(len(b))
                b[at] = rng.randrange(256)
        ref, own = _zipfile_view(bytes(b)), _own_view(bytes(b))
        assert own == ref, (k, ref and ref[:2], own and own[:2])
        refused += ref is None
    assert 100 < refused < 500          # both kinds of outcome were exercised


def test_an_unreadable_directory_is_one_format_error(tmp_path: Path) -> None:
    from assay.errors import FormatError
    data = _sample_zips(tmp_path)["plain"]
    p = tmp_path / "cut.zip"
    p.write_bytes(data[:-30])
    with pytest.raises(FormatError) as got:
        open_zip(str(p), Limits())
    assert "not a readable zip archive" in got.value.one_line() and str(p) in got.value.one_line()
