"""The limits of the values sessionpacks accepts (R18), in one place.

Every store must hold every accepted value, so the limits are those of the narrowest store:
SQLite's 64-bit ``INTEGER``, PostgreSQL's ``integer`` versions and its ``text``, which cannot
hold NUL, and UTF-8, which cannot hold a lone surrogate. The model's constructors, the
operations, the service and the stores all call these checks, so a value is judged the same
way wherever it enters. Each check returns the value it accepted and raises
:class:`~sessionpacks.errors.InvalidValueError` naming ``field`` and the value otherwise, never
a foreign exception. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from sessionpacks.errors import InvalidValueError

__all__ = [
    "EARLIEST",
    "FIRST_DAY",
    "INT32_MAX",
    "INT64_MAX",
    "LAST_DAY",
    "LATEST",
    "MAX_ID_LENGTH",
    "MAX_PERIOD_COUNT",
    "MAX_REMIND_DAYS",
    "MAX_TEXT_LENGTH",
    "check_count",
    "check_day",
    "check_duration",
    "check_id",
    "check_instant",
    "check_text",
]

MAX_ID_LENGTH = 200
"""Longest id (and name) in characters."""
MAX_TEXT_LENGTH = 1000
"""Longest free text (a reason, a description) in characters."""
INT64_MAX = 2**63 - 1
"""Largest count of minor units, microseconds or sessions: SQLite ``INTEGER`` and PostgreSQL
``bigint`` are signed 64-bit. Counts are symmetric (``-INT64_MAX`` is the smallest), so
negating an accepted count never leaves the range."""
INT32_MAX = 2**31 - 1
"""Largest template version: PostgreSQL stores versions as ``integer``."""
MAX_PERIOD_COUNT = 100_000
"""Largest count of years, months, weeks or days in a calendar period; a longer period is
past the end of the calendar anyway."""
MAX_REMIND_DAYS = 366
"""Most days before expiry a reminder may be due (R25): a year ahead."""
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
"""The first instant accepted."""
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""The first instant refused: instants lie in ``[EARLIEST, LATEST)``."""
FIRST_DAY = date(1900, 1, 1)
"""The first date accepted."""
LAST_DAY = date(2199, 12, 31)
"""The last date accepted."""

# C0 and C1 controls (Unicode category Cc) and surrogates (Cs): the latter cannot be encoded
# as UTF-8, so no store could write them.
_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
_EARLIEST_NAIVE = EARLIEST.replace(tzinfo=None)
_LATEST_NAIVE = LATEST.replace(tzinfo=None)


def check_id(field: str, value: object) -> str:
    """``value`` if it is an id: a non-empty string without surrounding spaces, at most
    :data:`MAX_ID_LENGTH` characters, without control characters or lone surrogates."""
    if not isinstance(value, str) or value == "" or value.strip() != value:
        raise InvalidValueError(
            field, value, "must be a non-empty string without surrounding spaces"
        )
    if len(value) > MAX_ID_LENGTH:
        raise InvalidValueError(
            field, value, f"must be at most {MAX_ID_LENGTH} characters (has {len(value)})"
        )
    if _CONTROL_OR_SURROGATE.search(value):
        raise InvalidValueError(
            field, value, "must not contain control characters or lone surrogates"
        )
    return value


def check_text(
    field: str, value: object, *, max_length: int = MAX_TEXT_LENGTH, required: bool = False
) -> str:
    """``value`` if it is text (a name, a description, a reason): a string of at most
    ``max_length`` characters without NUL or lone surrogates, and not blank if ``required``.

    Line breaks and tabs are allowed: a reason may run over several lines.
    """
    if not isinstance(value, str):
        raise InvalidValueError(field, value, "must be a string")
    if required and value.strip() == "":
        raise InvalidValueError(field, value, "must be a non-empty string")
    if len(value) > max_length:
        raise InvalidValueError(
            field, value, f"must be at most {max_length} characters (has {len(value)})"
        )
    if _NUL_OR_SURROGATE.search(value):
        raise InvalidValueError(field, value, "must not contain NUL or lone surrogates")
    return value


def _offset(value: datetime) -> timedelta | None:
    # A tzinfo is the host's code: whatever its utcoffset() raises is the value's fault.
    try:
        offset = value.utcoffset()
    except Exception:
        return None
    return offset if isinstance(offset, timedelta) else None


def check_instant(field: str, value: object) -> datetime:
    """``value`` if it is a timezone-aware datetime in ``[EARLIEST, LATEST)`` (R5, R18), whose
    UTC offset is a whole number of seconds."""
    if not isinstance(value, datetime):
        raise InvalidValueError(field, value, "must be a datetime")
    offset = _offset(value) if value.tzinfo is not None else None
    if offset is None:
        raise InvalidValueError(
            field, value, "must be timezone-aware (naive datetimes are refused)"
        )
    if offset.microseconds:
        # Python 3.11 writes such an offset in ISO 8601 but reads it back as another instant,
        # so no store could keep it. Real offsets are whole seconds (a 1900 LMT: +10:04:52).
        raise InvalidValueError(field, value, "must have a UTC offset of whole seconds")
    wall = value.replace(tzinfo=None)
    # An offset is under a day, so a wall time outside these years is out of range, and
    # converting it to UTC could overflow the datetime type (year 1 at +11:00).
    if not 1899 <= wall.year <= 2200 or not _EARLIEST_NAIVE <= wall - offset < _LATEST_NAIVE:
        raise InvalidValueError(
            field, value, "must be from 1900-01-01T00:00Z up to but not including 2200-01-01"
        )
    return value


def check_day(field: str, value: object) -> date:
    """``value`` if it is a date (not a datetime) from :data:`FIRST_DAY` to :data:`LAST_DAY`."""
    if type(value) is not date:
        raise InvalidValueError(field, value, "must be a date")
    if not FIRST_DAY <= value <= LAST_DAY:
        raise InvalidValueError(field, value, f"must be from {FIRST_DAY} to {LAST_DAY}")
    return value


def check_count(field: str, value: object, *, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    """``value`` if it is an int (not a bool) from ``minimum`` to ``maximum``."""
    if type(value) is not int or not minimum <= value <= maximum:
        raise InvalidValueError(field, value, f"must be a whole number from {minimum} to {maximum}")
    return value


def check_duration(field: str, value: object, *, positive: bool = True) -> timedelta:
    """``value`` if it is a timedelta of at most :data:`INT64_MAX` microseconds either way,
    and above zero if ``positive`` (with ``positive=False`` zero and negative are accepted)."""
    if not isinstance(value, timedelta):
        raise InvalidValueError(field, value, "must be a timedelta")
    if abs(value // timedelta(microseconds=1)) > INT64_MAX:
        raise InvalidValueError(
            field, value, f"must be at most {INT64_MAX} microseconds either way"
        )
    if positive and value <= timedelta(0):
        raise InvalidValueError(field, value, "must be a timedelta > 0")
    return value
