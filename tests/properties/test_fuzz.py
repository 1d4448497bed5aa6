"""Fuzzing every public surface with hostile values (issue 8; R17, R18).

Every public model constructor, every public :class:`~sessionpacks.PackService` method (on the
in-memory store and on a SQLite file), every CLI verb and every CSV column of ``import`` (and of
its ``--packs`` file) is fed hostile values: wrong types, naive and out-of-range instants, NaN
and infinities, huge and negative amounts and durations, ids with quotes, NUL, lone surrogates,
control characters and 100,000 characters, mixed with mostly-valid values (a real appointment
with one field replaced) so that deep code paths run, not only the first check.

Two kinds of input: hypothesis draws (``model``, ``service-memory``, ``service-sqlite``,
``cli``, ``csv``, ``csv-packs``) and a deterministic grid (``grid-*``) that gives every
parameter of every method and constructor, and every option of every verb, one value of each
hostile kind with the other arguments valid, and runs every method on each hostile clock. A
few cases run the console script in a subprocess (``console``).

Each call is counted by surface and outcome: ``accepted``, ``refused`` (the library's own
:class:`~sessionpacks.SessionPacksError`, or for the CLI exit status 1 or 2 without a
traceback), ``foreign`` (any other exception, traceback or exit status), ``changed`` (a refusal
after which the store differs from its dump before the call) and, for CSV, ``aborted`` (the
good rows around a bad one were not applied). A surface fails on any foreign, changed or
aborted outcome, listing the distinct failure classes with a small input; the last test prints
the table, writes it to ``fuzz-figures.json`` in pytest's temporary directory and checks that at
least 10,000 hostile inputs were tried.

Examples scale with the active hypothesis profile (``settings().max_examples`` times a factor):
the dev profile runs the figures above; ``SESSIONPACKS_HYPOTHESIS_PROFILE=ci`` ten times more.
Run alone with ``uv run pytest tests/properties/test_fuzz.py --no-cov -s``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import inspect
import io
import itertools
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import attrs
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import sessionpacks
from sessionpacks import (
    Allowance,
    Appointment,
    AppointmentStatus,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    FixedClock,
    InMemoryStore,
    JournalAccounts,
    Mark,
    Metric,
    Migration,
    Money,
    NoExpiry,
    PackPage,
    PackQuery,
    PackService,
    PackStatus,
    PackTemplate,
    PackTerms,
    Period,
    PerPack,
    PerSession,
    Policies,
    Practice,
    PreferPack,
    PreferService,
    PreferTemplate,
    Service,
    SessionPacksError,
    Tier,
)
from sessionpacks._cli import app as cli_app
from sessionpacks._cli import packfile, transfer
from sessionpacks._cli.app import build_parser, main
from sessionpacks._cli.base import GLOBAL_DEFAULTS
from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.errors import ConcurrencyError, InvalidValueError, StoreError
from sessionpacks.events import PackOpened
from sessionpacks.model import MAX_BUNDLE_LINES, BundleLine
from sessionpacks.operations import MAX_SHARED_WITH
from sessionpacks.ports import PackRepository

from .. import fuzz_support
from ..fuzz_support import (
    APPOINTMENT_IDS,
    APPOINTMENTS,
    BIG_CLIENT,
    BIG_PACK,
    BUNDLE_PACK,
    CLIENT_IDS,
    FAILING,
    HOSTILE_DATES,
    HOSTILE_DATETIMES,
    HOSTILE_DURATIONS,
    HOSTILE_STRINGS,
    HUGE,
    NOW,
    NOW_TEXT,
    PACK_IDS,
    PLUS14,
    PRACTICE,
    SERVICE_IDS,
    SYDNEY,
    TALLY,
    TEMPLATE_IDS,
    ZONE,
    Build,
    Opaque,
    SneakyStr,
    TableDump,
    Tally,
    api_dump,
    appointment,
    argv_can_hold,
    console_script,
    counter_ids,
    cut,
    differences,
    environment,
    fresh_copy,
    hostile,
    hostile_instants,
    hostile_numbers,
    hostile_text,
    money,
    remove_db,
    resolve,
    short,
    template_terms,
    timed,
    traceback_where,
    where,
)

Strategy = st.SearchStrategy[Any]
MIN_HOSTILE_INPUTS = 10_000


# The prepared practice, shared ----------------------------------------------------------------
#
# fuzz_support's practice, with pk1 of C1 shared with C2 (R20), whose appointment S1 on it is
# still to come: unshare is then refused for a reason of its own (and accepted once S1 is
# cancelled), and C2's bookings may draw on a pack of another client.
SHARED_APPOINTMENT = "S1"


def share_in(repository: PackRepository) -> None:
    service = PackService(repository, FixedClock(NOW))
    service.share("pk1", "C2")
    start = datetime(2026, 2, 25, 10, tzinfo=SYDNEY)
    visit = Appointment(
        SHARED_APPOINTMENT, "C2", "physio", start, timedelta(hours=1), Money("120", "AUD")
    )
    service.assign(visit, pack_id="pk1")


def memory_repository() -> tuple[InMemoryStore, PackRepository]:
    store, repository = fuzz_support.memory_repository()
    share_in(repository)
    return store, repository


def prepared_sqlite(folder: Path) -> Path:
    """The practice in a SQLite file, shared as above once per folder; copy it to write."""
    path = fuzz_support.prepared_sqlite(folder)
    marker = folder / "prepared-shared"
    if not marker.exists():
        with SqliteStore(path) as store:
            share_in(store.practice(PRACTICE))
        # One file again, as fuzz_support leaves it: a copy of it is the whole practice.
        with contextlib.closing(sqlite3.connect(path)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("PRAGMA journal_mode=DELETE")
        marker.touch()
    return path


# Examples are the profile's max_examples times a factor; each example makes several calls.
MODEL_FACTOR, MODEL_CALLS = 12, 40
MEMORY_FACTOR, MEMORY_CALLS = 6, 30
SQLITE_FACTOR, SQLITE_CALLS = 2, 30
CLI_FACTOR, CLI_CALLS = 4, 10
CSV_FACTOR = 4


def scaled(factor: int) -> settings:
    """The active profile's settings with ``factor`` times its examples."""
    base = settings()
    return settings(
        base,
        max_examples=max(1, base.max_examples * factor),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def weighted(*choices: tuple[int, Strategy]) -> Strategy:
    """One of ``choices``, each drawn with its weight."""
    pool = st.sampled_from([i for i, (weight, _) in enumerate(choices) for _ in range(weight)])
    strategies = [strategy for _, strategy in choices]

    @st.composite
    def pick(draw: st.DrawFn) -> Any:
        return draw(strategies[draw(pool)])

    return pick()


def sample(*values: Any) -> Strategy:
    return st.sampled_from(values)


# Valid values --------------------------------------------------------------------------------


def instants() -> Strategy:
    """Aware instants in February and March 2026, Sydney time (+11:00)."""
    return st.builds(
        lambda day, hour: datetime(2026, 2, 1, hour, tzinfo=SYDNEY) + timedelta(days=day),
        st.integers(0, 50),
        st.integers(8, 18),
    )


def days(first: date, last: date) -> Strategy:
    return st.dates(min_value=first, max_value=last)


def valid_money() -> Strategy:
    return sample("120.00", "0", "450", "10.50", 5).map(money)


def valid_appointments() -> Strategy:
    """An appointment the practice holds (the same facts again), or a new one."""
    existing = sample(*APPOINTMENTS).map(lambda a: Build(appointment, (a,), name="appointment"))
    fresh = st.builds(
        lambda a, who, start, minutes, price: Build(
            Appointment, (a, *who, start, timedelta(minutes=minutes), money(price))
        ),
        sample(*APPOINTMENT_IDS),
        sample(
            ("C1", "physio"),
            ("C1", "physio"),
            ("C1", "massage"),
            ("C2", "massage"),
            ("C9", "physio"),
            ("C3", "physio"),
        ),
        instants(),
        sample(30, 60, 90),
        sample("120.00", "10.00", "0"),
    )
    return existing | fresh


def valid_terms() -> Strategy:
    named = sample(*template_terms()).map(
        lambda n: Build(lambda n: template_terms()[n], (n,), name="template_terms")
    )
    return named | st.builds(
        lambda n, e: Build(
            PackTerms,
            kwargs={
                "name": f"{n} sessions",
                "allowance": Build(Allowance.sessions, (n,)),
                "pricing": Build(PerPack, (money("100"),)),
                "expiry": e,
            },
        ),
        st.integers(1, 5),
        sample(
            Build(NoExpiry),
            Build(ExpiresOn, (date(2026, 2, 20),)),
            Build(ExpiresAfterFirstUse, (Build(Period, kwargs={"weeks": 1}),)),
        ),
    )


def valid_preferences() -> Strategy:
    return st.one_of(
        st.none(),
        sample(*PACK_IDS).map(lambda p: Build(PreferPack, (p,))),
        sample(*TEMPLATE_IDS).map(lambda t: Build(PreferTemplate, (t,))),
        sample(*SERVICE_IDS).map(lambda s: Build(PreferService, (s,))),
    )


def valid_amounts() -> Strategy:
    return sample(
        1,
        -1,
        2,
        timedelta(minutes=30),
        -timedelta(minutes=30),
        money("10"),
        money("-10"),
    )


# Mostly valid values: the right type, one field at an extreme ------------------------------

HOSTILE_IDS = weighted(
    (4, sample(*HOSTILE_STRINGS)), (2, hostile_text()), (1, sample(SneakyStr("pk1"), SneakyStr("")))
)
HOSTILE_MONEY = sample(
    money("1E+20"),
    money(10**24),
    money("92233720368547758.07"),
    money("-92233720368547758.08"),
    money(2**63),
    money("-1"),
    money("0.001"),
    money("120.00", "USD"),
    money("120", "JPY"),
    money("NaN"),
    money("1E+26"),
    money("-0"),
    Build(Money.from_minor, (2**63 - 1, "AUD")),
)
TYPED_AMOUNTS = (
    sample(
        2**63,
        2**63 - 1,
        -(2**63),
        10**20,
        -(10**20),
        0,
        timedelta.max,
        timedelta.min,
        timedelta(days=10**8),
        -timedelta(days=10**8),
        timedelta(0),
    )
    | HOSTILE_MONEY
)
HOSTILE_PERIODS = sample(
    Build(Period, kwargs={"years": 10**9}),
    Build(Period, kwargs={"days": 2**63}),
    Build(Period, kwargs={"months": 10**5}),
    Build(Period, kwargs={"weeks": 10**18}),
    Build(Period.parse, ("P99999999999Y",)),
    Build(Period.parse, ("9" * 5000 + " days",)),
)
TIMEZONES = (
    sample(
        "../../../../etc/passwd",
        "/etc/localtime",
        "Australia/../../etc/passwd",
        "UTC\x00",
        "Nowhere/Atlantis",
        "utc",
        "Etc/GMT+14",
        HUGE,
        "",
    )
    | hostile()
)


def _one_replaced(
    kind: Callable[..., Any], fields: dict[str, Strategy], extremes: dict[str, Strategy]
) -> Strategy:
    """``kind(**fields)`` with one or two fields replaced by an extreme or anything hostile."""
    either = {name: extremes[name] | hostile() for name in fields}
    names = st.lists(sample(*fields), min_size=1, max_size=2, unique=True)

    @st.composite
    def build(draw: st.DrawFn) -> Build:
        values = {name: draw(s) for name, s in fields.items()}
        for name in draw(names):
            values[name] = draw(either[name] if draw(st.booleans()) else extremes[name])
        return Build(kind, kwargs=values)

    return build()


TERM_EXTREMES: dict[str, Strategy] = {
    "name": HOSTILE_IDS,
    "allowance": sample(
        Build(Allowance.sessions, (2**63,)),
        Build(Allowance.sessions, (10**20,)),
        Build(Allowance.hours, (timedelta.max,)),
        Build(Allowance.hours, (timedelta(microseconds=1),)),
        Build(Allowance.money, (money(10**24),)),
        Build(Allowance.money, (money("92233720368547758.07"),)),
        Build(Allowance, (Metric.SESSIONS, True)),
    ),
    "pricing": sample(
        Build(PerPack, (money(10**24),)),
        Build(PerPack, (money("92233720368547758.07"),)),
        Build(PerSession.flat, (money("1E+20"),)),
        Build(
            PerSession,
            (
                (
                    Build(Tier, (1, money("1"))),
                    Build(Tier, (2**63, money("1"))),
                ),
            ),
        ),
        Build(PerPack, (money("100", "USD"),)),
    ),
    "expiry": sample(
        Build(ExpiresOn, (date.max,)),
        Build(ExpiresOn, (date.min,)),
        Build(ExpiresOn, (date(1899, 12, 31),)),
        Build(ExpiresOn, (date(2200, 1, 1),)),
        Build(ExpiresOn, (datetime(2026, 3, 1, tzinfo=UTC),)),
    )
    | HOSTILE_PERIODS.map(lambda p: Build(ExpiresAfterOpening, (p,)))
    | HOSTILE_PERIODS.map(lambda p: Build(ExpiresAfterFirstUse, (p,))),
    "eligible_services": sample(
        frozenset({HUGE}), frozenset({"\x00"}), frozenset({"\ud800"}), ["physio", 1], "physio"
    ),
    "policies": sample(
        Build(Policies, kwargs={"late_cancel_notice": timedelta.max}),
        Build(Policies, kwargs={"late_cancel_notice": timedelta(days=10**8)}),
        Build(Policies, kwargs={"low_balance_at": 2**63}),
        Build(Policies, kwargs={"low_balance_at": 9}),
        Build(Policies, kwargs={"low_balance_at": timedelta(hours=1)}),
        Build(Policies, kwargs={"remind_days_before_expiry": 367}),
    ),
    "description": sample(HUGE, "x" * 1_001, "\x00", "\ud800", "\x1b[2J"),
}


def line(name: Any, services: Any, allowance: Any) -> Build:
    """A bundle line (R24), built inside the call: ``allowance`` a count of sessions, or a
    Build of another."""
    if isinstance(allowance, int) and not isinstance(allowance, bool):
        allowance = Build(Allowance.sessions, (allowance,))
    return Build(BundleLine, (name, services, allowance))


def _made(kind: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *items: kind(items)


def lines(*items: Any, kind: Callable[..., Any] = tuple) -> Build:
    """``items`` (lines or anything) in a tuple or a list made inside the call, each item made
    first: what a host passes as ``PackTerms.lines``."""
    return Build(_made(kind), items, name=getattr(kind, "__name__", "lines"))


def physio_and_massage(physio: Any = 7, massage: Any = 3) -> Build:
    return lines(
        line("Physio", frozenset({"physio"}), physio), line("Massage", {"massage"}, massage)
    )


# Lines of a bundle (R24): what a host might pass as PackTerms.lines, right and wrong.
HOSTILE_LINES = sample(
    # not a tuple of lines
    "Physio",
    "",
    b"Physio",
    7,
    {"Physio": 7},
    frozenset({"Physio"}),
    lines(None),
    lines("Physio"),
    lines(("Physio", {"physio"}, 7)),
    lines(Build(Allowance.sessions, (7,))),
    lines(line("Physio", {"physio"}, 10), "Massage", kind=list),
    lines(line("Physio", {"physio"}, 10), kind=frozenset),
    lines(line("Physio", {"physio"}, 10), kind=iter),
    Opaque(),
    # lines that break a rule of the bundle: a wrong metric, a service on two lines, a name
    # twice, more than 20 lines, a sum that does not add up
    lines(
        line("Physio", {"physio"}, 7),
        line("Massage", {"massage"}, Build(Allowance.hours, (timedelta(hours=3),))),
    ),
    lines(
        line("Physio", {"physio"}, Build(Allowance.money, (money("70"),))),
        line("Massage", {"massage"}, Build(Allowance.money, (money("30"),))),
    ),
    lines(line("Physio", {"physio", "massage"}, 7), line("Massage", {"massage"}, 3)),
    lines(line("Physio", {"physio"}, 7), line("Physio", {"massage"}, 3)),
    lines(line("Physio", {"physio"}, 7), line(SneakyStr("Physio"), {"massage"}, 3)),
    lines(*(line(f"L{n}", {f"s{n}"}, 1) for n in range(MAX_BUNDLE_LINES + 1))),
    lines(*(line(f"L{n}", {f"s{n}"}, 1) for n in range(10**4))),
    lines(*(line("Physio", {"physio"}, 1) for _ in range(MAX_BUNDLE_LINES + 1))),
    physio_and_massage(7, 2),
    physio_and_massage(2**62, 2**62),
    physio_and_massage(10, 0),
    physio_and_massage(-3, 13),
    lines(line("Physio", {"physio"}, 10)),
    # hostile names and services of a line
    lines(line("Phys\x00io", {"physio"}, 7), line("Massage", {"massage"}, 3)),
    lines(line("Physio\x1b[2J", {"physio"}, 7), line("\ud800", {"massage"}, 3)),
    lines(line(HUGE, {"physio"}, 7), line(" ", {"massage"}, 3)),
    lines(line("Physio", {"physio"}, 7), line("Massage", frozenset(), 3)),
    lines(line("Physio", "physio", 7), line("Massage", {"massage"}, 3)),
    lines(line("Physio", {HUGE}, 7), line("Massage", {"\x00"}, 3)),
    lines(line("Physio", {" physio"}, 7), line("Massage", [b"massage"], 3)),
    lines(line(None, {"physio"}, 7), line(7, {"massage"}, 3)),
    lines(line("Physio", {"physio"}, 7), line("Massage", {"massage"}, Opaque())),
    # money lines in another currency than the pack's
    lines(
        line("Physio", {"physio"}, Build(Allowance.money, (money("70", "USD"),))),
        line("Massage", {"massage"}, Build(Allowance.money, (money("30", "USD"),))),
    ),
    # right: 7 + 3 is the 10 sessions of the terms these replace, as a tuple or a list
    physio_and_massage(),
    lines(line("Physio", {"physio"}, 7), line("Massage", {"massage"}, 3), kind=list),
    (),
    [],
)
TERM_EXTREMES["lines"] = HOSTILE_LINES


@functools.cache
def hostile_terms() -> Strategy:
    """Terms with one or two fields replaced, of a plain pack or of a bundle (R24), whose
    pricing, services or allowance then break its rules."""
    fields: dict[str, Strategy] = {
        "name": sample("10 x Physio"),
        "allowance": sample(Build(Allowance.sessions, (10,))),
        "pricing": sample(Build(PerPack, (money("100"),))),
        "expiry": sample(Build(NoExpiry)),
        "eligible_services": sample(frozenset()),
        "policies": sample(Build(Policies)),
        "description": sample(""),
        "lines": sample(()),
    }
    bundle = {**fields, "lines": sample(physio_and_massage())}
    extremes = {
        **TERM_EXTREMES,
        "pricing": TERM_EXTREMES["pricing"] | sample(Build(PerSession.flat, (money("100"),))),
        "eligible_services": TERM_EXTREMES["eligible_services"]
        | sample(frozenset({"physio"}), frozenset({"pilates"})),
        "allowance": TERM_EXTREMES["allowance"] | sample(Build(Allowance.sessions, (11,))),
    }
    return _one_replaced(PackTerms, fields, TERM_EXTREMES) | _one_replaced(
        PackTerms, bundle, extremes
    )


@functools.cache
def hostile_appointments() -> Strategy:
    """A real appointment with one field replaced by an extreme of the right type or anything."""
    fields: dict[str, Strategy] = {
        "id": sample(*APPOINTMENT_IDS),
        "client_id": sample(*CLIENT_IDS),
        "service_id": sample(*SERVICE_IDS),
        "start": instants(),
        "duration": sample(timedelta(minutes=60)),
        "price": valid_money(),
    }
    extremes: dict[str, Strategy] = {
        "id": HOSTILE_IDS,
        "client_id": HOSTILE_IDS,
        "service_id": HOSTILE_IDS,
        "start": hostile_instants(),
        "duration": sample(*HOSTILE_DURATIONS),
        "price": HOSTILE_MONEY,
    }

    return _one_replaced(Appointment, fields, extremes)


class Returns:
    """A ``new_pack_id`` that returns one value."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __call__(self) -> object:
        return self.value

    def __repr__(self) -> str:
        return f"Returns({short(self.value, 60)})"


class NaiveClock:
    """A clock that tells a naive time (FixedClock refuses one at construction)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def now(self) -> Any:
        return self.value

    def __repr__(self) -> str:
        return f"NaiveClock({short(self.value, 60)})"


HOSTILE_CLOCKS = st.one_of(
    sample(*HOSTILE_DATETIMES[3:13]).map(lambda t: Build(FixedClock, (t,))),
    sample(datetime(2026, 2, 16, 9), datetime.min, date(2026, 2, 16), None, "now").map(NaiveClock),
)
VALID_CLOCKS = sample(NOW, NOW + timedelta(days=30), NOW - timedelta(days=20)).map(
    lambda t: Build(FixedClock, (t,))
)

# Parameters: valid values by name, and extremes of the right type where the type matters.
VALID: dict[str, Strategy] = {
    "template_id": sample(*TEMPLATE_IDS, "t-new"),
    "terms": valid_terms(),
    "client_id": sample(*CLIENT_IDS, "C3"),
    "preference": valid_preferences(),
    "explicit": valid_preferences(),
    "pack_id": sample(*PACK_IDS, "pkn1", "pk-new"),
    "to_pack_id": sample(*PACK_IDS, "pkn1"),
    "appointment": valid_appointments(),
    "appointments": st.lists(valid_appointments(), max_size=4),
    "size": st.integers(1, 3),
    "seconds": sample(1.0, 0.0),
    "appointment_id": sample(*APPOINTMENT_IDS, SHARED_APPOINTMENT),
    "cancelled_at": st.none() | instants(),
    "start": instants(),
    "why": sample(*Mark),
    "status": sample(*AppointmentStatus, "booked", "no_show"),
    "version": st.none() | st.integers(1, 3),
    "amount": valid_amounts(),
    "until": days(date(2026, 2, 17), date(2027, 12, 31)),
    "reason": sample("goodwill", "correction", "goodwill", ""),
    "as_of": days(date(2026, 1, 1), date(2026, 2, 16)),
    "position": st.integers(0, 40),
    "limit": st.none() | st.integers(1, 10),
    "charged_on_open": st.booleans(),
    "idempotency_key": st.none() | sample("k1", "k2", "k3"),
    "practice_id": sample(PRACTICE, "clinic-2"),
    "timezone": sample(ZONE, "UTC", None),
    # PackService.adjust: the line of a bundle (R24), which pkb's adjustments must name
    "line": st.none() | sample("Physio", "Massage"),
}
OVERRIDES: dict[tuple[str, str], Strategy] = {
    ("open_pack", "template_id"): st.none() | sample(*TEMPLATE_IDS),
    ("open_pack", "terms"): st.none() | valid_terms(),
    ("open_pack", "pack_id"): st.none() | sample("pk-new", "pk-other", *PACK_IDS),
    ("open_pack", "migrated"): weighted(
        (3, st.none()),
        (
            1,
            sample(
                Build(Migration, (date(2025, 11, 1), 2)), Build(Migration, (date(2026, 1, 2), 0))
            ),
        ),
    ),
    ("assign", "pack_id"): st.none() | sample("pk1", "pk1", "pk3", "pkbig", *PACK_IDS),
    ("assign", "template_id"): st.none() | sample(*TEMPLATE_IDS),
    ("add_to_invoice", "pack_id"): st.none() | sample(*PACK_IDS),
    ("add_to_invoice", "template_id"): st.none() | sample(*TEMPLATE_IDS),
    ("add_template", "template_id"): sample("t-new", "t-other", *TEMPLATE_IDS),
    ("edit_template", "template_id"): sample(*TEMPLATE_IDS),
    ("record", "pack_id"): st.none() | sample("pk1", "pk3", "pk7", *PACK_IDS),
    ("record", "template_id"): st.none() | sample(*TEMPLATE_IDS),
    # A cancellation's instant is for a cancelled status only: mostly left out.
    ("record", "cancelled_at"): weighted((3, st.none()), (1, instants())),
    # PackService.report: a period of local dates or instants, as of an instant or not
    ("report", "start"): days(date(2026, 1, 1), date(2026, 3, 1)) | instants(),
    ("report", "end"): days(date(2026, 3, 1), date(2026, 6, 1)) | instants(),
    ("report", "as_of"): st.none() | instants(),
    ("journal", "start"): days(date(2026, 1, 1), date(2026, 3, 1)) | instants(),
    ("journal", "end"): days(date(2026, 3, 1), date(2026, 6, 1)) | instants(),
    ("journal", "as_of"): st.none() | instants(),
    ("journal", "accounts"): st.none() | st.builds(JournalAccounts),
    # PackService.transfer: to another client, a new pack id or a generated one
    ("transfer", "new_pack_id"): st.none() | sample("pk-moved", *PACK_IDS),
    # Reads as of an instant (R23), or now
    ("pack", "as_of"): st.none() | instants(),
    ("client_packs", "as_of"): st.none() | instants(),
    ("figures", "as_of"): st.none() | instants(),
    ("invoice_line", "as_of"): weighted((3, st.none()), (1, instants())),
    # PackService.hold and end_hold: local dates around the packs' lives
    ("hold", "start"): days(date(2026, 1, 20), date(2026, 8, 1)),
    ("hold", "until"): days(date(2026, 1, 21), date(2026, 9, 1)),
    ("end_hold", "on"): days(date(2026, 1, 20), date(2026, 9, 1)),
    # PackService.find_packs: any filters, the first page or the one after a known pack
    ("find_packs", "query"): sample(
        Build(PackQuery),
        Build(PackQuery, kwargs={"statuses": [PackStatus.OPEN], "as_of": NOW}),
        Build(PackQuery, kwargs={"at_most_left": 1, "template_id": "physio10"}),
        Build(PackQuery, kwargs={"expiring_from": date(2026, 3, 1)}),
    ),
    ("find_packs", "after"): st.none() | sample(PackPage.cursor("pk1"), PackPage.cursor("zz")),
    ("find_packs", "limit"): st.integers(1, 10),
    # R20: the clients beside the owner who draw on a pack. pkn1 is the pack a call opens
    # without an id (each call counts from pkn1), so that it is shared now and then.
    ("open_pack", "shared_with"): weighted(
        (2, st.just(())), (2, sample(("C2",), ["C2", "C3"], ("C9", "C2"), ("C1",)))
    ),
    ("share", "pack_id"): sample("pk1", "pk3", "pkn1", *PACK_IDS),
    ("share", "client_id"): sample("C2", "C3", "C9", "C1"),
    # pk1 is shared with C2, whose S1 on it is to come, past on the clock 30 days on.
    ("unshare", "pack_id"): sample("pk1", "pk1", "pk1", "pkn1"),
    ("unshare", "client_id"): sample("C2", "C2", "C3"),
    # R24: the bundle pkb, whose Massage line is used up, as often as any other pack.
    ("adjust", "pack_id"): sample(BUNDLE_PACK, BUNDLE_PACK, *PACK_IDS),
    ("adjust", "line"): weighted((2, st.none()), (3, sample("Physio", "Massage"))),
}
EXTREMES: dict[str, Strategy] = {
    **dict.fromkeys(
        (
            "template_id",
            "client_id",
            "pack_id",
            "to_pack_id",
            "appointment_id",
            "idempotency_key",
            "practice_id",
        ),
        HOSTILE_IDS,
    ),
    "appointment": hostile_appointments(),
    "appointments": sample("A1", 7, None, [1], [None])
    | st.lists(hostile_appointments(), max_size=2),
    "size": sample(0, -1, True, 2**63, "5", 1.5),
    "seconds": sample(-1, float("nan"), float("inf"), "1", None, 10**6),
    "terms": hostile_terms(),
    "preference": HOSTILE_IDS.map(lambda i: Build(PreferPack, (i,)))
    | HOSTILE_IDS.map(lambda i: Build(PreferTemplate, (i,))),
    "explicit": HOSTILE_IDS.map(lambda i: Build(PreferService, (i,)))
    | HOSTILE_IDS.map(lambda i: Build(PreferPack, (i,))),
    "cancelled_at": hostile_instants(),
    "start": hostile_instants(),
    "until": sample(*HOSTILE_DATES, datetime(2026, 6, 1, tzinfo=UTC)),
    "on": sample(*HOSTILE_DATES, datetime(2026, 6, 1, tzinfo=UTC)),
    "end": hostile_instants() | sample(*HOSTILE_DATES),
    "as_of": sample(*HOSTILE_DATES, date(2026, 12, 31), datetime(2026, 2, 1, tzinfo=UTC)),
    "amount": TYPED_AMOUNTS,
    "reason": sample(HUGE, "x" * 1_001, "\x00", "\ud800", "\x1b[2J", " "),
    "position": sample(-1, 2**63, 10**20, -(2**63), True),
    "limit": sample(0, -1, 2**63, 10**20, True),
    "version": sample(0, -1, 2**31, 2**63, True, "1", 1.0),
    "why": sample("late_cancel", "no_show", Metric.SESSIONS, 0),
    "status": sample(
        "BOOKED", "canceled", "late-cancel", "", "\x00", "\ud800", Mark.NO_SHOW, Metric.SESSIONS, 0
    ),
    "timezone": TIMEZONES,
    "query": sample(None, "open", {"statuses": ["open"]}, PackStatus.OPEN, 1),
    "after": HOSTILE_IDS | sample("p1.", "p1.AA", "p1.!!", "p1." + "A" * 10_000, b"p1.cGsx", 7),
    "shared_with": st.lists(HOSTILE_IDS, min_size=1, max_size=3).map(tuple)
    | st.builds(lambda n: tuple(f"K{i}" for i in range(n)), sample(MAX_SHARED_WITH, 51, 10**4))
    | sample(
        "C2",  # a string is not a tuple of clients: not one client a letter
        "",
        b"C2",
        ("C1",),  # the owner, when the client is C1
        ("C2", "C2"),
        ["C2", "C3", "C2"],
        ("C2", None),
        ("C2", 7),
        (("C2",),),
        [b"C2"],
        ("\x00",),
        ("C2\x1b[2J",),
        (" C2",),
        ("\ud800",),
        (HUGE,),
        ("x" * 201,),
        (SneakyStr("C2"),),
        {"C2"},
        frozenset({"C2"}),
        {"C2": "C3"},
        Opaque(),
    )
    | st.builds(lambda: iter(["C2"])),
    "line": HOSTILE_IDS
    | sample(
        "physio",  # a service, not a line's name
        "massage",
        "PHYSIO",
        " Physio",
        "Physio ",
        "Physio\x00",
        "Massage\x1b[2J",
        "Pilates",
        SneakyStr("Physio"),
        b"Physio",
        ("Physio",),
        ["Massage"],
        {"Physio"},
        0,
        1,
        True,
        Opaque(),
    ),
}


def strategy_for(owner: str, name: str) -> Strategy | None:
    return OVERRIDES.get((owner, name), VALID.get(name))


@functools.cache
def changes_strategy() -> Strategy:
    """``**changes`` of a template edit: one or two terms, valid or hostile, sometimes a name
    that is no term at all."""
    names = list(attrs.fields_dict(PackTerms))
    valid: dict[str, Strategy] = {
        "name": sample("Renamed"),
        "allowance": sample(Build(Allowance.sessions, (12,))),
        "pricing": sample(Build(PerPack, (money("90"),))),
        "expiry": sample(Build(NoExpiry), Build(ExpiresOn, (date(2026, 12, 1),))),
        "eligible_services": sample(frozenset({"physio"}), frozenset()),
        "policies": sample(Build(Policies)),
        "description": sample("edited"),
        # the lines of the bundle template (2 + 1 sessions), or none
        "lines": sample((), physio_and_massage(2, 1)),
    }
    key = sample(*names) | sample("bogus", "version", "id", "\x00", "")
    value = {
        name: weighted((1, hostile()), (2, TERM_EXTREMES[name]))
        for name in names
        if name in TERM_EXTREMES
    }
    anything = hostile()

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for name in draw(st.lists(key, min_size=1, max_size=2, unique=True)):
            good = valid.get(name)
            bad = value.get(name, anything)
            chosen[name] = draw(good) if good is not None and draw(st.booleans()) else draw(bad)
        return chosen

    return build()


# Calls ---------------------------------------------------------------------------------------


@attrs.frozen
class Call:
    """One call under test: what, with which arguments, and whether any of them is hostile."""

    surface: str
    name: str
    run: Callable[[Mapping[str, Any]], Any]
    kwargs: Mapping[str, Any]
    hostile: bool
    context: str = ""

    def describe(self) -> str:
        args = ", ".join(f"{k}={short(v, 120)}" for k, v in self.kwargs.items())
        text = f"{self.name}({args})" + (f" [{self.context}]" if self.context else "")
        return cut(text, 400)


def draw_arguments(
    draw: st.DrawFn,
    parameters: list[inspect.Parameter],
    valid_for: Callable[[str], Strategy | None],
    extreme_for: Callable[[str], Strategy | None],
    hostile_counts: tuple[int, ...] = (0, 0, 1, 1, 1, 2, 3),
) -> tuple[dict[str, Any], bool]:
    """Arguments for ``parameters``: none, one (most often) or several hostile, the others
    valid or left out. A hostile argument is anything from :func:`hostile`, or an extreme of
    the parameter's own type (``extreme_for``) so that the call gets past its first checks."""
    names = [p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD]
    count = draw(sample(*hostile_counts)) if names else 0
    bad = {names[draw(st.integers(0, len(names) - 1))] for _ in range(count)}
    kwargs: dict[str, Any] = {}
    hostile_any = bool(bad)
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            edits = draw(changes_strategy())
            kwargs.update({k: v for k, v in edits.items() if k not in names})
            hostile_any = True
            continue
        valid = valid_for(parameter.name)
        optional = parameter.default is not inspect.Parameter.empty
        if parameter.name not in bad and valid is None and not optional:
            bad.add(parameter.name)  # nothing valid is known: hostile it is
            hostile_any = True
        if parameter.name in bad:
            extreme = extreme_for(parameter.name)
            use_extreme = extreme is not None and draw(st.integers(0, 2)) > 0
            kwargs[parameter.name] = draw(
                extreme if use_extreme and extreme is not None else hostile()
            )
        elif valid is not None and not (optional and draw(st.integers(0, 3)) == 0):
            kwargs[parameter.name] = draw(valid)
    return kwargs, hostile_any


@functools.cache
def public_methods() -> dict[str, list[inspect.Parameter]]:
    """Every public method of PackService, with its parameters (``self`` left out)."""
    return {
        name: list(inspect.signature(function).parameters.values())[1:]
        for name, function in inspect.getmembers(PackService, inspect.isfunction)
        if not name.startswith("_")
    }


def missing_strategies() -> list[str]:
    """``Owner.parameter`` for every parameter no strategy covers."""
    missing = [
        f"PackService.{name}({p.name})"
        for name, parameters in public_methods().items()
        for p in parameters
        if p.kind is not inspect.Parameter.VAR_KEYWORD and strategy_for(name, p.name) is None
    ]
    for name, (_, parameters) in constructors().items():
        missing += [
            f"{name}({p.name})"
            for p in parameters
            if p.kind is not inspect.Parameter.VAR_KEYWORD and model_strategy(name, p.name) is None
        ]
    return missing


def execute(call: Call, dump: Callable[[], Any], tally: Tally = TALLY) -> None:
    """Run one call and count its outcome; a refusal must leave ``dump()`` as it was."""
    before = dump()
    try:
        call.run(call.kwargs)
    except SessionPacksError as error:
        changed = differences(before, dump())
        if changed:
            tally.count(call.surface, "changed", hostile=call.hostile, call=call.name)
            tally.fail(
                call.surface,
                call.name,
                f"changed store after {type(error).__name__}",
                where(error),
                f"{error} (changed: {', '.join(changed[:5])})",
                call.describe(),
            )
        else:
            tally.count(call.surface, "refused", hostile=call.hostile, call=call.name)
            if len(str(error)) > 2_000:
                tally.notes[call.surface, "refusal message over 2,000 characters (R18)"] += 1
            if isinstance(error, StoreError | ConcurrencyError):
                # R18: no store error can follow an accepted input; one writer, no conflicts.
                tally.notes[call.surface, f"refused with {type(error).__name__}"] += 1
                tally.fail(
                    call.surface,
                    call.name,
                    type(error).__name__,
                    where(error),
                    str(error),
                    call.describe(),
                    failing=False,
                )
    except Exception as error:
        tally.count(call.surface, "foreign", hostile=call.hostile, call=call.name)
        changed = differences(before, dump())
        tally.fail(
            call.surface,
            call.name,
            type(error).__name__ + (" (store changed)" if changed else ""),
            where(error),
            cut(str(error), 300),
            call.describe(),
        )
    else:
        tally.count(call.surface, "accepted", hostile=call.hostile, call=call.name)


def strings_in(value: Any, found: set[str]) -> set[str]:
    """Every str inside ``value`` (through Builds): the ids a memory dump probes."""
    if isinstance(value, str):
        found.add(value)
    elif isinstance(value, Build):
        for item in (*value.args, *value.kwargs.values()):
            strings_in(item, found)
    elif isinstance(value, tuple | list | frozenset | set):
        for item in value:
            strings_in(item, found)
    return found


# Model constructors --------------------------------------------------------------------------

FUZZED_CLASSES: tuple[type, ...] = (
    Allowance,
    JournalAccounts,
    Appointment,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    FixedClock,
    InMemoryStore,
    Money,
    NoExpiry,
    PackService,
    PackTemplate,
    PackTerms,
    Period,
    PerPack,
    PackQuery,
    PerSession,
    Policies,
    Practice,
    PreferPack,
    PreferService,
    PreferTemplate,
    Service,
    Tier,
    Migration,
    BundleLine,
)
# Public names that are not fuzzed as constructors (besides the errors), and why.
NOT_CONSTRUCTORS = {
    **dict.fromkeys(
        (
            "Event",
            "ExpiringSoon",
            "ExpiryExtended",
            "HoldEnded",
            "LineExhausted",
            "LowBalance",
            "PackAdjusted",
            "PackClosed",
            "PackExhausted",
            "PackExpired",
            "PackHeld",
            "PackOpened",
            "PackShared",
            "PackTransferred",
            "PackUnshared",
            "PackVoided",
            "RecordedEvent",
            "SessionUsed",
            "UsageMarked",
            "UsageReleased",
            "UsageRescheduled",
        ),
        "events: made by the library, read by hosts",
    ),
    **dict.fromkeys(
        (
            "Assignment",
            "Choice",
            "Closure",
            "Decision",
            "Entry",
            "InvoiceLine",
            "NoPack",
            "OpenPack",
            "PackFigures",
            "PackState",
            "JournalLine",
            "Report",
            "ReportLine",
            "Usage",
            "UsePack",
            "PackPage",
            "replay",
        ),
        "results and ledger values: made by the library",
    ),
    **dict.fromkeys(("AppointmentStatus", "Mark", "Metric", "PackStatus", "Rule"), "enums"),
    **dict.fromkeys(("Clock", "PackRepository"), "protocols"),
    "SystemClock": "takes no arguments",
    "CommandRecord": "a store's record of an idempotent command (R27): made by the service",
}


def _open_with(service: PackService) -> Any:
    return service.open_pack("C1", terms=template_terms()["single"])


def _service_then_open(**kwargs: Any) -> Any:
    """PackService accepts what it is given only if it can work with it: open one pack."""
    return _open_with(PackService(**kwargs))


def _practice_of(practice_id: Any, timezone: Any = None) -> Any:
    return InMemoryStore().practice(practice_id, timezone)


@functools.cache
def constructors() -> dict[str, tuple[Callable[..., Any], list[inspect.Parameter]]]:
    """Every fuzzed constructor and public classmethod (``Money.rounded``...)."""
    found: dict[str, tuple[Callable[..., Any], list[inspect.Parameter]]] = {}
    for cls in FUZZED_CLASSES:
        if cls is PackService:
            target: Callable[..., Any] = _service_then_open
            parameters = list(inspect.signature(PackService).parameters.values())
        elif cls is InMemoryStore:
            target = _practice_of
            parameters = list(inspect.signature(InMemoryStore.practice).parameters.values())[1:]
        else:
            target, parameters = cls, list(inspect.signature(cls).parameters.values())
        found[cls.__name__] = (target, parameters)
        for name, member in vars(cls).items():
            if isinstance(member, classmethod) and not name.startswith("_"):
                method = getattr(cls, name)
                found[f"{cls.__name__}.{name}"] = (
                    method,
                    list(inspect.signature(method).parameters.values()),
                )

    return found


JOURNAL_ACCOUNTS = tuple(attrs.fields_dict(JournalAccounts))
MODEL_VALID: dict[str, Strategy] = {
    **{f"JournalAccounts.{n}": sample("Revenue", "4000 Sales") for n in JOURNAL_ACCOUNTS},
    "Money.amount": sample("120.00", "0", "450", 5, Decimal("1.50"), " 7 "),
    "Money.rounded.amount": sample("1.005", Decimal("2.675"), 3, "-0.5"),
    "currency": sample("AUD", "JPY", "USD", "BHD"),
    "minor": st.integers(-(10**6), 10**6),
    "metric": sample(*Metric),
    "Allowance.amount": sample(10, timedelta(hours=5), money("500")),
    "count": st.integers(1, 20),
    "duration": sample(timedelta(hours=5), timedelta(minutes=90)),
    "value": valid_money(),
    "years": st.integers(0, 3),
    "months": st.integers(0, 3),
    "weeks": st.integers(0, 3),
    "days": st.integers(0, 3),
    "text": sample("3 months", "P1M", "1 year 2 weeks", "P1Y2M3W4D", "2 weeks and 1 day"),
    "date": days(date(2026, 1, 1), date(2027, 12, 31)),
    "day": days(date(2026, 1, 1), date(2027, 12, 31)),
    "period": sample(Build(Period, kwargs={"months": 3}), Build(Period, kwargs={"days": 10})),
    "price": valid_money(),
    "first": valid_money(),
    "later": valid_money(),
    "other": valid_money(),
    "from_session": st.integers(1, 5),
    "tiers": sample(
        (Build(Tier, (1, money("150"))),),
        (Build(Tier, (1, money("150"))), Build(Tier, (2, money("120")))),
        [Build(Tier, (1, money("1")))],
    ),
    "late_cancel_notice": sample(timedelta(hours=24), timedelta(0)),
    "late_cancel_consumes": st.booleans(),
    "no_show_consumes": st.booleans(),
    "low_balance_at": sample(None, 1, timedelta(hours=1), money("50")),
    "remind_days_before_expiry": sample(None, 1, 14, 366),
    "name": sample("10 x Physio", "Massage"),
    "allowance": sample(
        Build(Allowance.sessions, (10,)),
        Build(Allowance.hours, (timedelta(hours=5),)),
        Build(Allowance.money, (money("500"),)),
    ),
    "pricing": sample(
        Build(PerPack, (money("100"),)),
        Build(PerSession.flat, (money("120"),)),
        Build(PerSession.reduced, (money("150"), money("120"))),
    ),
    "expiry": sample(
        Build(NoExpiry),
        Build(ExpiresOn, (date(2026, 6, 30),)),
        Build(ExpiresAfterOpening, (Build(Period, kwargs={"months": 6}),)),
    ),
    "eligible_services": sample(frozenset(), frozenset({"physio"}), ["physio", "massage"]),
    "policies": sample(Build(Policies), Build(Policies, kwargs={"late_cancel_consumes": True})),
    "description": sample("", "A pack"),
    "id": sample("t1", "physio", "A1", "clinic-1"),
    "terms": valid_terms(),
    "version": st.integers(1, 3),
    "Service.name": sample("Physio"),
    "Service.duration": sample(timedelta(minutes=60)),
    "Appointment.duration": sample(timedelta(minutes=60)),
    "client_id": sample("C1"),
    "service_id": sample("physio"),
    "template_id": sample("physio10"),
    "pack_id": sample("pk1"),
    "start": instants(),
    "Appointment.price": valid_money(),
    "timezone": sample("Australia/Sydney", "UTC", "America/New_York"),
    "practice_id": sample("clinic-1", "clinic-2"),
    "current": sample(NOW),
    "to": instants(),
    "by": sample(timedelta(hours=1), timedelta(days=30)),
    "repository": st.builds(lambda: Build(_practice_of, ("clinic-1", ZONE))),
    "clock": st.none() | VALID_CLOCKS,
    "retries": st.integers(0, 5),
    "new_pack_id": st.builds(counter_ids),
    "PackQuery.statuses": st.none() | st.sets(sample(*PackStatus)),
    "PackQuery.as_of": st.none() | instants(),
    "PackQuery.expiring_from": st.none() | days(date(2026, 1, 1), date(2026, 6, 1)),
    "PackQuery.expiring_to": st.none() | days(date(2026, 6, 1), date(2027, 1, 1)),
    "PackQuery.at_most_left": sample(None, 0, 3, timedelta(hours=1), money("50")),
    "PackQuery.template_id": st.none() | sample("physio10"),
    "Migration.opened_on": days(date(2025, 6, 1), date(2026, 1, 15)),
    "Migration.used": sample(0, 1, 6, timedelta(hours=2), money("50")),
    "Migration.numbered": st.none() | st.integers(0, 12),
    "Migration.expires_on": st.none() | days(date(2026, 2, 1), date(2026, 12, 1)),
    # R24: no lines, or 7 + 3 sessions, which the 10 sessions of "allowance" add up to
    "lines": sample((), physio_and_massage(), physio_and_massage(2, 1)),
    "BundleLine.services": sample(
        frozenset({"physio"}), {"massage"}, ["physio", "massage"], ("pilates",)
    ),
}
MODEL_EXTREMES: dict[str, Strategy] = {
    **{
        f"JournalAccounts.{n}": sample(HUGE, "x" * 201, "\x00", "\ud800", " ", "", None, 1)
        for n in JOURNAL_ACCOUNTS
    },
    **dict.fromkeys(("id", "client_id", "service_id", "template_id", "pack_id"), HOSTILE_IDS),
    "practice_id": HOSTILE_IDS,
    "name": sample(HUGE, "x" * 201, "\x00", "\ud800", " ", "\x1b[2J"),
    "Money.amount": hostile_numbers() | sample("1e309", "1_000", "12,00", " ", "0x10", "1E+999999"),
    "Money.rounded.amount": hostile_numbers() | sample("1e309", "1E+999999", "9" * 5000),
    "minor": hostile_numbers(),
    "currency": sample("aud", "XXX", "AUD ", "", SneakyStr("AUD"), b"AUD", "\x00"),
    "Allowance.amount": TYPED_AMOUNTS,
    "count": hostile_numbers(),
    "duration": sample(*HOSTILE_DURATIONS),
    "value": HOSTILE_MONEY,
    **{k: hostile_numbers() for k in ("years", "months", "weeks", "days", "version")},
    "from_session": hostile_numbers(),
    "retries": hostile_numbers(),
    "text": sample(
        "99999999999999999999 years",
        "P99999999999Y",
        "1 month 99999999999 days",
        "9" * 5000 + " days",
        "P",
        "PT1H",
        "0 days",
        HUGE,
        "3 months\x00",
    ),
    "date": sample(*HOSTILE_DATES, datetime(2026, 6, 1, tzinfo=UTC)),
    "day": sample(*HOSTILE_DATES, datetime(2026, 6, 1, tzinfo=UTC)),
    "period": HOSTILE_PERIODS,
    **dict.fromkeys(("price", "first", "later", "other", "Appointment.price"), HOSTILE_MONEY),
    "tiers": sample(
        (),
        [],
        (Build(Tier, (2, money("1"))),),
        (Build(Tier, (1, money("1"))), Build(Tier, (1, money("2")))),
        (Build(Tier, (1, money("1"))), Build(Tier, (2, money("1", "USD")))),
        (Build(Tier, (1, money("1"))), Build(Tier, (2**63, money("1")))),
        iter([Build(Tier, (1, money("1")))]),
    ),
    "late_cancel_notice": sample(*HOSTILE_DURATIONS),
    "low_balance_at": TYPED_AMOUNTS,
    "remind_days_before_expiry": sample(0, -1, 367, 2**63, True, 7.5, "7"),
    "Migration.opened_on": sample(*HOSTILE_DATES, datetime(2026, 1, 1, tzinfo=UTC)),
    "Migration.used": TYPED_AMOUNTS,
    "Migration.numbered": sample(-1, 2**31, True, 1.5, "6"),
    "Migration.expires_on": sample(*HOSTILE_DATES, "2026-03-01"),
    **{k: TERM_EXTREMES[k] for k in ("allowance", "pricing", "expiry", "policies")},
    "terms": hostile_terms(),
    "start": hostile_instants(),
    "current": hostile_instants(),
    "to": hostile_instants(),
    "by": sample(*HOSTILE_DURATIONS),
    "timezone": TIMEZONES,
    "repository": sample(None, Opaque(), "clinic-1").map(lambda v: v)
    | st.builds(lambda: Build(InMemoryStore)),
    "clock": HOSTILE_CLOCKS | sample(Opaque(), "now"),
    "new_pack_id": sample(*HOSTILE_STRINGS, None, 7, b"pk").map(Returns) | sample("pk1", None, 5),
    "PackQuery.statuses": sample("open", ["open"], [PackStatus.OPEN, None], 3, b"x", Opaque()),
    "PackQuery.as_of": hostile_instants() | sample(*HOSTILE_DATES),
    "PackQuery.expiring_from": sample(*HOSTILE_DATES, datetime(2026, 6, 1, tzinfo=UTC)),
    "PackQuery.expiring_to": sample(*HOSTILE_DATES, "2026-06-01"),
    "PackQuery.at_most_left": TYPED_AMOUNTS | sample(-1, True, timedelta(-1), 1.5, "1"),
    "lines": HOSTILE_LINES,
    "BundleLine.services": sample(
        frozenset(),
        set(),
        [],
        "physio",
        b"physio",
        [1],
        [None],
        ["physio", ["massage"]],
        {"physio": 1},
        {HUGE},
        {"\x00"},
        {"\ud800"},
        {" physio"},
        {"x" * 201},
        {SneakyStr("physio")},
        None,
        7,
        Opaque(),
    )
    | st.builds(lambda n: frozenset(f"s{i}" for i in range(n)), sample(10**4)),
}


def model_strategy(owner: str, name: str) -> Strategy | None:
    cls = owner.split(".")[0]
    for key in (f"{owner}.{name}", f"{cls}.{name}", name):
        if key in MODEL_VALID:
            return MODEL_VALID[key]
    return None


def model_extreme(owner: str, name: str) -> Strategy | None:
    cls = owner.split(".")[0]
    for key in (f"{owner}.{name}", f"{cls}.{name}", name):
        if key in MODEL_EXTREMES:
            return MODEL_EXTREMES[key]
    return None


@st.composite
def model_calls(draw: st.DrawFn) -> Call:
    table = constructors()
    name = draw(sample(*table))
    target, parameters = table[name]
    kwargs, hostile_any = draw_arguments(
        draw,
        parameters,
        functools.partial(model_strategy, name),
        functools.partial(model_extreme, name),
        (0, 1, 1, 1, 2, 3),
    )

    def run(given: Mapping[str, Any]) -> Any:
        return target(**{k: resolve(v) for k, v in given.items()})

    return Call("model", name, run, kwargs, hostile_any)


def run_models() -> None:
    @scaled(MODEL_FACTOR)
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        for i in range(MODEL_CALLS):
            execute(data.draw(model_calls(), label=f"call {i}"), lambda: None)

    with timed("model"):
        fuzz()
    TALLY.done.add("model")


# PackService on a store ----------------------------------------------------------------------


@st.composite
def service_calls(draw: st.DrawFn, surface: str, repository: PackRepository, store: Any) -> Call:
    """A call of a public PackService method (or of the store's ``practice``), with a clock and
    a pack-id generator that may be hostile too."""
    methods = public_methods()
    name = draw(sample(*methods, "store.practice"))
    if name == "store.practice":
        parameters = list(inspect.signature(store.practice).parameters.values())
        kwargs, hostile_any = draw_arguments(
            draw, parameters, functools.partial(strategy_for, name), EXTREMES.get
        )

        def run_practice(given: Mapping[str, Any]) -> Any:
            return store.practice(**{k: resolve(v) for k, v in given.items()})

        return Call(surface, name, run_practice, kwargs, hostile_any)
    kwargs, hostile_any = draw_arguments(
        draw, methods[name], functools.partial(strategy_for, name), EXTREMES.get
    )
    clock_hostile = draw(st.integers(0, 9)) == 0
    clock = draw(HOSTILE_CLOCKS if clock_hostile else VALID_CLOCKS)
    ids_hostile = draw(st.integers(0, 9)) == 0
    ids: Callable[[], Any] = draw(hostile().map(Returns)) if ids_hostile else counter_ids()

    def run(given: Mapping[str, Any]) -> Any:
        service = PackService(repository, resolve(clock), new_pack_id=ids)
        return getattr(service, name)(**{k: resolve(v) for k, v in given.items()})

    context = ", ".join(
        part
        for part in (
            f"clock={clock!r}" if clock_hostile else "",
            f"new_pack_id={ids!r}" if ids_hostile else "",
        )
        if part
    )
    return Call(
        surface,
        f"PackService.{name}",
        run,
        kwargs,
        hostile_any or clock_hostile or ids_hostile,
        context,
    )


def run_service_memory() -> None:
    surface = "service-memory"

    @scaled(MEMORY_FACTOR)
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        store, repository = memory_repository()
        for i in range(MEMORY_CALLS):
            call = data.draw(service_calls(surface, repository, store), label=f"call {i}")
            probes = sorted(strings_in(call.kwargs, set()), key=len)[:8]
            execute(call, functools.partial(api_dump, repository, probes, store))

    with timed(surface):
        fuzz()
    TALLY.done.add(surface)


def run_service_sqlite(folder: Path) -> None:
    surface = "service-sqlite"
    prepared = prepared_sqlite(folder)

    @scaled(SQLITE_FACTOR)
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        path = fresh_copy(prepared, folder)
        dump = TableDump(path)
        try:
            with SqliteStore(path) as store:
                repository = store.practice(PRACTICE)
                for i in range(SQLITE_CALLS):
                    call = data.draw(service_calls(surface, repository, store), label=f"call {i}")
                    execute(call, dump)
        finally:
            dump.close()
            remove_db(path)

    with timed(surface):
        fuzz()
    TALLY.done.add(surface)


# The grid: every parameter given every kind of hostile value ----------------------------------
#
# Random draws reach a given parameter with a given kind of value only now and then; the grid
# makes sure of it. Every public method and constructor is called once per parameter and
# hostile value, its other arguments valid; every method also runs on each hostile clock.


def grid_values(*, store: bool = False) -> list[Any]:
    """One value of each hostile kind (made afresh: some are mutable); with ``store``, only
    those a database driver could choke on, for the slower SQLite grid."""
    values: list[Any] = [
        None,
        [],
        {},
        Opaque(),
        1.5,
        float("nan"),
        Decimal("NaN"),
        2**64,
        10**5000,
        "",
        "\x00",
        "\ud800",
        HUGE,
        "'\"; --",
        SneakyStr("pk1"),
    ]
    if not store:
        values += [
            b"pk1",
            set(),
            True,
            -(2**63) - 1,
            datetime(2026, 3, 2, 9),
            datetime(1, 1, 1, tzinfo=PLUS14),
            date.max,
            timedelta.max,
            " ",
            "x" * 201,
        ]
    return values


GRID_DEFAULTS: dict[str, Any] = {
    "template_id": "single",
    "terms": Build(lambda: template_terms()["single"], name="template_terms_single"),
    "client_id": "C1",
    "preference": Build(PreferTemplate, ("physio10",)),
    "explicit": None,
    "pack_id": "pk1",
    "to_pack_id": "pk1",
    "appointment": Build(
        Appointment,
        ("N1", "C1", "physio", datetime(2026, 2, 20, 10, tzinfo=SYDNEY), timedelta(hours=1)),
        {"price": money("120")},
    ),
    "appointment_id": "A2",
    "appointments": [],
    "size": 2,
    "seconds": 1.0,
    "start": datetime(2026, 3, 5, 10, tzinfo=SYDNEY),
    "why": Mark.NO_SHOW,
    "amount": 1,
    "until": date(2027, 6, 30),
    "reason": "grid",
    "as_of": date(2026, 2, 10),
    "position": 0,
    "charged_on_open": True,
    "practice_id": PRACTICE,
}
GRID_METHOD_DEFAULTS: dict[tuple[str, str], Any] = {
    ("add_template", "template_id"): "t-grid",
    ("void", "pack_id"): "pk7",  # open, nothing used: voidable
    ("report", "end"): date(2026, 4, 1),
    ("report", "as_of"): None,
    ("journal", "end"): date(2026, 4, 1),
    ("journal", "as_of"): None,
    ("pack", "as_of"): None,
    ("client_packs", "as_of"): None,
    ("figures", "as_of"): None,
    ("invoice_line", "as_of"): None,
    ("open_pack", "migrated"): None,
    ("transfer", "new_pack_id"): None,
    ("transfer", "client_id"): "C3",
    ("open_pack", "shared_with"): (),
    ("share", "client_id"): "C2",
    ("unshare", "client_id"): "C2",
    ("hold", "start"): date(2026, 4, 1),
    ("hold", "until"): date(2026, 4, 15),
    ("end_hold", "on"): date(2026, 4, 5),
    # R24: the line grid runs on the bundle, whose lines have names to miss
    ("adjust", "pack_id"): BUNDLE_PACK,
    ("adjust", "line"): "Massage",
}
# Left out unless under test, and what is left out instead when they are.
GRID_OMITTED = {
    "open_pack": {"terms", "pack_id"},
    "assign": {"template_id"},
    "add_to_invoice": {"template_id"},
}
GRID_INSTEAD = {
    ("open_pack", "terms"): "template_id",
    ("assign", "template_id"): "pack_id",
    ("add_to_invoice", "template_id"): "pack_id",
}
GRID_CLOCKS: tuple[Any, ...] = (
    *(Build(FixedClock, (t,)) for t in HOSTILE_DATETIMES[3:13]),
    NaiveClock(datetime(2026, 2, 16, 9)),
    NaiveClock(date(2026, 2, 16)),
    NaiveClock(None),
)


@functools.cache
def minimal(strategy: Strategy) -> Any:
    """The simplest value ``strategy`` draws: the default of a parameter the grid has none for."""
    return find(strategy, lambda _: True, settings=settings(database=None, max_examples=10))


Default = Callable[[str], Any]  # a parameter's valid default, or inspect.Parameter.empty


def service_default(method: str, name: str) -> Any:
    if (method, name) in GRID_METHOD_DEFAULTS:
        return GRID_METHOD_DEFAULTS[method, name]
    if name in GRID_DEFAULTS:
        return GRID_DEFAULTS[name]
    strategy = strategy_for(method, name)
    return inspect.Parameter.empty if strategy is None else minimal(strategy)


def model_default(owner: str, name: str) -> Any:
    strategy = model_strategy(owner, name)
    return inspect.Parameter.empty if strategy is None else minimal(strategy)


def plain_arguments(
    method: str, parameters: list[inspect.Parameter], default: Default, under_test: str = ""
) -> dict[str, Any]:
    """Valid arguments for every parameter but ``under_test``."""
    omitted = (GRID_OMITTED.get(method, set()) - {under_test}) | {
        under_test,
        GRID_INSTEAD.get((method, under_test), ""),
    }
    kwargs: dict[str, Any] = {}
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD or parameter.name in omitted:
            continue
        value = default(parameter.name)
        if value is not inspect.Parameter.empty:
            kwargs[parameter.name] = value
    return kwargs


def grid_arguments(
    method: str, parameters: list[inspect.Parameter], default: Default, values: list[Any]
) -> Iterator[dict[str, Any]]:
    """For each parameter and value: that value there, valid defaults elsewhere. For
    ``**changes`` (a template edit) the value goes to the term ``name``."""
    for target in parameters:
        base = plain_arguments(method, parameters, default, target.name)
        key = "name" if target.kind is inspect.Parameter.VAR_KEYWORD else target.name
        for value in values:
            yield {**base, key: value}


def _service_call(
    surface: str,
    repository: PackRepository,
    name: str,
    kwargs: dict[str, Any],
    *,
    clock: Any = None,
    ids: Any = None,
) -> Call:
    def run(given: Mapping[str, Any]) -> Any:
        service = PackService(
            repository,
            FixedClock(NOW) if clock is None else resolve(clock),
            new_pack_id=counter_ids() if ids is None else ids,
        )
        return getattr(service, name)(**{k: resolve(v) for k, v in given.items()})

    context = f"clock={clock!r}" if clock is not None else f"new_pack_id={ids!r}" if ids else ""
    return Call(surface, f"PackService.{name}", run, kwargs, True, context)


OpenStore = Callable[[], tuple[Any, PackRepository, Callable[[Call], Any], Callable[[], None]]]


def run_grid(surface: str, open_store: OpenStore, values: list[Any]) -> None:
    """The grid on a store, a fresh practice per method: every parameter with every value,
    every hostile clock, and for the methods that open packs every hostile ``new_pack_id``;
    then the store's own ``practice``."""
    with timed(surface):
        for name, parameters in public_methods().items():
            store, repository, dump, close = open_store()
            try:
                default = functools.partial(service_default, name)
                calls = [
                    _service_call(surface, repository, name, kwargs)
                    for kwargs in grid_arguments(name, parameters, default, values)
                ]
                plain = plain_arguments(name, parameters, default)
                calls += [
                    _service_call(surface, repository, name, plain, clock=c) for c in GRID_CLOCKS
                ]
                if name in ("open_pack", "book", "assign", "add_to_invoice"):
                    calls += [
                        _service_call(surface, repository, name, plain, ids=Returns(v))
                        for v in values
                    ]
                for call in calls:
                    execute(call, functools.partial(dump, call))
            finally:
                close()
        store, repository, dump, close = open_store()
        try:
            parameters = list(inspect.signature(store.practice).parameters.values())
            for kwargs in grid_arguments("practice", parameters, VALID.get, values):
                call = Call(surface, "store.practice", _store_practice(store), kwargs, True)
                execute(call, functools.partial(dump, call))
        finally:
            close()
    TALLY.done.add(surface)


def _store_practice(store: Any) -> Callable[[Mapping[str, Any]], Any]:
    return lambda given: store.practice(**{k: resolve(v) for k, v in given.items()})


def open_memory() -> tuple[Any, PackRepository, Callable[[Call], Any], Callable[[], None]]:
    store, repository = memory_repository()

    def dump(call: Call) -> Any:
        probes = sorted(strings_in(call.kwargs, set()), key=len)[:8]
        return api_dump(repository, probes, store)

    return store, repository, dump, lambda: None


def sqlite_opener(folder: Path) -> OpenStore:
    prepared = prepared_sqlite(folder)

    def open_sqlite() -> tuple[Any, PackRepository, Callable[[Call], Any], Callable[[], None]]:
        path = fresh_copy(prepared, folder)
        tables = TableDump(path)
        store = SqliteStore(path)

        def close() -> None:
            store.close()
            tables.close()
            remove_db(path)

        return store, store.practice(PRACTICE), lambda call: tables(), close

    return open_sqlite


def run_model_grid() -> None:
    surface = "grid-model"
    with timed(surface):
        for name, (target, parameters) in constructors().items():

            def run(given: Mapping[str, Any], target: Callable[..., Any] = target) -> Any:
                return target(**{k: resolve(v) for k, v in given.items()})

            default = functools.partial(model_default, name)
            for kwargs in grid_arguments(name, parameters, default, grid_values()):
                execute(Call(surface, name, run, kwargs, True), lambda: None)
    TALLY.done.add(surface)


# The command line ----------------------------------------------------------------------------


@functools.cache
def cli_leaves() -> dict[str, argparse.ArgumentParser]:
    """Every verb's parser by its words (``"pack open"``), walked from ``build_parser()``."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not groups:
            found[" ".join(words)] = parser
            return
        seen: set[int] = set()
        for name, child in groups[0].choices.items():
            if id(child) not in seen:
                seen.add(id(child))
                walk(child, (*words, name))

    walk(build_parser(), ())
    return found


CLI_HOSTILE: tuple[str, ...] = (
    *(s for s in HOSTILE_STRINGS if argv_can_hold(s)),
    "--",
    "-",
    "-1",
    "+1",
    "0",
    "nan",
    "-nan",
    "inf",
    "-inf",
    "1e309",
    "-1e309",
    "99999999999999999999",
    "9" * 5000,
    "1E+26 AUD",
    "NaN AUD",
    "inf AUD",
    "120.00 XXX",
    "120.00 AUD USD",
    "AUD",
    "2=",
    "0=1",
    "99999999999999999999=1",
    "2=1E+26",
    "99999999 years",
    "P99999999999999Y",
    "0 months",
    "0001-01-01",
    "9999-12-31",
    "1899-12-31",
    "2200-01-01",
    "0001-01-01T00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2026-03-02T09:00",
    "1899-12-31T23:59Z",
    "2200-01-01T00:00Z",
    "PT99999999999999H",
    "-99999999999999h",
    "99999999999999m",
    "0m",
    "\udcff",
    "\udc80abc",
    "--json",
    # bundle lines (R24): malformed, overlapping, of no metric, past every limit
    "=:",
    "A=:1",
    "=a:1",
    "A=a,,b:1",
    "A=a:1:2",
    "A=a,a:1",
    "A=a:0",
    "A=a:-1",
    "A=a:99999999999999999999",
    "A=a:PT2562047788H",
    "A=a:1E+26 AUD",
    "A=a:nan",
    "A\udcff=a:1",
    "A=a\x1b[2J:1",
    "A=" + ",".join(f"s{n}" for n in range(2_000)) + ":1",
)
CLI_TYPE_VALID: dict[str, tuple[str, ...]] = {
    "instant": ("2026-03-02T09:00+11:00", "2026-02-20T15:30+11:00", "2026-02-10T10:00Z"),
    "day": ("2026-06-30", "2026-02-10", "2026-12-31"),
    "duration": ("60m", "1h30m", "PT45M"),
    "money": ("120.00 AUD", "120.00", "AUD 450", "0"),
    "period": ("3 months", "P1M", "2 weeks"),
    "positive_int": ("1", "3", "10"),
    "whole": ("0", "2", "5"),
    "currency": ("AUD", "aud"),
    "tier": ("2=100.00", "3=90 AUD"),
    # --line of a bundle's terms (R24); pack adjust's --line is a name (CLI_DEST_VALID)
    "bundle_line": (
        "Physio=physio:2",
        "Massage=massage:1",
        "Rehab=physio,massage:90m",
        "Shop=retail:50.00 AUD",
    ),
    "_seconds": ("0", "0.01"),
    "timezone": (ZONE,),
    "int": ("1", "7"),
}
CLI_DEST_VALID: dict[str, tuple[str, ...]] = {
    "client_id": CLIENT_IDS,
    "client": CLIENT_IDS,
    "pack_id": PACK_IDS,
    "pack": PACK_IDS,
    "to": PACK_IDS,
    "template_id": TEMPLATE_IDS,
    "template": TEMPLATE_IDS,
    "appointment_id": (*APPOINTMENT_IDS, SHARED_APPOINTMENT),
    "service": SERVICE_IDS,
    "reason": ("goodwill", "moved away"),
    "name": ("Pack", "10 x Physio"),
    "description": ("a pack",),
    # import --column: the good CSV has the import's own headers
    "column": ("start=start", "appointment_id=appointment_id", "template_id=pack_id", "x=start"),
    # import --packs-column: the good packs CSV has the packs file's own headers
    "packs_column": ("opened_on=opened_on", "client_id=client_id", "used=pack_id", "x=used"),
    "low_balance": ("1", "1h", "50.00", "none"),
    "remind_days": ("7", "366", "none"),
    "amount": ("+1", "-1", "30m", "-30m", "10.00", "-10.00"),
    "idempotency_key": ("k1", "k2"),
    "share_with": ("C2", "C9", "C1"),  # pack open --share-with: C1 is often the owner
    "line": ("Massage", "Physio", "Nope"),  # pack adjust --line: pkb's lines, or no line
}
CLI_DEST_FIRST: dict[str, tuple[str, ...]] = {
    "as_of": ("2026-02-10", "2026-02-16"),  # a sweep cannot look ahead
    "until": ("2026-06-30", "2027-01-31"),  # an extension moves the expiry later
}
PATH_DESTS = ("file", "rejects", "output", "html", "packs", "packs_rejects")


class CliWorld:
    """Paths a CLI example works with: its database, a good CSV, a folder for output files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.out = folder / "out"
        self.out.mkdir(exist_ok=True)
        self.good_csv = folder / "good.csv"
        if not self.good_csv.exists():
            write_rows(self.good_csv, [good_row("Q1", 0), good_row("Q2", 1)])
        self.good_packs = folder / "good-packs.csv"
        if not self.good_packs.exists():
            write_rows(self.good_packs, [good_pack_row("QP1")], PACK_HEADER, PACK_HEADER)

    def path_value(self, dest: str, text: str | None) -> str:
        if text is None:
            good = {"file": self.good_csv, "packs": self.good_packs}
            return str(good.get(dest, self.out / f"{dest}.out"))
        return str(self.out / (text.replace("/", "_") or "_"))


def cli_value(
    world: CliWorld, action: argparse.Action, draw: st.DrawFn, rate: int
) -> tuple[str, bool]:
    """A value for ``action``: valid for its type or destination, or (``rate`` times in ten)
    hostile."""
    hostile_value = draw(CLI_HOSTILE_VALUES)
    choose_hostile = draw(st.integers(0, 9)) < rate
    if action.dest in PATH_DESTS:
        return world.path_value(action.dest, hostile_value if choose_hostile else None), (
            choose_hostile
        )
    if choose_hostile:
        return hostile_value, True
    if action.choices is not None:
        return str(draw(sample(*action.choices))), False
    kind = getattr(action.type, "__name__", None)
    pool = (
        CLI_DEST_FIRST.get(action.dest)
        or CLI_TYPE_VALID.get(kind or "")
        or CLI_DEST_VALID.get(action.dest)
        or ("x1", "C1")
    )
    return draw(sample(*pool)), False


CLI_HOSTILE_VALUES = weighted((3, sample(*CLI_HOSTILE)), (1, hostile_text(argv=True)))
CLI_PRACTICES = weighted((9, st.just(PRACTICE)), (1, sample(*CLI_HOSTILE)))
CLI_ZONES = weighted((17, st.none()), (2, st.just(ZONE)), (1, sample(*CLI_HOSTILE)))
CLI_NOWS = weighted((16, st.just(NOW_TEXT)), (2, st.none()), (2, sample(*CLI_HOSTILE)))


@attrs.frozen
class CliCall:
    words: str
    argv: list[str]
    hostile: bool
    checks_store: bool


def _excluded(draw: st.DrawFn, parser: argparse.ArgumentParser) -> set[int]:
    """Of each group of exclusive options one at most, unless several on purpose (1 in 10):
    the ids of the actions left out."""
    excluded: set[int] = set()
    for group in parser._mutually_exclusive_groups:
        members = group._group_actions
        one_only: int = draw(st.integers(0, 9))  # 0: several of them, on purpose
        if members and one_only:
            keep: int = draw(st.integers(0, len(members) - 1))
            excluded |= {id(a) for i, a in enumerate(members) if i != keep}
    return excluded


def _option(
    draw: st.DrawFn, world: CliWorld, action: argparse.Action, rate: int
) -> tuple[list[str], bool]:
    """The words of one option (none if left out), and whether a value of it is hostile."""
    flag = draw(sample(*action.option_strings))
    if action.nargs == 0:
        return ([flag] if draw(st.integers(0, 9)) < 3 else []), False
    words: list[str] = []
    hostile_any = False
    present = draw(st.integers(0, 19)) < (19 if action.required else 8)
    repeats = draw(st.integers(1, 2)) if isinstance(action, argparse._AppendAction) else 1
    for _ in range(repeats if present else 0):
        value, bad = cli_value(world, action, draw, rate)
        hostile_any |= bad
        words += [f"{flag}={value}"] if draw(st.booleans()) else [flag, value]
    return words, hostile_any


def _verb_arguments(
    draw: st.DrawFn, world: CliWorld, parser: argparse.ArgumentParser, rate: int
) -> tuple[list[str], list[str], bool]:
    """Options and positionals for one verb, and whether any value is hostile."""
    hostile_any = False
    options: list[str] = []
    positionals: list[str] = []
    excluded = _excluded(draw, parser)
    for action in parser._actions:
        if action.dest in GLOBAL_DEFAULTS or isinstance(action, argparse._HelpAction):
            continue
        if id(action) in excluded:
            continue
        if not action.option_strings:
            if action.nargs == "?" and draw(st.booleans()):
                continue
            value, bad = cli_value(world, action, draw, rate)
            positionals.append(value)
            hostile_any |= bad
            continue
        words, bad = _option(draw, world, action, rate)
        options += words
        hostile_any |= bad
    return options, positionals, hostile_any


def _common_options(draw: st.DrawFn, db: Path) -> tuple[list[str], bool]:
    """The options every verb takes: the store, practice, zone, clock and --json."""
    common: list[str] = ["--db", str(db)]
    practice = draw(CLI_PRACTICES)
    hostile_any = practice != PRACTICE
    common += [f"--practice={practice}"]
    zone = draw(CLI_ZONES)
    if zone is not None:
        common.append(f"--timezone={zone}")
        hostile_any |= zone != ZONE
    now = draw(CLI_NOWS)
    if now is not None:
        common.append(f"--now={now}")
        hostile_any |= now != NOW_TEXT
    if draw(st.booleans()):
        common.append("--json")
    return common, hostile_any


@st.composite
def cli_calls(draw: st.DrawFn, world: CliWorld, db: Path) -> CliCall:
    leaves = cli_leaves()
    words = draw(sample(*leaves))
    rate = draw(sample(0, 1, 1, 2, 4))  # in ten: none, one or several hostile values
    options, positionals, hostile_verb = _verb_arguments(draw, world, leaves[words], rate)
    common, hostile_common = _common_options(draw, db)
    before = draw(st.booleans())
    separator = ["--"] if positionals and draw(st.integers(0, 3)) == 0 else []
    argv = [
        *(common if before else []),
        *words.split(),
        *options,
        *([] if before else common),
        *separator,
        *positionals,
    ]
    if "--follow" in argv:  # never poll for ever
        argv += ["--max-polls", "1", "--interval", "0"]
    hostile_any = hostile_verb or hostile_common
    return CliCall(words, argv, hostile_any, checks_store=words != "import")


def argv_text(argv: list[str]) -> str:
    """A command line as a person would read it; long or odd words as their ``repr``."""
    words = [w if w.isprintable() and len(w) <= 60 and w else short(w, 60) for w in argv]
    return cut(" ".join(words), 400)


def run_cli(argv: list[str]) -> tuple[int | None, str, BaseException | None]:
    """``main(argv)`` in-process: the exit status, everything printed, and what it raised."""
    out, err, loose = io.StringIO(), io.StringIO(), io.StringIO()
    status: int | None = None
    raised: BaseException | None = None
    with contextlib.redirect_stdout(loose), contextlib.redirect_stderr(loose):
        try:
            status = main(argv, out=out, err=err)
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else -1
        except Exception as error:
            raised = error
    return status, out.getvalue() + err.getvalue() + loose.getvalue(), raised


def judge_cli(
    surface: str,
    name: str,
    argv: list[str],
    hostile_input: bool,
    dump: Callable[[], Any] | None,
    tally: Tally = TALLY,
) -> str:
    """Run ``argv`` and count its outcome, which it returns."""
    before = dump() if dump is not None else None
    status, printed, raised = run_cli(argv)
    shown = argv_text(argv)
    if raised is not None or status not in (0, 1, 2) or "Traceback" in printed:
        tally.count(surface, "foreign", hostile=hostile_input, call=name)
        if raised is not None:
            kind, spot, message = type(raised).__name__, where(raised), str(raised)
        elif "Traceback" in printed:
            kind, spot = traceback_where(printed)
            message = printed.strip().splitlines()[-1]
        else:
            kind, spot, message = f"exit status {status}", "-", printed[-200:]
        tally.fail(surface, name, kind, spot, message, shown)
        return "foreign"
    if status != 0 and dump is not None:
        changed = differences(before, dump())
        if changed:
            tally.count(surface, "changed", hostile=hostile_input, call=name)
            tally.fail(
                surface,
                name,
                f"changed store after exit {status}",
                "-",
                f"{printed.strip()[-200:]} (changed: {', '.join(changed[:5])})",
                shown,
            )
            return "changed"
    outcome = "accepted" if status == 0 else "refused"
    tally.count(surface, outcome, hostile=hostile_input, call=name)
    return outcome


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Work in ``folder``, so that a relative path a verb writes lands there, with the parser
    built once: building it is most of an in-process run, and ``main`` is otherwise the same."""
    here = Path.cwd()
    os.chdir(folder)
    try:
        with mock.patch.object(cli_app, "build_parser", functools.cache(build_parser)):
            yield
    finally:
        os.chdir(here)


def run_cli_surface(folder: Path) -> None:
    surface = "cli"
    prepared = prepared_sqlite(folder)
    world = CliWorld(folder)

    @scaled(CLI_FACTOR)
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        db = fresh_copy(prepared, folder)
        dump = TableDump(db)
        try:
            for i in range(CLI_CALLS):
                call = data.draw(cli_calls(world, db), label=f"argv {i}")
                judge_cli(
                    surface,
                    call.words,
                    call.argv,
                    call.hostile,
                    dump if call.checks_store else None,
                )
        finally:
            dump.close()
            remove_db(db)

    with timed(surface), inside(world.out):
        fuzz()
    TALLY.done.add(surface)


CLI_GRID_VALUES = ("", "\udcff", "-1", "1e309", "99999999999999h", "0001-01-01T00:00+14:00", HUGE)


def cli_default(world: CliWorld, action: argparse.Action) -> str:
    """The first valid value of ``action`` (a path in the work folder for paths)."""
    if action.dest in PATH_DESTS:
        return world.path_value(action.dest, None)
    if action.choices is not None:
        return str(next(iter(action.choices)))
    kind = getattr(action.type, "__name__", None)
    pool = (
        CLI_DEST_FIRST.get(action.dest)
        or CLI_TYPE_VALID.get(kind or "")
        or CLI_DEST_VALID.get(action.dest)
        or ("x1",)
    )
    return pool[0]


def cli_grid(world: CliWorld, db: Path, words: str) -> Iterator[list[str]]:
    """Each option and positional of a verb given each grid value; the verb's required options
    and positionals valid, the others left out."""
    parser = cli_leaves()[words]
    actions = [
        a
        for a in parser._actions
        if a.dest not in GLOBAL_DEFAULTS and not isinstance(a, argparse._HelpAction)
    ]
    for target in actions:
        if target.nargs == 0:
            continue  # a flag takes no value
        for value in CLI_GRID_VALUES:
            options: list[str] = []
            positionals: list[str] = []
            for action in actions:
                if action is target:
                    text = (
                        world.path_value(action.dest, value) if action.dest in PATH_DESTS else value
                    )
                elif (action.option_strings and not action.required) or action.nargs == 0:
                    continue
                else:
                    text = cli_default(world, action)
                if action.option_strings:
                    options.append(f"{action.option_strings[0]}={text}")  # "=": "-1" is a value
                else:
                    positionals.append(text)
            yield [
                *("--db", str(db), "--practice", PRACTICE, "--now", NOW_TEXT),
                *words.split(),
                *options,
                "--",
                *positionals,
            ]


def run_cli_grid(folder: Path) -> None:
    surface = "grid-cli"
    prepared = prepared_sqlite(folder)
    world = CliWorld(folder)
    with timed(surface), inside(world.out):
        for words in cli_leaves():
            db = fresh_copy(prepared, folder)
            dump = TableDump(db)
            try:
                for argv in cli_grid(world, db, words):
                    judge_cli(surface, words, argv, True, dump if words != "import" else None)
            finally:
                dump.close()
                remove_db(db)
    TALLY.done.add(surface)


# CSV import ----------------------------------------------------------------------------------

CSV_HEADER = (*transfer.COLUMNS, *transfer.OPTIONAL)


def good_row(appointment_id: str, hour: int) -> dict[str, str]:
    start = datetime(2026, 2, 9, 8, tzinfo=SYDNEY) + timedelta(hours=hour)
    return {
        "appointment_id": appointment_id,
        "client_id": BIG_CLIENT,
        "service_id": "physio",
        "start": start.isoformat(),
        "duration": "60m",
        "price": "10.00",
        "currency": "AUD",
        "status": "booked",
        "pack_id": BIG_PACK,
        "template_id": "",
    }


def write_rows(
    path: Path,
    rows: list[dict[str, str] | list[str]],
    header: tuple[str, ...] = CSV_HEADER,
    columns: tuple[str, ...] = CSV_HEADER,
) -> None:
    """Write ``header`` (the file's names of ``columns``) and ``rows``; a lone surrogate is
    written as the bytes it stands for (``\\udcff`` is the byte 0xff), so cells can hold text
    that is not UTF-8."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns] if isinstance(row, dict) else row)
    try:
        data = text.getvalue().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.getvalue().encode("utf-8", "surrogatepass")
    path.write_bytes(data)


CSV_COLUMN_VALID: dict[str, Strategy] = {
    "appointment_id": st.builds(lambda n: f"H{n}", st.integers(1, 5)),
    "client_id": sample(*CLIENT_IDS),
    "service_id": sample(*SERVICE_IDS),
    "start": sample(
        "2026-02-09T09:30+11:00",
        "2026-02-09T09:30:00+11:00",
        "2026-02-08T22:30Z",
        "2026-02-09 09:30",  # naive: in the practice's zone
        "2026-04-05 02:30",  # naive, repeated by the DST change: the first
    ),
    "duration": sample("60m", "1h30m", "PT45M", "45 min", "1:30", "1.5h", "0.75 hours"),
    "price": sample("10.00", "120", "0", "$10.00", "A$ 1,000.00", "10.00 AUD"),
    "currency": sample("AUD", "aud"),
    "status": sample("booked", "cancelled", "late-cancel", "no_show", "BOOKED", ""),
    "pack_id": sample("", BIG_PACK, "pk1"),
    "template_id": sample("", "physio10"),
}
CSV_HOSTILE: tuple[str, ...] = (
    "99999999999999h",
    "PT99999999999999H",
    "-60m",
    "0001-01-01T00:00+11:00",
    "0001-01-01T00:00+14:00",
    "9999-12-31T23:59-11:00",
    "1899-12-31T23:00Z",
    "2200-01-01T00:00Z",
    "2026-02-09T09:30",
    "\udcff",  # written as the byte 0xff: not UTF-8
    "abc\udc80",
    "x" * 131_073,  # past the csv module's field size limit
    "x" * 100_000,
    "",
    " ",
    '"',
    "'",
    '"quoted, with comma"',
    "a\nb",
    "a\rb",
    "\x00",
    "\ufeff",
    "1e309",
    "nan",
    "NaN",
    "Infinity",
    "-0",
    "1E+26",
    "-120.00",
    "120.001",
    "92233720368547758.08",
    "XXX",
    "=1+1",
    "unknown-status",
    # spreadsheet spellings (naive times, money and durations as people write them)
    "2026-10-04 02:30",  # skipped by the DST change in Sydney
    "2026-04-05 02:30",  # repeated by it
    "0001-01-01 00:00",
    "9999-12-31 23:59",
    "2026-02-09 09:30",
    "$10.00",
    "$-10",
    "€10.00",
    "US$10",
    "$10.001",
    "12,50",
    "1,1000",
    "$9,223,372,036,854,775,807",
    "AUD 10 AUD",
    "90",
    "1.5",
    "0:00",
    "1:75",
    "-1.5h",
    "0.001 min",
    "99999999999:00",
    "1.0000000000000000000000000001h",
)


CSV_HOSTILE_VALUES = weighted((3, sample(*CSV_HOSTILE)), (1, hostile_text()))


@attrs.frozen
class CsvCase:
    rows: list[dict[str, str] | list[str]]
    hostile_row: dict[str, str] | list[str]
    columns: tuple[str, ...]
    good: tuple[str, str]
    options: list[str]
    header: tuple[str, ...] = CSV_HEADER

    @property
    def appointment_id(self) -> str:
        """The hostile row's appointment id as the importer reads it."""
        row = self.hostile_row
        cell = row.get("appointment_id", "") if isinstance(row, dict) else (row or [""])[0]
        return cell.strip()


_csv_rows = itertools.count(1)


@st.composite
def csv_cases(draw: st.DrawFn) -> CsvCase:
    """A file of a good row, one hostile row and another good row, maybe out of start order."""
    row = {column: draw(s) for column, s in CSV_COLUMN_VALID.items()}
    columns = draw(st.lists(sample(*CSV_HEADER), min_size=1, max_size=3, unique=True))
    for column in columns:
        row[column] = draw(CSV_HOSTILE_VALUES)
    shape = draw(st.integers(0, 9))
    hostile_row: dict[str, str] | list[str] = row
    if shape == 0:  # a ragged row: cells missing
        hostile_row = [row[c] for c in CSV_HEADER][: draw(st.integers(1, len(CSV_HEADER) - 1))]
        columns.append("missing cells")
    elif shape == 1:  # a ragged row: extra cells
        hostile_row = [*(row[c] for c in CSV_HEADER), draw(sample(*CSV_HOSTILE))]
        columns.append("extra cell")
    n = next(_csv_rows)
    first, last = good_row(f"GA{n}", 0), good_row(f"GB{n}", 3)
    rows: list[dict[str, str] | list[str]] = [first, hostile_row, last]
    if draw(st.booleans()):
        rows = [last, hostile_row, first]  # not in start order: sorted on disk
    options = ["--json"] if draw(st.integers(0, 3)) else []
    if draw(st.integers(0, 3)) == 0:
        options += ["--sort-buffer", "1"]
    if draw(st.booleans()):
        options += ["--rejects", "rejects.csv"]
    header: tuple[str, ...] = CSV_HEADER
    if draw(st.integers(0, 3)) == 0:  # the file's own headers, mapped with --column
        header = tuple(f"Their {c}" for c in CSV_HEADER)
        options += [w for c in CSV_HEADER for w in ("--column", f"Their {c}={c}")]
    good = (first["appointment_id"], last["appointment_id"])
    return CsvCase(rows, hostile_row, tuple(columns), good, options, header)


def import_result(db: Path, good: tuple[str, ...], bad: str) -> tuple[list[str], str | None]:
    """The good rows' appointments not active on the big pack, and the pack the hostile row's
    appointment is active on (None if none, or if its id cannot even be looked up)."""
    with SqliteStore(db) as store:
        repository = store.practice(PRACTICE)
        lost = [a for a in good if repository.pack_of_appointment(a) != BIG_PACK]
        try:
            holder = repository.pack_of_appointment(bad) if bad else None
        except Exception:
            holder = None
        return lost, holder


def run_csv_surface(folder: Path) -> None:
    surface = "csv"
    prepared = prepared_sqlite(folder)
    out = folder / "csv"
    out.mkdir(exist_ok=True)

    @scaled(CSV_FACTOR)
    @given(csv_cases())
    def fuzz(case: CsvCase) -> None:
        db = fresh_copy(prepared, folder)
        source = out / "import.csv"
        write_rows(source, case.rows, case.header)
        argv = ["--db", str(db), "--practice", PRACTICE, "--now", NOW_TEXT, "import", str(source)]
        argv += case.options
        name = f"import [{', '.join(case.columns)}]"
        try:
            outcome = judge_cli(surface, name, argv, True, None)
            if outcome in ("accepted", "refused"):
                lost, holder = import_result(db, case.good, case.appointment_id)
                if lost:
                    TALLY.relabel(surface, name, outcome, "aborted")
                    TALLY.fail(
                        surface,
                        name,
                        "good rows around it not applied",
                        "-",
                        f"rows {', '.join(lost)} were not applied",
                        short(case.hostile_row, 300),
                    )
                elif outcome == "refused" and holder is not None:
                    TALLY.relabel(surface, name, outcome, "changed")
                    TALLY.fail(
                        surface,
                        name,
                        "refused row left a usage",
                        "-",
                        f"the refused row's appointment is active on pack {holder}",
                        short(case.hostile_row, 300),
                    )
        finally:
            remove_db(db)

    with timed(surface), inside(out):
        fuzz()
    TALLY.done.add(surface)


# CSV import: the packs file -----------------------------------------------------------------

PACK_HEADER = packfile.PACK_KNOWN
PACKS_CASES = itertools.count(1)


def good_pack_row(pack_id: str) -> dict[str, str]:
    """A pack of a client of its own, from the sessions template, 1 of 10 used there."""
    return {
        "pack_id": pack_id,
        "client_id": f"client-{pack_id}",
        "template_id": "physio10",
        "opened_on": "2026-01-10",
        "used": "1",
        "numbered": "",
        "expires_on": "",
    }


PACK_COLUMN_VALID: dict[str, Strategy] = {
    "pack_id": sample("", "pk1", BIG_PACK, "HP1", "HP2"),  # new, or a pack the store holds
    "client_id": sample(*CLIENT_IDS, "C7"),
    "template_id": sample(*TEMPLATE_IDS),
    "opened_on": sample("2025-11-01", "2026-01-10", "2026-02-16"),
    "used": sample("", "0", "1", "6", "2h", "1:30", "45 min", "$50.00", "50.00", "0.00 AUD"),
    "numbered": sample("", "0", "3"),
    "expires_on": sample("", "2026-06-30", "2026-02-16"),
    # A pack with no template here: its terms in the row instead (packfile.TERMS_COLUMNS).
    "name": sample("Old physio", "10 x Physio", "Crédit ✓"),
    "allowance": sample("10", "5h", "45 min", "0:45", "1.5h", "$500.00", "500.00 AUD"),
    "price": sample("", "$900.00", "900 AUD", "0.00", "1,100.00"),
    "currency": sample("", "AUD", "aud"),
    "services": sample("", "physio", "physio; massage", "physio,massage,"),
    "expires_after": sample("", "3 months", "P6W", "1 year"),
}
PACK_TERMS = packfile.TERMS_COLUMNS
PACK_HOSTILE: tuple[str, ...] = (
    *CSV_HOSTILE,
    "2026-02-17",  # after today
    "2026-02-30",
    "01/11/2025",
    "1899-12-31",
    "2200-01-01",
    "10",  # the whole allowance
    "-1",
    "2147483648",
    "€50.00",
    "0h",
    "-$5",
    " ; ",
    "P0D",
    "3 fortnights",
    "$",
)
PACK_HOSTILE_VALUES = weighted((3, sample(*PACK_HOSTILE)), (1, hostile_text()))


@attrs.frozen
class PacksCase:
    rows: list[dict[str, str] | list[str]]
    columns: tuple[str, ...]
    good: tuple[str, str]
    options: list[str]
    header: tuple[str, ...] = PACK_HEADER


@st.composite
def packs_cases(draw: st.DrawFn) -> PacksCase:
    """A packs file of a good row, one hostile row and another good row; the hostile row is of
    a template or gives its pack's terms."""
    row = {column: draw(s) for column, s in PACK_COLUMN_VALID.items()}
    emptied = ("template_id",) if draw(st.booleans()) else PACK_TERMS
    row.update(dict.fromkeys(emptied, ""))
    columns = draw(st.lists(sample(*PACK_HEADER), min_size=1, max_size=3, unique=True))
    for column in columns:
        row[column] = draw(PACK_HOSTILE_VALUES)
    hostile_row: dict[str, str] | list[str] = row
    if draw(st.integers(0, 9)) == 0:  # a ragged row: cells missing
        hostile_row = [row[c] for c in PACK_HEADER][: draw(st.integers(1, len(PACK_HEADER) - 1))]
        columns.append("missing cells")
    n = next(PACKS_CASES)
    good = (f"GPA{n}", f"GPB{n}")
    rows: list[dict[str, str] | list[str]] = [good_pack_row(good[0]), hostile_row]
    rows.append(good_pack_row(good[1]))
    options = ["--json"] if draw(st.booleans()) else []
    if draw(st.booleans()):
        options += ["--packs-rejects", "packs-rejects.csv"]
    header: tuple[str, ...] = PACK_HEADER
    if draw(st.integers(0, 3)) == 0:  # the file's own headers, mapped with --packs-column
        header = tuple(f"Their {c}" for c in PACK_HEADER)
        options += [w for c in PACK_HEADER for w in ("--packs-column", f"Their {c}={c}")]
    return PacksCase(rows, tuple(columns), good, options, header)


def opened_packs(db: Path) -> set[str]:
    """The ids of the packs the store holds."""
    with SqliteStore(db) as store:
        repository = store.practice(PRACTICE)
        return {
            r.event.pack_id for r in repository.events_since(0) if isinstance(r.event, PackOpened)
        }


def run_packs_csv_surface(folder: Path) -> None:
    surface = "csv-packs"
    prepared = prepared_sqlite(folder)
    before = opened_packs(prepared)
    out = folder / "csv-packs"
    out.mkdir(exist_ok=True)
    appointments = out / "appointments.csv"
    write_rows(appointments, [])

    @scaled(CSV_FACTOR)
    @given(packs_cases())
    def fuzz(case: PacksCase) -> None:
        db = fresh_copy(prepared, folder)
        source = out / "packs.csv"
        write_rows(source, case.rows, case.header, PACK_HEADER)
        argv = ["--db", str(db), "--practice", PRACTICE, "--now", NOW_TEXT, "import",
                str(appointments), "--packs", str(source), *case.options]  # fmt: skip
        name = f"import --packs [{', '.join(case.columns)}]"
        try:
            outcome = judge_cli(surface, name, argv, True, None)
            if outcome in ("accepted", "refused"):
                added = opened_packs(db) - before
                lost = [p for p in case.good if p not in added]
                if lost or (outcome == "refused" and len(added) != 2) or len(added) > 3:
                    TALLY.relabel(surface, name, outcome, "aborted" if lost else "changed")
                    TALLY.fail(
                        surface,
                        name,
                        "good packs not opened" if lost else "refused row opened a pack",
                        "-",
                        f"packs opened: {sorted(added)}",
                        short(case.rows[1], 300),
                    )
        finally:
            remove_db(db)

    with timed(surface), inside(out):
        fuzz()
    TALLY.done.add(surface)


# The console script, in a subprocess ---------------------------------------------------------


def console_cases(folder: Path) -> list[tuple[str, list[str], bool]]:
    """(name, arguments, whether the store must be unchanged) for a few real runs."""
    bad_csv = folder / "console.csv"
    write_rows(
        bad_csv,
        [
            good_row("CA1", 0),
            {**good_row("CB1", 1), "service_id": "\udcff", "duration": "99999999999999h"},
            {**good_row("CC1", 2), "client_id": "x" * 131_073},
            good_row("CD1", 3),
        ],
    )
    appointment_args = ["--client", "C1", "--service", "physio", "--duration", "60m"]
    return [
        ("pack show (100,000 characters)", ["pack", "show", HUGE], True),
        (
            "appointment book (year 1, +14:00)",
            [
                "appointment",
                "book",
                "N1",
                *appointment_args,
                "--start",
                "0001-01-01T00:00+14:00",
                "--price",
                "120.00 AUD",
            ],
            True,
        ),
        (
            "pack adjust (99999999999999h)",
            ["pack", "adjust", "pk3", "--reason", "x", "--", "99999999999999h"],
            True,
        ),
        ("client show (byte 0xff)", ["--json", "client", "show", "C\udcff"], True),
        ("import (bad bytes, huge field)", ["import", str(bad_csv)], False),
    ]


def console_command(case: str) -> list[str]:
    """The installed script for most cases, ``python -m sessionpacks`` for the import."""
    return [sys.executable, "-m", "sessionpacks"] if case.startswith("import") else console_script()


def run_console_surface(folder: Path) -> None:
    surface = "console"
    prepared = prepared_sqlite(folder)
    with timed(surface):
        for name, args, checks_store in console_cases(folder):
            db = fresh_copy(prepared, folder)
            dump = TableDump(db)
            try:
                before = dump()
                argv = [
                    *console_command(name),
                    "--db",
                    str(db),
                    "--practice",
                    PRACTICE,
                    "--now",
                    NOW_TEXT,
                    *args,
                ]
                done = subprocess.run(
                    argv,
                    capture_output=True,
                    cwd=folder,
                    env=environment(),
                    timeout=120,
                    check=False,
                )
                printed = (done.stdout + done.stderr).decode("utf-8", "replace")
                shown = argv_text(args)
                if done.returncode not in (0, 1, 2) or "Traceback" in printed:
                    TALLY.count(surface, "foreign", hostile=True, call=name)
                    kind, spot = (
                        traceback_where(printed)
                        if "Traceback" in printed
                        else (
                            f"exit status {done.returncode}",
                            "-",
                        )
                    )
                    TALLY.fail(
                        surface,
                        name,
                        kind,
                        spot,
                        printed.strip().splitlines()[-1:][0] if printed.strip() else "",
                        shown,
                    )
                elif done.returncode != 0 and checks_store and differences(before, dump()):
                    TALLY.count(surface, "changed", hostile=True, call=name)
                    TALLY.fail(surface, name, "changed store", "-", printed[-200:], shown)
                else:
                    TALLY.count(
                        surface,
                        "accepted" if done.returncode == 0 else "refused",
                        hostile=True,
                        call=name,
                    )
            finally:
                dump.close()
                remove_db(db)
    TALLY.done.add(surface)


# The tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


RUNNERS: dict[str, Callable[[Path], None]] = {
    "grid-model": lambda folder: run_model_grid(),
    "grid-memory": lambda folder: run_grid("grid-memory", open_memory, grid_values()),
    "grid-sqlite": lambda folder: run_grid(
        "grid-sqlite", sqlite_opener(folder), grid_values(store=True)
    ),
    "grid-cli": run_cli_grid,
    "model": lambda folder: run_models(),
    "service-memory": lambda folder: run_service_memory(),
    "service-sqlite": run_service_sqlite,
    "cli": run_cli_surface,
    "csv": run_csv_surface,
    "csv-packs": run_packs_csv_surface,
    "console": run_console_surface,
}


def check_surface(surface: str) -> None:
    failed = {o: TALLY.total(o, surface) for o in FAILING}
    if any(failed.values()):
        pytest.fail(
            f"{surface}: {TALLY.inputs(surface)} inputs, "
            + ", ".join(f"{n} {o}" for o, n in failed.items())
            + "\n"
            + TALLY.failure_report(surface),
            pytrace=False,
        )


def test_every_public_surface_has_argument_strategies() -> None:
    """A new method, constructor, parameter or public class must be given strategies here."""
    assert missing_strategies() == []
    fuzzed = {cls.__name__ for cls in FUZZED_CLASSES}
    unclassified = [
        name
        for name in sessionpacks.__all__
        if name not in NOT_CONSTRUCTORS
        and name not in fuzzed
        and not (
            isinstance(getattr(sessionpacks, name), type)
            and issubclass(getattr(sessionpacks, name), Exception)
        )
    ]
    assert unclassified == [], "classify these public names in FUZZED_CLASSES or NOT_CONSTRUCTORS"
    assert cli_leaves(), "no CLI verbs found"


def test_the_harness_sees_foreign_errors_and_changed_stores(fuzz_dir: Path) -> None:
    """The counting itself: a refusal after a write is "changed" on either store and on the
    CLI, an exception of another kind is "foreign", a clean refusal is "refused"."""
    tally = Tally()

    def open_then_refuse(repository: PackRepository) -> Callable[[Mapping[str, Any]], Any]:
        def run(_: Mapping[str, Any]) -> Any:
            PackService(repository, FixedClock(NOW)).open_pack("C1", template_id="single")
            raise InvalidValueError("x", 1, "refused after writing")

        return run

    store, memory = memory_repository()
    dump = functools.partial(api_dump, memory, (), store)
    execute(Call("memory", "write", open_then_refuse(memory), {}, True), dump, tally)
    execute(
        Call("memory", "lookup", lambda _: PackService(memory).pack("nope"), {}, True), dump, tally
    )
    execute(Call("memory", "crash", lambda _: {"a": 1}["x"], {}, True), dump, tally)
    path = fresh_copy(prepared_sqlite(fuzz_dir), fuzz_dir)
    tables = TableDump(path)
    try:
        with SqliteStore(path) as sqlite:
            repository = sqlite.practice(PRACTICE)
            execute(Call("sqlite", "write", open_then_refuse(repository), {}, True), tables, tally)
        source = fuzz_dir / "half-good.csv"
        write_rows(source, [good_row("HG1", 0), {**good_row("HG2", 1), "price": "lots"}])
        argv = ["--db", str(path), "--practice", PRACTICE, "--now", NOW_TEXT, "import", str(source)]
        with inside(fuzz_dir):
            assert judge_cli("cli", "import", argv, True, tables, tally) == "changed"
    finally:
        tables.close()
        remove_db(path)
    assert dict(+tally.outcomes) == {
        ("memory", "changed"): 1,
        ("memory", "refused"): 1,
        ("memory", "foreign"): 1,
        ("sqlite", "changed"): 1,
        ("cli", "changed"): 1,
    }
    assert {f.kind for f in tally.failures.values()} == {
        "changed store after InvalidValueError",
        "KeyError",
        "changed store after exit 1",
    }


def test_grid_model_constructors() -> None:
    run_model_grid()
    check_surface("grid-model")


def test_grid_service_on_memory() -> None:
    run_grid("grid-memory", open_memory, grid_values())
    check_surface("grid-memory")


def test_grid_service_on_sqlite(fuzz_dir: Path) -> None:
    run_grid("grid-sqlite", sqlite_opener(fuzz_dir), grid_values(store=True))
    check_surface("grid-sqlite")


def test_grid_cli_verbs(fuzz_dir: Path) -> None:
    run_cli_grid(fuzz_dir)
    check_surface("grid-cli")


def test_fuzz_model_constructors() -> None:
    run_models()
    check_surface("model")


def test_fuzz_service_on_memory() -> None:
    run_service_memory()
    check_surface("service-memory")


def test_fuzz_service_on_sqlite(fuzz_dir: Path) -> None:
    run_service_sqlite(fuzz_dir)
    check_surface("service-sqlite")


def test_fuzz_cli_verbs(fuzz_dir: Path) -> None:
    run_cli_surface(fuzz_dir)
    check_surface("cli")


def test_fuzz_csv_columns(fuzz_dir: Path) -> None:
    run_csv_surface(fuzz_dir)
    check_surface("csv")


def test_fuzz_packs_csv_columns(fuzz_dir: Path) -> None:
    run_packs_csv_surface(fuzz_dir)
    check_surface("csv-packs")


def test_fuzz_console_script(fuzz_dir: Path) -> None:
    run_console_surface(fuzz_dir)
    check_surface("console")


def test_fuzz_totals(
    fuzz_dir: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The figures of the run: at least 10,000 hostile inputs, no foreign exception, no
    changed store. Surfaces that have not run in this session (another order, ``-k``) run here."""
    for surface, runner in RUNNERS.items():
        if surface not in TALLY.done:
            runner(fuzz_dir)
    figures = {
        "profile": settings.get_current_profile_name(),
        "max_examples": settings().max_examples,
        **TALLY.figures(),
    }
    target = tmp_path_factory.getbasetemp() / "fuzz-figures.json"
    target.write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    with capsys.disabled():
        print(f"\nfuzz: hostile inputs by surface and outcome (figures in {target})")
        print(TALLY.table())
        for (surface, note), count in sorted(TALLY.notes.items()):
            print(f"  note [{surface}] {note}: {count}")
        if TALLY.findings:
            print(TALLY.failure_report(failing=False))
    hostile_total = sum(TALLY.hostile.values())
    failed = {o: TALLY.total(o) for o in FAILING}
    assert hostile_total >= MIN_HOSTILE_INPUTS, (
        f"only {hostile_total} hostile inputs\n{TALLY.table()}"
    )
    if any(failed.values()):
        pytest.fail(
            ", ".join(f"{n} {o}" for o, n in failed.items()) + "\n" + TALLY.failure_report(),
            pytrace=False,
        )
