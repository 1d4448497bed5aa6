"""R22: a pack can be put on hold from a date until a date (the first date usable again).
Usages dated inside the hold are refused; the expiry date moves later by the hold's days; a
hold can be ended early, which moves the expiry back by the days not used; holds do not
overlap."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import events as ev
from sessionpacks import operations as ops
from sessionpacks.clock import FixedClock
from sessionpacks.errors import InvalidValueError, RefusedError
from sessionpacks.ledger import Hold, PackState, replay
from sessionpacks.model import ExpiresAfterFirstUse, ExpiresOn, Period, Practice, PreferTemplate
from sessionpacks.resolution import NoPack, UsePack
from sessionpacks.serialization import dumps_event, dumps_state, loads_event, loads_state
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

from ..conftest import appt, at, terms

SYDNEY = Practice("clinic-1", "Australia/Sydney")
NOW = at("2026-03-01T09:00")
JUNE = date(2026, 6, 1)


def pack(expiry: object = None, allowance: int = 10) -> PackState:
    made = terms(allowance, expiry=expiry or ExpiresOn(JUNE))  # type: ignore[arg-type]
    return ops.open_pack("pk1", "C1", made, SYDNEY, NOW).after


def held(state: PackState, start: date, until: date, reason: str = "") -> PackState:
    return ops.hold(state, start, until, reason, NOW).after


def test_e28_a_hold_refuses_appointments_inside_it_and_moves_the_expiry(
    service: PackService, clock: FixedClock
) -> None:
    service.open_pack("C1", terms=terms(10, expiry=ExpiresOn(JUNE)))
    after = service.hold("pk1", date(2026, 4, 1), date(2026, 4, 15), "travel")
    assert after.expiry_date == date(2026, 6, 15)
    with pytest.raises(RefusedError) as refused:
        service.assign(appt("A1", "2026-04-10T10:00"), pack_id="pk1")
    assert refused.value.rule == "R22"
    assert refused.value.field == "appointment.start"
    assert "on hold from 2026-04-01 until 2026-04-15 (travel)" in str(refused.value)
    assert service.assign(appt("A2", "2026-04-15T10:00"), pack_id="pk1").label == "Session 1 of 10"
    assert service.assign(appt("A3", "2026-03-31T10:00"), pack_id="pk1").label == "Session 1 of 10"
    kinds = [type(r.event) for r in service.events_since(0)]
    assert ev.PackHeld in kinds


def test_the_hold_event_names_the_new_expiry() -> None:
    change = ops.hold(pack(), date(2026, 4, 1), date(2026, 4, 15), "illness", NOW)
    [event] = change.events
    assert isinstance(event, ev.PackHeld)
    assert (event.start, event.until, event.reason) == (
        date(2026, 4, 1),
        date(2026, 4, 15),
        "illness",
    )
    assert event.expiry_date == date(2026, 6, 15)
    assert change.after.holds == (Hold(date(2026, 4, 1), date(2026, 4, 15), "illness"),)
    assert loads_event(dumps_event(event)) == event
    assert loads_state(dumps_state(change.after)) == change.after


def test_ending_a_hold_early_moves_the_expiry_back_by_the_days_not_used() -> None:
    state = held(pack(), date(2026, 4, 1), date(2026, 4, 15))
    change = ops.end_hold(state, date(2026, 4, 5), "back early", NOW)
    [event] = change.events
    assert isinstance(event, ev.HoldEnded)
    assert (event.start, event.until, event.on) == (
        date(2026, 4, 1),
        date(2026, 4, 15),
        date(2026, 4, 5),
    )
    assert change.after.expiry_date == date(2026, 6, 5)
    assert change.after.hold_on(date(2026, 4, 4)) is not None
    assert change.after.hold_on(date(2026, 4, 5)) is None
    removed = ops.end_hold(state, date(2026, 3, 20), "", NOW).after
    assert removed.holds == ()
    assert removed.expiry_date == JUNE


def test_holds_do_not_overlap() -> None:
    state = held(pack(), date(2026, 4, 1), date(2026, 4, 15))
    for start, until in [
        (date(2026, 4, 14), date(2026, 4, 20)),
        (date(2026, 3, 25), date(2026, 4, 2)),
    ]:
        with pytest.raises(RefusedError) as refused:
            ops.hold(state, start, until, "", NOW)
        assert refused.value.rule == "R22"
    after = held(state, date(2026, 4, 15), date(2026, 4, 20))  # touching is not overlapping
    assert after.expiry_date == date(2026, 6, 20)


@pytest.mark.parametrize(
    ("start", "until", "kind", "field"),
    [
        (date(2026, 4, 15), date(2026, 4, 15), InvalidValueError, "until"),
        (date(2026, 4, 15), date(2026, 4, 1), InvalidValueError, "until"),
        (JUNE, date(2026, 6, 10), RefusedError, "start"),  # the pack is expired by then
    ],
)
def test_a_hold_that_cannot_be_is_refused(
    start: date, until: date, kind: type[Exception], field: str
) -> None:
    with pytest.raises(kind) as refused:
        ops.hold(pack(), start, until, "", NOW)
    assert refused.value.field == field  # type: ignore[attr-defined]


def test_a_hold_over_a_booked_usage_is_refused_naming_it() -> None:
    used = ops.use(pack(), appt("A1", "2026-04-10T10:00"), NOW).after
    with pytest.raises(RefusedError) as refused:
        ops.hold(used, date(2026, 4, 1), date(2026, 4, 15), "", NOW)
    assert "appointment A1 on 2026-04-10" in str(refused.value)


def test_a_closed_pack_cannot_be_held_and_a_pack_without_holds_cannot_end_one() -> None:
    with pytest.raises(RefusedError) as closed:
        ops.hold(ops.close(pack(), "", NOW).after, date(2026, 4, 1), date(2026, 4, 15), "", NOW)
    assert closed.value.rule == "R10"
    with pytest.raises(RefusedError) as none:
        ops.end_hold(pack(), date(2026, 4, 1), "", NOW)
    assert none.value.rule == "R22"


def test_rescheduling_into_a_hold_is_refused() -> None:
    used = ops.use(pack(), appt("A1", "2026-03-10T10:00"), NOW).after
    state = held(used, date(2026, 4, 1), date(2026, 4, 15))
    with pytest.raises(RefusedError) as refused:
        ops.reschedule(state, "A1", at("2026-04-02T10:00"), NOW)
    assert refused.value.rule == "R22"


def test_an_extension_sets_the_date_and_later_holds_move_it() -> None:
    state = held(pack(), date(2026, 4, 1), date(2026, 4, 15))
    extended = ops.extend(state, date(2026, 7, 1), "goodwill", NOW).after
    assert extended.expiry_date == date(2026, 7, 1)
    assert held(extended, date(2026, 5, 1), date(2026, 5, 8)).expiry_date == date(2026, 7, 8)


def test_a_hold_moves_an_after_first_use_expiry_once_it_is_known() -> None:
    state = held(pack(ExpiresAfterFirstUse(Period(months=1))), date(2026, 4, 1), date(2026, 4, 11))
    assert state.expiry_date is None
    used = ops.use(state, appt("A1", "2026-03-20T10:00"), NOW).after
    assert used.expiry_date == date(2026, 4, 30)  # 2026-04-20 + 10 days


def test_the_sweep_respects_holds() -> None:
    state = held(pack(allowance=3), date(2026, 4, 1), date(2026, 4, 15))
    assert ops.expire(state, JUNE, NOW).events == ()
    [expired] = ops.expire(state, date(2026, 6, 15), NOW).events
    assert isinstance(expired, ev.PackExpired)
    assert expired.expiry_date == date(2026, 6, 15)


def test_holds_replay_from_the_ledger() -> None:
    opening = ops.open_pack("pk1", "C1", terms(10, expiry=ExpiresOn(JUNE)), SYDNEY, NOW)
    first = ops.hold(opening.after, date(2026, 4, 1), date(2026, 4, 15), "", NOW)
    second = ops.end_hold(first.after, date(2026, 4, 3), "", NOW)
    ledger = [*opening.entries, *first.entries, *second.entries]
    assert replay(ledger) == second.after


@given(
    holds=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), max_size=4),
    end=st.none() | st.tuples(st.integers(0, 3), st.integers(0, 25)),
)
@scaled(0.5)
def test_holds_move_the_expiry_by_exactly_their_days(
    holds: list[tuple[int, int]], end: tuple[int, int] | None
) -> None:
    """Each accepted hold moves the expiry by its length; ending one early takes back exactly
    the days not used, and none at all of those already used."""
    state = pack()
    base = date(2026, 3, 2)
    for offset, length in holds:
        start = base + timedelta(days=offset)
        try:
            after = held(state, start, start + timedelta(days=length))
        except RefusedError:
            continue
        assert after.expiry_date == state.expiry_date + timedelta(days=length)  # type: ignore[operator]
        state = after
    if end is not None and state.holds:
        which, into = end
        hold = state.holds[min(which, len(state.holds) - 1)]
        on = hold.start + timedelta(days=into)
        try:
            after = ops.end_hold(state, on, "", NOW).after
        except RefusedError:
            return
        running = next(h for h in state.holds if h.until > on)
        unused = (running.until - max(on, running.start)).days
        assert after.expiry_date == state.expiry_date - timedelta(days=unused)  # type: ignore[operator]


def test_ending_a_hold_cannot_strand_a_booked_usage_past_the_expiry() -> None:
    state = held(pack(), date(2026, 4, 1), date(2026, 4, 15))  # expires 2026-06-15
    booked = ops.use(state, appt("A1", "2026-06-12T10:00"), NOW).after
    with pytest.raises(RefusedError) as refused:
        ops.end_hold(booked, date(2026, 4, 8), "back early", NOW)
    assert refused.value.rule == "R5"
    assert "before appointment A1" in str(refused.value)


def test_an_extension_sets_the_date_so_ending_an_earlier_hold_gives_nothing_back() -> None:
    state = held(pack(), date(2026, 4, 1), date(2026, 4, 15))
    extended = ops.extend(state, date(2026, 7, 1), "goodwill", NOW).after
    ended = ops.end_hold(extended, date(2026, 4, 8), "back early", NOW).after
    assert ended.expiry_date == date(2026, 7, 1)


def test_a_recorded_expiry_stands_when_an_earlier_hold_ends() -> None:
    state = held(pack(allowance=3), date(2026, 4, 1), date(2026, 4, 15))
    expired = ops.expire(state, date(2026, 6, 15), NOW).after
    ended = ops.end_hold(expired, date(2026, 4, 8), "", NOW).after
    assert ended.expiry_date == date(2026, 6, 15)
    assert ops.expire(ended, date(2026, 6, 20), NOW).events == ()  # no second PackExpired


def test_a_hold_before_the_first_use_pauses_nothing() -> None:
    state = held(pack(ExpiresAfterFirstUse(Period(months=1))), date(2026, 3, 2), date(2026, 3, 16))
    used = ops.use(state, appt("A1", "2026-05-01T10:00"), NOW).after
    assert used.expiry_date == date(2026, 6, 1)
    later = ops.use(
        pack(ExpiresAfterFirstUse(Period(months=1))), appt("A1", "2026-05-10T10:00"), NOW
    )
    before_it = held(later.after, date(2026, 5, 1), date(2026, 5, 5))
    assert before_it.expiry_date == date(2026, 6, 10)  # the hold is before the first use
    earlier = ops.use(before_it, appt("A0", "2026-04-28T10:00"), NOW).after
    assert earlier.expiry_date == date(2026, 6, 1)  # now it pauses the validity: 05-28 + 4 days


def test_no_new_pack_is_sold_from_the_template_while_the_clients_pack_is_on_hold(
    service: PackService,
) -> None:
    service.add_template("T", terms(10, expiry=ExpiresOn(JUNE)))
    service.set_preference("C1", PreferTemplate("T"))
    service.open_pack("C1", template_id="T")
    service.hold("pk1", date(2026, 4, 1), date(2026, 5, 1), "travel")
    decision = service.decide(appt("A1", "2026-04-10T10:00"))
    assert isinstance(decision.action, NoPack)
    assert "on hold from 2026-04-01 until 2026-05-01 (travel)" in decision.reason
    assert "no new pack is opened during a hold" in decision.reason
    after = service.decide(appt("A2", "2026-05-02T10:00"))
    assert isinstance(after.action, UsePack)
