"""Reading command-line values: ids, text, instants, dates, durations, periods, money, amounts.

Each reader raises :class:`argparse.ArgumentTypeError` with a message naming what was wrong, so
argparse reports it as a usage error (exit 2) without a traceback, and never any other
exception: a value the reader lets through is one the library accepts the shape of. The limits
are the library's (R18, :mod:`sessionpacks._limits`), checked here first so that the command
line says what is wrong before anything is opened or written. Values shown in messages are cut
to :data:`SHOWN_LENGTH` characters.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from sessionpacks._currencies import MINOR_UNITS
from sessionpacks._limits import (
    INT64_MAX,
    MAX_ID_LENGTH,
    check_day,
    check_id,
    check_instant,
    check_text,
)
from sessionpacks.errors import SessionPacksError
from sessionpacks.model import Amount, Metric, Money, Period, Practice
from sessionpacks.reports import JournalAccounts

__all__ = [
    "SHOWN_LENGTH",
    "MoneyText",
    "amount_of",
    "cut",
    "day",
    "description",
    "duration",
    "identifier",
    "instant",
    "integer",
    "journal_account",
    "left",
    "money",
    "nonblank",
    "pack_name",
    "path",
    "period",
    "positive_int",
    "reason",
    "shown",
    "timezone",
    "url",
    "whole",
    "within",
]

SHOWN_LENGTH = 80
"""The longest value a message shows; longer ones are cut, ending in ``...``."""
# Text longer than this is no number, date or duration; refusing it first keeps int() (which
# refuses over 4,300 digits) and the regular expressions away from it.
_MAX_SCALAR = 100
_MAX_ZONE = 255  # the longest file name: ZoneInfo looks the name up as a file
_MICROSECONDS_PER_SECOND = 1_000_000

_SHORT = re.compile(r"^(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?$", re.IGNORECASE)
_ISO = re.compile(r"^PT(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?(?:(?P<s>[0-9]+)S)?$", re.IGNORECASE)
_WHOLE = re.compile(r"^[+-]?[0-9]+$")

T = TypeVar("T")


def cut(text: str) -> str:
    """``text`` cut to :data:`SHOWN_LENGTH` characters, ending in ``...`` if it was longer."""
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 3] + "..."


def shown(value: object) -> str:
    """``repr(value)`` cut to :data:`SHOWN_LENGTH` characters: how a message quotes a value."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4,300 digits
        text = f"<{type(value).__name__} too long to show>"
    return cut(text)


