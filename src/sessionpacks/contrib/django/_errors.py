"""Django's database errors as the library's: the one place they are judged.

Django wraps each driver's errors in its own classes (``django.db.IntegrityError``...) and keeps
the driver's error as ``__cause__``; the driver's code says more than the class does (psycopg's
``sqlstate``, sqlite3's ``sqlite_errorname``), so both are read, without importing a driver.

* a uniqueness conflict, a serialization failure or a deadlock: :class:`ConcurrencyError`, which
  the service retries;
* a value the database cannot hold: :class:`InvalidValueError`;
* a connection that broke (the outcome of a write in flight unknown):
  :class:`ConnectionLostError`;
* anything else, SQLite staying locked past its timeout included: :class:`StoreError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DataError, Error, IntegrityError, InterfaceError, OperationalError

from sessionpacks.errors import (
    ConcurrencyError,
    ConnectionLostError,
    InvalidValueError,
    SessionPacksError,
    StoreError,
)

__all__ = ["translated"]

_SQLITE_UNIQUE = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})
_SQLITE_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
# unique_violation; serialization_failure, deadlock_detected, lock_not_available
_PG_UNIQUE = "23505"
_PG_RACES = frozenset({"40001", "40P01", "55P03"})
# The server ending the session: a write in flight may or may not have been committed.
_PG_LOST = frozenset({"57P01", "57P02", "57P03"})


@contextmanager
def translated(field: str, value: Any, conflict: str | None = None) -> Iterator[None]:
    """Raise the library's error for a database error in the block; ``field`` and ``value``
    name what the statements were about, ``conflict`` what a uniqueness conflict means there.
    The library's own errors pass through unchanged."""
    try:
        yield
    except SessionPacksError:
        raise
    except UnicodeEncodeError as error:  # a driver refusing a lone surrogate before sending
        raise InvalidValueError(field, value, f"the database cannot store it: {error}") from error
    except Error as error:
        raise judged(error, field, value, conflict) from error


def judged(error: Error, field: str, value: Any, conflict: str | None = None) -> SessionPacksError:
    """The library's error for one of Django's database errors."""
    cause = error.__cause__
    state = getattr(cause, "sqlstate", None)
    sqlite = getattr(cause, "sqlite_errorname", None)
    message = _first_line(error)
    if (
        state == _PG_UNIQUE
        or state in _PG_RACES
        or (isinstance(error, IntegrityError) and sqlite in _SQLITE_UNIQUE)
    ):
        return ConcurrencyError(
            field, value, conflict or f"conflicts with a concurrent write ({message})"
        )
    if isinstance(error, DataError):
        return InvalidValueError(field, value, f"the database cannot store it: {message}")
    if _lost(error, cause, state):
        return ConnectionLostError(
            field, value, f"the connection to the database was lost: {message}"
        )
    if sqlite in _SQLITE_BUSY:
        return StoreError(field, value, f"the database stayed locked past its timeout ({message})")
    return StoreError(field, value, f"the database failed: {message}")


def _lost(error: Error, cause: BaseException | None, state: str | None) -> bool:
    if hasattr(cause, "sqlite_errorname"):  # SQLite is a file: no connection to lose
        return False
    if isinstance(error, InterfaceError):  # Django's "connection already closed" too
        return True
    if state is None:  # the server never answered
        return isinstance(error, OperationalError)
    return state.startswith("08") or state in _PG_LOST


def _first_line(error: BaseException) -> str:
    """The driver's message without its DETAIL, HINT and CONTEXT lines."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
