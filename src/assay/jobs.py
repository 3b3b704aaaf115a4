"""Run a function over many inputs in worker processes, each input under a time and memory budget.

A worker that exceeds its time budget is killed and replaced; one that dies (a native library
crashing on a crafted file) is replaced too; either way the input gets an error result and the
run goes on.

Workers are forked by a *nursery*: one process forked from the caller, which runs `prepare`
(imports what the workers need) once and then forks every worker on request. Workers start
warm and share what the nursery imported; the caller itself imports none of it and never forks
beside its own threads (a progress bar's, say); a replacement is a fresh fork of a warm process.
A command line that knows early that it will need workers starts the nursery with `prestart`
before it imports its own libraries, so that both happen at once."""

from __future__ import annotations

import os
import signal
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
REAP_S = 0.05                   # how often the nursery looks for workers that ended


def _worker(fn: Callable[[Any], Any], conn: Any, budget: Budget) -> None:
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


def _nursery(conn: Any, prepare: Callable[[], None] | None,
             job: tuple[Callable[[Any], Any], Budget] | None) -> None:  # runs in the nursery
    """The nursery's life: prepare, then fork workers when asked, and report the ones that end.

    Messages in: ("prepare", f), ("job", fn, budget), ("spawn", n). Out: ("born", pid) followed
    by the parent's end of the new worker's pipe (a file descriptor), and ("died", pid, code)."""
    import gc
    import multiprocessing.connection as mpc
    from multiprocessing.reduction import send_handle

    def guarded(f: Callable[[], None] | None) -> None:
        try:
            if f is not None:
                f()
        except BaseException:     # a worker imports lazily whatever this did not
            pass

    guarded(prepare)
    children: set[int] = set()
    while True:
        try:
            ready = conn.poll(REAP_S if children else None)
            msg = conn.recv() if ready else None
        except (EOFError, OSError):       # the parent is done (or gone): so are the workers
            for pid in children:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            return
        if msg is not None:
            if msg[0] == "prepare":
                guarded(msg[1])
            elif msg[0] == "job":
                job = (msg[1], msg[2])
            elif msg[0] == "spawn" and job is not None:
                gc.freeze()           # workers neither walk nor copy what exists now
                for _ in range(msg[1]):
                    mine, theirs = mpc.Pipe()
                    pid = os.fork()
                    if pid == 0:
                        try:
                            conn.close()
                            mine.close()
                            _worker(job[0], theirs, job[1])
                        finally:
                            os._exit(0)
                    theirs.close()
                    children.add(pid)
                    conn.send(("born", pid))
                    send_handle(conn, mine.fileno(), os.getppid())
                    mine.close()
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            children.discard(pid)
            conn.send(("died", pid, os.waitstatus_to_exitcode(status)))


