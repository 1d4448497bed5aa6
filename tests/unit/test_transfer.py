"""R21: what remains of a pack is transferred to another client: the source is closed with
the remainder marked transferred (not refundable), and a new pack opens for the receiver with
that remainder, the same terms and expiry, and the unearned value carried over. Atomic; both
ledgers name the other pack."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import events as ev
from sessionpacks import operations as ops
from sessionpacks.clock import FixedClock
from sessionpacks.errors import InvalidValueError, RefusedError
from sessionpacks.ledger import Closed, Opened, PackState, replay
from sessionpacks.model import Allowance, ExpiresOn, Money, PerPack, PerSession, Practice
from sessionpacks.pricing import figures, refundable
from sessionpacks.reports import report
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

from ..conftest import appt, at, aud, terms

SYDNEY = Practice("clinic-1", "Australia/Sydney")
NOW = at("2026-03-20T09:00")
MARCH = at("2026-03-01T09:00")
PER_PACK = PerPack(aud("1000"))


def paid_pack() -> ops.Change:
    """10 sessions for 1000.00, the price invoiced at opening."""
    return ops.open_pack(
        "pk1", "C1", terms(10, pricing=PER_PACK), SYDNEY, MARCH, charged_on_open=True
    )


def test_e27_the_remainder_and_its_unearned_value_move_to_the_new_pack(
    service: PackService, clock: FixedClock
) -> None:
    service.open_pack("C1", terms=terms(10, pricing=PER_PACK, expiry=ExpiresOn(date(2026, 9, 1))))
    for n in range(4):
        service.assign(appt(f"A{n}", f"2026-02-{2 + n:02d}T10:00"), pack_id="pk1")
    clock.set(NOW)
    new = service.transfer("pk1", "C3", reason="given to her partner")
    source = service.pack("pk1")
    assert source.closed_at is not None
    assert source.transferred_to == new.pack_id
    assert (figures(source).refundable, figures(source).transferred) == (aud("0"), aud("600"))
    assert refundable(source) == aud("0")
    assert (new.client_id, new.remaining, new.transferred_from) == ("C3", 6, "pk1")
    assert figures(new).usable == aud("600")
    assert new.expiry_date == date(2026, 9, 1)
    done = service.assign(appt("B1", "2026-03-23T10:00", client="C3"), pack_id=new.pack_id)
    assert done.label == "Session 1 of 6"
    line = service.invoice_line("B1")
    assert (line.amount, line.prepaid) == (aud("0"), True)
    moved = [r.event for r in service.events_since(0) if isinstance(r.event, ev.PackTransferred)]
    assert [e.pack_id for e in moved] == ["pk1", new.pack_id]
    assert all(
        (e.from_pack_id, e.to_pack_id, e.value) == ("pk1", new.pack_id, aud("600")) for e in moved
    )
    assert not [r for r in service.events_since(0) if isinstance(r.event, ev.PackClosed)]


def test_future_usages_of_the_source_are_released_in_the_same_change() -> None:
    state = ops.open_pack("pk1", "C1", terms(10), SYDNEY, at("2026-03-01T09:00")).after
    state = ops.use(state, appt("A1", "2026-03-10T10:00"), NOW).after
    state = ops.use(state, appt("A2", "2026-03-30T10:00"), NOW).after  # after the transfer
    source, target = ops.transfer(state, "pk2", "C3", SYDNEY, "", NOW)
    assert [type(e).__name__ for e in source.entries] == ["Released", "Closed"]
    assert source.after.usage("A2") is None
    assert target.after.remaining == 9


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda s: ops.close(s, "", NOW).after, "R10"),
        (lambda s: ops.use(s, appt("A1", "2026-03-02T10:00"), NOW).after, "R21"),  # nothing left
    ],
)
def test_what_cannot_be_transferred_is_refused(change: object, rule: str) -> None:
    state = ops.open_pack("pk1", "C1", terms(1), SYDNEY, at("2026-03-01T09:00")).after
    with pytest.raises(RefusedError) as refused:
        ops.transfer(change(state), "pk2", "C3", SYDNEY, "", NOW)  # type: ignore[operator]
    assert refused.value.rule == rule


def test_an_expired_pack_cannot_be_transferred_and_the_new_id_must_be_new() -> None:
    expiring = terms(5, expiry=ExpiresOn(date(2026, 3, 15)))
    state = ops.open_pack("pk1", "C1", expiring, SYDNEY, at("2026-03-01T09:00")).after
    with pytest.raises(RefusedError) as expired:
        ops.transfer(state, "pk2", "C3", SYDNEY, "", NOW)
    assert expired.value.rule == "R21"
    with pytest.raises(InvalidValueError) as same:
        ops.transfer(state, "pk1", "C3", SYDNEY, "", at("2026-03-02T09:00"))
    assert same.value.field == "pack_id"


def test_the_service_refuses_an_existing_new_pack_id_and_writes_nothing(
    service: PackService,
) -> None:
    service.open_pack("C1", terms=terms(5))
    service.open_pack("C2", terms=terms(5))
    with pytest.raises(RefusedError):
        service.transfer("pk1", "C3", new_pack_id="pk2")
    assert service.pack("pk1").closed_at is None


def test_both_ledgers_name_the_other_and_replay() -> None:
    opening = paid_pack()
    source, target = ops.transfer(opening.after, "pk2", "C3", SYDNEY, "partner", NOW)
    closed = source.entries[-1]
    opened = target.entries[0]
    assert isinstance(closed, Closed)
    assert isinstance(opened, Opened)
    assert (closed.transferred_to, opened.transferred_from) == ("pk2", "pk1")
    assert replay([*opening.entries, *source.entries]) == source.after
    assert replay(target.entries) == target.after


def test_a_transfer_nets_to_nothing_in_the_report() -> None:
    opening = paid_pack()
    used = ops.use(opening.after, appt("A1", "2026-03-02T10:00"), at("2026-03-02T11:00"))
    source, target = ops.transfer(used.after, "pk2", "C3", SYDNEY, "", NOW)
    ledgers = [[*opening.entries, *used.entries, *source.entries], list(target.entries)]
    [total] = report(ledgers, at("2026-03-01T00:00"), at("2026-04-01T00:00")).totals
    assert (total.sold, total.recognised, total.refunds) == (aud("1000"), aud("100"), aud("0"))
    assert total.closing_unearned == aud("900")
    assert total.balances


@st.composite
def _history(draw: st.DrawFn) -> PackState:
    prices: list[PerPack | PerSession] = [PER_PACK, PerPack(aud("999.99"))]
    pricing = draw(st.sampled_from([*prices, PerSession.flat(aud("80"))]))
    allowance = draw(st.sampled_from([Allowance.sessions(7), Allowance.hours(timedelta(hours=5))]))
    state = ops.open_pack(
        "pk1", "C1", terms(allowance, pricing=pricing), SYDNEY, MARCH, charged_on_open=True
    ).after
    for n in range(draw(st.integers(0, 3))):
        if state.remaining_units <= 1:
            break
        state = ops.use(state, appt(f"A{n}", f"2026-03-{2 + n:02d}T10:00", minutes=30), NOW).after
    if draw(st.booleans()):
        credit = 1 if state.metric.value == "sessions" else timedelta(minutes=15)
        state = ops.adjust(state, credit, "goodwill", NOW).after
    return state


@given(data=st.data())
@scaled(0.5)
def test_a_transfer_conserves_units_and_money(data: st.DataObject) -> None:
    state = data.draw(_history())
    left, value = state.remaining, figures(state).usable
    source, target = ops.transfer(state, "pk2", "C3", SYDNEY, "", NOW)
    assert target.after.remaining == left
    assert source.after.remaining_units == state.remaining_units  # closed, not used
    moved = figures(source.after).transferred
    if isinstance(state.terms.pricing, PerPack):
        assert moved == value == figures(target.after).usable
        assert figures(target.after).price == value
    else:
        assert moved == Money.zero("AUD")
    before, after = figures(state), figures(source.after)
    assert before.recognised == after.recognised
    assert after.usable + after.refundable == Money.zero("AUD")


def test_a_price_not_invoiced_yet_must_be_invoiced_before_a_transfer() -> None:
    state = ops.open_pack("pk1", "C1", terms(10, pricing=PER_PACK), SYDNEY, MARCH).after
    with pytest.raises(RefusedError) as refused:
        ops.transfer(state, "pk2", "C3", SYDNEY, "", NOW)
    assert "not invoiced yet" in str(refused.value)


def test_the_receiver_gets_no_days_of_a_hold_it_is_not_on() -> None:
    expiring = terms(10, expiry=ExpiresOn(date(2026, 6, 1)))
    state = ops.open_pack("pk1", "C1", expiring, SYDNEY, MARCH).after
    state = ops.hold(state, date(2026, 3, 15), date(2026, 3, 29), "", MARCH).after  # running
    state = ops.hold(state, date(2026, 4, 10), date(2026, 4, 20), "", MARCH).after  # to come
    assert state.expiry_date == date(2026, 6, 25)
    _, target = ops.transfer(state, "pk2", "C3", SYDNEY, "", NOW)  # on 03-20
    assert target.after.expiry_date == date(2026, 6, 6)  # the 5 days of the hold so far


def test_a_per_session_remainder_keeps_the_rate_of_its_next_session() -> None:
    tiers = terms(10, pricing=PerSession.reduced(aud("150"), aud("120")))
    state = ops.open_pack("pk1", "C1", tiers, SYDNEY, MARCH).after
    for n in range(3):
        state = ops.use(state, appt(f"A{n}", f"2026-03-0{2 + n}T10:00"), MARCH).after
        state = ops.issue_invoice(state, f"A{n}", MARCH)[0].after
    _, target = ops.transfer(state, "pk2", "C3", SYDNEY, "", NOW)
    pricing = target.after.terms.pricing
    assert isinstance(pricing, PerSession)
    assert (pricing.price_of(1), pricing.price_of(5)) == (aud("120"), aud("120"))


def test_a_receiver_cannot_be_voided_and_a_pack_not_given_to_its_own_client(
    service: PackService, clock: FixedClock
) -> None:
    service.open_pack("C1", terms=terms(5, pricing=PER_PACK))
    clock.set(NOW)
    with pytest.raises(InvalidValueError) as same:
        service.transfer("pk1", "C1")
    assert same.value.field == "client_id"
    new = service.transfer("pk1", "C3")
    with pytest.raises(RefusedError) as void:
        service.void(new.pack_id, "wrong client")
    assert void.value.rule == "R21"


def test_the_report_counts_no_pack_sold_for_a_transfer() -> None:
    opening = paid_pack()
    source, target = ops.transfer(opening.after, "pk2", "C3", SYDNEY, "", NOW)
    ledgers = [[*opening.entries, *source.entries], list(target.entries)]
    [total] = report(ledgers, at("2026-03-01T00:00"), at("2026-04-01T00:00")).totals
    assert total.packs_sold == 1
