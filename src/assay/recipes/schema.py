"""The recipe file (`assay.recipe/1`, TOML): a model's source, read and validated with pydantic.

See docs/recipes.md for the format. A recipe names data, never code to import: the entry point is
a path pinned by its digest and runs only in the build's child process.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assay.errors import AssayError

SCHEMA = "assay.recipe/1"
BLAKE3_RE = r"^blake3:[0-9a-f]{64}$"
MODEL_RE = r"^assay-model-v1:[0-9a-f]{64}$"
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
MAX_RECIPE_BYTES = 1 << 20


class RecipeError(AssayError):
    """A recipe that cannot be used: unreadable, invalid, or naming a missing entry point."""


class InputMismatchError(RecipeError):
    """A pinned input (or the entry point) does not have the digest the recipe states."""


class BuildFailedError(RecipeError):
    """The entry point failed, timed out, or did not write the outputs the recipe names."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EntrySpec(_Strict):
    path: str = Field(description="the training script, relative to the recipe's folder")
    digest: str = Field(pattern=BLAKE3_RE, description="BLAKE3 of the script's bytes")

    @field_validator("path")
    @classmethod
    def _relative(cls, v: str) -> str:
        if os.path.isabs(v) or ".." in v.replace("\\", "/").split("/"):
            raise ValueError("must be a path inside the recipe's folder")
        return v


class InputSpec(_Strict):
    kind: Literal["data", "weights"] = "data"
    path: str | None = Field(None, description="a file (or model folder), relative to the recipe")
    module: str | None = Field(None, description="an installed top-level package shipping the file")
    resource: str | None = Field(None, description="the file's path inside that package")
    digest: str

    @model_validator(mode="after")
    def _where_and_digest(self) -> InputSpec:
        if (self.path is None) == (self.module is None):
            raise ValueError("give either 'path' or 'module' with 'resource'")
        if self.module is not None:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.module):
                raise ValueError("'module' must be a top-level package name")
            if not self.resource or os.path.isabs(self.resource) or ".." in self.resource.split("/"):
                raise ValueError("'resource' must be a relative path inside the package")
        pattern = MODEL_RE if self.kind == "weights" else BLAKE3_RE
        if not re.fullmatch(pattern, self.digest):
            want = "assay-model-v1:<hex> (content identity)" if self.kind == "weights" else "blake3:<hex>"
            raise ValueError(f"digest of a {self.kind} input must look like {want}")
        return self


class BuildSpec(_Strict):
    seed: int = Field(0, ge=0, lt=2**32)
    threads: int = Field(1, ge=1, le=256)
    python: str | None = Field(None, pattern=r"^\d+(\.\d+){0,2}$")
    packages: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(600.0, gt=0, le=7 * 24 * 3600, description="seconds")


class OutputSpec(_Strict):
    file: str = Field(pattern=NAME_RE)
    identity: str | None = Field(None, pattern=MODEL_RE, description="expected content identity")


class ToleranceSpec(_Strict):
    rel_l2: float = Field(ge=0, description="largest relative L2 change of any tensor")
    max_abs: float | None = Field(None, ge=0, description="largest absolute change of any element")


class ProbeSpec(_Strict):
    min_agreement: float = Field(1.0, gt=0, le=1)
    description: str = ""


class Recipe(_Strict):
    schema_: Literal["assay.recipe/1"] = Field(alias="schema")
    name: str = Field(pattern=NAME_RE)
    description: str = ""
    entry: EntrySpec
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    build: BuildSpec = Field(default_factory=BuildSpec)
    outputs: dict[str, OutputSpec] = Field(min_length=1)
    tolerance: ToleranceSpec | None = None
    probe: ProbeSpec | None = None

    @field_validator("inputs", "outputs")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for k in v:
            if not re.fullmatch(NAME_RE, k):
                raise ValueError(f"name {k!r} must be letters, digits, '_', '.', '-'")
        return v

    @model_validator(mode="after")
    def _distinct_files(self) -> Recipe:
        files = [o.file for o in self.outputs.values()]
        if len(set(files)) != len(files) or {"build.json", "build.log"} & set(files):
            raise ValueError("output files must be distinct and not build.json or build.log")
        return self


@dataclass(frozen=True)
class LoadedRecipe:
    """A recipe with where it was read from (paths in it are relative to `folder`)."""

    path: str
    folder: str
    digest: str          # blake3 of the TOML bytes
    recipe: Recipe

    @property
    def entry_path(self) -> str:
        return os.path.join(self.folder, self.recipe.entry.path)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<recipe>"


def parse(data: bytes, path: str) -> Recipe:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RecipeError(path, f"recipe is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(path, f"recipe is not valid TOML: {exc}") from None
    try:
        return Recipe.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise RecipeError(path, f"bad recipe: {_where(first['loc'])}: {first['msg']}{more}") from None


def load(path: str) -> LoadedRecipe:
    """Read and validate a recipe; the entry point must exist (its digest is checked by the build)."""
    from assay.recipes.pinning import file_digest
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_RECIPE_BYTES + 1)
    except OSError as exc:
        raise RecipeError(path, f"cannot read recipe: {exc.strerror or exc}") from None
    if len(data) > MAX_RECIPE_BYTES:
        raise RecipeError(path, f"recipe is larger than {MAX_RECIPE_BYTES} bytes")
    recipe = parse(data, path)
    loaded = LoadedRecipe(path, os.path.dirname(os.path.abspath(path)), file_digest(path, data), recipe)
    if not os.path.isfile(loaded.entry_path):
        raise RecipeError(path, f"entry point {recipe.entry.path}: no such file "
                                f"(looked for {loaded.entry_path})")
    return loaded
