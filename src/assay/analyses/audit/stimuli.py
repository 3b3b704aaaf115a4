"""Association tests as data: the bundled WEAT tests, SEAT templates, neutral probes, user TOML.

A test names two target sets (X, Y) and two attribute sets (A, B), each a label and a list of
words, plus its source. User tests use the format of `assay/data/weat.toml` (see its header).
Parsing is pure: text in, frozen values out; the bundled files are read as package data.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from assay.errors import UsageError

MAX_WORDS = 10_000
MAX_TESTS = 1_000


@dataclass(frozen=True)
class WordSet:
    label: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class AssociationTest:
    id: str
    name: str
    targets: tuple[WordSet, WordSet]
    attributes: tuple[WordSet, WordSet]
    source: str = ""
    kind: str = "terms"                          # "terms" | "names": which templates fit
    templates: tuple[str, ...] = ()              # SEAT templates ("{}" = the word); () = bundled
    paper: dict[str, float] = field(default_factory=dict, compare=False)


def _text(v: Any, what: str, where: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise UsageError(where, f"{what} must be a non-empty string")
    return v


def _wordset(v: Any, what: str, where: str) -> WordSet:
    if not (isinstance(v, list) and len(v) == 2 and isinstance(v[1], list)):
        raise UsageError(where, f"{what} must be [label, [words...]]")
    words = tuple(_text(w, f"{what} word", where) for w in v[1])
    if len(words) < 2 or len(words) > MAX_WORDS:
        raise UsageError(where, f"{what} needs between 2 and {MAX_WORDS} words")
    return WordSet(_text(v[0], f"{what} label", where), words)


def _pair(v: Any, what: str, where: str) -> tuple[WordSet, WordSet]:
    if not (isinstance(v, list) and len(v) == 2):
        raise UsageError(where, f"{what} must hold exactly two sets")
    return _wordset(v[0], f"{what}[0]", where), _wordset(v[1], f"{what}[1]", where)


def parse_tests(text: str, where: str = "<tests>") -> tuple[AssociationTest, ...]:
    """Tests from TOML text (the format of `assay/data/weat.toml`)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(where, f"not valid TOML ({exc})") from None
    raw = doc.get("test")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_TESTS:
        raise UsageError(where, f"needs between 1 and {MAX_TESTS} [[test]] tables")
    source = doc.get("source", "") if isinstance(doc.get("source", ""), str) else ""
    out: list[AssociationTest] = []
    seen: set[str] = set()
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise UsageError(where, f"test {i} is not a table")
        tid = _text(t.get("id"), f"test {i} id", where)
        if tid in seen:
            raise UsageError(where, f"test id {tid!r} appears twice")
        seen.add(tid)
        templates = t.get("templates", [])
        if not isinstance(templates, list) or not all(isinstance(x, str) and x.count("{}") == 1
                                                      for x in templates):
            raise UsageError(where, f"test {tid}: templates must be strings with one '{{}}' each")
        kind = t.get("kind", "terms")
        if kind not in ("terms", "names"):
            raise UsageError(where, f"test {tid}: kind must be 'terms' or 'names'")
        paper = t.get("paper", {})
        out.append(AssociationTest(
            tid, str(t.get("name", tid)), _pair(t.get("targets"), f"test {tid} targets", where),
            _pair(t.get("attributes"), f"test {tid} attributes", where),
            f"{source}; stimuli from {t['origin']}" if t.get("origin") else source, kind,
            tuple(templates),
            {str(k): float(v) for k, v in paper.items() if isinstance(v, int | float)}
            if isinstance(paper, dict) else {}))
    return tuple(out)


def _data(name: str) -> str:
    return resources.files("assay.data").joinpath(name).read_text(encoding="utf-8")


@cache
def weat_tests() -> tuple[AssociationTest, ...]:
    """The ten WEAT tests of Caliskan, Bryson, Narayanan (2017)."""
    return parse_tests(_data("weat.toml"), "assay/data/weat.toml")


@cache
def seat_templates() -> dict[str, tuple[str, ...]]:
    doc = tomllib.loads(_data("seat.toml"))
    return {k: tuple(v) for k, v in doc["templates"].items()}


@cache
def neutral_sentences() -> tuple[str, ...]:
    return tuple(tomllib.loads(_data("neutral.toml"))["sentences"])


def templates_for(test: AssociationTest) -> tuple[str, ...]:
    return test.templates or seat_templates()[test.kind]


def sentences(words: tuple[str, ...], templates: tuple[str, ...]) -> tuple[str, ...]:
    """Each word in each template; a template starting with the word capitalises it."""
    out = []
    for w in words:
        for t in templates:
            word = w[:1].upper() + w[1:] if t.startswith("{}") else w
            out.append(t.replace("{}", word))
    return tuple(out)


def select(tests: tuple[AssociationTest, ...], ids: list[str] | None) -> tuple[AssociationTest, ...]:
    """The tests whose ids are listed (in that order), or all of them."""
    if not ids:
        return tests
    by_id = {t.id: t for t in tests}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise UsageError(None, f"unknown test {unknown[0]!r} (known: {', '.join(by_id)})")
    return tuple(by_id[i] for i in ids)
