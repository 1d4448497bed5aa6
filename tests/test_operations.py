"""Pure decisions on a pack: entries, events and the state after (R3, R5 to R12).

Every refusal path has its own test in ``test_refusals.py``; these are the paths that write.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from sessionpacks import events as ev
from sessionpacks import operations as ops
from sessionpacks.errors import InvalidValueError, RefusedError
from sessionpacks.ledger import (
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
    Period,
    PerPack,
    Policies,
    Practice,
)

from .conftest import appt, at, aud, terms

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
    closed = ops.close(used(opened(), "A1"), "moving", NOW).after
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
    change = ops.close(used(opened(), "A1"), "moving", NOW)
    event = change.events[0]
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