class Nursery:
    """The parent's handle on a nursery process (see the module's docstring)."""

    def __init__(self, prepare: Callable[[], None] | None = None,
                 job: tuple[Callable[[Any], Any], Budget] | None = None) -> None:
        import socket
        mine_s, theirs_s = socket.socketpair()
        # forked before multiprocessing is imported: each side imports it on its own, at once
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)    # the parent answers Ctrl-C
                mine_s.close()
                import multiprocessing.connection as mpc
                _nursery(mpc.Connection(theirs_s.detach()), prepare, job)
            finally:
                os._exit(0)
        theirs_s.close()
        self.pid = pid
        self._sock: Any = mine_s
        self._conn: Any = None
        self.has_job = job is not None
        self.deaths: dict[int, int] = {}
        self.alive = True
        self.spawned = 0

    @property
    def conn(self) -> Any:
        """The pipe to the nursery (multiprocessing is imported on first use: a scan that
        finds nothing to read never needs it)."""
        if self._conn is None:
            import multiprocessing.connection as mpc
            self._conn = mpc.Connection(self._sock.detach())
        return self._conn

    def give(self, fn: Callable[[Any], Any], budget: Budget,
             prepare: Callable[[], None] | None) -> bool:
        """Hand over the function the workers run; False when it cannot be sent (a closure)."""
        try:
            if prepare is not None:
                self.conn.send(("prepare", prepare))
            self.conn.send(("job", fn, budget))
        except Exception:
            return False
        self.has_job = True
        return True

    def _message(self) -> tuple[Any, ...] | None:
        try:
            msg = self.conn.recv()
        except (EOFError, OSError):
            self.alive = False
            return None
        if msg[0] == "died":
            self.deaths[msg[1]] = msg[2]
        return msg

    def spawn(self, n: int) -> list[tuple[int, Any]]:
        """n new workers: (pid, the parent's end of its pipe)."""
        import multiprocessing.connection as mpc
        from multiprocessing.reduction import recv_handle
        if not self.alive:
            raise RuntimeError("the worker nursery has ended")
        self.conn.send(("spawn", n))
        self.spawned += n
        out = []
        while len(out) < n:
            msg = self._message()
            if msg is None:
                raise RuntimeError("the worker nursery has ended")
            if msg[0] == "born":
                out.append((msg[1], mpc.Connection(recv_handle(self.conn))))
        return out

    def poll(self) -> None:
        """Read what the nursery said (workers that ended) without waiting."""
        while self.alive and self.conn.poll(0):
            self._message()

    def death(self, pid: int, wait: float = 2.0) -> int | None:
        """How worker `pid` ended, once the nursery has seen it end."""
        deadline = time.monotonic() + wait
        while pid not in self.deaths and self.alive:
            left = deadline - time.monotonic()
            if left <= 0 or not self.conn.poll(left):
                break
            self._message()
        return self.deaths.get(pid)

    def close(self, kill: bool = False) -> None:
        """End the nursery: it reaps its workers and exits. With `kill` (the run was broken
        off; the workers were killed), one that does not end within a second is killed too."""
        if self._conn is None:
            self._sock.close()
        else:
            self._conn.close()
        try:
            if kill and not self.spawned:      # no worker to reap: no need to wait for it
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            elif kill:
                deadline = time.monotonic() + 1.0
                while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                    if time.monotonic() > deadline:
                        os.kill(self.pid, signal.SIGKILL)
                        os.waitpid(self.pid, 0)
                        break
                    time.sleep(0.005)
            else:
                os.waitpid(self.pid, 0)
        except (ChildProcessError, ProcessLookupError):
            pass


_prestarted: Nursery | None = None


def prestart(prepare: Callable[[], None]) -> None:
    """Start the nursery for the next `run` now: it prepares while the caller goes on."""
    global _prestarted
    if _prestarted is None:
        _prestarted = Nursery(prepare)


def prestarted() -> bool:
    """Whether a nursery was started for the next `run`."""
    return _prestarted is not None


def discard_prestarted() -> None:
    global _prestarted
    if _prestarted is not None:
        _prestarted.close(kill=True)
        _prestarted = None


@dataclass
class _Slot:
    """One worker process, its pipe, and the inputs sent to it."""
    pid: int
    conn: Any
    queue: deque[int] = field(default_factory=deque)   # sent, not answered yet (answers keep order)
    started: float = 0.0                  # when the input at the head of the queue started


def _nursery_for(fn: Callable[[Any], Any], budget: Budget,
                 prepare: Callable[[], None] | None) -> Nursery:
    """The prestarted nursery when it can take this job, else a new one forked now."""
    global _prestarted
    early, _prestarted = _prestarted, None
    if early is not None:
        if early.alive and early.give(fn, budget, prepare):
            return early
        early.close(kill=True)
    return Nursery(prepare, (fn, budget))


