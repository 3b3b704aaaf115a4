"""`assay scan` against the scanners people use, on one corpus of hostile and benign model files.

Peers (pinned, installed into their own virtual environment benchmarks/.peers-venv, git-ignored,
never into the project's .venv): picklescan, modelscan, fickling and ModelAudit. The corpus is
built once per run in a temporary folder by the test factories (`tests.factories.hostile` and
`tests.factories.benign`): every hostile sample names its family and the assay rule IDs expected
to fire on it.

Every tool scans the hostile folder in one fresh process and the benign folder in another, the
way its documentation says, and its output is parsed into one verdict per sample: flagged,
error or clean. Tools that take a folder (assay, picklescan, modelscan, ModelAudit) get the
folder; fickling has no folder mode for local files, so a small driver calls its scanning API
once per file, inside one process. When a folder call crashes (picklescan and modelscan both
stop at the first zip they cannot decompress), the same tool is driven through its Python API,
one sample folder at a time, in one process, so that one bad file cannot hide the rest; the
table says so. Each call runs once untimed first (page cache, bytecode caches); that run's
output is the one parsed. The timed runs then go round-robin over every tool and folder, so
that a slow spell of a shared machine falls on all the tools alike rather than on one.

    .venv/bin/python benchmarks/scan_vs_peers.py [--peers a,b] [--skip-install] [--reps N]
                                                 [--timeout S] [--json OUT] [--keep] [--details]

Exit 0 when every selected tool ran (whether or not assay meets its targets); 2 when one could
not be run at all (one line on stderr per tool; the others are still measured).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".peers-venv"
ASSAY = ROOT / ".venv" / "bin" / "assay"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# name -> (distribution, version, pip requirement, distributions its extras must bring). The
# extras give modelscan and ModelAudit the libraries they need for Keras HDF5, ONNX and
# safetensors files; fickling needs its `torch` extra to tell zip checkpoints from pickles
# (fickling.polyglot imports torch), so torch (the project's pinned version) is in the venv too.
PEERS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "picklescan": ("picklescan", "1.0.5", "picklescan==1.0.5", ()),
    "modelscan": ("modelscan", "0.8.8", "modelscan[h5py]==0.8.8", ("h5py",)),
    "fickling": ("fickling", "0.1.12", "fickling[torch]==0.1.12", ("torch", "torchvision")),
    "modelaudit": ("modelaudit", "0.2.54", "modelaudit[h5,onnx,safetensors]==0.2.54",
                   ("h5py", "onnx", "safetensors")),
}
TORCH_PIN = "torch==2.13.0"     # should anything pull torch, take the version the project uses
FAMILIES = ("pickle", "archive", "keras", "onnx", "gguf", "safetensors", "format", "template")
TARGET_SPEEDUP_VS_MODELAUDIT = 10.0
DEFAULT_TIMEOUT_S = 600         # one call of one tool (a whole folder, or a driver over many)
UNIT_TIMEOUT_S = 120            # one file or sample folder inside a driver
MEMORY_LIMIT = 8 << 30          # address space of every child (a bomb must not take the machine)
QUIET_ENV = {"PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1",
             "DO_NOT_TRACK": "1", "TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "200"}


# ---------------------------------------------------------------- corpus

@dataclass
class Item:
    """One corpus entry: a hostile sample (file or folder) or a benign file or folder. `scope` is
    what the tools' findings are attributed to: a hostile sample's own technique folder (so a
    finding on a file beside the sample, such as ONNX external data, counts for it)."""
    path: Path
    family: str                 # a hostile family, or "benign"
    technique: str = ""
    rules: tuple[str, ...] = ()
    note: str = ""
    scope: Path | None = None

    @property
    def key(self) -> str:
        return str(self.scope or self.path)

    @property
    def hostile(self) -> bool:
        return self.family != "benign"


@dataclass
class Corpus:
    hostile: Path
    benign: Path
    items: list[Item]

    def units(self, root: Path) -> list[Path]:
        """What a fallback scans one at a time: the sample folders (hostile) or the format
        folders (benign) under `root`, then any file lying directly in `root`."""
        if root == self.hostile:
            dirs = sorted({Path(it.key) for it in self.items if it.hostile and Path(it.key).is_dir()})
        else:
            dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
        loose = [p for p in sorted(root.iterdir()) if p.is_file() and not p.is_symlink()]
        return dirs + loose


def build_corpus(root: Path, marker: Path) -> Corpus:
    from tests.factories.benign import build_benign
    from tests.factories.hostile import build_hostile
    hostile = root / "hostile"
    items = [Item(Path(s.path), s.family, s.technique, tuple(s.rules), s.note, _scope(Path(s.path), hostile))
             for s in build_hostile(hostile, marker, marker_per_sample=True)]
    benign = root / "benign"
    paths = [_inside(Path(p), benign) for p in build_benign(benign)]
    items += [Item(p, "benign", str(p.relative_to(benign))) for p in paths]
    listed = [str(p) for p in paths]
    for f in _walk(benign):     # files written beside the listed ones (ONNX external data) count too
        if not any(str(f) == k or str(f).startswith(k + "/") for k in listed):
            items.append(Item(f, "benign", str(f.relative_to(benign))))
    return Corpus(hostile, benign, items)


def _scope(path: Path, hostile_root: Path) -> Path:
    """root/<family>/<technique>/ (the factories write one folder per technique), or the path."""
    rel = path.relative_to(hostile_root)
    return hostile_root / rel.parts[0] / rel.parts[1] if len(rel.parts) >= 3 or path.is_dir() else path


def _inside(path: Path, benign: Path) -> Path:
    """Models that installed packages ship are copied into the corpus, so one call covers all."""
    if path.is_relative_to(benign):
        return path
    dest = benign / "installed"
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{path.parent.parent.name}-{path.name}"
    if path.is_dir():
        shutil.copytree(path, target, symlinks=True)
    else:
        shutil.copy2(path, target)
    return target


def _walk(folder: Path) -> list[Path]:
    """Regular files under `folder`; symlinks neither followed nor listed."""
    out = []
    for dirpath, _dirs, files in os.walk(folder):
        out += [Path(dirpath) / f for f in files if not os.path.islink(os.path.join(dirpath, f))]
    return sorted(out)


# ---------------------------------------------------------------- verdicts

@dataclass
class Verdict:
    flagged: bool = False
    error: bool = False
    labels: list[str] = field(default_factory=list)   # rule IDs / imports / messages

    @property
    def status(self) -> str:
        return "flagged" if self.flagged else "error" if self.error else "clean"


@dataclass(frozen=True)
class Event:
    location: str    # a path, maybe followed by ":member" or " (pos N)"
    kind: str        # "flag" | "error"
    label: str


class Resolver:
    """Maps a location a tool printed to the corpus item it belongs to (longest path prefix)."""

    def __init__(self, items: list[Item]) -> None:
        self.keys = sorted((it.key for it in items), key=len, reverse=True)

    def __call__(self, location: str) -> str | None:
        for k in self.keys:
            if location == k or (location.startswith(k) and location[len(k)] in ":/ ("):
                return k
        return None


def verdicts_from(events: Iterable[Event], resolve: Resolver) -> tuple[dict[str, Verdict], list[Event]]:
    """Per-item verdicts, and the events that name no corpus item."""
    out: dict[str, Verdict] = {}
    stray: list[Event] = []
    for ev in events:
        key = resolve(ev.location)
        if key is None:
            stray.append(ev)
            continue
        v = out.setdefault(key, Verdict())
        if ev.kind == "flag":
            v.flagged = True
        else:
            v.error = True
        v.labels.append(ev.label)
    return out, stray


# ---------------------------------------------------------------- running children

def _child_setup() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)   # children may write bytecode caches, as for a user
    env.update(QUIET_ENV)
    return env


@dataclass
class Proc:
    rc: int | None            # None: timed out (the whole process group was killed)
    out: str
    err: str
    seconds: float


def run(cmd: list[str], timeout: float, scratch: Path) -> Proc:
    """Run `cmd` in its own session with output to files (partial output survives a timeout)."""
    out_f, err_f = scratch / "stdout.txt", scratch / "stderr.txt"
    with open(out_f, "wb") as out, open(err_f, "wb") as err:
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=scratch,
                                 env=child_env(), preexec_fn=_child_setup, start_new_session=True)
        except OSError as exc:      # the command itself is missing or cannot start
            return Proc(127, "", f"cannot start {cmd[0]}: {exc}", time.perf_counter() - t0)
        # A blocking wait, with a timer that kills the group on timeout: `Popen.wait(timeout)`
        # polls with sleeps that grow to 50 ms, which would add up to that much to each time.
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            code = p.wait()
        finally:
            timer.cancel()
        seconds = time.perf_counter() - t0
        rc: int | None = None if expired.is_set() else code
    return Proc(rc, out_f.read_text(errors="replace"), err_f.read_text(errors="replace"), seconds)


def last_line(p: Proc) -> str:
    if p.rc is None:
        return f"timed out after {p.seconds:.0f} s"
    lines = [x.strip() for x in (p.err + "\n" + p.out).splitlines() if x.strip()]
    return f"exit {p.rc}: {lines[-1][:200] if lines else 'no output'}"


def venv_bin(name: str) -> str:
    return str(VENV / "bin" / name)


# ---------------------------------------------------------------- the tools
#
# A Tool has a folder `command` and a `parse` of its output (None: no usable output, the call
# broke). A `driver` is Python source run by the peers' interpreter with a file listing targets
# and the per-target timeout; it scans each target through the tool's own API and prints
# lines `parse_driver` reads; targets it never reports are timeouts.

Parse = Callable[[Proc, Path, Path], list[Event] | None]


@dataclass
class Tool:
    name: str
    title: str
    command: Callable[[Path, Path], list[str]] | None    # (folder, scratch) -> argv; None: driver only
    parse: Parse | None
    invocation: str
    driver: str | None = None          # Python source of the API driver (fallback, or the only way)
    driver_targets: str = "units"      # "units" (sample folders) or "files" (every file)
    driver_note: str = ""


def assay_cmd(target: Path, scratch: Path) -> list[str]:
    return [str(ASSAY), "scan", "--format", "json", str(target)]


def assay_events(p: Proc, target: Path, scratch: Path) -> list[Event] | None:
    try:
        doc = json.loads(p.out)
    except json.JSONDecodeError:
        return None
    events = []
    for f in doc.get("files", []):
        for fd in f.get("findings", []):
            events.append(Event(f["path"], "flag", fd["rule"]))
        if f.get("error") or f.get("rule_errors"):
            msg = f.get("error") or "; ".join(str(x) for x in f.get("rule_errors") or [])
            events.append(Event(f["path"], "error", f"error: {msg}"[:200]))
    return events


PICKLESCAN_FOUND = re.compile(r"^(?P<loc>.+?): dangerous import '(?P<g>[^']*)' FOUND")
PICKLESCAN_ERROR = re.compile(r"^ERROR: parsing pickle in (?P<loc>.+?): ")
PICKLESCAN_ZIPERR = re.compile(r"^Invalid file .+ in zip archive (?P<loc>.+?): ")


def picklescan_cmd(target: Path, scratch: Path) -> list[str]:
    return [venv_bin("picklescan"), "--path", str(target)]


def picklescan_lines(text: str) -> list[Event]:
    events = []
    for line in text.splitlines():
        if m := PICKLESCAN_FOUND.match(line):
            events.append(Event(m["loc"], "flag", m["g"]))
        elif m := PICKLESCAN_ERROR.match(line) or PICKLESCAN_ZIPERR.match(line):
            events.append(Event(m["loc"], "error", line.strip()[:160]))
    return events


def picklescan_events(p: Proc, target: Path, scratch: Path) -> list[Event] | None:
    if "Unhandled exception" in p.out + p.err or "SCAN SUMMARY" not in p.out:
        return None
    return picklescan_lines(p.out + "\n" + p.err)


PICKLESCAN_DRIVER = """
import logging, os, signal, sys
from picklescan.scanner import scan_directory_path, scan_file_path
log = logging.getLogger("picklescan")          # as its CLI: findings are log lines on stdout
log.setLevel(logging.INFO)
log.addHandler(logging.StreamHandler(stream=sys.stdout))
def _alarm(*_):
    raise TimeoutError
