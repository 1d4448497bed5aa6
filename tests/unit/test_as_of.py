"""R23: any figure as of a past recorded instant, from the entries recorded up to it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import operations as ops
from sessionpacks.clock import FixedClock
from sessionpacks.errors import InvalidValueError, NotFoundError
from sessionpacks.ledger import replay, replay_as_of
from sessionpacks.model import ExpiresOn, PerPack, Practice
from sessionpacks.service import PackService

from ..conftest import appt, at, aud, terms

SYDNEY = Practice("clinic-1", "Australia/Sydney")


def test_e29_the_balance_and_labels_as_of_a_past_instant(
    service: PackService, clock: FixedClock
) -> None:
    clock.set(at("2026-03-01T09:00"))
    service.open_pack("C1", terms=terms(10))
    clock.set(at("2026-03-02T11:00"))
    service.assign(appt("A1", "2026-03-02T10:00"), pack_id="pk1")
    clock.set(at("2026-03-09T11:00"))
    service.assign(appt("A2", "2026-03-09T10:00"), pack_id="pk1")
    then = service.pack("pk1", as_of=at("2026-03-05T12:00"))
    assert (then.remaining, then.total) == (9, 10)
    assert then.label("A1") == "Session 1 of 10"
    assert then.usage("A2") is None
    assert service.pack("pk1").remaining == 8
    line = service.invoice_line("A1", as_of=at("2026-03-05T12:00"))
    assert line.label == "Session 1 of 10"
    assert service.ledger("pk1")[-1].sequence == 3  # the read wrote nothing


def test_as_of_before_opening_and_other_bad_arguments(service: PackService) -> None:
    service.open_pack("C1", terms=terms(10))
    with pytest.raises(NotFoundError) as early:
        service.pack("pk1", as_of=at("2026-01-01T00:00"))
    assert early.value.field == "pack_id"
    assert service.client_packs("C1", as_of=at("2026-01-01T00:00")) == []
    with pytest.raises(InvalidValueError) as naive:
        service.pack("pk1", as_of=at("2026-03-01T00:00").replace(tzinfo=None))
    assert naive.value.field == "as_of"
    service.assign(appt("A1", "2026-03-02T10:00"), pack_id="pk1")
    with pytest.raises(NotFoundError):
        service.invoice_line("A1", as_of=at("2026-01-15T08:00"))
    with pytest.raises(InvalidValueError) as keyed:
        service.invoice_line("A1", as_of=at("2026-03-05T00:00"), idempotency_key="k1")
    assert keyed.value.field == "idempotency_key"


def test_the_line_as_of_an_instant_comes_from_the_pack_holding_it_then(
    service: PackService, clock: FixedClock
) -> None:
    """An appointment moved since: its line as of before the move is the first pack's."""
    clock.set(at("2026-03-01T09:00"))
    service.open_pack("C1", terms=terms(10, name="Ten"))
    service.open_pack("C1", terms=terms(5, name="Five"))
    booked = appt("A1", "2026-03-20T10:00")
    service.assign(booked, pack_id="pk1")
    clock.set(at("2026-03-10T09:00"))
    service.move(booked, "pk2")
    before = service.invoice_line("A1", as_of=at("2026-03-05T12:00"))
    assert (before.pack_id, before.label) == ("pk1", "Session 1 of 10")
    after = service.invoice_line("A1", as_of=at("2026-03-15T12:00"))
    assert (after.pack_id, after.label) == ("pk2", "Session 1 of 5")


def test_money_figures_as_of(service: PackService, clock: FixedClock) -> None:
    per_pack = terms(10, pricing=PerPack(aud("1000")), expiry=ExpiresOn(date(2026, 6, 1)))
    service.open_pack("C1", terms=per_pack)
    clock.set(at("2026-03-02T11:00"))
    service.assign(appt("A1", "2026-03-02T10:00"), pack_id="pk1")
    clock.set(at("2026-03-20T11:00"))
    service.close("pk1", "moved away")
    before = service.figures("pk1", as_of=at("2026-03-10T00:00"))
    assert (before.recognised, before.usable, before.refundable) == (
        aud("100"),
        aud("900"),
        aud("0"),
    )
    after = service.figures("pk1")
    assert after.refundable == aud("900")


def test_a_clock_set_back_keeps_what_was_known_a_prefix() -> None:
    opening = ops.open_pack("pk1", "C1", terms(10), SYDNEY, at("2026-03-05T09:00"))
    used = ops.use(opening.after, appt("A1", "2026-03-06T10:00"), at("2026-03-04T09:00"))
    ledger = [*opening.entries, *used.entries]
    assert replay_as_of(ledger, at("2026-03-04T12:00")) is None
    assert replay_as_of(ledger, at("2026-03-05T09:00")) is None  # recorded before it: none
    assert replay_as_of(ledger, at("2026-03-05T09:01")) == used.after


@given(steps=st.lists(st.integers(0, 3), min_size=1, max_size=10), cut=st.integers(0, 40))
def test_as_of_is_the_state_at_that_time_for_any_prefix(steps: list[int], cut: int) -> None:
    """The state as of an instant is the replay of exactly the entries recorded by then."""
    t = at("2026-03-01T09:00")
    change = ops.open_pack("pk1", "C1", terms(10), SYDNEY, t)
    ledger, states = list(change.entries), [(t, change.after)]
    for n, gap in enumerate(steps):
        t += timedelta(hours=gap)
        change = ops.use(change.after, appt(f"A{n}", f"2026-03-{2 + n:02d}T10:00"), t)
        ledger += change.entries
        states.append((t, change.after))
    moment = at("2026-03-01T09:00") + timedelta(hours=cut)
    known = [state for when, state in states if when < moment]
    assert replay_as_of(ledger, moment) == (known[-1] if known else None)
    assert replay_as_of(ledger, states[-1][0] + timedelta(seconds=1)) == replay(ledger)


def test_money_as_of_agrees_with_the_report_as_of(service: PackService, clock: FixedClock) -> None:
    """Expiry counts as the ledger recorded it by then, as the reports count it (R23, R26)."""
    per_pack = terms(10, pricing=PerPack(aud("1000")), expiry=ExpiresOn(date(2026, 3, 31)))
    service.open_pack("C1", terms=per_pack)
    clock.set(at("2026-03-02T11:00"))
    service.assign(appt("A1", "2026-03-02T10:00"), pack_id="pk1")
    clock.set(at("2026-04-02T06:00"))
    service.sweep(date(2026, 4, 2))
    then = at("2026-04-01T12:00")  # expired by the calendar, not yet by the sweep
    money = service.figures("pk1", as_of=then)
    [line] = service.report(date(2026, 1, 1), date(2026, 4, 2), as_of=then).totals
    assert (money.usable, money.breakage) == (aud("900"), aud("0"))
    assert line.closing_unearned == money.usable
    assert line.recognised == money.recognised
