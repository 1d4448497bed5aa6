"""Reports (R26) over random histories, on the in-memory, SQLite and PostgreSQL stores.

A history opens a few packs (from templates and ad hoc, per pack and per session, of every
metric, in AUD and NZD, some as migrated from another system, R19), runs a workflow of
:func:`sessionpacks.strategies.workflows` on each (use, cancel, late-cancel, no-show,
reschedule, adjust, extend, hold and end a hold (R22), close, sweep, invoice, and a void now
and then), interleaved, through :class:`PackService` on the store under test, with the
clock moving on. The report is then read back through the service for random periods, and:

* every line and every total reconciles to the cent;
* every figure equals a reference worked out here from :func:`sessionpacks.pricing.figures` of
  each pack's state at the period's two ends (its entries recorded before each);
* adjacent periods add up, and the closing liability of one is the opening of the next;
* a report is the same as of a later instant, and from the ledgers as they stood at the
  period's end (R23);
* the journal's pairs balance and its accounts move as the report says;
* a database store gives the report the in-memory store gives for the same history.
"""

from __future__ import annotations

import itertools
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from sessionpacks import _reporting
from sessionpacks import strategies as sps
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.errors import SessionPacksError
from sessionpacks.ledger import Entry, Migration, Opened, PackState, replay
from sessionpacks.model import Metric, Money, PackTerms, instant
from sessionpacks.ports import PackRepository
from sessionpacks.pricing import figures, recognised_before
from sessionpacks.reports import JournalAccounts, Report, ReportLine, journal, report
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

from ..pg_support import drop_schema, pg_dsn

__all__ = ["pg_dsn"]

ZONE_NAME = "Australia/Sydney"
SYDNEY = ZoneInfo(ZONE_NAME)
START = datetime(2026, 3, 1, 9, 0, tzinfo=SYDNEY)
SETTINGS = {
    "memory": scaled(2.0, deadline=None, suppress_health_check=list(HealthCheck)),
    "sqlite": scaled(0.5, deadline=None, suppress_health_check=list(HealthCheck)),
    "postgres": scaled(0.25, deadline=None, suppress_health_check=list(HealthCheck)),
}


@attrs.frozen
class Open:
    """Open the plan's pack (always its first step), as migrated if ``migrated`` (R19)."""

    migrated: Migration | None = None


@attrs.frozen
class Void:
    """Void the plan's pack (refused while it has an active usage)."""


@attrs.frozen
class SweepToday:
    """Run the expiry sweep as of the practice's today."""


@attrs.frozen
class Plan:
    pack_id: str
    client_id: str
    terms: PackTerms
    template_id: str | None
    steps: tuple[Any, ...]


@attrs.frozen
class History:
    templates: tuple[tuple[str, PackTerms], ...]
    plans: tuple[Plan, ...]
    order: tuple[int, ...]
    """Which plan each step comes from: each plan's steps run in their own order."""
    cuts: tuple[int, ...]
    """Period boundaries, in permille of the history's span (and a little either side)."""


def _renamed(step: Any, prefix: str) -> Any:
    """The step on appointments of its own pack: ``A1`` becomes ``P2-A1``."""
    if isinstance(step, sps.Book):
        return sps.Book(attrs.evolve(step.appointment, id=prefix + step.appointment.id))
    if hasattr(step, "appointment_id"):
        return attrs.evolve(step, appointment_id=prefix + step.appointment_id)
    return step


terms = sps.pack_terms(currency=st.sampled_from(["AUD", "NZD"]), max_sessions=6)


