"""Building the parsers: every verb gets the common options, a description and an example."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from .context import Command
from .store import UsageError
from .values import cut, identifier, instant, path, shown, timezone, url

__all__ = [
    "GLOBAL_DEFAULTS",
    "Parser",
    "Subparsers",
    "add_command",
    "add_group",
    "add_idempotency_key",
    "common_options",
    "keyed",
    "reading",
]

Subparsers = Any  # argparse._SubParsersAction is private; its type is not worth importing

GLOBAL_DEFAULTS: dict[str, Any] = {
    "db": None,
    "database_url": None,
    "practice": "default",
    "timezone": None,
    "now": None,
    "json": False,
}

_ARGUMENT = re.compile(r"^argument ([^:]+): ")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are raised as :class:`UsageError`, not printed.

    ``main`` reports them, as text or, under ``--json``, as one JSON object. Every value an
    argparse message quotes is cut to 80 characters.
    """

    def error(self, message: str) -> NoReturn:
        found = _ARGUMENT.match(message)
        raise UsageError(
            " ".join(cut(word) for word in message.split(" ")),
            parser=self,
            argument=found.group(1) if found else None,
        )

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(repr, action.choices))
            raise argparse.ArgumentError(
                action, f"invalid choice: {shown(value)} (choose from {choices})"
            )

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(cut(a) for a in extras)}")
        return parsed


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
        type=path,
        default=argparse.SUPPRESS,
        help="SQLite file (default: $SESSIONPACKS_DB, else sessionpacks.db in this folder)",
    )
    group.add_argument(
        "--database-url",
        metavar="URL",
        type=url,
        default=argparse.SUPPRESS,
        help="PostgreSQL store, postgresql://... (default: $SESSIONPACKS_DATABASE_URL)",
    )
    group.add_argument(
        "--practice",
        metavar="ID",
        type=identifier,
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


def add_idempotency_key(parser: argparse.ArgumentParser) -> None:
    """``--idempotency-key``: a writing verb's retry with the same key writes nothing (R27)."""
    parser.add_argument(
        "--idempotency-key",
        metavar="KEY",
        type=identifier,
        help="a retry with the same key returns the first result and writes nothing; "
        "the same key with other arguments is refused (R27)",
    )


def keyed(args: argparse.Namespace) -> dict[str, Any]:
    """The ``idempotency_key`` keyword for the service, when ``--idempotency-key`` was given."""
    key: str | None = getattr(args, "idempotency_key", None)
    return {} if key is None else {"idempotency_key": key}


@contextmanager
def reading(argument: str) -> Iterator[None]:
    """A value read after parsing, in the light of other options (money whose currency is
    ``--currency``): its refusal is a usage error naming ``argument``."""
    try:
        yield
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"argument {argument}: {error}", argument=argument) from None


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
