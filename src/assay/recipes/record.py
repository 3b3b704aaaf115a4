"""The build record (`assay.build/1`): what was built, from what, on what, at what cost.

Written as `build.json` beside the outputs; paths of outputs are relative to that folder, so a
build folder can be moved and challenged later (`assay challenge --record build.json`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from assay.recipes.schema import RecipeError

SCHEMA = "assay.build/1"
FILE = "build.json"
LOG = "build.log"


@dataclass(frozen=True)
class EpochDigest:
    epoch: int
    content: str
    named: str
    tensors: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BuiltOutput:
    name: str
    file: str                       # relative to the record's folder
    file_digest: str                # blake3 of the file's bytes
    content: str
    named: str
    tensors: dict[str, str]
    expected: str | None = None     # the recipe's expected content identity
    matches: bool | None = None     # None when the recipe states none


@dataclass(frozen=True)
class Resources:
    wall_seconds: float
    user_seconds: float
    system_seconds: float
    peak_memory_bytes: int

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.system_seconds


@dataclass(frozen=True)
class BuildRecord:
    recipe_name: str
    recipe_path: str
    recipe_digest: str
    entry_path: str
    entry_digest: str
    inputs: tuple[dict[str, str], ...]
    params: dict[str, Any]
    seed: int
    threads: int
    recipe_threads: int
    environment: dict[str, Any]
    resources: Resources
    epochs: tuple[EpochDigest, ...]
    outputs: tuple[BuiltOutput, ...]
    folder: str = ""                # where the record lives (not written into it)

    @property
    def matches_expected(self) -> bool:
        return all(o.matches is not False for o in self.outputs)

    def output(self, name: str | None = None) -> BuiltOutput:
        if name is None:
            return self.outputs[0]
        for o in self.outputs:
            if o.name == name:
                return o
        raise RecipeError(self.folder or None, f"the build has no output named {name!r} "
                                               f"(it has {', '.join(o.name for o in self.outputs)})")

    def output_path(self, name: str | None = None) -> str:
        return os.path.join(self.folder, self.output(name).file)


def to_json(r: BuildRecord) -> dict[str, Any]:
    res = r.resources
    return {
        "schema": SCHEMA,
        "recipe": {"name": r.recipe_name, "path": r.recipe_path, "digest": r.recipe_digest},
        "entry": {"path": r.entry_path, "digest": r.entry_digest},
        "inputs": [dict(i) for i in r.inputs],
        "params": r.params,
        "seed": r.seed,
        "threads": r.threads,
        "recipe_threads": r.recipe_threads,
        "environment": r.environment,
        "resources": {"wall_seconds": round(res.wall_seconds, 3), "cpu_seconds": round(res.cpu_seconds, 3),
                      "user_seconds": round(res.user_seconds, 3),
                      "system_seconds": round(res.system_seconds, 3),
                      "peak_memory_bytes": res.peak_memory_bytes},
        "epochs": [{"epoch": e.epoch, "content": e.content, "named": e.named, "tensors": e.tensors,
                    "metrics": e.metrics} for e in r.epochs],
        "outputs": [{"name": o.name, "file": o.file, "file_digest": o.file_digest, "content": o.content,
                     "named": o.named, "tensors": o.tensors, "expected": o.expected, "matches": o.matches}
                    for o in r.outputs],
    }


def from_json(doc: dict[str, Any], folder: str, where: str) -> BuildRecord:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise RecipeError(where, f"not a build record (expected \"schema\": \"{SCHEMA}\")")
    try:
        res = doc["resources"]
        return BuildRecord(
            recipe_name=doc["recipe"]["name"], recipe_path=doc["recipe"]["path"],
            recipe_digest=doc["recipe"]["digest"], entry_path=doc["entry"]["path"],
            entry_digest=doc["entry"]["digest"], inputs=tuple(doc["inputs"]), params=doc["params"],
            seed=int(doc["seed"]), threads=int(doc["threads"]), recipe_threads=int(doc["recipe_threads"]),
            environment=doc["environment"],
            resources=Resources(float(res["wall_seconds"]), float(res["user_seconds"]),
                                float(res["system_seconds"]), int(res["peak_memory_bytes"])),
            epochs=tuple(EpochDigest(int(e["epoch"]), e["content"], e["named"], dict(e["tensors"]),
                                     dict(e.get("metrics", {}))) for e in doc["epochs"]),
            outputs=tuple(BuiltOutput(o["name"], o["file"], o["file_digest"], o["content"], o["named"],
                                      dict(o["tensors"]), o.get("expected"), o.get("matches"))
                          for o in doc["outputs"]),
            folder=folder)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecipeError(where, f"build record is incomplete or malformed: {exc!r}") from None


def write(r: BuildRecord, folder: str) -> str:
    path = os.path.join(folder, FILE)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(to_json(r), fh, indent=2)   # schema first; every table in a fixed order
        fh.write("\n")
    return path


def read(path: str) -> BuildRecord:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.loads(fh.read(64 << 20))
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(path, f"cannot read build record: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RecipeError(path, f"build record is not JSON: {exc}") from None
    return from_json(doc, os.path.dirname(os.path.abspath(path)), path)


def is_record(path: str) -> bool:
    """Whether `path` is a JSON file holding a build record (checked by content, not by name)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and SCHEMA.encode() in head and b'"schema"' in head
