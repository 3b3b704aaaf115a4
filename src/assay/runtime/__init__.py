"""Run a known architecture built in code from its config, filled with tensors assay read.

Never remote code, never a pickle, never `from_pretrained`: the heavy libraries (`transformers`,
`tokenizers`, `torch`) are the `audit` extra and are imported only when a model is built.
"""

from __future__ import annotations

from assay.errors import MissingDependencyError


def require(*modules: str) -> None:
    """Raise a one-line error naming the `audit` extra when an optional library is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(None, f"{', '.join(missing)} not installed: running models "
                                     "needs the audit extra (pip install 'assay[audit]')")
