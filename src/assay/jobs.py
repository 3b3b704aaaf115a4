"""Run a function over many inputs in worker processes, each input under a time and memory budget.

A worker that exceeds its time budget is killed and replaced; one that dies (a native library
crashing on a crafted file) is replaced too; either way the input gets an error result and the
run goes on.

Workers are forked by a *nursery*: one process forked from the caller, which runs `prepare`
(imports what the workers need) once and then forks every worker on request. Workers start
warm and share what the nursery imported; the caller itself imports none of it and never forks
beside its own threads (a progress bar's, say); a replacement is a fresh fork of a warm process.
A command line that knows early that it will need workers starts the nursery with `prestart`
before it imports its own libraries, so that both happen at once.

Messages between the processes are plain values (tuples, strings, numbers) in `marshal`'s
format: inputs and results must be such values. A function for a prestarted nursery is named
by a `Call` (module, function, arguments) instead of being sent."""

from __future__ import annotations

import marshal
import os
import signal
import socket
import struct
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


@dataclass(frozen=True)
class Call:
    """A worker function by name: `module:factory` called once with `args` (plain values) in
    the nursery returns the function each worker runs."""
    factory: str
    args: tuple[Any, ...] = ()

    def resolve(self) -> Callable[[Any], Any]:
        import importlib
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)(*self.args)


Work = Callable[[Any], Any] | Call


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
_LEN = struct.Struct("<I")


