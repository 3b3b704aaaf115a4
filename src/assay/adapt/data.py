"""Labelled examples from a CSV or JSONL file, or a folder of images per class, checked before
any training runs.

The format is recognised by content (a first non-blank character `{` means JSON Lines, anything
else is read as CSV with a header row). The example column holds a text, an image as
space-separated pixel values, or the path of an image file relative to the data file; a folder
holds one subfolder of image files per label. Every problem is one `DataError` naming the file
(or the image), the row where there is one, and the rule broken. Used by the parent (`adapt`,
`predict`) and, with the same code, by the training child.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from assay.errors import AssayError

if TYPE_CHECKING:
    import numpy as np

MAX_DATA_BYTES = 256 << 20
MAX_FIELD = 1 << 20
MAX_IMAGE_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 1 << 26
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm")
DIGEST_COLUMN = "assay_blake3"     # a recipe's image manifest: the BLAKE3 of each image file


class DataError(AssayError):
    """Training or evaluation data that cannot be used: unreadable, missing columns, one class,
    labels the training never saw."""


@dataclass(frozen=True)
class Examples:
    path: str
    format: str                      # "csv" | "jsonl"
    texts: tuple[str, ...]
    labels: tuple[str, ...] | None   # None when the file has no label column (predict)
    digests: tuple[str, ...] | None = None   # an image manifest's pinned digests

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
    column (its labels are then None). A folder is read as one subfolder of images per label."""
    if os.path.isdir(path):
        return read_image_folder(path)
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
    digests: list[str] = []
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
        if DIGEST_COLUMN in columns:
            digests.append(str(r.get(DIGEST_COLUMN, "")))
    return Examples(path, fmt, tuple(texts), tuple(labels) if has_labels else None,
                    tuple(digests) if DIGEST_COLUMN in columns else None)


def read_image_folder(path: str) -> Examples:
    """One subfolder per label, holding that label's image files (sorted by name; hidden files
    and files of other kinds are skipped)."""
    texts: list[str] = []
    labels: list[str] = []
    try:
        subs = sorted(e for e in os.listdir(path) if not e.startswith(".")
                      and os.path.isdir(os.path.join(path, e)))
        for label in subs:
            folder = os.path.join(path, label)
            for name in sorted(os.listdir(folder)):
                if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES):
                    texts.append(os.path.join(os.path.abspath(folder), name))
                    labels.append(label)
    except OSError as exc:
        raise DataError(path, f"cannot read the image folder: {exc.strerror or exc}") from None
    if not texts:
        raise DataError(path, "no images: a data folder holds one subfolder of image files "
                              f"({', '.join(IMAGE_SUFFIXES[:4])}, ...) per label")
    return Examples(path, "folder", tuple(texts), tuple(labels))


def is_pixels(value: str) -> bool:
    """Whether an example is an image given as space-separated numbers (else: a path)."""
    try:
        return bool(value.split()) and all(math.isfinite(float(v)) for v in value.split())
    except ValueError:
        return False


def resolve_images(ex: Examples) -> Examples:
    """Image paths made absolute, relative to the data file's folder (pixel rows unchanged)."""
    root = ex.path if ex.format == "folder" else os.path.dirname(os.path.abspath(ex.path))
    texts = tuple(t if is_pixels(t) else os.path.normpath(os.path.join(root, t.strip())) for t in ex.texts)
    return replace(ex, texts=texts)


def has_image_files(ex: Examples) -> bool:
    return any(not is_pixels(t) for t in ex.texts)


def load_image(path: str, channels: int, side: int) -> np.ndarray:
    """An image file as (channels, side, side) float32 in [0, 1]: converted to grey (1 channel) or
    RGB (3), resized to side x side (bilinear). Read by Pillow, never executed."""
    import numpy as np
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError(path, "reading image files needs Pillow (pip install pillow); or give each "
                              "image as space-separated pixel values") from None
    if channels not in (1, 3):
        raise DataError(path, f"the network takes {channels} channels: only grey (1) or RGB (3) images "
                              "are converted")
    try:
        if os.path.getsize(path) > MAX_IMAGE_BYTES:
            raise DataError(path, f"image file larger than {MAX_IMAGE_BYTES >> 20} MiB")
        with Image.open(path) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise DataError(path, f"image of {im.width}x{im.height} pixels is too large")
            im = im.convert("L" if channels == 1 else "RGB").resize((side, side), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise DataError(path, "cannot read image: no such file") from None
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(path, f"cannot read image ({type(exc).__name__}: {str(exc)[:120]})") from None
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1).copy()


