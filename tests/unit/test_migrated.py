"""R19: a pack opened as migrated from another system, with its original opening date, what
was used there and the sessions numbered there."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import events as ev
from sessionpacks import operations as ops
from sessionpacks.clock import FixedClock
from sessionpacks.errors import InvalidValueError
from sessionpacks.ledger import Migration, replay
from sessionpacks.model import (
    Allowance,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    Money,
    Period,
    PerPack,
    PerSession,
    Policies,
    Practice,
)
from sessionpacks.pricing import figures, invoice_line, recognised, recognised_before
from sessionpacks.reports import report
from sessionpacks.serialization import dumps_state, loads_state
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

from ..conftest import appt, at, aud, terms

SYDNEY = Practice("clinic-1", "Australia/Sydney")
NOW = at("2026-01-15T09:00")


def test_e25_a_migrated_pack_continues_its_numbering_and_expiry(
    service: PackService, clock: FixedClock
) -> None:
    three_months = terms(10, expiry=ExpiresAfterOpening(Period(months=3)))
    migrated = Migration(date(2025, 11, 1), used=6)
    pack = service.open_pack("C1", terms=three_months, migrated=migrated)
    assert pack.expiry_date == date(2026, 2, 1)
    assert pack.remaining == 4
    opened = service.events_since(0)[-1].event
    assert isinstance(opened, ev.PackOpened)
    assert opened.migrated
    assert [type(r.event) for r in service.events_since(0)] == [ev.PackOpened]  # no SessionUsed
    clock.set(at("2026-01-20T11:00"))
    done = service.assign(appt("A1", "2026-01-20T10:00"), pack_id="pk1")
    assert done.label == "Session 7 of 10"
    assert service.pack("pk1").remaining == 3


def test_a_migrated_per_pack_price_is_not_charged_again_and_its_money_adds_up() -> None:
    per_pack = terms(10, pricing=PerPack(aud("1000")))
    change = ops.open_pack(
        "pk1", "C1", per_pack, SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), 6)
    )
    used = ops.use(change.after, appt("A1", "2026-01-20T10:00"), NOW).after
    line = invoice_line(used, "A1")
    assert (line.amount, line.prepaid, line.label) == (aud("0"), True, "Session 7 of 10")
    money = figures(used)
    assert money.price == money.recognised + money.unearned
    assert (money.recognised, money.usable) == (aud("700"), aud("300"))
    assert recognised_before(used) == aud("600")
    assert [r.amount for r in recognised(used)] == [aud("100")]
    assert [r.number for r in recognised(used)] == [7]


def test_a_migrated_per_session_pack_charges_the_tier_of_its_next_number() -> None:
    tiers = terms(10, pricing=PerSession.reduced(aud("150"), aud("120")))
    change = ops.open_pack(
        "pk1", "C1", tiers, SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), 1)
    )
    used = ops.use(change.after, appt("A1", "2026-01-20T10:00"), NOW).after
    assert invoice_line(used, "A1").amount == aud("120")
    assert used.label("A1") == "Session 2 of 10"


def test_the_sessions_numbered_elsewhere_can_differ_from_what_was_used() -> None:
    change = ops.open_pack(
        "pk1", "C1", terms(10), SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), 6, numbered=4)
    )
    used = ops.use(change.after, appt("A1", "2026-01-20T10:00"), NOW).after
    assert used.label("A1") == "Session 5 of 10"
    assert used.remaining == 3


def test_hours_and_money_packs_carry_what_was_used() -> None:
    hours = terms(Allowance.hours(timedelta(hours=5)))
    change = ops.open_pack(
        "pk1", "C1", hours, SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), timedelta(hours=2))
    )
    used = ops.use(change.after, appt("A1", "2026-01-20T10:00"), NOW).after
    assert used.remaining == timedelta(hours=2)
    assert used.label("A1") == "Session 1, 2h left"


@pytest.mark.parametrize(
    ("migration", "field"),
    [
        (Migration(date(2025, 11, 1), 10), "migrated.used"),  # all of it
        (Migration(date(2025, 11, 1), -1), "migrated.used"),
        (Migration(date(2025, 11, 1), timedelta(hours=1)), "migrated.used"),  # wrong metric
        (Migration(date(2025, 11, 1), Money("1.00", "AUD")), "migrated.used"),
        (Migration(date(2026, 2, 1), 1), "migrated.opened_on"),  # after today
        ("2025-11-01", "migrated"),
    ],
)
def test_a_migration_that_cannot_be_is_refused(migration: object, field: str) -> None:
    with pytest.raises(InvalidValueError) as refused:
        ops.open_pack("pk1", "C1", terms(10), SYDNEY, NOW, migrated=migration)  # type: ignore[arg-type]
    assert refused.value.field == field


@pytest.mark.parametrize(
    "bad", [{"opened_on": "2025-11-01"}, {"opened_on": date(1800, 1, 1)}, {"numbered": -1}]
)
def test_a_migration_with_bad_values_cannot_be_made(bad: dict[str, object]) -> None:
    values: dict[str, object] = {"opened_on": date(2025, 11, 1), "used": 1, **bad}
    with pytest.raises(InvalidValueError):
        Migration(**values)  # type: ignore[arg-type]


def test_an_after_first_use_pack_used_elsewhere_counts_from_its_opening() -> None:
    rule = terms(10, expiry=ExpiresAfterFirstUse(Period(months=3)))
    used = ops.open_pack("pk1", "C1", rule, SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), 2))
    assert used.after.expiry_date == date(2026, 2, 1)
    unused = ops.open_pack("pk2", "C1", rule, SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), 0))
    assert unused.after.expiry_date is None


def test_the_migration_round_trips_and_replays() -> None:
    change = ops.open_pack(
        "pk1", "C1", terms(10), SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), 6)
    )
    used = ops.use(change.after, appt("A1", "2026-01-20T10:00"), NOW)
    assert loads_state(dumps_state(used.after)) == used.after
    assert replay([*change.entries, *used.entries]) == used.after


def test_a_report_sells_a_migrated_pack_at_the_value_it_brings() -> None:
    per_pack = terms(10, pricing=PerPack(aud("1000")))
    change = ops.open_pack(
        "pk1", "C1", per_pack, SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), 6)
    )
    used = ops.use(change.after, appt("A1", "2026-01-20T10:00"), at("2026-01-20T11:00"))
    [line] = report(
        [[*change.entries, *used.entries]], at("2026-01-01T00:00"), at("2026-02-01T00:00")
    ).totals
    assert (line.sold, line.recognised, line.closing_unearned) == (
        aud("400"),
        aud("100"),
        aud("300"),
    )
    assert line.balances


@given(used=st.integers(0, 9), numbered=st.none() | st.integers(0, 10), count=st.integers(0, 4))
@scaled(0.5)
def test_numbers_continue_after_those_used_elsewhere(
    used: int, numbered: int | None, count: int
) -> None:
    state = ops.open_pack(
        "pk1", "C1", terms(10), SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), used, numbered)
    ).after
    for n in range(min(count, 10 - used)):
        state = ops.use(state, appt(f"A{n}", f"2026-01-{16 + n}T10:00"), NOW).after
    first = numbered if numbered is not None else used
    assert [state.number(u.appointment.id) for u in state.usages] == list(
        range(first + 1, first + 1 + len(state.usages))
    )
    assert state.remaining == 10 - used - len(state.usages)


def test_an_expiry_date_set_there_stands() -> None:
    rule = terms(10, expiry=ExpiresAfterOpening(Period(months=3)))
    moved = Migration(date(2025, 11, 1), 6, expires_on=date(2026, 3, 15))
    state = ops.open_pack("pk1", "C1", rule, SYDNEY, NOW, migrated=moved).after
    assert state.expiry_date == date(2026, 3, 15)
    with pytest.raises(InvalidValueError):
        Migration(date(2025, 11, 1), 6, expires_on="2026-03-15")  # type: ignore[arg-type]


def test_a_zero_use_and_bad_dates_or_numbers_of_a_migration() -> None:
    hours = terms(Allowance.hours(timedelta(hours=5)))
    state = ops.open_pack(
        "pk1", "C1", hours, SYDNEY, NOW, migrated=Migration(date(2025, 11, 1))
    ).after
    assert state.remaining == timedelta(hours=5)
    early = Migration(date(2025, 11, 1), 1, expires_on=date(2025, 11, 1))
    with pytest.raises(InvalidValueError) as ends:
        ops.open_pack("pk1", "C1", terms(10), SYDNEY, NOW, migrated=early)
    assert ends.value.field == "migrated.expires_on"
    with pytest.raises(InvalidValueError) as numbered:
        ops.open_pack(
            "pk1", "C1", terms(10), SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), 1, 50)
        )
    assert numbered.value.field == "migrated.numbered"


def test_a_migrated_pack_arriving_at_its_threshold_tells_of_it_once() -> None:
    low = terms(10, policies=Policies(low_balance_at=2))
    change = ops.open_pack("pk1", "C1", low, SYDNEY, NOW, migrated=Migration(date(2025, 11, 1), 8))
    assert [type(e).__name__ for e in change.events] == ["PackOpened", "LowBalance"]
    used = ops.use(change.after, appt("A1", "2026-01-20T10:00"), NOW)
    assert [type(e).__name__ for e in used.events] == ["SessionUsed"]
    assert replay([*change.entries, *used.entries]) == used.after
