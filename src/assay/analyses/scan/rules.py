"""Scan rules: small passes over one file's observations, each yielding findings under a
stable ID. A rule never reads the file; it judges what the reader recorded."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from assay.analyses.scan.keras_names import BUILTIN_LAYERS, CODE_CARRIERS
from assay.analyses.scan.model import Finding
from assay.analyses.scan.policy import Policy
from assay.model.artifact import Location, Observation


@dataclass(frozen=True)
class Context:
    """What a rule sees of one file: its observations, format, policy and reading error."""
    path: str
    format: str | None
    observations: tuple[Observation, ...]
    policy: Policy
    error: str | None = None           # the reader's one-line error, if it failed
    error_kind: str | None = None      # the error class name

    # observations by kind, in file order: each rule asks for one or two kinds, and there are
    # a score of rules over what can be thousands of observations
    _by_kind: dict[str, list[Observation]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[Observation]] = {}
        for o in self.observations:
            index.setdefault(o.kind, []).append(o)
        object.__setattr__(self, "_by_kind", index)

    def of(self, *kinds: str) -> Iterator[Observation]:
        present = [k for k in kinds if k in self._by_kind]
        if len(present) <= 1:
            return iter(self._by_kind[present[0]]) if present else iter(())
        return (o for o in self.observations if o.kind in kinds)     # several kinds: file order


Check = Callable[[Context], Iterable[Finding]]


class Rule(NamedTuple):
    """A registered check with its stable ID, family, default severity and title."""
    id: str
    family: str
    severity: str
    title: str
    check: Check


RULES: list[Rule] = []


def rule(id: str, family: str, severity: str, title: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        RULES.append(Rule(id, family, severity, title, fn))
        return fn
    return register


def find(rule_id: str, severity: str, message: str, loc: Location) -> Finding:
    return Finding(rule_id, severity, message, loc)


# -- pickle ------------------------------------------------------------------------------------
DUNDER = re.compile(r"^__\w+__$")
LEGIT_DUNDER_MODULES = {"__builtin__", "__main__", "__torch__", "__mp_main__"}


def _nested(o: Observation) -> str:
    n = o.data.get("nested", 0)
    return f" (in a pickle nested {n} deep)" if n else ""


INTERNALS = {"__builtins__", "__globals__", "__subclasses__", "__class__", "__base__", "__bases__",
             "__mro__", "__dict__", "__code__", "__func__", "__self__", "__init__", "__getattribute__",
             "__reduce__", "__reduce_ex__", "__closure__", "__loader__", "__spec__", "__module__"}


def _traversal(module: str, name: str) -> str | None:
    """Why an imported name walks through attributes, or None."""
    parts = name.split(".")
    if any(p in INTERNALS for p in parts) or (len(parts) > 1 and any(DUNDER.match(p) for p in parts)):
        return "walks through a dunder attribute"
    if any(DUNDER.match(p) for p in module.split(".")) and module.split(".")[0] not in LEGIT_DUNDER_MODULES:
        return "walks through a dunder attribute"
    return None


def _suffixes(qualname: str) -> list[str]:
    """`pathlib.os.system` -> [`os.system`, ...]: names a traversal could be reaching."""
    parts = qualname.split(".")
    return [".".join(parts[i:]) for i in range(1, len(parts) - 1)]


def _judge_name(ctx: Context, name: str, module: str, short: str, o: Observation,
                verb: str) -> Finding | None:
    """One finding for one imported or called name, from the most specific rule."""
    loc = o.location
    pol = ctx.policy
    trav = _traversal(module, short) if short else None
    v = pol.classify(name, ctx.format)
    if trav is None and "." in short:
        # a dotted name inside STACK_GLOBAL/GLOBAL is resolved by getattr traversal
        for suffix in _suffixes(name):
            sv = pol.classify(suffix.replace("__builtins__", "builtins"), ctx.format)
            if sv.kind == "dangerous":
                trav = f"reaches {suffix}"
                break
    if trav is not None and v.kind != "safe":
        return find("PICKLE003", "critical", f"{verb} {name}: the name {trav}{_nested(o)}", loc)
    if v.kind == "dangerous" and v.entry is not None:
        return find(v.entry.rule, v.entry.severity, f"{verb} {name}: {v.entry.reason}{_nested(o)}", loc)
    if v.kind == "unknown":
        return find("PICKLE002", pol.unknown_severity,
                    f"{verb} {name}, which is not known to be safe in a {ctx.format or 'pickle'} "
                    f"file{_nested(o)}", loc)
    return None


@rule("PICKLE001", "pickle", "critical", "dangerous callable imported or called")
def pickle_imports(ctx: Context) -> Iterator[Finding]:
    """Judges every import (and every call reached through getattr-style chains); the finding
    carries the most specific rule ID: PICKLE001/002/003/004/005."""
    for o in ctx.of("pickle.import"):
        f = _judge_name(ctx, o.detail, o.data.get("module", ""), o.data.get("name", ""), o, "imports")
        if f is not None:
            yield f
    for o in ctx.of("pickle.call"):
        via = o.data.get("via")
        if via in ("global", None):
            continue          # judged as an import above
        target = o.detail
        if not o.data.get("resolved", False):
            yield find("PICKLE004", "high", f"calls an attribute chosen at load time ({via}){_nested(o)}",
                       o.location)
            continue
        mod, _, short = target.rpartition(".")
        f = _judge_name(ctx, target, mod, short, o, f"calls (via {via})")
        if f is not None:
            if f.rule == "PICKLE002":
                f = find("PICKLE004", "high", f"calls {target} through {via}, which is not known to be "
                         f"safe{_nested(o)}", o.location)
            yield f


@rule("PICKLE006", "pickle", "high", "nested pickle")
def nested_pickle(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("pickle.nested"):
        yield find("PICKLE006", "high", f"carries a nested pickle: {o.detail}", o.location)


@rule("PICKLE007", "pickle", "medium", "extension-registry opcodes")
def extension_codes(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("pickle.extension"):
        yield find("PICKLE007", "medium", f"uses {o.detail}, resolved through copyreg's registry",
                   o.location)


@rule("PICKLE008", "pickle", "high", "pickle where none is expected")
def unexpected_pickle(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("trailing.bytes", "archive.member", "archive.comment"):
        if o.data.get("looks_like") != "pickle":
            continue
        if o.kind == "archive.member" and ctx.format in ("pytorch-zip", "torchscript"):
            continue      # the PyTorch reader runs every pickle member through the machine
        where = {"trailing.bytes": "after the end of the data", "archive.comment": "in the archive comment"
                 }.get(o.kind, f"in member {o.detail}")
        yield find("PICKLE008", "high", f"a pickle hides {where}", o.location)


# -- archives ----------------------------------------------------------------------------------
ODDITY_RULES = {
    "traversal": ("ARCHIVE001", "high"), "name-mismatch": ("ARCHIVE002", "high"),
    "method-mismatch": ("ARCHIVE002", "high"), "duplicate": ("ARCHIVE003", "high"),
    "overlap": ("ARCHIVE004", "high"), "crc": ("ARCHIVE005", "medium"),
    "ratio": ("ARCHIVE006", "high"), "encrypted": ("ARCHIVE007", "medium"),
    "prefix": ("ARCHIVE009", "high"),
}


@rule("ARCHIVE001", "archive", "high", "archive oddities")
def archive_oddities(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("archive.oddity"):
        rid, sev = ODDITY_RULES.get(o.data.get("code", ""), ("ARCHIVE002", "medium"))
        yield find(rid, sev, f"archive member {o.location.member or ''}: {o.detail}".replace(
            "member : ", ""), o.location)


NESTED = {"zip", "gzip", "bzip2", "xz", "7z", "rar", "tar"}


@rule("ARCHIVE008", "archive", "medium", "nested archive")
def nested_archive(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("archive.member"):
        kind = o.data.get("looks_like")
        if kind in NESTED:
            yield find("ARCHIVE008", "medium", f"member {o.detail} is itself a {kind} archive", o.location)


@rule("ARCHIVE009", "archive", "high", "polyglot")
def polyglot(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("trailing.bytes", "archive.comment"):
        kind = o.data.get("looks_like")
        if kind in NESTED | {"gguf", "npy", "hdf5", "elf", "pe", "script"}:
            yield find("ARCHIVE009", "high", f"the file is also a {kind}: {o.detail}", o.location)


@rule("ARCHIVE010", "archive", "medium", "legacy tar PyTorch file")
def legacy_tar(ctx: Context) -> Iterator[Finding]:
    if ctx.format == "pytorch-tar":
        yield find("ARCHIVE010", "medium", "legacy tar-format PyTorch checkpoint (read by torch.load's "
                   "oldest code path)", Location(ctx.path))


# -- keras -------------------------------------------------------------------------------------
LOADER_NAMES = re.compile(r"(get_file|load_model|load_weights|urlopen|urlretrieve|requests\.|open\b|"
                          r"exec|eval|__import__|subprocess|os\.system)")


@rule("KERAS001", "keras", "critical", "Lambda layer")
def keras_lambda(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("keras.lambda"):
        what = "marshalled Python bytecode" if o.data.get("code") else "a named Python function"
        yield find("KERAS001", "critical", f"Lambda layer {o.data.get('layer') or o.detail!s} runs {what} "
                   "when the model is loaded or called", o.location)


@rule("KERAS002", "keras", "high", "custom code outside keras")
def keras_custom(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("symbolic.object"):
        if ctx.format not in ("keras", "hdf5-keras"):
            continue
        module = str(o.data.get("module", ""))
        cls = str(o.data.get("class_name", o.detail))
        text = f"{module}.{cls}"
        if LOADER_NAMES.search(text):
            yield find("KERAS003", "high", f"config names {text}, which loads files or URLs", o.location)
        else:
            yield find("KERAS002", "high", f"config needs {text} (code outside keras) to load", o.location)


KERAS_MODULES = ("keras", "tensorflow", "tf_keras")


@rule("KERAS003", "keras", "high", "config calling loaders")
def keras_loader_calls(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("keras.layer"):
        blob = " ".join(str(v) for v in o.data.values())
        module = str(o.data.get("module") or "")
        registered = str(o.data.get("registered_name") or "")
        cls = str(o.data.get("class_name") or "")
        if "get_file" in blob or "load_model" in blob:
            yield find("KERAS003", "high", f"layer {o.detail} names a function that loads files or URLs",
                       o.location)
        elif (module and not module.startswith(KERAS_MODULES)) or ">" in registered:
            yield find("KERAS002", "high", f"layer {o.detail} needs {module or registered} (code outside "
                       "keras) to load", o.location)
        elif cls in CODE_CARRIERS:
            rid, why = CODE_CARRIERS[cls]
            yield find(rid, "high", f"layer {o.detail} {why}", o.location)
        elif not module and not registered and cls and cls not in BUILTIN_LAYERS:
            yield find("KERAS002", "high", f"layer {o.detail} is not a Keras layer class: loading it needs "
                       "custom code (custom_objects)", o.location)


# -- onnx, gguf, safetensors -------------------------------------------------------------------
@rule("ONNX001", "onnx", "high", "external data outside the folder")
def onnx_external(ctx: Context) -> Iterator[Finding]:
    if ctx.format == "onnx" and ctx.error and ("outside" in ctx.error or "escape" in ctx.error
                                               or "absolute" in ctx.error or "symlink" in ctx.error):
        yield find("ONNX001", "high", f"external data reference refused: {ctx.error}", Location(ctx.path))
    for o in ctx.of("external.data"):
        if o.data.get("escapes"):
            yield find("ONNX001", "high", f"external data at {o.detail} lies outside the model folder",
                       o.location)


STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training",
                    "com.microsoft", "com.microsoft.nchwc", "org.pytorch.aten", "com.microsoft.experimental"}


@rule("ONNX002", "onnx", "medium", "custom operator domain")
def onnx_domains(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("onnx.domain"):
        if o.detail not in STANDARD_DOMAINS:
            yield find("ONNX002", "medium", f"operators from the custom domain {o.detail!r} need native code "
                       "the runtime must load", o.location)


@rule("GGUF001", "gguf", "high", "malformed GGUF header")
def gguf_header(ctx: Context) -> Iterator[Finding]:
    if ctx.format == "gguf" and ctx.error:
        yield find("GGUF001", "high", f"malformed GGUF header ({ctx.error}); parsers that trust these "
                   "counts overflow", Location(ctx.path))


@rule("SAFETENSORS001", "safetensors", "high", "broken safetensors header")
def safetensors_header(ctx: Context) -> Iterator[Finding]:
    if ctx.format == "safetensors" and ctx.error:
        yield find("SAFETENSORS001", "high", f"header breaks the format ({ctx.error})", Location(ctx.path))


# -- format ------------------------------------------------------------------------------------
SAFE_SUFFIXES = {".safetensors": "safetensors", ".gguf": "gguf", ".onnx": "onnx", ".npy": "numpy-npy",
                 ".npz": "numpy-npz", ".h5": "hdf5-keras", ".hdf5": "hdf5-keras", ".keras": "keras",
                 ".txt": None, ".json": None, ".md": None, ".jinja": None, ".yaml": None, ".csv": None}
EXECUTING = {"pickle", "joblib", "pytorch-zip", "pytorch-legacy", "pytorch-tar", "torchscript"}


@rule("FORMAT001", "format", "medium", "content does not match the extension")
def extension(ctx: Context) -> Iterator[Finding]:
    suffix = "." + ctx.path.rsplit(".", 1)[1].lower() if "." in ctx.path.rsplit("/", 1)[-1] else ""
    if suffix in SAFE_SUFFIXES and ctx.format in EXECUTING:
        yield find("FORMAT001", "medium", f"named {suffix} but holds a {ctx.format} file, which runs code "
                   "when loaded", Location(ctx.path))


@rule("FORMAT002", "format", "high", "trailing data")
def trailing_data(ctx: Context) -> Iterator[Finding]:
    for o in ctx.of("trailing.bytes"):
        if o.data.get("looks_like") in NESTED | {"pickle", "gguf", "npy", "hdf5", "elf", "pe", "script"}:
            continue      # reported as a polyglot or a hidden pickle
        yield find("FORMAT002", "low" if not o.data.get("looks_like") else "high",
                   f"data after the end of the format: {o.detail}", o.location)


# -- templates ---------------------------------------------------------------------------------
@rule("TEMPLATE001", "template", "critical", "chat template sandbox escape")
def templates(ctx: Context) -> Iterator[Finding]:
    found = list(ctx.of("template"))
    if not found:
        return
    from assay.analyses.scan.templates import UnparsableTemplate, analyse_template
    for o in found:
        text = o.data.get("text")
        if not isinstance(text, str):
            continue
        try:
            issues = analyse_template(text)
        except UnparsableTemplate as exc:
            yield find("TEMPLATE002", "medium", f"chat template {o.detail} does not parse ({exc}); "
                       "a runtime would refuse or mis-render it", o.location)
            continue
        for i in issues:
            sev = "critical" if i.rule == "TEMPLATE001" else "high"
            line = f" line {i.line}" if i.line else ""
            yield find(i.rule, sev, f"chat template {o.detail}{line}: {i.message}", o.location)