class _Channel:
    """Length-prefixed marshal messages over a stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, obj: Any) -> None:
        data = marshal.dumps(obj)
        self.sock.sendall(_LEN.pack(len(data)) + data)

    def ready(self) -> bool:
        """Whether a whole message is already buffered (then polling the socket would wait)."""
        return len(self.buf) >= 4 and len(self.buf) >= 4 + _LEN.unpack_from(self.buf)[0]

    def recv(self) -> Any:
        """The next message; EOFError when the other end has closed."""
        while not self.ready():
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk
        n = _LEN.unpack_from(self.buf)[0]
        msg = marshal.loads(self.buf[4:4 + n])
        del self.buf[:4 + n]
        return msg

    def close(self) -> None:
        self.sock.close()


def _worker(fn: Callable[[Any], Any], chan: _Channel, budget: tuple[float, int | None]) -> None:
    os.environ[ISOLATED] = "1"
    _limit_memory(budget[1])
    while True:
        try:
            item = chan.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        idx, arg = item
        try:
            out: Any = (idx, True, fn(arg))
        except MemoryError:
            out = (idx, False, "ran out of its memory budget")
        except BaseException as exc:  # the function is expected to catch its own errors
            out = (idx, False, f"internal error: {type(exc).__name__}: {exc}")
        try:
            chan.send(out)
        except ValueError as exc:     # not a plain value
            chan.send((idx, False, f"internal error: result cannot be sent ({exc})"))


def _send_control(sock: socket.socket, msg: Any, fds: list[int] | None = None) -> None:
    data = marshal.dumps(msg)
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


CONTROL_BYTES = 1 << 16        # the largest message to or from the nursery


def _recv_control(sock: socket.socket) -> tuple[Any, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(sock, CONTROL_BYTES, 4)
    if not data:
        raise EOFError
    return marshal.loads(data), fds


def _nursery(ctl: socket.socket, prepare: Callable[[], None] | None,
             job: tuple[Callable[[Any], Any], tuple[float, int | None]] | None) -> None:
    """The nursery's life: prepare, then fork workers when asked, and report the ones that end.

    Messages in: ("job", factory, args, seconds, memory) and ("spawn", n). Out: ("born", pid)
    carrying the parent's end of the new worker's socket, and ("died", pid, code)."""
    import gc
    import select

    def guarded(f: Callable[[], None] | None) -> None:
        try:
            if f is not None:
                f()
        except BaseException:     # a worker imports lazily whatever this did not
            pass

    guarded(prepare)
    children: set[int] = set()
    poller = select.poll()
    poller.register(ctl, select.POLLIN)
    while True:
        msg = None
        if poller.poll(REAP_S * 1000 if children else None):
            try:
                msg, _fds = _recv_control(ctl)
            except (EOFError, OSError):       # the parent is done (or gone): so are the workers
                for pid in children:
                    try:
                        os.waitpid(pid, 0)
                    except ChildProcessError:
                        pass
                return
        if msg is not None:
            if msg[0] == "job":
                try:
                    job = (Call(msg[1], tuple(msg[2])).resolve(), (msg[3], msg[4]))
                except BaseException as exc:   # the parent hears of it when it asks for workers
                    job = None
                    _send_control(ctl, ("failed", f"{type(exc).__name__}: {exc}"))
            elif msg[0] == "spawn" and job is not None:
                gc.freeze()           # workers neither walk nor copy what exists now
                for _ in range(msg[1]):
                    mine, theirs = socket.socketpair()
                    pid = os.fork()
                    if pid == 0:
                        try:
                            ctl.close()
                            mine.close()
                            _worker(job[0], _Channel(theirs), job[1])
                        finally:
                            os._exit(0)
                    theirs.close()
                    children.add(pid)
                    _send_control(ctl, ("born", pid), [mine.fileno()])
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
            _send_control(ctl, ("died", pid, os.waitstatus_to_exitcode(status)))


class Nursery:
    """The parent's handle on a nursery process (see the module's docstring)."""

    def __init__(self, prepare: Callable[[], None] | None = None,
                 job: tuple[Callable[[Any], Any], Budget] | None = None) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)    # the parent answers Ctrl-C
                mine.close()
                _nursery(theirs, prepare,
                         (job[0], (job[1].seconds, job[1].memory_bytes)) if job else None)
            finally:
                os._exit(0)
        theirs.close()
        self.pid = pid
        self.ctl = mine
        self.deaths: dict[int, int] = {}
        self.alive = True
        self.spawned = 0
        self.failure = ""

    def fileno(self) -> int:
        return self.ctl.fileno()

    def give(self, call: Call, budget: Budget) -> bool:
        """Hand over the function the workers run; False when it cannot be sent."""
        try:
            msg = marshal.dumps(("job", call.factory, call.args, budget.seconds, budget.memory_bytes))
            if len(msg) > CONTROL_BYTES:
                return False
            self.ctl.send(msg)
        except (ValueError, OSError):
            return False
        return True

    def _message(self) -> tuple[Any, list[int]] | None:
        try:
            msg, fds = _recv_control(self.ctl)
        except (EOFError, OSError):
            self.alive = False
            return None
        if msg[0] == "died":
            self.deaths[msg[1]] = msg[2]
        elif msg[0] == "failed":
            self.failure = msg[1]
        return msg, fds

    def spawn(self, n: int) -> list[tuple[int, _Channel]]:
        """n new workers: (pid, the parent's end of its channel)."""
        if not self.alive:
            raise RuntimeError("the worker nursery has ended")
        _send_control(self.ctl, ("spawn", n))
        self.spawned += n
        out = []
        while len(out) < n:
            got = self._message()
            if got is None or self.failure:
                raise RuntimeError(f"the worker nursery could not start workers: "
                                   f"{self.failure or 'it has ended'}")
            msg, fds = got
            if msg[0] == "born":
                out.append((msg[1], _Channel(socket.socket(fileno=fds[0]))))
        return out

    def poll(self) -> None:
        """Read what the nursery said (workers that ended) without waiting."""
        import select
        while self.alive and select.select([self.ctl], [], [], 0)[0]:
            self._message()

    def death(self, pid: int, wait: float = 2.0) -> int | None:
        """How worker `pid` ended, once the nursery has seen it end."""
        import select
        deadline = time.monotonic() + wait
        while pid not in self.deaths and self.alive:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.ctl], [], [], left)[0]:
                break
            self._message()
        return self.deaths.get(pid)

    def close(self, kill: bool = False) -> None:
        """End the nursery: it reaps its workers and exits. With `kill` (the run was broken
        off; the workers were killed), one that does not end within a second is killed too."""
        self.ctl.close()
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
    """Start the nursery for the next `run` now: it prepares while the caller goes on. That
    run must name its function with a `Call`."""
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
    """One worker process, its channel, and the inputs sent to it."""
    pid: int
    chan: _Channel
    queue: deque[int] = field(default_factory=deque)   # sent, not answered yet (answers keep order)
    started: float = 0.0                  # when the input at the head of the queue started


