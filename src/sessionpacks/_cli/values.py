"""Reading command-line values: instants, dates, durations, periods, money and amounts.

Each reader raises :class:`argparse.ArgumentTypeError` with a message naming what was wrong, so
argparse reports it as a usage error (exit 2) without a traceback.
"""

from __future__ import annotations

import argparse
import re
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from sessionpacks._currencies import MINOR_UNITS
from sessionpacks.errors import SessionPacksError
from sessionpacks.model import Amount, Metric, Money, Period

__all__ = [
    "MoneyText",
    "amount_of",
    "duration",
    "instant",
    "iso_duration",
    "money",
    "period",
    "positive_int",
    "timezone",
    "whole",
]

_SHORT = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$", re.IGNORECASE)
_ISO = re.compile(r"^PT(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?$", re.IGNORECASE)


def instant(text: str) -> datetime:
    """An ISO 8601 instant with its UTC offset: ``2026-03-02T09:00+11:00``."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date and time (e.g. 2026-03-02T09:00+11:00)"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset: write it like 2026-03-02T09:00+11:00 "
            "(naive times are refused)"
        )
    return value


def day(text: str) -> date:
    """An ISO 8601 date: ``2026-04-16``."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date (e.g. 2026-04-16)"
        ) from None


def duration(text: str) -> timedelta:
    """A duration: ``90m``, ``1h30m``, ``2h`` or ISO 8601 ``PT1H30M``; more than zero."""
    value = _signed_duration(text)
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a duration longer than zero")
    return value


def _signed_duration(text: str) -> timedelta:
    cleaned = text.strip().replace(" ", "")
    sign = -1 if cleaned.startswith("-") else 1
    body = cleaned.lstrip("+-")
    for pattern in (_SHORT, _ISO):
        found = pattern.match(body)
        if found and body not in ("", "PT", "pt") and any(found.groupdict().values()):
            parts = {k: int(v) for k, v in found.groupdict().items() if v}
            seconds = parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
            return sign * timedelta(seconds=seconds)
    raise argparse.ArgumentTypeError(f"{text!r} is not a duration: write 90m, 1h30m or PT1H30M")


def iso_duration(value: timedelta) -> str:
    """``PT1H30M``: how durations appear in JSON output."""
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    text += f"{secs}S" if secs or not text else ""
    return f"{sign}PT{text}"


def period(text: str) -> Period:
    """A calendar period: ``3 months``, ``1 year``, ``P3M``."""
    try:
        return Period.parse(text)
    except SessionPacksError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def timezone(text: str) -> str:
    """An IANA time zone name: ``Australia/Sydney``."""
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IANA time zone name (e.g. Australia/Sydney)"
        ) from None
    return text


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return value


def whole(text: str) -> int:
    """A whole number, zero or more."""
    try:
        value = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
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
            raise argparse.ArgumentTypeError(
                f"{self.text!r} has no currency: write '120.00 AUD' or add --currency AUD"
            )
        if self.currency is not None and currency is not None and self.currency != currency:
            raise argparse.ArgumentTypeError(
                f"{self.text!r} is in {self.currency} but --currency says {currency}"
            )
        try:
            return Money(self.amount, code)
        except SessionPacksError as error:
            raise argparse.ArgumentTypeError(str(error)) from None


def money(text: str) -> MoneyText:
    """``120.00``, ``120.00 AUD`` or ``AUD 120.00``; a currency must be ISO 4217."""
    parts = text.replace(",", "").split()
    code = None
    numbers = [p for p in parts if not p.isalpha()]
    codes = [p.upper() for p in parts if p.isalpha()]
    if len(numbers) != 1 or len(codes) > 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an amount of money (e.g. 120.00 or '120.00 AUD')"
        )
    if codes:
        code = codes[0]
        if code not in MINOR_UNITS:
            raise argparse.ArgumentTypeError(f"{code!r} is not an ISO 4217 currency code")
    try:
        value = Decimal(numbers[0])
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of money (e.g. 120.00)")
    return MoneyText(value, code, text)


def currency(text: str) -> str:
    """An ISO 4217 currency code: ``AUD``."""
    code = text.strip().upper()
    if code not in MINOR_UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 4217 currency code")
    return code


def amount_of(metric: Metric, text: str, currency: str, *, signed: bool = False) -> Amount:
    """An amount of ``metric`` as typed: ``2`` sessions, ``1h30m``, ``50.00`` (may be signed)."""
    cleaned = text.strip()
    if metric is Metric.SESSIONS:
        try:
            count = int(cleaned)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number of sessions"
            ) from None
        return count if signed else _non_negative(count, text)
    if metric is Metric.HOURS:
        value = _signed_duration(cleaned)
        return value if signed else _non_negative(value, text)
    negative = cleaned.startswith("-")
    parsed = money(cleaned.lstrip("+-")).resolve(currency)
    if negative and not signed:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return -parsed if negative else parsed


def _non_negative(value: int | timedelta, text: str) -> int | timedelta:
    if (isinstance(value, int) and value < 0) or (
        isinstance(value, timedelta) and value < timedelta(0)
    ):
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value