@st.composite
def plans(draw: st.DrawFn, n: int, templates: tuple[tuple[str, PackTerms], ...]) -> Plan:
    chosen = draw(st.sampled_from([*templates, None]))
    template_id, pack_terms = chosen if chosen is not None else (None, draw(terms))
    client = f"C{n}"
    drawn = sps.workflows(pack_terms, client_id=client, invoices=True, holds=True)
    steps = [_renamed(s, f"P{n}-") for s in draw(drawn)]
    migrated = sps.migrations(pack_terms, min_date=date(2025, 9, 1), max_date=START.date())
    opening = Open(draw(st.none() | migrated))
    if draw(st.integers(0, 3)) == 0:
        steps.insert(draw(st.integers(0, len(steps))), Void())
    # months pass and the sweep runs, so that packs expire with something left (breakage)
    for days in draw(st.lists(st.integers(20, 400), min_size=1, max_size=2)):
        at = draw(st.integers(0, len(steps)))
        steps[at:at] = [sps.Wait(timedelta(days=days)), SweepToday()]
    return Plan(f"P{n}", client, pack_terms, template_id, (opening, *steps))


@st.composite
def histories(draw: st.DrawFn) -> History:
    templates = tuple((f"T{n}", draw(terms)) for n in range(1, draw(st.integers(0, 2)) + 1))
    drawn = tuple(draw(plans(n, templates)) for n in range(1, draw(st.integers(1, 3)) + 1))
    labels = [i for i, plan in enumerate(drawn) for _ in plan.steps]
    order = draw(st.permutations(labels))
    # each plan opens before its other steps: its Open is the first of its label to run
    cuts = draw(st.lists(st.integers(-50, 1050), min_size=1, max_size=4))
    return History(templates, drawn, tuple(order), tuple(sorted(cuts)))


# Running a history through the service -------------------------------------------------------


def _serve_pack(service: PackService, plan: Plan, step: Any) -> None:
    """The steps on the pack as a whole."""
    match step:
        case Open(migrated=migrated) if plan.template_id is None:
            service.open_pack(
                plan.client_id, terms=plan.terms, pack_id=plan.pack_id, migrated=migrated
            )
        case Open(migrated=migrated):
            service.open_pack(
                plan.client_id,
                template_id=plan.template_id,
                pack_id=plan.pack_id,
                migrated=migrated,
            )
        case sps.PutOnHold(start=start, until=until, reason=reason):
            service.hold(plan.pack_id, start, until, reason)
        case sps.EndHold(on=on, reason=reason):
            service.end_hold(plan.pack_id, on, reason)
        case Void():
            service.void(plan.pack_id, "opened in error")
        case sps.Adjust(amount=amount, reason=reason):
            service.adjust(plan.pack_id, amount, reason)
        case sps.Extend(days=days, reason=reason):
            base = service.pack(plan.pack_id).expiry_date or service.today()
            service.extend(plan.pack_id, base + timedelta(days=days), reason)
        case sps.Close(reason=reason):
            service.close(plan.pack_id, reason)


def _serve(service: PackService, clock: FixedClock, plan: Plan, step: Any) -> None:
    match step:
        case sps.Book(appointment=appointment):
            service.assign(appointment, pack_id=plan.pack_id)
        case sps.Cancel(appointment_id=aid):
            service.cancel(aid)
        case sps.LateCancel(appointment_id=aid):
            service.late_cancel(aid)
        case sps.NoShow(appointment_id=aid):
            service.no_show(aid)
        case sps.Reschedule(appointment_id=aid, start=start):
            service.reschedule(aid, start)
        case sps.Sweep(as_of=as_of):
            service.sweep(min(as_of, service.today()))
        case SweepToday():
            service.sweep(service.today())
        case sps.Wait(by=by):
            clock.advance(by)
        case sps.Invoice(appointment_id=aid):
            service.invoice_line(aid)
        case _:
            _serve_pack(service, plan, step)


def play(repository: PackRepository, history: History) -> tuple[PackService, datetime]:
    """Run the history; returns the service and the instant it ended at."""
    clock = FixedClock(START)
    service = PackService(repository, clock)
    for template_id, template_terms in history.templates:
        service.add_template(template_id, template_terms)
    steps = {i: iter(plan.steps) for i, plan in enumerate(history.plans)}
    for index in history.order:
        plan = history.plans[index]
        try:
            _serve(service, clock, plan, next(steps[index]))
        except SessionPacksError:
            continue
        clock.advance(timedelta(minutes=1))  # entries of different steps at different instants
    return service, clock.now()


def boundaries(history: History, end: datetime) -> list[datetime]:
    span = end - START
    return [START + span * cut / 1000 for cut in history.cuts]


