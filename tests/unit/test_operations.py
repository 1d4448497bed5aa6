"""Pure decisions on a pack: entries, events and the state after (R3, R5 to R12).

Every refusal path has its own test in ``test_refusals.py``; these are the paths that write.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest

from sessionpacks import events as ev
from sessionpacks import operations as ops
from sessionpacks.errors import InvalidValueError, RefusedError
from sessionpacks.ledger import (
    Closed,
    Expired,
    Extended,
    Invoiced,
    Mark,
    Marked,
    Opened,
    PackState,
    Released,
    Rescheduled,
    Used,
)
from sessionpacks.model import (
    Allowance,
    ExpiresAfterFirstUse,
    ExpiresOn,
    Money,
    Period,
    PerPack,
    PerSession,
    Policies,
    Practice,
)

from ..conftest import appt, at, aud, terms

SYDNEY = Practice("clinic-1", "Australia/Sydney")
NOW = at("2026-01-15T09:00")


def opened(allowance: Any = 10, **kwargs: Any) -> PackState:
    return ops.open_pack("pk1", "C1", terms(allowance, **kwargs), SYDNEY, NOW).after


def used(state: PackState, *appointment_ids: str, day: int = 2) -> PackState:
    """``state`` after using each appointment, one a day from 2026-02-``day``."""
    for n, appointment_id in enumerate(appointment_ids):
        start = at("2026-02-01T10:00") + timedelta(days=day - 1 + n)
        state = ops.use(state, appt(appointment_id, start), NOW).after
    return state


def kinds(change: ops.Change) -> list[type]:
    return [type(e) for e in change.events]


# Opening -------------------------------------------------------------------------------------


def test_open_pack_records_terms_and_template() -> None:
    change = ops.open_pack(
        "pk1",
        "C1",
        terms(10),
        SYDNEY,
        NOW,
        template_id="T",
        template_version=3,
        charged_on_open=True,
    )
    assert change.before is None
    assert change.expected_version == 0
    assert change.pack_id == "pk1"
    (entry,) = change.entries
    assert isinstance(entry, Opened)
    assert (entry.sequence, entry.recorded_at, entry.timezone) == (1, NOW, "Australia/Sydney")
    state = change.after
    assert (state.template_id, state.template_version) == ("T", 3)
    assert state.charged_on_open
    assert state.price_charged
    (event,) = change.events
    assert event == ev.PackOpened(
        event_id="pk1#1.1",
        pack_id="pk1",
        client_id="C1",
        occurred_at=NOW,
        name="10 x Physio",
        template_id="T",
    )


# Using ---------------------------------------------------------------------------------------


def test_use_consumes_one_session_and_numbers_it() -> None:
    state = used(opened(), "A1")
    change = ops.use(state, appt("A0", "2026-01-20T10:00"), at("2026-01-16T12:00"))
    assert change.expected_version == 2
    (entry,) = change.entries
    assert isinstance(entry, Used)
    assert (entry.covered, entry.shortfall, entry.sequence) == (1, 0, 3)
    (event,) = change.events
    assert isinstance(event, ev.SessionUsed)
    assert (event.event_id, event.number, event.remaining) == ("pk1#3.1", 1, 8)
    assert event.occurred_at == at("2026-01-16T12:00")
    assert change.after.number("A1") == 2


def test_use_before_opening_is_allowed() -> None:
    state = opened(expiry=ExpiresOn(date(2026, 4, 16)))
    change = ops.use(state, appt("A1", "2025-12-01T10:00"), NOW)
    assert change.after.number("A1") == 1


def test_use_again_writes_nothing() -> None:
    state = used(opened(), "A1")
    change = ops.use(state, appt("A1"), NOW)
    assert (change.entries, change.events) == ((), ())
    assert change.after is state
    assert change.before is state


def test_use_on_a_closed_pack_is_still_idempotent_for_its_usage() -> None:
    closed = ops.close(used(opened(), "A1"), "moving", at("2026-03-01T09:00")).after
    assert ops.use(closed, appt("A1", "2026-02-02T10:00"), NOW).entries == ()


def test_hours_pack_covers_what_remains() -> None:
    state = opened(Allowance.hours(timedelta(hours=1)))
    change = ops.use(state, appt("A1", minutes=90), NOW)
    entry = change.entries[0]
    assert isinstance(entry, Used)
    assert (entry.covered, entry.shortfall) == (timedelta(hours=1), timedelta(minutes=30))
    assert kinds(change) == [ev.SessionUsed, ev.PackExhausted]
    assert change.events[1].event_id == "pk1#2.2"


def test_money_pack_covers_the_price() -> None:
    state = opened(Allowance.money(aud("100")), pricing=PerPack(aud("90")))
    change = ops.use(state, appt("A1", price="30.50"), NOW)
    event = change.events[0]
    assert isinstance(event, ev.SessionUsed)
    assert (event.covered, event.shortfall, event.remaining) == (aud("30.50"), aud(0), aud("69.50"))


def test_free_appointment_on_a_money_pack_consumes_nothing() -> None:
    state = opened(Allowance.money(aud("100")), pricing=PerPack(aud("90")))
    change = ops.use(state, appt("A1", price="0"), NOW)
    assert change.after.remaining == aud("100")
    assert kinds(change) == [ev.SessionUsed]


def test_low_balance_once_when_crossing_the_threshold() -> None:
    state = opened(3, policies=Policies(low_balance_at=1))
    first = ops.use(state, appt("A1", "2026-02-02T10:00"), NOW)
    second = ops.use(first.after, appt("A2", "2026-02-03T10:00"), NOW)
    third = ops.use(second.after, appt("A3", "2026-02-04T10:00"), NOW)
    assert kinds(first) == [ev.SessionUsed]
    assert kinds(second) == [ev.SessionUsed, ev.LowBalance]
    assert kinds(third) == [ev.SessionUsed, ev.PackExhausted]
    low = second.events[1]
    assert isinstance(low, ev.LowBalance)
    assert low.remaining == 1


def test_earlier_first_use_moves_the_expiry() -> None:
    state = used(opened(expiry=ExpiresAfterFirstUse(Period(months=1))), "A1", day=20)
    assert state.expiry_date == date(2026, 3, 20)
    earlier = ops.use(state, appt("A0", "2026-02-10T10:00"), NOW).after
    assert earlier.expiry_date == date(2026, 3, 10)


# Releasing, rescheduling, marking, cancelling ------------------------------------------------


def test_release_restores_and_renumbers() -> None:
    state = used(opened(), "A1", "A2", "A3")
    change = ops.release(state, "A2", NOW, "client rang")
    entry = change.entries[0]
    assert isinstance(entry, Released)
    assert entry.reason == "client rang"
    assert change.after.remaining == 8
    assert change.after.label("A3") == "Session 2 of 10"
    assert change.events == (
        ev.UsageReleased(
            event_id="pk1#5.1",
            pack_id="pk1",
            client_id="C1",
            occurred_at=NOW,
            appointment_id="A2",
            remaining=8,
            reason="client rang",
        ),
    )


def test_release_of_the_last_session_reopens_an_exhausted_pack() -> None:
    state = used(opened(1), "A1")
    assert ops.release(state, "A1", NOW).after.remaining == 1


def test_reschedule_moves_the_usage() -> None:
    state = used(opened(expiry=ExpiresOn(date(2026, 4, 16))), "A1", "A2")
    change = ops.reschedule(state, "A1", at("2026-04-15T23:30"), NOW)
    assert isinstance(change.entries[0], Rescheduled)
    assert kinds(change) == [ev.UsageRescheduled]
    assert change.after.number("A1") == 2
    assert ops.reschedule(state, "A1", at("2026-02-02T10:00"), NOW).entries == ()


def test_reschedule_earlier_first_use_keeps_later_usages_valid() -> None:
    state = used(opened(expiry=ExpiresAfterFirstUse(Period(months=1))), "A1", "A2", day=20)
    change = ops.reschedule(state, "A2", at("2026-02-25T10:00"), NOW)
    assert change.after.expiry_date == date(2026, 3, 20)


def test_mark_is_idempotent_and_can_change() -> None:
    state = used(opened(), "A1")
    late = ops.mark(state, "A1", Mark.LATE_CANCEL, NOW)
    assert isinstance(late.entries[0], Marked)
    assert kinds(late) == [ev.UsageMarked]
    assert ops.mark(late.after, "A1", Mark.LATE_CANCEL, NOW).entries == ()
    no_show = ops.mark(late.after, "A1", Mark.NO_SHOW, NOW).after.usage("A1")
    assert no_show is not None
    assert no_show.mark is Mark.NO_SHOW


CONSUMES = Policies(late_cancel_notice=timedelta(hours=24), late_cancel_consumes=True)


@pytest.mark.parametrize(
    ("policies", "when", "kwargs", "outcome"),
    [
        (CONSUMES, "2026-02-01T10:00", {}, "cancelled"),
        (CONSUMES, "2026-02-01T10:01", {}, Mark.LATE_CANCEL),
        (CONSUMES, "2026-02-02T11:00", {}, Mark.LATE_CANCEL),
        (Policies(), "2026-02-02T07:00", {}, "late cancel"),
        (Policies(late_cancel_consumes=True), "2026-01-01T07:00", {"late": True}, Mark.LATE_CANCEL),
        (CONSUMES, "2026-02-02T07:00", {"late": False}, "cancelled"),
        (Policies(no_show_consumes=True), "2026-02-02T11:00", {"no_show": True}, Mark.NO_SHOW),
        (CONSUMES, "2026-02-02T11:00", {"no_show": True}, "no-show"),
    ],
)
def test_cancel_follows_the_policy(
    policies: Policies, when: str, kwargs: dict[str, Any], outcome: Mark | str
) -> None:
    state = used(opened(policies=policies), "A1")
    change = ops.cancel(state, "A1", at(when), **kwargs)
    entry = change.entries[0]
    if isinstance(outcome, Mark):
        assert isinstance(entry, Marked)
        assert entry.mark is outcome
        assert change.after.remaining == 9
    else:
        assert isinstance(entry, Released)
        assert entry.reason == outcome
        assert change.after.remaining == 10


def test_cancel_judges_lateness_from_cancelled_at() -> None:
    state = used(opened(policies=CONSUMES), "A1")
    change = ops.cancel(state, "A1", at("2026-02-03T09:00"), cancelled_at=at("2026-01-30T09:00"))
    assert isinstance(change.entries[0], Released)
    assert change.entries[0].recorded_at == at("2026-02-03T09:00")


# Adjusting, extending, expiring, closing, voiding --------------------------------------------


def test_adjust_credit_and_debit() -> None:
    state = used(opened(3), "A1")
    credit = ops.adjust(state, 1, "goodwill", NOW)
    assert credit.after.remaining == 3
    assert credit.after.total == 4
    assert credit.events == (
        ev.PackAdjusted(
            event_id="pk1#3.1",
            pack_id="pk1",
            client_id="C1",
            occurred_at=NOW,
            amount=1,
            reason="goodwill",
            remaining=3,
        ),
    )
    debit = ops.adjust(credit.after, -3, "correction", NOW)
    assert debit.after.remaining == 0
    assert kinds(debit) == [ev.PackAdjusted, ev.PackExhausted]


def test_adjust_in_hours_and_money() -> None:
    hours = opened(
        Allowance.hours(timedelta(hours=2)), policies=Policies(low_balance_at=timedelta(hours=1))
    )
    debit = ops.adjust(hours, timedelta(minutes=-60), "correction", NOW)
    assert debit.after.remaining == timedelta(hours=1)
    assert kinds(debit) == [ev.PackAdjusted, ev.LowBalance]
    money = opened(Allowance.money(aud("100")), pricing=PerPack(aud("90")))
    assert ops.adjust(money, aud("-0.01"), "rounding", NOW).after.remaining == aud("99.99")


def test_credit_to_an_exhausted_pack_reopens_it_without_events_of_balance() -> None:
    state = used(opened(1, policies=None), "A1")
    change = ops.adjust(state, 2, "goodwill", NOW)
    assert kinds(change) == [ev.PackAdjusted]
    assert change.after.remaining == 2


def test_extend_moves_the_expiry_and_reopens_an_expired_pack() -> None:
    state = opened(expiry=ExpiresOn(date(2026, 4, 16)))
    expired = ops.expire(state, date(2026, 4, 16), NOW).after
    change = ops.extend(expired, date(2026, 5, 16), "surgery", NOW)
    entry = change.entries[0]
    assert isinstance(entry, Extended)
    assert (entry.until, entry.reason) == (date(2026, 5, 16), "surgery")
    assert kinds(change) == [ev.ExpiryExtended]
    assert change.after.expiry_date == date(2026, 5, 16)
    assert ops.use(change.after, appt("A1", "2026-05-15T10:00"), NOW).entries
    again = ops.expire(change.after, date(2026, 5, 16), NOW)
    assert kinds(again) == [ev.PackExpired]


def test_expire_once_per_expiry_if_something_left() -> None:
    state = opened(3, expiry=ExpiresOn(date(2026, 4, 16)))
    assert ops.expire(state, date(2026, 4, 15), NOW).entries == ()
    change = ops.expire(state, date(2026, 4, 20), NOW)
    entry = change.entries[0]
    assert isinstance(entry, Expired)
    assert (entry.expiry_date, entry.as_of) == (date(2026, 4, 16), date(2026, 4, 20))
    event = change.events[0]
    assert isinstance(event, ev.PackExpired)
    assert (event.expiry_date, event.remaining) == (date(2026, 4, 16), 3)
    assert ops.expire(change.after, date(2026, 4, 21), NOW).entries == ()


@pytest.mark.parametrize(
    "state",
    [
        opened(),
        used(opened(1, expiry=ExpiresOn(date(2026, 4, 16))), "A1"),
        ops.close(opened(expiry=ExpiresOn(date(2026, 4, 16))), "", NOW).after,
        ops.void(opened(expiry=ExpiresOn(date(2026, 4, 16))), "", NOW).after,
    ],
    ids=["no expiry", "exhausted", "closed", "voided"],
)
def test_expire_skips_packs_with_nothing_to_expire(state: PackState) -> None:
    assert ops.expire(state, date(2030, 1, 1), NOW).entries == ()


def test_close_reports_what_remains() -> None:
    change = ops.close(used(opened(), "A1"), "moving", at("2026-03-01T09:00"))
    (event,) = change.events
    assert isinstance(event, ev.PackClosed)
    assert (event.remaining, event.reason) == (9, "moving")


def test_void_an_unused_pack() -> None:
    state = ops.release(used(opened(), "A1"), "A1", NOW).after
    change = ops.void(state, "opened in error", NOW)
    assert change.after.voided_at == NOW
    assert kinds(change) == [ev.PackVoided]


# Invoicing -----------------------------------------------------------------------------------


def test_invoice_is_issued_once_and_keeps_its_label() -> None:
    state = used(opened(), "A2")
    change, line = ops.issue_invoice(state, "A2", NOW)
    entry = change.entries[0]
    assert isinstance(entry, Invoiced)
    assert (entry.number, entry.label, entry.amount) == (1, "Session 1 of 10", aud("120"))
    assert change.events == ()
    earlier = ops.use(change.after, appt("A1", "2026-01-20T10:00"), NOW).after
    again, same = ops.issue_invoice(earlier, "A2", NOW)
    assert again.entries == ()
    assert same == line
    assert earlier.label("A2") == "Session 2 of 10"


def test_event_ids_are_unique_per_pack_and_entry() -> None:
    state = opened(2, policies=Policies(low_balance_at=1))
    ids: list[str] = []
    for appointment_id in ("A1", "A2"):
        change = ops.use(state, appt(appointment_id), NOW)
        ids.extend(e.event_id for e in change.events)
        state = change.after
    assert ids == ["pk1#2.1", "pk1#2.2", "pk1#3.1", "pk1#3.2"]


def test_unusable_because_is_none_for_a_usable_pack() -> None:
    assert ops.unusable_because(opened(), appt("A1")) is None
    refusal = ops.unusable_because(used(opened(1), "A1"), appt("A2"))
    assert isinstance(refusal, RefusedError)
    assert refusal.rule == "R3"


def test_instants_of_the_decisions_are_aware() -> None:
    naive = datetime(2026, 1, 15, 9)
    with pytest.raises(InvalidValueError, match="recorded_at"):
        ops.close(opened(), "", naive)


# The repeated hour of a DST change (Sydney, 2026-04-05 03:00 AEDT -> 02:00 AEST) --------------

EARLY = datetime(2026, 4, 5, 2, 45, fold=0, tzinfo=SYDNEY.zone)  # 15:45Z
LATE = datetime(2026, 4, 5, 2, 15, fold=1, tzinfo=SYDNEY.zone)  # 16:15Z


def test_numbering_follows_instants_in_the_repeated_hour() -> None:
    state = ops.use(opened(), appt("A2", LATE), NOW).after
    state = ops.use(state, appt("A1", EARLY), NOW).after
    assert (state.number("A1"), state.number("A2")) == (1, 2)


def test_reschedule_across_the_repeated_hour_is_recorded() -> None:
    state = ops.use(opened(), appt("A1", EARLY), NOW).after
    moved = ops.reschedule(state, "A1", EARLY.replace(fold=1), NOW)
    assert len(moved.entries) == 1
    same_instant = EARLY.astimezone(UTC)
    assert ops.reschedule(state, "A1", same_instant, NOW).entries == ()


def test_lateness_counts_real_hours_across_a_dst_change() -> None:
    state = ops.use(opened(policies=CONSUMES), appt("A1", "2026-04-05T09:00"), NOW).after
    cancelled = at("2026-04-04T09:30")  # 24.5 real hours before, 23.5 by the wall clock
    for written in (cancelled, cancelled.astimezone(UTC)):
        change = ops.cancel(state, "A1", NOW, cancelled_at=written)
        assert isinstance(change.entries[0], Released)
    late = ops.cancel(state, "A1", NOW, cancelled_at=at("2026-04-04T10:30"))
    assert isinstance(late.entries[0], Marked)


# Rules settled after review -------------------------------------------------------------------


def test_an_earlier_first_use_that_would_expire_a_later_usage_is_unusable() -> None:
    # Valid 1 month after first use; A1 on 2026-03-10 is the first use. A0 on 2026-02-01 would
    # become the first use and end validity on 2026-03-01, before A1.
    state = ops.open_pack(
        "pk1",
        "C1",
        terms(expiry=ExpiresAfterFirstUse(Period(months=1))),
        Practice("p", "Australia/Sydney"),
        at("2026-01-15T09:00"),
    ).after
    state = ops.use(state, appt("A1", "2026-03-10T10:00"), at("2026-01-15T09:00")).after
    refusal = ops.unusable_because(state, appt("A0", "2026-02-01T10:00"))
    assert refusal is not None
    assert (refusal.rule, refusal.field) == ("R5", "appointment.start")
    assert "before appointment A1" in refusal.reason
    assert ops.unusable_because(state, appt("A0", "2026-02-20T10:00")) is None


@pytest.mark.parametrize("no_show", [True, False])
def test_a_marked_usage_cannot_be_cancelled_again(no_show: bool) -> None:
    policies = Policies(late_cancel_consumes=True, no_show_consumes=False)
    state = ops.open_pack(
        "pk1",
        "C1",
        terms(policies=policies),
        Practice("p", "Australia/Sydney"),
        at("2026-01-15T09:00"),
    ).after
    state = ops.use(state, appt("A1", "2026-02-02T10:00"), at("2026-01-15T09:00")).after
    state = ops.cancel(state, "A1", at("2026-02-02T09:00")).after
    assert state.usages[0].mark is Mark.LATE_CANCEL
    with pytest.raises(RefusedError) as refused:
        ops.cancel(state, "A1", at("2026-02-02T11:00"), no_show=no_show)
    assert (refused.value.rule, refused.value.field, refused.value.value) == (
        "R7",
        "appointment_id",
        "A1",
    )


# R6a Same appointment, same facts ---------------------------------------------------------------

E20 = appt("A1", "2026-03-02T10:00", client="C1", price="120.00")


@pytest.mark.parametrize(
    ("changes", "field", "value", "shown"),
    [
        ({"client_id": "C2"}, "appointment.client_id", "C2", "client_id C1, not C2"),
        ({"service_id": "massage"}, "appointment.service_id", "massage", "physio, not massage"),
        (
            {"start": at("2026-03-02T11:00")},
            "appointment.start",
            "2026-03-02T11:00:00+11:00",
            "start 2026-03-02T10:00:00+11:00, not 2026-03-02T11:00:00+11:00",
        ),
        ({"duration": timedelta(minutes=45)}, "appointment.duration", timedelta(minutes=45), ""),
        ({"price": aud("100.00")}, "appointment.price", aud("100.00"), "120.00 AUD, not 100.00"),
        (
            {"price": Money("120.00", "USD")},
            "appointment.price.currency",
            "USD",
            "price.currency AUD, not USD",
        ),
        # the first field that differs is named: client before price
        ({"client_id": "C2", "price": aud("1")}, "appointment.client_id", "C2", ""),
    ],
)
def test_differing_fact_names_the_first_fact_and_both_values(
    changes: dict[str, Any], field: str, value: Any, shown: str
) -> None:
    refusal = ops.differing_fact(E20, attrs.evolve(E20, **changes))
    assert refusal is not None
    assert (refusal.rule, refusal.field, refusal.value) == ("R6a", field, value)
    assert refusal.reason.startswith("appointment A1 is recorded with ")
    assert shown in refusal.reason
    assert refusal.reason.endswith("; a new start is a reschedule")


def test_the_same_instant_with_another_offset_is_the_same_fact() -> None:
    in_utc = attrs.evolve(E20, start=E20.start.astimezone(UTC))
    assert ops.differing_fact(E20, in_utc) is None
    assert ops.differing_fact(E20, attrs.evolve(E20, price=aud("120"))) is None


def test_e20_use_refuses_an_active_appointment_with_other_facts() -> None:
    state = ops.use(opened(), E20, NOW).after
    with pytest.raises(RefusedError) as refused:
        ops.use(state, attrs.evolve(E20, client_id="C2"), NOW)
    assert (refused.value.rule, refused.value.field, refused.value.value) == (
        "R6a",
        "appointment.client_id",
        "C2",
    )
    assert "C1" in str(refused.value)
    again = ops.use(state, attrs.evolve(E20, start=E20.start.astimezone(UTC)), NOW)
    assert (again.entries, again.events, again.after) == ((), (), state)


def test_a_rescheduled_usage_is_recorded_with_its_new_start() -> None:
    state = ops.use(opened(), E20, NOW).after
    moved = ops.reschedule(state, "A1", at("2026-03-03T10:00"), NOW).after
    with pytest.raises(RefusedError, match="a new start is a reschedule"):
        ops.use(moved, E20, NOW)
    assert ops.use(moved, attrs.evolve(E20, start=at("2026-03-03T10:00")), NOW).entries == ()


def test_differing_fact_compares_one_appointment() -> None:
    with pytest.raises(InvalidValueError) as other:
        ops.differing_fact(E20, attrs.evolve(E20, id="A2"))
    assert (other.value.field, other.value.value) == ("appointment.id", "A2")
    with pytest.raises(InvalidValueError) as not_one:
        ops.differing_fact(E20, "A1")  # type: ignore[arg-type]
    assert not_one.value.field == "appointment"


# R12b Tasks once per occurrence -----------------------------------------------------------------


def test_pack_exhausted_once_per_total() -> None:
    state = used(opened(2), "A1", "A2")
    assert state.exhausted_totals == (2,)
    released = ops.release(state, "A2", NOW).after
    again = ops.use(released, appt("A3", "2026-02-10T10:00"), NOW)
    assert kinds(again) == [ev.SessionUsed]
    assert again.after.remaining == 0
    credited = ops.adjust(again.after, 1, "goodwill", NOW).after  # total 3: re-armed
    third = ops.use(credited, appt("A4", "2026-02-11T10:00"), NOW)
    assert kinds(third) == [ev.SessionUsed, ev.PackExhausted]
    exhausted = third.events[1]
    assert isinstance(exhausted, ev.PackExhausted)
    assert (exhausted.total, exhausted.occurrence) == (3, "pk1:PackExhausted:3")
    assert third.after.exhausted_totals == (2, 3)


def test_a_debit_to_zero_is_an_occurrence_of_its_own_total() -> None:
    state = ops.release(used(opened(3), "A1", "A2", "A3"), "A3", NOW).after
    debit = ops.adjust(state, -1, "correction", NOW)
    assert kinds(debit) == [ev.PackAdjusted, ev.PackExhausted]
    assert debit.events[1].occurrence == "pk1:PackExhausted:2"
    back = ops.adjust(ops.release(debit.after, "A2", NOW).after, 1, "undo", NOW).after
    assert (back.total, back.remaining) == (3, 2)
    nine = ops.use(back, appt("A9", "2026-02-20T10:00"), NOW)
    ten = ops.use(nine.after, appt("A10", "2026-02-21T10:00"), NOW)
    # total 3 was exhausted before: the same occurrence, so no second task
    assert (kinds(ten), ten.after.remaining) == ([ev.SessionUsed], 0)


def test_low_balance_once_per_total_and_threshold() -> None:
    state = used(opened(3, policies=Policies(low_balance_at=1)), "A1", "A2")
    assert state.low_balance_totals == (3,)
    low = ops.use(used(opened(3, policies=Policies(low_balance_at=1)), "A1"), appt("A2"), NOW)
    event = low.events[1]
    assert isinstance(event, ev.LowBalance)
    assert (event.total, event.threshold, event.occurrence) == (3, 1, "pk1:LowBalance:3:1")
    again = ops.use(ops.release(state, "A2", NOW).after, appt("A5", "2026-02-20T10:00"), NOW)
    assert kinds(again) == [ev.SessionUsed]
    credited = ops.adjust(again.after, 1, "goodwill", NOW)  # 2 of 4 left: above it again
    fall = ops.use(credited.after, appt("A6", "2026-02-21T10:00"), NOW)
    assert kinds(fall) == [ev.SessionUsed, ev.LowBalance]
    assert fall.events[1].occurrence == "pk1:LowBalance:4:1"


def test_occurrence_keys_of_hours_money_expiry_and_other_events() -> None:
    hours = opened(Allowance.hours(timedelta(hours=1)))
    done = ops.use(hours, appt("A1", minutes=60), NOW)
    assert done.events[1].occurrence == "pk1:PackExhausted:3600000000"
    assert done.events[0].occurrence == done.events[0].event_id == "pk1#2.1"
    money = opened(Allowance.money(aud("100")), pricing=PerPack(aud("90")))
    spent = ops.use(money, appt("A1", price="100.00"), NOW)
    assert spent.events[1].occurrence == "pk1:PackExhausted:10000"
    expiring = opened(expiry=ExpiresOn(date(2026, 4, 16)))
    expired = ops.expire(expiring, date(2026, 4, 16), NOW).events[0]
    assert expired.occurrence == "pk1:PackExpired:2026-04-16"


def test_events_of_an_earlier_release_keep_their_id_as_occurrence() -> None:
    old = ev.PackExhausted(event_id="pk1#4.2", pack_id="pk1", client_id="C1", occurred_at=NOW)
    assert old.occurrence == "pk1#4.2"


def test_a_state_stored_before_r12b_knows_it_was_exhausted() -> None:
    state = used(opened(1), "A1")
    fields = attrs.asdict(state, recurse=False)
    del fields["exhausted_totals"], fields["low_balance_totals"]
    earlier = PackState(**fields)  # what loading a snapshot without the new fields gives
    assert earlier == state
    assert PackState(**{**fields, "consumed_units": 0}).exhausted_totals == ()


# R10a Closing with future usages ------------------------------------------------------------


def test_e23_close_releases_future_usages_in_the_same_change() -> None:
    state = used(opened(10), "A1", "A2", "A3")  # on 2 to 4 February
    change = ops.close(state, "moving away", at("2026-02-02T12:00"))
    expected: list[type] = [Released, Released, Closed]
    assert [type(e) for e in change.entries] == expected
    reasons = [e.reason for e in change.entries if isinstance(e, Released | Closed)]
    assert reasons == ["pack closed", "pack closed", "moving away"]
    assert kinds(change) == [ev.UsageReleased, ev.UsageReleased, ev.PackClosed]
    released = [e.appointment_id for e in change.events if isinstance(e, ev.UsageReleased)]
    assert released == ["A2", "A3"]
    assert [u.appointment.id for u in change.after.usages] == ["A1"]
    closed = change.events[2]
    assert isinstance(closed, ev.PackClosed)
    assert closed.remaining == change.after.remaining == 9


def test_close_keeps_a_marked_future_usage_and_one_in_progress() -> None:
    state = used(opened(10, policies=CONSUMES), "A1", "A2")
    state = ops.cancel(state, "A2", at("2026-02-03T09:00")).after  # late: consumed, marked
    change = ops.close(state, "", at("2026-02-02T10:00"))  # A1 starts at this very instant
    assert [type(e) for e in change.entries] == [Closed]
    assert change.after.remaining == 8


CLOSED_AT = at("2026-02-10T12:00")


@pytest.mark.parametrize(
    "step",
    [
        lambda s: ops.release(s, "A1", CLOSED_AT),
        lambda s: ops.cancel(s, "A1", CLOSED_AT),
        lambda s: ops.cancel(s, "A1", CLOSED_AT, no_show=True),
        lambda s: ops.mark(s, "A1", Mark.NO_SHOW, CLOSED_AT),
        lambda s: ops.reschedule(s, "A1", at("2026-02-03T10:00"), CLOSED_AT),
        lambda s: ops.adjust(s, 1, "goodwill", CLOSED_AT),
        lambda s: ops.adjust(s, -1, "correction", CLOSED_AT),
        lambda s: ops.extend(s, date(2026, 9, 1), "holiday", CLOSED_AT),
        lambda s: ops.close(s, "again", CLOSED_AT),
        lambda s: ops.void(s, "oops", CLOSED_AT),
    ],
    ids=[
        "release",
        "cancel",
        "no-show",
        "mark",
        "reschedule",
        "credit",
        "debit",
        "extend",
        "close",
        "void",
    ],
)
def test_nothing_changes_a_closed_pack(step: Any) -> None:
    state = used(opened(10, expiry=ExpiresOn(date(2026, 6, 1))), "A1")
    closed = ops.close(state, "moving", CLOSED_AT).after
    with pytest.raises(RefusedError) as refused:
        step(closed)
    assert (refused.value.rule, refused.value.field, refused.value.value) == (
        "R10",
        "pack_id",
        "pk1",
    )


def test_a_closed_pack_still_issues_the_line_of_a_past_usage() -> None:
    closed = ops.close(used(opened(10), "A1"), "moving", CLOSED_AT).after
    change, line = ops.issue_invoice(closed, "A1", CLOSED_AT)
    assert (len(change.entries), line.label) == (1, "Session 1 of 10")


# R7a Releasing an invoiced usage ----------------------------------------------------------------


def test_a_release_carries_the_issued_line() -> None:
    state, line = ops.issue_invoice(used(opened(10), "A1", "A2"), "A1", NOW)
    change = ops.release(state.after, "A1", NOW, "client rang")
    event = change.events[0]
    assert isinstance(event, ev.UsageReleased)
    assert (event.invoice_label, event.invoice_amount, event.reason) == (
        "Session 1 of 10",
        aud("120.00"),
        "client rang",
    )
    assert line.amount == aud("120.00")
    plain = ops.release(change.after, "A2", NOW).events[0]
    assert isinstance(plain, ev.UsageReleased)
    assert (plain.invoice_label, plain.invoice_amount) == (None, None)


def test_a_released_line_no_longer_counts() -> None:
    pricing = PerSession.reduced(aud("150"), aud("120"))
    state = used(opened(10, pricing=pricing), "A1", "A2")
    first, one = ops.issue_invoice(state, "A1", NOW)
    second, two = ops.issue_invoice(first.after, "A2", NOW)
    assert (one.amount, two.amount, second.after.lines_issued) == (aud(150), aud(120), 2)
    released = ops.release(second.after, "A2", NOW).after
    assert released.lines_issued == 1
    third, three = ops.issue_invoice(used(released, "A3", day=9), "A3", NOW)
    assert three.amount == aud(120)  # the 2nd standing line: the 2nd tier
    assert third.after.lines_issued == 2


def test_a_released_pack_price_stays_charged_and_is_not_credited() -> None:
    state = used(opened(3, pricing=PerPack(aud("300"))), "A1", "A2")
    issued, line = ops.issue_invoice(state, "A1", NOW)
    assert (line.amount, issued.after.price_charged) == (aud(300), True)
    released = ops.release(issued.after, "A1", NOW)
    event = released.events[0]
    assert isinstance(event, ev.UsageReleased)
    assert (event.invoice_amount, event.credit) == (aud(300), aud(0))
    assert released.after.price_charged
    _, next_line = ops.issue_invoice(released.after, "A2", NOW)
    assert (next_line.amount, next_line.includes_pack_price) == (aud(0), False)


def test_a_released_session_line_is_credited_and_frees_the_lowest_tier() -> None:
    tiers = PerSession.reduced(aud("150"), aud("120"))
    state = used(opened(5, pricing=tiers), "A1", "A2")
    first, one = ops.issue_invoice(state, "A1", NOW)
    second, two = ops.issue_invoice(first.after, "A2", NOW)
    released = ops.release(second.after, "A1", NOW)
    event = released.events[0]
    assert isinstance(event, ev.UsageReleased)
    assert event.credit == one.amount == aud(150)
    _, three = ops.issue_invoice(used(released.after, "A3", day=9), "A3", NOW)
    # The standing lines pay tiers 1 and 2 again: 120 (A2) + 150 (A3), as for any two sessions.
    assert (two.amount, three.amount) == (aud(120), aud(150))


# Recording with a status, opening and using, moving (R2, R6, R7) ----------------------------


Status = ops.AppointmentStatus
KEEPS_BOTH = Policies(late_cancel_consumes=True, no_show_consumes=True)


@pytest.mark.parametrize(
    ("policies", "status", "cancelled_at", "draws"),
    [
        (Policies(), Status.BOOKED, None, True),
        (Policies(), Status.LATE_CANCEL, None, False),
        (Policies(), Status.NO_SHOW, None, False),
        (KEEPS_BOTH, Status.LATE_CANCEL, None, True),
        (KEEPS_BOTH, Status.NO_SHOW, None, True),
        (KEEPS_BOTH, Status.CANCELLED, None, False),  # without its instant: in good time
        (KEEPS_BOTH, Status.CANCELLED, "2026-02-01T10:00", False),  # 24 h before: in time
        (KEEPS_BOTH, Status.CANCELLED, "2026-02-01T10:01", True),
        (Policies(), Status.CANCELLED, "2026-02-02T09:00", False),
    ],
)
def test_draws_on_is_the_consume_policy(
    policies: Policies, status: ops.AppointmentStatus, cancelled_at: str | None, draws: bool
) -> None:
    when = None if cancelled_at is None else at(cancelled_at)
    assert ops.draws_on(terms(3, policies=policies), appt("A1"), status, when) is draws
    state = opened(3, policies=policies)
    change = ops.record(state, appt("A1"), status, NOW, cancelled_at=when)
    assert bool(change.entries) is draws
    assert ops.may_draw(status, when) is (status is not Status.CANCELLED or when is not None)


def test_record_uses_and_marks_in_one_change() -> None:
    change = ops.record(opened(3, policies=KEEPS_BOTH), appt("A1"), Status.NO_SHOW, NOW)
    assert [type(e) for e in change.entries] == [Used, Marked]
    assert kinds(change) == [ev.SessionUsed, ev.UsageMarked]
    assert (change.expected_version, change.after.version) == (1, 3)
    usage = change.after.usage("A1")
    assert usage is not None
    assert usage.mark is Mark.NO_SHOW
    again = ops.record(change.after, appt("A1"), "no_show", NOW)  # type: ignore[arg-type]
    assert again.entries == ()
    with pytest.raises(RefusedError) as marked:
        ops.record(change.after, appt("A1"), Status.LATE_CANCEL, NOW)
    assert marked.value.rule == "R7"


def test_record_acts_on_a_usage_already_on_the_pack() -> None:
    state = used(opened(3, policies=KEEPS_BOTH), "A1", "A2", "A3")
    booked = ops.record(state, appt("A1", "2026-02-02T10:00"), Status.BOOKED, NOW)
    assert booked.entries == ()
    released = ops.record(state, appt("A1"), Status.CANCELLED, NOW)
    assert [type(e) for e in released.entries] == [Released]
    late = ops.record(state, appt("A2"), Status.CANCELLED, NOW, cancelled_at=at("2026-02-03T09:00"))
    assert [type(e) for e in late.entries] == [Marked]
    shown = ops.record(state, appt("A3"), Status.NO_SHOW, NOW)
    assert [type(e) for e in shown.entries] == [Marked]


def test_open_and_use_is_one_change_to_a_new_pack() -> None:
    change = ops.open_and_use(
        "pk9", appt("A1"), terms(3), SYDNEY, NOW, template_id="T", template_version=2
    )
    assert change.before is None
    assert [type(e) for e in change.entries] == [Opened, Used]
    assert kinds(change) == [ev.PackOpened, ev.SessionUsed]
    state = change.after
    assert (state.pack_id, state.client_id, state.template_id, state.template_version) == (
        "pk9",
        "C1",
        "T",
        2,
    )
    assert not state.charged_on_open  # the price goes on the first session's line
    assert state.label("A1") == "Session 1 of 3"
    marked = ops.open_and_use(
        "pk9", appt("A1"), terms(3, policies=KEEPS_BOTH), SYDNEY, NOW, status=Status.LATE_CANCEL
    )
    assert kinds(marked) == [ev.PackOpened, ev.SessionUsed, ev.UsageMarked]
    with pytest.raises(RefusedError) as given_back:
        ops.open_and_use("pk9", appt("A1"), terms(3), SYDNEY, NOW, status=Status.NO_SHOW)
    assert (given_back.value.rule, given_back.value.field) == ("R7", "status")


def test_move_releases_from_the_holder_and_uses_the_target() -> None:
    source = used(opened(3), "A1")
    target = ops.open_pack("pk2", "C1", terms(5), SYDNEY, NOW).after
    released, moved = ops.move(source, target, appt("A1", "2026-02-02T10:00"), NOW)
    assert (released.pack_id, moved.pack_id) == ("pk1", "pk2")
    (entry,) = released.entries
    assert isinstance(entry, Released)
    assert entry.reason == "moved to pk2"
    assert moved.after.label("A1") == "Session 1 of 5"
    with pytest.raises(RefusedError) as differs:
        ops.move(source, target, appt("A1", "2026-02-05T10:00"), NOW)
    assert (differs.value.rule, differs.value.field) == ("R6a", "appointment.start")
    with pytest.raises(InvalidValueError) as same:
        ops.move(source, source, appt("A1", "2026-02-02T10:00"), NOW)
    assert same.value.field == "target"
    with pytest.raises(RefusedError) as absent:
        ops.move(target, source, appt("A7"), NOW)
    assert absent.value.rule == "R7"


def test_then_joins_two_changes_decided_one_on_the_other() -> None:
    first = ops.use(opened(3), appt("A1"), NOW)
    second = ops.use(first.after, appt("A2", "2026-02-03T10:00"), NOW)
    joined = first.then(second)
    assert (joined.before, joined.after) == (first.before, second.after)
    assert joined.entries == first.entries + second.entries
    assert joined.events == first.events + second.events
    for stale in (
        ops.use(opened(3), appt("A2"), NOW),
        ops.open_pack("pk1", "C1", terms(3), SYDNEY, NOW),
    ):
        with pytest.raises(InvalidValueError) as wrong:
            first.then(stale)
        assert wrong.value.field == "following"
    with pytest.raises(InvalidValueError):
        first.then("change")  # type: ignore[arg-type]


def test_appointment_status_of_takes_a_member_or_its_value() -> None:
    assert ops.AppointmentStatus.of("late_cancel") is Status.LATE_CANCEL
    assert ops.AppointmentStatus.of(Status.NO_SHOW) is Status.NO_SHOW
    for bad in ("late-cancel", "BOOKED", "", None, Mark.NO_SHOW, 1):
        with pytest.raises(InvalidValueError) as wrong:
            ops.AppointmentStatus.of(bad)
        assert wrong.value.field == "status"


def test_unusable_because_asks_named_checks_in_order() -> None:
    assert [check.__name__ for check in ops._USABILITY_CHECKS] == [
        "_ended",
        "_other_client",
        "_other_service",
        "_other_currency",
        "_inside_hold",
        "_outside_validity",
        "_nothing_left",
    ]
    spent = used(opened(1, services=["physio"]), "A1")
    closed = ops.close(spent, "", NOW).after
    foreign = appt("A2", client="C2", service="massage", price=Money("10.00", "USD"))
    # Every check would refuse; the first in the order wins, and so on down the list.
    expected = [
        (closed, "R10", "pack_id"),
        (spent, "R4", "appointment.client_id"),
    ]
    for state, rule, field in expected:
        refusal = ops.unusable_because(state, foreign)
        assert refusal is not None
        assert (refusal.rule, refusal.field) == (rule, field)
    refusal = ops.unusable_because(spent, attrs.evolve(foreign, client_id="C1"))
    assert refusal is not None
    assert refusal.field == "appointment.service_id"
    refusal = ops.unusable_because(spent, appt("A2", price=Money("10.00", "USD")))
    assert refusal is not None
    assert refusal.field == "appointment.price.currency"
    refusal = ops.unusable_because(spent, appt("A2"))
    assert refusal is not None
    assert refusal.rule == "R3"


# Arguments (R17, R18) -------------------------------------------------------------------------


# The operations as a host without a type checker may call them.
UNCHECKED: Any = ops


@pytest.mark.parametrize(
    ("call", "field", "value"),
    [
        (lambda s: UNCHECKED.mark(s, "A1", "x", NOW), "why", "x"),
        (lambda s: UNCHECKED.close(s, 5, NOW), "reason", 5),
        (lambda s: UNCHECKED.void(s, None, NOW), "reason", None),
        (lambda s: UNCHECKED.release(s, "A1", NOW, b"x"), "reason", b"x"),
        (lambda s: UNCHECKED.close(s, "x" * 1001, NOW), "reason", "x" * 1001),
        (lambda s: UNCHECKED.close(s, "a\x00b", NOW), "reason", "a\x00b"),
        (lambda s: UNCHECKED.close(s, "a\ud800b", NOW), "reason", "a\ud800b"),
        (lambda s: UNCHECKED.adjust(s, 1, "", NOW), "reason", ""),
        (lambda s: UNCHECKED.adjust(s, True, "goodwill", NOW), "amount", True),
        (lambda s: UNCHECKED.adjust(s, 2**63, "goodwill", NOW), "amount", 2**63),
        (lambda s: UNCHECKED.extend(s, "2026-09-01", "x", NOW), "until", "2026-09-01"),
        (lambda s: UNCHECKED.extend(s, date(2300, 1, 1), "x", NOW), "until", date(2300, 1, 1)),
        (lambda s: UNCHECKED.expire(s, datetime(2026, 9, 1, tzinfo=UTC), NOW), "as_of", None),
        (lambda s: UNCHECKED.release(s, 7, NOW), "appointment_id", 7),
        (lambda s: UNCHECKED.release(s, "A1", "now"), "recorded_at", "now"),
        (lambda s: UNCHECKED.cancel(s, "A1", NOW, late="yes"), "late", "yes"),
        (lambda s: UNCHECKED.cancel(s, "A1", NOW, no_show=1), "no_show", 1),
        (lambda s: UNCHECKED.cancel(s, "A1", NOW, cancelled_at="x"), "cancelled_at", "x"),
        (lambda s: UNCHECKED.reschedule(s, "A1", "tomorrow", NOW), "start", "tomorrow"),
        (lambda s: UNCHECKED.use(s, "A1", NOW), "appointment", "A1"),
        (lambda s: UNCHECKED.use(s, appt("A2"), datetime(2026, 1, 15)), "recorded_at", None),
        (lambda s: UNCHECKED.use(s, appt("A2"), at("2200-01-01T00:00+00:00")), "recorded_at", None),
        (lambda s: UNCHECKED.issue_invoice(s, "", NOW), "appointment_id", ""),
        (lambda s: UNCHECKED.unusable_because(s, None), "appointment", None),
        (lambda s: UNCHECKED.record(s, appt("A2"), "maybe", NOW), "status", "maybe"),
        (lambda s: UNCHECKED.record(s, "A2", "booked", NOW), "appointment", "A2"),
        (
            lambda s: UNCHECKED.record(s, appt("A2"), "booked", NOW, cancelled_at=NOW),
            "cancelled_at",
            None,
        ),
        (
            lambda s: UNCHECKED.record(s, appt("A2"), "cancelled", NOW, cancelled_at="x"),
            "cancelled_at",
            "x",
        ),
        (lambda s: UNCHECKED.record(s, appt("A2"), "booked", "now"), "recorded_at", "now"),
        (lambda s: UNCHECKED.draws_on(s, appt("A2"), "booked"), "terms", None),
        (lambda s: UNCHECKED.move(s, "pk2", appt("A1"), NOW), "state", "pk2"),
        (lambda s: UNCHECKED.close(s.pack_id, "x", NOW), "state", "pk1"),
        (lambda s: UNCHECKED.use(None, appt("A2"), NOW), "state", None),
    ],
)
def test_every_argument_is_checked(call: Any, field: str, value: Any) -> None:
    state = used(opened(10, expiry=ExpiresOn(date(2026, 6, 1))), "A1")
    with pytest.raises(InvalidValueError) as bad:
        call(state)
    assert bad.value.field == field
    if value is not None:
        assert bad.value.value == value


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"template_id": ""}, "template_id"),
        ({"template_version": 0}, "template_version"),
        ({"template_version": "1"}, "template_version"),
        ({"charged_on_open": "yes"}, "charged_on_open"),
    ],
)
def test_opening_checks_its_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValueError) as bad:
        ops.open_pack("pk1", "C1", terms(3), SYDNEY, NOW, **kwargs)
    assert bad.value.field == field
    for args, name in (
        (("pk1", "C1", terms(3), "Australia/Sydney", NOW), "practice"),
        (("pk1", "x" * 201, terms(3), SYDNEY, NOW), "client_id"),
        (("p\nk", "C1", terms(3), SYDNEY, NOW), "pack_id"),
    ):
        with pytest.raises(InvalidValueError) as wrong:
            ops.open_pack(*args)
        assert wrong.value.field == name


def test_a_reason_may_run_over_lines_and_be_1000_characters() -> None:
    state = used(opened(10), "A1")
    text = "line one\nline two\t" + "x" * 982
    assert len(text) == 1000
    assert ops.close(state, text, CLOSED_AT).entries[-1].reason == text  # type: ignore[union-attr]
