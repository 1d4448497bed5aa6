"""R25: a template may say how many days before expiry a reminder is due; the sweep emits
``ExpiringSoon`` once per pack and expiry date for a pack with something left."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import events as ev
from sessionpacks import operations as ops
from sessionpacks.clock import FixedClock
from sessionpacks.errors import InvalidValueError
from sessionpacks.ledger import PackState, Reminded, replay
from sessionpacks.model import ExpiresAfterFirstUse, ExpiresOn, Period, Policies, Practice
from sessionpacks.serialization import dumps_event, dumps_state, loads_event, loads_state
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

from ..conftest import appt, at, terms

SYDNEY = Practice("clinic-1", "Australia/Sydney")
NOW = at("2026-01-15T09:00")
EXPIRY = date(2026, 4, 16)


def reminding(days: int = 10, allowance: int = 3, expiry: object = None) -> PackState:
    rule = expiry or ExpiresOn(EXPIRY)
    policies = Policies(remind_days_before_expiry=days)
    made = terms(allowance, expiry=rule, policies=policies)  # type: ignore[arg-type]
    return ops.open_pack("pk1", "C1", made, SYDNEY, NOW).after


def swept(state: PackState, day: date) -> ops.Change:
    return ops.expire(state, day, NOW)


@pytest.mark.parametrize("bad", [0, -1, 367, True, 7.0, "7"])
def test_a_reminder_outside_one_to_366_days_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidValueError) as refused:
        Policies(remind_days_before_expiry=bad)  # type: ignore[arg-type]
    assert refused.value.field == "Policies.remind_days_before_expiry"


def test_the_reminder_is_due_its_days_before_the_expiry_date() -> None:
    state = reminding(10)
    assert state.reminder_due == date(2026, 4, 6)
    assert state.next_sweep == date(2026, 4, 6)
    assert swept(state, date(2026, 4, 5)).events == ()
    change = swept(state, date(2026, 4, 6))
    [event] = change.events
    assert isinstance(event, ev.ExpiringSoon)
    assert (event.expiry_date, event.remaining, event.days_before) == (EXPIRY, 3, 10)
    assert event.occurrence == f"pk1:ExpiringSoon:{EXPIRY.isoformat()}"
    [entry] = change.entries
    assert isinstance(entry, Reminded)
    assert entry.as_of == date(2026, 4, 6)
    assert change.after.reminded_for == (EXPIRY,)
    assert change.after.next_sweep == EXPIRY  # what is left to record: the expiry itself


def test_once_per_expiry_date_and_an_extension_re_arms_it() -> None:
    reminded = swept(reminding(10), date(2026, 4, 10)).after
    assert swept(reminded, date(2026, 4, 15)).events == ()
    extended = ops.extend(reminded, date(2026, 5, 16), "away", NOW).after
    assert extended.reminder_due == date(2026, 5, 6)
    assert swept(extended, date(2026, 5, 5)).events == ()
    [again] = swept(extended, date(2026, 5, 6)).events
    assert isinstance(again, ev.ExpiringSoon)
    assert again.expiry_date == date(2026, 5, 16)


def test_on_or_after_the_expiry_date_the_sweep_expires_instead() -> None:
    [expired] = swept(reminding(10), EXPIRY).events
    assert isinstance(expired, ev.PackExpired)
    after = swept(reminding(10), EXPIRY).after
    assert after.reminder_due is None
    assert after.next_sweep is None


@pytest.mark.parametrize(
    "finish",
    [
        lambda s: ops.close(s, "moved away", NOW).after,
        lambda s: ops.void(s, "opened in error", NOW).after,
        lambda s: ops.use(s, appt("A1", "2026-03-02T10:00"), NOW).after,  # nothing left
    ],
    ids=["closed", "voided", "used up"],
)
def test_no_reminder_for_a_pack_with_nothing_to_expire(finish: object) -> None:
    state = finish(reminding(10, allowance=1))  # type: ignore[operator]
    assert state.reminder_due is None
    assert swept(state, date(2026, 4, 10)).events == ()


def test_no_reminder_without_an_expiry_date_or_a_policy() -> None:
    unused = reminding(10, expiry=ExpiresAfterFirstUse(Period(months=1)))
    assert unused.reminder_due is None  # no first use yet, so no expiry date
    used = ops.use(unused, appt("A1", "2026-03-02T10:00"), NOW).after
    assert used.reminder_due == date(2026, 3, 23)
    plain = ops.open_pack("pk2", "C1", terms(3, expiry=ExpiresOn(EXPIRY)), SYDNEY, NOW).after
    assert plain.reminder_due is None
    assert plain.next_sweep == EXPIRY


def test_the_reminder_round_trips_and_replays() -> None:
    policies = Policies(remind_days_before_expiry=10)
    made = terms(3, expiry=ExpiresOn(EXPIRY), policies=policies)
    opening = ops.open_pack("pk1", "C1", made, SYDNEY, NOW)
    change = swept(opening.after, date(2026, 4, 10))
    [event] = change.events
    assert loads_event(dumps_event(event)) == event
    assert loads_state(dumps_state(change.after)) == change.after
    assert replay([*opening.entries, *change.entries]) == change.after


@given(
    days=st.integers(1, 60),
    sweeps=st.lists(st.integers(0, 80), min_size=1, max_size=12),
    extend_by=st.none() | st.integers(1, 40),
)
@scaled(0.5)
def test_each_expiry_date_is_reminded_at_most_once_and_only_inside_its_window(
    days: int, sweeps: list[int], extend_by: int | None
) -> None:
    state = reminding(days)
    told: list[tuple[date, date]] = []
    start = EXPIRY - timedelta(days=70)
    for n, offset in enumerate(sweeps):
        day = start + timedelta(days=offset)
        change = swept(state, day)
        for event in change.events:
            if isinstance(event, ev.ExpiringSoon):
                told.append((event.expiry_date, day))
        state = change.after
        if extend_by is not None and n == len(sweeps) // 2 and not state.expired_on:
            until = (state.expiry_date or EXPIRY) + timedelta(days=extend_by)
            state = ops.extend(state, until, "away", NOW).after
    expiries = [expiry for expiry, _ in told]
    assert len(expiries) == len(set(expiries))
    for expiry, day in told:
        assert expiry - timedelta(days=days) <= day < expiry


def test_the_service_sweep_reminds_once(service: PackService, clock: FixedClock) -> None:
    service.open_pack("C1", terms=terms(3, expiry=ExpiresOn(EXPIRY), policies=_policy(7)))
    service.open_pack("C2", terms=terms(3, expiry=ExpiresOn(EXPIRY)))
    clock.set(at("2026-04-09T07:00"))
    [reminder] = service.sweep(date(2026, 4, 9))
    assert isinstance(reminder.event, ev.ExpiringSoon)
    assert reminder.event.pack_id == "pk1"
    assert service.sweep(date(2026, 4, 9)) == ()
    clock.set(at("2026-04-16T07:00"))
    assert [type(r.event) for r in service.sweep(EXPIRY)] == [ev.PackExpired, ev.PackExpired]


def _policy(days: int) -> Policies:
    return Policies(remind_days_before_expiry=days)


def test_an_expiry_date_reminded_once_is_not_reminded_again_when_the_date_comes_back() -> None:
    reminded = swept(reminding(10), date(2026, 4, 8)).after  # of 04-16
    held_ = ops.hold(reminded, date(2026, 4, 9), date(2026, 4, 12), "", NOW).after  # to 04-19
    moved = swept(held_, date(2026, 4, 10))
    assert [type(e) for e in moved.events] == [ev.ExpiringSoon]  # the new date, 04-19
    back = ops.end_hold(moved.after, date(2026, 4, 9), "", NOW).after  # to 04-16 again
    assert back.expiry_date == EXPIRY
    assert swept(back, date(2026, 4, 11)).events == ()
