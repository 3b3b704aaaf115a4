"""The one error hierarchy of assay. Every message names the file and the broken rule."""

from __future__ import annotations


class AssayError(Exception):
    """Root of every error assay raises on purpose."""

    def __init__(self, path: str | None, message: str, *, member: str | None = None,
                 offset: int | None = None) -> None:
        self.path = path
        self.member = member
        self.offset = offset
        self.reason = message
        # Facts a reader recorded before it failed (e.g. pickle imports before a corrupt
        # opcode), so that a scan can still judge a file that cannot be fully read.
        self.observations: list = []
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.path or "<input>"
        if self.member:
            where += f"!{self.member}"
        if self.offset is not None:
            where += f"@{self.offset}"
        return f"{where}: {self.reason}"


class UsageError(AssayError):
    """Bad arguments: a missing path, an unknown option value."""


class UnknownFormatError(AssayError):
    """No reader recognises the content."""


class FormatError(AssayError):
    """The content breaks a rule of its format (truncated, corrupt, inconsistent)."""


class LimitError(FormatError):
    """A count or size read from the file exceeds what `Limits` allows or what the file holds."""


class UnsupportedError(FormatError):
    """The content is valid but uses a feature assay does not read (yet)."""


class MissingDependencyError(AssayError):
    """An optional library needed for this format is not installed."""