def run(fn: Callable[[Any], Any], args: list[Any], *, workers: int | None = None,
        budget: Budget = Budget(), prepare: Callable[[], None] | None = None,
        cost: list[float] | None = None,
        group: list[str | None] | None = None) -> Iterator[tuple[int, Any]]:
    """Yield (index, result) as inputs finish; a result is fn's return value or `Failed`.

    Each worker has its own pipe, so the parent always knows which input a worker holds, even
    when the worker dies without a word. `prepare` runs once, in the nursery, before any
    worker is forked. Inputs go out costliest first (`cost`, a guess per input), so that no
    slow one is left for the end. Inputs of one `group` (inputs that need the same library,
    say) all go to one worker, first thing: only that worker pays for importing it, while the
    others take the rest."""
    if not args:
        return
    import multiprocessing.connection as mpc
    n = max(1, min(workers or os.cpu_count() or 1, len(args)))
    weight = cost if cost is not None and len(cost) == len(args) else [1.0] * len(args)
    # the costliest inputs first (longest processing time first): a slow input met at the end
    # would keep one worker busy while the others wait
    keys = group if group is not None and len(group) == len(args) else [None] * len(args)
    queues: dict[str | None, deque[int]] = {None: deque()}
    for i in sorted(range(len(args)), key=lambda i: -weight[i]):
        queues.setdefault(keys[i], deque()).append(i)
    owner: dict[str, _Slot] = {}
    nursery = _nursery_for(fn, budget, prepare)
    slots: list[_Slot] = []

    def spawn(k: int) -> None:
        for pid, conn in nursery.spawn(k):
            slot = _Slot(pid, conn)
            slots.append(slot)
            top_up(slot)

    def left() -> bool:
        return any(queues.values())

    def pick(slot: _Slot) -> int | None:
        """The next input for this worker: its own groups', then a group no worker has, then
        any other."""
        for key, q in queues.items():
            if key is not None and q and owner.get(key) is slot:
                return q.popleft()
        for key, q in queues.items():
            if key is not None and q and key not in owner:
                owner[key] = slot
                return q.popleft()
        return queues[None].popleft() if queues[None] else None

    def top_up(slot: _Slot) -> None:
        """Keep AHEAD inputs queued at the worker: it starts the next one without waiting for
        the parent to read an answer and send more (on two busy cores that wait is not short)."""
        while len(slot.queue) < AHEAD:
            task = pick(slot)
            if task is None:
                return
            if not slot.queue:
                slot.started = time.monotonic()
            slot.queue.append(task)
            slot.conn.send((task, args[task]))

    def retire(slot: _Slot, kill: bool) -> None:
        slots.remove(slot)
        for key in [k for k, s in owner.items() if s is slot]:
            del owner[key]
        if kill:
            try:
                os.kill(slot.pid, signal.SIGKILL)
            except OSError:
                pass
        slot.conn.close()

    done = 0
    clean = False
    try:
        spawn(n)
        while done < len(args):
            busy = [s for s in slots if s.queue]
            ready = mpc.wait([s.conn for s in busy] + ([nursery.conn] if nursery.alive else []),
                             timeout=0.2)
            if nursery.alive and nursery.conn in ready:
                nursery.poll()
            dead: list[_Slot] = []
            for slot in [s for s in busy if s.conn in ready]:
                try:
                    idx, out = slot.conn.recv()
                except (EOFError, OSError):
                    dead.append(slot)      # died mid-task
                    continue
                slot.queue.popleft()
                slot.started = time.monotonic()
                done += 1
                yield idx, out
                top_up(slot)
            now = time.monotonic()
            for slot in [s for s in slots if s.queue]:
                over = now - slot.started > budget.seconds
                if not over and slot not in dead:
                    continue
                task = slot.queue.popleft()
                for t in reversed(slot.queue):           # sent but never started: back in line
                    queues[keys[t]].appendleft(t)
                slot.queue.clear()
                retire(slot, kill=over)
                if over:
                    reason = f"took longer than {budget.seconds:g} s"
                else:
                    reason = (f"crashed the process reading it ({_death(nursery.death(slot.pid))}); "
                              "refusing it")
                done += 1
                yield task, Failed(reason)
                if left() and len(slots) < n:
                    spawn(1)
        clean = True
    finally:
        for slot in list(slots):
            try:
                slot.conn.send(None)
            except OSError:
                pass
            retire(slot, kill=not clean)
        nursery.close(kill=not clean)


def _death(code: int | None) -> str:
    if code is None:
        return "the way it ended is unknown"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
