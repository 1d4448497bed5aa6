"""PostgreSQL's errors as the library's: the one place psycopg errors are judged.

A uniqueness conflict, a serialization failure or a deadlock is a
:class:`~sessionpacks.errors.ConcurrencyError` (the service layer retries), text PostgreSQL
cannot hold an :class:`~sessionpacks.errors.InvalidValueError`, a broken connection a
:class:`~sessionpacks.errors.ConnectionLostError`, anything else a
:class:`~sessionpacks.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg_pool import PoolTimeout

from sessionpacks.errors import (
    ConcurrencyError,
    ConnectionLostError,
    InvalidValueError,
    SessionPacksError,
    StoreError,
)

__all__ = ["translate", "translated"]

# What a uniqueness conflict on each constraint means, for ConcurrencyError's field.
_CONFLICTS = {
    "packs_pkey": "pack_id",
    "entries_pkey": "pack_id",
    "active_usages_pkey": "appointment_id",
    "templates_pkey": "template.version",
    "events_pkey": "position",
    "events_practice_id_event_id_key": "event_id",
    "practices_pkey": "practice_id",
    "commands_pkey": "idempotency_key",
}
_RACES = (
    pgerrors.UniqueViolation,
    pgerrors.SerializationFailure,
    pgerrors.DeadlockDetected,
    pgerrors.LockNotAvailable,
)


@contextmanager
def translated(field: str = "database", value: Any = None) -> Iterator[None]:
    """Turn driver errors into the library's: the one place they are judged. ``field`` and
    ``value`` name what the statement was about, for errors that do not say it themselves."""
    try:
        yield
    except SessionPacksError:
        raise
    except (psycopg.Error, UnicodeEncodeError, PoolTimeout) as error:
        raise translate(error, field, value) from error


def translate(error: BaseException, field: str, value: Any) -> SessionPacksError:
    """The library's error for a psycopg error (or text psycopg could not encode, or a pool
    that handed out no connection in time); ``field`` and ``value`` name what the statement
    was about, for errors that do not say it themselves."""
    if isinstance(error, _RACES):
        diag = error.diag
        if diag.column_name is not None:  # raised by commit_changes: field, value, message
            return ConcurrencyError(
                diag.column_name, diag.message_detail, diag.message_primary or ""
            )
        field = _CONFLICTS.get(diag.constraint_name or "", diag.table_name or field)
        return ConcurrencyError(
            field, diag.message_detail, f"conflicts with a concurrent write ({error.sqlstate})"
        )
    if isinstance(error, psycopg.DataError | UnicodeEncodeError):
        return InvalidValueError(field, value, f"PostgreSQL cannot store it: {_first_line(error)}")
    if isinstance(error, psycopg.Error) and _lost(error):
        # The server went away (a restart, a killed backend, the network): a write may or
        # may not have been committed before it did.
        return ConnectionLostError(
            field, value, f"the connection to PostgreSQL was lost: {_first_line(error)}"
        )
    return StoreError(field, value, f"PostgreSQL failed: {_first_line(error)}")


# SQLSTATEs after which the server may or may not have committed: class 08 (connection
# exceptions) and the server shutting the session down (57P01-57P03). A statement timeout or a
# cancel (57014) rolled its transaction back: that outcome is known, so it is no lost connection.
_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})


def _lost(error: psycopg.Error) -> bool:
    state = error.sqlstate
    if state is None:  # no answer from the server at all: the connection broke
        return isinstance(error, psycopg.OperationalError)
    return state.startswith("08") or state in _LOST_STATES


def _first_line(error: BaseException) -> str:
    """The driver's message without its DETAIL, HINT and CONTEXT lines."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
