"""The public Python API: the only module that joins format readers to analyses.

    >>> import assay
    >>> art = assay.open_model("model.safetensors")      # never executes file content
    >>> art.tensors[0].name, art.tensors[0].read().shape
    >>> assay.inspect("model.safetensors").parameters
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from assay.errors import FormatError, UsageError
from assay.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from assay.adapt.cost import CostReport
    from assay.adapt.plan import AdaptOptions, AdaptResult
    from assay.adapt.predict import Predictions
    from assay.analyses.audit import AssociationTest, AuditReport, Comparison, Embedder
    from assay.analyses.audit import Settings as AuditSettings
    from assay.analyses.audit.fairness import FairnessReport
    from assay.analyses.diff import DiffResult
    from assay.analyses.identity import Identity, Manifest, Verification
    from assay.analyses.lineage.forest import Forest
    from assay.analyses.lineage.types import Fingerprint, Verdict
    from assay.analyses.scan import FileScan, Policy, ScanReport
    from assay.analyses.summary import Summary
    from assay.catalog import Added, Catalog, Entry, FindResult, Removed
    from assay.errors import AssayError
    from assay.model.artifact import ModelArtifact
    from assay.recipes.challenge import ChallengeResult
    from assay.recipes.record import BuildRecord
    from assay.recipes.schema import LoadedRecipe

# Readers and analyses are imported by the functions that use them, so that reading a header
# (`inspect`) or scanning a folder (`scan`) starts fast: each command pays for what it uses.


def open_model(path: str, limits: Limits = DEFAULT_LIMITS) -> ModelArtifact:
    """Read a weight file or model folder into the tensor model. Raises `AssayError` on bad input."""
    from assay.formats import read_path
    return read_path(str(path), limits)


def inspect(path: str, *, tensors: bool = False, limits: Limits = DEFAULT_LIMITS) -> Summary:
    """Summarise a weight file or folder: format, files, totals, dtypes, largest tensors."""
    from assay.analyses.summary import summarize
    return summarize(open_model(path, limits), with_tensors=tensors)


def identify(path: str, *, limits: Limits = DEFAULT_LIMITS,
             progress: Callable[[int], None] | None = None,
             on_open: Callable[[ModelArtifact], None] | None = None) -> Identity:
    """Content and named identity of the weights at `path` (see docs/identity.md)."""
    art = open_model(path, limits)
    if on_open:
        on_open(art)
    from assay.analyses import identity
    try:
        return identity.identify(art, progress)
    except OSError as exc:
        raise FormatError(path, f"read failed while hashing: {exc}") from None


def read_manifest(path: str) -> Manifest:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(64 << 20)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(path, f"cannot read manifest: {exc}") from None
    from assay.documents import manifest
    return manifest.from_text(text, path)


def verify(manifest_path: str, path: str, *, limits: Limits = DEFAULT_LIMITS,
           progress: Callable[[int], None] | None = None) -> Verification:
    """Check the weights at `path` against a manifest written by `assay id --manifest`."""
    from assay.analyses import identity
    m = read_manifest(manifest_path)
    return identity.verify(identify(path, limits=limits, progress=progress), m)


def diff(a: str, b: str, *, limits: Limits = DEFAULT_LIMITS,
         progress: Callable[[int], None] | None = None,
         on_open: Callable[[ModelArtifact, ModelArtifact], None] | None = None) -> DiffResult:
    """What changed from the weights at `a` to those at `b`, and how they relate."""
    art_a, art_b = open_model(a, limits), open_model(b, limits)
    if on_open:
        on_open(art_a, art_b)
    from assay.analyses import diff as diff_analysis
    try:
        return diff_analysis.diff(art_a, art_b, progress)
    except OSError as exc:
        raise FormatError(f"{a} / {b}", f"read failed while comparing: {exc}") from None


# -- scan --------------------------------------------------------------------------------------
def expand_paths(paths: list[str], limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, bool, int]]:
    """Files to scan: (path, named explicitly, size). Folders are walked recursively, in sorted
    order (a folder's files before its subfolders'), without following symlinked folders;
    every file is looked at whatever its name."""
    import os
    out: list[tuple[str, bool, int]] = []
    cap = limits.max_folder_files * 100

    def walk(folder: str, top: str) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        subfolders = []
        for e in entries:
            try:
                if e.is_dir():
                    if not e.is_symlink():
                        subfolders.append(e.path)
                elif e.is_file():
                    out.append((e.path, False, e.stat().st_size))
                    if len(out) > cap:
                        raise UsageError(top, "more files than a scan takes in one call")
            except OSError:         # gone, or a link to nowhere: nothing to scan
                continue
        for sub in subfolders:
            walk(sub, top)

    for p in paths:
        if not os.path.exists(p):
            raise UsageError(p, "no such file or folder")
        if os.path.isfile(p):
            out.append((p, True, os.path.getsize(p)))
        else:
            walk(p, p)
    return out


def scan_file(path: str, policy: Policy | None = None, limits: Limits = DEFAULT_LIMITS) -> FileScan:
    """Read one file (never executing it) and judge what was recorded."""
    import dataclasses
    import time

    from assay.analyses.scan import judge
    from assay.errors import AssayError, UnknownFormatError
    from assay.formats import detect

    t0 = time.perf_counter()
    fmt: str | None = None
    try:
        reader, probe = detect(path, limits)
        fmt = reader.name
        art = reader.read(probe)
    except UnknownFormatError as exc:
        res = judge(path, None, exc.observations, policy, None, None, time.perf_counter() - t0)
        return dataclasses.replace(res, skipped=exc.reason)
    except AssayError as exc:
        return judge(path, fmt, exc.observations, policy, exc.one_line(), type(exc).__name__,
                     time.perf_counter() - t0)
    except (RecursionError, MemoryError) as exc:
        return judge(path, fmt, [], policy, f"{path}: structure too deep or too large ({type(exc).__name__})",
                     type(exc).__name__, time.perf_counter() - t0)
    except OSError as exc:
        return judge(path, fmt, [], policy, f"{path}: cannot read: {exc.strerror or exc}", "OSError",
                     time.perf_counter() - t0)
    return judge(path, art.format, art.observations, policy, None, None, time.perf_counter() - t0)


def scan(paths: list[str], *, policy: Policy | None = None, workers: int | None = None,
         seconds_per_file: float = 60.0, limits: Limits = DEFAULT_LIMITS,
         progress: Callable[[int, int], None] | None = None) -> ScanReport:
    """Scan files and folders in parallel worker processes; one hostile file cannot stall or
    crash the run (it gets an error entry). Files no reader recognises inside a folder are
    listed as skipped; named explicitly, they are errors."""
    import dataclasses
    from functools import partial

    from assay import jobs

    items = expand_paths(paths, limits)
    files = [p for p, _, _ in items]
    # The workers fork from a nursery that has imported the readers and rules (`_prepare`);
    # the command line starts it early (`prestart_scan`). Files with a chat template all go
    # to one worker: only that one imports Jinja.
    group: list[str | None] = []
    if not items:
        jobs.discard_prestarted()
    else:
        from assay.formats import libraries_needed
        group = ["jinja2" if "jinja2" in libs else None for libs in libraries_needed(files)]
    prepare = None if jobs.prestarted() else _prepare
    cost = [_scan_cost(size) for _, _, size in items]
    results: list[FileScan | None] = [None] * len(items)
    work: jobs.Work
    if policy is None or policy.source:      # named, so that a prestarted nursery can build it
        work = jobs.Call("assay.api:_scan_worker", (policy.source if policy else None,
                                                    policy.name if policy else None,
                                                    dataclasses.astuple(limits)))
    else:
        work = partial(_scan_to_wire, policy=policy, limits=limits)
    budget = jobs.Budget(seconds=seconds_per_file)
    done = 0
    for idx, out in jobs.run(work, files, workers=workers, budget=budget,
                             prepare=prepare, cost=cost, group=group):
        from assay.analyses.scan import FileScan  # here: imported while workers read
        if isinstance(out, jobs.Failed):
            results[idx] = FileScan(files[idx], None, error=f"{files[idx]}: {out.reason}")
        else:
            results[idx] = FileScan.from_wire(out)
        done += 1
        if progress:
            progress(done, len(items))
    from assay.analyses.scan import DEFAULT_POLICY_NAME, ScanReport

    final = []
    for (_path, named, _size), r in zip(items, results, strict=True):
        assert r is not None
        if r.skipped and named:   # the user asked for this file: not recognising it is an error
            r = dataclasses.replace(r, error=f"{r.path}: {r.skipped}", skipped=None)
        final.append(r)
    totals = {"files": len(final), "findings": sum(len(r.findings) for r in final),
              "errors": sum(1 for r in final if r.status == "error"),
              "skipped": sum(1 for r in final if r.skipped)}
    return ScanReport(tuple(final), policy.name if policy else DEFAULT_POLICY_NAME, totals)


def _scan_to_wire(path: str, policy: Policy | None, limits: Limits) -> tuple:
    return scan_file(path, policy, limits).to_wire()


def _scan_worker(policy_source: str | None, policy_name: str | None,
                 limits: tuple[int, ...]) -> Callable[[str], tuple]:
    """What a scan worker runs (`jobs.Call`, built once in the nursery): scan one file, the
    result as plain values."""
    from functools import partial
    policy = None
    if policy_source is not None:
        from assay.analyses.scan.policy import parse
        policy = parse(policy_source, policy_name or "policy")
    return partial(_scan_to_wire, policy=policy, limits=Limits(*limits))


def prestart_scan() -> None:
    """Start the scan workers' nursery now (see `jobs.prestart`): a command line calls this
    before importing its own libraries, so the workers' imports happen at the same time."""
    from assay import jobs
    jobs.prestart(_prepare)


