"""What a spreadsheet export writes, read for ``import``: its own headers, and cells as people
spell them (naive local times, ``$1,100.00``, ``45 min``, ``1:30``, ``1.5h``).

The import reads each row in two steps. :class:`Layout` first maps the file's headers to the
import's columns (``--column "Appointment ID=appointment_id"``) and writes the cells this module
understands in the spelling :func:`~sessionpacks._cli.transfer.parse_row` reads (a naive start
with the practice's offset, ``$110`` as ``110.00 AUD``, ``1.5h`` as ``PT5400S``); a cell already
in that spelling is left exactly as it is, so what the import read before reads the same. Then
``parse_row`` reads the row as before. The row refused or written to the rejects file is the
row as it was in the file.

The rules (docs/migrating-from-a-spreadsheet.md):

- **Naive times** are local times in the practice's time zone. A time that a daylight-saving
  change repeats is the first of the two (``fold=0``: the earlier instant, still on daylight
  time). A time that the change skips does not exist, and its row is refused naming the column
  and value: moving it would guess at when the session happened. A start with an offset is read
  as it always was. Only cells: options still refuse naive times (R5).
- **Money**: a plain amount (``110``, ``110.5``, ``110.00 AUD``, ``AUD 110.00``) is read as it
  always was; thousands may be grouped with commas (``1,100.00``), and a comma anywhere else is
  refused (``12,50`` could be twelve and a half). A symbol (``$``, ``A$``, ``€``, ``£``, ...) is
  accepted only when it is a symbol of the row's currency: ``$`` is the row's dollar (or peso),
  never a currency of its own. Amounts are exact decimals; more places than the currency has
  are refused, not rounded.
- **Durations**: ``45m``, ``1h30m`` and ``PT45M`` as before, and ``45 min``, ``45 mins``,
  ``90 minutes``, ``1.5h``, ``1.5 hours``, ``1 hr 30 min``, ``0:45``, ``1:30`` and ``1:30:00``.
  Decimal hours are exact (``1.5h`` is 90 minutes). A bare number (``90``) has no unit and is
  refused: read as minutes or as hours, it would charge an hours pack wrongly. A duration must be
  longer than zero, in whole seconds, and within R18's limit.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, Inexact
from zoneinfo import ZoneInfo

import attrs

from sessionpacks._currencies import MINOR_UNITS
from sessionpacks._limits import INT64_MAX, check_instant
from sessionpacks.errors import SessionPacksError
from sessionpacks.model import Money

from .csvrows import RowError
from .store import UsageError
from .values import cut, duration, money, shown

__all__ = [
    "SYMBOLS",
    "Layout",
    "column_pairs",
    "layout_of",
    "local_instant",
    "read_duration",
    "read_price",
]

_MAX_SCALAR = 100  # as values: longer text is no number, date or duration
_MICRO = 1_000_000
_EXACT = Context(prec=400, traps=[Inexact])  # 100 digits times 3.6e9: never rounded

# Currency symbols ------------------------------------------------------------------------

_DOLLARS = """
AUD BBD BMD BND BSD BZD CAD FJD GYD HKD JMD KYD LRD NAD NZD SBD SGD SRD TTD TWD USD XCD
ARS CLP COP CUP DOP MXN UYU
"""


def _known(codes: Iterable[str]) -> frozenset[str]:
    return frozenset(code for code in codes if code in MINOR_UNITS)


_NAMED = (
    ("A$", "AUD"), ("AU$", "AUD"), ("US$", "USD"), ("NZ$", "NZD"), ("C$", "CAD"), ("CA$", "CAD"),
    ("S$", "SGD"), ("HK$", "HKD"), ("R$", "BRL"), ("€", "EUR"), ("£", "GBP"), ("₹", "INR"),
    ("₩", "KRW"), ("₪", "ILS"), ("₱", "PHP"),
)  # fmt: skip

SYMBOLS: dict[str, frozenset[str]] = {
    "$": _known(_DOLLARS.split()),
    **{symbol: _known([code]) for symbol, code in _NAMED},
    "¥": _known(["JPY", "CNY"]),
}
"""The currency symbols a price may carry, and the currencies each may stand for."""

# Naive times -----------------------------------------------------------------------------


def local_instant(text: str, zone: ZoneInfo) -> datetime | None:
    """A naive ISO 8601 date and time (``2026-03-02 09:00``) as an instant in ``zone``; None if
    ``text`` is not one (an instant with its offset, or not a date and time at all).

    A repeated local time is its first occurrence (``fold=0``); a skipped one is refused.
    """
    naive = _naive(text)
    if naive is None:
        return None
    if not 1900 <= naive.year <= 2199:  # astimezone() would overflow near year 1 or 9999
        return _in_range(text, naive.replace(tzinfo=UTC))
    local = naive.replace(tzinfo=zone)  # fold=0: the first of a repeated time
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        before = local.utcoffset()
        after = naive.replace(tzinfo=zone, fold=1).utcoffset()
        raise argparse.ArgumentTypeError(
            f"{shown(text)} does not exist in {zone.key}: the clocks went forward over it "
            f"(UTC{_offset(before)} to UTC{_offset(after)}); write the start with its UTC "
            "offset, or the time the session really began"
        )
    return _in_range(text, local)


def _naive(text: str) -> datetime | None:
    cleaned = text.strip()
    if len(cleaned) > _MAX_SCALAR or ":" not in cleaned:  # a date alone is no start
        return None
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return value if value.tzinfo is None else None


def _in_range(text: str, value: datetime) -> datetime:
    try:
        return check_instant("value", value)
    except SessionPacksError as error:
        raise argparse.ArgumentTypeError(f"{shown(text)} {error.reason}") from None


def _offset(value: timedelta | None) -> str:
    minutes = int((value or timedelta(0)).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# Money -----------------------------------------------------------------------------------

_PRICE = re.compile(
    r"(?P<sign>-?)\s*(?:(?P<before>[A-Za-z]{3})\s*)?(?P<symbol>[^\s\d.,+-]{1,3}?)?\s*"
    r"(?P<number>[0-9][0-9,]*(?:\.[0-9]+)?)\s*(?P<after>[A-Za-z]{3})?"
)
_GROUPED = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
_MONEY_EXAMPLE = "(e.g. 110.00, $110.00, 1,100.00 or '110.00 AUD')"


def _wrong(text: str, why: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{shown(text)} {why}")


@attrs.frozen
class Price:
    """An amount as a spreadsheet wrote it, with its currency code and symbol, if any."""

    amount: Decimal
    code: str | None
    symbol: str | None
    text: str

    def resolve(self, currency: str | None) -> Money:
        """The Money in the row's ``currency``, which a code or symbol must agree with."""
        code = self.code or currency
        if code is None:
            raise _wrong(self.text, "has no currency: write '110.00 AUD' or fill in the currency")
        if currency is not None and code != currency:
            raise _wrong(self.text, f"is in {code} but the row's currency is {currency}")
        if self.symbol is not None and code not in SYMBOLS[self.symbol]:
            raise _wrong(self.text, f"is written with {self.symbol}, which is not {code}'s symbol")
        try:
            return Money(self.amount, code)
        except SessionPacksError as error:
            raise _wrong(self.text, error.reason) from None


