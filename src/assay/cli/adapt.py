"""`assay adapt`, `assay predict`, `assay cost`. Exit 0 done, 2 error (bad data, bad usage, a
failed build); errors are one line on stderr, results on stdout, progress on stderr."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, ClassVar

import typer

from assay import api
from assay.cli.common import fail, log
from assay.errors import AssayError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from assay.adapt.plan import AdaptResult

COST_METHODS = ("head", "lora", "full", "scratch")


class Format(StrEnum):
    text = "text"
    json = "json"


class PredictFormat(StrEnum):
    json = "json"
    csv = "csv"


class Method(StrEnum):
    head = "head"
    lora = "lora"


class Head(StrEnum):
    linear = "linear"
    mlp = "mlp"


class Task(StrEnum):
    classify = "classify"
    regress = "regress"
    embed = "embed"



class TrainingProgress:
    """One bar per stage (features, head epochs, LoRA steps) on stderr, when it is a terminal."""

    LABELS: ClassVar[dict[str, str]] = {"features": "features", "head": "head epochs", "lora": "LoRA steps"}

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> TrainingProgress:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self.progress = Progress("[progress.description]{task.description}", BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     TextColumn("{task.fields[note]}"), console=Console(stderr=True),
                                     transient=True)
            self.progress.start()
        return self

    def update(self, kind: str, done: int, total: int, note: str) -> None:
        if self.progress is None:
            return
        if kind not in self.tasks:
            self.tasks[kind] = self.progress.add_task(self.LABELS.get(kind, kind), total=total, note="")
        self.progress.update(self.tasks[kind], completed=done, total=total, note=note)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()


def adapt(
    base: Annotated[str, typer.Argument(help="A BERT-family sentence-encoder folder, a small CNN's "
                                             "weight file, or an ONNX model (with --onnx-output).")],
    data: Annotated[str, typer.Option("--data", help="Labelled training data: CSV or JSONL (texts, "
                                                     "pixel rows or image paths), or a folder of "
                                                     "images per class.")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="OUT", help="The output folder.")],
    task: Annotated[Task, typer.Option("--task", help="Labels (classify), numbers (regress), or an "
                                                      "embedding space where labels cluster (embed).")
                    ] = Task.classify,
    method: Annotated[Method, typer.Option("--method", help="A head on frozen features, or a "
                                                            "low-rank update with the head.")] = Method.head,
    head: Annotated[Head, typer.Option("--head", help="Linear head or a small MLP.")] = Head.linear,
    holdout: Annotated[str | None, typer.Option("--holdout", help="Labelled data the training never "
                                                                  "sees, for a final accuracy.")] = None,
    text_column: Annotated[str, typer.Option("--text-column", help="Column holding the text (or an "
                                                                   "image's pixel values).")] = "text",
    label_column: Annotated[str, typer.Option("--label-column", help="Column holding the label.")] = "label",
    rank: Annotated[int, typer.Option("--rank", min=1, max=256, help="LoRA rank.")] = 8,
    targets: Annotated[str, typer.Option("--targets", help="LoRA target projections, comma separated "
                                                           "(query, key, value).")] = "query,value",
    lora_layers: Annotated[int, typer.Option("--lora-layers", min=0, help="LoRA on the top K layers of an "
                                                                      "encoder (0: every layer).")] = 2,
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help="Head: after early stopping, refit on "
                                                                   "training + validation rows.")] = True,
    onnx_output: Annotated[str | None, typer.Option(
        "--onnx-output", metavar="NAME", help="ONNX base: the output giving the features.")] = None,
    epochs: Annotated[int | None, typer.Option(
        "--epochs", min=1, help="Most epochs (of the head; of LoRA with --method lora).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the split, the order and the "
                                                            "initial weights.")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Threads of the training "
                                                                 "(pinned; recorded).")] = 1,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Cache frozen features under "
                                                                   "$XDG_CACHE_HOME/assay.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier adapt output in OUT.")] = False,
    catalog: Annotated[str | None, typer.Option("--catalog", metavar="PATH-or-URL",
                                                help="Add the base and the merged model (LoRA) to this "
                                                     "catalog, recording their relation.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
) -> None:
    """Adapt a network to labelled data (classes, numbers, or an embedding space): written as a
    recipe and built through `assay rebuild`'s runner. OUT gets the adapter, the recipe, a build
    record, adapt.json and a model card."""
    from assay.adapt.plan import AdaptOptions, default_cache_dir
    from assay.render import adapt as render
    extra: dict[str, int] = {}
    if epochs is not None:
        extra["lora_epochs" if method is Method.lora else "epochs"] = epochs
    opts = AdaptOptions(task=task.value, method=method.value, lora_layers=lora_layers, refit=refit,
                        output=onnx_output, head=head.value, text_column=text_column,
                        label_column=label_column, seed=seed, threads=threads, rank=rank,
                        alpha=2.0 * rank, targets=tuple(t.strip() for t in targets.split(",") if t.strip()),
                        cache_dir=default_cache_dir() if cache else None, force=force, **extra)
    try:
        with TrainingProgress() as bar:
            result = api.adapt(base, data, output, options=opts, holdout=holdout, progress=bar.update,
                               log=log)
        if catalog is not None:
            _catalog(result, catalog)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if fmt is Format.json:
        sys.stdout.write(json.dumps(render.adapt_json(result), indent=2) + "\n")
    else:
        sys.stdout.write(render.adapt_text(result) + "\n")


def _catalog(result: AdaptResult, catalog: str) -> None:
    import os
    merged = result.files.get("merged")
    if merged is None:
        log("catalog: a head alone has no weights of the base to relate; only LoRA outputs are added")
        return
    added = api.catalog_add([result.base, os.path.join(result.out_dir, merged)], catalog=catalog)
    for a in added:
        for link in a.links:
            log(f"catalog: {link.child.label} is {link.relation} of {link.parent.label} ({link.summary})")


def predict(
    model: Annotated[str, typer.Argument(help="An `assay adapt` output folder.")],
    data: Annotated[str, typer.Option("--data", help="Examples to apply it to: CSV or JSONL, or a "
                                                     "folder of images.")],
    text_column: Annotated[str | None, typer.Option("--text-column", help="Column holding the text "
                                                                          "(default: the adapt's).")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Column with true labels, "
                                                                            "for accuracy.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Threads (default: the "
                                                                         "recipe's).")] = None,
    fmt: Annotated[PredictFormat, typer.Option("--format", "-f", help="Output format.")] = PredictFormat.json,
    out: Annotated[str | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Apply an adapted model: labels, numbers or vectors (JSON `assay.predict/1` or CSV)."""
    from assay.render import adapt as render
    try:
        preds = api.predict(model, data, text_column=text_column, label_column=label_column, threads=threads)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    text = render.predict_csv(preds) if fmt is PredictFormat.csv else json.dumps(render.predict_json(preds),
                                                                                 indent=2) + "\n"
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