def _prepare() -> None:
    """In the scan workers' nursery, before it forks them: import every reader, the pickle
    machine, the rules and what they import on first use, and read the default policy, so
    that no worker imports its own copy. (Jinja is imported by the one worker that gets the
    files with chat templates.)"""
    import encodings.cp437  # noqa: F401  (zip member names)

    import assay.formats.pickle.facts
    import assay.formats.pickle.machine  # noqa: F401
    from assay.analyses.scan import default_policy, judge  # noqa: F401
    from assay.formats import readers
    readers()
    default_policy()


def _scan_cost(size: int) -> float:
    """A guess at how long scanning a file takes, for ordering the work: a fixed part (opening,
    sniffing, judging) worth reading about 64 KiB, plus the size."""
    return 65536.0 + size


def load_policy(path: str) -> Policy:
    """A policy TOML file (see src/assay/data/policy.toml for the format)."""
    from assay.analyses.scan.policy import PolicyError, parse
    try:
        with open(path, "rb") as fh:
            text = fh.read(16 << 20).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(path, f"cannot read policy: {exc}") from None
    try:
        return parse(text, path)
    except PolicyError as exc:
        raise UsageError(path, f"bad policy: {exc}") from None


# -- lineage: forests of many models -------------------------------------------------------------
def lineage_inputs(paths: list[str], limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """The models that `paths` name, in order, without repeats. A file is one model. A folder
    with `config.json` or a shard index, or with exactly one weight file at its top level, is one
    model; any other folder is a folder of models: each weight file at its top level and each
    non-hidden subfolder, looked at the same way (recognised by content, whatever the name)."""
    import os

    from assay.errors import AssayError
    from assay.formats import detect
    from assay.formats.folder import NOT_WEIGHTS

    def weight_files(folder: str, names: list[str]) -> list[str]:
        out = []
        for f in names:
            full = os.path.join(folder, f)
            if os.path.isfile(full):
                try:
                    if detect(full, limits)[0].name not in NOT_WEIGHTS:
                        out.append(full)
                except (AssayError, OSError):
                    continue
        return out

    out: list[str] = []

    def add(p: str, depth: int) -> None:
        if not os.path.exists(p):
            raise UsageError(p, "no such file or folder")
        if os.path.isdir(p):
            names = sorted(n for n in os.listdir(p) if not n.startswith("."))
            if len(names) > limits.max_folder_files:
                raise UsageError(p, f"folder holds more than {limits.max_folder_files} entries")
            marked = any(n == "config.json" or n.endswith(".index.json") for n in names)
            files = [] if marked else weight_files(p, names)
            if not marked and len(files) != 1:
                if depth >= 3:
                    raise UsageError(p, "folders of models nest deeper than 3 levels")
                inner = [os.path.join(p, n) for n in names
                         if os.path.join(p, n) in files or os.path.isdir(os.path.join(p, n))]
                if not inner:
                    raise UsageError(p, "folder holds no model weight file and no model folders")
                for x in inner:
                    add(x, depth + 1)
                return
        norm = os.path.normpath(p)
        if norm not in {os.path.normpath(q) for q in out}:
            out.append(p)

    for p in paths:
        add(str(p), 0)
    return out


def lineage_forest(paths: list[str], *, min_confidence: float = 0.0, limits: Limits = DEFAULT_LIMITS,
                   progress: Callable[[str, int, int], None] | None = None) -> Forest:
    """Which of the models at `paths` (files, model folders, folders of models) derives from
    which: the most likely parent(s) of each, from the weights alone (see docs/lineage.md).
    `progress(stage, done, total)` is called as models are fingerprinted and pairs judged."""
    from functools import partial

    from assay.analyses.lineage.fingerprint import lsh_keys
    from assay.analyses.lineage.forest import infer_forest
    models = lineage_inputs(paths, limits)
    if len(models) < 2:
        raise UsageError(paths[0] if paths else None, "a lineage forest needs at least two models")
    fps = []
    for i, p in enumerate(models, 1):
        fps.append(fingerprint_path(p, limits=limits))
        if progress:
            progress("fingerprinting", i, len(models))
    return infer_forest(fps, keys=lsh_keys, min_confidence=min_confidence,
                        progress=partial(progress, "comparing") if progress else None)


# -- catalog: lineage of many models in one database --------------------------------------------
def open_catalog(catalog: str | None = None) -> Catalog:
    """The catalog at a path or database URL, created or upgraded as needed (default:
    `$ASSAY_CATALOG`, else `$XDG_DATA_HOME/assay/catalog.sqlite`). Close it when done."""
    from assay.catalog import Catalog
    return Catalog.open(catalog)


def catalog_add(paths: list[str], *, catalog: str | None = None, label: str | None = None,
                limits: Limits = DEFAULT_LIMITS,
                progress: Callable[[int, int], None] | None = None,
                on_error: Callable[[AssayError], None] | None = None) -> list[Added]:
    """Fingerprint the models at `paths` (files, model folders, folders of models) and add them,
    each in its own transaction; a content identity already catalogued is not added again.
    Labels are absolute paths unless `label` names the one model added. A model that cannot be
    read raises, or with `on_error` is handed to it and skipped."""
    import os

    from assay.catalog import CatalogError
    from assay.errors import AssayError
    models = lineage_inputs(paths, limits)
    if label is not None and len(models) != 1:
        raise UsageError(paths[0] if paths else None, "a label names exactly one model")
    out = []
    with open_catalog(catalog) as cat:
        for i, p in enumerate(models, 1):
            try:
                out.append(cat.add(fingerprint_path(p, label or os.path.abspath(p), limits=limits)))
            except CatalogError:
                raise                      # the catalog itself failed: nothing more can be added
            except AssayError as exc:
                if on_error is None:
                    raise
                on_error(exc)
            if progress:
                progress(i, len(models))
    return out


def catalog_find(path: str, *, catalog: str | None = None, limit: int = 10,
                 limits: Limits = DEFAULT_LIMITS) -> FindResult:
    """The nearest catalogued relatives of the model at `path`, strongest first."""
    with open_catalog(catalog) as cat:
        return cat.find(fingerprint_path(path, limits=limits), limit=limit)


def catalog_list(*, catalog: str | None = None) -> list[Entry]:
    with open_catalog(catalog) as cat:
        return cat.entries()


def catalog_remove(targets: list[str], *, catalog: str | None = None,
                   limits: Limits = DEFAULT_LIMITS) -> tuple[list[Removed], list[str]]:
    """Take models out of the catalog, with the relations they take part in. A target is a
    content identity (`assay-model-v1:...`, or 12 or more of its first hex digits, as `catalog
    list` shows them) or a weight file or model folder, whose content identity is computed.
    Returns what was removed and the targets that name no catalogued model."""
    import os
    import re

    from assay.analyses.identity import MODEL_V
    ids: dict[str, str] = {}                     # target -> the content identity it names
    with open_catalog(catalog) as cat:
        catalogued: list[str] | None = None
        for t in targets:
            if t.startswith(MODEL_V + ":"):
                ids[t] = t
            elif os.path.exists(t):
                ids[t] = identify(t, limits=limits).content
            elif re.fullmatch(r"[0-9a-f]{12,}", t):
                if catalogued is None:
                    catalogued = [e.content_id for e in cat.entries()]
                hits = [c for c in catalogued if c.removeprefix(MODEL_V + ":").startswith(t)]
                if len(hits) > 1:
                    raise UsageError(t, f"the start of {len(hits)} catalogued content identities; "
                                     "give more digits")
                if hits:
                    ids[t] = hits[0]
            else:
                raise UsageError(t, "neither a content identity nor a model file or folder")
        removed = cat.remove(list(ids.values()))
    gone = {r.entry.content_id for r in removed}
    return removed, [t for t in targets if ids.get(t) not in gone]


def catalog_graph(*, catalog: str | None = None) -> Forest:
    """The catalog's lineage forest, from the relations found when its models were added."""
    from assay.catalog.graph import forest
    with open_catalog(catalog) as cat:
        return forest(cat.entries(), cat.links())


# -- lineage: fingerprints and the pairwise relation ----------------------------------------------
def fingerprint_path(path: str, label: str | None = None, *, limits: Limits = DEFAULT_LIMITS) -> Fingerprint:
    """The lineage fingerprint of the weights at `path` (digests, statistics and value sketches
    of every tensor; see `assay.analyses.lineage.fingerprint`). `label` defaults to `path`."""
    from assay.analyses.lineage.fingerprint import fingerprint
    art = open_model(path, limits)
    try:
        return fingerprint(art, label if label is not None else str(path))
    except OSError as exc:
        raise FormatError(path, f"read failed while fingerprinting: {exc}") from None


def lineage_pair(a: str, b: str, *, limits: Limits = DEFAULT_LIMITS) -> Verdict:
    """How the weights at `b` relate to those at `a` (same, converted, cast, quantized, pruned,
    finetuned, adapter, extended, truncated, partial or unrelated), with evidence, a
    confidence and the direction where the weights show one; declared metadata beside it."""
    from assay.analyses.lineage.relation import relate
    return relate(fingerprint_path(a, limits=limits), fingerprint_path(b, limits=limits))


# -- audit: association tests and outcome fairness ----------------------------------------------
def open_embedder(path: str, *, limits: Limits = DEFAULT_LIMITS) -> Embedder:
    """A model as an embedding function: a sentence-encoder folder (built in code from its config
    and filled with the tensors assay read, or its ONNX export run with onnxruntime), or static
    word vectors (word2vec, GloVe, gensim)."""
    import os

    from assay.analyses.audit import Embedder
    art = open_model(path, limits)
    name = os.path.basename(os.path.normpath(str(path)))
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json")):
        from assay.runtime import encoder
        if art.format == "folder:onnx":     # an ONNX export: run with onnxruntime
            return Embedder(name, "sentences", encoder.build_onnx(str(path)).encode)
        return Embedder(name, "sentences", encoder.build(art, str(path)).encode)
    from assay.runtime.vectors import WordVectors
    vec = WordVectors.from_artifact(art)
    return Embedder(name, "words", vec.embed)


def load_tests(path: str | None = None, ids: list[str] | None = None) -> tuple[AssociationTest, ...]:
    """Association tests: the bundled WEAT tests, or those of a TOML file; `ids` selects some."""
    from assay.analyses.audit import parse_tests, select, weat_tests
    if path is None:
        return select(weat_tests(), ids)
    try:
        with open(path, "rb") as fh:
            text = fh.read(16 << 20).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(path, f"cannot read tests: {exc}") from None
    return select(parse_tests(text, path), ids)


def audit(path: str, *, tests: tuple[AssociationTest, ...] | None = None,
          settings: AuditSettings | None = None, limits: Limits = DEFAULT_LIMITS) -> AuditReport:
    """WEAT (word vectors) or SEAT (sentence encoders) association tests on one model."""
    from assay.analyses.audit import Settings, weat_tests
    from assay.analyses.audit import audit as run_audit
    return run_audit(tests or weat_tests(), open_embedder(path, limits=limits), settings or Settings())


def audit_against(path: str, base: str, *, tests: tuple[AssociationTest, ...] | None = None,
                  settings: AuditSettings | None = None, threshold: float = 0.5, alpha: float = 0.01,
                  limits: Limits = DEFAULT_LIMITS) -> Comparison:
    """The same tests on a model and on the model it derives from: shifts and neutral drift."""
    from assay.analyses.audit import Settings, compare, weat_tests
    m, b = open_embedder(path, limits=limits), open_embedder(base, limits=limits)
    if m.kind != b.kind:
        raise UsageError(base, f"cannot compare a {m.kind} model with a {b.kind} model")
    return compare(tests or weat_tests(), m, b, settings=settings or Settings(), threshold=threshold,
                   alpha=alpha)


# -- recipes: rebuild weights from their source, challenge a published file ---------------------
def load_recipe(path: str) -> LoadedRecipe:
    """Read and validate a recipe TOML (see docs/recipes.md); raises `RecipeError`."""
    from assay.recipes import schema
    return schema.load(str(path))


def rebuild(recipe: str, out_dir: str | None = None, *, threads: int | None = None, force: bool = False,
            log: Callable[[str], None] | None = None, limits: Limits = DEFAULT_LIMITS) -> BuildRecord:
    """Check the recipe's pinned inputs, train in a separate process, write the outputs and the
    build record (`build.json`, `assay.build/1`) to `out_dir` (default `./build/<recipe name>`)."""
    import os

    from assay.recipes import runner
    loaded = load_recipe(recipe)
    out = out_dir if out_dir is not None else os.path.join("build", loaded.recipe.name)
    return runner.rebuild(loaded, out, lambda p: open_model(p, limits), threads=threads, force=force,
                          log=log)


def read_build_record(path: str) -> BuildRecord:
    """A build record written by `rebuild` (`build.json`)."""
    from assay.recipes import record
    return record.read(str(path))


def challenge(recipe: str, published: str, *, record: str | None = None, out_dir: str | None = None,
              noise_threads: int | None = None, noise_record: str | None = None, probe: bool = True,
              output: str | None = None, log: Callable[[str], None] | None = None,
              limits: Limits = DEFAULT_LIMITS) -> ChallengeResult:
    """Was `published` (weights, or another build's `build.json`) built from `recipe`? Rebuilds
    (or reuses the build `record`) and gives the strongest verdict that holds: byte-identical,
    identical tensors, close within the noise band (declared, read from `noise_record`, or measured
    by a rebuild with `noise_threads`; 0 for none), equivalent on the probe set, or differs."""
    from assay.recipes import challenge as challenge_mod
    loaded = load_recipe(recipe)
    open_model(str(published), limits)     # an unreadable published file fails before any rebuild
    return challenge_mod.challenge(loaded, str(published), lambda p: open_model(p, limits),
                                   record_path=record, out_dir=out_dir, noise_threads=noise_threads,
                                   noise_record=noise_record, probe=probe, output=output, log=log)


def audit_fairness(data: str, label: str, sensitive: str, *, model: str | None = None,
                   prediction: str | None = None, features: list[str] | None = None,
                   positive: str = "1", limits: Limits = DEFAULT_LIMITS) -> FairnessReport:
    """fairlearn's metrics on a labelled CSV with a sensitive column, for predictions given as a
    column or made by a classifier: ONNX (onnxruntime, standard operators only) or scikit-learn
    linear / tree models evaluated from their fitted arrays (never unpickled)."""
    import csv
    import os

    import numpy as np

    from assay.analyses.audit.fairness import fairness
    if (model is None) == (prediction is None):
        raise UsageError(data, "give either a model or a prediction column")
    try:
        if os.path.getsize(data) > 256 << 20:
            raise UsageError(data, "CSV larger than 256 MiB")
        with open(data, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(data, f"cannot read CSV: {getattr(exc, 'strerror', None) or exc}") from None
    cols = list(rows[0]) if rows else []
    for c in (label, sensitive, *([prediction] if prediction else []), *(features or [])):
        if c not in cols:
            raise UsageError(data, f"no column {c!r} (columns: {', '.join(cols)})")
    y_true = [r[label] for r in rows]
    groups = [r[sensitive] for r in rows]
    if prediction is not None:
        return fairness(y_true, [r[prediction] for r in rows], groups, positive=positive,
                        predictions=f"column {prediction}")
    assert model is not None
    feats = features or [c for c in cols if c not in (label, sensitive)]
    try:
        x = np.array([[float(r[c]) for c in feats] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise UsageError(data, f"feature columns must be numbers ({exc})") from None
    from assay.formats import detect
    if detect(model, limits)[0].name == "onnx":
        from assay.runtime.onnx_model import OnnxClassifier
        pred = OnnxClassifier(model).predict(x)
        source = f"ONNX model {os.path.basename(model)}"
    else:
        from assay.runtime.sklearn_models import from_artifact
        art = open_model(model, limits)
        clf = from_artifact(art)
        pred = clf.predict(x)
        source = f"{clf.cls} from arrays ({os.path.basename(model)})"
    return fairness(y_true, [str(p) for p in pred], groups, positive=positive, predictions=source)


# -- adapt: retarget a sentence encoder to your own data; apply it; what it would cost ----------
def adapt(base: str, data: str, out_dir: str, *, options: AdaptOptions | None = None,
          holdout: str | None = None, progress: Callable[[str, int, int, str], None] | None = None,
          log: Callable[[str], None] | None = None, limits: Limits = DEFAULT_LIMITS) -> AdaptResult:
    """Train a head (or a low-rank update and a head) on `data` over the frozen network `base`
    (`options.task`: classify, regress or embed):
    writes a recipe into `out_dir/recipe`, builds it through the recipes runner (training runs in
    the build's child process), and writes the adapter, build record, `adapt.json`
    (`assay.adapt/1`) and a model-card stub to `out_dir`. Bad data raises `DataError`."""
    import json
    import os

    from assay.adapt import plan
    from assay.render import adapt as render_adapt
    result = plan.adapt(str(base), str(data), str(out_dir), options or plan.AdaptOptions(),
                        lambda p: open_model(p, limits), holdout=holdout, progress=progress, log=log)
    from dataclasses import replace
    result = replace(result, files={**result.files, "report": plan.REPORT_FILE, "card": plan.CARD_FILE})
    with open(os.path.join(result.out_dir, plan.REPORT_FILE), "w", encoding="utf-8") as fh:
        fh.write(json.dumps(render_adapt.adapt_json(result), indent=2) + "\n")
    with open(os.path.join(result.out_dir, plan.CARD_FILE), "w", encoding="utf-8") as fh:
        fh.write(render_adapt.card_markdown(result))
    return result


def predict(model: str, data: str, *, text_column: str | None = None, label_column: str | None = None,
            threads: int | None = None, limits: Limits = DEFAULT_LIMITS) -> Predictions:
    """Apply an `assay adapt` output folder to the texts in `data` (CSV or JSONL): labels and
    scores, and the accuracy when `data` has the label column."""
    from assay.adapt import predict as predict_mod
    return predict_mod.predict(str(model), str(data), lambda p: open_model(p, limits),
                               text_column=text_column, label_column=label_column, threads=threads)


def cost(model: str, *, data: str | None = None, text_column: str = "text", threads: int = 1,
         batch: int = 16, seq_len: int = 64, epochs: int | None = None, lora_layers: int = 2,
         limits: Limits = DEFAULT_LIMITS) -> CostReport:
    """Measure this machine's throughput on the encoder `model` (forward, LoRA step, full step)
    and estimate time and memory of head training, LoRA, full fine-tuning and training from
    scratch on `data` (or on a stated synthetic workload)."""
    from assay.adapt import cost as cost_mod
    return cost_mod.cost(str(model), lambda p: open_model(p, limits), data=data, text_column=text_column,
                         threads=threads, batch=batch, seq_len=seq_len, epochs=epochs,
                         lora_layers=lora_layers)
