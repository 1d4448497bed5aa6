"""How the command line names its store: ``--db``, ``--database-url`` and their environment
variables, read here and handed to the composition root (:mod:`sessionpacks._compose`), which
opens the store; and how the root's :class:`~sessionpacks._compose.SetupError` reads as a usage
error, in the options' words."""

from __future__ import annotations

import argparse
import os

from sessionpacks import _compose as compose
from sessionpacks._compose import Store

from .values import shown

__all__ = [
    "DEFAULT_DB",
    "Store",
    "UsageError",
    "database_path",
    "open_store",
    "usage_error",
]

DEFAULT_DB = "sessionpacks.db"


class UsageError(Exception):
    """A command line that names no valid request: reported with usage, exit status 2.

    ``parser`` is the parser whose usage to show (default: the verb's); ``argument`` names the
    argument at fault when one is (``--pack``).
    """

    def __init__(
        self,
        message: str,
        *,
        parser: argparse.ArgumentParser | None = None,
        argument: str | None = None,
    ) -> None:
        super().__init__(message)
        self.parser = parser
        self.argument = argument


def database_path(args: argparse.Namespace) -> str:
    """``--db``, else ``$SESSIONPACKS_DB``, else ``sessionpacks.db`` in the current folder."""
    given: str | None = getattr(args, "db", None)
    return given or os.environ.get("SESSIONPACKS_DB") or DEFAULT_DB


def open_store(args: argparse.Namespace) -> Store:
    """The store named by ``--database-url`` (PostgreSQL) or ``--db`` (a SQLite file).

    ``--db`` wins over ``$SESSIONPACKS_DATABASE_URL``, so a file named on the command line is
    the one used; the two options together are refused.
    """
    if getattr(args, "db", None) and getattr(args, "database_url", None):
        raise UsageError("give --db or --database-url, not both")
    url: str | None = None
    if not getattr(args, "db", None):
        url = getattr(args, "database_url", None) or os.environ.get("SESSIONPACKS_DATABASE_URL")
    try:
        return compose.open_store(url, database_path(args))
    except compose.SetupError as error:
        raise usage_error(error) from None


def usage_error(error: compose.SetupError) -> UsageError:
    """``error`` said in the words of the options that gave what it is about."""
    if isinstance(error, compose.DatabaseUrlError):
        return UsageError(f"--database-url {shown(error.url)} must start with postgresql://")
    if isinstance(error, compose.NewPracticeError):
        return UsageError(
            f"practice {shown(error.practice_id)} is new: give its time zone with --timezone "
            "(an IANA name such as Australia/Sydney)"
        )
    if isinstance(error, compose.ZoneMismatchError):
        return UsageError(
            f"practice {shown(error.practice_id)} keeps its time zone {error.kept}; "
            f"--timezone {error.given} does not match (a practice's time zone cannot change)"
        )
    return UsageError(str(error))
