"""Helpers of ``tests/properties/test_fuzz.py``: hostile values, lazily built library values,
the tally of inputs and outcomes, the failure classes, store dumps and the prepared practice.

Nothing here constructs a library value at import time: every value built with a library
constructor is a :class:`Build`, made inside the call under test, so that a constructor that
starts refusing a value (R18) turns the input into a refusal instead of breaking the module.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
import sqlite3
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from hypothesis import strategies as st

import sessionpacks
from sessionpacks import (
    Allowance,
    Appointment,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    FixedClock,
    InMemoryStore,
    Mark,
    Metric,
    Money,
    NoExpiry,
    PackService,
    PackTerms,
    Period,
    PerPack,
    PerSession,
    Policies,
    PreferPack,
    PreferTemplate,
)
from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.model import BundleLine
from sessionpacks.ports import PackRepository

SRC = Path(sessionpacks.__file__).resolve().parent
PRACTICE = "clinic-1"
ZONE = "Australia/Sydney"
SYDNEY = timezone(timedelta(hours=11))  # Sydney's offset in February and March 2026
PLUS14 = timezone(timedelta(hours=14))
MINUS14 = timezone(timedelta(hours=-14))
NOW = datetime(2026, 2, 16, 9, 0, tzinfo=SYDNEY)
NOW_TEXT = "2026-02-16T09:00+11:00"

# The prepared practice ----------------------------------------------------------------------

TEMPLATE_IDS = ("physio10", "hours5", "money500", "single", "bundle")
PACK_IDS = ("pk1", "pk2", "pk3", "pk4", "pk5", "pk6", "pk7", "pkbig", "pkb")
BUNDLE_PACK = "pkb"  # C1's bundle (R24): its Massage line used up by M1, Physio 2 left
CLIENT_IDS = ("C1", "C2", "C9")
SERVICE_IDS = ("physio", "massage")
BIG_PACK = "pkbig"
BIG_CLIENT = "C9"

# id -> (client, service, start, minutes, price): the appointments the practice holds.
APPOINTMENTS: dict[str, tuple[str, str, datetime, int, str]] = {
    "A1": ("C1", "physio", datetime(2026, 2, 2, 10, tzinfo=SYDNEY), 60, "150.00"),
    "A2": ("C1", "physio", datetime(2026, 2, 23, 10, tzinfo=SYDNEY), 60, "120.00"),
    "A3": ("C1", "physio", datetime(2026, 2, 3, 10, tzinfo=SYDNEY), 45, "100.00"),
    "B1": ("C2", "massage", datetime(2026, 2, 10, 14, tzinfo=SYDNEY), 90, "130.00"),
    "B2": ("C2", "physio", datetime(2026, 2, 20, 14, tzinfo=SYDNEY), 60, "120.00"),
    "G1": ("C9", "physio", datetime(2026, 2, 4, 9, tzinfo=SYDNEY), 60, "10.00"),
    "M1": ("C1", "massage", datetime(2026, 2, 5, 11, tzinfo=SYDNEY), 60, "95.00"),
}
APPOINTMENT_IDS = (*APPOINTMENTS, "N1", "N2", "N3")


def aud(amount: str | int) -> Money:
    return Money(amount, "AUD")


def appointment(appointment_id: str) -> Appointment:
    client, service, start, minutes, price = APPOINTMENTS[appointment_id]
    return Appointment(
        appointment_id, client, service, start, timedelta(minutes=minutes), aud(price)
    )


def template_terms() -> dict[str, PackTerms]:
    return {
        "physio10": PackTerms(
            name="10 x Physio",
            allowance=Allowance.sessions(10),
            pricing=PerSession.reduced(aud("150"), aud("120")),
            expiry=ExpiresOn(date(2026, 12, 31)),
            eligible_services=frozenset({"physio"}),
            policies=Policies(late_cancel_consumes=True, low_balance_at=2),
        ),
        "hours5": PackTerms(
            name="5 hours",
            allowance=Allowance.hours(timedelta(hours=5)),
            pricing=PerPack(aud("500")),
            expiry=ExpiresAfterFirstUse(Period(months=3)),
            policies=Policies(no_show_consumes=True),
        ),
        "money500": PackTerms(
            name="Credit 500",
            allowance=Allowance.money(aud("500")),
            pricing=PerPack(aud("450")),
            expiry=ExpiresAfterOpening(Period(months=6)),
        ),
        "single": PackTerms(
            name="Single", allowance=Allowance.sessions(1), pricing=PerPack(aud("100"))
        ),
        "bundle": PackTerms(
            name="Physio and massage",
            allowance=Allowance.sessions(3),
            pricing=PerPack(aud("300")),
            policies=Policies(low_balance_at=1),
            lines=(
                BundleLine("Physio", frozenset({"physio"}), Allowance.sessions(2)),
                BundleLine("Massage", frozenset({"massage"}), Allowance.sessions(1)),
            ),
        ),
    }


def populate(service: PackService) -> None:
    """Templates, packs with usages, an exhausted, a closed, a voided and an unused pack, a
    bundle with a line used up, preferences."""
    for template_id, terms in template_terms().items():
        service.add_template(template_id, terms)
    service.open_pack("C1", template_id="physio10", pack_id="pk1", charged_on_open=False)
    service.assign(appointment("A1"), pack_id="pk1")
    service.assign(appointment("A2"), pack_id="pk1")
    service.invoice_line("A1")
    service.open_pack("C1", template_id="single", pack_id="pk2")
    service.assign(appointment("A3"), pack_id="pk2")
    service.open_pack("C2", template_id="hours5", pack_id="pk3")
    service.assign(appointment("B1"), pack_id="pk3")
    service.open_pack("C2", template_id="money500", pack_id="pk4")
    service.assign(appointment("B2"), pack_id="pk4")
    service.open_pack("C1", terms=template_terms()["single"], pack_id="pk5")
    service.close("pk5", "moved away")
    service.open_pack("C1", terms=template_terms()["single"], pack_id="pk6")
    service.void("pk6", "opened in error")
    service.open_pack("C1", template_id="single", pack_id="pk7")
    big = PackTerms(
        name="Big", allowance=Allowance.sessions(100_000), pricing=PerSession.flat(aud("10"))
    )
    service.open_pack(BIG_CLIENT, terms=big, pack_id=BIG_PACK)
    service.assign(appointment("G1"), pack_id=BIG_PACK)
    service.open_pack("C1", template_id="bundle", pack_id=BUNDLE_PACK)
    service.assign(appointment("M1"), pack_id=BUNDLE_PACK)  # the Massage line used up
    service.set_preference("C1", PreferTemplate("physio10"))
    service.set_preference("C2", PreferPack("pk3"))
    service.set_preference(BIG_CLIENT, PreferPack(BIG_PACK))


class counter_ids:  # noqa: N801 - used like a function
    """New pack ids ``pkn1``, ``pkn2``..."""

    def __init__(self, prefix: str = "pkn") -> None:
        self.prefix = prefix
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter)}"

    def __repr__(self) -> str:
        return f"counter_ids({self.prefix!r})"


def memory_repository() -> tuple[InMemoryStore, PackRepository]:
    store = InMemoryStore()
    repository: PackRepository = store.practice(PRACTICE, timezone=ZONE)
    populate(PackService(repository, FixedClock(NOW), new_pack_id=counter_ids("pkp")))
    return store, repository


def prepared_sqlite(folder: Path) -> Path:
    """The practice in a SQLite file, made once per folder; copy it before writing to it."""
    path = folder / "prepared.db"
    if not path.exists():
        building = folder / "building.db"
        with SqliteStore(building) as store:
            repository = store.practice(PRACTICE, timezone=ZONE)
            populate(PackService(repository, FixedClock(NOW), new_pack_id=counter_ids("pkp")))
        with contextlib.closing(sqlite3.connect(building)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("PRAGMA journal_mode=DELETE")
        os.replace(building, path)
    return path


_copies = itertools.count(1)


def fresh_copy(prepared: Path, folder: Path) -> Path:
    """A copy of the prepared file for one example (its WAL side files removed with it)."""
    path = folder / f"copy-{next(_copies)}.db"
    shutil.copyfile(prepared, path)
    return path


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


# Dumps ---------------------------------------------------------------------------------------


class TableDump:
    """Every row of every table of a SQLite file, read on a connection of its own."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None)

    def __call__(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        tables = [
            str(row[0])
            for row in self._connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return tuple(
            (
                name,
                tuple(sorted(repr(r) for r in self._connection.execute(f'SELECT * FROM "{name}"'))),
            )
            for name in tables
        )

    def close(self) -> None:
        self._connection.close()


def _probe(read: Callable[..., Any], *args: Any) -> Any:
    try:
        return read(*args)
    except Exception as error:  # a read of a hostile id may fail; the same way before and after
        return f"<{type(error).__name__}>"


def _pack(repository: PackRepository, pack_id: str) -> Any:
    return repository.load(pack_id), repository.ledger(pack_id)


def _practice(store: InMemoryStore, practice_id: str) -> Any:
    return store.practice(practice_id).practice


def api_dump(
    repository: PackRepository, probes: Sequence[str] = (), store: InMemoryStore | None = None
) -> dict[str, Any]:
    """What a repository holds, read through its public API; ``probes`` are ids the call under
    test was given, read as clients, appointments, templates, idempotency keys and (in
    ``store``) practices."""
    events = repository.events_since(0)
    pack_ids = sorted({str(getattr(r.event, "pack_id", "")) for r in events} | set(PACK_IDS))
    packs = {p: _probe(_pack, repository, p) for p in pack_ids}
    clients = {state[0].client_id for state in packs.values() if isinstance(state, tuple)}
    templates = {
        t.id: [repository.template(t.id, v) for v in range(1, t.version + 1)]
        for t in repository.templates()
    }
    command = getattr(repository, "command", None)
    probed = {
        key: (
            _probe(repository.preference, key),
            _probe(repository.pack_of_appointment, key),
            _probe(repository.client_packs, key),
            _probe(repository.template, key),
            _probe(command, key) if callable(command) else None,
            _probe(_practice, store, key) if store is not None else None,
        )
        for key in probes
    }
    return {
        "events": events,
        "packs": packs,
        "preferences": {c: repository.preference(c) for c in sorted(clients | set(CLIENT_IDS))},
        "active": {a: repository.pack_of_appointment(a) for a in APPOINTMENT_IDS},
        "templates": templates,
        "probes": probed,
    }


def differences(before: Any, after: Any) -> list[str]:
    """The parts of two dumps that differ (``[]``: the same)."""
    if _same(before, after):
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after), key=repr)
        return [str(k) for k in keys if not _same(before.get(k), after.get(k))] or ["?"]
    if isinstance(before, tuple) and isinstance(after, tuple):
        return [str(b[0]) for b, a in zip(before, after, strict=False) if b != a] or ["tables"]
    return ["store"]