# The reference -------------------------------------------------------------------------------


def _state_at(ledger: Sequence[Entry], moment: datetime) -> PackState | None:
    """The pack as its entries recorded before ``moment`` say (the clock here never goes back,
    so they are a prefix of the ledger)."""
    kept = [e for e in ledger if instant(e.recorded_at) < instant(moment)]
    assert kept == list(ledger[: len(kept)])
    return replay(kept) if kept else None


def _parts(state: PackState | None, currency: str) -> dict[str, Any]:
    if state is None:
        zero = Money.zero(currency)
        return dict.fromkeys(
            ("sold", "recognised", "usable", "breakage", "refunds", "off"), zero
        ) | {
            "packs": 0,
            "sessions": 0,
            "hours": timedelta(0),
            "value": zero,
        }
    found, voided = figures(state), state.voided_at is not None
    left, used = found.refundable, state.amount(state.consumed_units)
    there = recognised_before(state)  # R19: a migrated pack is sold here at what it brings
    return {
        "packs": 1,
        "sold": found.price - there,
        "recognised": found.recognised - there,
        "usable": found.usable,
        "breakage": found.breakage,
        "refunds": Money.zero(currency) if voided else left,
        "off": found.written_off + left if voided else found.written_off,
        "sessions": len(state.usages),
        "hours": used if state.metric is Metric.HOURS else timedelta(0),
        "value": used if state.metric is Metric.MONEY else Money.zero(currency),
    }


