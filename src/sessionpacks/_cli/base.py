"""Building the parsers: every verb gets the common options, a description and an example."""

from __future__ import annotations

import argparse
from typing import Any

from .context import Command
from .values import instant, timezone

__all__ = ["GLOBAL_DEFAULTS", "Subparsers", "add_command", "add_group", "common_options"]

Subparsers = Any  # argparse._SubParsersAction is private; its type is not worth importing

GLOBAL_DEFAULTS: dict[str, Any] = {
    "db": None,
    "database_url": None,
    "practice": "default",
    "timezone": None,
    "now": None,
    "json": False,
}


def common_options() -> argparse.ArgumentParser:
    """The options every verb accepts, before or after the verb.

    Their defaults are suppressed so that a value given before the verb is not overwritten by
    the verb's parser; :data:`GLOBAL_DEFAULTS` fills in what was not given.
    """
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "--db",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="SQLite file (default: $SESSIONPACKS_DB, else sessionpacks.db in this folder)",
    )
    group.add_argument(
        "--database-url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="PostgreSQL store, postgresql://... (default: $SESSIONPACKS_DATABASE_URL)",
    )
    group.add_argument(
        "--practice",
        metavar="ID",
        default=argparse.SUPPRESS,
        help="the practice (tenant) to work on (default: default)",
    )
    group.add_argument(
        "--timezone",
        metavar="ZONE",
        type=timezone,
        default=argparse.SUPPRESS,
        help="IANA time zone of a new practice, e.g. Australia/Sydney (required the first time)",
    )
    group.add_argument(
        "--now",
        metavar="INSTANT",
        type=instant,
        default=argparse.SUPPRESS,
        help="fix the clock at this ISO 8601 instant with offset (for scripts and tests)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one JSON document (JSON Lines for streams) instead of text",
    )
    return common


def add_command(
    subparsers: Subparsers,
    name: str,
    *,
    help: str,
    example: str,
    run: Command | None,
    common: argparse.ArgumentParser,
    aliases: tuple[str, ...] = (),
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A verb's parser, with the common options and an example in its epilog."""
    lines = "\n".join(f"  {line}" for line in example.strip().splitlines())
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=f"example:\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common] if run is not None else [],
        aliases=list(aliases),
    )
    if run is not None:
        parser.set_defaults(run=run, parser=parser)
    return parser


def add_group(
    subparsers: Subparsers,
    name: str,
    *,
    help: str,
    example: str,
) -> Subparsers:
    """A noun with verbs of its own: ``sessionpacks pack show``."""
    parser = add_command(
        subparsers, name, help=help, example=example, run=None, common=argparse.ArgumentParser()
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    return verbs
