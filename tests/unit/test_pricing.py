"""Pricing (R8, R15): invoice lines, recognised revenue, breakage and refunds."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import operations as ops
from sessionpacks.ledger import PackState
from sessionpacks.model import Allowance, ExpiresOn, Money, PerPack, PerSession, Practice, Tier
from sessionpacks.pricing import (
    PackFigures,
    breakage,
    figures,
    invoice_line,
    recognised,
    refundable,
)
from sessionpacks.testing.plugin import scaled

from ..conftest import appt, at, aud, terms

SYDNEY = Practice("clinic-1", "Australia/Sydney")
NOW = at("2026-01-15T09:00")
PER_PACK = PerPack(aud("1000.00"))


def opened(allowance: Any = 3, *, charged_on_open: bool = False, **kwargs: Any) -> PackState:
    change = ops.open_pack(
        "pk1", "C1", terms(allowance, **kwargs), SYDNEY, NOW, charged_on_open=charged_on_open
    )
    return change.after


def use(state: PackState, appointment_id: str, day: int, **kwargs: Any) -> PackState:
    return ops.use(state, appt(appointment_id, f"2026-02-{day:02d}T10:00", **kwargs), NOW).after


def issue(state: PackState, appointment_id: str) -> tuple[PackState, Any]:
    change, line = ops.issue_invoice(state, appointment_id, NOW)
    return change.after, line


# Invoice lines -------------------------------------------------------------------------------


def test_per_session_line_keeps_its_label_once_issued() -> None:
    pricing = PerSession.reduced(aud("150"), aud("120"))
    state = use(opened(pricing=pricing), "A2", 9)
    state = use(state, "A1", 2)
    state, first = issue(state, "A1")
    state, issued = issue(state, "A2")
    assert (issued.number, issued.label, issued.amount) == (2, "Session 2 of 3", aud("120"))
    state = use(state, "A0", 1)
    assert invoice_line(state, "A2") == issued
    assert state.label("A2") == "Session 3 of 3"
    assert (first.amount, issued.total) == (aud("150"), aud("120"))
    assert not issued.prepaid


def test_per_session_first_price_is_charged_once_when_an_earlier_session_comes_later() -> None:
    # E3 with invoices: A0, recorded after A1..A3 were invoiced, becomes session 1 but the
    # first-session price was already charged on A1's line.
    pricing = PerSession.reduced(aud("150"), aud("120"))
    state = opened(10, pricing=pricing)
    lines = []
    for appointment_id, day in (("A1", 2), ("A2", 3), ("A3", 4)):
        state = use(state, appointment_id, day)
        state, line = issue(state, appointment_id)
        lines.append(line.amount)
    state = use(state, "A0", 1)
    state, late = issue(state, "A0")
    assert lines == [aud("150"), aud("120"), aud("120")]
    assert (late.label, late.amount) == ("Session 1 of 10", aud("120"))
    assert state.label("A1") == "Session 2 of 10"


def test_per_pack_price_on_the_first_line_issued() -> None:
    state = use(use(opened(pricing=PER_PACK), "A2", 9), "A1", 2)
    state, later = issue(state, "A2")
    assert (later.amount, later.includes_pack_price, later.prepaid) == (aud(1000), True, False)
    state, earlier = issue(state, "A1")
    assert (earlier.amount, earlier.includes_pack_price, earlier.prepaid) == (aud(0), False, True)
    assert (earlier.number, later.number) == (1, 2)


def test_per_pack_charged_on_open_makes_every_line_prepaid() -> None:
    state = use(opened(pricing=PER_PACK, charged_on_open=True), "A1", 2)
    line = invoice_line(state, "A1")
    assert (line.amount, line.prepaid, line.includes_pack_price) == (aud(0), True, False)


def test_hours_shortfall_is_billed_pro_rata_at_the_appointment_price() -> None:
    hours = Allowance.hours(timedelta(hours=1))
    state = use(opened(hours, pricing=PER_PACK), "A1", 2, minutes=70, price="100.00")
    line = invoice_line(state, "A1")
    assert line.shortfall == timedelta(minutes=10)
    assert line.shortfall_amount == aud("14.29")
    assert line.total == aud("1014.29")
    state = use(opened(hours, pricing=PER_PACK), "A1", 2, minutes=90, price="150.00")
    assert invoice_line(state, "A1").shortfall_amount == aud("50.00")


def test_money_shortfall_is_the_uncovered_price() -> None:
    money = Allowance.money(aud("100"))
    state = use(opened(money, pricing=PerPack(aud("90"))), "A1", 2, price="130.50")
    line = invoice_line(state, "A1")
    assert (line.shortfall, line.shortfall_amount) == (aud("30.50"), aud("30.50"))


def test_no_shortfall_is_zero() -> None:
    line = invoice_line(use(opened(), "A1", 2), "A1")
    assert (line.shortfall, line.shortfall_amount) == (0, aud(0))


# Recognised revenue, breakage, refunds -------------------------------------------------------


def test_per_session_recognises_each_session_price() -> None:
    pricing = PerSession([Tier(1, aud("150")), Tier(3, aud("100"))])
    state = use(use(use(opened(5, pricing=pricing), "A3", 3), "A1", 1), "A2", 2)
    assert [(r.appointment_id, r.number, r.amount) for r in recognised(state)] == [
        ("A1", 1, aud("150")),
        ("A2", 2, aud("150")),
        ("A3", 3, aud("100")),
    ]
    assert breakage(state, at("2030-01-01T00:00")) == aud(0)
    assert refundable(state) == aud(0)


def test_per_pack_shares_add_up_to_the_price() -> None:
    state = use(use(use(opened(pricing=PER_PACK), "A1", 1), "A2", 2), "A3", 3)
    assert [r.amount for r in recognised(state)] == [aud("333.33"), aud("333.33"), aud("333.34")]
    assert refundable(state) == aud(0)


def test_goodwill_sessions_recognise_nothing() -> None:
    state = ops.adjust(opened(pricing=PER_PACK), 1, "goodwill", NOW).after
    for n in range(1, 5):
        state = use(state, f"A{n}", n)
    assert [r.amount for r in recognised(state)][-1] == aud(0)
    assert sum(r.amount.minor for r in recognised(state)) == 100000


def test_money_pack_recognises_its_price_in_proportion_to_face_value() -> None:
    money = Allowance.money(aud("500"))
    state = use(opened(money, pricing=PerPack(aud("450"))), "A1", 2, price="120")
    assert [r.amount for r in recognised(state)] == [aud("108.00")]
    assert refundable(state) == aud("342.00")


def test_breakage_only_when_expired() -> None:
    state = use(opened(pricing=PER_PACK, expiry=ExpiresOn(date(2026, 4, 16))), "A1", 2)
    assert breakage(state, at("2026-04-15T23:59")) == aud(0)
    assert breakage(state, at("2026-04-16T00:00")) == aud("666.67")
    assert refundable(state) == aud("666.67")
    exhausted = use(use(state, "A2", 3), "A3", 4)
    assert breakage(exhausted, at("2026-05-01T00:00")) == aud(0)


@scaled(0.3, deadline=None)  # 60 under ci
@given(
    st.integers(min_value=0, max_value=10**8),
    st.integers(min_value=1, max_value=12),
    st.data(),
)
def test_recognised_plus_refundable_is_always_the_price(
    price_minor: int, allowance: int, data: st.DataObject
) -> None:
    price = Money.from_minor(price_minor, "AUD")
    state = opened(allowance, pricing=PerPack(price))
    used = data.draw(st.integers(min_value=0, max_value=allowance))
    for n in range(1, used + 1):
        state = use(state, f"A{n}", n)
    shares = [r.amount.minor for r in recognised(state)]
    assert sum(shares) + refundable(state).minor == price_minor
    assert max(shares, default=0) - min(shares, default=0) <= 1


# R15a Money adds up ---------------------------------------------------------------------------


def _adds_up(found: PackFigures) -> None:
    assert found.price == found.recognised + found.unearned
    assert found.unearned == (
        found.usable + found.breakage + found.refundable + found.written_off + found.transferred
    )


def test_figures_through_the_life_of_a_pack_charged_per_pack() -> None:
    state = opened(10, pricing=PER_PACK, expiry=ExpiresOn(date(2026, 4, 16)))
    assert figures(state) == PackFigures(
        price=aud(1000),
        recognised=aud(0),
        unearned=aud(1000),
        usable=aud(1000),
        breakage=aud(0),
        refundable=aud(0),
        written_off=aud(0),
        transferred=aud(0),
    )
    state = use(use(use(state, "A1", 2), "A2", 3), "A3", 4)
    assert (figures(state).recognised, figures(state).usable) == (aud(300), aud(700))
    # at the expiry date the 700 is breakage, by the date or, without one, once recorded
    assert figures(state, at("2026-04-16T00:00")).breakage == aud(700)
    assert figures(state).breakage == aud(0)
    expired = ops.expire(state, date(2026, 4, 16), NOW)
    assert (figures(expired.after).breakage, figures(expired.after).usable) == (aud(700), aud(0))
    assert expired.events[0].breakage == aud(700)  # type: ignore[union-attr]
    extended = ops.extend(expired.after, date(2026, 6, 1), "illness", NOW).after
    assert figures(extended).usable == aud(700)
    closed = ops.close(extended, "moving away", at("2026-03-01T09:00")).after
    assert (figures(closed).refundable, figures(closed).usable) == (aud(700), aud(0))
    for state in (expired.after, extended, closed):
        _adds_up(figures(state))


def test_a_per_pack_debit_is_written_off_not_refundable() -> None:
    state = use(use(opened(10, pricing=PER_PACK), "A1", 2), "A2", 3)
    debited = ops.adjust(state, -2, "two sessions sold by mistake", NOW).after
    found = figures(debited)
    assert (found.recognised, found.usable, found.written_off) == (aud(200), aud(600), aud(200))
    assert refundable(debited) == aud(600)
    for n in range(3, 9):  # the six left
        debited = use(debited, f"A{n}", n + 1)
    exhausted = figures(debited)
    assert (exhausted.recognised, exhausted.usable, exhausted.written_off) == (
        aud(800),
        aud(0),
        aud(200),
    )
    closed = figures(ops.close(debited, "done", at("2026-03-01T09:00")).after)
    assert (closed.refundable, closed.written_off) == (aud(0), aud(200))
    _adds_up(closed)


def test_a_credit_then_a_debit_writes_nothing_off() -> None:
    state = ops.adjust(opened(3, pricing=PER_PACK), 1, "goodwill", NOW).after
    state = ops.adjust(state, -1, "goodwill given by mistake", NOW).after
    assert figures(state).written_off == aud(0)
    assert figures(state).usable == aud(1000)


def test_rounding_remainders_stay_in_the_figures() -> None:
    state = use(opened(3, pricing=PER_PACK), "A1", 2)
    state = ops.adjust(state, -1, "correction", NOW).after
    found = figures(state)
    assert (found.recognised, found.usable, found.written_off) == (
        aud("333.33"),
        aud("333.33"),
        aud("333.34"),
    )
    _adds_up(found)


def test_voided_pack_is_refundable_whole() -> None:
    state = ops.void(opened(3, pricing=PER_PACK), "opened in error", NOW).after
    assert figures(state).refundable == aud(1000)


def test_a_pack_charged_per_session_is_paid_as_it_is_used() -> None:
    pricing = PerSession.reduced(aud("150"), aud("120"))
    state = use(use(opened(5, pricing=pricing), "A1", 2), "A2", 3)
    found = figures(state)
    assert (found.price, found.recognised, found.unearned) == (aud(270), aud(270), aud(0))
    assert found.usable == found.breakage == found.refundable == found.written_off == aud(0)
    expired = ops.expire(
        opened(5, pricing=pricing, expiry=ExpiresOn(date(2026, 4, 1))), date(2026, 4, 1), NOW
    )
    assert expired.events[0].breakage == aud(0)  # type: ignore[union-attr]
