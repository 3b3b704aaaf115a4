"""Run a function over many inputs in worker processes, each input under a time and memory budget.

A worker that exceeds its time budget is killed and replaced; one that dies (a native library
crashing on a crafted file) is replaced too; either way the input gets an error result and the
run goes on. Workers are forked, so they share what the parent already imported."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Budget:
    """What one input may take in a worker: wall seconds and heap bytes."""
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


AHEAD = 2
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
    """One worker process, its pipe, and the inputs sent to it."""
    proc: Any
    conn: Any
    early: bool = False                   # forked before `prepare` ran: prefers light inputs
    queue: deque[int] = field(default_factory=deque)   # sent, not answered yet (answers keep order)
    started: float = 0.0                  # when the input at the head of the queue started


def run(fn: Callable[[Any], Any], args: list[Any], *, workers: int | None = None,
        budget: Budget = Budget(), light: list[bool] | None = None,
        prepare: Callable[[], None] | None = None,
        cost: list[float] | None = None) -> Iterator[tuple[int, Any]]:
    """Yield (index, result) as inputs finish; a result is fn's return value or `Failed`.

    Each worker has its own pipe, so the parent always knows which input a worker holds, even
    when the worker dies without a word.

    `prepare` runs in the parent before the workers are forked, so that they share what it
    imports. Inputs marked in `light` do not need it: when there are some, one worker is forked
    first and fed light inputs while `prepare` runs in a thread; when it is done the other
    workers are forked (no thread runs beside a fork) and take the other inputs first.
    Start-up and the first reads overlap instead of following each other. Inputs go out
    costliest first (`cost`, a guess per input), so that no slow one is left for the end."""
    if not args:
        return
    # here, not at the top: a scan with nothing to do never imports multiprocessing
    import multiprocessing as mp
    import multiprocessing.connection as mp_connection
    ctx = mp.get_context("fork")
    n = max(1, min(workers or os.cpu_count() or 1, len(args)))
    marked = light if light is not None and len(light) == len(args) else [False] * len(args)
    weight = cost if cost is not None and len(cost) == len(args) else [1.0] * len(args)
    # the costliest inputs first (longest processing time first): a slow input met at the end
    # would keep one worker busy while the others wait
    order = sorted(range(len(args)), key=lambda i: -weight[i])
    light_q: deque[int] = deque(i for i in order if marked[i])
    heavy_q: deque[int] = deque(i for i in order if not marked[i])
    slots: list[_Slot] = []

    def spawn(early: bool = False) -> _Slot:
        # Objects that exist now are moved out of the collector's sight (until the run ends):
        # a worker's collections neither walk them nor write to their pages (which would copy
        # the parent's memory page by page), and the parent's own collections while it waits
        # for answers are short.
        gc.freeze()
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(fn, child, budget), daemon=True)
        p.start()
        child.close()
        slot = _Slot(p, parent, early)
        slots.append(slot)
        return slot

    def send(slot: _Slot, task: int) -> None:
        if not slot.queue:
            slot.started = time.monotonic()
        slot.queue.append(task)
        slot.conn.send((task, args[task]))

    def top_up(slot: _Slot) -> None:
        """Keep AHEAD inputs queued at the worker: it starts the next one without waiting for
        the parent to read an answer and send more (on two busy cores that wait is not short)."""
        while len(slot.queue) < AHEAD:
            first, second = (light_q, heavy_q) if slot.early else (heavy_q, light_q)
            if slot.early and preparing is not None:
                second = deque()               # inputs that need `prepare` wait for it
            q = first or second
            if not q:
                return
            send(slot, q.popleft())

    def retire(slot: _Slot) -> None:
        slots.remove(slot)
        if slot.proc.is_alive():
            slot.proc.kill()
        slot.proc.join(5)
        slot.conn.close()

    preparing: threading.Thread | None = None
    failure: list[BaseException] = []

    def run_prepare() -> None:
        try:
            assert prepare is not None
            prepare()
        except BaseException as exc:       # raised again in the caller's thread
            failure.append(exc)

    def prepared() -> bool:
        """Whether `prepare` is over; the first time it is, fork the other workers."""
        nonlocal preparing
        if preparing is None:
            return True
        if preparing.is_alive():
            return False
        preparing.join()
        preparing = None
        if failure:
            raise failure[0]
        for slot in slots:                  # the early worker may have run out of light inputs
            top_up(slot)
        for _ in range(n - len(slots)):
            top_up(spawn())
        return True

    if prepare is not None and light_q and n >= 2:
        # one worker forks now and reads light inputs, fed as it answers, while `prepare`
        # imports in a thread; the others fork once it is done (no thread is running then)
        top_up(spawn(early=True))
        preparing = threading.Thread(target=run_prepare, name="assay-prepare", daemon=True)
        preparing.start()
    else:
        if prepare is not None:
            prepare()
        for _ in range(n):
            top_up(spawn())
    done = 0
    try:
        while done < len(args):
            waiting = not prepared()
            busy = [s for s in slots if s.queue]
            ready = mp_connection.wait([s.conn for s in busy], timeout=0.002 if waiting else 0.2)
            for slot in [s for s in busy if s.conn in ready]:
                try:
                    idx, out = slot.conn.recv()
                except (EOFError, OSError):
                    continue           # died mid-task: handled below
                slot.queue.popleft()
                slot.started = time.monotonic()
                done += 1
                yield idx, out
                top_up(slot)
            now = time.monotonic()
            for slot in [s for s in slots if s.queue]:
                over = now - slot.started > budget.seconds
                if over or not slot.proc.is_alive():
                    task = slot.queue.popleft()
                    for t in reversed(slot.queue):       # sent but never started: back in line
                        (light_q if marked[t] else heavy_q).appendleft(t)
                    slot.queue.clear()
                    retire(slot)
                    reason = (f"took longer than {budget.seconds:g} s" if over else
                              f"crashed the process reading it ({_death(slot.proc.exitcode)}); "
                              "refusing it")
                    done += 1
                    yield task, Failed(reason)
                    if light_q or heavy_q:
                        if preparing is not None:      # never fork beside a running thread
                            preparing.join()
                        top_up(spawn(early=preparing is not None))
    finally:
        for slot in list(slots):
            try:
                slot.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for slot in list(slots):
            slot.proc.join(1)
            retire(slot)
        gc.unfreeze()


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
