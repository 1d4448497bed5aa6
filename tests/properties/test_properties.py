"""Properties of the invariants, over random valid workflows (hypothesis).

Workflows from :func:`sessionpacks.strategies.workflows` are run through the pure operations of
:mod:`sessionpacks.operations` (and, for what storage adds, through :class:`PackService` on the
in-memory store). Every step either returns a change or is refused; the properties hold for every
state reached either way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import strategies as st

from sessionpacks import operations as ops
from sessionpacks import strategies as sps
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryRepository, InMemoryStore
from sessionpacks.errors import RefusedError, SessionPacksError
from sessionpacks.events import (
    ExpiringSoon,
    LineExhausted,
    LowBalance,
    PackExhausted,
    PackExpired,
    SessionUsed,
)
from sessionpacks.ledger import (
    Entry,
    Invoiced,
    Mark,
    PackState,
    PackStatus,
    Released,
    Rescheduled,
    Used,
    apply,
    replay,
)
from sessionpacks.model import (
    Allowance,
    Amount,
    Appointment,
    Metric,
    Money,
    PackTerms,
    PerPack,
    PerSession,
    Policies,
    Practice,
    PreferTemplate,
    instant,
)
from sessionpacks.pricing import PackFigures, breakage, figures, recognised, refundable
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

ZONE_NAME = "Australia/Sydney"
SYDNEY = ZoneInfo(ZONE_NAME)
PRACTICE = Practice("clinic-1", ZONE_NAME)
START = datetime(2026, 3, 1, 9, 0, tzinfo=SYDNEY)

PROPS = scaled(
    0.3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@attrs.frozen
class Outcome:
    """One step of a workflow: the state it met, and its change or its refusal."""

    step: sps.Step
    before: PackState
    now: datetime
    change: ops.Change | None
    refusal: RefusedError | None


def _decide(state: PackState, step: sps.Step, now: datetime) -> ops.Change:
    match step:
        case sps.Book(appointment=appointment):
            return ops.use(state, appointment, now)
        case sps.Cancel(appointment_id=aid):
            return ops.cancel(state, aid, now)
        case sps.LateCancel(appointment_id=aid):
            return ops.cancel(state, aid, now, late=True)
        case sps.NoShow(appointment_id=aid):
            return ops.cancel(state, aid, now, no_show=True)
        case sps.Reschedule(appointment_id=aid, start=start):
            return ops.reschedule(state, aid, start, now)
        case sps.Adjust(amount=amount, reason=reason, line=line):
            return ops.adjust(state, amount, reason, now, line=line)
        case sps.Extend(days=days, reason=reason):
            base = state.expiry_date or now.astimezone(SYDNEY).date()
            return ops.extend(state, base + timedelta(days=days), reason, now)
        case sps.Close(reason=reason):
            return ops.close(state, reason, now)
        case sps.Sweep(as_of=as_of):
            return ops.expire(state, as_of, now)
        case sps.Invoice(appointment_id=aid):
            return ops.issue_invoice(state, aid, now)[0]
    return _decide_sharing(state, step, now)


def _decide_sharing(state: PackState, step: sps.Step, now: datetime) -> ops.Change:
    match step:
        case sps.Share(client_id=client):
            return ops.share(state, client, now)
        case sps.Unshare(client_id=client):
            return ops.unshare(state, client, now)
    raise AssertionError(f"unexpected step {step!r}")


def run(
    terms: PackTerms,
    steps: list[sps.Step],
    *,
    clocked: bool = False,
    shared_with: tuple[str, ...] = (),
) -> tuple[ops.Change, list[Outcome]]:
    """Open a pack with ``terms`` (shared with ``shared_with``) and run ``steps`` on it through
    the pure operations.

    ``clocked`` skips what :class:`PackService` refuses by its clock before the domain decides:
    a sweep as of a date after today (R12a).
    """
    opened = ops.open_pack("P1", "C1", terms, PRACTICE, START, shared_with=shared_with)
    state, now, outcomes = opened.after, START, []
    for step in steps:
        if isinstance(step, sps.Wait):
            now += step.by
            continue
        if clocked and isinstance(step, sps.Sweep) and step.as_of > now.astimezone(SYDNEY).date():
            continue
        try:
            change = _decide(state, step, now)
        except RefusedError as refusal:
            outcomes.append(Outcome(step, state, now, None, refusal))
            continue
        outcomes.append(Outcome(step, state, now, change, None))
        state = change.after
    return opened, outcomes


def _states(opened: ops.Change, outcomes: list[Outcome]) -> Iterator[PackState]:
    yield opened.after
    for outcome in outcomes:
        if outcome.change is not None:
            yield outcome.change.after


def _entries(opened: ops.Change, outcomes: list[Outcome]) -> list[Entry]:
    entries = list(opened.entries)
    for outcome in outcomes:
        if outcome.change is not None:
            entries.extend(outcome.change.entries)
    return entries


# small allowances, so that workflows reach exhaustion and shortfalls
scenarios = sps.pack_terms(max_sessions=6).flatmap(
    lambda t: st.tuples(st.just(t), sps.workflows(t))
)


bundle_scenarios = (
    sps.pack_terms(bundles=True, service_ids=("physio", "massage", "gym"))
    .filter(lambda t: bool(t.lines))
    .flatmap(lambda t: st.tuples(st.just(t), sps.workflows(t)))
)

FAMILY = ("C2", "C3")
shared_scenarios = sps.pack_terms(max_sessions=6).flatmap(
    lambda t: st.tuples(st.just(t), sps.workflows(t, shared_with=FAMILY))
)


# Ledger: replay equals incremental apply ----------------------------------------------------


@PROPS
@given(scenarios)
def test_replay_of_all_entries_equals_the_last_state(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    opened, outcomes = run(*scenario)
    entries = _entries(opened, outcomes)
    last = list(_states(opened, outcomes))[-1]
    assert replay(entries) == last
    assert functools.reduce(apply, entries, None) == last
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert last.version == len(entries)


@PROPS
@given(scenarios)
def test_each_change_is_its_entries_applied_to_its_before(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    _opened, outcomes = run(*scenario)
    for outcome in outcomes:
        change = outcome.change
        if change is None:
            continue
        assert change.before == outcome.before
        assert functools.reduce(apply, change.entries, outcome.before) == change.after
        if not change.entries:
            assert change.after == change.before
            assert change.events == ()


# Balances ---------------------------------------------------------------------------------


@PROPS
@given(scenarios)
def test_balance_is_never_negative(scenario: tuple[PackTerms, list[sps.Step]]) -> None:
    opened, outcomes = run(*scenario)
    for state in _states(opened, outcomes):
        assert state.remaining_units >= 0
        assert state.consumed_units == sum(u.consumed for u in state.usages)
        for usage in state.usages:
            assert usage.consumed >= 0
            assert usage.shortfall >= 0
            if state.metric is Metric.SESSIONS:
                assert (usage.consumed, usage.shortfall) == (1, 0)


@PROPS
@given(scenarios)
def test_a_usage_covers_what_was_needed_up_to_what_remained(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    _opened, outcomes = run(*scenario)
    for outcome in outcomes:
        if outcome.change is None or not isinstance(outcome.step, sps.Book):
            continue
        before, after = outcome.before, outcome.change.after
        appointment = outcome.step.appointment
        if before.usage(appointment.id) is not None:
            continue
        usage = after.usage(appointment.id)
        assert usage is not None
        needed = {
            Metric.SESSIONS: 1,
            Metric.HOURS: appointment.duration // timedelta(microseconds=1),
            Metric.MONEY: appointment.price.minor,
        }[before.metric]
        assert usage.consumed == min(needed, before.remaining_units)
        assert usage.consumed + usage.shortfall == needed


@PROPS
@given(scenarios)
def test_a_release_frees_exactly_what_the_usage_consumed(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    _opened, outcomes = run(*scenario)
    for outcome in outcomes:
        change = outcome.change
        if change is None:
            continue
        freed = 0  # a close may release several usages in one change (R10a)
        for entry in change.entries:
            if isinstance(entry, Released):
                gone = outcome.before.usage(entry.appointment_id)
                assert gone is not None
                freed += gone.consumed
                assert change.after.usage(entry.appointment_id) is None
        if freed:
            assert change.after.remaining_units == outcome.before.remaining_units + freed


@PROPS
@given(scenarios, st.data())
def test_use_then_cancel_restores_the_state_but_the_version(
    scenario: tuple[PackTerms, list[sps.Step]], data: st.DataObject
) -> None:
    opened, outcomes = run(*scenario)
    state = list(_states(opened, outcomes))[-1]
    appointment = data.draw(
        sps.appointments(
            "C1",
            st.sampled_from(sorted(state.terms.eligible_services) or list(sps.SERVICE_IDS)),
            currency=state.terms.currency,
            appointment_id="A-new",
        )
    )
    try:
        used = ops.use(state, appointment, START)
    except RefusedError:
        return
    released = ops.release(used.after, appointment.id, START)
    after = released.after
    assert after.remaining_units == state.remaining_units
    assert after.usages == state.usages
    assert [after.number(u.appointment.id) for u in after.usages] == [
        state.number(u.appointment.id) for u in state.usages
    ]
    assert after.version == state.version + 2


# Session numbering -------------------------------------------------------------------------


def _expected_order(entries: list[Entry]) -> list[str]:
    """Active appointments by start instant, ties by the order recorded: from the ledger."""
    active: dict[str, tuple[datetime, int]] = {}
    for entry in entries:
        if isinstance(entry, Used):
            active[entry.appointment.id] = (entry.appointment.start, entry.sequence)
        elif isinstance(entry, Released):
            del active[entry.appointment_id]
        elif isinstance(entry, Rescheduled):
            active[entry.appointment_id] = (entry.start, active[entry.appointment_id][1])
    return sorted(active, key=lambda a: (active[a][0].astimezone(UTC), active[a][1]))


@PROPS
@given(scenarios)
def test_sessions_are_numbered_1_to_k_by_start_then_order_recorded(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    opened, outcomes = run(*scenario)
    entries = list(opened.entries)
    for outcome in outcomes:
        if outcome.change is None:
            continue
        entries.extend(outcome.change.entries)
        state = outcome.change.after
        ids = [u.appointment.id for u in state.usages]
        assert sorted(state.number(a) for a in ids) == list(range(1, len(ids) + 1))
        assert [state.number(a) for a in ids] == list(range(1, len(ids) + 1))
        assert ids == _expected_order(entries)
        if state.metric is Metric.SESSIONS:
            for n, aid in enumerate(ids, start=1):
                assert state.label(aid) == f"Session {n} of {state.total_units}"


@PROPS
@given(scenarios)
def test_session_used_events_carry_the_number_at_recording(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    _opened, outcomes = run(*scenario)
    for outcome in outcomes:
        if outcome.change is None:
            continue
        for event in outcome.change.events:
            if isinstance(event, SessionUsed):
                assert event.number == outcome.change.after.number(event.appointment_id)
                assert event.remaining == outcome.change.after.remaining


def _repeated_hour_appointments(
    first: datetime, second: datetime
) -> tuple[Appointment, Appointment]:
    def make(aid: str, start: datetime) -> Appointment:
        return Appointment(aid, "C1", "physio", start, timedelta(minutes=30), Money("10", "AUD"))

    return make("A1", first), make("A2", second)


def test_numbering_follows_instants_in_the_repeated_hour_of_a_dst_change() -> None:
    state = ops.open_pack("P1", "C1", _sessions(10), PRACTICE, START).after
    # 02:45 AEDT (15:45Z) happens before 02:15 AEST (16:15Z) on 2026-04-05
    early = datetime(2026, 4, 5, 2, 45, fold=0, tzinfo=SYDNEY)
    late = datetime(2026, 4, 5, 2, 15, fold=1, tzinfo=SYDNEY)
    a1, a2 = _repeated_hour_appointments(early, late)
    state = ops.use(ops.use(state, a2, START).after, a1, START).after
    assert (state.number("A1"), state.number("A2")) == (1, 2)


def test_a_reschedule_through_the_repeated_hour_is_recorded() -> None:
    state = ops.open_pack("P1", "C1", _sessions(10), PRACTICE, START).after
    first = datetime(2026, 4, 5, 2, 30, fold=0, tzinfo=SYDNEY)
    a1, _ = _repeated_hour_appointments(first, first)
    state = ops.use(state, a1, START).after
    moved = ops.reschedule(state, "A1", first.replace(fold=1), START)
    assert len(moved.entries) == 1


def test_lateness_does_not_depend_on_how_the_cancellation_instant_is_written() -> None:
    policies = Policies(late_cancel_notice=timedelta(hours=24), late_cancel_consumes=True)
    terms = attrs.evolve(_sessions(10), policies=policies)
    state = ops.open_pack("P1", "C1", terms, PRACTICE, START).after
    appointment = datetime(2026, 4, 5, 9, 0, tzinfo=SYDNEY)
    a1, _ = _repeated_hour_appointments(appointment, appointment)
    state = ops.use(state, a1, START).after
    cancelled = datetime(2026, 4, 4, 9, 30, tzinfo=SYDNEY)  # 24.5 real hours before
    in_sydney = ops.cancel(state, "A1", cancelled, cancelled_at=cancelled)
    in_utc = ops.cancel(state, "A1", cancelled, cancelled_at=cancelled.astimezone(UTC))
    assert [type(e) for e in in_utc.entries] == [Released]  # 24.5 h notice: not late
    assert [type(e) for e in in_sydney.entries] == [Released]


# Money -------------------------------------------------------------------------------------


def _sessions(count: int, price: str = "100.00") -> PackTerms:
    return PackTerms("Physio", Allowance.sessions(count), PerPack(Money(price, "AUD")))


def _appointment(n: int, day_offset: int) -> Appointment:
    start = datetime(2026, 3, 2, 9, tzinfo=SYDNEY) + timedelta(days=day_offset)
    return Appointment(f"A{n}", "C1", "physio", start, timedelta(hours=1), Money("50", "AUD"))


@PROPS
@given(
    st.integers(1, 20),
    sps.money("AUD", max_amount=5000),
    st.data(),
)
def test_per_pack_shares_add_up_to_the_price_when_fully_used(
    count: int, price: Money, data: st.DataObject
) -> None:
    terms = PackTerms("Physio", Allowance.sessions(count), PerPack(price))
    state = ops.open_pack("P1", "C1", terms, PRACTICE, START).after
    days = data.draw(st.permutations(range(count)))
    for n, day in enumerate(days, start=1):  # recorded in any order of start
        state = ops.use(state, _appointment(n, day), START).after
    shares = [r.amount.minor for r in recognised(state)]
    assert sum(shares) == price.minor
    low = price.minor // count
    assert set(shares) <= {low, low + (price.minor % count != 0)}
    assert [r.number for r in recognised(state)] == list(range(1, count + 1))
    assert refundable(state) == Money.zero("AUD")


def test_per_pack_1000_for_3_recognises_333_33_333_33_333_34() -> None:
    state = ops.open_pack("P1", "C1", _sessions(3, "1000.00"), PRACTICE, START).after
    for n in (1, 2, 3):
        state = ops.use(state, _appointment(n, n), START).after
    assert [str(r.amount.amount) for r in recognised(state)] == ["333.33", "333.33", "333.34"]


@PROPS
@given(scenarios, st.dates(date(2026, 3, 1), date(2029, 12, 31)))
def test_recognised_plus_refundable_or_breakage_is_the_price(
    scenario: tuple[PackTerms, list[sps.Step]], as_of_day: date
) -> None:
    opened, outcomes = run(*scenario)
    state = list(_states(opened, outcomes))[-1]
    pricing = state.terms.pricing
    shares = recognised(state)
    total = sum((r.amount.minor for r in shares), 0)
    as_of = datetime.combine(as_of_day, datetime.min.time(), tzinfo=SYDNEY)
    if isinstance(pricing, PerSession):
        assert [r.amount for r in shares] == [pricing.price_of(r.number) for r in shares]
        assert refundable(state) == breakage(state, as_of) == Money.zero(state.terms.currency)
        return
    written_off = figures(state).written_off.minor
    assert 0 <= total <= pricing.price.minor
    assert total + refundable(state).minor + written_off == pricing.price.minor
    if state.status(as_of) is PackStatus.EXPIRED:
        assert total + breakage(state, as_of).minor + written_off == pricing.price.minor
    else:
        assert breakage(state, as_of) == Money.zero(state.terms.currency)
    if state.remaining_units == 0:
        assert total + written_off == pricing.price.minor  # the paid allowance is all spent
    if state.adjustment_units >= 0:
        assert written_off == 0


@PROPS
@given(scenarios, st.data())
def test_a_per_pack_price_is_charged_on_exactly_one_line(
    scenario: tuple[PackTerms, list[sps.Step]], data: st.DataObject
) -> None:
    terms, steps = scenario
    assume(isinstance(terms.pricing, PerPack))
    opened, outcomes = run(terms, steps)
    state = list(_states(opened, outcomes))[-1]
    assume(state.usages)
    order = data.draw(st.permutations([u.appointment.id for u in state.usages]))
    lines = []
    for aid in order:
        change, line = ops.issue_invoice(state, aid, START)
        state = change.after
        lines.append(line)
        again, same = ops.issue_invoice(state, aid, START)
        assert again.entries == ()
        assert same == line  # an issued line keeps its label and amount
    assert isinstance(terms.pricing, PerPack)
    assert sum(line.amount.minor for line in lines) == terms.pricing.price.minor
    assert [line.includes_pack_price for line in lines].count(True) == 1


# R15a Money adds up, R10a a closed pack's figures stand, R12b once per occurrence ------------


def _with_adjustments(
    terms: PackTerms, steps: list[sps.Step], extra: list[tuple[int, Amount]]
) -> tuple[PackTerms, list[sps.Step]]:
    """``steps`` with more credits and debits put in: a workflow rarely has a debit that the
    balance allows, and a debit is what splits the unearned value most (written off)."""
    mixed = list(steps)
    for at_step, amount in extra:
        mixed.insert(min(at_step, len(mixed)), sps.Adjust(amount, "correction"))
    return terms, mixed


# every kind of step, invoices included, on per-pack and per-session packs of every metric
money_scenarios = sps.pack_terms(max_sessions=6).flatmap(
    lambda t: st.builds(
        _with_adjustments,
        st.just(t),
        sps.workflows(t, invoices=True),
        st.lists(st.tuples(st.integers(0, 30), sps.adjustments(t)), max_size=4),
    )
)


def _adds_up(state: PackState, found: PackFigures) -> None:
    parts = (found.usable, found.breakage, found.refundable, found.written_off, found.transferred)
    assert found.price == found.recognised + found.unearned
    assert found.unearned == parts[0] + parts[1] + parts[2] + parts[3] + parts[4]
    zero = Money.zero(state.terms.currency)
    assert all(zero <= value for value in (found.price, found.recognised, *parts))
    shares = sum((r.amount for r in recognised(state)), zero)
    assert found.recognised == shares
    pricing = state.terms.pricing
    if isinstance(pricing, PerSession):
        assert (found.price, found.unearned) == (shares, zero)
        return
    assert found.price == pricing.price
    if state.remaining_units == 0:  # nothing left is worth nothing: the rest was written off
        assert found.usable == found.breakage == found.refundable == zero
    if state.adjustment_units >= 0:  # no net debit, nothing written off
        assert found.written_off == zero
    elif found.price != zero:  # a net debit takes away part of the price, at least a cent
        assert found.written_off != zero
    if state.ended:
        assert found.usable == found.breakage == zero
    elif found.usable != zero:
        assert found.breakage == found.refundable == zero


@PROPS
@given(money_scenarios)
def test_money_adds_up_to_the_cent_after_every_step(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    opened, outcomes = run(*scenario)
    _adds_up(opened.after, figures(opened.after))
    for outcome in outcomes:
        if outcome.change is None:
            continue
        state = outcome.change.after
        _adds_up(state, figures(state))
        _adds_up(state, figures(state, outcome.now))
        for event in outcome.change.events:
            if isinstance(event, PackExpired):
                assert event.breakage == figures(state).breakage


@PROPS
@given(money_scenarios)
def test_closing_releases_future_usages_and_then_nothing_changes_the_figures(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    _opened, outcomes = run(*scenario)
    closed: tuple[object, ...] | None = None
    for outcome in outcomes:
        if outcome.change is None:
            continue
        state = outcome.change.after
        if closed is not None:
            assert (state.remaining, state.usages == (), figures(state))[::2] == closed[::2]
            assert [type(e) for e in outcome.change.entries] in ([], [Invoiced])
            continue
        if state.closed_at is None:
            continue
        before = outcome.before
        future = [
            u.appointment.id
            for u in before.usages
            if u.mark is None and u.appointment.start.astimezone(UTC) > outcome.now
        ]
        released = [e.appointment_id for e in outcome.change.entries if isinstance(e, Released)]
        assert released == future
        assert [u.appointment.id for u in state.usages] == [
            u.appointment.id for u in before.usages if u.appointment.id not in future
        ]
        closed = (state.remaining, None, figures(state))


@PROPS
@given(money_scenarios)
def test_a_task_event_fires_once_per_occurrence(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    _opened, outcomes = run(*scenario)
    seen: dict[type, set[str]] = {
        kind: set()
        for kind in (PackExhausted, LowBalance, PackExpired, ExpiringSoon, LineExhausted)
    }
    exhausted_at: set[int] = set()
    for outcome in outcomes:
        if outcome.change is None:
            continue
        before, after = outcome.before, outcome.change.after
        for event in outcome.change.events:
            if type(event) in seen:
                assert event.occurrence not in seen[type(event)]
                seen[type(event)].add(event.occurrence)
            else:
                assert event.occurrence == event.event_id
        reached_zero = before.remaining_units > 0 and after.remaining_units == 0
        fired = any(isinstance(e, PackExhausted) for e in outcome.change.events)
        assert fired == (reached_zero and after.total_units not in exhausted_at)
        if reached_zero:
            exhausted_at.add(after.total_units)


# Idempotence and refusals ------------------------------------------------------------------


@PROPS
@given(scenarios)
def test_recording_the_same_appointment_again_writes_nothing(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    opened, outcomes = run(*scenario)
    for outcome in outcomes:
        if not isinstance(outcome.step, sps.Book):
            continue
        recorded = outcome.before.usage(outcome.step.appointment.id)
        if recorded is None:
            continue
        if ops.differing_fact(recorded.appointment, outcome.step.appointment) is None:
            assert outcome.change is not None
            assert outcome.change.entries == ()
            assert outcome.change.after == outcome.before
        else:  # rescheduled since: the old start is another fact (R6a)
            assert outcome.refusal is not None
            assert (outcome.refusal.rule, outcome.refusal.field) == ("R6a", "appointment.start")
    state = list(_states(opened, outcomes))[-1]
    for usage in state.usages:
        assert ops.use(state, usage.appointment, START).entries == ()


def _service(terms: PackTerms) -> tuple[PackService, InMemoryRepository, FixedClock]:
    repo = InMemoryStore().practice("clinic-1", timezone=ZONE_NAME)
    clock = FixedClock(START)
    ids = iter(range(1, 1000))
    service = PackService(repo, clock, new_pack_id=lambda: f"P{next(ids)}")
    service.open_pack("C1", terms=terms, pack_id="P1")
    return service, repo, clock


def _snapshot(repo: InMemoryRepository, appointment_ids: list[str]) -> object:
    return (
        repo.ledger("P1"),
        repo.load("P1"),
        repo.events_since(0),
        [repo.pack_of_appointment(a) for a in appointment_ids],
    )


def _serve(service: PackService, clock: FixedClock, step: sps.Step) -> None:
    match step:
        case sps.Book(appointment=appointment):
            service.assign(appointment, pack_id="P1")
        case sps.Cancel(appointment_id=aid):
            service.cancel(aid)
        case sps.LateCancel(appointment_id=aid):
            service.late_cancel(aid)
        case sps.NoShow(appointment_id=aid):
            service.no_show(aid)
        case sps.Reschedule(appointment_id=aid, start=start):
            service.reschedule(aid, start)
        case sps.Adjust(amount=amount, reason=reason):
            service.adjust("P1", amount, reason)
        case sps.Extend(days=days, reason=reason):
            base = service.pack("P1").expiry_date or clock.now().astimezone(SYDNEY).date()
            service.extend("P1", base + timedelta(days=days), reason)
        case sps.Close(reason=reason):
            service.close("P1", reason)
        case sps.Sweep(as_of=as_of):
            service.sweep(as_of)
        case sps.Wait(by=by):
            clock.advance(by)
        case sps.Invoice(appointment_id=aid):
            service.invoice_line(aid)


@PROPS
@given(scenarios)
def test_refusals_leave_storage_unchanged_and_storage_replays(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    terms, steps = scenario
    service, repo, clock = _service(terms)
    ids = sorted({s.appointment.id for s in steps if isinstance(s, sps.Book)})
    for step in steps:
        before = _snapshot(repo, ids)
        try:
            _serve(service, clock, step)
        except SessionPacksError:
            assert _snapshot(repo, ids) == before
        assert replay(repo.ledger("P1")) == repo.load("P1")
        positions = [r.position for r in repo.events_since(0)]
        assert positions == list(range(1, len(positions) + 1))


@PROPS
@given(scenarios)
def test_the_service_and_the_pure_operations_agree(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    terms, steps = scenario
    service, repo, clock = _service(terms)
    for step in steps:
        try:
            _serve(service, clock, step)
        except SessionPacksError:
            continue
    opened, outcomes = run(terms, steps, clocked=True)
    expected = _entries(opened, outcomes)
    assert [type(e) for e in repo.ledger("P1")] == [type(e) for e in expected]
    assert repo.load("P1").usages == list(_states(opened, outcomes))[-1].usages


@PROPS
@given(scenarios)
def test_assigning_an_active_appointment_to_its_pack_again_writes_nothing(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    terms, steps = scenario
    service, repo, clock = _service(terms)
    for step in steps:
        try:
            _serve(service, clock, step)
        except SessionPacksError:
            continue
    state = repo.load("P1")
    before = _snapshot(repo, [u.appointment.id for u in state.usages])
    for usage in state.usages:
        again = service.assign(usage.appointment, pack_id="P1")
        assert again.pack == state
        assert again.events == ()
    assert _snapshot(repo, [u.appointment.id for u in state.usages]) == before


def test_booking_the_same_appointment_again_by_preference_writes_nothing() -> None:
    service, repo, _ = _service(_sessions(10))
    service.add_template("T", _sessions(1))
    service.set_preference("C1", PreferTemplate("T"))
    appointment = _appointment(1, 1)
    first = service.book(appointment)
    assert first.pack is not None
    before = _snapshot(repo, ["A1"])
    again = service.book(appointment)  # the same request again (R6)
    assert again.pack == first.pack
    assert _snapshot(repo, ["A1"]) == before


def test_refused_use_names_the_rule_and_leaves_the_pack_as_it_was() -> None:
    terms = attrs.evolve(_sessions(1), eligible_services=frozenset({"physio"}))
    state = ops.open_pack("P1", "C1", terms, PRACTICE, START).after
    massage = attrs.evolve(_appointment(1, 1), service_id="massage")
    with pytest.raises(RefusedError) as refused:
        ops.use(state, massage, START)
    assert (refused.value.rule, refused.value.field) == ("R4", "appointment.service_id")
    usd = attrs.evolve(_appointment(1, 1), price=Money("10", "USD"))
    with pytest.raises(RefusedError, match="USD"):
        ops.use(state, usd, START)
    state = ops.use(state, _appointment(1, 1), START).after
    with pytest.raises(RefusedError) as refused:
        ops.use(state, _appointment(2, 2), START)
    assert refused.value.rule == "R3"
    assert state.remaining_units == 0


def test_a_debit_never_takes_the_balance_below_zero() -> None:
    state = ops.open_pack("P1", "C1", _sessions(2), PRACTICE, START).after
    state = ops.use(state, _appointment(1, 1), START).after
    with pytest.raises(RefusedError) as refused:
        ops.adjust(state, -2, "correction", START)
    assert refused.value.rule == "R9"
    assert ops.adjust(state, -1, "correction", START).after.remaining_units == 0


def test_marking_keeps_the_usage_consumed() -> None:
    policies = Policies(late_cancel_consumes=True, no_show_consumes=True)
    terms = attrs.evolve(_sessions(3), policies=policies)
    state = ops.open_pack("P1", "C1", terms, PRACTICE, START).after
    state = ops.use(state, _appointment(1, 1), START).after
    late = ops.cancel(state, "A1", START, late=True).after
    usage = late.usage("A1")
    assert usage is not None
    assert (usage.mark, late.remaining_units) == (Mark.LATE_CANCEL, 2)
    with pytest.raises(RefusedError) as refused:  # a marked usage is settled
        ops.cancel(late, "A1", START, late=True)
    assert refused.value.rule == "R7"


def test_money_shortfall_and_decimal_amounts_are_exact() -> None:
    terms = PackTerms("Credit", Allowance.money(Money("500", "AUD")), PerPack(Money("450", "AUD")))
    state = ops.open_pack("P1", "C1", terms, PRACTICE, START).after
    for n in range(1, 6):
        state = ops.use(
            state, attrs.evolve(_appointment(n, n), price=Money("120", "AUD")), START
        ).after
    last = state.usage("A5")
    assert last is not None
    assert (last.consumed, last.shortfall) == (2000, 10000)
    assert sum(r.amount.amount for r in recognised(state)) == Decimal("450.00")


# Shared packs (R20) -------------------------------------------------------------------------


@PROPS
@given(shared_scenarios)
def test_numbering_runs_1_to_k_across_the_clients_of_a_shared_pack(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    opened, outcomes = run(*scenario, shared_with=FAMILY)
    entries = _entries(opened, outcomes)
    for state in _states(opened, outcomes):
        by_start = sorted(state.usages, key=lambda u: u.key)
        numbers = [state.number(u.appointment.id) for u in by_start]
        assert numbers == list(range(1, len(by_start) + 1))
        assert state.consumed_units == sum(u.consumed for u in state.usages)
        assert state.remaining_units == state.total_units - state.consumed_units
        assert set(state.clients) <= {"C1", *FAMILY}
        assert len(set(state.clients)) == len(state.clients)
    assert replay(entries) == list(_states(opened, outcomes))[-1]


@PROPS
@given(shared_scenarios)
def test_only_a_client_listed_when_booking_draws_on_a_shared_pack(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    _opened, outcomes = run(*scenario, shared_with=FAMILY)
    for outcome in outcomes:
        before, step = outcome.before, outcome.step
        if isinstance(step, sps.Book) and not before.serves(step.appointment.client_id):
            assert outcome.change is None
            assert outcome.refusal is not None
        if isinstance(step, sps.Unshare) and outcome.change is not None:
            gone = step.client_id
            assert gone not in outcome.change.after.shared_with
            later = instant(outcome.now)
            assert not any(
                u.appointment.client_id == gone and instant(u.appointment.start) > later
                for u in outcome.change.after.usages
            )
        if isinstance(step, sps.Unshare) and outcome.refusal is not None:
            # Not listed or an appointment to come (R20); a closed pack changes no more (R10).
            assert outcome.refusal.rule == ("R10" if before.ended else "R20")


# Bundles (R24) ----------------------------------------------------------------------------


@PROPS
@given(bundle_scenarios)
def test_each_line_of_a_bundle_numbers_1_to_k_and_the_lines_add_up(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    opened, outcomes = run(*scenario)
    for state in _states(opened, outcomes):
        lines = range(len(state.terms.lines))
        for line in lines:
            mine = [u for u in state.usages if state.line_of(u) == line]
            assert [state.number(u.appointment.id) for u in mine] == list(range(1, len(mine) + 1))
            assert state.line_remaining_units(line) >= 0
        assert state.remaining_units == sum(state.line_remaining_units(i) for i in lines)
        assert state.total_units == sum(state.line_total_units(i) for i in lines)
        assert (state.remaining_units == 0) == all(
            state.line_remaining_units(i) == 0 for i in lines
        )
    assert replay(_entries(opened, outcomes)) == list(_states(opened, outcomes))[-1]


@PROPS
@given(bundle_scenarios)
def test_a_bundle_line_used_up_refuses_only_its_own_services(
    scenario: tuple[PackTerms, list[sps.Step]],
) -> None:
    _opened, outcomes = run(*scenario)
    for outcome in outcomes:
        if outcome.refusal is None or outcome.refusal.rule != "R24":
            continue
        assert isinstance(outcome.step, sps.Book)
        line = outcome.before.terms.line_of(outcome.step.appointment.service_id)
        assert line is not None
        assert outcome.before.line_remaining_units(line) == 0
        assert outcome.before.remaining_units >= 0
