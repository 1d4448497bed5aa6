"""The append-only ledger and the state folded from it (R1, R5, R8, R11)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import reduce
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import events as ev
from sessionpacks import operations as ops
from sessionpacks.errors import InvalidValueError
from sessionpacks.ledger import (
    Adjusted,
    Closed,
    Entry,
    Invoiced,
    Mark,
    Marked,
    Opened,
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
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    Period,
    PerPack,
    Practice,
)
from sessionpacks.serialization import dumps_event, dumps_state, loads_event, loads_state
from sessionpacks.testing.plugin import scaled

from ..conftest import appt, at, aud, terms

SYDNEY = Practice("clinic-1", "Australia/Sydney")
NOW = at("2026-01-15T09:00")


def opened(allowance: Any = 10, **kwargs: Any) -> PackState:
    return ops.open_pack("pk1", "C1", terms(allowance, **kwargs), SYDNEY, NOW).after


def with_uses(state: PackState, *appointments: tuple[str, str]) -> tuple[PackState, list[Entry]]:
    """``state`` after using each (id, start); also the entries written."""
    entries: list[Entry] = []
    for appointment_id, start in appointments:
        change = ops.use(state, appt(appointment_id, start), NOW)
        entries.extend(change.entries)
        state = change.after
    return state, entries


def ledger_of(*changes: ops.Change) -> list[Entry]:
    return [e for c in changes for e in c.entries]


# Folding -------------------------------------------------------------------------------------


def test_a_ledger_starts_with_opened_at_sequence_one() -> None:
    first = ops.open_pack("pk1", "C1", terms(3), SYDNEY, NOW).entries[0]
    assert isinstance(first, Opened)
    state = apply(None, first)
    assert (state.version, state.remaining, state.opened_on) == (1, 3, date(2026, 1, 15))
    with pytest.raises(InvalidValueError) as late_start:
        apply(None, attrs.evolve(first, sequence=2))
    assert late_start.value.field == "entry"
    used = Used(
        pack_id="pk1", sequence=1, recorded_at=NOW, appointment=appt("A1"), covered=1, shortfall=0
    )
    with pytest.raises(InvalidValueError):
        apply(None, used)


@pytest.mark.parametrize(
    "entry",
    [
        Adjusted(pack_id="pk1", sequence=3, recorded_at=NOW, amount=1, reason="gap"),
        Adjusted(pack_id="pk1", sequence=1, recorded_at=NOW, amount=1, reason="repeat"),
        Adjusted(pack_id="pk2", sequence=2, recorded_at=NOW, amount=1, reason="other pack"),
    ],
)
def test_entries_follow_in_sequence_on_their_pack(entry: Entry) -> None:
    with pytest.raises(InvalidValueError) as caught:
        apply(opened(), entry)
    assert caught.value.field == "entry.sequence"
    assert caught.value.value == (entry.pack_id, entry.sequence)


def test_opened_cannot_follow_opened() -> None:
    state = opened()
    again = ops.open_pack("pk1", "C1", terms(3), SYDNEY, NOW).entries[0]
    with pytest.raises(InvalidValueError) as caught:
        apply(state, attrs.evolve(again, sequence=2))
    assert caught.value.field == "entry"


@pytest.mark.parametrize(
    "make",
    [
        lambda s: Released(pack_id="pk1", sequence=s, recorded_at=NOW, appointment_id="AX"),
        lambda s: Rescheduled(
            pack_id="pk1", sequence=s, recorded_at=NOW, appointment_id="AX", start=NOW
        ),
        lambda s: Marked(
            pack_id="pk1", sequence=s, recorded_at=NOW, appointment_id="AX", mark=Mark.NO_SHOW
        ),
        lambda s: Invoiced(
            pack_id="pk1",
            sequence=s,
            recorded_at=NOW,
            appointment_id="AX",
            number=1,
            label="Session 1 of 10",
            amount=aud(0),
            prepaid=True,
            includes_pack_price=False,
        ),
    ],
)
def test_usage_entries_need_an_active_usage(make: Any) -> None:
    with pytest.raises(InvalidValueError) as caught:
        apply(opened(), make(2))
    assert (caught.value.field, caught.value.value) == ("entry.appointment_id", "AX")


def test_replay_needs_opened() -> None:
    with pytest.raises(InvalidValueError) as caught:
        replay([])
    assert caught.value.field == "entries"


def test_replay_equals_incremental_state() -> None:
    start = ops.open_pack("pk1", "C1", terms(10, expiry=ExpiresOn(date(2026, 6, 1))), SYDNEY, NOW)
    state, used = with_uses(start.after, ("A1", "2026-02-02T10:00"), ("A2", "2026-02-01T10:00"))
    steps: list[Callable[[PackState], ops.Change]] = [
        lambda s: ops.mark(s, "A1", Mark.NO_SHOW, NOW),
        lambda s: ops.reschedule(s, "A2", at("2026-02-05T10:00"), NOW),
        lambda s: ops.adjust(s, 2, "goodwill", NOW),
        lambda s: ops.extend(s, date(2026, 7, 1), "holiday", NOW),
        lambda s: ops.issue_invoice(s, "A2", NOW)[0],
        lambda s: ops.release(s, "A1", NOW, "cancelled"),
        lambda s: ops.expire(s, date(2026, 7, 1), NOW),
        # closed after A2 took place: closing releases only future usages (R10a)
        lambda s: ops.close(s, "moving away", at("2026-03-01T09:00")),
    ]
    entries: list[Entry] = [*start.entries, *used]
    for step in steps:
        change = step(state)
        assert len(change.entries) == 1
        entries.extend(change.entries)
        state = change.after
    assert replay(entries) == state
    assert reduce(apply, entries, None) == state
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert (state.version, state.remaining, state.expired_on) == (11, 11, date(2026, 7, 1))
    assert state.status(at("2026-03-01T00:00")) is PackStatus.CLOSED


# Derived figures -----------------------------------------------------------------------------


def test_numbering_by_start_then_order_recorded() -> None:
    state, _ = with_uses(
        opened(),
        ("A1", "2026-02-02T10:00"),
        ("A2", "2026-02-01T10:00"),
        ("A3", "2026-02-02T10:00"),
        ("A4", "2026-02-02T09:00"),
    )
    assert [u.appointment.id for u in state.usages] == ["A2", "A4", "A1", "A3"]
    assert [state.number(a) for a in ("A1", "A2", "A3", "A4")] == [3, 1, 4, 2]
    assert state.label("A3") == "Session 4 of 10"
    moved = ops.reschedule(state, "A3", at("2026-01-30T10:00"), NOW).after
    assert [u.appointment.id for u in moved.usages] == ["A3", "A2", "A4", "A1"]


def test_number_of_an_inactive_appointment_is_refused() -> None:
    with pytest.raises(InvalidValueError) as caught:
        opened().number("A9")
    assert (caught.value.field, caught.value.value) == ("appointment_id", "A9")
    assert opened().usage("A9") is None


@pytest.mark.parametrize(
    ("allowance", "minutes_or_price", "labels"),
    [
        (
            Allowance.hours(timedelta(hours=3)),
            [60, 90],
            ["Session 1, 2h left", "Session 2, 30m left"],
        ),
        (
            Allowance.money(aud("500")),
            ["120.00", "200.50"],
            ["Session 1, 380.00 AUD left", "Session 2, 179.50 AUD left"],
        ),
    ],
)
def test_hours_and_money_labels_show_what_remains(
    allowance: Allowance, minutes_or_price: list[Any], labels: list[str]
) -> None:
    state = opened(allowance, pricing=PerPack(aud("450")))
    for n, value in enumerate(minutes_or_price, start=1):
        kind = {"minutes": value} if isinstance(value, int) else {"price": value}
        state = ops.use(state, appt(f"A{n}", f"2026-02-0{n}T10:00", **kind), NOW).after
    assert [state.label(f"A{n}") for n in (1, 2)] == labels
    assert state.remaining_after(0) == state.total


def test_first_use_and_expiry_by_rule() -> None:
    fixed = opened(expiry=ExpiresOn(date(2026, 4, 16)))
    assert (fixed.first_use, fixed.expiry_date) == (None, date(2026, 4, 16))
    after_opening = opened(expiry=ExpiresAfterOpening(Period(months=3)))
    assert after_opening.expiry_date == date(2026, 4, 15)
    first_use = opened(expiry=ExpiresAfterFirstUse(Period(months=1)))
    assert first_use.expiry_date is None
    used, _ = with_uses(first_use, ("A1", "2026-03-31T10:00"), ("A2", "2026-03-10T10:00"))
    assert used.first_use == date(2026, 3, 10)
    assert used.expiry_date == date(2026, 4, 10)
    assert opened().expiry_date is None


def test_pending_expiry_is_what_a_sweep_has_yet_to_record() -> None:
    state = opened(2, expiry=ExpiresOn(date(2026, 4, 16)))
    assert state.pending_expiry == date(2026, 4, 16)
    assert not state.due_to_expire(date(2026, 4, 15))
    assert state.due_to_expire(date(2026, 4, 16))
    expired = ops.expire(state, date(2026, 4, 16), NOW).after
    assert expired.pending_expiry is None  # recorded
    assert not expired.due_to_expire(date(2030, 1, 1))
    assert ops.close(state, "", NOW).after.pending_expiry is None
    assert ops.void(state, "typo", NOW).after.pending_expiry is None
    assert opened().pending_expiry is None  # no expiry rule
    once = opened(1, expiry=ExpiresOn(date(2026, 4, 16)))
    assert ops.use(once, appt("A1"), NOW).after.pending_expiry is None  # nothing left


def test_opened_on_is_the_practice_local_date() -> None:
    late_utc = datetime.fromisoformat("2026-01-31T14:00+00:00")
    state = ops.open_pack("pk1", "C1", terms(3), SYDNEY, late_utc).after
    assert state.opened_on == date(2026, 2, 1)


def test_status_as_of_an_instant() -> None:
    state = opened(1, expiry=ExpiresOn(date(2026, 4, 16)))
    assert state.status(at("2026-04-15T23:59")) is PackStatus.OPEN
    assert state.status(at("2026-04-16T00:00")) is PackStatus.EXPIRED
    assert state.status(datetime.fromisoformat("2026-04-15T13:30+00:00")) is PackStatus.OPEN
    assert state.status(datetime.fromisoformat("2026-04-15T14:30+00:00")) is PackStatus.EXPIRED
    exhausted = ops.use(state, appt("A1"), NOW).after
    assert exhausted.status(at("2026-05-01T00:00")) is PackStatus.EXHAUSTED
    assert ops.close(state, "", NOW).after.status(NOW) is PackStatus.CLOSED
    voided = ops.void(state, "typo", NOW).after
    assert voided.status(NOW) is PackStatus.VOIDED
    assert voided.ended
    assert not state.ended
    assert opened().status(at("2099-01-01T00:00")) is PackStatus.OPEN


def test_status_refuses_a_naive_instant() -> None:
    with pytest.raises(InvalidValueError) as caught:
        opened().status(datetime(2026, 1, 1))
    assert caught.value.field == "as_of"


def test_closed_entry_records_when() -> None:
    change = ops.close(opened(), "moving", NOW)
    closed = change.entries[0]
    assert isinstance(closed, Closed)
    assert change.after.closed_at == NOW == closed.recorded_at


# Numbering holds for any order of recording and release --------------------------------------

START = datetime.fromisoformat("2026-02-01T08:00+11:00")


@scaled(0.3, deadline=None)  # 60 under ci
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(min_value=0, max_value=6)), min_size=1, max_size=12
    )
)
def test_numbers_are_start_order_then_record_order(script: list[tuple[bool, int]]) -> None:
    """Use appointment n at a random day, or release a random active one; after every step
    the numbers are 1..k sorted by (start, recorded), and replay agrees with apply."""
    state = ops.open_pack("pk1", "C1", terms(20), SYDNEY, NOW).after
    entries: list[Entry] = list(ops.open_pack("pk1", "C1", terms(20), SYDNEY, NOW).entries)
    model: list[tuple[datetime, int, str]] = []
    for n, (is_use, day) in enumerate(script):
        if is_use or not model:
            start = START + timedelta(days=day)
            change = ops.use(state, appt(f"A{n}", start), NOW)
            model.append((start, n, f"A{n}"))
        else:
            gone = model.pop(day % len(model))
            change = ops.release(state, gone[2], NOW)
        entries.extend(change.entries)
        state = change.after
        expected = [a for _, _, a in sorted(model)]
        assert [u.appointment.id for u in state.usages] == expected
        assert [state.number(a) for a in expected] == list(range(1, len(expected) + 1))
        assert state.remaining == 20 - len(expected)
    assert replay(entries) == state


# Stored JSON of the previous release still loads ----------------------------------------------


def _without(text: str, *keys: str) -> str:
    data = json.loads(text)
    for key in keys:
        del data[key]
    return json.dumps(data)


def test_a_state_stored_before_the_new_fields_loads() -> None:
    state = ops.use(opened(1), appt("A1"), NOW).after
    assert loads_state(dumps_state(state)) == state
    old = _without(dumps_state(state), "exhausted_totals", "low_balance_totals")
    assert loads_state(old) == state  # a pack at zero was exhausted at its present total


def test_events_stored_before_the_new_fields_load() -> None:
    hours = opened(Allowance.hours(timedelta(hours=1)), expiry=ExpiresOn(date(2026, 4, 16)))
    change = ops.use(hours, appt("A1", minutes=90), NOW)
    exhausted = change.events[1]
    assert loads_event(dumps_event(exhausted)) == exhausted
    older = loads_event(_without(dumps_event(exhausted), "total"))
    assert older.occurrence == older.event_id == "pk1#2.2"
    released = ops.release(change.after, "A1", NOW, "cancelled").events[0]
    assert loads_event(dumps_event(released)) == released
    old = loads_event(_without(dumps_event(released), "reason", "invoice_label", "invoice_amount"))
    assert isinstance(old, ev.UsageReleased)
    assert (old.reason, old.invoice_label, old.invoice_amount) == ("", None, None)
    expired = ops.expire(opened(expiry=ExpiresOn(date(2026, 4, 16))), date(2026, 4, 16), NOW)
    event = expired.events[0]
    assert loads_event(dumps_event(event)) == event
    old_expired = loads_event(_without(dumps_event(event), "breakage"))
    assert isinstance(old_expired, ev.PackExpired)
    assert old_expired.breakage is None
    assert old_expired.occurrence == "pk1:PackExpired:2026-04-16"
