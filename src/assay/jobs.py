"""Run a function over many inputs in worker processes, each input under a time and memory budget.

A worker that exceeds its time budget is killed and replaced; one that dies (a native library
crashing on a crafted file) is replaced too; either way the input gets an error result and the
run goes on. Workers are forked, so they share what the parent already imported."""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Budget:
    seconds: float = 60.0                # wall time per input
    memory_bytes: int | None = 4 << 30   # heap (RLIMIT_DATA) per worker; file maps are not counted


@dataclass(frozen=True)
class Failed:
    """An input whose worker was killed or died: why, in one line."""

    reason: str


def _limit_memory(nbytes: int | None) -> None:
    if nbytes is None:
        return
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_DATA, (nbytes, nbytes))
    except (ImportError, ValueError, OSError):
        pass


ISOLATED = "ASSAY_ISOLATED"     # set in workers: a crash here is caught by the parent


def _worker(fn: Callable[[Any], Any], conn: Any, budget: Budget) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ[ISOLATED] = "1"
    _limit_memory(budget.memory_bytes)
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        idx, arg = item
        try:
            out = fn(arg)
        except MemoryError:
            out = Failed("ran out of its memory budget")
        except BaseException as exc:  # the function is expected to catch its own errors
            out = Failed(f"internal error: {type(exc).__name__}: {exc}")
        conn.send((idx, out))


@dataclass
class _Slot:
    proc: Any
    conn: Any
    task: int | None = None
    started: float = 0.0


def run(fn: Callable[[Any], Any], args: list[Any], *, workers: int | None = None,
        budget: Budget = Budget()) -> Iterator[tuple[int, Any]]:
    """Yield (index, result) as inputs finish; a result is fn's return value or `Failed`.

    Each worker has its own pipe, so the parent always knows which input a worker holds, even
    when the worker dies without a word."""
    if not args:
        return
    ctx = mp.get_context("fork")
    n = max(1, min(workers or os.cpu_count() or 1, len(args)))
    pending = list(range(len(args)))[::-1]
    slots: list[_Slot] = []

    def spawn() -> _Slot:
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(fn, child, budget), daemon=True)
        p.start()
        child.close()
        slot = _Slot(p, parent)
        slots.append(slot)
        return slot

    def assign(slot: _Slot) -> None:
        if pending:
            slot.task = pending.pop()
            slot.started = time.monotonic()
            slot.conn.send((slot.task, args[slot.task]))
        else:
            slot.task = None

    def retire(slot: _Slot) -> None:
        slots.remove(slot)
        if slot.proc.is_alive():
            slot.proc.kill()
        slot.proc.join(5)
        slot.conn.close()

    for _ in range(n):
        assign(spawn())
    done = 0
    try:
        while done < len(args):
            busy = [s for s in slots if s.task is not None]
            ready = mp_connection.wait([s.conn for s in busy], timeout=0.2)
            for slot in [s for s in busy if s.conn in ready]:
                try:
                    idx, out = slot.conn.recv()
                except (EOFError, OSError):
                    continue           # died mid-task: handled below
                done += 1
                yield idx, out
                assign(slot)
            now = time.monotonic()
            for slot in [s for s in slots if s.task is not None]:
                over = now - slot.started > budget.seconds
                if over or not slot.proc.is_alive():
                    task = slot.task
                    retire(slot)
                    reason = (f"took longer than {budget.seconds:g} s" if over else
                              f"crashed the process reading it ({_death(slot.proc.exitcode)}); "
                              "refusing it")
                    done += 1
                    yield task, Failed(reason)
                    if pending:
                        assign(spawn())
    finally:
        for slot in list(slots):
            try:
                slot.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for slot in list(slots):
            slot.proc.join(1)
            retire(slot)


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
