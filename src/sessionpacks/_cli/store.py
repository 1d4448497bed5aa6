"""Opening the store a command works on: the one place the CLI chooses a storage backend."""

from __future__ import annotations

import argparse
import functools
import logging
import os
from typing import Any, Protocol, cast

from sessionpacks.errors import NotFoundError
from sessionpacks.ports import PackRepository

from .values import shown

__all__ = ["DEFAULT_DB", "Store", "UsageError", "_open_store", "database_path", "open_practice"]

DEFAULT_DB = "sessionpacks.db"
POSTGRES_TIMEOUT = 10.0  # seconds to wait for a connection before giving up


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
            raise UsageError(f"--database-url {shown(url)} must start with postgresql://")
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
    """The repository of ``practice_id``; a new practice needs its time zone.

    A new practice is created by the first write to it (:class:`_NewPractice`), not by
    opening it: a command that only reads, or that the library refuses, writes nothing (R17).
    """
    try:
        repository: PackRepository = store.practice(practice_id)
    except NotFoundError:
        if timezone is None:
            raise UsageError(
                f"practice {shown(practice_id)} is new: give its time zone with --timezone "
                "(an IANA name such as Australia/Sydney)"
            ) from None
        # The protocol is met by delegation; mypy cannot see through __getattr__.
        return cast(PackRepository, _NewPractice(store, practice_id, timezone))
    return _same_zone(repository, timezone)


def _same_zone(repository: PackRepository, timezone: str | None) -> PackRepository:
    actual = repository.practice.timezone
    if timezone is not None and timezone != actual:
        raise UsageError(
            f"practice {shown(repository.practice.id)} keeps its time zone {actual}; "
            f"--timezone {timezone} does not match (a practice's time zone cannot change)"
        )
    return repository


class _NewPractice:
    """A practice the store does not hold yet.

    Reads see it empty: they go to an empty in-memory practice with the same id and time zone,
    which is what the store would hold. The first write creates the practice in the store and
    goes there, and so does everything after it, so a decision made on the empty practice is
    committed to an empty practice (and retried there on a conflict, R16).
    """

    _WRITES = frozenset({"commit", "save_template", "set_preference"})

    def __init__(self, store: Store, practice_id: str, timezone: str) -> None:
        from sessionpacks.adapters.memory import InMemoryStore

        self._store = store
        self._timezone = timezone
        self._current: Any = InMemoryStore().practice(practice_id, timezone=timezone)
        self._created = False

    def __getattr__(self, name: str) -> Any:
        if name in self._WRITES and not self._created:
            return functools.partial(self._create_and_write, name)
        return getattr(self._current, name)

    def _create_and_write(self, name: str, *args: Any, **kwargs: Any) -> Any:
        # Created when written to, not when looked up: isinstance() on a runtime protocol
        # looks every method up.
        if not self._created:
            practice_id = self._current.practice.id
            created = self._store.practice(practice_id, timezone=self._timezone)
            # Another command may have created it meanwhile, with another zone.
            self._current = _same_zone(created, self._timezone)
            self._created = True
        return getattr(self._current, name)(*args, **kwargs)


def close(store: Store) -> None:
    """Close the store if it can be closed."""
    closer = getattr(store, "close", None)
    if callable(closer):
        closer()
