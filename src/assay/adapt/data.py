"""Labelled text examples from a CSV or JSONL file, checked before any training runs.

The format is recognised by content (a first non-blank character `{` means JSON Lines, anything
else is read as CSV with a header row). Every problem is one `DataError` naming the file, the row
where there is one, and the rule broken. Used by the parent (`adapt`, `predict`) and, with the
same code, by the training child.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from assay.errors import AssayError

MAX_DATA_BYTES = 256 << 20
MAX_FIELD = 1 << 20


class DataError(AssayError):
    """Training or evaluation data that cannot be used: unreadable, missing columns, one class,
    labels the training never saw."""


@dataclass(frozen=True)
class Examples:
    path: str
    format: str                      # "csv" | "jsonl"
    texts: tuple[str, ...]
    labels: tuple[str, ...] | None   # None when the file has no label column (predict)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.labels or ())))


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_DATA_BYTES + 1)
    except IsADirectoryError:
        raise DataError(path, "cannot read data: is a folder, not a CSV or JSONL file") from None
    except OSError as exc:
        raise DataError(path, f"cannot read data: {exc.strerror or exc}") from None
    if len(raw) > MAX_DATA_BYTES:
        raise DataError(path, f"data file larger than {MAX_DATA_BYTES >> 20} MiB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"data is not UTF-8 text (byte {exc.start})") from None


def _rows_jsonl(text: str, path: str) -> tuple[list[str], list[dict[str, object]]]:
    rows: list[dict[str, object]] = []
    columns: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            raise DataError(path, f"line {n}: not a JSON object (JSON Lines expects one per line)") from None
        if not isinstance(obj, dict):
            raise DataError(path, f"line {n}: not a JSON object")
        columns += [k for k in obj if k not in columns]
        rows.append(obj)
    return columns, rows


def _rows_csv(text: str, path: str) -> tuple[list[str], list[dict[str, object]]]:
    csv.field_size_limit(MAX_FIELD)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = list(reader.fieldnames or [])
        rows: list[dict[str, object]] = [dict(r) for r in reader]
    except csv.Error as exc:
        raise DataError(path, f"not a readable CSV file ({exc})") from None
    return columns, rows


def read_examples(path: str, text_column: str = "text", label_column: str | None = "label", *,
                  require_labels: bool = True) -> Examples:
    """Read and check labelled examples. `require_labels=False` accepts a file without the label
    column (its labels are then None)."""
    text = _read_text(path)
    fmt = "jsonl" if text.lstrip().startswith("{") else "csv"
    columns, rows = (_rows_jsonl if fmt == "jsonl" else _rows_csv)(text, path)
    if not rows:
        raise DataError(path, "no examples (the file has no data rows)")
    if text_column not in columns:
        raise DataError(path, f"no text column {text_column!r} (columns: {', '.join(columns) or 'none'}); "
                              "name it with --text-column")
    has_labels = label_column is not None and label_column in columns
    if require_labels and not has_labels:
        raise DataError(path, f"no label column {label_column!r} (columns: {', '.join(columns)}); "
                              "name it with --label-column")
    texts: list[str] = []
    labels: list[str] = []
    first_row = 2 if fmt == "csv" else 1
    for i, r in enumerate(rows):
        t = r.get(text_column)
        if not isinstance(t, str) or not t.strip():
            raise DataError(path, f"row {i + first_row}: empty or missing text in column {text_column!r}")
        texts.append(t)
        if has_labels:
            lab = r.get(label_column or "")
            if isinstance(lab, bool) or lab is None or (isinstance(lab, str) and not lab.strip()) \
                    or not isinstance(lab, str | int | float):
                raise DataError(path, f"row {i + first_row}: empty or missing label in column "
                                      f"{label_column!r}")
            labels.append(str(lab).strip())
    return Examples(path, fmt, tuple(texts), tuple(labels) if has_labels else None)


def check_training(ex: Examples, min_per_class: int = 2) -> None:
    """Training data must have at least two classes, each with enough examples to hold one out
    for validation."""
    counts = Counter(ex.labels or ())
    if len(counts) < 2:
        only = next(iter(counts), "")
        raise DataError(ex.path, f"only one class ({only!r}) in the labels: classification needs "
                                 "at least two")
    small = sorted(k for k, v in counts.items() if v < min_per_class)
    if small:
        raise DataError(ex.path, f"class {small[0]!r} has {counts[small[0]]} example(s); each class "
                                 f"needs at least {min_per_class} (one is held out for validation)")


def check_holdout(holdout: Examples, classes: Sequence[str]) -> None:
    """Every label of a holdout file must be one the training data has."""
    unseen = Counter(lab for lab in holdout.labels or () if lab not in set(classes))
    if unseen:
        names = ", ".join(repr(k) for k in sorted(unseen)[:5])
        raise DataError(holdout.path, f"holdout labels never seen in training: {names} "
                                      f"({sum(unseen.values())} rows); the training classes are "
                                      f"{', '.join(classes)}")


def check_pixels(ex: Examples, n: int) -> None:
    """Every image (the text column of an image task) must be `n` numbers."""
    for i, t in enumerate(ex.texts):
        parts = t.split()
        try:
            [float(v) for v in parts]
        except ValueError:
            raise DataError(ex.path, f"example {i + 1}: pixel values must be numbers") from None
        if len(parts) != n:
            raise DataError(ex.path, f"example {i + 1}: {len(parts)} pixel values; the network takes {n}")


def split(labels: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A stratified, seeded split into (train, validation) row indices, both sorted: each class
    gives `fraction` of its rows (at least one, and never all) to validation."""
    import numpy as np

    rng = np.random.RandomState(seed)
    by_class: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(i)
    val: list[int] = []
    for lab in sorted(by_class):
        rows = by_class[lab]
        k = min(len(rows) - 1, max(1, round(len(rows) * fraction)))
        val += [rows[j] for j in rng.permutation(len(rows))[:k]]
    vset = set(val)
    return [i for i in range(len(labels)) if i not in vset], sorted(val)