def check_images(ex: Examples, channels: int, side: int) -> None:
    """Every example must be an image the network takes: `channels` x `side` x `side` pixel values,
    or an image file that reads (and, in a recipe's manifest, has its pinned digest)."""
    n = channels * side * side
    for i, t in enumerate(ex.texts):
        if is_pixels(t):
            if len(t.split()) != n:
                raise DataError(ex.path, f"example {i + 1}: {len(t.split())} pixel values; the network "
                                         f"takes {n}")
            continue
        if ex.digests is not None:
            from assay.recipes.pinning import file_digest
            try:
                got = file_digest(t)
            except OSError:
                raise DataError(t, "cannot read image: no such file") from None
            if got != ex.digests[i]:
                raise DataError(t, f"image does not have the digest {ex.digests[i]} the manifest "
                                   f"{os.path.basename(ex.path)} pins (found {got})")
        load_image(t, channels, side)


def check_training(ex: Examples, min_per_class: int = 2, task: str = "classify") -> None:
    """Training data must have at least two classes, each with enough examples to hold one out
    for validation (classify, embed); or numeric labels, not all equal, at least five rows
    (regress)."""
    if task == "regress":
        vals = numeric_labels(ex)
        if len(vals) < 5:
            raise DataError(ex.path, f"{len(vals)} examples; regression needs at least 5 (20% are held "
                                     "out for validation)")
        if len(set(vals)) < 2:
            raise DataError(ex.path, f"every label is {vals[0]!r}: nothing to regress on")
        return
    counts = Counter(ex.labels or ())
    if len(counts) < 2:
        only = next(iter(counts), "")
        raise DataError(ex.path, f"only one class ({only!r}) in the labels: {task} needs "
                                 "at least two")
    small = sorted(k for k, v in counts.items() if v < min_per_class)
    if small:
        raise DataError(ex.path, f"class {small[0]!r} has {counts[small[0]]} example(s); each class "
                                 f"needs at least {min_per_class} (one is held out for validation)")


def numeric_labels(ex: Examples) -> list[float]:
    """The labels as finite numbers (regression); a label that is not one is a `DataError`."""
    import math
    out: list[float] = []
    first = 2 if ex.format == "csv" else 1
    for i, lab in enumerate(ex.labels or ()):
        try:
            v = float(lab)
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            raise DataError(ex.path, f"row {i + first}: label {lab!r} is not a finite number "
                                     "(--task regress needs numeric labels)")
        out.append(v)
    return out


def check_holdout(holdout: Examples, classes: Sequence[str], task: str = "classify") -> None:
    """Every label of a holdout file must be one the training data has (a number, for regress)."""
    if task == "regress":
        numeric_labels(holdout)
        return
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


def split(labels: Sequence[str], fraction: float, seed: int,
          stratify: bool = True) -> tuple[list[int], list[int]]:
    """A seeded split into (train, validation) row indices, both sorted. Stratified: each class
    gives `fraction` of its rows (at least one, and never all) to validation; else `fraction` of
    all rows (regression)."""
    import numpy as np

    rng = np.random.RandomState(seed)
    by_class: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab if stratify else "", []).append(i)
    val: list[int] = []
    for lab in sorted(by_class):
        rows = by_class[lab]
        k = min(len(rows) - 1, max(1, round(len(rows) * fraction)))
        val += [rows[j] for j in rng.permutation(len(rows))[:k]]
    vset = set(val)
    return [i for i in range(len(labels)) if i not in vset], sorted(val)


def reader(p: Mapping[str, object]) -> Callable[[str], Examples]:
    """How the training child reads its data, from the recipe's params (image paths are made
    absolute; checking them against the network and the manifest's digests is the encoder's)."""
    text, label = str(p.get("text_column", "text")), str(p.get("label_column", "label"))

    def read(path: str) -> Examples:
        ex = read_examples(path, text, label)
        return resolve_images(ex) if p.get("modality") in ("image", "onnx") else ex
    return read


def read_for_predict(path: str, p: Mapping[str, object], text_column: str | None,
                     label_column: str | None) -> Examples:
    """Data to apply an adapted model to: the recipe's columns unless named; labels optional."""
    ex = read_examples(path, text_column or str(p.get("text_column", "text")),
                       label_column or str(p.get("label_column", "label")), require_labels=False)
    return resolve_images(ex) if p.get("modality") in ("image", "onnx") else ex
