"""An emulated pickle machine: every opcode of protocols 0-5, never importing or calling anything.

The machine runs a pickle as the real unpickler would, but `GLOBAL`/`STACK_GLOBAL` push a
symbolic `Global`, `REDUCE`/`NEWOBJ`/`INST`/`OBJ` push a symbolic `Call`, and `BUILD` records
the state on its target. Every import and every call is recorded with its byte offset, so the
scan rules can judge what a real load would have done. Everything is bounded by `Limits`.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay.errors import AssayError, FormatError, LimitError
from assay.formats.pickle.symbols import Call, Extension, Global, Persistent, PickleBuffer, Raw
from assay.limits import Limits
from assay.model.artifact import Location, Observation

RAW_THRESHOLD = 4096


class _Mark:
    def __repr__(self) -> str:
        return "MARK"


MARK = _Mark()


@dataclass
class PickleResult:
    """One pickle run on the emulated machine: its value, offsets, and what it would import
    and call."""

    value: Any
    start: int
    end: int                        # offset just past STOP
    protocol: int
    imports: list[Global] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    persistent: list[Persistent] = field(default_factory=list)
    opcodes: int = 0
    opcodes_ext: int = 0            # EXT1/EXT2/EXT4 opcodes seen

    nested: int = 0                 # nesting depth (0: the file's own pickle)
    limits: Limits | None = None

    def observations(self, file: str, member: str | None = None) -> list[Observation]:
        """Every import and call, with effective call targets; nested pickles followed."""
        from assay.formats.pickle import facts
        out = []
        for g in self.imports:
            out.append(Observation("pickle.import", g.qualname, Location(file, member, g.offset),
                                   {"module": g.module, "name": g.name, "nested": self.nested}))
        for c in self.calls:
            out.append(facts.call_observation(c, file, member, self.nested))
        if self.opcodes_ext:
            out.append(Observation("pickle.extension", f"{self.opcodes_ext} extension-registry codes",
                                   Location(file, member, self.start), {"nested": self.nested}))
        lim = self.limits or Limits()
        if self.nested < lim.max_nesting:
            for c, payload in facts.nested_payloads(self.calls):
                out.append(Observation("pickle.nested", f"{len(payload)}-byte pickle passed to "
                                       f"{facts.call_target(c)[0]}", Location(file, member, c.offset),
                                       {"nested": self.nested + 1}))
                try:
                    inner = PickleMachine(payload, file, member=member, limits=lim).run()
                except AssayError as exc:
                    out.extend(exc.observations)
                    continue
                inner.nested = self.nested + 1
                inner.limits = lim
                out.extend(inner.observations(file, member))
        return out


# Hook run on BUILD: may consume bytes that follow the opcode (joblib writes arrays inline).
BuildHook = Callable[[Call, "PickleMachine"], None]


class PickleMachine:
    def __init__(self, data: memoryview | bytes, path: str, *, member: str | None = None,
                 base: int = 0, limits: Limits | None = None,
                 build_hook: BuildHook | None = None) -> None:
        self.data = memoryview(data)
        self.path = path
        self.member = member
        self.base = base            # absolute file offset of data[0], for Raw spans
        self.limits = limits or Limits()
        self.build_hook = build_hook
        self.pos = 0

    # -- reading -----------------------------------------------------------------------------
    def _err(self, msg: str, at: int | None = None) -> FormatError:
        return FormatError(self.path, f"pickle: {msg}", member=self.member,
                           offset=self.base + (self.pos if at is None else at))

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise LimitError(self.path, f"pickle: {what} needs {n} bytes but only "
                             f"{len(self.data) - self.pos} remain", member=self.member,
                             offset=self.base + self.pos)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def _int(self, n: int, signed: bool = False) -> int:
        return int.from_bytes(self.take(n, "integer"), "little", signed=signed)

    def _line(self) -> bytes:
        limit = min(len(self.data), self.pos + self.limits.max_string_bytes)
        at = self.pos
        while at < limit:
            chunk = bytes(self.data[at:min(at + 4096, limit)])
            i = chunk.find(b"\n")
            if i >= 0:
                line = bytes(self.data[self.pos:at + i])
                self.pos = at + i + 1
                return line
            at += len(chunk)
        raise self._err("text argument has no end of line")

    def _bytes(self, n: int) -> bytes | Raw:
        if n > self.limits.max_string_bytes and n > len(self.data):
            raise LimitError(self.path, f"pickle: {n}-byte string exceeds the input",
                             member=self.member, offset=self.base + self.pos)
        start = self.pos
        view = self.take(n, "string")
        if n >= RAW_THRESHOLD:
            return Raw(view, self.base + start)
        return bytes(view)

    # -- running -----------------------------------------------------------------------------
    def run(self, start: int = 0) -> PickleResult:
        """Run one pickle from `start` to its STOP and return its symbolic value.

        When the pickle is malformed, the FormatError raised carries in `observations` the
        imports and calls seen before the fault, so a scan still sees what a load would do."""
        res = PickleResult(None, self.base + start, 0, 0, limits=self.limits)
        try:
            return self._run(start, res)
        except AssayError as exc:
            exc.observations.extend(res.observations(self.path, self.member))
            raise

    def _run(self, start: int, res: PickleResult) -> PickleResult:
        self.pos = start
        lim = self.limits
        stack: list[Any] = []
        marks: list[int] = []
        memo: dict[int, Any] = {}
        ops = 0

        def pop() -> Any:
            if not stack or (marks and len(stack) <= marks[-1]):
                raise self._err("stack underflow", op_at)
            return stack.pop()

        def pop_mark() -> list[Any]:
            if not marks:
                raise self._err("no MARK on the stack", op_at)
            m = marks.pop()
            items = stack[m:]
            del stack[m:]
            return items

        def top() -> Any:
            if not stack or (marks and len(stack) <= marks[-1]):
                raise self._err("stack underflow", op_at)
            return stack[-1]

        def push(v: Any) -> None:
            if len(stack) >= lim.max_pickle_stack:
                raise LimitError(self.path, "pickle: stack deeper than the limit",
                                 member=self.member, offset=self.base + op_at)
            stack.append(v)

        def memo_put(idx: int, v: Any) -> None:
            if idx not in memo and len(memo) >= lim.max_pickle_memo:
                raise LimitError(self.path, "pickle: memo larger than the limit",
                                 member=self.member, offset=self.base + op_at)
            memo[idx] = v

        def memo_get(idx: int) -> Any:
            if idx not in memo:
                raise self._err(f"memo key {idx} was never stored", op_at)
            return memo[idx]

        def make_global(module: Any, name: Any) -> Global:
            if not isinstance(module, str) or not isinstance(name, str):
                raise self._err("STACK_GLOBAL operands are not strings", op_at)
            g = Global(module, name, self.base + op_at)
            res.imports.append(g)
            return g

        def call(func: Any, args: Any, kind: str, kwargs: dict | None = None) -> Call:
            if not isinstance(args, tuple):
                args = tuple(args) if isinstance(args, list) else (args,)
            c = Call(func, args, kind, self.base + op_at, kwargs)
            res.calls.append(c)
            return c

        def set_items(target: Any, pairs: list[Any]) -> None:
            if len(pairs) % 2:
                raise self._err("SETITEMS with an odd number of items", op_at)
            for k, v in zip(pairs[0::2], pairs[1::2]):
                if isinstance(target, dict):
                    try:
                        target[k] = v
                    except TypeError:
                        raise self._err("unhashable dictionary key", op_at) from None
                elif isinstance(target, Call):
                    target.items.append((k, v))
                else:
                    raise self._err(f"SETITEM on a {type(target).__name__}", op_at)

        def append_items(target: Any, items: list[Any]) -> None:
            if isinstance(target, list):
                target.extend(items)
            elif isinstance(target, Call):
                target.appended.extend(items)
            elif isinstance(target, set):
                for it in items:
                    try:
                        target.add(it)
                    except TypeError:
                        raise self._err("unhashable set item", op_at) from None
            else:
                raise self._err(f"APPEND on a {type(target).__name__}", op_at)

        data = self.data
        n = len(data)

        def byte() -> int:      # a 1-byte argument: the commonest, read without slicing
            if self.pos >= n:
                raise LimitError(self.path, "pickle: integer needs 1 bytes but only 0 remain",
                                 member=self.member, offset=self.base + self.pos)
            self.pos += 1
            return data[self.pos - 1]

        # The opcodes that make up most of real pickles (small ints, tuples, memo traffic, as
        # in TorchScript's debug tables) run first, reading at a local position; the others
        # go through the general chain below, which keeps the position in `self.pos`.
        pos = self.pos
        max_ops, max_stack, max_memo = lim.max_pickle_ops, lim.max_pickle_stack, lim.max_pickle_memo
        append = stack.append
        while True:
            if pos >= n:
                self.pos = pos
                raise self._err("pickle ends without STOP")
            op_at = pos
            op = data[pos]
            pos += 1
            ops += 1
            if ops > max_ops:
                raise LimitError(self.path, "pickle: more opcodes than the limit",
                                 member=self.member, offset=self.base + op_at)
            room = len(stack) < max_stack      # else the general chain reports the limit
            if op == 0x4B and pos < n and room:             # BININT1
                append(data[pos])
                pos += 1
                continue
            if op == 0x4D and pos + 2 <= n and room:        # BININT2
                append(data[pos] | data[pos + 1] << 8)
                pos += 2
                continue
            if op == 0x87 and len(stack) - (marks[-1] if marks else 0) >= 3:    # TUPLE3
                t3 = (stack[-3], stack[-2], stack[-1])
                del stack[-3:]
                append(t3)
                continue
            if op == 0x68 and pos < n and room and data[pos] in memo:       # BINGET
                append(memo[data[pos]])
                pos += 1
                continue
            if op == 0x71 and pos < n and stack and not (marks and len(stack) <= marks[-1]) \
                    and (data[pos] in memo or len(memo) < max_memo):            # BINPUT
                memo[data[pos]] = stack[-1]
                pos += 1
                continue
            if (op == 0x8C or op == 0x58) and room:         # SHORT_BINUNICODE, BINUNICODE
                head = 1 if op == 0x8C else 4
                if pos + head <= n:
                    k = data[pos] if head == 1 else int.from_bytes(data[pos:pos + 4], "little")
                    if pos + head + k <= n:
                        try:
                            append(str(data[pos + head:pos + head + k], "utf-8", "surrogatepass"))
                        except UnicodeDecodeError:
                            raise self._err("string is not valid UTF-8", op_at) from None
                        pos += head + k
                        continue
            if op == 0x94 and stack and not (marks and len(stack) <= marks[-1]) \
                    and len(memo) < max_memo:                   # MEMOIZE
                memo[len(memo)] = stack[-1]
                continue
            if op == 0x28:                                  # MARK
                marks.append(len(stack))
                continue
            if op == 0x74 and marks:                        # TUPLE
                m = marks.pop()
                t = tuple(stack[m:])
                del stack[m:]
                append(t)
                continue
            self.pos = pos
            c = chr(op)
            if c == "q":
                memo_put(byte(), top())
            elif c == "h":
                push(memo_get(byte()))
            elif c == "\x94":
                memo_put(len(memo), top())
            elif c == "K":
                push(byte())
            elif c in "X\x8c\x8d":
                k = byte() if c == "\x8c" else self._int(4 if c == "X" else 8)
                raw = self.take(k, "unicode string")
                try:
                    push(str(raw, "utf-8", "surrogatepass"))
                except UnicodeDecodeError:
                    raise self._err("string is not valid UTF-8", op_at) from None
            elif c == "(":
                marks.append(len(stack))
            elif c == "t":
                push(tuple(pop_mark()))
            elif c == ")":
                push(())
            elif c == "\x85":
                push((pop(),))
            elif c == "\x86":
                b2 = pop()
                push((pop(), b2))
            elif c == "\x87":
                c3 = pop()
                b3 = pop()
                push((pop(), b3, c3))
            elif c == "R":
                args = pop()
                func = pop()
                push(call(func, args, "reduce"))
            elif c == "r":
                memo_put(self._int(4), top())
            elif c == "j":
                push(memo_get(self._int(4)))
            elif c == "M":
                push(self._int(2))
            elif c == "J":
                push(self._int(4, signed=True))
            elif c == "\x81":
                args = pop()
                cls = pop()
                push(call(cls, args, "newobj"))
            elif c == "b":
                state = pop()
                target = top()
                if isinstance(target, Call):
                    target.state = state
                    target.built = True
                    if self.build_hook is not None:
                        self.build_hook(target, self)
                elif isinstance(target, dict) and isinstance(state, dict):
                    target.update(state)
                else:
                    # BUILD on a plain value: a real unpickler would call its __setstate__
                    res.calls.append(Call(Global("builtins", type(target).__name__, op_at),
                                          (state,), "build", self.base + op_at))
            elif c == "}":
                push({})
            elif c == "]":
                push([])
            elif c == "s":
                v = pop()
                k2 = pop()
                set_items(top(), [k2, v])
            elif c == "u":
                items = pop_mark()
                set_items(top(), items)
            elif c == "a":
                v = pop()
                append_items(top(), [v])
            elif c in "e\x90":
                items = pop_mark()
                append_items(top(), items)
            elif c == "N":
                push(None)
            elif c == "\x88":
                push(True)
            elif c == "\x89":
                push(False)
            elif c == "\x93":
                name = pop()
                module = pop()
                push(make_global(module, name))
            elif c == "c":
                module = self._line().decode("utf-8", "replace")
                name = self._line().decode("utf-8", "replace")
                push(make_global(module, name))
            elif c == "Q":
                pid = Persistent(pop(), self.base + op_at)
                res.persistent.append(pid)
                push(pid)
            elif c == "G":
                import struct
                push(struct.unpack(">d", self.take(8, "BINFLOAT"))[0])
            elif c == ".":  # STOP
                res.value = pop() if stack else None
                res.end = self.base + self.pos
                res.opcodes = ops
                return res
            elif c == "\x80":  # PROTO
                res.protocol = self._int(1)
            elif c == "\x95":  # FRAME
                self._int(8)
            elif c == "0":
                if stack and not (marks and len(stack) <= marks[-1]):
                    stack.pop()
                else:
                    pop_mark()
            elif c == "1":
                pop_mark()
            elif c == "2":
                push(top())
            elif c == "I":
                line = self._line()
                if line == b"01":
                    push(True)
                elif line == b"00":
                    push(False)
                else:
                    push(self._parse_int(line, op_at))
            elif c == "L":
                line = self._line()
                push(self._parse_int(line[:-1] if line.endswith(b"L") else line, op_at))
            elif c == "\x8a":
                k = self._int(1)
                push(int.from_bytes(self.take(k, "LONG1"), "little", signed=True))
            elif c == "\x8b":
                k = self._int(4, signed=True)
                if k < 0 or k > 1 << 20:
                    raise self._err(f"LONG4 length {k} is out of range", op_at)
                push(int.from_bytes(self.take(k, "LONG4"), "little", signed=True))
            elif c == "F":
                line = self._line()
                try:
                    push(float(line))
                except ValueError:
                    raise self._err("FLOAT argument is not a number", op_at) from None
            elif c == "S":
                push(self._text_string(self._line(), op_at))
            elif c == "T":
                k = self._int(4, signed=True)
                if k < 0:
                    raise self._err("negative BINSTRING length", op_at)
                push(self._bytes_as_str(self._bytes(k)))
            elif c == "U":
                push(self._bytes_as_str(self._bytes(self._int(1))))
            elif c == "V":
                try:
                    push(self._line().decode("raw_unicode_escape"))
                except UnicodeDecodeError:
                    raise self._err("bad escape in UNICODE", op_at) from None
            elif c in "BC\x8e\x96":
                k = self._int({"B": 4, "C": 1, "\x8e": 8, "\x96": 8}[c])
                b = self._bytes(k)
                push(bytearray(b.tobytes() if isinstance(b, Raw) else b) if c == "\x96" and
                     not isinstance(b, Raw) else b)
            elif c == "\x97":
                push(PickleBuffer(len(res.persistent), self.base + op_at))
            elif c == "\x98":
                pass  # READONLY_BUFFER: no-op on our symbolic buffer
            elif c == "l":
                push(list(pop_mark()))
            elif c == "d":
                items = pop_mark()
                d: dict = {}
                set_items(d, items)
                push(d)
            elif c == "\x8f":
                push(set())
            elif c == "\x91":
                items = pop_mark()
                try:
                    push(frozenset(items))
                except TypeError:
                    raise self._err("unhashable frozenset item", op_at) from None
            elif c == "p":
                line = self._line()
                memo_put(self._parse_int(line, op_at), top())
            elif c == "g":
                push(memo_get(self._parse_int(self._line(), op_at)))
            elif c == "i":
                module = self._line().decode("utf-8", "replace")
                name = self._line().decode("utf-8", "replace")
                cls = make_global(module, name)
                push(call(cls, tuple(pop_mark()), "inst"))
            elif c == "o":
                items = pop_mark()
                if not items:
                    raise self._err("OBJ without a class", op_at)
                push(call(items[0], tuple(items[1:]), "obj"))
            elif c == "\x92":
                kwargs = pop()
                args = pop()
                cls = pop()
                push(call(cls, args, "newobj", kwargs if isinstance(kwargs, dict) else None))
            elif c == "P":
                pid = Persistent(self._line().decode("ascii", "replace"), self.base + op_at)
                res.persistent.append(pid)
                push(pid)
            elif c in "\x82\x83\x84":
                code = self._int({"\x82": 1, "\x83": 2, "\x84": 4}[c])
                res.opcodes_ext += 1
                push(Extension(code, self.base + op_at))
            else:
                raise self._err(f"unknown opcode 0x{op:02x}", op_at)
            pos = self.pos

    def _parse_int(self, line: bytes, at: int) -> int:
        try:
            return int(line)
        except ValueError:
            raise self._err(f"bad integer literal {line[:40]!r}", at) from None

    def _text_string(self, line: bytes, at: int) -> Any:
        if len(line) >= 2 and line[0] == line[-1] and line[:1] in (b"'", b'"'):
            try:
                return self._bytes_as_str(codecs.escape_decode(line[1:-1])[0])
            except ValueError:
                raise self._err("bad escape in STRING", at) from None
        raise self._err("STRING argument is not quoted", at)

    @staticmethod
    def _bytes_as_str(b: bytes | Raw) -> Any:
        # Python 2 str: the default unpickler decodes as ASCII; keep bytes when it can't.
        if isinstance(b, Raw):
            return b
        try:
            return b.decode("ascii")
        except UnicodeDecodeError:
            return b


def run_pickle(data: memoryview | bytes, path: str, *, member: str | None = None, base: int = 0,
               start: int = 0, limits: Limits | None = None,
               build_hook: BuildHook | None = None) -> PickleResult:
    return PickleMachine(data, path, member=member, base=base, limits=limits,
                         build_hook=build_hook).run(start)


def looks_like_pickle(head: bytes) -> bool:
    """Protocol 2+ header, or a protocol 0/1 stream starting with a plausible opcode."""
    if len(head) >= 2 and head[0] == 0x80 and 0 <= head[1] <= 5:
        return True
    return False
