"""The ``sessionpacks`` console script: parsing, dispatch, and how errors are reported.

Exit status: 0 success; 1 the library refused (a :class:`~sessionpacks.errors.SessionPacksError`,
whose message names the rule, field and value) or the database failed; 2 the command line was
wrong (usage). Errors go to stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Sequence
from typing import TextIO

from sessionpacks.errors import SessionPacksError

from . import appointments, packs, stream, transfer
from . import demo as demo_module
from . import simulate as simulate_module
from .base import GLOBAL_DEFAULTS, common_options
from .context import Context
from .store import UsageError

__all__ = ["build_parser", "main"]

PROG = "sessionpacks"


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Prepaid session packs for a practice: templates, packs, appointments, "
        "invoices and events, kept in a SQLite file or PostgreSQL.",
        epilog="example:\n  sessionpacks demo\n  sessionpacks --timezone Australia/Sydney "
        "template list\n\nEvery verb has --help with an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo_module.register(top, common)
    packs.register(top, common)
    appointments.register(top, common)
    stream.register(top, common)
    transfer.register(top, common)
    simulate_module.register(top, common)
    return parser


def _fill_defaults(args: argparse.Namespace) -> None:
    for name, value in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)


def _report(ctx: Context, error: BaseException, kind: str) -> None:
    if ctx.json:
        data: dict[str, object] = {"error": kind, "message": str(error)}
        if isinstance(error, SessionPacksError):
            data.update(rule=error.rule, field=error.field, value=repr(error.value))
        print(json.dumps(data, ensure_ascii=False), file=ctx.err)
    else:
        print(f"{PROG}: {error!s}", file=ctx.err)


def _database_error(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.Error)


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2
    _fill_defaults(args)
    ctx = Context(args, out, err)
    try:
        status: int = args.run(ctx, args)
        return status
    except (UsageError, argparse.ArgumentTypeError) as error:
        usage = args.parser.format_usage()
        print(f"{usage}{args.parser.prog}: error: {error}", file=ctx.err)
        return 2
    except SessionPacksError as error:
        _report(ctx, error, type(error).__name__)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if not _database_error(error) and not isinstance(error, OSError):
            raise
        _report(ctx, error, "DatabaseError" if _database_error(error) else "OSError")
        return 1
    finally:
        ctx.close()
