"""The composition root: the one place that chooses a store, opens it and builds the service.

The console script, its demo and its simulation get their :class:`PackService` here and never
name a store or a driver themselves. Store modules are imported lazily, when a store is opened,
so that a command that needs none (``--help``) or only SQLite never imports a PostgreSQL driver.

What cannot be opened as asked raises a :class:`SetupError`; its subclasses carry the facts
(the URL, the practice, the zones), so a caller can say what its user gave in its own words.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, Protocol, cast

from sessionpacks.errors import NotFoundError, SessionPacksError
from sessionpacks.ports import Clock, PackRepository
from sessionpacks.service import PackService

__all__ = [
    "POSTGRES_TIMEOUT",
    "DatabaseUrlError",
    "NewPracticeError",
    "SetupError",
    "Store",
    "ZoneMismatchError",
    "close",
    "holds_practice",
    "is_database_error",
    "open_practice",
    "open_service",
    "open_store",
]

POSTGRES_TIMEOUT = 10.0  # seconds to wait for a connection before giving up
_DRIVERS = ("sqlite3", "psycopg")


class SetupError(Exception):
    """A store or a practice that cannot be opened as asked (the library refused nothing)."""


class DatabaseUrlError(SetupError):
    """A database URL that does not name PostgreSQL."""

    def __init__(self, url: str) -> None:
        super().__init__(f"database URL {url!r} must start with postgresql://")
        self.url = url


class NewPracticeError(SetupError):
    """A practice the store does not hold, asked for without the time zone it needs."""

    def __init__(self, practice_id: str) -> None:
        super().__init__(f"practice {practice_id!r} is new: it needs a time zone")
        self.practice_id = practice_id


class ZoneMismatchError(SetupError):
    """A practice asked for with a time zone other than the one it keeps."""

    def __init__(self, practice_id: str, kept: str, given: str) -> None:
        super().__init__(f"practice {practice_id!r} keeps its time zone {kept}, not {given}")
        self.practice_id = practice_id
        self.kept = kept
        self.given = given


class Store(Protocol):
    """What a store offers here: a repository per practice (and, if it has one, ``close()``)."""

    def practice(self, practice_id: str, timezone: str | None = None) -> Any: ...


def open_store(url: str | None, path: str | os.PathLike[str]) -> Store:
    """The PostgreSQL store at ``url`` if one is given, else the SQLite file at ``path``."""
    if url:
        return _postgres(url)
    from sessionpacks.adapters.sqlite import SqliteStore

    return SqliteStore(path)


def _postgres(url: str) -> Store:
    if not url.startswith(("postgresql://", "postgres://")):
        raise DatabaseUrlError(url)
    try:
        from sessionpacks.adapters.postgres import PostgresStore
    except ImportError as error:
        raise SetupError(
            f"PostgreSQL support is not installed ({error}): install sessionpacks[postgres]"
        ) from None
    # The pool logs every failed attempt; the one error at the end says it all.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    store: Store = PostgresStore(url, timeout=POSTGRES_TIMEOUT)
    return store


def open_service(
    store: Store,
    practice_id: str,
    timezone: str | None,
    clock: Clock,
    *,
    new_pack_id: Callable[[], str] | None = None,
) -> PackService:
    """The service of ``practice_id`` in ``store`` (see :func:`open_practice`) on ``clock``."""
    repository = open_practice(store, practice_id, timezone)
    if new_pack_id is None:
        return PackService(repository, clock)
    return PackService(repository, clock, new_pack_id=new_pack_id)


def open_practice(store: Store, practice_id: str, timezone: str | None) -> PackRepository:
    """The repository of ``practice_id``; a new practice needs its time zone.

    A new practice is created by the first write to it (:class:`_NewPractice`), not by
    opening it: a command that only reads, or that the library refuses, writes nothing (R17).
    """
    try:
        repository: PackRepository = store.practice(practice_id)
    except NotFoundError:
        if timezone is None:
            raise NewPracticeError(practice_id) from None
        # The protocol is met by delegation; mypy cannot see through __getattr__.
        return cast(PackRepository, _NewPractice(store, practice_id, timezone))
    return _same_zone(repository, timezone)


def _same_zone(repository: PackRepository, timezone: str | None) -> PackRepository:
    kept = repository.practice.timezone
    if timezone is not None and timezone != kept:
        raise ZoneMismatchError(repository.practice.id, kept, timezone)
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


def holds_practice(path: str | os.PathLike[str], practice_id: str) -> bool:
    """Whether the SQLite file at ``path`` opens as a store holding ``practice_id``."""
    from sessionpacks.adapters.sqlite import SqliteStore

    try:
        with SqliteStore(path) as store:
            store.practice(practice_id)
    except SessionPacksError:
        return False
    except Exception as error:
        # Not a database at all, or not one of ours: the driver says so.
        if is_database_error(error):
            return False
        raise
    return True


def is_database_error(error: BaseException) -> bool:
    """Whether a store's driver raised ``error``: the database failed, the code did not.

    A driver that was never imported raised nothing, so none is imported to ask.
    """
    for name in _DRIVERS:
        driver = sys.modules.get(name)
        if driver is not None and isinstance(error, driver.Error):
            return True
    return False
