"""`adapt`: check the data, write a recipe whose entry point is assay's packaged training script,
and run it through the recipes runner (training happens only in the build's child process).

The output folder:

    OUT/recipe/recipe.toml        the source: data and base pinned by digest, params, seed, threads
    OUT/recipe/adapt_train.py     a byte copy of assay/runtime/adapt_train.py (pinned by digest)
    OUT/recipe/train.csv|.jsonl   copies of the training (and holdout) data, as pinned; for image
                                  files a manifest (path, label, BLAKE3) of the copies in
                                  OUT/recipe/train-images/ (holdout-images/)
    OUT/adapter.safetensors       the head (and low-rank factors) alone
    OUT/merged.safetensors        LoRA only: the base with the update merged, the base's names
    OUT/build.json, build.log     the build record (`assay.build/1`) and the child's log
    OUT/adapt.json, README.md     the `assay.adapt/1` report and a model-card stub (written by api)

`assay rebuild OUT/recipe/recipe.toml -o DIR` reproduces the adapter and merged weights.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay.adapt import data as adapt_data
from assay.errors import UsageError
from assay.model.artifact import ModelArtifact
from assay.recipes import record as build_record
from assay.recipes import runner, schema
from assay.recipes.pinning import file_digest
from assay.recipes.record import BuildRecord

OpenModel = Callable[[str], ModelArtifact]
Log = Callable[[str], None]
# (kind, done, total, note): kind is "features", "head" (epochs) or "lora" (steps)
Progress = Callable[[str, int, int, str], None]

METHODS = ("head", "lora")
TASKS = ("classify", "regress", "embed")
LORA_TARGETS = ("query", "key", "value")
ENTRY_FILE = "adapt_train.py"
ADAPTER_FILE = "adapter.safetensors"
MERGED_FILE = "merged.safetensors"
REPORT_FILE = "adapt.json"
CARD_FILE = "README.md"
RECIPE_DIR = "recipe"
# Files of an encoder folder that decide how it runs: pinned beside its weights.
SIDE_FILES = ("config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
              "special_tokens_map.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json")
RECORDED_PACKAGES = ("numpy", "torch", "transformers", "tokenizers", "assay")


@dataclass(frozen=True)
class AdaptOptions:
    task: str = "classify"
    method: str = "head"
    head: str = "linear"               # linear | mlp
    hidden: int = 256                  # MLP head width
    text_column: str = "text"
    label_column: str = "label"
    seed: int = 0
    threads: int = 1
    val_fraction: float = 0.2
    epochs: int = 100                  # head: upper bound, early stopping decides
    patience: int = 10
    lr: float = 0.01
    batch_size: int = 32
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("query", "value")
    lora_epochs: int = 4
    lora_patience: int = 2
    lora_lr: float = 1e-3
    lora_batch_size: int = 16
    lora_layers: int = 2               # LoRA on the top K layers of an encoder (0: every layer)
    refit: bool = True                 # head: refit on train + validation for the best epoch count
    output: str | None = None          # ONNX base: the output giving the features
    cache_dir: str | None = None       # feature cache; None: no cache
    force: bool = False
    timeout: float = 3600.0


_MAIN_METRIC = {"classify": "accuracy", "embed": "recall_at_1", "regress": "r2"}


@dataclass(frozen=True)
class AdaptResult:
    out_dir: str
    base: str
    base_identity: str
    data: str
    data_digest: str
    holdout: str | None
    holdout_digest: str | None
    options: AdaptOptions
    meta: dict[str, Any]               # what the training child wrote into the adapter's metadata
    record: BuildRecord
    wall_seconds: float                # the whole command: checks, build, reading back
    files: dict[str, str] = field(default_factory=dict)   # role -> path relative to out_dir

    @property
    def classes(self) -> list[str]:
        return list(self.meta.get("classes", []))

    @property
    def val_accuracy(self) -> float:
        """Classify: accuracy; embed: recall@1 after; regress: R^2."""
        return float(self.meta["validation"][_MAIN_METRIC[self.options.task]])

    @property
    def holdout_accuracy(self) -> float | None:
        h = self.meta.get("holdout")
        return None if h is None else float(h[_MAIN_METRIC[self.options.task]])

    def output_identity(self, name: str) -> str | None:
        for o in self.record.outputs:
            if o.name == name:
                return o.content
        return None


def entry_script() -> str:
    """The packaged training script (found, never imported: it imports torch)."""
    spec = importlib.util.find_spec("assay.runtime")
    assert spec is not None and spec.submodule_search_locations
    return os.path.join(next(iter(spec.submodule_search_locations)), ENTRY_FILE)


def default_cache_dir() -> str:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "assay", "features")


def _check_options(o: AdaptOptions) -> None:
    if o.task not in TASKS:
        raise UsageError(None, f"task {o.task!r} is not supported yet (supported: {', '.join(TASKS)})")
    if o.method not in METHODS:
        raise UsageError(None, f"method {o.method!r} is not one of {', '.join(METHODS)}")
    if o.task == "embed" and o.method == "lora":
        raise UsageError(None, "--task embed trains a projection of frozen features: use --method head")
    if o.head not in ("linear", "mlp"):
        raise UsageError(None, f"head {o.head!r} is not linear or mlp")
    bad = [t for t in o.targets if t not in LORA_TARGETS]
    if bad or not o.targets:
        raise UsageError(None, f"LoRA targets must be among {', '.join(LORA_TARGETS)} "
                               f"(got {', '.join(o.targets)})")
    if not 0 < o.val_fraction < 1:
        raise UsageError(None, "the validation fraction must be between 0 and 1")
    if o.lora_layers < 0:
        raise UsageError(None, "--lora-layers must be 0 (every layer) or more")
    if o.rank < 1 or o.threads < 1 or o.epochs < 1 or o.lora_epochs < 1:
        raise UsageError(None, "rank, threads and epochs must be at least 1")


def _package_location(folder: str) -> tuple[str, str] | None:
    """(top-level package, resource path) when `folder` is inside an installed package."""
    folder = os.path.realpath(folder)
    p = folder
    while True:
        parent = os.path.dirname(p)
        if parent == p:
            return None
        if os.path.isfile(os.path.join(p, "__init__.py")) and \
                not os.path.isfile(os.path.join(parent, "__init__.py")):
            name = os.path.basename(p)
            try:
                spec = importlib.util.find_spec(name)        # finds, never executes
            except (ImportError, ValueError):
                spec = None
            roots = [os.path.realpath(r) for r in (spec.submodule_search_locations or [])] if spec else []
            if p in roots and name.isidentifier():
                return name, os.path.relpath(folder, p).replace(os.sep, "/")
            return None
        p = parent


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _input_block(name: str, kind: str, digest: str, path: str | None = None,
                 module: tuple[str, str] | None = None) -> str:
    lines = [f"[inputs.{name}]", f"kind = {_toml_value(kind)}"]
    if module is not None:
        lines += [f"module = {_toml_value(module[0])}", f"resource = {_toml_value(module[1])}"]
    else:
        lines.append(f"path = {_toml_value(path)}")
    lines.append(f"digest = {_toml_value(digest)}")
    return "\n".join(lines)


def params_of(o: AdaptOptions, modality: str = "text") -> dict[str, Any]:
    p: dict[str, Any] = {"task": o.task, "modality": modality, "method": o.method, "head": o.head,
                         "hidden": o.hidden,
                         "text_column": o.text_column, "label_column": o.label_column,
                         "val_fraction": o.val_fraction, "epochs": o.epochs, "patience": o.patience,
                         "lr": o.lr, "weight_decay": "auto", "batch_size": o.batch_size,
                         "feature_cache": o.cache_dir or ""}
    if o.method == "head" and o.task != "embed":
        p["refit"] = o.refit
    if o.output:
        p["output"] = o.output
    if o.method == "lora":
        p.update(rank=o.rank, alpha=o.alpha, lora_epochs=o.lora_epochs,
                 lora_patience=o.lora_patience, lora_lr=o.lora_lr, lora_batch_size=o.lora_batch_size)
        if modality == "text":
            p.update(targets=list(o.targets), lora_layers=o.lora_layers)
    return p


def write_recipe(folder: str, name: str, base: str, base_identity: str, train: adapt_data.Examples,
                 holdout: adapt_data.Examples | None, o: AdaptOptions, modality: str = "text") -> str:
    """Write the recipe folder; returns the recipe's path."""
    os.makedirs(folder)
    entry_src = entry_script()
    shutil.copyfile(entry_src, os.path.join(folder, ENTRY_FILE))
    blocks = []
    for role, ex in (("train", train), ("holdout", holdout)):
        if ex is None:
            continue
        if modality in ("image", "onnx") and adapt_data.has_image_files(ex):
            fname = _write_manifest(folder, role, ex, o)
        else:
            fname = f"{role}.{ex.format}"
            shutil.copyfile(ex.path, os.path.join(folder, fname))
        blocks.append(_input_block(role, "data", file_digest(os.path.join(folder, fname)), path=fname))
    where = _package_location(base)
    if modality == "onnx":              # a graph runs as written: pin the file's bytes, not its tensors
        blocks.append(_input_block("base", "data", file_digest(base), path=os.path.abspath(base)))
    else:
        blocks.append(_input_block("base", "weights", base_identity,
                                   path=None if where else os.path.abspath(base), module=where))
    side = [f for f in SIDE_FILES if os.path.isfile(os.path.join(base, f))] if os.path.isdir(base) else []
    for i, rel in enumerate(side):
        mod = (where[0], f"{where[1]}/{rel}") if where else None
        blocks.append(_input_block(f"base_file_{i}", "data", file_digest(os.path.join(base, rel)),
                                   path=None if where else os.path.abspath(os.path.join(base, rel)),
                                   module=mod))
    from assay.recipes.environment import package_version
    packages = {k: v for k in RECORDED_PACKAGES if (v := package_version(k))}
    py = ".".join(str(x) for x in sys.version_info[:2])
    goal = "numeric labels" if o.task == "regress" else f"{len(train.classes)} classes"
    description = f"{o.method} {o.task} adaptation of {os.path.basename(os.path.normpath(base))} to {goal}"
    outputs = {"adapter": ADAPTER_FILE, **({"merged": MERGED_FILE} if o.method == "lora" else {})}
    text = "\n".join([
        "# Written by `assay adapt`: rebuild with `assay rebuild recipe.toml -o DIR`. "
        "Format: docs/recipes.md.",
        f'schema = "{schema.SCHEMA}"',
        f"name = {_toml_value(name)}",
        f"description = {_toml_value(description)}",
        "",
        "[entry]                  # assay's packaged training script (assay/runtime/adapt_train.py)",
        f'path = "{ENTRY_FILE}"',
        f"digest = {_toml_value(file_digest(entry_src))}",
        "",
        "\n\n".join(blocks),
        "",
        "[params]",
        *(f"{k} = {_toml_value(v)}" for k, v in params_of(o, modality).items()),
        "",
        "[build]",
        f"seed = {o.seed}",
        f"threads = {o.threads}",
        f"python = {_toml_value(py)}",
        f"packages = {_toml_value(packages)}",
        f"timeout = {o.timeout!r}",
        "",
        *(f"[outputs.{k}]\nfile = {_toml_value(v)}\n" for k, v in outputs.items()),
    ])
    path = os.path.join(folder, "recipe.toml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _write_manifest(folder: str, role: str, ex: adapt_data.Examples, o: AdaptOptions) -> str:
    """Image files are copied to `ROLE-images/` beside the recipe and listed in `ROLE.csv` with
    their labels and BLAKE3 digests: the recipe pins the manifest, the manifest pins the images
    (the training child checks each image against it)."""
    import csv
    sub = f"{role}-images"
    os.makedirs(os.path.join(folder, sub))
    rows = []
    for i, t in enumerate(ex.texts):
        if adapt_data.is_pixels(t):
            rows.append([t, (ex.labels or ())[i] if ex.labels else "", ""])
            continue
        rel = f"{sub}/{i:06d}{os.path.splitext(t)[1].lower()}"
        shutil.copyfile(t, os.path.join(folder, rel))
        rows.append([rel, ex.labels[i] if ex.labels else "", file_digest(os.path.join(folder, rel))])
    fname = f"{role}.csv"
    with open(os.path.join(folder, fname), "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([o.text_column, o.label_column, adapt_data.DIGEST_COLUMN])
        w.writerows(rows)
    return fname


def _prepare(out_dir: str, force: bool) -> None:
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not force:
            raise UsageError(out_dir, "output folder is not empty (use --force to replace an earlier adapt)")
        if not os.path.isfile(os.path.join(out_dir, REPORT_FILE)) and \
                not os.path.isdir(os.path.join(out_dir, RECIPE_DIR)):
            raise UsageError(out_dir, "output folder is not an earlier adapt output; not touching it")
        shutil.rmtree(out_dir)
    elif os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError(out_dir, "output path exists and is not a folder")


class _Follower(threading.Thread):
    """Follows the child's build log and turns its `progress` lines into callbacks."""

    def __init__(self, path: str, callback: Progress) -> None:
        super().__init__(daemon=True)
        self.path, self.callback, self.done = path, callback, threading.Event()

    def run(self) -> None:
        pos = 0
        while True:
            finished = self.done.is_set()
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(pos)
                    chunk = fh.read()
            except OSError:
                chunk = b""
            if chunk:
                end = chunk.rfind(b"\n") + 1
                pos += end
                for line in chunk[:end].decode("utf-8", "replace").splitlines():
                    parts = [*line.split(" ", 4), "", ""]
                    if parts[0] == "progress" and parts[2].isdigit() and parts[3].isdigit():
                        self.callback(parts[1], int(parts[2]), int(parts[3]), parts[4])
            if finished:
                return
            self.done.wait(0.2)


def _base_modality(base: str, o: AdaptOptions, open_model: OpenModel) -> tuple[str, Any]:
    """("text", None) for a sentence-encoder folder; ("image", (channels, side)) for a small CNN's
    weight file; ("onnx", the features model) for an ONNX model with a named output."""
    if os.path.isdir(base):
        from assay.runtime.encoder import read_spec
        read_spec(base)
        return "text", None
    if not os.path.isfile(base):
        raise UsageError(base, "no such file or folder: the base is a sentence-encoder folder, the "
                               "weight file of a small CNN, or an ONNX model")
    from assay.formats import detect
    if detect(base)[0].name == "onnx":
        if o.method == "lora":
            raise UsageError(base, "LoRA needs a network assay builds in code; an ONNX graph runs as "
                                   "written: use --method head")
        from assay.runtime.onnx_model import OnnxFeatures
        return "onnx", OnnxFeatures(base, o.output)
    if o.output:
        raise UsageError(base, "--onnx-output names an output of an ONNX base; this base is not one")
    from assay.runtime.vision import shapes
    c_in, _, _, _, side = shapes(open_model(base))
    return "image", (c_in, side)


def adapt(base: str, data: str, out_dir: str, options: AdaptOptions, open_model: OpenModel, *,
          holdout: str | None = None, progress: Progress | None = None,
          log: Log | None = None) -> AdaptResult:
    """Check everything, write the recipe into `out_dir/recipe`, build it, read the result back."""
    t0 = time.monotonic()
    o = options
    _check_options(o)
    modality, net = _base_modality(base, o, open_model)   # an unsupported base fails here, first
    read = adapt_data.reader({"text_column": o.text_column, "label_column": o.label_column,
                              "modality": modality})
    train = read(data)
    hold = None if holdout is None else read(holdout)
    for ex in (train, hold):
        if ex is not None and modality == "text" and ex.format == "folder":
            raise adapt_data.DataError(ex.path, "a folder of images needs an image base (a small CNN's "
                                                "weight file or an ONNX model); this base is a text encoder")
    adapt_data.check_training(train, task=o.task)
    if hold is not None:
        adapt_data.check_holdout(hold, train.classes, task=o.task)
    for ex in (train, hold):
        if ex is not None and modality == "image":
            adapt_data.check_images(ex, *net)
        elif ex is not None and modality == "onnx":
            net.check(ex)
    from assay.analyses import identity
    base_identity = identity.identify(open_model(base)).content if modality != "onnx" else ""
    out_dir = os.path.abspath(out_dir)
    _prepare(out_dir, o.force)
    os.makedirs(out_dir, exist_ok=True)
    name = f"adapt-{os.path.basename(out_dir)}"
    if not re.fullmatch(schema.NAME_RE, name):
        name = "adapt"
    recipe_path = write_recipe(os.path.join(out_dir, RECIPE_DIR), name, base, base_identity, train, hold, o,
                               modality)
    loaded = schema.load(recipe_path)
    build_dir = os.path.join(out_dir, ".build")
    follower = None
    if progress is not None:
        os.makedirs(build_dir, exist_ok=True)
        follower = _Follower(os.path.join(build_dir, build_record.LOG), progress)
        follower.start()
    try:           # a failed build keeps its folder: the error names the log inside it
        runner.rebuild(loaded, build_dir, open_model, threads=o.threads, force=True, log=log)
    finally:
        if follower is not None:
            follower.done.set()
            follower.join()
    files = {"recipe": os.path.relpath(recipe_path, out_dir)}
    for f in os.listdir(build_dir):
        os.replace(os.path.join(build_dir, f), os.path.join(out_dir, f))
    os.rmdir(build_dir)
    rec = build_record.read(os.path.join(out_dir, build_record.FILE))   # moved beside the outputs
    files.update({o_.name: o_.file for o_ in rec.outputs})
    files["record"] = build_record.FILE
    files["log"] = build_record.LOG
    adapter = open_model(os.path.join(out_dir, ADAPTER_FILE))
    meta = json.loads(adapter.metadata.get("safetensors", {}).get("assay.adapt", "{}"))
    pins = loaded.recipe.inputs              # the data as pinned (an image manifest covers its images)
    return AdaptResult(out_dir, os.path.abspath(base), base_identity or pins["base"].digest,
                       os.path.abspath(data), pins["train"].digest,
                       None if holdout is None else os.path.abspath(holdout),
                       None if holdout is None else pins["holdout"].digest, o, meta, rec,
                       time.monotonic() - t0, files)

