"""`assay` command line. Results to stdout, errors as one line to stderr; exit 0 / 1 / 2."""

from __future__ import annotations

import sys
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    app: typer.Typer        # the whole app, built on first use (see `__getattr__` below)

from assay import api
from assay.cli.common import EXIT_ERROR, EXIT_FOUND, EXIT_OK, fail, json_rows
from assay.cli.progress import ByteProgress, ScanProgress
from assay.errors import AssayError

_APP_SETTINGS: dict[str, Any] = dict(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Read, scan, identify and trace model weights without executing them.")
_app = typer.Typer(**_APP_SETTINGS)    # the commands defined here; `app` is the whole app


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class ScanFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"


@_app.command()
def inspect(
    path: Annotated[str, typer.Argument(help="A weight file or a model folder.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
    = OutputFormat.text,
    tensors: Annotated[bool, typer.Option("--tensors", help="List every tensor.")] = False,
) -> None:
    """What is in a weight file or model folder: format, tensors, dtypes, metadata."""
    from assay.render import inspect as render_inspect
    try:
        summary = api.inspect(path, tensors=tensors)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if fmt is OutputFormat.json:
        _emit_json(render_inspect.to_json(summary))
    else:
        _stdout().print(render_inspect.to_text(summary))


def _stdout() -> Console:
    from rich.console import Console
    out = Console(highlight=False)
    return out if out.is_terminal else Console(highlight=False, width=160)


def _emit_json(doc: dict) -> None:
    import json
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


@_app.command("id")
def id_(
    path: Annotated[str, typer.Argument(help="A weight file or a model folder.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
    = OutputFormat.text,
    tensors: Annotated[bool, typer.Option("--tensors", help="Show every tensor digest.")] = False,
    manifest: Annotated[str | None, typer.Option("--manifest", metavar="OUT",
                                                 help="Write a manifest of tensor digests to OUT.")] = None,
    verify: Annotated[str | None, typer.Option("--verify", metavar="MANIFEST",
                                               help="Check PATH against a manifest; exit 1 on mismatch.")]
    = None,
) -> None:
    """The identity of these weights, whatever the format: same values, same identity."""
    from assay.documents import manifest as manifest_doc
    from assay.render import identity as render_identity
    if manifest and verify:
        raise fail("--manifest and --verify cannot be combined")
    try:
        expected = api.read_manifest(verify) if verify else None
        with ByteProgress("hashing") as bar:
            ident = api.identify(path, progress=bar.advance, on_open=lambda a: bar.start(a.total_bytes))
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if expected is not None and verify is not None:
        from assay.analyses.identity import verify as check
        result = check(ident, expected)
        if fmt is OutputFormat.json:
            _emit_json(render_identity.verification_json(path, verify, result))
        else:
            _stdout().print(render_identity.verification_text(path, result), end="")
        raise typer.Exit(EXIT_OK if result.matches else EXIT_FOUND)
    if manifest:
        import json

        from assay.analyses.identity import manifest_of
        try:
            with open(manifest, "x", encoding="utf-8") as fh:
                json.dump(manifest_doc.to_json(manifest_of(ident)), fh, indent=2)
                fh.write("\n")
        except FileExistsError:
            raise fail(f"{manifest}: already exists; not overwriting") from None
        except OSError as exc:
            raise fail(f"{manifest}: cannot write manifest: {exc.strerror or exc}") from None
    if fmt is OutputFormat.json:
        _emit_json(render_identity.to_json(path, ident, tensors))
    else:
        _stdout().print(render_identity.to_text(path, ident, tensors))


@_app.command("diff")
def diff_(
    a: Annotated[str, typer.Argument(help="The first (older) model: file or folder.")],
    b: Annotated[str, typer.Argument(help="The second (newer) model: file or folder.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
    = OutputFormat.text,
    max_depth: Annotated[int, typer.Option("--max-depth", min=0,
                                           help="Group tensors by this many name segments.")] = 1,
    only_changed: Annotated[bool, typer.Option("--only-changed",
                                               help="Hide tensors that are identical.")] = False,
) -> None:
    """What changed between two models; exit 0 identical, 1 different, 2 error."""
    from assay.render import diff as render_diff
    try:
        with ByteProgress("comparing") as bar:
            result = api.diff(a, b, progress=bar.advance,
                              on_open=lambda x, y: bar.start(max(x.parameter_count, y.parameter_count)))
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if fmt is OutputFormat.json:
        _emit_json(render_diff.to_json(result, only_changed))
    else:
        _stdout().print(render_diff.to_tree(result, max_depth, only_changed))
    raise typer.Exit(EXIT_OK if result.identical else EXIT_FOUND)


@_app.command("scan")
def scan_(
    paths: Annotated[list[str], typer.Argument(help="Files and folders (scanned recursively).")],
    fmt: Annotated[ScanFormat, typer.Option("--format", "-f", help="text, json or sarif.")]
    = ScanFormat.text,
    policy: Annotated[str | None, typer.Option("--policy", metavar="FILE",
                                               help="A policy TOML file replacing the default.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Worker processes.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1,
                                           help="Seconds allowed per file.")] = 60.0,
    fail_on_error: Annotated[bool, typer.Option("--fail-on-error/--no-fail-on-error",
                                                help="Exit 2 when a file could not be read.")] = True,
    show_clean: Annotated[bool, typer.Option("--all", help="Also list clean and skipped files.")] = False,
) -> None:
    """Would loading these files run code? Exit 0 clean, 1 findings, 2 errors."""
    import assay

    # the report's writers, imported while the workers' nursery is still preparing (it takes
    # longer than this process's start) rather than after the last file is read
    from assay.render import scan as render_scan
    if fmt is not ScanFormat.text:
        import json  # noqa: F401
    try:
        pol = api.load_policy(policy) if policy else None
        with ScanProgress() as bar:
            report = api.scan(paths, policy=pol, workers=workers, seconds_per_file=timeout,
                              progress=bar.update)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if fmt is ScanFormat.json:
        sys.stdout.write(json_rows(render_scan.to_json(report)))     # one file per line
    elif fmt is ScanFormat.sarif:
        _emit_json(render_scan.to_sarif(report, assay.__version__))
    else:
        _stdout().print(render_scan.to_text(report, show_clean))
    if report.findings:
        raise typer.Exit(EXIT_FOUND)
    raise typer.Exit(EXIT_ERROR if report.errors and fail_on_error else EXIT_OK)


# Commands in modules of their own: (name, module, function). Their modules are imported only
# when the command is asked for, or when the whole app is built (help, tests).
_ELSEWHERE = (
    ("lineage", "assay.cli.lineage", "lineage"),
    ("audit", "assay.cli.audit", "audit"),
    ("rebuild", "assay.cli.recipes", "rebuild"),
    ("challenge", "assay.cli.recipes", "challenge"),
    ("adapt", "assay.cli.adapt", "adapt"),
    ("predict", "assay.cli.adapt", "predict"),
    ("cost", "assay.cli.adapt", "cost"),
)
_GROUPS = (("catalog", "assay.cli.catalog", "app"),)    # command groups: (name, module, Typer)


def _load(module: str, attr: str) -> Any:
    from importlib import import_module
    return getattr(import_module(module), attr)


def _version(value: bool) -> None:
    if value:
        import assay
        sys.stdout.write(f"assay {assay.__version__}\n")
        raise typer.Exit(EXIT_OK)


@_app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                          help="Print assay's version and exit.")] = False,
) -> None:
    """assay: pretrained model weights, treated like binaries."""


@cache
def _full() -> typer.Typer:
    """The app with every command registered."""
    for name, module, attr in _ELSEWHERE:
        _app.command(name)(_load(module, attr))
    for name, module, attr in _GROUPS:
        _app.add_typer(_load(module, attr), name=name)
    return _app


def __getattr__(name: str) -> Any:
    if name == "app":          # `from assay.cli.main import app`: the whole app
        return _full()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _only(name: str) -> typer.Typer:
    """The app with only the command (or command group) `name` registered: Typer builds a click
    command for every registered function with its parameters on each start, which costs more
    than the rest of a small scan; the one asked for is enough, and only its module is imported.
    The whole app when `name` is not a command (help, a typo: the full app answers)."""
    def called(info: typer.models.CommandInfo) -> str:
        return info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")

    one = typer.Typer(**_APP_SETTINGS)
    one.registered_callback = _app.registered_callback
    commands = [c for c in _app.registered_commands if called(c) == name]
    if commands:
        one.registered_commands = commands
        return one
    for cmd, module, attr in _ELSEWHERE:
        if cmd == name:
            one.command(cmd)(_load(module, attr))
            return one
    for group, module, attr in _GROUPS:
        if group == name:
            one.add_typer(_load(module, attr), name=group)
            return one
    return _full()


def _run(app: typer.Typer) -> None:
    """Run `app` on the command line's arguments. A usage error (an unknown option, a missing
    argument, a value that is not one of the choices) is one line on stderr, like every other
    error, with exit code 2; Typer's own handler would draw it in a box under the usage."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name="assay", standalone_mode=False)
    except typer.TyperException as exc:      # the base of Click's errors, as Typer ships Click
        if type(exc).__name__ != "NoArgsIsHelpError":      # (that one has printed the help)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            message = " ".join(exc.format_message().split())
            sys.stderr.write(f"assay: error: {message}{hint}\n")
        sys.exit(getattr(exc, "exit_code", EXIT_ERROR))
    except typer.Abort:
        sys.stderr.write("assay: aborted\n")
        sys.exit(EXIT_FOUND)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def main() -> None:
    try:
        words = [a for a in sys.argv[1:2] if not a.startswith("-")]
        _run(_only(words[0]) if words else _full())
    except KeyboardInterrupt:
        sys.stderr.write("assay: interrupted\n")
        sys.exit(130)
    except SystemExit:
        raise
    except BaseException as exc:  # a bug in assay: still one line, never a traceback
        sys.stderr.write(f"assay: internal error: {type(exc).__name__}: {exc}\n")
        sys.exit(EXIT_ERROR)
    finally:
        # the process ends now: spare it the full collection Python makes on the way out
        import gc
        gc.freeze()


if __name__ == "__main__":
    main()
