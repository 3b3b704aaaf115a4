"""Chat-template checks with Jinja2's own parser: the template is parsed, never compiled or rendered.

`analyse_template(text)` walks the syntax tree Jinja builds and returns `TemplateIssue`s:

TEMPLATE001 (reaches Python internals): a dunder attribute (`__class__`, `__globals__`, ...) or an
interpreter-internal one (`mro`, `gi_frame`, `f_globals`, ...) read with `.name`, `[...]`,
`|attr(...)` or an attribute-name filter argument; a dunder name built from constant pieces
(`'__cla' ~ 'ss__'`, `['__','class','__']|join`, `'%c'|format(95)`, `'__ssalc__'|reverse`, set
variables holding pieces); a `str.format` field that walks into one (`'{0.__class__}'`).
TEMPLATE002 (leaves the intended surface): `self`; the Jinja globals `cycler`, `joiner`, `lipsum`,
`namespace`, `range`, `dict` (and the runtime's `raise_exception`, `strftime_now`) used other than
by calling them; web-framework globals (`config`, `request`, ...) walked into; private attributes
(`_TemplateReference__context`); attribute names computed at render time (`|attr(name)`,
`|map(attribute=x)`, a subscript assembled from string pieces); `%c` character building;
`include` / `import` / `extends`; a template too large or too complex to analyse.

Constant strings are folded over the tree by this module itself (bounded sets of possible values,
bounded lengths); nothing is ever evaluated by Jinja. A template that is not valid Jinja raises
`UnparsableTemplate`. The parser accepts what transformers accepts (`loopcontrols`, the
`{% generation %}` tag) plus `{% do %}`, so that those bodies are analysed too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Any, ClassVar

from jinja2 import TemplateSyntaxError, nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

INTERNAL_ATTRS = frozenset({
    "mro", "func_globals", "func_code", "func_closure", "func_defaults", "im_func", "im_self",
    "im_class", "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await",
    "ag_frame", "ag_code", "ag_await", "f_globals", "f_locals", "f_builtins", "f_back", "f_code",
    "tb_frame", "tb_next", "co_code", "co_consts", "co_names",
})
JINJA_CALLABLES = frozenset({"cycler", "joiner", "lipsum", "namespace", "range", "dict",
                             "raise_exception", "strftime_now"})
WEB_GLOBALS = frozenset({"config", "request", "session", "g", "url_for", "get_flashed_messages"})
# filter -> position of its attribute-name argument (None: keyword `attribute=` only)
ATTRIBUTE_FILTERS: dict[str, int | None] = {
    "attr": 0, "selectattr": 0, "rejectattr": 0, "groupby": 0, "sum": 0, "unique": 1, "min": 1,
    "max": 1, "join": 1, "sort": 2, "map": None,
}
TEMPLATE_LOADS = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)

MAX_NODES = 200_000      # syntax nodes analysed; a 1 MB template of dense expressions has fewer
MAX_DEPTH = 80           # nesting followed when folding constants
MAX_VALUES = 16          # possible values kept for one expression
MAX_TEXT = 4096          # longest folded string
MAX_ITEMS = 64           # longest folded list
MAX_WIDTH = 64           # largest width or precision in a folded format
MAX_ISSUES = 200         # issues listed for one template

_FIELD = re.compile(r"\{([^{}]*)\}")
_WORD = re.compile(r"\w+")
_PERCENT = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)", re.S)
_PERCENT_CHAR = re.compile(r"%[-#0 +]*(?:[1-9]\d*)?(?:\.\d*)?c")
_BRACE = re.compile(r"\{\{|\}\}|\{(\d*)\}|[{}]")
_BRACE_CHAR = re.compile(r"\w*(?:![rsa])?:(?:.?[<>=^])?[-+ ]?#?0?\d{0,3}[,_]?(?:\.\d{1,3})?c")

Values = frozenset[Any]


def _dunder(name: str) -> bool:
    """`__name__`-shaped: what Python uses for its internals (regex-free: no backtracking)."""
    return len(name) > 4 and name[:2] == "__" == name[-2:] and name.isidentifier() \
        and name.strip("_") != ""


def _mangled(name: str) -> bool:
    """`_Class__attr`: a private attribute as Python stores it."""
    return name[:1] == "_" and name[1:2].isalpha() and "__" in name[2:-1] and name.isidentifier()


def _internal(name: str) -> bool:
    return _dunder(name) or name in INTERNAL_ATTRS


def _short(name: str) -> str:
    return repr(name if len(name) <= 60 else name[:57] + "...")


def _format_fields(text: str) -> Iterator[str]:
    return (m.group(1) for m in _FIELD.finditer(text)) if "{" in text else iter(())


class UnparsableTemplate(Exception):
    """The template is not valid Jinja (or Jinja's parser gave up on it): it cannot be analysed."""


@dataclass(frozen=True)
class TemplateIssue:
    """One problem found in a template: rule, message, line and snippet."""

    rule: str
    message: str
    line: int | None
    snippet: str


# -- parsing ------------------------------------------------------------------------------------
class _Generation(Extension):
    """transformers' `{% generation %}...{% endgeneration %}` (assistant-mask marker), parsed only."""

    tags: ClassVar[set[str]] = {"generation"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[
        "jinja2.ext.loopcontrols", "jinja2.ext.do", _Generation])


def _parse(text: str) -> nodes.Template:
    try:
        return _environment().parse(text)
    except TemplateSyntaxError as exc:
        raise UnparsableTemplate(f"line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise UnparsableTemplate("template nests too deeply for the parser") from None
    except (ValueError, OverflowError, MemoryError) as exc:   # e.g. an integer literal too long
        raise UnparsableTemplate(f"parser failed: {type(exc).__name__}: {exc}") from None


# -- constant folding ---------------------------------------------------------------------------
def _text(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    return str(v) if isinstance(v, int) else None


def _bounded(v: Any) -> Any:
    if isinstance(v, str | tuple) and len(v) > (MAX_TEXT if isinstance(v, str) else MAX_ITEMS):
        return None
    return v


def _percent(fmt: Any, args: Any) -> str | None:
    """`fmt % args` for constants, refusing mappings, `*` and large widths (no huge strings)."""
    if not isinstance(fmt, str):
        return None
    for m in _PERCENT.finditer(fmt):
        key, width, prec = m.group(1), m.group(2) or "", m.group(3) or ""
        if key or "*" in width + prec or any(len(x) > 2 or (x and int(x) > MAX_WIDTH) for x in (width, prec)):
            return None
    try:
        return fmt % (args if isinstance(args, tuple) else (args,))
    except (TypeError, ValueError, OverflowError):
        return None


def _brace_format(fmt: Any, *args: Any) -> str | None:
    """`fmt.format(*args)` for plain `{}` / `{0}` fields only; anything richer is not folded."""
    if not isinstance(fmt, str):
        return None
    out, auto = [], 0
    for m in _BRACE.finditer(fmt):
        token = m.group(0)
        if token in ("{{", "}}"):
            out.append((m.start(), m.end(), token[0]))
        elif token in ("{", "}"):
            return None
        else:
            index = int(m.group(1)) if m.group(1) else auto
            auto += 1
            if index >= len(args) or _text(args[index]) is None:
                return None
            out.append((m.start(), m.end(), _text(args[index])))
    pieces, pos = [], 0
    for start, end, repl in out:
        pieces += [fmt[pos:start], repl]
        pos = end
    return "".join(pieces) + fmt[pos:]


def _join(v: Any, sep: Any = "") -> str | None:
    items = tuple(v) if isinstance(v, str | tuple) else None
    if items is None or not isinstance(sep, str) or any(_text(i) is None for i in items):
        return None
    return sep.join(_text(i) or "" for i in items)


def _replace(v: Any, old: Any, new: Any, count: Any = -1) -> str | None:
    if not all(isinstance(x, str) for x in (v, old, new)) or not isinstance(count, int):
        return None
    hits = v.count(old) if count < 0 else min(count, v.count(old))
    return None if len(v) + hits * (len(new) - len(old)) > MAX_TEXT else v.replace(old, new, count)


def _pad(method: str) -> Callable[..., str | None]:
    def pad(v: Any, width: Any, fill: Any = " ") -> str | None:
        ok = isinstance(v, str) and isinstance(width, int) and width <= MAX_WIDTH and isinstance(fill, str)
        return getattr(v, method)(width, fill) if ok else None
    return pad


def _str_op(method: str) -> Callable[..., str | None]:
    def op(v: Any, *args: Any) -> str | None:
        if not isinstance(v, str) or not all(isinstance(a, str) for a in args):
            return None
        try:
            return getattr(v, method)(*args)
        except (TypeError, ValueError):
            return None
    return op


def _split(v: Any, sep: Any = None) -> tuple[str, ...] | None:
    if not isinstance(v, str) or not (sep is None or (isinstance(sep, str) and sep)):
        return None
    return tuple(v.split(sep))


def _reverse(v: Any) -> Any:
    return v[::-1] if isinstance(v, str | tuple) else None


def _edge(index: int) -> Callable[[Any], Any]:
    return lambda v: v[index] if isinstance(v, str | tuple) and v else None


FILTER_OPS: dict[str, Callable[..., Any]] = {
    "join": _join, "replace": _replace, "format": lambda f, *a: _percent(f, a),
    "reverse": _reverse, "first": _edge(0), "last": _edge(-1),
    "list": lambda v: tuple(v) if isinstance(v, str | tuple) else None,
    "string": _text, "lower": _str_op("lower"), "upper": _str_op("upper"),
    "capitalize": _str_op("capitalize"), "title": _str_op("title"),
    "trim": lambda v, chars=None: v.strip(chars) if isinstance(v, str) and isinstance(chars, str | None)
    else None,
    "center": _pad("center"),
}
METHOD_OPS: dict[str, Callable[..., Any]] = {
    **{m: _str_op(m) for m in ("lower", "upper", "swapcase", "casefold", "capitalize", "title",
                                "strip", "lstrip", "rstrip", "removeprefix", "removesuffix")},
    "replace": _replace, "split": _split, "format": _brace_format,
    "join": lambda sep, items: _join(items, sep),
    "ljust": _pad("ljust"), "rjust": _pad("rjust"), "center": _pad("center"),
}


def _concat(*parts: Any) -> str | None:
    texts = [_text(p) for p in parts]
    return None if any(t is None for t in texts) else _bounded("".join(t or "" for t in texts))


def _add(a: Any, b: Any) -> Any:
    same = type(a) is type(b) and isinstance(a, str | int | tuple)
    return _bounded(a + b) if same and not isinstance(a, bool) else None


def _sub(a: Any, b: Any) -> Any:
    both = all(isinstance(x, int) and not isinstance(x, bool) for x in (a, b))
    return a - b if both and abs(a - b) <= 0x10FFFF else None


def _mul(a: Any, b: Any) -> Any:
    seq, n = (a, b) if isinstance(b, int) else (b, a)
    if not isinstance(n, int) or not isinstance(seq, str | int | tuple):
        return None
    if isinstance(seq, int):
        return seq * n if abs(seq * n) <= 0x10FFFF else None
    return seq * n if 0 <= n and len(seq) * n <= (MAX_TEXT if isinstance(seq, str) else MAX_ITEMS) else None


def _subscript(v: Any, *key: Any) -> Any:
    if not isinstance(v, str | tuple) or not all(k is None or isinstance(k, int) for k in key):
        return None
    try:
        return v[key[0]] if len(key) == 1 else v[slice(*key)]
    except (IndexError, ValueError, TypeError):
        return None


def _apply(op: Callable[..., Any], sets: list[Values | None]) -> Values | None:
    """Every value `op` gives over the combinations of its arguments' possible values."""
    if any(s is None for s in sets):
        return None
    total = 1
    for s in sets:
        total *= len(s or ())
        if total > MAX_VALUES * 4:
            return None
    out = {op(*combo) for combo in product(*sets)} - {None}      # type: ignore[arg-type]
    return frozenset(out) if 0 < len(out) <= MAX_VALUES else None


def _union(sets: Iterable[Values | None]) -> Values | None:
    out: set[Any] = set()
    for s in sets:
        if s is None:
            return None
        out |= s
    return frozenset(out) if 0 < len(out) <= MAX_VALUES else None


def _const(value: Any) -> Values | None:
    if isinstance(value, str):
        return frozenset({value}) if len(value) <= MAX_TEXT else None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 0x10FFFF:
        return frozenset({value})
    return None


@dataclass(frozen=True)
class _Each:
    """A for-loop target: one item of the iterated expression."""
    iterable: nodes.Node


@dataclass(frozen=True)
class _Body:
    """A `{% set x %}...{% endset %}` block: the text its body writes."""
    body: tuple[nodes.Node, ...]


_UNKNOWN = object()


class _Folder:
    """Possible constant values of expressions: bounded sets, None when not known statically."""

    def __init__(self, bindings: dict[str, list[Any]]) -> None:
        self.bindings = bindings
        self.memo: dict[int, Values | None] = {}
        self.names: dict[str, Values | None] = {}
        self.built: dict[int, bool] = {}
        self.built_names: dict[str, bool] = {}
        self.resolving: set[str] = set()

    def prefold(self, order: list[tuple[Any, int]]) -> None:
        """Fold every expression children first, so that nesting never runs into MAX_DEPTH."""
        for node, _ in reversed(order):
            if type(node) in _PREFOLD:
                self.fold(node)

    def fold(self, node: Any, depth: int = 0) -> Values | None:
        key = id(node)
        if key in self.memo:
            return self.memo[key]
        value = None if depth > MAX_DEPTH else self._fold(node, depth + 1)
        self.memo[key] = value
        return value

    def _fold(self, node: Any, d: int) -> Values | None:
        how = _FOLDS.get(type(node))
        return how(self, node, d) if how is not None else None

    def _pieces(self, node: Any, d: int) -> Values | None:
        return _apply(_concat, [self.fold(x, d) for x in node.nodes])

    def _binary(self, node: Any, d: int) -> Values | None:
        return _apply(_BINARY[type(node)], [self.fold(node.left, d), self.fold(node.right, d)])

    def _either(self, node: Any, d: int) -> Values | None:
        if isinstance(node, nodes.CondExpr):
            return _union(self.fold(x, d) for x in (node.expr1, node.expr2) if x is not None)
        return _union([self.fold(node.left, d), self.fold(node.right, d)])

    def _sign(self, node: Any, d: int) -> Values | None:
        sign = -1 if isinstance(node, nodes.Neg) else 1
        return _apply(lambda v: sign * v if isinstance(v, int) else None, [self.fold(node.node, d)])

    def _name(self, node: nodes.Name, d: int) -> Values | None:
        return self.resolve(node.name, d) if node.ctx == "load" else None

    def _attribute(self, node: nodes.Getattr, d: int) -> Values | None:
        """`ns.x` where the template sets `ns.x` or builds `ns = namespace(x=...)`."""
        if isinstance(node.node, nodes.Name):
            return self.resolve(f"{node.node.name}.{node.attr}", d)
        return None

    def _items(self, node: nodes.List | nodes.Tuple, d: int) -> Values | None:
        return self._sequence(node.items, d)

    def _sequence(self, items: list[Any], d: int) -> Values | None:
        if len(items) > MAX_ITEMS:
            return None
        return _apply(lambda *xs: xs, [self.fold(x, d) for x in items])

    def _getitem(self, node: nodes.Getitem, d: int) -> Values | None:
        arg = node.arg
        if isinstance(arg, nodes.Slice):
            parts = [frozenset({None}) if x is None else self.fold(x, d)
                     for x in (arg.start, arg.stop, arg.step)]
            return _apply(_subscript, [self.fold(node.node, d), *parts])
        return _apply(_subscript, [self.fold(node.node, d), self.fold(arg, d)])

    def _filter(self, node: nodes.Filter, d: int) -> Values | None:
        op = FILTER_OPS.get(node.name)
        if op is None or node.node is None or node.kwargs or node.dyn_args or node.dyn_kwargs:
            return None
        return _apply(op, [self.fold(node.node, d), *(self.fold(a, d) for a in node.args)])

    def _method(self, node: nodes.Call, d: int) -> Values | None:
        target = node.node
        if not isinstance(target, nodes.Getattr):
            return None
        op = METHOD_OPS.get(target.attr)
        if op is None or node.kwargs or node.dyn_args or node.dyn_kwargs:
            return None
        return _apply(op, [self.fold(target.node, d), *(self.fold(a, d) for a in node.args)])

    def resolve(self, name: str, d: int) -> Values | None:
        """Values of a variable: every value of every binding; a cycle or deep chain is unknown."""
        if name in self.names:
            return self.names[name]
        bound = self.bindings.get(name)
        if not bound or name in self.resolving or d > MAX_DEPTH:
            return None
        self.resolving.add(name)
        try:
            value = _union(self._binding(b, d) for b in bound)
        finally:
            self.resolving.discard(name)
        self.names[name] = value
        return value

    def _binding(self, b: Any, d: int) -> Values | None:
        if isinstance(b, _Each):
            items = self.fold(b.iterable, d)
            return None if items is None else _union(
                frozenset(v) if isinstance(v, str | tuple) else None for v in items)
        if isinstance(b, _Body):
            return self.body(b.body, d)
        return None if b is _UNKNOWN else self.fold(b, d)

    def body(self, body: Iterable[nodes.Node], d: int = 0) -> Values | None:
        """The text a `{% set x %}...{% endset %}` body writes, when it is constant."""
        return _apply(_concat, [self.fold(x, d) for x in body])

    def assembled(self, node: Any, depth: int = 0) -> bool:
        """Whether the expression builds a string from pieces (concatenation, formatting, filters)."""
        key = id(node)
        if key not in self.built:
            self.built[key] = False           # cycles and deep nesting count as not assembled
            self.built[key] = depth <= MAX_DEPTH and self._assembled(node, depth + 1)
        return self.built[key]

    def _assembled(self, node: Any, d: int) -> bool:
        if isinstance(node, nodes.Concat):
            return True
        if isinstance(node, nodes.Add | nodes.Mul | nodes.Mod):
            sides = (node.left, node.right) if not isinstance(node, nodes.Mod) else (node.left,)
            return any(self._stringish(x, d) for x in sides)
        if isinstance(node, nodes.Filter):
            return node.name in FILTER_OPS and node.node is not None and (
                self._stringish(node.node, d) or any(self.fold(a, d) is not None for a in node.args))
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            return node.node.attr in METHOD_OPS and self._stringish(node.node.node, d)
        if isinstance(node, nodes.CondExpr | nodes.And | nodes.Or | nodes.Getitem):
            return any(self.assembled(x, d) for x in node.iter_child_nodes())
        if isinstance(node, nodes.Name):
            name = node.name
            if name not in self.built_names:
                self.built_names[name] = False
                self.built_names[name] = any(self._bound_assembled(b, d) for b in self.bindings.get(name, ()))
            return self.built_names[name]
        return False

    def _stringish(self, node: Any, d: int) -> bool:
        values = self.fold(node, d)
        return bool(values and any(isinstance(v, str) for v in values)) or self.assembled(node, d)

    def _bound_assembled(self, b: Any, d: int) -> bool:
        if isinstance(b, _Body):
            return len(b.body) > 1
        return isinstance(b, nodes.Node) and self.assembled(b, d)


_BINARY: dict[type, Callable[..., Any]] = {nodes.Add: _add, nodes.Sub: _sub, nodes.Mul: _mul,
                                           nodes.Mod: _percent}
_FOLDS: dict[type, Callable[[_Folder, Any, int], Values | None]] = {
    nodes.Const: lambda f, n, d: _const(n.value),
    nodes.TemplateData: lambda f, n, d: _const(n.data),
    nodes.Concat: _Folder._pieces, nodes.Output: _Folder._pieces,
    **dict.fromkeys(_BINARY, _Folder._binary),
    nodes.List: _Folder._items, nodes.Tuple: _Folder._items,
    nodes.CondExpr: _Folder._either, nodes.And: _Folder._either, nodes.Or: _Folder._either,
    nodes.Neg: _Folder._sign, nodes.Pos: _Folder._sign,
    nodes.Getitem: _Folder._getitem, nodes.Filter: _Folder._filter, nodes.Call: _Folder._method,
    nodes.Name: _Folder._name, nodes.Getattr: _Folder._attribute,
}
_PREFOLD = frozenset(_FOLDS) - {nodes.Output, nodes.TemplateData}


# -- bindings -----------------------------------------------------------------------------------
def _bind_target(bindings: dict[str, list[Any]], target: Any, value: Any) -> None:
    if isinstance(target, nodes.Name):
        bindings.setdefault(target.name, []).append(value)
        if isinstance(value, nodes.Call) and isinstance(value.node, nodes.Name) \
                and value.node.name == "namespace":
            for kw in value.kwargs:
                bindings.setdefault(f"{target.name}.{kw.key}", []).append(kw.value)
    elif isinstance(target, nodes.NSRef):
        bindings.setdefault(f"{target.name}.{target.attr}", []).append(value)
    elif isinstance(target, nodes.Tuple):
        pairs = isinstance(value, nodes.Tuple | nodes.List) and len(value.items) == len(target.items)
        for i, item in enumerate(target.items):
            _bind_target(bindings, item, value.items[i] if pairs else _UNKNOWN)


def _collect_bindings(node: Any, bindings: dict[str, list[Any]]) -> None:
    kind = type(node)
    if kind is nodes.Assign:
        _bind_target(bindings, node.target, node.node)
    elif kind is nodes.AssignBlock:
        _bind_target(bindings, node.target, _UNKNOWN if node.filter else _Body(tuple(node.body)))
    elif kind is nodes.For:
        _bind_target(bindings, node.target,
                     _Each(node.iter) if isinstance(node.target, nodes.Name) else _UNKNOWN)
    elif kind is nodes.With:
        for target, value in zip(node.targets, node.values):
            _bind_target(bindings, target, value)
    elif kind is nodes.Macro or kind is nodes.CallBlock:
        if kind is nodes.Macro:
            bindings.setdefault(node.name, []).append(_UNKNOWN)
        for arg in node.args:
            _bind_target(bindings, arg, _UNKNOWN)
    elif kind is nodes.FromImport:
        for name in node.names:
            bindings.setdefault(name if isinstance(name, str) else name[1], []).append(_UNKNOWN)
    elif kind is nodes.Import:
        bindings.setdefault(node.target, []).append(_UNKNOWN)


_BINDERS = frozenset({nodes.Assign, nodes.AssignBlock, nodes.For, nodes.With, nodes.Macro,
                      nodes.CallBlock, nodes.FromImport, nodes.Import})
_LEAVES = frozenset({nodes.Const, nodes.TemplateData, nodes.Name, nodes.NSRef})


# -- the walk -----------------------------------------------------------------------------------
def _children(node: nodes.Node) -> list[nodes.Node]:
    out: list[nodes.Node] = []
    for field in node.fields:
        value = getattr(node, field, None)
        if isinstance(value, nodes.Node):
            out.append(value)
        elif isinstance(value, list):
            out.extend(x for x in value if isinstance(x, nodes.Node))
    return out


def _walk(root: nodes.Node, bindings: dict[str, list[Any]]) -> tuple[list[tuple[Any, int]], bool]:
    """Pre-order (node, parent index) pairs, at most MAX_NODES, collecting the bindings on the way;
    and whether the walk was cut."""
    order: list[tuple[Any, int]] = []
    stack: list[tuple[Any, int]] = [(root, -1)]
    push, pop, append = stack.append, stack.pop, order.append
    while stack:
        if len(order) >= MAX_NODES:
            return order, True
        node, parent = pop()
        kind = type(node)
        if kind in _BINDERS:
            _collect_bindings(node, bindings)
        here = len(order)
        append((node, parent))
        if kind not in _LEAVES:
            for child in reversed(_children(node)):
                push((child, here))
    return order, False


class _Checker:
    def __init__(self, text: str, folder: _Folder, local_names: set[str]) -> None:
        self.text = text
        self.lines: list[str] | None = None
        self.folder = folder
        self.local = local_names
        self.issues: dict[TemplateIssue, None] = {}
        self.reported = False

    def add(self, rule: str, message: str, node: Any, needle: str = "") -> None:
        self.reported = self.reported or rule == "TEMPLATE001"
        if len(self.issues) < MAX_ISSUES:
            line = getattr(node, "lineno", None)
            self.issues.setdefault(TemplateIssue(rule, message, line, self._snippet(line, needle)))

    def _snippet(self, line: int | None, needle: str) -> str:
        if self.lines is None:
            self.lines = self.text.splitlines()
        if not line or line > len(self.lines):
            return ""
        src = self.lines[line - 1]
        at = src.find(needle) if needle else -1
        start = max(0, at - 50) if at >= 0 else len(src) - len(src.lstrip())
        return src[start:start + 120].strip()

    def check(self, node: Any, parent: Any, covered: bool) -> bool:
        """Issues for one node; True when it reached internals (its subtree then counts as covered:
        a name built inside it is not reported a second time)."""
        kind = type(node)
        if kind not in _CHECKED:
            return False
        self.reported = False
        how = _CHECKS.get(kind)
        if how is not None:
            how(self, node, parent)
        if kind is nodes.Mod or (kind is nodes.Filter and node.name == "format"):
            self._char_format(node)
        if covered:
            pass
        elif kind in _BUILDERS:
            values = self.folder.fold(node)
            if values is None and kind is nodes.Const and isinstance(node.value, str):
                values = frozenset({node.value})          # too long to fold, still worth a look
            self._built_name(node, values)
        elif kind is nodes.AssignBlock and node.filter is None:
            self._built_name(node, self.folder.body(node.body))
        return self.reported

    def _load(self, node: Any, parent: Any) -> None:
        name = {nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "from ... import",
                nodes.Extends: "extends"}[type(node)]
        self.add("TEMPLATE002", f"loads another template with {{% {name} %}}", node, name.split()[0])

    def _getattr(self, node: nodes.Getattr, parent: Any) -> None:
        if _internal(node.attr):
            self.add("TEMPLATE001", f"reads the internal attribute {_short(node.attr)}", node, node.attr)
        elif node.attr.startswith("_"):
            self.add("TEMPLATE002", f"reads the private attribute {_short(node.attr)}", node, node.attr)

    def _getitem(self, node: nodes.Getitem, parent: Any) -> None:
        if isinstance(node.arg, nodes.Slice):
            return
        values = self.folder.fold(node.arg)
        names = sorted(v for v in values or () if isinstance(v, str))
        hit = next((v for v in names if _internal(v)), None)
        if hit:
            self.add("TEMPLATE001", f"reads the internal attribute {_short(hit)} through a subscript",
                     node, "[")
        elif any(_mangled(v) for v in names):
            self.add("TEMPLATE002", "reads a name-mangled private attribute through a subscript", node, "[")
        elif values is None and self.folder.assembled(node.arg):
            self.add("TEMPLATE002", "subscript with a name assembled from pieces at render time", node, "[")

    def _filter(self, node: nodes.Filter, parent: Any) -> None:
        for what, arg in _attribute_args(node, self.folder):
            values = None if arg is None else self.folder.fold(arg)
            if values is None:
                how = "given by unpacking" if arg is None else "computed at render time"
                self.add("TEMPLATE002", f"|{node.name} with {what} {how}", node, node.name)
                continue
            parts = [p for v in values if isinstance(v, str) for p in re.split(r"[.,]", v)]
            hit = next((p for p in parts if _internal(p)), None)
            if hit:
                self.add("TEMPLATE001", f"|{node.name} reaches the internal attribute {_short(hit)}", node,
                         node.name)
            elif any(p.startswith("_") for p in parts):
                self.add("TEMPLATE002", f"|{node.name} reaches a private attribute", node, node.name)

    def _name(self, node: nodes.Name, parent: Any) -> None:
        name = node.name
        if node.ctx != "load" or name in self.local:
            return
        if _dunder(name):
            self.add("TEMPLATE001", f"names the interpreter internal {_short(name)}", node, name)
        elif name == "self":
            self.add("TEMPLATE002", "uses 'self', the template's reference to its own internals", node, name)
        elif name in JINJA_CALLABLES and not _called_or_tested(node, parent):
            self.add("TEMPLATE002", f"uses the global {_short(name)} as an object (calling it is the "
                     "ordinary use)", node, name)
        elif name in WEB_GLOBALS and _traversed(node, parent):
            self.add("TEMPLATE002", f"walks into the web-framework global {_short(name)}", node, name)

    def _call(self, node: nodes.Call, parent: Any) -> None:
        target = node.node
        if isinstance(target, nodes.Getattr) and target.attr in ("format", "format_map") \
                and self.folder.fold(target.node) is None and self.folder.assembled(target.node):
            self.add("TEMPLATE002", f"str.{target.attr} with a format string assembled at render time",
                     node, target.attr)

    def _char_format(self, node: Any) -> None:
        fmt = node.left if isinstance(node, nodes.Mod) else node.node
        values = self.folder.fold(fmt) if fmt is not None else None
        for v in values or ():
            if isinstance(v, str) and _PERCENT_CHAR.search(v.replace("%%", "")):
                self.add("TEMPLATE002", "builds characters from numbers with %c formatting", node, "%c")
                return

    def _built_name(self, node: Any, values: Values | None) -> None:
        for v in sorted(x for x in values or () if isinstance(x, str)):
            if _dunder(v):
                how = "has the string" if isinstance(node, nodes.Const) else "builds the string"
                self.add("TEMPLATE001", f"{how} {_short(v)}, an internal attribute name", node, v[:6])
                return
            for field in _format_fields(v):
                if any(_internal(w) for w in _WORD.findall(field)):
                    self.add("TEMPLATE001", "format string whose field walks into internal attributes",
                             node, "{")
                    return
                if _BRACE_CHAR.fullmatch(field) and isinstance(node, nodes.Const):
                    self.add("TEMPLATE002", "format string building characters with {:c}", node, "{")
                    return


_CHECKS: dict[type, Callable[[_Checker, Any, Any], None]] = {
    nodes.Getattr: _Checker._getattr, nodes.Getitem: _Checker._getitem, nodes.Filter: _Checker._filter,
    nodes.Name: _Checker._name, nodes.Call: _Checker._call, **dict.fromkeys(TEMPLATE_LOADS, _Checker._load),
}
# expressions whose constant value is reported where it is built (names are not: they are
# reported where they are bound)
_BUILDERS = frozenset({nodes.Const, nodes.Concat, nodes.Add, nodes.Sub, nodes.Mul, nodes.Mod,
                       nodes.Filter, nodes.Call, nodes.Getitem, nodes.CondExpr, nodes.And, nodes.Or})
_CHECKED = frozenset(_CHECKS) | _BUILDERS | {nodes.AssignBlock}


def _attribute_args(node: nodes.Filter, folder: _Folder) -> Iterator[tuple[str, Any]]:
    """(what, expression) for each filter argument naming an attribute; None when unpacked."""
    if node.name == "map" and node.args:          # map('filter', ...) applies another filter
        yield "a filter name", node.args[0]
        if "attr" in (folder.fold(node.args[0]) or ()) and len(node.args) > 1:
            yield "an attribute name", node.args[1]
    pos = ATTRIBUTE_FILTERS.get(node.name, -1)
    if pos == -1:
        return
    if pos is not None and len(node.args) > pos:
        yield "an attribute name", node.args[pos]
    keyword = "name" if node.name == "attr" else "attribute"
    for kw in node.kwargs:
        if kw.key == keyword:
            yield "an attribute name", kw.value
    if node.dyn_args or node.dyn_kwargs:
        yield "arguments", None


def _called_or_tested(node: Any, parent: Any) -> bool:
    return isinstance(parent, nodes.Call | nodes.Test) and parent.node is node


def _traversed(node: Any, parent: Any) -> bool:
    return isinstance(parent, nodes.Getattr | nodes.Getitem | nodes.Filter) and parent.node is node


# -- entry point --------------------------------------------------------------------------------
def analyse_template(text: str, *, max_bytes: int = 1_000_000) -> list[TemplateIssue]:
    """Issues found in one chat template, in template order; [] when it is clean.

    Raises UnparsableTemplate when Jinja's parser rejects the text. A template over `max_bytes`
    (UTF-8) is not parsed: the result is one TEMPLATE002 issue saying so. A text met again (one
    model's template in its GGUF metadata, `tokenizer_config.json` and `chat_template.jinja`) is
    not analysed again.
    """
    if len(text) <= CACHED_CHARS:
        return list(_analyse_cached(text, max_bytes))
    return list(_analyse(text, max_bytes))


CACHED_CHARS = 1 << 16      # templates up to this long are remembered (64 of them) by text


def _analyse(text: str, max_bytes: int) -> tuple[TemplateIssue, ...]:
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        return (TemplateIssue("TEMPLATE002", f"template too large to analyse (over {max_bytes} bytes)",
                              None, ""),)
    bindings: dict[str, list[Any]] = {}
    order, cut = _walk(_parse(text), bindings)
    folder = _Folder(bindings)
    folder.prefold(order)
    checker = _Checker(text, folder, {k for k in bindings if "." not in k})
    covered = [False] * len(order)
    for i, (node, parent) in enumerate(order):
        inherited = parent >= 0 and covered[parent]
        reported = checker.check(node, order[parent][0] if parent >= 0 else None, inherited)
        covered[i] = inherited or reported
    issues = list(checker.issues)
    if len(issues) >= MAX_ISSUES:
        issues.append(TemplateIssue("TEMPLATE002", f"more than {MAX_ISSUES} issues; the rest are not listed",
                                    None, ""))
    if cut:
        issues.append(TemplateIssue(
            "TEMPLATE002", f"template too complex to analyse fully (over {MAX_NODES} syntax nodes)",
            None, ""))
    return tuple(issues)


_analyse_cached = lru_cache(maxsize=64)(_analyse)
