"""Package attributes imported from the modules that define them when first used (PEP 562), so
that importing a package costs only the modules its caller needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def lazy_names(package: str, namespace: dict[str, Any],
               where: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of a package whose public names live in `where`
    (name -> defining module)."""
    def __getattr__(name: str) -> Any:
        home = where.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        from importlib import import_module
        value = getattr(import_module(home), name)
        namespace[name] = value            # once: later lookups do not come back here
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
