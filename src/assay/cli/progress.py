"""A byte-count progress bar on stderr, shown only for large work on a terminal."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

THRESHOLD = 256 << 20


def _stderr_console() -> Console | None:
    """A rich console on stderr when it is a terminal (progress is for people, not pipes)."""
    import sys
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    return Console(stderr=True)


class ByteProgress:
    def __init__(self, label: str) -> None:
        self.label = label
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> ByteProgress:
        return self

    def start(self, total: int) -> None:
        console = _stderr_console() if total >= THRESHOLD else None
        if console is None:
            return
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
        self.progress = Progress("[progress.description]{task.description}", BarColumn(),
                                 DownloadColumn(), TimeRemainingColumn(), console=console,
                                 transient=True)
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=total)

    def advance(self, n: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, n)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()


class ScanProgress:
    """Files done out of files found, on stderr, for scans of more than a handful of files."""

    def __init__(self) -> None:
        self.closed = False
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> ScanProgress:
        return self

    def update(self, done: int, total: int) -> None:
        if self.progress is None:
            console = _stderr_console() if total >= 20 and not self.closed else None
            if console is None:
                self.closed = True
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
            self.progress = Progress("scanning", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                     console=console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task("scan", total=total)
        if self.task is not None:
            self.progress.update(self.task, completed=done)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()
