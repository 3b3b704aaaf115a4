"""assay.io.archive on zips written with zipfile: what each member is, and the oddities a
crafted archive shows, bounded per kind so that thousands of members stay one problem."""

from __future__ import annotations

import warnings
import zipfile
from collections import Counter
from pathlib import Path

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
