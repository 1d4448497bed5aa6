"""The terms of a pack in a row of the packs file (``import --packs``): a pack sold in another
system with no template here gives its terms in columns instead of a ``template_id`` (R19).

``name`` (the pack's name) and ``allowance`` are needed; ``allowance`` is read as the metric it
is written in, as ``--line`` amounts are: a whole number is sessions (``10``), a duration is
hours (``5h``, ``45 min``, ``0:45``), money is money (``$500.00``, ``500.00 AUD``). ``price`` is
the pack's price, per pack (needed, but for a money pack, whose price is its face value).
``currency`` is the row's currency, which money written without a code takes (else the code a
price or allowance carries); ``services`` lists the services the pack covers, separated by
commas or semicolons (empty: any service); ``expires_after`` is a period from the opening date
(``3 months``, ``P6W``).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from sessionpacks.errors import SessionPacksError
from sessionpacks.model import (
    Allowance,
    ExpiresAfterOpening,
    ExpiryRule,
    Money,
    NoExpiry,
    PackTerms,
    PerPack,
    format_amount,
)

from .csvrows import RowError
from .render import expiry_text, pricing_text
from .spellings import price, read_duration, read_price
from .values import currency, identifier, pack_name, period, positive_int, shown

__all__ = ["TERMS_COLUMNS", "cell", "read_cell", "row_terms", "terms_filled", "terms_texts"]

TERMS_COLUMNS = ("name", "allowance", "price", "currency", "services", "expires_after")
"""The columns of a row that gives its pack's terms instead of a ``template_id``."""

_DEFINING = ("name", "allowance", "price", "services", "expires_after")
# Which column a refusal of the library's terms names, by its field.
_FIELD_COLUMNS = {
    "PackTerms.name": "name",
    "PackTerms.allowance": "allowance",
    "PackTerms.pricing": "price",
    "PackTerms.eligible_services": "services",
    "PackTerms.expiry": "expires_after",
}
_WHOLE = re.compile(r"[+-]?[0-9]+")
_SEPARATORS = re.compile(r"[,;]")
_ALLOWANCE_EXAMPLE = "write sessions (10), a duration (5h, 45 min, 0:45) or money ($500.00)"


def cell(row: dict[str, str], column: str) -> str:
    """The cell ``column`` of ``row``, without surrounding spaces (empty if it has none)."""
    return (row.get(column) or "").strip()


def read_cell(row: dict[str, str], column: str, reader: Callable[[str], Any]) -> Any:
    """The cell ``column`` read by ``reader``; a refusal as a RowError naming the column."""
    try:
        return reader(cell(row, column))
    except argparse.ArgumentTypeError as error:
        raise RowError(column, str(error)) from None
    except SessionPacksError as error:
        raise RowError(column, str(error)) from None


def terms_filled(row: dict[str, str]) -> str | None:
    """The first column of the pack's terms the row fills (``currency`` aside), or None."""
    return next((column for column in _DEFINING if cell(row, column)), None)


def _code_of(text: str) -> str | None:
    """The currency code ``text`` carries, if it is money with one."""
    try:
        return price(text).code
    except argparse.ArgumentTypeError:
        return None


def _is_money(text: str) -> bool:
    try:
        price(text)
    except argparse.ArgumentTypeError:
        return False
    return True


def allowance_of(text: str, code: str | None) -> Allowance:
    """The allowance as written: a whole number of sessions, a duration, or money in ``code``
    (the row's currency)."""
    cleaned = text.strip()
    if not cleaned:
        raise argparse.ArgumentTypeError(f"must not be empty: {_ALLOWANCE_EXAMPLE}")
    if _WHOLE.fullmatch(cleaned):
        return Allowance.sessions(positive_int(cleaned))
    if _is_money(cleaned):
        found = read_price(cleaned, code)
        if found.amount <= 0:
            raise argparse.ArgumentTypeError(f"{shown(text)} must be more than zero")
        return Allowance.money(found)
    try:
        return Allowance.hours(read_duration(cleaned))
    except argparse.ArgumentTypeError as error:
        if "is not a duration" in str(error) or "has no unit" in str(error):
            raise argparse.ArgumentTypeError(
                f"{shown(text)} is not an allowance: {_ALLOWANCE_EXAMPLE}"
            ) from None
        raise


def _price(text: str, allowance: Allowance, code: str | None) -> PerPack:
    if not text:
        if isinstance(allowance.amount, Money):
            return PerPack(allowance.amount)  # a money pack's price is its face value
        raise argparse.ArgumentTypeError("must not be empty: the pack's price, e.g. $900.00")
    found = read_price(text, code)
    if found.amount < 0:
        raise argparse.ArgumentTypeError(f"{shown(text)} must not be negative")
    return PerPack(found)


def services_of(text: str) -> frozenset[str]:
    """Service ids separated by commas or semicolons; empty: any service."""
    if not text.strip():
        return frozenset()
    ids = [identifier(part.strip()) for part in _SEPARATORS.split(text) if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError(f"{shown(text)} names no service")
    return frozenset(ids)


def _expiry(row: dict[str, str]) -> ExpiryRule:
    if not cell(row, "expires_after"):
        return NoExpiry()
    if cell(row, "expires_on"):
        raise RowError("expires_after", "give expires_after or expires_on, not both")
    return ExpiresAfterOpening(read_cell(row, "expires_after", period))


def _row_currency(row: dict[str, str]) -> str | None:
    """The row's currency: its ``currency``, else the code its price or allowance carries."""
    if cell(row, "currency"):
        code: str = read_cell(row, "currency", currency)
        return code
    return _code_of(cell(row, "price")) or _code_of(cell(row, "allowance"))


def row_terms(row: dict[str, str]) -> PackTerms:
    """The pack's terms the row's columns give; a RowError naming the column that is wrong."""
    name = read_cell(row, "name", pack_name)
    code = _row_currency(row)
    allowance = read_cell(row, "allowance", lambda text: allowance_of(text, code))
    pricing = read_cell(row, "price", lambda text: _price(text, allowance, code))
    services = read_cell(row, "services", services_of)
    expiry = _expiry(row)
    try:
        return PackTerms(name, allowance, pricing, expiry, services)
    except SessionPacksError as error:
        raise RowError(_FIELD_COLUMNS.get(error.field, "name"), str(error)) from None


def terms_texts(terms: PackTerms) -> list[tuple[str, str]]:
    """The terms as the packs file's columns say them, to name the one that differs."""
    return [
        ("name", terms.name),
        ("allowance", format_amount(terms.allowance.amount)),
        ("price", pricing_text(terms)),
        ("services", ", ".join(sorted(terms.eligible_services)) or "any service"),
        ("expires_after", expiry_text(terms)),
    ]
