"""The public Python API: the only module that joins format readers to analyses.

    >>> import assay
    >>> art = assay.open_model("model.safetensors")      # never executes file content
    >>> art.tensors[0].name, art.tensors[0].read().shape
    >>> assay.inspect("model.safetensors").parameters
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from assay.analyses.summary import Summary, summarize
from assay.errors import FormatError, UsageError
from assay.formats import read_path
from assay.limits import DEFAULT_LIMITS, Limits
from assay.model.artifact import ModelArtifact

if TYPE_CHECKING:
    from assay.analyses.diff import DiffResult
    from assay.analyses.identity import Identity, Manifest, Verification
    from assay.analyses.scan import FileScan, Policy, ScanReport

# Analyses that need NumPy or BLAKE3 are imported by the functions that use them, so that
# reading a header (`inspect`) starts fast.


def open_model(path: str, limits: Limits = DEFAULT_LIMITS) -> ModelArtifact:
    """Read a weight file or model folder into the tensor model. Raises `AssayError` on bad input."""
    return read_path(str(path), limits)


def inspect(path: str, *, tensors: bool = False, limits: Limits = DEFAULT_LIMITS) -> Summary:
    """Summarise a weight file or folder: format, files, totals, dtypes, largest tensors."""
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
def expand_paths(paths: list[str], limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, bool]]:
    """Files to scan: (path, named explicitly). Folders are walked recursively, in sorted order,
    without following symlinked folders; every file is looked at whatever its name."""
    import os
    out: list[tuple[str, bool]] = []
    for p in paths:
        if not os.path.exists(p):
            raise UsageError(p, "no such file or folder")
        if os.path.isfile(p):
            out.append((p, True))
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames.sort()
            for f in sorted(filenames):
                full = os.path.join(dirpath, f)
                if os.path.isfile(full):
                    out.append((full, False))
                    if len(out) > limits.max_folder_files * 100:
                        raise UsageError(p, "more files than a scan takes in one call")
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
    from assay.analyses.scan import FileScan, ScanReport, default_policy

    pol = policy or default_policy()
    items = expand_paths(paths, limits)
    results: list[FileScan | None] = [None] * len(items)
    work = partial(scan_file, policy=pol, limits=limits)
    budget = jobs.Budget(seconds=seconds_per_file)
    done = 0
    for idx, out in jobs.run(work, [p for p, _ in items], workers=workers, budget=budget):
        if isinstance(out, jobs.Failed):
            out = FileScan(items[idx][0], None, error=f"{items[idx][0]}: {out.reason}")
        results[idx] = out
        done += 1
        if progress:
            progress(done, len(items))
    final = []
    for (_path, named), r in zip(items, results, strict=True):
        assert r is not None
        if r.skipped and named:   # the user asked for this file: not recognising it is an error
            r = dataclasses.replace(r, error=f"{r.path}: {r.skipped}", skipped=None)
        final.append(r)
    totals = {"files": len(final), "findings": sum(len(r.findings) for r in final),
              "errors": sum(1 for r in final if r.status == "error"),
              "skipped": sum(1 for r in final if r.skipped)}
    return ScanReport(tuple(final), pol.name, totals)


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
