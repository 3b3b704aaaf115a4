"""Where each pinned input lives, and whether it still has the digest the recipe states.

Data files and the entry point are pinned by BLAKE3 of their bytes (`blake3:<hex>`); weights by
their assay content identity (`assay-model-v1:<hex>`), so a base model converted to another
format or re-sharded still matches. Every input is checked before anything is built.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

import blake3

from assay.recipes.schema import InputMismatchError, InputSpec, LoadedRecipe, RecipeError

CHUNK = 8 << 20

# Content identity of the weights at a path (`assay-model-v1:...`); given by `assay.api`.
WeightsIdentity = Callable[[str], str]


def file_digest(path: str, data: bytes | None = None) -> str:
    """`blake3:<hex>` of a file's bytes (or of `data`, already read from it)."""
    h = blake3.blake3()
    if data is not None:
        h.update(data)
    else:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
    return f"blake3:{h.hexdigest()}"


def locate(loaded: LoadedRecipe, name: str, spec: InputSpec) -> str:
    """The absolute path of an input. A `module` is found without importing it."""
    if spec.path is not None:
        return os.path.normpath(os.path.join(loaded.folder, spec.path))
    assert spec.module is not None and spec.resource is not None
    try:
        found = importlib.util.find_spec(spec.module)   # top-level name: finds, never executes
    except (ImportError, ValueError):
        found = None
    roots = list(found.submodule_search_locations or []) if found else []
    if not roots:
        raise RecipeError(loaded.path, f"input {name!r}: package {spec.module!r} is not installed")
    return os.path.normpath(os.path.join(roots[0], spec.resource))


@dataclass(frozen=True)
class CheckedInput:
    name: str
    kind: str
    path: str
    digest: str


def check_entry(loaded: LoadedRecipe) -> str:
    want = loaded.recipe.entry.digest
    try:
        got = file_digest(loaded.entry_path)
    except OSError as exc:
        raise RecipeError(loaded.path, f"entry point {loaded.recipe.entry.path}: "
                                       f"cannot read: {exc.strerror or exc}") from None
    if got != want:
        raise InputMismatchError(loaded.path, f"entry point {loaded.recipe.entry.path}: digest {got} "
                                              f"differs from the recipe's {want}; nothing was built")
    return got


def check_inputs(loaded: LoadedRecipe, weights_identity: WeightsIdentity) -> list[CheckedInput]:
    """Check the entry point and every input, in the recipe's order; raise on the first that
    is missing or whose digest differs (naming it). Nothing has run when this raises."""
    check_entry(loaded)
    out = []
    for name, spec in loaded.recipe.inputs.items():
        path = locate(loaded, name, spec)
        if not os.path.exists(path):
            raise RecipeError(loaded.path, f"input {name!r}: {path}: no such file or folder")
        try:
            got = weights_identity(path) if spec.kind == "weights" else file_digest(path)
        except IsADirectoryError:
            raise RecipeError(loaded.path, f"input {name!r}: {path} is a folder; "
                                           "a data input must be a file") from None
        except OSError as exc:
            raise RecipeError(loaded.path, f"input {name!r}: {path}: cannot read: "
                                           f"{exc.strerror or exc}") from None
        if got != spec.digest:
            raise InputMismatchError(loaded.path, f"input {name!r} ({path}): digest {got} differs from "
                                                  f"the recipe's {spec.digest}; nothing was built")
        out.append(CheckedInput(name, spec.kind, path, got))
    return out