signal.signal(signal.SIGALRM, _alarm)
for t in open(sys.argv[1]).read().splitlines():
    print("@@BEGIN\\t" + t, flush=True)
    signal.alarm(int(sys.argv[2]))
    try:
        r = scan_directory_path(t) if os.path.isdir(t) else scan_file_path(t)
        signal.alarm(0)
        print("@@END\\t" + t, flush=True)
    except TimeoutError:
        print("@@TIMEOUT\\t" + t, flush=True)
    except Exception as e:
        signal.alarm(0)
        print("@@CRASH\\t" + t + "\\t" + type(e).__name__ + ": " + str(e)[:200], flush=True)
"""


def modelscan_cmd(target: Path, scratch: Path) -> list[str]:
    return [venv_bin("modelscan"), "-p", str(target), "-r", "json", "-o", str(scratch / "modelscan.json")]


def modelscan_report(doc: dict[str, Any], target: Path) -> list[Event]:
    """Every issue counts (modelscan exits 1 on any; its severities LOW..CRITICAL all name an
    unsafe operator); `errors` entries are errors. Sources are relative to the scanned folder."""
    base = target if target.is_dir() else target.parent

    def where(src: str | None) -> str:
        if not src:
            return str(target)
        return src if os.path.isabs(src) else str(base / src)

    events = [Event(where(i.get("source")), "flag", f"{i.get('module')}.{i.get('operator')}")
              for i in doc.get("issues") or []]
    events += [Event(where(e.get("source")), "error", f"error: {e.get('description', '')}"[:160])
               for e in doc.get("errors") or []]
    return events


def modelscan_events(p: Proc, target: Path, scratch: Path) -> list[Event] | None:
    report = scratch / "modelscan.json"
    try:
        doc = json.loads(report.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    finally:
        report.unlink(missing_ok=True)
    return modelscan_report(doc, target)


MODELSCAN_DRIVER = """
import copy, json, signal, sys
from modelscan.modelscan import ModelScan
from modelscan.settings import DEFAULT_SETTINGS
def _alarm(*_):
    raise TimeoutError
