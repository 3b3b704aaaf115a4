"""Symbolic values built by the emulated pickle machine. None of them is ever called."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Global:
    """A name the pickle asked to import (`GLOBAL`, `STACK_GLOBAL`, `INST`)."""

    module: str
    name: str
    offset: int

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    def __repr__(self) -> str:
        return self.qualname


@dataclass(eq=False)
class Call:
    """A call the pickle would make: `func(*args, **kwargs)` for REDUCE, INST, OBJ, NEWOBJ(_EX).

    Later opcodes that act on the result are recorded, not performed: BUILD sets `state`,
    SETITEM(S) fill `items`, APPEND(S)/ADDITEMS fill `appended`."""

    func: Any
    args: tuple
    kind: str                     # "reduce" | "newobj" | "inst" | "obj"
    offset: int
    kwargs: dict | None = None
    state: Any = None
    built: bool = False
    items: list[tuple[Any, Any]] = field(default_factory=list)
    appended: list[Any] = field(default_factory=list)

    @property
    def target(self) -> str:
        f = self.func
        return f.qualname if isinstance(f, Global) else type(f).__name__

    def __repr__(self) -> str:
        return f"{self.target}(...)"


@dataclass(eq=False)
class Persistent:
    """A persistent id (`PERSID`, `BINPERSID`): a reference the loader resolves out of band."""

    pid: Any
    offset: int


@dataclass(eq=False)
class Extension:
    """An extension-registry code (`EXT1/2/4`): resolves to a global through copyreg."""

    code: int
    offset: int


@dataclass(eq=False)
class PickleBuffer:
    """An out-of-band buffer (`NEXT_BUFFER`, protocol 5)."""

    index: int
    offset: int


@dataclass(eq=False)
class Raw:
    """A large bytes value, kept as a view of the source with its absolute offset."""

    view: memoryview
    offset: int

    def __len__(self) -> int:
        return len(self.view)

    def tobytes(self) -> bytes:
        return bytes(self.view)
