"""The scan policy: which pickle globals are safe in which context, which are dangerous, and why.

Policy is data (TOML). The shipped default lives in `assay/data/policy.toml`; a user file
replaces it. Nothing in a policy names code to import."""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

from assay.analyses.scan.model import DEFAULT_POLICY_NAME, SEVERITIES

_WILD = frozenset("*?[")


class PolicyError(ValueError):
    """A policy document breaks a rule (message says which)."""


@dataclass(frozen=True)
class Entry:
    """Globals matched by patterns, in which formats, with a reason, severity and rule."""
    patterns: tuple[str, ...]
    reason: str
    contexts: tuple[str, ...] = ("*",)
    severity: str = "critical"
    rule: str = "PICKLE001"

    # exact names in a set, wildcard patterns in one regular expression, built once when the
    # policy is read (before scan workers fork), not per pattern on first use in each worker
    _exact: frozenset[str] = field(init=False, repr=False, compare=False)
    _wild: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        wild = [fnmatch.translate(p) for p in self.patterns if _WILD.intersection(p)]
        object.__setattr__(self, "_exact",
                           frozenset(p for p in self.patterns if not _WILD.intersection(p)))
        object.__setattr__(self, "_wild", re.compile("|".join(wild)) if wild else None)

    def matches(self, name: str) -> bool:
        return name in self._exact or (self._wild is not None and self._wild.match(name) is not None)


class Verdict(NamedTuple):
    """What the policy says about one global, and the entry that said it."""
    kind: str            # "safe" | "dangerous" | "unknown"
    entry: Entry | None


@dataclass(frozen=True)
class Policy:
    """Safe and dangerous globals, format groups, and the severity of unknown ones."""
    name: str
    safe: tuple[Entry, ...]
    dangerous: tuple[Entry, ...]
    groups: dict[str, tuple[str, ...]]
    unknown_severity: str = "medium"
    source: str = field(default="", compare=False, repr=False)   # the TOML it was read from
    # verdicts already given, by (name, format): a TorchScript file asks about the same dozen
    # globals a thousand times, and each answer matches every pattern of the policy
    _seen: dict[tuple[str, str | None], Verdict] = field(default_factory=dict, compare=False,
                                                         repr=False)

    def in_context(self, entry: Entry, fmt: str | None) -> bool:
        for c in entry.contexts:
            if c == "*" or c == fmt or (fmt is not None and fmt in self.groups.get(c, ())):
                return True
        return False

    def classify(self, name: str, fmt: str | None) -> Verdict:
        got = self._seen.get((name, fmt))
        if got is None:
            if len(self._seen) >= 65536:      # a crafted file may name endless globals
                self._seen.clear()
            got = self._seen[(name, fmt)] = self._classify(name, fmt)
        return got

    def _classify(self, name: str, fmt: str | None) -> Verdict:
        for e in self.dangerous:
            if e.matches(name):
                return Verdict("dangerous", e)
        for e in self.safe:
            if self.in_context(e, fmt) and e.matches(name):
                return Verdict("safe", e)
        return Verdict("unknown", None)


def _strings(v: object, where: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise PolicyError(f"{where} must be a list of strings")
    return tuple(v)


def parse(text: str, name: str) -> Policy:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML ({exc})") from None
    if doc.get("version") != 1:
        raise PolicyError("policy version must be 1")
    unknown = doc.get("unknown_severity", "medium")
    if unknown not in SEVERITIES:
        raise PolicyError(f"unknown_severity must be one of {', '.join(SEVERITIES)}")
    groups_doc = doc.get("groups", {})
    if not isinstance(groups_doc, dict):
        raise PolicyError("[groups] must be a table")
    groups = {k: _strings(v, f"groups.{k}") for k, v in groups_doc.items()}
    entries: dict[str, list[Entry]] = {"safe": [], "dangerous": []}
    for kind in entries:
        items = doc.get(kind, [])
        if not isinstance(items, list):
            raise PolicyError(f"[[{kind}]] must be an array of tables")
        for i, item in enumerate(items):
            where = f"{kind}[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("reason"), str):
                raise PolicyError(f"{where} needs a reason")
            sev = item.get("severity", "critical" if kind == "dangerous" else "info")
            if sev not in SEVERITIES:
                raise PolicyError(f"{where}.severity must be one of {', '.join(SEVERITIES)}")
            rule = item.get("rule", "PICKLE001")
            if rule not in ("PICKLE001", "PICKLE004", "PICKLE005"):
                raise PolicyError(f"{where}.rule must be PICKLE001, PICKLE004 or PICKLE005")
            entries[kind].append(Entry(_strings(item.get("globals"), f"{where}.globals"), item["reason"],
                                       _strings(item.get("contexts", ["*"]), f"{where}.contexts"),
                                       sev, rule))
    return Policy(name, tuple(entries["safe"]), tuple(entries["dangerous"]), groups, unknown, text)


DEFAULT_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "data", "policy.toml")


@cache
def default_policy() -> Policy:
    try:       # a plain file next to the package: importlib.resources costs more than the read
        with open(DEFAULT_FILE, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:       # installed in a zip file or the like: ask the import system
        from importlib import resources
        text = resources.files("assay.data").joinpath("policy.toml").read_text(encoding="utf-8")
    return parse(text, DEFAULT_POLICY_NAME)