signal.signal(signal.SIGALRM, _alarm)
for t in open(sys.argv[1]).read().splitlines():
    signal.alarm(int(sys.argv[2]))
    try:
        report = ModelScan(settings=copy.deepcopy(DEFAULT_SETTINGS)).scan(t)   # what its CLI calls
        signal.alarm(0)
        print("@@REPORT\\t" + t + "\\t" + json.dumps(report, default=str), flush=True)
    except TimeoutError:
        print("@@TIMEOUT\\t" + t, flush=True)
    except Exception as e:
        signal.alarm(0)
        print("@@CRASH\\t" + t + "\\t" + type(e).__name__ + ": " + str(e)[:200], flush=True)
"""

# fickling's CLI reads one pickle stream from one file; its --huggingface mode is the only one that
# walks a model's files, and it picks per file: zip -> scan_zip_archive, pickle -> scan_file, else
# skip. The driver does exactly that for local files. Flagged: an analysis result above
# LIKELY_SAFE; a parse or analysis error alone is an error (fickling itself would call the
# file unsafe).
FICKLING_DRIVER = """
import json, signal, sys
from pathlib import PurePosixPath
from fickling.analysis import Severity
from fickling.loader import scan_file, scan_zip_archive
from fickling.polyglot import find_file_properties
RAW, ZIPS = {".bin", ".pkl", ".pickle"}, {".pt", ".pth"}
def _alarm(*_):
    raise TimeoutError
signal.signal(signal.SIGALRM, _alarm)
for t in open(sys.argv[1]).read().splitlines():
    signal.alarm(int(sys.argv[2]))
    out = {"target": t}
    try:
        ext = PurePosixPath(t).suffix.lower()
        props = find_file_properties(t)
        if props["is_torch_zip"] or props["is_standard_zip"] or ext in ZIPS:
            results = list(scan_zip_archive(t, graceful=True).values())
        elif props["is_valid_pickle"] or ext in RAW:
            results = [scan_file(t, graceful=True)]
        else:
            results = None
            out["skipped"] = True
        if results is not None:
            sev = [a.severity for r in results for a in r.results]
            out["flagged"] = any(s > Severity.LIKELY_SAFE for s in sev)
            out["label"] = max(sev).name if sev else ""
            out["errors"] = [e for r in results for e in r.errors][:3]
        signal.alarm(0)
    except TimeoutError:
        out = {"target": t, "timeout": True}
    except Exception as e:
        signal.alarm(0)
        out = {"target": t, "crash": type(e).__name__ + ": " + str(e)[:200]}
    print("@@FILE\\t" + json.dumps(out), flush=True)