def expected_line(
    ledgers: Sequence[Sequence[Entry]], currency: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """Every figure of the period's total line in ``currency``, from the packs' figures."""
    total: dict[str, Any] | None = None
    for ledger in ledgers:
        opened = ledger[0]
        assert isinstance(opened, Opened)
        after = _state_at(ledger, end)
        if opened.terms.currency != currency or after is None:
            continue
        was, now = _parts(_state_at(ledger, start), currency), _parts(after, currency)
        line = {key: now[key] - was[key] for key in now} | {
            "opening": was["usable"],
            "closing": now["usable"],
        }
        total = line if total is None else {key: total[key] + line[key] for key in line}
    assert total is not None
    return total


def line_figures(line: ReportLine) -> dict[str, Any]:
    return {
        "packs": line.packs_sold,
        "sold": line.sold,
        "recognised": line.recognised,
        "usable": line.closing_unearned - line.opening_unearned,
        "breakage": line.breakage,
        "refunds": line.refunds,
        "off": line.written_off,
        "sessions": line.sessions_used,
        "hours": line.hours_used,
        "value": line.value_used,
        "opening": line.opening_unearned,
        "closing": line.closing_unearned,
    }


# The checks ---------------------------------------------------------------------------------


def _sum_lines(lines: Sequence[ReportLine]) -> dict[str, Any]:
    figures_of = [line_figures(line) for line in lines]
    return {key: sum((f[key] for f in figures_of[1:]), figures_of[0][key]) for key in figures_of[0]}


def check_report(found: Report, ledgers: Sequence[Sequence[Entry]]) -> None:
    assert found.balances
    for line in (*found.lines, *found.totals):
        assert line.reconciled == line.closing_unearned
    for total in found.totals:
        expected = expected_line(ledgers, total.currency, found.start, found.end)
        assert line_figures(total) == expected
        of_currency = [line for line in found.lines if line.currency == total.currency]
        assert _sum_lines(of_currency) == line_figures(total)


def check_adjacent(first: Report, second: Report, both: Report) -> None:
    """``[a, b)`` and ``[b, c)`` make ``[a, c)``."""
    for total in both.totals:
        one = next((t for t in first.totals if t.currency == total.currency), None)
        two = next(t for t in second.totals if t.currency == total.currency)
        if one is not None:
            assert one.closing_unearned == two.opening_unearned
            assert total.opening_unearned == one.opening_unearned
        assert total.closing_unearned == two.closing_unearned
        for name in ("sold", "recognised", "breakage", "refunds", "written_off"):
            parts = getattr(two, name) + (getattr(one, name) if one else Money.zero(total.currency))
            assert getattr(total, name) == parts


def check_journal(ledgers: Sequence[Sequence[Entry]], found: Report) -> None:
    accounts = JournalAccounts()
    lines = journal(ledgers, found.start, found.end)
    assert len(lines) % 2 == 0
    for debit, credit in zip(lines[::2], lines[1::2], strict=True):
        assert debit.debit == credit.credit
        assert debit.debit.minor > 0
        assert (debit.credit.minor, credit.debit.minor) == (0, 0)
        assert (debit.pack_id, debit.memo, debit.day) == (credit.pack_id, credit.memo, credit.day)
    for total in found.totals:
        mine = [line for line in lines if line.currency == total.currency]

        def net_credit(
            account: str, mine: list[Any] = mine, currency: str = total.currency
        ) -> Money:
            return sum(
                (line.credit - line.debit for line in mine if line.account == account),
                Money.zero(currency),
            )

        assert net_credit(accounts.unearned) == total.closing_unearned - total.opening_unearned
        assert net_credit(accounts.revenue) == total.recognised
        assert net_credit(accounts.breakage) == total.breakage
        assert net_credit(accounts.refunds) == total.refunds
        assert net_credit(accounts.written_off) == total.written_off
        assert net_credit(accounts.receivable) == -total.sold


def check_history(service: PackService, history: History, end: datetime) -> Report:
    ledgers = list(_reporting.ledgers(service))
    cuts = boundaries(history, end)
    points = sorted([START - timedelta(days=1), *cuts, end + timedelta(days=1)])
    reports = []
    for a, b in itertools.pairwise(points):
        found = _reporting.report(service, a, b)
        check_report(found, ledgers)
        assert _reporting.report(service, a, b, as_of=end + timedelta(days=30)) == attrs.evolve(
            found, as_of=end + timedelta(days=30)
        )
        at_end = [[e for e in led if e.recorded_at < b] for led in ledgers]
        assert report([led for led in at_end if led], a, b) == found
        check_journal(ledgers, found)
        reports.append(found)
    for n in range(len(reports) - 1):
        both = _reporting.report(service, points[n], points[n + 2])
        check_adjacent(reports[n], reports[n + 1], both)
    return _reporting.report(service, points[0], points[-1])


# The stores ------------------------------------------------------------------------------------

Opener = Callable[[], Any]


@contextmanager
def memory_repository() -> Iterator[PackRepository]:
    yield InMemoryStore().practice("clinic-1", timezone=ZONE_NAME)


@contextmanager
def sqlite_repository() -> Iterator[PackRepository]:
    with (
        tempfile.TemporaryDirectory(prefix="sessionpacks-report-") as folder,
        SqliteStore(Path(folder) / "packs.db") as store,
    ):
        yield store.practice("clinic-1", timezone=ZONE_NAME)


def postgres_repository(dsn: str) -> Opener:
    @contextmanager
    def open_one() -> Iterator[PackRepository]:
        schema = f"r_{uuid.uuid4().hex[:16]}"
        try:
            with PostgresStore(dsn, schema=schema, max_size=2) as store:
                yield store.practice("clinic-1", timezone=ZONE_NAME)
        finally:
            drop_schema(dsn, schema)

    return open_one


def _history_test(opener: Opener, settings: hypothesis.settings) -> None:
    @settings
    @given(histories())
    def run(history: History) -> None:
        with opener() as repository:
            service, end = play(repository, history)
            found = check_history(service, history, end)
        if opener is not memory_repository:
            with memory_repository() as reference:
                service, _ = play(reference, history)
                assert _reporting.report(service, found.start, found.end) == found

    run()


def test_reports_reconcile_on_the_in_memory_store() -> None:
    _history_test(memory_repository, SETTINGS["memory"])


def test_reports_reconcile_on_sqlite() -> None:
    _history_test(sqlite_repository, SETTINGS["sqlite"])


@pytest.mark.postgres
def test_reports_reconcile_on_postgresql(pg_dsn: str) -> None:
    _history_test(postgres_repository(pg_dsn), SETTINGS["postgres"])
