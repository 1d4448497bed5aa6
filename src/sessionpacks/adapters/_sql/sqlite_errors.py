"""SQLite's errors as the library's: the one place :mod:`sqlite3` errors are judged."""

from __future__ import annotations

import sqlite3
from typing import Any

from sessionpacks.errors import ConcurrencyError, SessionPacksError, StoreError

__all__ = ["translate"]

_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# Only a uniqueness conflict is another writer's doing; a CHECK failure is a bug, not a race.
_CONFLICT_CODES = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


def translate(
    error: sqlite3.Error, field: str, value: Any, conflict: str | None = None
) -> SessionPacksError:
    """The library's error for a driver error; ``field`` and ``value`` name what the statement
    was about, ``conflict`` what a uniqueness conflict means for it, if the caller knows."""
    name = getattr(error, "sqlite_errorname", "")
    code = getattr(error, "sqlite_errorcode", -1) & 0xFF
    if isinstance(error, sqlite3.IntegrityError) and name in _CONFLICT_CODES:
        return ConcurrencyError(
            field, value, conflict or f"conflicts with a concurrent write ({error})"
        )
    if code in _BUSY_CODES:
        # Not a ConcurrencyError: the service would retry it, and a command would wait a
        # multiple of busy_timeout. The timeout is the whole wait.
        return StoreError(field, value, f"the database stayed busy past the busy timeout ({error})")
    if isinstance(error, sqlite3.ProgrammingError) and "closed" in str(error):
        return StoreError(field, value, "the store is closed")
    return StoreError(field, value, f"SQLite failed: {error}")
