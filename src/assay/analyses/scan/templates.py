"""Chat-template checks with Jinja2's own parser: the template is parsed, never rendered.

TEMPLATE001: the template reaches Python internals (dunder attributes, directly or through names
built from constant strings, `|attr(...)`, `[...]` subscripts).
TEMPLATE002: the template uses what leads out of a chat-formatting sandbox: `cycler`, `joiner`,
`lipsum`, `namespace` or `self` followed by attribute access, attribute filters with names
computed at render time, `include`/`import`/`extends`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

INTERNAL = {"mro", "func_globals", "gi_frame", "gi_code", "f_globals", "f_locals", "f_back",
            "tb_frame", "cr_frame", "ag_frame", "co_code", "im_func", "im_self", "func_code"}
ESCAPE_GLOBALS = {"cycler", "joiner", "lipsum", "namespace", "self", "range", "dict", "config",
                  "request", "url_for", "get_flashed_messages", "g", "session"}
ATTR_FILTERS = {"attr", "map", "selectattr", "rejectattr", "groupby", "sort", "sum", "unique",
                "min", "max"}
MAX_NODES = 200_000


class UnparsableTemplate(Exception):
    """The template is not valid Jinja; a runtime would fail to load it."""


@dataclass(frozen=True)
class TemplateIssue:
    rule: str
    message: str
    line: int | None
    snippet: str


def _dunder(name: str) -> bool:
    return (name.startswith("__") and name.endswith("__") and len(name) > 4) or name in INTERNAL


def _fold(node: Any, depth: int = 0) -> str | None:
    """The constant string an expression always evaluates to, if it does (no rendering)."""
    from jinja2 import nodes as n
    if depth > 32:
        return None
    if isinstance(node, n.Const) and isinstance(node.value, str):
        return node.value
    if isinstance(node, n.Concat):
        parts = [_fold(x, depth + 1) for x in node.nodes]
        return "".join(p for p in parts if p is not None) if all(p is not None for p in parts) else None
    if isinstance(node, n.Add):
        left, right = _fold(node.left, depth + 1), _fold(node.right, depth + 1)
        return left + right if left is not None and right is not None else None
    if isinstance(node, n.Mul):
        left = _fold(node.left, depth + 1)
        if left is not None and isinstance(node.right, n.Const) and isinstance(node.right.value, int):
            return left * min(node.right.value, 64)
        return None
    if isinstance(node, n.List | n.Tuple):
        return None
    if isinstance(node, n.Filter):
        return _fold_filter(node, depth)
    if isinstance(node, n.Mod):          # '%c%c' % (95, 95)
        fmt = _fold(node.left, depth + 1)
        args = node.right.items if isinstance(node.right, n.Tuple) else [node.right]
        return _format(fmt, args)
    return None


def _fold_filter(node: Any, depth: int) -> str | None:
    from jinja2 import nodes as n
    name = node.name
    if name == "join" and isinstance(node.node, n.List | n.Tuple):
        items = [_fold(x, depth + 1) for x in node.node.items]
        sep = _fold(node.args[0], depth + 1) if node.args else ""
        if all(i is not None for i in items) and sep is not None:
            return sep.join(i for i in items if i is not None)
        return None
    base = _fold(node.node, depth + 1) if node.node is not None else None
    if base is None:
        return None
    if name == "reverse":
        return base[::-1]
    if name in ("lower", "upper", "trim", "string"):
        return {"lower": base.lower(), "upper": base.upper(), "trim": base.strip(), "string": base}[name]
    if name == "replace" and len(node.args) >= 2:
        old, new = _fold(node.args[0], depth + 1), _fold(node.args[1], depth + 1)
        return base.replace(old, new) if old is not None and new is not None else None
    if name == "format":
        return _format(base, node.args)
    return None


def _format(fmt: str | None, args: list[Any]) -> str | None:
    from jinja2 import nodes as n
    if fmt is None:
        return None
    values: list[Any] = []
    for a in args:
        if isinstance(a, n.Const):
            values.append(a.value)
        else:
            return None
    try:
        return fmt % tuple(values)
    except (TypeError, ValueError, OverflowError):
        return None


def _walk(root: Any) -> Iterator[Any]:
    stack, seen = [root], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise UnparsableTemplate(f"template has more than {MAX_NODES} syntax nodes")
        yield node
        stack.extend(reversed(list(node.iter_child_nodes())))


def _snippet(text: str, line: int | None) -> str:
    if not line:
        return ""
    lines = text.splitlines()
    return lines[line - 1].strip()[:160] if 0 < line <= len(lines) else ""


def analyse_template(text: str, *, max_bytes: int = 1_000_000) -> list[TemplateIssue]:
    """Issues found in a chat template; raises UnparsableTemplate when it is not valid Jinja."""
    from jinja2 import TemplateSyntaxError
    from jinja2 import nodes as n
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        return [TemplateIssue("TEMPLATE002", f"template larger than {max_bytes} bytes, not analysed",
                              None, "")]
    env = ImmutableSandboxedEnvironment()
    try:
        tree = env.parse(text)
    except TemplateSyntaxError as exc:
        raise UnparsableTemplate(f"line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise UnparsableTemplate("template nests too deeply") from None
    issues: list[TemplateIssue] = []

    def add(rule: str, message: str, node: Any) -> None:
        line = getattr(node, "lineno", None)
        issues.append(TemplateIssue(rule, message, line, _snippet(text, line)))

    for node in _walk(tree):
        if isinstance(node, n.Getattr):
            if _dunder(node.attr):
                add("TEMPLATE001", f"reads the internal attribute {node.attr!r}", node)
            elif isinstance(node.node, n.Name) and node.node.name in ESCAPE_GLOBALS - {"range", "dict"}:
                add("TEMPLATE002", f"walks into the {node.node.name!r} object ({node.node.name}.{node.attr})",
                    node)
        elif isinstance(node, n.Getitem):
            key = _fold(node.arg)
            if key is not None and _dunder(key):
                add("TEMPLATE001", f"reads the internal attribute {key!r} by subscript", node)
        elif isinstance(node, n.Filter) and node.name in ATTR_FILTERS:
            names = list(node.args[:1]) if node.name == "attr" else [
                kw.value for kw in node.kwargs if kw.key == "attribute"]
            if node.name == "map" and node.args and not node.kwargs:
                names = []       # map('lower') applies a filter, not an attribute
            for arg in names:
                key = _fold(arg)
                if key is None:
                    add("TEMPLATE002", f"|{node.name} with an attribute name computed at render time", node)
                elif any(_dunder(part) for part in key.split(".")):
                    add("TEMPLATE001", f"|{node.name} reaches the internal attribute {key!r}", node)
        elif isinstance(node, n.Include | n.Import | n.FromImport | n.Extends):
            add("TEMPLATE002", f"loads another template ({type(node).__name__.lower()})", node)
        elif isinstance(node, n.Name) and node.name == "self" and node.ctx == "load":
            add("TEMPLATE002", "uses 'self', the template's own reference", node)
    return issues