def _same(a: Any, b: Any) -> bool:
    try:
        if a == b:
            return True
    except Exception:
        pass
    return short(a, 10**9) == short(b, 10**9)


# Hostile values ------------------------------------------------------------------------------


class Opaque:
    """An object of no type any parameter expects."""

    def __repr__(self) -> str:
        return "Opaque()"


class SneakyStr(str):
    """A str subclass: an id a host built with its own string type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SneakyStr({str.__repr__(self)})"


class NoOffset(tzinfo):
    """A tzinfo whose offset is unknown: the datetime is naive by Python's rule."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None

    def __repr__(self) -> str:
        return "NoOffset()"


class BadOffset(tzinfo):
    """A broken tzinfo: its offset is a day and a half, which Python refuses wherever used."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return timedelta(hours=36)

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return "BAD"

    def __repr__(self) -> str:
        return "BadOffset()"


HUGE = "x" * 100_000
HOSTILE_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\t",
    "\n",
    " A1",
    "A1 ",
    "'",
    '"',
    "'\"",
    "O'Brien",
    "'; DROP TABLE packs; --",
    "\x00",
    "A\x00B",
    "\ud800",
    "a\udfffb",
    "\udcff",
    "\x1b[31mred",
    "a\nb",
    "a\rb",
    "\x7f",
    "\u202eevil",
    "\ufeffA1",
    "😀",
    "é",
    "x" * 81,
    "x" * 201,
    "x" * 1_001,
    HUGE,
    "%s%s%n",
    "{0}",
    "\\",
    "NaN",
    "inf",
    "-0",
    "1e309",
    "null",
    "0001-01-01T00:00+14:00",
    "9999-12-31T23:59-14:00",
    "99999999999999h",
    "P99999999Y",
)
WEIRD_CHARS = "\x00\ud800\udfff\udcff'\"\n\r\t\x1b\x7f\u202e\ufeff \\%{}"
HOSTILE_DATES: tuple[date, ...] = (
    date.min,
    date.max,
    date(1899, 12, 31),
    date(1900, 1, 1),
    date(2199, 12, 31),
    date(2200, 1, 1),
)
HOSTILE_DATETIMES: tuple[datetime, ...] = (
    datetime(2026, 3, 2, 9, 0),  # naive
    datetime.min,
    datetime.max,
    datetime(1, 1, 1, tzinfo=PLUS14),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, 12, tzinfo=MINUS14),
    datetime(1899, 12, 31, 23, 59, tzinfo=UTC),
    datetime(1900, 1, 1, 0, 30, tzinfo=PLUS14),
    datetime(2199, 12, 31, 23, 30, tzinfo=MINUS14),
    datetime(2200, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, tzinfo=MINUS14),
    datetime(9999, 12, 31, 12, tzinfo=PLUS14),
    datetime(2026, 3, 2, 9, tzinfo=NoOffset()),
)


@functools.cache
def hostile_instants() -> st.SearchStrategy[datetime]:
    """The instants above, and one whose tzinfo is broken (a host's own tzinfo class): its offset
    is refused by Python wherever it is used, even to hash it, so it is built, not sampled, and
    only given where an instant is expected."""
    broken = st.builds(lambda: datetime(2026, 3, 2, 9, tzinfo=BadOffset()))
    return st.sampled_from(HOSTILE_DATETIMES) | broken


HOSTILE_NUMBERS: tuple[object, ...] = (
    0,
    -1,
    1,
    2**31,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    -(2**64),
    10**20,
    -(10**20),
    10**400,
    0.0,
    -0.0,
    1.5,
    0.1,
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    complex(1, 1),
    Decimal("NaN"),
    Decimal("-NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    Decimal("1E+26"),
    Decimal("-1E+26"),
    Decimal("1E+400"),
    Decimal("1E-30"),
    Decimal("-0"),
    Decimal("0.001"),
    Decimal("-120.00"),
    Decimal("92233720368547758.08"),
    True,
    False,
)


def _too_many_digits() -> int:
    return 10**5000  # str() and repr() of it raise ValueError (the int-to-str digit limit)


@functools.cache
def hostile_numbers() -> st.SearchStrategy[object]:
    """The numbers above, and an int whose repr raises (built, since strategies repr their
    elements)."""
    return st.sampled_from(HOSTILE_NUMBERS) | st.builds(_too_many_digits)


HOSTILE_DURATIONS: tuple[timedelta, ...] = (
    timedelta.max,
    timedelta.min,
    timedelta(days=10**8),
    timedelta(days=-(10**8)),
    timedelta(0),
    timedelta(microseconds=1),
    timedelta(microseconds=-1),
    timedelta(hours=-1),
    timedelta(microseconds=2**63),
    timedelta(days=999_999_999, hours=23),
)
_FACTORIES: tuple[Callable[[], object], ...] = (
    lambda: None,
    lambda: b"A1",
    lambda: bytearray(b"\xff"),
    lambda: [],
    lambda: ["A1"],
    lambda: (),
    lambda: ("physio",),
    lambda: {},
    lambda: {"id": "A1"},
    lambda: set(),
    lambda: {"physio"},
    lambda: frozenset({""}),
    lambda: frozenset({"\x00"}),
    lambda: Opaque(),
    lambda: object,
    lambda: SneakyStr("pk1"),
    lambda: SneakyStr("A1"),
    lambda: Metric.SESSIONS,
    lambda: Mark.NO_SHOW,
    lambda: "sessions",
    lambda: NoExpiry,  # the class, not an instance
    lambda: len,
    lambda: iter(["A1"]),
)


def _wrong_types() -> st.SearchStrategy[object]:
    return st.sampled_from(_FACTORIES).map(lambda make: make())


def argv_can_hold(text: str) -> bool:
    """Whether a command line can carry ``text``: no NUL, and no lone surrogate but those
    Python decodes undecodable bytes of argv to (U+DC80 to U+DCFF, "surrogateescape")."""
    return "\x00" not in text and all(
        not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text
    )


@functools.cache
def hostile_text(*, argv: bool = False) -> st.SearchStrategy[str]:
    """Short generated strings of awkward characters; with ``argv``, only what a command line
    can carry (see :func:`argv_can_hold`)."""
    chars = "".join(c for c in WEIRD_CHARS if argv_can_hold(c)) if argv else WEIRD_CHARS
    return st.text(st.sampled_from(chars) | st.characters(), min_size=0, max_size=8)


@functools.cache
def hostile() -> st.SearchStrategy[object]:
    """Any hostile value: a wrong type, an out-of-range instant or date, NaN and infinities,
    huge and negative numbers and durations, and strings with quotes, NUL, lone surrogates,
    control characters, 100,000 characters or nothing but blanks."""
    return st.one_of(
        _wrong_types(),
        st.sampled_from(HOSTILE_STRINGS),
        hostile_text(),
        st.sampled_from(HOSTILE_DATETIMES),
        st.sampled_from(HOSTILE_DATES),
        hostile_numbers(),
        st.sampled_from(HOSTILE_DURATIONS),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        st.integers(),
    )


# Lazily built values -------------------------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class Build:
    """A library value made when the call under test runs: ``Build(Money, ("1E+20", "AUD"))``."""

    target: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    name: str = ""

    def make(self) -> Any:
        return self.target(
            *(resolve(a) for a in self.args), **{k: resolve(v) for k, v in self.kwargs.items()}
        )

    def __repr__(self) -> str:
        name = self.name or getattr(self.target, "__qualname__", repr(self.target))
        parts = [short(a, 60) for a in self.args]
        parts += [f"{k}={short(v, 60)}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(parts)})"


def resolve(value: Any) -> Any:
    return value.make() if isinstance(value, Build) else value


def cut(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(value: Any, limit: int = 200) -> str:
    """``repr`` cut to ``limit`` characters; a long string shows as ``'x' * 100000``."""
    if isinstance(value, str) and len(value) > 40:
        text = f"{value[0]!r} * {len(value)}" if value == value[0] * len(value) else None
        text = text or f"{value[:30]!r}... ({len(value)} chars)"
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        text = f"<int of {value.bit_length()} bits>"
    else:
        try:
            text = repr(value)
        except Exception as error:
            text = f"<{type(value).__name__}: repr raised {type(error).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def money(amount: object, currency: object = "AUD") -> Build:
    return Build(Money, (amount, currency))


# Tally and failure classes -------------------------------------------------------------------

OUTCOMES = ("accepted", "refused", "foreign", "changed", "aborted")
FAILING = ("foreign", "changed", "aborted")


@attrs.define
class FailureClass:
    surface: str
    call: str
    kind: str
    where: str
    message: str
    example: str
    count: int = 0

    def line(self) -> str:
        return (
            f"[{self.surface}] {self.call}: {self.kind} at {self.where} x{self.count}\n"
            f"    message: {self.message}\n    input:   {self.example}"
        )


@attrs.define
class Tally:
    """Inputs and outcomes per surface, and the failure classes seen."""

    outcomes: Counter[tuple[str, str]] = attrs.Factory(Counter)
    hostile: Counter[str] = attrs.Factory(Counter)
    seconds: dict[str, float] = attrs.Factory(dict)
    failures: dict[tuple[str, str, str], FailureClass] = attrs.Factory(dict)
    findings: dict[tuple[str, str, str], FailureClass] = attrs.Factory(dict)
    notes: Counter[tuple[str, str]] = attrs.Factory(Counter)
    calls: Counter[tuple[str, str, str]] = attrs.Factory(Counter)
    done: set[str] = attrs.Factory(set)

    def count(self, surface: str, outcome: str, *, hostile: bool, call: str = "") -> None:
        self.outcomes[surface, outcome] += 1
        self.calls[surface, call.split(" [")[0], outcome] += 1
        if hostile:
            self.hostile[surface] += 1

    def relabel(self, surface: str, call: str, old: str, new: str) -> None:
        """An input counted as ``old`` turned out to be ``new``."""
        for key in ((surface, old), (surface, new)):
            self.outcomes[key] += 1 if key[1] == new else -1
        self.calls[surface, call, old] -= 1
        self.calls[surface, call, new] += 1

    def fail(
        self,
        surface: str,
        call: str,
        kind: str,
        where: str,
        message: str,
        example: str,
        *,
        failing: bool = True,
    ) -> None:
        """Record a failure (or, not ``failing``, a finding that fails nothing); one class per
        surface, kind and place raised (per call where the place is unknown), keeping the
        shortest input seen."""
        classes = self.failures if failing else self.findings
        key = (surface, kind, where if where not in ("-", "?") else call)
        found = classes.get(key)
        if found is None:
            found = classes[key] = FailureClass(
                surface, call, kind, where, cut(message, 300), cut(example, 400)
            )
        elif len(example) < len(found.example):
            found.example, found.message = cut(example, 400), cut(message, 300)
        if call not in found.call.split(", "):
            found.call = cut(f"{found.call}, {call}", 200)
        found.count += 1

    def total(self, outcome: str, surface: str | None = None) -> int:
        return sum(
            n for (s, o), n in self.outcomes.items() if o == outcome and surface in (None, s)
        )

    def inputs(self, surface: str | None = None) -> int:
        return sum(n for (s, _), n in self.outcomes.items() if surface in (None, s))

    def failure_report(
        self, surface: str | None = None, limit: int = 25, *, failing: bool = True
    ) -> str:
        classes = self.failures if failing else self.findings
        found = [f for f in classes.values() if surface in (None, f.surface)]
        found.sort(key=lambda f: (f.surface, f.where, f.kind))
        what = "failure class(es)" if failing else "finding(s), not failing"
        lines = [f"{len(found)} {what}:"] + [f.line() for f in found[:limit]]
        if len(found) > limit:
            lines.append(f"... and {len(found) - limit} more")
        return "\n".join(lines)

    def table(self) -> str:
        surfaces = sorted({s for s, _ in self.outcomes})
        head = f"{'surface':<16}{'inputs':>8}{'hostile':>9}" + "".join(f"{o:>10}" for o in OUTCOMES)
        rows = [
            f"{s:<16}{self.inputs(s):>8}{self.hostile[s]:>9}"
            + "".join(f"{self.outcomes[s, o]:>10}" for o in OUTCOMES)
            + f"   {self.seconds.get(s, 0.0):.1f}s"
            for s in surfaces
        ]
        total = f"{'total':<16}{self.inputs():>8}{sum(self.hostile.values()):>9}" + "".join(
            f"{self.total(o):>10}" for o in OUTCOMES
        )
        return "\n".join([head, *rows, total])

    def figures(self) -> dict[str, Any]:
        return {
            "surfaces": {
                s: {
                    "inputs": self.inputs(s),
                    "hostile": self.hostile[s],
                    "seconds": round(self.seconds.get(s, 0.0), 2),
                    **{o: self.outcomes[s, o] for o in OUTCOMES},
                }
                for s in sorted({s for s, _ in self.outcomes})
            },
            "total": {
                "inputs": self.inputs(),
                "hostile": sum(self.hostile.values()),
                **{o: self.total(o) for o in OUTCOMES},
            },
            "notes": {f"{s}: {n}": c for (s, n), c in sorted(self.notes.items())},
            "calls": {
                f"{s} {c}": {o: n for (s2, c2, o), n in self.calls.items() if (s2, c2) == (s, c)}
                for s, c in sorted({(s, c) for s, c, _ in self.calls})
            },
            "failure_classes": [attrs.asdict(f) for f in self.failures.values()],
            "findings": [attrs.asdict(f) for f in self.findings.values()],
        }


TALLY = Tally()


def where(error: BaseException) -> str:
    """Where an exception was raised: the innermost frame in the library, else the last one."""
    frames = list(traceback.extract_tb(error.__traceback__))
    inside = [f for f in frames if f.filename.startswith(str(SRC))]
    if not (inside or frames):
        return "?"
    frame = (inside or frames)[-1]
    name = frame.filename
    name = os.path.relpath(name, SRC.parent) if name.startswith(str(SRC)) else Path(name).name
    return f"{name}:{frame.lineno} ({frame.name})"


def traceback_where(text: str) -> tuple[str, str]:
    """The exception type and innermost library frame of a printed traceback."""
    lines = text.strip().splitlines()
    kind = lines[-1].split(":")[0] if lines else "?"
    files = [line.strip() for line in lines if line.strip().startswith('File "')]
    inside = [f for f in files if str(SRC) in f] or files
    spot = inside[-1].replace(str(SRC.parent) + os.sep, "") if inside else "?"
    return kind, spot


@contextlib.contextmanager
def timed(surface: str) -> Iterator[None]:
    import time

    started = time.perf_counter()
    try:
        yield
    finally:
        TALLY.seconds[surface] = TALLY.seconds.get(surface, 0.0) + time.perf_counter() - started


def environment() -> dict[str, str]:
    """A child's environment without the user's store variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SESSIONPACKS_")}


def console_script() -> list[str]:
    """The installed ``sessionpacks`` script of this environment, else ``python -m``."""
    script = Path(sys.executable).with_name("sessionpacks")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sessionpacks"]
