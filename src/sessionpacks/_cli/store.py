"""Opening the store a command works on: the one place the CLI chooses a storage backend."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Protocol

from sessionpacks.errors import NotFoundError
from sessionpacks.ports import PackRepository

__all__ = ["DEFAULT_DB", "Store", "UsageError", "_open_store", "database_path", "open_practice"]

DEFAULT_DB = "sessionpacks.db"
POSTGRES_TIMEOUT = 10.0  # seconds to wait for a connection before giving up


class UsageError(Exception):
    """A command line that names no valid request: reported with usage, exit status 2."""


class Store(Protocol):
    """What the CLI needs of a store: a repository per practice, and closing."""

    def practice(self, practice_id: str, timezone: str | None = None) -> Any: ...


def database_path(args: argparse.Namespace) -> str:
    """``--db``, else ``$SESSIONPACKS_DB``, else ``sessionpacks.db`` in the current folder."""
    given: str | None = getattr(args, "db", None)
    return given or os.environ.get("SESSIONPACKS_DB") or DEFAULT_DB


def _open_store(args: argparse.Namespace) -> Store:
    """The store named by ``--database-url`` (PostgreSQL) or ``--db`` (a SQLite file).

    Store modules are imported here, lazily, so that a command that needs no store (``--help``)
    or only SQLite never imports a PostgreSQL driver.
    """
    url: str | None = getattr(args, "database_url", None) or os.environ.get(
        "SESSIONPACKS_DATABASE_URL"
    )
    if getattr(args, "db", None) and getattr(args, "database_url", None):
        raise UsageError("give --db or --database-url, not both")
    if url and not getattr(args, "db", None):
        if not url.startswith(("postgresql://", "postgres://")):
            raise UsageError(f"--database-url {url!r} must start with postgresql://")
        try:
            from sessionpacks.adapters.postgres import PostgresStore
        except ImportError as error:
            raise UsageError(
                f"PostgreSQL support is not installed ({error}): install sessionpacks[postgres]"
            ) from None
        # The pool logs every failed attempt; the one error at the end says it all.
        logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
        store: Store = PostgresStore(url, timeout=POSTGRES_TIMEOUT)
        return store
    from sessionpacks.adapters.sqlite import SqliteStore

    return SqliteStore(database_path(args))


def open_practice(store: Store, practice_id: str, timezone: str | None) -> PackRepository:
    """The repository of ``practice_id``; a new practice needs its time zone."""
    try:
        repository: PackRepository = store.practice(practice_id, timezone=timezone)
    except NotFoundError:
        if timezone is not None:
            raise
        raise UsageError(
            f"practice {practice_id!r} is new: give its time zone with --timezone "
            "(an IANA name such as Australia/Sydney)"
        ) from None
    actual = repository.practice.timezone
    if timezone is not None and timezone != actual:
        raise UsageError(
            f"practice {practice_id!r} keeps its time zone {actual}; "
            f"--timezone {timezone} does not match (a practice's time zone cannot change)"
        )
    return repository


def close(store: Store) -> None:
    """Close the store if it can be closed."""
    closer = getattr(store, "close", None)
    if callable(closer):
        closer()
