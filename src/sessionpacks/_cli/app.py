"""The ``sessionpacks`` console script: parsing, dispatch, and how errors are reported.

Exit status: 0 success; 1 the library refused (a :class:`~sessionpacks.errors.SessionPacksError`,
whose message names the rule, field and value) or the database failed; 2 the command line was
wrong (usage); 130 and 143 interrupted by SIGINT or SIGTERM. Errors go to stderr, never as a
traceback; under ``--json`` each is one JSON object on one line, usage errors included.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import sessionpacks
from sessionpacks import _compose as compose
from sessionpacks.errors import SessionPacksError

from . import appointments, packs, reports, stream, transfer
from . import demo as demo_module
from . import simulate as simulate_module
from .base import GLOBAL_DEFAULTS, Parser, common_options
from .context import Context
from .signals import Terminated
from .store import UsageError, usage_error
from .values import cut, shown

__all__ = ["build_parser", "main"]

PROG = "sessionpacks"


@functools.cache
def _version() -> str:
    """``sessionpacks <version>``, the installed distribution's, read once per process."""
    return f"{PROG} {sessionpacks.__version__}"


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = Parser(
        prog=PROG,
        description="Prepaid session packs for a practice: templates, packs, appointments, "
        "invoices and events, kept in a SQLite file or PostgreSQL.",
        epilog="example:\n  sessionpacks demo\n  sessionpacks --timezone Australia/Sydney "
        "template list\n\nEvery verb has --help with an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument(
        "--version",
        action="version",
        version=_version(),
        help="print the installed version (sessionpacks X.Y.Z) and exit",
    )
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo_module.register(top, common)
    packs.register(top, common)
    appointments.register(top, common)
    stream.register(top, common)
    transfer.register(top, common)
    simulate_module.register(top, common)
    reports.register(top, common)
    return parser


def _fill_defaults(args: argparse.Namespace) -> None:
    for name, value in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` (or an abbreviation argparse would take for it) comes before ``--``.

    Read from the words themselves so that an error argparse raises before it has parsed
    anything is reported as JSON too.
    """
    for word in argv:
        if word == "--":
            return False
        if len(word) >= 3 and "--json".startswith(word):
            return True
    return False


def _json_value(value: Any) -> Any:
    """The value at fault as JSON: numbers and flags as they are, anything else as text cut to
    80 characters (a lone surrogate written as its escape, so any stream can take it)."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**18 else shown(value)
    text = value if isinstance(value, str) else str(value)
    return cut(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _write_error(err: TextIO, json_mode: bool, data: dict[str, Any], text: str) -> None:
    if json_mode:
        record = {"error": None, "message": None, "rule": None, "field": None, "value": None}
        record.update(data)
        print(json.dumps(record, ensure_ascii=False), file=err)
    else:
        print(text, file=err)


def _usage(error: UsageError, parser: argparse.ArgumentParser, json_mode: bool, err: TextIO) -> int:
    shown_by = error.parser or parser
    data = {
        "error": "UsageError",
        "message": str(error),
        "field": error.argument,
        "usage": shown_by.format_usage().strip(),
    }
    _write_error(err, json_mode, data, f"{shown_by.format_usage()}{shown_by.prog}: error: {error}")
    return 2


def _library_message(error: SessionPacksError) -> str:
    """The error's message, its value quoted once and cut to 80 characters."""
    prefix = f"{error.rule}: " if error.rule else ""
    return f"{prefix}{error.field}={shown(error.value)}: {error.reason}"


def _refusal(error: SessionPacksError, json_mode: bool, err: TextIO) -> int:
    message = _library_message(error)
    data = {
        "error": type(error).__name__,
        "message": message,
        "rule": error.rule,
        "field": error.field,
        "value": _json_value(error.value),
    }
    _write_error(err, json_mode, data, f"{PROG}: {message}")
    return 1


def _interrupted(signum: int, json_mode: bool, err: TextIO) -> int:
    """Stopped by SIGINT or SIGTERM: exit ``128 + signum``, as a shell reports a signal."""
    message = f"interrupted by {signal.Signals(signum).name}"
    _write_error(err, json_mode, {"error": "Interrupted", "message": message}, f"{PROG}: {message}")
    return 128 + signum


def _failure(error: Exception, json_mode: bool, err: TextIO) -> int:
    """The database or the file system failed: exit 1, with what it said."""
    kind = "DatabaseError" if compose.is_database_error(error) else "OSError"
    message = str(error)
    if isinstance(error, OSError) and error.filename is not None:
        message = f"{error.strerror or type(error).__name__}: {shown(error.filename)}"
    message = " ".join(cut(word) for word in message.split(" "))
    _write_error(err, json_mode, {"error": kind, "message": message}, f"{PROG}: {message}")
    return 1


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # --help and --version print to standard output and raise SystemExit; what they print goes
    # to ``out`` when one is given.
    printed = contextlib.redirect_stdout(out) if out is not None else contextlib.nullcontext()
    try:
        with printed:
            args = parser.parse_args(words)
    except SystemExit as stop:  # --help, --version
        return stop.code if isinstance(stop.code, int) else 2
    except UsageError as error:
        return _usage(error, parser, _wants_json(words), err or sys.stderr)
    _fill_defaults(args)
    ctx = Context(args, out, err)
    try:
        return _run(ctx, args)
    finally:
        ctx.close()


def _run(ctx: Context, args: argparse.Namespace) -> int:
    try:
        status: int = args.run(ctx, args)
        return status
    except (UsageError, argparse.ArgumentTypeError) as error:
        usage = error if isinstance(error, UsageError) else UsageError(str(error))
        return _usage(usage, args.parser, ctx.json, ctx.err)
    except compose.SetupError as error:  # the store or the practice as the options named it
        return _usage(usage_error(error), args.parser, ctx.json, ctx.err)
    except SessionPacksError as error:
        return _refusal(error, ctx.json, ctx.err)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return _interrupted(signal.SIGINT, ctx.json, ctx.err)
    except Terminated as stop:
        return _interrupted(stop.signum, ctx.json, ctx.err)
    except Exception as error:
        # Anything else is a bug, and stays loud; only the database and the file system may
        # fail on their own.
        if not compose.is_database_error(error) and not isinstance(error, OSError):
            raise
        return _failure(error, ctx.json, ctx.err)
