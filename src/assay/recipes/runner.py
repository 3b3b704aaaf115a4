"""`rebuild`: check every pinned input, run the entry point in a child process with a controlled
environment, identify what it wrote, and write the build record.

The child is this Python (`sys.executable`) running `assay.recipes.child`; the caller's
environment is not passed on (see `environment.child_env`). The parent measures the child's
wall time, CPU time and peak memory (`os.wait4`), and reads the outputs back only through
`open_model`, assay's own readers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

import assay
from assay.analyses import identity
from assay.model.artifact import ModelArtifact
from assay.recipes import environment, record
from assay.recipes.entry import Context
from assay.recipes.pinning import CheckedInput, check_inputs, file_digest
from assay.recipes.record import BuildRecord, BuiltOutput, EpochDigest, Resources
from assay.recipes.schema import BuildFailedError, LoadedRecipe, RecipeError

OpenModel = Callable[[str], ModelArtifact]
Log = Callable[[str], None]
LOG_TAIL = 4096


def weights_identity(open_model: OpenModel) -> Callable[[str], str]:
    return lambda path: identity.identify(open_model(path)).content


def _pythonpath() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(assay.__file__)))


def _tail(log_path: str) -> str:
    try:
        with open(log_path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(log_path) - LOG_TAIL))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


@dataclass(frozen=True)
class ChildRun:
    resources: Resources
    exit_code: int
    timed_out: bool
    result: dict[str, bool]           # what the child reports: torch imported, torch configured


def run_child(ctx: Context, loaded: LoadedRecipe, threads: int, home: str, log_path: str) -> ChildRun:
    """Run the entry point in a child process; wait, measuring what it used."""
    ctx_file = os.path.join(home, "context.json")
    with open(ctx_file, "w", encoding="utf-8") as fh:
        json.dump(ctx.to_json(), fh)
    seed = loaded.recipe.build.seed
    env = environment.child_env(threads, seed, home, ctx_file, _pythonpath())
    result_file = os.path.join(home, "result.json")
    cmd = [sys.executable, "-s", "-B", "-m", "assay.recipes.child", ctx_file,
           os.path.abspath(loaded.entry_path), result_file]
    timed_out = threading.Event()
    t0 = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=home, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(loaded.recipe.build.timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code          # reaped by wait4: tell Popen
    res = Resources(time.monotonic() - t0, usage.ru_utime, usage.ru_stime, usage.ru_maxrss * 1024)
    result: dict[str, bool] = {}
    if code == 0 and os.path.exists(result_file):
        with open(result_file, encoding="utf-8") as fh:
            result = {str(k): bool(v) for k, v in json.load(fh).items()}
    return ChildRun(res, code, timed_out.is_set(), result)


def _raise_failed(loaded: LoadedRecipe, run: ChildRun, log_path: str) -> None:
    if run.timed_out:
        raise BuildFailedError(loaded.entry_path, f"stopped after the recipe's timeout of "
                                                  f"{loaded.recipe.build.timeout:g} s; log: {log_path}")
    last = _tail(log_path)
    raise BuildFailedError(loaded.entry_path, f"entry point failed (exit {run.exit_code})"
                                              f"{': ' + last if last else ''}; log: {log_path}")


def _prepare_out(out_dir: str, loaded: LoadedRecipe, force: bool) -> None:
    ours = {o.file for o in loaded.recipe.outputs.values()} | {record.FILE, record.LOG}
    if os.path.isdir(out_dir):
        present = set(os.listdir(out_dir))
        if present and not force:
            raise RecipeError(out_dir, "output folder is not empty (use --force to replace a build)")
        if present - ours:
            raise RecipeError(out_dir, f"output folder holds files that are not this build's "
                                       f"({', '.join(sorted(present - ours)[:3])}); not touching it")
        for f in present:
            os.remove(os.path.join(out_dir, f))
    elif os.path.exists(out_dir):
        raise RecipeError(out_dir, "output path exists and is not a folder")
    os.makedirs(out_dir, exist_ok=True)


def _read_epochs(path: str) -> tuple[EpochDigest, ...]:
    if not os.path.exists(path):
        return ()
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            e = json.loads(line)
            out.append(EpochDigest(int(e["epoch"]), e["content"], e["named"], dict(e["tensors"]),
                                   dict(e.get("metrics", {}))))
    return tuple(out)


def _identify_outputs(loaded: LoadedRecipe, out_dir: str, open_model: OpenModel) -> tuple[BuiltOutput, ...]:
    outs = []
    for name, spec in loaded.recipe.outputs.items():
        path = os.path.join(out_dir, spec.file)
        if not os.path.isfile(path):
            raise BuildFailedError(loaded.entry_path, f"the entry point did not write output {name!r} "
                                                      f"({spec.file}); call entry.save_outputs")
        ident = identity.identify(open_model(path))
        outs.append(BuiltOutput(name, spec.file, file_digest(path), ident.content, ident.named,
                                {t.name: t.text for t in ident.tensors}, spec.identity,
                                None if spec.identity is None else spec.identity == ident.content))
    return tuple(outs)


def _context(loaded: LoadedRecipe, checked: list[CheckedInput], threads: int, mode: str, out_dir: str,
             home: str) -> Context:
    r = loaded.recipe
    return Context(mode=mode, recipe=r.name, params=dict(r.params), seed=r.build.seed, threads=threads,
                   inputs={c.name: c.path for c in checked}, input_kinds={c.name: c.kind for c in checked},
                   outputs={k: o.file for k, o in r.outputs.items()}, out_dir=out_dir,
                   epochs_file=os.path.join(home, "epochs.jsonl"))


def rebuild(loaded: LoadedRecipe, out_dir: str, open_model: OpenModel, *, threads: int | None = None,
            force: bool = False, log: Log | None = None) -> BuildRecord:
    """Check the inputs, train in a child process, write outputs and `build.json` to `out_dir`.
    Raises `InputMismatchError` before anything runs or any folder is created when an input or
    the entry point does not match its pin."""
    r = loaded.recipe
    threads = threads or r.build.threads
    checked = check_inputs(loaded, weights_identity(open_model))
    env = environment.capture(r.build.packages, r.build.python, threads, r.build.seed)
    if log:
        log(f"inputs verified ({len(checked)}); building {r.name} with {threads} thread(s)")
        for m in env["mismatches"]:
            log(f"warning: {m}")
    out_dir = os.path.abspath(out_dir)
    _prepare_out(out_dir, loaded, force)
    log_path = os.path.join(out_dir, record.LOG)
    with tempfile.TemporaryDirectory(prefix="assay-build-") as home:
        ctx = _context(loaded, checked, threads, "train", out_dir, home)
        run = run_child(ctx, loaded, threads, home, log_path)
        if run.exit_code != 0 or run.timed_out:
            _raise_failed(loaded, run, log_path)
        epochs = _read_epochs(ctx.epochs_file)
    if run.result.get("torch_imported"):
        env["torch"] = {"configured": run.result.get("torch_configured", False)}
        if not env["torch"]["configured"]:
            env["mismatches"].append("the entry point imported torch but did not call "
                                     "entry.configure_torch(torch): torch's threads, seed and "
                                     "deterministic algorithms were not pinned")
            if log:
                log(f"warning: {env['mismatches'][-1]}")
    outputs = _identify_outputs(loaded, out_dir, open_model)
    rec = BuildRecord(
        recipe_name=r.name, recipe_path=loaded.path, recipe_digest=loaded.digest,
        entry_path=r.entry.path, entry_digest=r.entry.digest,
        inputs=tuple({"name": c.name, "kind": c.kind, "path": c.path, "digest": c.digest} for c in checked),
        params=dict(r.params), seed=r.build.seed, threads=threads, recipe_threads=r.build.threads,
        environment=env, resources=run.resources, epochs=epochs, outputs=outputs, folder=out_dir)
    record.write(rec, out_dir)
    if log:
        log(f"built in {run.resources.wall_seconds:.1f} s wall, {run.resources.cpu_seconds:.1f} s CPU")
    return rec


def probe(loaded: LoadedRecipe, sets: Mapping[str, Mapping[str, np.ndarray]], open_model: OpenModel,
          threads: int | None = None) -> dict[str, list[int]]:
    """Predictions of the entry point's `predict` on the probe set, for each set of tensors."""
    threads = threads or loaded.recipe.build.threads
    checked = check_inputs(loaded, weights_identity(open_model))
    with tempfile.TemporaryDirectory(prefix="assay-probe-") as home:
        ctx = _context(loaded, checked, threads, "probe", home, home)
        for label, tensors in sets.items():
            path = os.path.join(home, f"{label}.npz")
            np.savez(path, **{k: np.asarray(v) for k, v in tensors.items()})
            ctx.probe_sets[label] = path
        ctx.probe_out = os.path.join(home, "predictions.json")
        log_path = os.path.join(home, "probe.log")
        run = run_child(ctx, loaded, threads, home, log_path)
        if run.exit_code != 0 or run.timed_out:
            last = _tail(log_path)
            raise BuildFailedError(loaded.entry_path, f"probe evaluation failed (exit {run.exit_code})"
                                                      f"{': ' + last if last else ''}")
        with open(ctx.probe_out, encoding="utf-8") as fh:
            return {k: list(v) for k, v in json.load(fh).items()}


def remove_build(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