def cost(
    model: Annotated[str, typer.Argument(help="A BERT-family sentence-encoder folder.")],
    data: Annotated[str | None, typer.Option("--data", help="The data to train on (CSV or JSONL); "
                                                            "else a stated synthetic workload.")] = None,
    text_column: Annotated[str, typer.Option("--text-column", help="Column holding the text.")] = "text",
    method: Annotated[list[str] | None, typer.Option("--method", help="Only these: head, lora, full, "
                                                                      "scratch (repeatable).")] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Threads to measure with.")] = 1,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Epochs of the fine-tuning "
                                                                       "methods.")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Examples per measured batch.")] = 16,
    seq_len: Annotated[int, typer.Option("--seq-len", min=4, help="Tokens per synthetic example "
                                                                  "(without --data).")] = 64,
    lora_layers: Annotated[int, typer.Option("--lora-layers", min=0, help="LoRA on the top K layers "
                                                                          "(0: every layer).")] = 2,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
) -> None:
    """Measure throughput here and estimate time and memory of adapting or retraining MODEL."""
    from assay.render import adapt as render
    unknown = sorted(set(method or ()) - set(COST_METHODS))
    if unknown:
        raise fail(f"unknown method {unknown[0]!r} ({', '.join(COST_METHODS)})")
    try:
        report = api.cost(model, data=data, text_column=text_column, threads=threads, epochs=epochs,
                          batch=batch, seq_len=seq_len, lora_layers=lora_layers)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if method:
        report = report.only(method)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(render.cost_json(report), indent=2) + "\n")
    else:
        sys.stdout.write(render.cost_text(report) + "\n")