def _plain(text: str) -> bool:
    """Whether the import read ``text`` before spellings: no comma, and read by values.money."""
    if "," in text:
        return False
    try:
        money(text)
    except argparse.ArgumentTypeError:
        return False
    return True


def price(text: str) -> Price:
    """An amount with a symbol or grouped thousands: ``$110.00``, ``1,100.00``, ``-A$5``."""
    found = _PRICE.fullmatch(text.strip()) if len(text) <= _MAX_SCALAR else None
    if found is None:
        raise _wrong(text, f"is not an amount of money {_MONEY_EXAMPLE}")
    number, symbol = found["number"], found["symbol"]
    if not _GROUPED.fullmatch(number):
        raise _wrong(text, "has a comma that does not group thousands: write 1,100.00 or 12.50")
    if found["before"] and found["after"]:
        raise _wrong(text, f"names two currencies {_MONEY_EXAMPLE}")
    code = (found["before"] or found["after"] or "").upper() or None
    if code is not None and code not in MINOR_UNITS:
        raise _wrong(code, "is not an ISO 4217 currency code")
    if symbol is not None and symbol not in SYMBOLS:
        raise _wrong(text, f"has {shown(symbol)}, not a currency symbol ({' '.join(SYMBOLS)})")
    amount = Decimal(number.replace(",", ""))
    return Price(-amount if found["sign"] else amount, code, symbol, text)