def _refused(text: str, why: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{shown(text)} {why}")


def _limited(check: Callable[[str, object], T], text: str) -> T:
    """``check`` of :mod:`sessionpacks._limits`, its refusal as a usage error."""
    try:
        return check("value", text)
    except SessionPacksError as error:
        raise _refused(text, error.reason) from None


def _present(text: str) -> str:
    if text.strip() == "":
        raise argparse.ArgumentTypeError("must not be empty")
    return text


# Ids and text ------------------------------------------------------------------------------


def identifier(text: str) -> str:
    """An id: not empty, without surrounding spaces, control characters or lone surrogates,
    at most 200 characters (R18)."""
    return _limited(check_id, _present(text))


def pack_name(text: str) -> str:
    """A name (of a pack): not blank, at most 200 characters, without NUL or lone surrogates."""
    return _limited(
        lambda field, value: check_text(field, value, max_length=MAX_ID_LENGTH), _present(text)
    )


def description(text: str) -> str:
    """Free text: not blank, at most 1,000 characters, without NUL or lone surrogates."""
    return _limited(check_text, _present(text))


reason = description
"""A reason kept in the ledger: the same limits as a description (R18)."""


def nonblank(text: str) -> str:
    """Text read later in the light of other options (an amount in a pack's metric)."""
    return _limited(check_text, _present(text))


def path(text: str) -> str:
    """A file or folder name: not empty, without NUL (no file system takes one)."""
    if "\x00" in _present(text):
        raise _refused(text, "is not a file name: it contains NUL")
    return text


def url(text: str) -> str:
    """A database URL: not empty, without NUL."""
    if "\x00" in _present(text):
        raise _refused(text, "is not a URL: it contains NUL")
    return text


# Instants, dates, durations, periods -------------------------------------------------------


def instant(text: str) -> datetime:
    """An ISO 8601 instant with its UTC offset, ``2026-03-02T09:00+11:00``, from 1900 to 2199."""
    example = "(e.g. 2026-03-02T09:00+11:00)"
    if len(_present(text)) > _MAX_SCALAR:
        raise _refused(text, f"is not an ISO 8601 date and time {example}")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _refused(text, f"is not an ISO 8601 date and time {example}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise _refused(
            text,
            "has no UTC offset: write it like 2026-03-02T09:00+11:00 (naive times are refused)",
        )
    try:
        return check_instant("value", value)
    except SessionPacksError as error:
        raise _refused(text, error.reason) from None


def day(text: str) -> date:
    """An ISO 8601 date, ``2026-04-16``, from 1900-01-01 to 2199-12-31."""
    if len(_present(text)) > _MAX_SCALAR:
        raise _refused(text, "is not an ISO 8601 date (e.g. 2026-04-16)")
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        raise _refused(text, "is not an ISO 8601 date (e.g. 2026-04-16)") from None
    try:
        return check_day("value", value)
    except SessionPacksError as error:
        raise _refused(text, error.reason) from None


def duration(text: str) -> timedelta:
    """A duration: ``90m``, ``1h30m``, ``2h`` or ISO 8601 ``PT1H30M``; more than zero."""
    value = _signed_duration(text)
    if value <= timedelta(0):
        raise _refused(text, "must be a duration longer than zero")
    return value


def _signed_duration(text: str) -> timedelta:
    cleaned = text.strip().replace(" ", "")
    sign = -1 if cleaned.startswith("-") else 1
    body = cleaned[1:] if cleaned[:1] in ("+", "-") else cleaned
    for pattern in (_SHORT, _ISO):
        found = pattern.match(body) if len(body) <= _MAX_SCALAR else None
        if found and body.upper() != "PT" and any(found.groupdict().values()):
            parts = {k: int(v) for k, v in found.groupdict().items() if v}
            seconds = parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
            # Checked before timedelta() sees it: it overflows past 999,999,999 days.
            if seconds * _MICROSECONDS_PER_SECOND > INT64_MAX:
                raise _refused(text, f"is too long: at most {INT64_MAX} microseconds")
            return sign * timedelta(seconds=seconds)
    raise _refused(text, "is not a duration: write 90m, 1h30m or PT1H30M")


def period(text: str) -> Period:
    """A calendar period: ``3 months``, ``1 year``, ``P3M``."""
    if len(_present(text)) > _MAX_SCALAR:
        raise _refused(text, "is not a period: write '3 months', '2 weeks' or 'P3M'")
    try:
        return Period.parse(text)
    except SessionPacksError as error:
        raise _refused(text, error.reason) from None


def timezone(text: str) -> str:
    """An IANA time zone name: ``Australia/Sydney``."""
    wrong = _refused(text, "is not an IANA time zone name (e.g. Australia/Sydney)")
    if len(_present(text)) > _MAX_ZONE:
        raise wrong
    try:
        Practice("practice", text)  # the model's own rule for a practice's zone
        ZoneInfo(text)
    # ZoneInfo opens a file by that name: a name too long for the file system is an OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError, SessionPacksError):
        raise wrong from None
    return text


# Numbers, money, amounts -------------------------------------------------------------------


def integer(text: str) -> int:
    """A whole number, signed, within a signed 64-bit count."""
    cleaned = text.strip()
    if len(cleaned) > _MAX_SCALAR or not _WHOLE.match(cleaned):
        raise _refused(text, "is not a whole number")
    value = int(cleaned)
    if abs(value) > INT64_MAX:
        raise _refused(text, f"is too large: at most {INT64_MAX} either way")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    value = whole(text)
    if value < 1:
        raise _refused(text, "must be a whole number of at least 1")
    return value


def whole(text: str) -> int:
    """A whole number, zero or more."""
    value = integer(text)
    if value < 0:
        raise _refused(text, "must not be negative")
    return value


@attrs.frozen
class MoneyText:
    """An amount as typed, with its currency if the text carried one (``120.00 AUD``)."""

    amount: Decimal
    currency: str | None
    text: str

    def resolve(self, currency: str | None) -> Money:
        """The Money, taking ``currency`` (``--currency``) when the text had none."""
        code = self.currency or currency
        if code is None:
            raise _refused(self.text, "has no currency: write '120.00 AUD' or add --currency AUD")
        if self.currency is not None and currency is not None and self.currency != currency:
            raise _refused(self.text, f"is in {self.currency} but --currency says {currency}")
        try:
            return Money(self.amount, code)
        except SessionPacksError as error:
            raise _refused(self.text, error.reason) from None


def money(text: str) -> MoneyText:
    """``120.00``, ``120.00 AUD`` or ``AUD 120.00``; a currency must be ISO 4217."""
    wrong = _refused(text, "is not an amount of money (e.g. 120.00 or '120.00 AUD')")
    parts = text.replace(",", "").split() if len(text) <= _MAX_SCALAR else []
    numbers = [p for p in parts if not p.isalpha()]
    codes = [p.upper() for p in parts if p.isalpha()]
    if len(numbers) != 1 or len(codes) > 1:
        raise wrong
    code = codes[0] if codes else None
    if code is not None and code not in MINOR_UNITS:
        raise _refused(code, "is not an ISO 4217 currency code")
    try:
        value = Decimal(numbers[0])
    except (InvalidOperation, ValueError):
        raise wrong from None
    if not value.is_finite():
        raise wrong
    found = MoneyText(value, code, text)
    if code is not None:
        found.resolve(None)  # with its currency, it can be judged now (minor unit, R18)
    return found


def currency(text: str) -> str:
    """An ISO 4217 currency code: ``AUD``."""
    code = text.strip().upper()
    if code not in MINOR_UNITS:
        raise _refused(text, "is not an ISO 4217 currency code")
    return code


def amount_of(metric: Metric, text: str, currency: str | None, *, signed: bool = False) -> Amount:
    """An amount of ``metric`` as typed: ``2`` sessions, ``1h30m``, ``50.00`` (may be signed);
    money without a currency of its own takes ``currency``, and is refused without one."""
    cleaned = text.strip()
    if metric is Metric.SESSIONS:
        try:
            count = integer(cleaned)
        except argparse.ArgumentTypeError:
            raise _refused(text, "is not a whole number of sessions") from None
        return count if signed else _non_negative(count, text)
    if metric is Metric.HOURS:
        value = _signed_duration(cleaned)
        return value if signed else _non_negative(value, text)
    negative = cleaned.startswith("-")
    body = cleaned[1:] if cleaned[:1] in ("+", "-") else cleaned
    if body[:1] in ("+", "-"):
        raise _refused(text, "is not an amount of money (e.g. 50.00 or -50.00)")
    parsed = money(body).resolve(currency)
    if negative and not signed:
        raise _refused(text, "must not be negative")
    return -parsed if negative else parsed


def _non_negative(value: int | timedelta, text: str) -> int | timedelta:
    if (isinstance(value, int) and value < 0) or (
        isinstance(value, timedelta) and value < timedelta(0)
    ):
        raise _refused(text, "must not be negative")
    return value


_SHORT_PERIOD = re.compile(r"(\d{1,6})\s*([dwmy])", re.IGNORECASE)
_PERIOD_UNITS = {"d": "days", "w": "weeks", "m": "months", "y": "years"}


def within(text: str) -> Period:
    """A period from today: ``30d``, ``4w``, ``3m``, ``1y``, or ``30 days``, ``P1M``."""
    found = _SHORT_PERIOD.fullmatch(_present(text).strip())
    if found is None:
        return period(text)
    try:
        return Period(**{_PERIOD_UNITS[found[2].lower()]: int(found[1])})
    except SessionPacksError as error:
        raise _refused(text, error.reason) from None


def left(text: str) -> Amount:
    """At most this much left: ``1`` (sessions), ``90m`` or ``1h`` (hours packs), or money
    with its currency, ``20.00 AUD``."""
    for parse in (whole, duration):
        try:
            return parse(text)
        except argparse.ArgumentTypeError:
            continue
    return money(text).resolve(None)


JOURNAL_ACCOUNTS = sorted(attrs.fields_dict(JournalAccounts))


def journal_account(text: str) -> tuple[str, str]:
    """``KEY=NAME``: the name of one of the journal's accounts."""
    key, equals, name = _present(text).partition("=")
    if not equals or key not in JOURNAL_ACCOUNTS:
        raise _refused(text, f"must be KEY=NAME, KEY one of {', '.join(JOURNAL_ACCOUNTS)}")
    try:
        JournalAccounts(**{key: name})
    except SessionPacksError as error:
        raise argparse.ArgumentTypeError(f"{shown(text)}: the name {error.reason}") from None
    return key, name