"""


def modelaudit_cmd(target: Path, scratch: Path) -> list[str]:
    return [venv_bin("modelaudit"), "scan", str(target), "--format", "json", "--no-cache",
            "-o", str(scratch / "modelaudit.json")]


def modelaudit_events(p: Proc, target: Path, scratch: Path) -> list[Event] | None:
    """Flagged: an issue or failed check of severity warning or critical (ModelAudit's own
    'security findings', its exit code 1); info-level notes are not verdicts. Error: a file
    whose metadata holds an operational error."""
    report = scratch / "modelaudit.json"
    try:
        doc = json.loads(report.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    finally:
        report.unlink(missing_ok=True)
    serious = ("warning", "critical")
    events = []
    for rec in doc.get("issues") or []:
        if str(rec.get("severity", "")).lower() in serious:
            events.append(Event(rec.get("location") or "", "flag",
                                rec.get("rule_code") or rec.get("message", "")[:80]))
    for rec in doc.get("checks") or []:
        if rec.get("status") == "failed" and str(rec.get("severity", "")).lower() in serious:
            events.append(Event(rec.get("location") or "", "flag", rec.get("name", "")[:80]))
    for path, meta in (doc.get("file_metadata") or {}).items():
        if isinstance(meta, dict) and meta.get("operational_error"):
            events.append(Event(path, "error", f"error: {meta.get('operational_error')}"[:160]))
    return events


TOOLS: dict[str, Tool] = {
    "assay": Tool("assay", "assay", assay_cmd, assay_events,
                  "assay scan --format json FOLDER"),
    "picklescan": Tool("picklescan", "picklescan", picklescan_cmd, picklescan_events,
                       "picklescan --path FOLDER", PICKLESCAN_DRIVER,
                       driver_note="picklescan.scanner.scan_directory_path(sample folder)"),
    "modelscan": Tool("modelscan", "modelscan", modelscan_cmd, modelscan_events,
                      "modelscan -p FOLDER -r json -o REPORT", MODELSCAN_DRIVER,
                      driver_note="ModelScan(settings=DEFAULT_SETTINGS).scan(sample folder)"),
    "fickling": Tool("fickling", "fickling", None, None,
                     "API driver, one process: per file, as its --huggingface mode: "
                     "scan_zip_archive / scan_file (graceful)", FICKLING_DRIVER, "files"),
    "modelaudit": Tool("modelaudit", "ModelAudit", modelaudit_cmd, modelaudit_events,
                       "modelaudit scan FOLDER --format json --no-cache -o REPORT"),
}


def parse_driver(tool: Tool, p: Proc, targets: list[Path]) -> tuple[list[Event], int, int]:
    """Events from a driver's output, its timeouts (targets it never finished count as such) and
    how many targets it finished."""
    events: list[Event] = []
    done: set[str] = set()
    timeouts = 0
    if tool.name == "picklescan":
        events += picklescan_lines(p.out)
    for line in p.out.splitlines():
        tag, _, rest = line.partition("\t")
        if tag in ("@@END", "@@REPORT"):
            t, _, body = rest.partition("\t")
            done.add(t)
            if tag == "@@REPORT":
                events += modelscan_report(json.loads(body), Path(t))
        elif tag == "@@TIMEOUT":
            done.add(rest)
            timeouts += 1
            events.append(Event(rest, "error", f"timed out after {UNIT_TIMEOUT_S} s"))
        elif tag == "@@CRASH":
            t, _, msg = rest.partition("\t")
            done.add(t)
            events.append(Event(t, "error", f"crashed: {msg}"))
        elif tag == "@@FILE":
            rec = json.loads(rest)
            t = rec["target"]
            done.add(t)
            if rec.get("timeout"):
                timeouts += 1
                events.append(Event(t, "error", f"timed out after {UNIT_TIMEOUT_S} s"))
            elif rec.get("crash"):
                events.append(Event(t, "error", f"crashed: {rec['crash']}"))
            elif rec.get("flagged"):
                events.append(Event(t, "flag", rec.get("label") or "unsafe"))
            elif rec.get("errors"):
                events.append(Event(t, "error", f"error: {rec['errors'][0]}"[:160]))
    missing = [t for t in targets if str(t) not in done]
    timeouts += len(missing) if p.rc is None else 0
    events += [Event(str(t), "error", "not reached: " + last_line(p)) for t in missing]
    return events, timeouts, len(targets) - len(missing)


# ---------------------------------------------------------------- measuring one tool

@dataclass
class Part:
    """One tool on one folder (hostile or benign)."""
    root: str
    mode: str              # "folder" | "driver" | "driver after folder crash"
    seconds: float
    timeouts: int = 0
    crash: str = ""        # why the folder call broke, when it did
    rescued: int = 0       # entries flagged only when scanned alone (see `rescan`)
    cmd: list[str] | None = None                     # the call that is timed
    times: list[float] = field(default_factory=list)
    timed_out: bool = False                          # then it is not run again
    whole: bool = False                              # the one call over the whole corpus


@dataclass
class ToolRun:
    name: str
    title: str
    parts: list[Part] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    stray: list[Event] = field(default_factory=list)
    failed: str | None = None        # why the tool could not be run at all

    @property
    def seconds(self) -> float | None:
        """Two calls: the hostile folder's and the benign folder's."""
        parts = [p for p in self.parts if not p.whole]
        return sum(p.seconds for p in parts) if parts and not self.failed else None

    @property
    def whole_seconds(self) -> float | None:
        """One call over the whole corpus (the issue's speed targets)."""
        parts = [p for p in self.parts if p.whole]
        return parts[0].seconds if parts and not self.failed else None

    @property
    def timeouts(self) -> int:
        return sum(p.timeouts for p in self.parts if not p.whole)

    @property
    def mode(self) -> str:
        modes = sorted({p.mode for p in self.parts if not p.whole})
        return "/".join(modes) if modes else "-"


def time_round_robin(runs: list[ToolRun], reps: int, timeout: float, scratch: Path) -> None:
    """`reps` timed runs of every call measured, taken in turns (tool after tool, folder after
    folder, then again); each part's time is the median of its runs."""
    parts = [p for r in runs if not r.failed for p in r.parts if p.cmd is not None and not p.timed_out]
    for _ in range(reps):
        for part in parts:
            if part.timed_out:
                continue
            assert part.cmd is not None
            got = run(part.cmd, timeout, scratch)
            part.times.append(got.seconds)
            part.timed_out = got.rc is None       # a timeout will not get better by repeating it
    for part in parts:
        if part.times:
            part.seconds = statistics.median(part.times)


def driver_cmd(tool: Tool, targets: list[Path], scratch: Path, part: str) -> list[str]:
    assert tool.driver is not None
    listing = scratch / f"{tool.name}-{part}-targets.txt"      # kept: the call is timed later
    listing.write_text("".join(f"{t}\n" for t in targets))
    return [venv_bin("python"), "-c", tool.driver, str(listing), str(UNIT_TIMEOUT_S)]


def measure(tool: Tool, corpus: Corpus, scratch: Path, timeout: float) -> ToolRun:
    """Run the tool once on each folder (untimed: page cache, bytecode caches) and read its
    verdicts; `time_round_robin` times the same calls afterwards."""
    res = ToolRun(tool.name, tool.title)
    events: list[Event] = []
    for root in (corpus.hostile, corpus.benign):
        crash = ""
        if tool.command is not None and tool.parse is not None:
            cmd = tool.command(root, scratch)
            p = run(cmd, timeout, scratch)
            got = tool.parse(p, root, scratch) if p.rc is not None and p.rc != 127 else None
            if got is not None:
                resolve = Resolver(corpus.items)
                stray = [e for e in got if e.kind == "flag" and resolve(e.location) is None]
                rescued = rescan(tool, corpus, root, got, len(stray), timeout, scratch) if stray else 0
                events += got
                res.parts.append(Part(root.name, "folder", p.seconds, rescued=rescued, cmd=cmd))
                continue
            crash = last_line(p)
            if tool.driver is None:     # nothing else to try: every sample of this folder is an error
                res.parts.append(Part(root.name, "folder", p.seconds, int(p.rc is None), crash, cmd=cmd,
                                      timed_out=p.rc is None))
                events += [Event(it.key, "error", f"tool failed: {crash}") for it in corpus.items
                           if Path(it.key).is_relative_to(root)]
                if p.rc == 127:
                    res.failed = f"{tool.name}: {crash}"
                continue
        targets = _walk(root) if tool.driver_targets == "files" else corpus.units(root)
        cmd = driver_cmd(tool, targets, scratch, root.name)
        p = run(cmd, timeout, scratch)
        got, touts, reached = parse_driver(tool, p, targets)
        events += got
        if reached == 0 and targets and p.rc is not None:
            res.failed = f"{tool.name}: driver failed ({last_line(p)})"
        res.parts.append(Part(root.name, "driver after folder crash" if crash else "driver", p.seconds,
                              touts, crash, cmd=cmd, timed_out=p.rc is None))
    res.verdicts, res.stray = verdicts_from(events, Resolver(corpus.items))
    if not res.failed:
        res.parts.append(whole_corpus_call(tool, corpus, res, timeout, scratch))
    return res


def whole_corpus_call(tool: Tool, corpus: Corpus, res: ToolRun, timeout: float, scratch: Path) -> Part:
    """The call the issue's speed targets are about: the whole corpus (hostile and benign
    folders) in one call, the way the tool took each folder (its folder call, or the driver
    over every unit when a folder call crashed). Run once untimed here; timed in turns later."""
    root = corpus.hostile.parent
    if tool.command is not None and tool.parse is not None and all(p.mode == "folder" for p in res.parts):
        cmd = tool.command(root, scratch)
        p = run(cmd, timeout, scratch)
        if p.rc is not None and tool.parse(p, root, scratch) is not None:
            return Part(root.name, "folder", p.seconds, cmd=cmd, whole=True)
    if tool.driver is None:
        return Part(root.name, "folder", float("nan"), cmd=None, whole=True, timed_out=True)
    targets = [*_walk(corpus.hostile), *_walk(corpus.benign)] if tool.driver_targets == "files" else \
        [*corpus.units(corpus.hostile), *corpus.units(corpus.benign)]
    cmd = driver_cmd(tool, targets, scratch, root.name)
    p = run(cmd, timeout, scratch)
    return Part(root.name, "driver", p.seconds, cmd=cmd, whole=True, timed_out=p.rc is None)


def rescan(tool: Tool, corpus: Corpus, root: Path, events: list[Event], n_stray: int, timeout: float,
           scratch: Path) -> int:
    """The folder call reported findings at paths that are no corpus entry (ModelAudit names
    the file an ONNX external-data path points to, not the model). To credit them to the right
    sample, every entry under `root` the call did not flag is scanned again alone (untimed); a
    finding anywhere in that call counts for it. Appends to `events`; returns how many entries
    this flagged."""
    assert tool.command is not None and tool.parse is not None
    flagged, _ = verdicts_from(events, Resolver(corpus.items))
    todo = [it for it in corpus.items if Path(it.key).is_relative_to(root)
            and not (it.key in flagged and flagged[it.key].flagged)]
    print(f"  {tool.name}: {n_stray} findings name no corpus entry; scanning the {len(todo)} unflagged "
          f"entries of {root.name} one by one ...", file=sys.stderr)
    found = 0
    for it in todo:
        p = run(tool.command(Path(it.key), scratch), min(timeout, UNIT_TIMEOUT_S), scratch)
        got = tool.parse(p, Path(it.key), scratch) if p.rc is not None else None
        labels = sorted({e.label for e in got or [] if e.kind == "flag"})
        if labels:
            found += 1
            events += [Event(it.key, "flag", f"{lab} (alone)") for lab in labels]
    return found

# ---------------------------------------------------------------- installing the peers

def installed_versions(dists: list[str]) -> dict[str, str]:
    py = VENV / "bin" / "python"
    if not py.exists():
        return {}
    code = ("import json, sys\nfrom importlib import metadata\nout = {}\nfor d in sys.argv[1:]:\n"
            "    try:\n        out[d] = metadata.version(d)\n    except metadata.PackageNotFoundError:\n"
            "        pass\nprint(json.dumps(out))\n")
    r = subprocess.run([str(py), "-c", code, *dists], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else {}


def install_peers(names: list[str]) -> dict[str, str]:
    """Create the peers' venv if needed and install what is missing or at another version.
    Returns {peer: why it failed}."""
    if not (VENV / "bin" / "python").exists():
        base = shutil.which("python3") or getattr(sys, "_base_executable", sys.executable)
        print(f"creating {VENV.relative_to(ROOT)} ...", file=sys.stderr)
        r = subprocess.run([base, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if r.returncode:
            return {n: f"python3 -m venv failed: {r.stderr.strip()[-200:]}" for n in names}
    todo = list(check_installed(names))
    if not todo:
        return {}
    print(f"installing {', '.join(PEERS[n][2] for n in todo)} into {VENV.relative_to(ROOT)} ...",
          file=sys.stderr)
    constraints = VENV / "constraints.txt"
    constraints.write_text(TORCH_PIN + "\n")
    failed = {}
    for n in todo:   # one at a time, so one peer that cannot be installed does not stop the others
        r = subprocess.run([venv_bin("python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "-c", str(constraints), PEERS[n][2]], capture_output=True, text=True)
        if r.returncode:
            lines = [x for x in r.stderr.splitlines() if x.strip() and not x.startswith("WARNING")]
            failed[n] = f"pip install {PEERS[n][2]} failed: {(lines or ['?'])[-1][:200]}"
    return failed


def check_installed(names: list[str]) -> dict[str, str]:
    have = installed_versions(sorted({d for n in names for d in (PEERS[n][0], *PEERS[n][3])}))
    failed = {}
    for n in names:
        dist, version, _, extras = PEERS[n]
        if have.get(dist) != version:
            failed[n] = (f"{dist}=={version} not installed in {VENV.relative_to(ROOT)} "
                         f"(found {have.get(dist, 'nothing')})")
        elif any(d not in have for d in extras):
            failed[n] = f"{PEERS[n][2]}: {', '.join(d for d in extras if d not in have)} missing"
        elif not Path(venv_bin(n)).exists():
            failed[n] = f"no {n} command in {VENV.relative_to(ROOT)}/bin"
    return failed


# ---------------------------------------------------------------- the table

@dataclass
class Column:
    title: str
    run: ToolRun
    hit: Callable[[Item, Verdict], bool]


def assay_expected(it: Item, v: Verdict) -> bool:
    return bool(set(v.labels) & set(it.rules))


def any_flag(it: Item, v: Verdict) -> bool:
    return v.flagged


def verdict(run_: ToolRun, it: Item) -> Verdict:
    return run_.verdicts.get(it.key) or Verdict()


def families(items: list[Item]) -> list[str]:
    present = {it.family for it in items if it.hostile}
    return [f for f in FAMILIES if f in present] + sorted(present - set(FAMILIES))


def family_cells(col: Column, items: list[Item]) -> dict[str, tuple[int, int]]:
    out = {}
    for fam in families(items):
        group = [it for it in items if it.family == fam]
        out[fam] = (sum(col.hit(it, verdict(col.run, it)) for it in group), len(group))
    return out


def build_table(cols: list[Column], items: list[Item]) -> tuple[list[list[str]], dict[str, Any]]:
    hostile = [it for it in items if it.hostile]
    benign = [it for it in items if not it.hostile]
    cells = {c.title: family_cells(c, items) for c in cols}
    assay_s = cols[0].run.seconds
    rows = [["recall (flagged / samples)", *(c.title for c in cols)]]
    for fam in families(items):
        n = cells[cols[0].title][fam][1]
        rows.append([f"{fam} ({n})"] + [_cell(c, *cells[c.title][fam]) for c in cols])
    rows.append([f"all hostile ({len(hostile)})"]
                + [_cell(c, sum(h for h, _ in cells[c.title].values()), len(hostile)) for c in cols])
    rows.append([f"benign: false alarms ({len(benign)})"]
                + [_count(c, sum(verdict(c.run, it).flagged for it in benign)) for c in cols])
    rows.append(["errors: hostile / benign"]
                + [_pair(c, sum(verdict(c.run, it).status == "error" for it in hostile),
                         sum(verdict(c.run, it).error and not verdict(c.run, it).flagged for it in benign))
                   for c in cols])
    rows.append(["timeouts"] + [_count(c, c.run.timeouts) for c in cols])
    rows.append(["whole corpus, one call: wall s"] + [_secs(c, whole=True) for c in cols])
    rows.append(["tool time / assay time (one call)"]
                + [_ratio(c, cols[0].run.whole_seconds, whole=True) for c in cols])
    rows.append(["hostile + benign, two calls: wall s"] + [_secs(c) for c in cols])
    rows.append(["tool time / assay time (two calls)"] + [_ratio(c, assay_s) for c in cols])
    return rows, cells


def _cell(c: Column, hit: int, total: int) -> str:
    return "n/a" if c.run.failed else f"{100 * hit / total:.0f}% {hit}/{total}"


def _count(c: Column, n: int) -> str:
    return "n/a" if c.run.failed else str(n)


def _pair(c: Column, a: int, b: int) -> str:
    return "n/a" if c.run.failed else f"{a} / {b}"


def _secs(c: Column, whole: bool = False) -> str:
    s = c.run.whole_seconds if whole else c.run.seconds
    return "n/a" if s is None or s != s else f"{s:.2f}"


def _ratio(c: Column, assay_s: float | None, whole: bool = False) -> str:
    if c.title.startswith("assay"):
        return ""
    s = c.run.whole_seconds if whole else c.run.seconds
    return "n/a" if s is None or s != s or not assay_s else f"{s / assay_s:.2f}x"


def render(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        first = r[0].ljust(widths[0])
        lines.append("  ".join([first, *(v.rjust(w) for v, w in zip(r[1:], widths[1:]))]).rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------- targets and misses

def targets(cols: list[Column], cells: dict[str, Any], items: list[Item]) -> list[str]:
    hostile = [it for it in items if it.hostile]
    benign = [it for it in items if not it.hostile]
    assay = cols[0]
    got = sum(assay_expected(it, verdict(assay.run, it)) for it in hostile)
    out = [f"assay recall 100% (an expected rule fires): {_met(got == len(hostile))} ({got}/{len(hostile)})"]
    behind = []
    for c in cols:
        if c.title.startswith("assay") or c.run.failed:
            continue
        for fam, (hit, total) in cells[c.title].items():
            mine = cells[assay.title][fam][0]
            if hit > mine:
                behind.append(f"{fam}: {c.title} {hit}/{total} > assay {mine}/{total}")
    out.append("never below a peer in any family: " + _met(not behind)
               + (f" ({'; '.join(behind)})" if behind else ""))
    fa = sum(verdict(assay.run, it).flagged for it in benign)
    out.append(f"0 false alarms: {_met(fa == 0)} ({fa}/{len(benign)})")
    by = {c.run.name: c.run for c in cols}
    for name, need, text in (("modelaudit", TARGET_SPEEDUP_VS_MODELAUDIT, ">= 10x faster than ModelAudit"),
                             ("picklescan", 1.0, "no slower than picklescan")):
        r = by.get(name)
        whole, mine = (r.whole_seconds if r else None), assay.run.whole_seconds
        if r is None or whole is None or whole != whole or not mine:
            out.append(f"{text} (whole corpus, one call): not measured")
            continue
        ratio = whole / mine
        two = f"; two calls: {r.seconds / assay.run.seconds:.2f}x" if r.seconds and assay.run.seconds else ""
        how = f", {r.title} via {r.parts[-1].mode}" if r.parts[-1].mode != "folder" else ""
        out.append(f"{text} (whole corpus, one call): {_met(ratio >= need)} ({ratio:.2f}x{how}{two})")
    return out


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def misses(assay_run: ToolRun, items: list[Item]) -> list[str]:
    out = []
    for it in items:
        v = verdict(assay_run, it)
        if not it.hostile:
            if v.flagged or v.error:
                out.append(f"benign {v.status}: {it.technique}: {', '.join(sorted(set(v.labels)))[:300]}")
        elif not assay_expected(it, v):
            seen = ", ".join(sorted(set(v.labels))) or "nothing"
            out.append(f"missed: {it.family}/{it.technique} (expects {'|'.join(it.rules)}; "
                       f"reported {seen[:200]})")
    return out


def details(cols: list[Column], items: list[Item]) -> str:
    shown = [c for c in cols if c.title != "assay any"]
    rows = [["sample", "family", *(c.title for c in shown)]]
    for it in items:
        rows.append([it.technique[:60], it.family] + [verdict(c.run, it).status for c in shown])
    return render(rows)


def versions(names: list[str]) -> str:
    import assay
    have = installed_versions([*(PEERS[n][0] for n in names), "torch"])
    parts = [f"python {platform.python_version()}", f"assay {assay.__version__}"]
    parts += [f"{PEERS[n][0]} {have.get(PEERS[n][0], 'not installed')}" for n in names]
    if "torch" in have:
        parts.append(f"torch {have['torch']} (peers' venv)")
    return ", ".join(parts)


def report(runs: list[ToolRun], corpus: Corpus, names: list[str], reps: int, show: bool) -> list[str]:
    items = corpus.items
    cols = [Column("assay", runs[0], assay_expected), Column("assay any", runs[0], any_flag)]
    cols += [Column(r.title, r, any_flag) for r in runs[1:]]
    rows, cells = build_table(cols, items)
    n_h = sum(it.hostile for it in items)
    n_f = len(_walk(corpus.hostile)) + len(_walk(corpus.benign))
    print(f"# scan benchmark {datetime.date.today()}: {n_h} hostile samples, {len(items) - n_h} benign "
          f"entries ({n_f} files); per tool one fresh process on the whole corpus, and one on each of "
          f"its hostile and benign folders, {'median of ' + str(reps) if reps > 1 else 'timed once'} "
          f"after a warm-up, "
          f"tools timed in turns; {os.cpu_count()} cores, {platform.machine()}")
    print(f"# {versions(names)}")
    print(render(rows))
    print("assay: an expected rule ID fired; assay any: any finding; peers: the tool's own flag "
          "(see README); errors: entries with an error and no flag")
    for r in runs:
        how = ", ".join(f"{p.root}: {p.mode}" + (f" [folder call: {p.crash}]" if p.crash else "")
                        + (f" (+{p.rescued} flagged only when scanned alone)" if p.rescued else "")
                        for p in r.parts)
        tool = TOOLS[r.name]
        inv = tool.invocation
        if tool.driver_note and "driver" in r.mode:
            inv += f"; driver: {tool.driver_note}"
        print(f"run: {r.title}: {how or r.failed} -- {inv}")
        if r.stray:
            print(f"     ({len(r.stray)} findings/errors named no corpus entry, e.g. {r.stray[0].location})")
    print("targets: " + "; ".join(targets(cols, cells, items)))
    lines = misses(runs[0], items)
    print(f"assay misses and benign findings: {len(lines) or 'none'}")
    for line in lines:
        print("  " + line)
    if show:
        print(details(cols, items))
    return lines


def write_json(out: Path, runs: list[ToolRun], corpus: Corpus, names: list[str]) -> None:
    doc = {
        "schema": "assay.bench.scan_vs_peers/1",
        "date": datetime.date.today().isoformat(),
        "versions": versions(names),
        "tools": {r.name: {"title": r.title, "seconds": r.seconds, "whole_seconds": r.whole_seconds,
                           "mode": r.mode, "failed": r.failed,
                           "timeouts": r.timeouts,
                           "parts": [vars(p) for p in r.parts],
                           "stray": [vars(e) for e in r.stray[:50]]} for r in runs},
        "samples": [{"path": str(it.path), "key": it.key, "family": it.family, "technique": it.technique,
                     "rules": list(it.rules),
                     "results": {r.name: {"status": verdict(r, it).status,
                                          "error": verdict(r, it).error,
                                          "labels": sorted(set(verdict(r, it).labels))} for r in runs}}
                    for it in corpus.items],
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")


# ---------------------------------------------------------------- main

def main() -> int:
    global UNIT_TIMEOUT_S
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of: " + ", ".join(PEERS))
    ap.add_argument("--skip-install", action="store_true", help="use the peers' venv as it is")
    ap.add_argument("--reps", type=int, default=1, help="timed runs per call (median; default 1)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                    help=f"seconds allowed per call of a tool (default {DEFAULT_TIMEOUT_S})")
    ap.add_argument("--unit-timeout", type=int, default=UNIT_TIMEOUT_S,
                    help=f"seconds per file or sample inside an API driver (default {UNIT_TIMEOUT_S})")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the raw per-sample results here")
    ap.add_argument("--keep", action="store_true", help="keep the corpus folder (its path is printed)")
    ap.add_argument("--details", action="store_true", help="also print every sample's verdict per tool")
    args = ap.parse_args()
    UNIT_TIMEOUT_S = max(1, args.unit_timeout)
    names = [n.strip() for n in args.peers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        ap.error(f"unknown peer(s): {', '.join(unknown)} (choose from {', '.join(PEERS)})")
    if not ASSAY.exists():
        ap.error(f"{ASSAY} not found (run `make demo` or `make test` first)")
    broken = {} if args.skip_install else install_peers(names)
    broken.update({k: v for k, v in check_installed(names).items() if k not in broken})
    base = Path(tempfile.mkdtemp(prefix="assay-scan-bench-")).resolve()
    scratch, markers = base / "scratch", base / "markers"   # a payload that really ran writes a marker
    scratch.mkdir()
    markers.mkdir()
    runs: list[ToolRun] = []
    try:
        print("building the corpus ...", file=sys.stderr)
        corpus = build_corpus(base / "corpus", markers / "PWNED")
        for name in ["assay", *names]:
            if name in broken:
                runs.append(ToolRun(name, TOOLS[name].title, failed=f"{name}: {broken[name]}"))
                continue
            print(f"running {name} ...", file=sys.stderr)
            runs.append(measure(TOOLS[name], corpus, scratch, args.timeout))
        print(f"timing {max(1, args.reps)} rounds of every call ...", file=sys.stderr)
        time_round_robin(runs, max(1, args.reps), args.timeout, scratch)
        for r in runs:
            if not r.failed:
                print(f"  {r.name}: whole corpus {r.whole_seconds or 0:.2f} s, "
                      f"two calls {r.seconds or 0:.2f} s ({r.mode})", file=sys.stderr)
        report(runs, corpus, names, max(1, args.reps), args.details)
        if args.json:
            write_json(args.json, runs, corpus, names)
            print(f"per-sample results written to {args.json}", file=sys.stderr)
        ran = sorted(p.name for p in markers.iterdir())
        if ran:
            print(f"WARNING: a payload ran during the benchmark (markers: {', '.join(ran)})")
    finally:
        if args.keep:
            print(f"corpus kept in {base / 'corpus'}", file=sys.stderr)
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            shutil.rmtree(base, ignore_errors=True)
    failed = [r.failed for r in runs if r.failed]
    for line in failed:
        print(f"scan_vs_peers: could not run {line}", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