def read_price(text: str, currency: str | None) -> Money:
    """Any accepted spelling of an amount, as Money in ``currency`` (the row's)."""
    if _plain(text):
        return money(text).resolve(currency)
    return price(text).resolve(currency)


# Durations -------------------------------------------------------------------------------

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_SPELLED = re.compile(
    rf"(?:(?P<h>{_NUMBER})\s*(?:h|hrs?|hours?))?\s*(?:(?P<m>{_NUMBER})\s*(?:m|mins?|minutes?))?",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"(?P<h>[0-9]+):(?P<m>[0-5][0-9])(?::(?P<s>[0-5][0-9]))?")
_BARE = re.compile(_NUMBER)
_DURATION_EXAMPLE = "write 45m, 45 min, 1h30m, 1:30, 1.5h or PT45M"


def _micro(number: str | None, seconds: int) -> Decimal:
    return Decimal(0) if number is None else _EXACT.multiply(Decimal(number), seconds * _MICRO)


def _microseconds(body: str) -> Decimal | None:
    """The microseconds ``body`` spells (no sign), exactly; None if it is no spelling."""
    clock = _CLOCK.fullmatch(body)
    if clock is not None:
        h, m, s = (int(clock[k] or 0) for k in ("h", "m", "s"))
        return Decimal((h * 3600 + m * 60 + s) * _MICRO)
    found = _SPELLED.fullmatch(body)
    if found is None or not (found["h"] or found["m"]):
        return None
    return _EXACT.add(_micro(found["h"], 3600), _micro(found["m"], 60))


def read_duration(text: str) -> timedelta:
    """Any accepted spelling of a duration, longer than zero, in whole seconds (R18)."""
    try:
        return duration(text)  # 45m, 1h30m, PT45M: as the import read them before
    except argparse.ArgumentTypeError as error:
        first = error
    body = text.strip()
    negative = body[:1] == "-"
    body = body[1:].lstrip() if body[:1] in ("+", "-") else body
    found = _microseconds(body) if len(body) <= _MAX_SCALAR else None
    if found is None:
        if "is not a duration" not in str(first):  # read, but too long or not positive
            raise first
        bare = _BARE.fullmatch(body) is not None
        why = "has no unit" if bare else "is not a duration"
        raise _wrong(text, f"{why}: {_DURATION_EXAMPLE}")
    if found > INT64_MAX:
        raise _wrong(text, f"is too long: at most {INT64_MAX} microseconds")
    if negative or found == 0:
        raise _wrong(text, "must be a duration longer than zero")
    if found % _MICRO:
        raise _wrong(text, "is not a whole number of seconds")
    return timedelta(microseconds=int(found))


# Headers ---------------------------------------------------------------------------------


def column_pairs(
    texts: Sequence[str] | None, known: Sequence[str], *, option: str = "--column"
) -> dict[str, str]:
    """``--column "Their header=column"`` options as {column: their header}; a usage error if
    one is not of that shape, names no column of the import, or maps a column or header twice.
    ``option`` is the option's name in the messages (``--packs-column`` for the packs file)."""
    pairs: dict[str, str] = {}
    for text in texts or ():
        theirs, equals, ours = text.rpartition("=")
        ours = ours.strip()
        if not equals or not theirs:
            raise _usage(f"{option} {shown(text)} must be 'Their header=column'", option)
        if ours not in known:
            raise _usage(
                f"{option} {shown(text)}: {shown(ours)} is not a column of the import "
                f"(one of {', '.join(known)})",
                option,
            )
        if ours in pairs:
            raise _usage(
                f"{option} maps {shown(pairs[ours])} and {shown(theirs)} both to {ours}", option
            )
        if theirs in pairs.values():
            raise _usage(f"{option} maps the header {shown(theirs)} twice", option)
        pairs[ours] = theirs
    return pairs


def _usage(message: str, option: str = "--column") -> UsageError:
    return UsageError(message, argument=option)