def _nursery_for(fn: Work, budget: Budget, prepare: Callable[[], None] | None) -> Nursery:
    """The prestarted nursery when it can take this job, else a new one forked now."""
    global _prestarted
    early, _prestarted = _prestarted, None
    if early is not None:
        if isinstance(fn, Call) and early.alive and early.give(fn, budget):
            return early
        early.close(kill=True)
    return Nursery(prepare, (fn.resolve() if isinstance(fn, Call) else fn, budget))


def run(fn: Work, args: list[Any], *, workers: int | None = None,
        budget: Budget = Budget(), prepare: Callable[[], None] | None = None,
        cost: list[float] | None = None,
        group: list[str | None] | None = None) -> Iterator[tuple[int, Any]]:
    """Yield (index, result) as inputs finish; a result is fn's return value or `Failed`.

    Each worker has its own channel, so the parent always knows which input a worker holds,
    even when the worker dies without a word. `prepare` runs once, in the nursery, before any
    worker is forked (a prestarted nursery ran its own). Inputs go out costliest first
    (`cost`, a guess per input), so that no slow one is left for the end. Inputs of one
    `group` (inputs that need the same library, say) all go to one worker, first thing: only
    that worker pays for importing it, while the others take the rest."""
    if not args:
        return
    import select
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
    slots: dict[int, _Slot] = {}           # by channel file descriptor
    poller = select.poll()
    poller.register(nursery.fileno(), select.POLLIN)

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
            slot.chan.send((task, args[task]))

    def spawn(k: int) -> None:
        for pid, chan in nursery.spawn(k):
            slot = _Slot(pid, chan)
            slots[chan.fileno()] = slot
            poller.register(chan.fileno(), select.POLLIN)
            top_up(slot)

    def retire(slot: _Slot, kill: bool) -> None:
        del slots[slot.chan.fileno()]
        poller.unregister(slot.chan.fileno())
        for key in [k for k, s in owner.items() if s is slot]:
            del owner[key]
        if kill:
            try:
                os.kill(slot.pid, signal.SIGKILL)
            except OSError:
                pass
        slot.chan.close()

    done = 0
    clean = False
    try:
        spawn(n)
        while done < len(args):
            ready = [s for s in slots.values() if s.chan.ready()]
            events = [] if ready else poller.poll(200)
            dead: list[_Slot] = []
            for fd, _ev in events:
                if fd == nursery.fileno():
                    nursery.poll()
                    if not nursery.alive:
                        poller.unregister(fd)
                elif fd in slots:
                    ready.append(slots[fd])
            for slot in ready:
                if not slot.queue:                 # an idle worker says nothing: it ended
                    retire(slot, kill=False)
                    if left() and len(slots) < n:
                        spawn(1)
                    continue
                try:
                    idx, ok, out = slot.chan.recv()
                except (EOFError, OSError, ValueError):
                    dead.append(slot)      # died mid-task (or said something unreadable)
                    continue
                slot.queue.popleft()
                slot.started = time.monotonic()
                done += 1
                yield idx, (out if ok else Failed(out))
                top_up(slot)
            now = time.monotonic()
            for slot in [s for s in slots.values() if s.queue]:
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
        for slot in list(slots.values()):
            try:
                slot.chan.send(None)
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