def _sources(
    pairs: Mapping[str, str],
    headers: Sequence[str],
    known: Sequence[str],
    name: str,
    option: str = "--column",
) -> dict[str, str]:
    """Each column of the import present in the file, with the header it is read from."""
    absent = [theirs for theirs in pairs.values() if theirs not in headers]
    if absent:
        raise _usage(
            f"{name}: {option} names the header {shown(absent[0])}, which the file does not "
            f"have (it has {cut(', '.join(map(repr, headers)))})",
            option,
        )
    mapped = set(pairs.values())
    for ours, theirs in pairs.items():
        if ours != theirs and ours in headers and ours not in mapped:
            raise _usage(
                f"{name}: the file has a column {ours}, and {option} maps {shown(theirs)} to "
                "it too: map one of them",
                option,
            )
    found = {c: c for c in known if c in headers and c not in mapped}
    return {**found, **pairs}


def layout_of(
    pairs: Mapping[str, str],
    headers: Sequence[str],
    known: Sequence[str],
    required: Sequence[str],
    name: str,
    *,
    option: str = "--column",
) -> Layout:
    """How to read the file of ``name`` with ``headers``: a usage error if a header ``pairs``
    names is not there, if a column would be read from two headers, or if one is missing."""
    sources = _sources(pairs, headers, known, name, option)
    missing = [c for c in required if c not in sources]
    if missing:
        raise UsageError(
            f"{cut(name)}: missing column(s) {', '.join(missing)}; see docs/cli.md (a header "
            f"of your own is read as a column with {option} 'Their header=column')"
        )
    return Layout(sources)


# Reading a row ---------------------------------------------------------------------------

_Respell = Callable[[str, Mapping[str, str], ZoneInfo | None], str]


def _respell_start(text: str, row: Mapping[str, str], zone: ZoneInfo | None) -> str:
    found = None if zone is None else local_instant(text, zone)
    return text if found is None else found.isoformat()


def _respell_price(text: str, row: Mapping[str, str], zone: ZoneInfo | None) -> str:
    if _plain(text):
        return text
    spelled = price(text)
    currency = (row.get("currency") or "").strip().upper()
    if currency not in MINOR_UNITS:  # the currency column is refused when it is read
        return f"{spelled.amount} {spelled.code or ''}".strip()
    found = spelled.resolve(currency)
    return f"{found.amount} {found.currency}"


def _respell_duration(text: str, row: Mapping[str, str], zone: ZoneInfo | None) -> str:
    try:
        duration(text)
    except argparse.ArgumentTypeError:
        return f"PT{int(read_duration(text).total_seconds())}S"
    return text


_RESPELL: tuple[tuple[str, _Respell], ...] = (
    ("price", _respell_price),
    ("start", _respell_start),
    ("duration", _respell_duration),
)


@attrs.frozen
class Layout:
    """Which header each column of the import is read from, and the practice's time zone that
    naive starts are read in (None: naive starts are refused, as options refuse them)."""

    sources: Mapping[str, str] = attrs.field(factory=dict)
    zone: ZoneInfo | None = None

    def in_zone(self, zone: ZoneInfo) -> Layout:
        return attrs.evolve(self, zone=zone)

    def start(self, row: Mapping[str, str]) -> str:
        """The start cell of ``row`` with its offset; a naive one read in :attr:`zone`."""
        text = self.mapped(row).get("start") or ""
        try:
            return _respell_start(text, row, self.zone)
        except argparse.ArgumentTypeError as error:
            raise RowError("start", str(error)) from None

    def mapped(self, row: Mapping[str, str]) -> dict[str, str]:
        """The cells of ``row`` under the import's column names (those the file has)."""
        if all(ours == theirs for ours, theirs in self.sources.items()):
            return dict(row)
        return {ours: row[theirs] for ours, theirs in self.sources.items() if theirs in row}

    def cells(self, row: Mapping[str, str]) -> dict[str, str]:
        """The mapped cells, each in the spelling ``parse_row`` reads; a RowError naming the
        column if a cell is in a spelling of this module but cannot be read."""
        cells = self.mapped(row)
        for column, respell in _RESPELL:
            text = cells.get(column)
            if text is None:
                continue
            try:
                cells[column] = respell(text, cells, self.zone)
            except argparse.ArgumentTypeError as error:
                raise RowError(column, str(error)) from None
        return cells
