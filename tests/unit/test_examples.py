"""The spec's examples, each driven through PackService on the in-memory store: E1..E19, and the
domain's side of E23, E24 and E31 (the service's own examples of the later rules are in
``test_service.py``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryRepository
from sessionpacks.errors import ConcurrencyError, InvalidValueError, RefusedError
from sessionpacks.events import (
    PackClosed,
    PackExhausted,
    PackExpired,
    SessionUsed,
    UsageMarked,
    UsageReleased,
)
from sessionpacks.ledger import Mark, PackState, Used
from sessionpacks.model import (
    Allowance,
    Appointment,
    ExpiresAfterOpening,
    ExpiresOn,
    Money,
    Period,
    PerPack,
    PerSession,
    Policies,
    PreferPack,
    PreferTemplate,
)
from sessionpacks.operations import use
from sessionpacks.pricing import figures, recognised, refundable
from sessionpacks.resolution import NoPack, OpenPack, UsePack
from sessionpacks.service import PackService

from ..conftest import appt, at, aud, snapshot, terms

E1_STARTS = {"A1": "2026-02-02T10:00", "A2": "2026-02-09T10:00", "A3": "2026-02-16T10:00"}


def e1(service: PackService) -> str:
    """E1's given and when: a 10-session pack for C1 with A1, A2, A3 used in time order."""
    service.add_template("physio10", terms(10))
    pack = service.open_pack("C1", template_id="physio10")
    for appointment_id, start in E1_STARTS.items():
        service.assign(appt(appointment_id, start), pack_id=pack.pack_id)
    return pack.pack_id


def numbers(state: PackState) -> dict[str, int]:
    return {u.appointment.id: state.number(u.appointment.id) for u in state.usages}


def test_e1_third_session_of_ten(service: PackService) -> None:
    pack_id = e1(service)
    state = service.pack(pack_id)
    assert state.label("A3") == "Session 3 of 10"
    assert state.remaining == 7
    used = [r.event for r in service.events_since() if isinstance(r.event, SessionUsed)]
    assert [(e.appointment_id, e.number) for e in used] == [("A1", 1), ("A2", 2), ("A3", 3)]


def test_e2_cancel_renumbers(service: PackService) -> None:
    pack_id = e1(service)
    state = service.cancel("A2")
    assert state.label("A3") == "Session 2 of 10"
    assert state.remaining == 8
    assert service.pack(pack_id) == state


def test_e3_earlier_appointment_from_invoice_renumbers(service: PackService) -> None:
    pack_id = e1(service)
    line = service.add_to_invoice(appt("A0", "2026-01-26T10:00"), pack_id=pack_id)
    state = service.pack(pack_id)
    assert line.number == 1
    assert line.label == "Session 1 of 10"
    assert numbers(state) == {"A0": 1, "A1": 2, "A2": 3, "A3": 4}


def test_e4_per_session_tiers(service: PackService) -> None:
    pricing = PerSession.reduced(aud("150.00"), aud("120.00"))
    service.add_template("tiered", terms(10, pricing=pricing))
    pack = service.open_pack("C1", template_id="tiered")
    lines = [
        service.add_to_invoice(appt(f"A{n}", f"2026-02-0{n}T10:00"), pack_id=pack.pack_id)
        for n in (1, 2, 3)
    ]
    assert [line.amount for line in lines] == [aud("150.00"), aud("120.00"), aud("120.00")]
    assert [line.number for line in lines] == [1, 2, 3]


def test_e5_hours_pack_shortfall_and_one_exhausted(service: PackService) -> None:
    hours = terms(Allowance.hours(timedelta(hours=5)), name="5 hours")
    pack = service.open_pack("C1", terms=hours)
    for n, minutes in enumerate((60, 90, 60, 60, 60), start=1):
        service.assign(appt(f"A{n}", f"2026-02-0{n}T10:00", minutes=minutes), pack_id="pk1")
    fifth = next(e for e in service.repository.ledger(pack.pack_id) if _used(e, "A5"))
    assert isinstance(fifth, Used)
    assert (fifth.covered, fifth.shortfall) == (timedelta(minutes=30), timedelta(minutes=30))
    line = service.invoice_line("A5")
    assert line.shortfall == timedelta(minutes=30)
    exhausted = [r for r in service.events_since() if isinstance(r.event, PackExhausted)]
    assert len(exhausted) == 1
    assert service.pack(pack.pack_id).remaining == timedelta(0)


def _used(entry: Any, appointment_id: str) -> bool:
    return isinstance(entry, Used) and entry.appointment.id == appointment_id


def test_e6_money_pack_covers_then_shortfall(service: PackService) -> None:
    money = terms(Allowance.money(aud("500.00")), name="$500 credit", pricing=PerPack(aud("450")))
    service.open_pack("C1", terms=money)
    for n in range(1, 6):
        service.assign(appt(f"A{n}", f"2026-02-0{n}T10:00", price="120.00"), pack_id="pk1")
    used = [e for e in service.repository.ledger("pk1") if isinstance(e, Used)]
    assert [(u.covered, u.shortfall) for u in used] == [
        *[(aud("120.00"), aud("0"))] * 4,
        (aud("20.00"), aud("100.00")),
    ]
    assert service.invoice_line("A5").shortfall_amount == aud("100.00")


def test_e7_month_after_opening_on_the_31st(service: PackService, clock: FixedClock) -> None:
    clock.set(at("2026-01-31T09:00"))
    month = terms(10, expiry=ExpiresAfterOpening(Period.parse("1 month")))
    service.open_pack("C1", terms=month)
    service.assign(appt("A1", "2026-02-27T10:00"), pack_id="pk1")
    before = snapshot(service.repository)
    with pytest.raises(RefusedError) as refused:
        service.assign(appt("A2", "2026-02-28T10:00"), pack_id="pk1")
    assert (refused.value.rule, refused.value.field) == ("R5", "appointment.start")
    assert "2026-02-28" in str(refused.value)
    assert snapshot(service.repository) == before
    assert service.pack("pk1").expiry_date == date(2026, 2, 28)


def test_e8_validity_judged_on_local_date(service: PackService) -> None:
    service.open_pack("C1", terms=terms(10, expiry=ExpiresOn(date(2026, 4, 16))))
    service.assign(appt("A1", "2026-04-15T23:30+10:00"), pack_id="pk1")
    before = snapshot(service.repository)
    with pytest.raises(RefusedError) as refused:
        service.assign(appt("A2", "2026-04-16T00:30+10:00"), pack_id="pk1")
    assert refused.value.rule == "R5"
    assert "2026-04-16" in str(refused.value)
    assert snapshot(service.repository) == before
    assert [u.appointment.id for u in service.pack("pk1").usages] == ["A1"]


def test_e9_sweep_twice_expires_once(service: PackService, clock: FixedClock) -> None:
    service.open_pack("C1", terms=terms(3, expiry=ExpiresOn(date(2026, 4, 16))))
    clock.set(at("2026-04-16T01:00"))
    first = service.sweep(date(2026, 4, 16))
    before = snapshot(service.repository)
    second = service.sweep(date(2026, 4, 16))
    assert [type(r.event) for r in first] == [PackExpired]
    expired = first[0].event
    assert isinstance(expired, PackExpired)
    assert (expired.pack_id, expired.expiry_date, expired.remaining) == (
        "pk1",
        date(2026, 4, 16),
        3,
    )
    assert second == ()
    assert snapshot(service.repository) == before
    assert [r for r in service.events_since() if isinstance(r.event, PackExpired)] == list(first)


def test_e10_preferred_template_uses_pack_expiring_first(service: PackService) -> None:
    service.add_template("T", terms(10, expiry=ExpiresOn(date(2026, 6, 30))))
    later = service.open_pack("C1", template_id="T")
    service.edit_template("T", expiry=ExpiresOn(date(2026, 5, 31)))
    sooner = service.open_pack("C1", template_id="T")
    assert later.expiry_date == date(2026, 6, 30)
    assert sooner.expiry_date == date(2026, 5, 31)
    service.set_preference("C1", PreferTemplate("T"))
    assignment = service.book(appt("A1", "2026-02-02T10:00"))
    assert assignment.decision.action == UsePack(sooner.pack_id)
    assert service.repository.pack_of_appointment("A1") == sooner.pack_id
    assert service.pack(later.pack_id).usages == ()


def test_e11_exhausted_preferred_pack_opens_new_from_its_template(service: PackService) -> None:
    service.add_template("T", terms(1, name="Single"))
    exhausted = service.open_pack("C1", template_id="T")
    service.assign(appt("A1", "2026-02-02T10:00"), pack_id=exhausted.pack_id)
    service.set_preference("C1", PreferPack(exhausted.pack_id))
    assignment = service.book(appt("A2", "2026-02-09T10:00"))
    assert assignment.opened
    assert assignment.decision.action == OpenPack("T")
    assert assignment.pack is not None
    assert assignment.pack.pack_id != exhausted.pack_id
    assert assignment.pack.template_id == "T"
    assert assignment.label == "Session 1 of 1"
    assert service.repository.pack_of_appointment("A2") == assignment.pack.pack_id


def test_e12_same_appointment_again_writes_nothing(service: PackService) -> None:
    service.open_pack("C1", terms=terms(10))
    first = service.assign(appt("A1"), pack_id="pk1")
    before = snapshot(service.repository)
    again = service.assign(appt("A1"), pack_id="pk1")
    assert again.pack is not None
    assert first.pack is not None
    assert again.pack.usage("A1") == first.pack.usage("A1")
    assert again.events == ()
    assert snapshot(service.repository) == before


def test_e13_two_writers_on_the_last_session(
    service: PackService, repo: InMemoryRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.open_pack("C1", terms=terms(1))
    # Both writers must read version 1 before either commits: a real race, not a sequence.
    gate = threading.Barrier(2, timeout=30)
    readers: set[int] = set()
    plain_load = repo.load

    def racing_load(pack_id: str) -> PackState:
        state = plain_load(pack_id)
        if threading.get_ident() not in readers:
            readers.add(threading.get_ident())
            gate.wait()
        return state

    monkeypatch.setattr(repo, "load", racing_load)
    outcomes: dict[str, Any] = {}

    def writer(appointment_id: str) -> None:
        try:
            outcomes[appointment_id] = service.assign(appt(appointment_id), pack_id="pk1")
        except Exception as error:  # the test inspects whatever was raised
            outcomes[appointment_id] = error

    threads = [threading.Thread(target=writer, args=(a,)) for a in ("A1", "A2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [o for o in outcomes.values() if isinstance(o, Exception)]
    assert len(errors) == 1
    assert isinstance(errors[0], RefusedError)
    assert (errors[0].rule, errors[0].field, errors[0].value) == ("R3", "pack_id", "pk1")
    state = plain_load("pk1")
    assert len(state.usages) == 1
    assert state.remaining == 0


def test_e13_stale_version_raises_and_service_retries(
    service: PackService, repo: InMemoryRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.open_pack("C1", terms=terms(3))
    stale = repo.load("pk1")
    service.assign(appt("A1"), pack_id="pk1")
    before = snapshot(repo)
    with pytest.raises(ConcurrencyError) as conflict:
        repo.commit([use(stale, appt("A2"), at("2026-01-15T09:00"))])
    assert (conflict.value.field, conflict.value.value) == ("pack_id", "pk1")
    assert snapshot(repo) == before

    # A rival writes between the service's read and its commit: it reads and decides again.
    plain_load = repo.load
    loads: list[str] = []

    def interfered_load(pack_id: str) -> PackState:
        state = plain_load(pack_id)
        loads.append(pack_id)
        if len(loads) == 1:
            repo.commit([use(state, appt("A2"), at("2026-01-15T09:00"))])
        return state

    monkeypatch.setattr(repo, "load", interfered_load)
    assignment = service.assign(appt("A3", "2026-02-03T10:00"), pack_id="pk1")
    assert loads == ["pk1", "pk1"]
    assert assignment.label == "Session 3 of 3"
    assert [u.appointment.id for u in plain_load("pk1").usages] == ["A1", "A2", "A3"]
    assert [r.event.event_id for r in repo.events_since(0)][-3:] == [
        "pk1#3.1",
        "pk1#4.1",
        "pk1#4.2",
    ]


def test_e14_late_cancel_consumes_and_marks(service: PackService, clock: FixedClock) -> None:
    policy = Policies(late_cancel_notice=timedelta(hours=24), late_cancel_consumes=True)
    service.open_pack("C1", terms=terms(10, policies=policy))
    service.assign(appt("A1", "2026-02-02T10:00"), pack_id="pk1")
    clock.set(at("2026-02-02T07:00"))
    state = service.cancel("A1")
    usage = state.usage("A1")
    assert usage is not None
    assert usage.mark is Mark.LATE_CANCEL
    assert state.remaining == 9
    assert state.label("A1") == "Session 1 of 10"
    assert isinstance(service.events_since()[-1].event, UsageMarked)


def test_e15_goodwill_credit(service: PackService) -> None:
    pack_id = e1(service)
    state = service.adjust(pack_id, 1, "goodwill session")
    assert state.label("A3") == "Session 3 of 11"
    assert state.remaining == 8


def test_e16_per_pack_price_on_first_line_and_recognised_shares(service: PackService) -> None:
    three = terms(3, name="3 for 1000", pricing=PerPack(aud("1000.00")))
    service.add_template("T3", three)
    lines = [
        service.add_to_invoice(appt("A1", "2026-02-02T10:00"), template_id="T3"),
        *(
            service.add_to_invoice(appt(a, s), pack_id="pk1")
            for a, s in (("A2", "2026-02-09T10:00"), ("A3", "2026-02-16T10:00"))
        ),
    ]
    assert [line.amount for line in lines] == [aud("1000.00"), aud("0.00"), aud("0.00")]
    assert [line.prepaid for line in lines] == [False, True, True]
    shares = recognised(service.pack("pk1"))
    assert [r.amount for r in shares] == [aud("333.33"), aud("333.33"), aud("333.34")]


def test_e17_naive_datetime_is_refused(service: PackService) -> None:
    service.open_pack("C1", terms=terms(10))
    service.assign(appt("A1"), pack_id="pk1")
    before = snapshot(service.repository)
    naive = at("2026-02-02T10:00").replace(tzinfo=None)
    with pytest.raises(InvalidValueError) as bad_appointment:
        Appointment("A2", "C1", "physio", naive, timedelta(hours=1), aud("120"))
    assert bad_appointment.value.field == "Appointment.start"
    assert bad_appointment.value.value == naive
    with pytest.raises(InvalidValueError) as bad_move:
        service.reschedule("A1", naive)
    assert (bad_move.value.field, bad_move.value.value) == ("start", naive)
    assert "timezone-aware" in str(bad_move.value)
    assert snapshot(service.repository) == before


def test_e18_other_currency_is_refused(service: PackService) -> None:
    service.open_pack("C1", terms=terms(10))
    before = snapshot(service.repository)
    with pytest.raises(RefusedError) as refused:
        service.assign(appt("A1", price=Money("120.00", "USD")), pack_id="pk1")
    assert (refused.value.field, refused.value.value) == ("appointment.price.currency", "USD")
    assert "AUD" in str(refused.value)
    assert snapshot(service.repository) == before


def test_e19_ineligible_service_falls_through(service: PackService) -> None:
    service.add_template("physio", terms(10, services=["physio"]))
    pack = service.open_pack("C1", template_id="physio")
    service.set_preference("C1", PreferPack(pack.pack_id))
    before = snapshot(service.repository)
    massage = appt("A1", service="massage")
    assignment = service.book(massage)
    assert isinstance(assignment.decision.action, NoPack)
    assert assignment.pack is None
    assert [p.candidate for p in assignment.decision.passed_over] == [pack.pack_id]
    assert "covers only ['physio']" in assignment.decision.passed_over[0].reason
    assert service.choices(massage) == ()
    assert snapshot(service.repository) == before


# Examples of the rules added after the first release (the domain's side of them) ------------


def test_e23_close_releases_future_usages_and_freezes_the_figures(
    service: PackService, clock: FixedClock
) -> None:
    service.open_pack("C1", terms=terms(10, pricing=PerPack(aud("1000.00"))))
    for appointment_id, start in E1_STARTS.items():
        service.assign(appt(appointment_id, start), pack_id="pk1")
    clock.set(at("2026-02-05T09:00"))  # A1 is past; A2 and A3 are to come
    closure = service.close("pk1", "moving away")
    closing = [r.event for r in service.events_since()][-3:]
    assert [type(e) for e in closing] == [UsageReleased, UsageReleased, PackClosed]
    assert [e.appointment_id for e in closing[:2]] == ["A2", "A3"]  # type: ignore[union-attr]
    ledger = service.repository.ledger("pk1")
    assert [type(e).__name__ for e in ledger[-3:]] == ["Released", "Released", "Closed"]
    assert closure.pack.version == ledger[-1].sequence  # the close wrote all three at once
    state = service.pack("pk1")
    assert [u.appointment.id for u in state.usages] == ["A1"]
    assert (closure.remaining, closure.refundable) == (9, aud("900.00"))
    frozen = (state.remaining, figures(state))
    assert frozen[1].refundable == aud("900.00")
    attempts: list[Callable[[], object]] = [
        lambda: service.cancel("A1"),
        lambda: service.no_show("A1"),
        lambda: service.reschedule("A1", at("2026-02-03T10:00")),
        lambda: service.mark("A1", Mark.LATE_CANCEL),
        lambda: service.adjust("pk1", -1, "correction"),
        lambda: service.adjust("pk1", 1, "goodwill"),
        lambda: service.assign(appt("A4", "2026-02-20T10:00"), pack_id="pk1"),
        lambda: service.close("pk1", "again"),
    ]
    for attempt in attempts:
        with pytest.raises(RefusedError) as refused:
            attempt()
        assert refused.value.rule == "R10"
    clock.set(at("2030-01-01T09:00"))
    service.sweep(date(2029, 12, 31))
    service.invoice_line("A1")
    state = service.pack("pk1")
    assert (state.remaining, figures(state)) == frozen
    assert refundable(state) == aud("900.00")


def test_e24_a_released_invoiced_usage_carries_its_line(service: PackService) -> None:
    tiers = terms(10, pricing=PerSession.reduced(aud("150.00"), aud("120.00")))
    service.open_pack("C1", terms=tiers)
    first = service.add_to_invoice(appt("A1", "2026-02-02T10:00"), pack_id="pk1")
    assert first.amount == aud("150.00")
    service.cancel("A1")
    released = service.events_since()[-1].event
    assert isinstance(released, UsageReleased)
    assert (released.appointment_id, released.invoice_label, released.invoice_amount) == (
        "A1",
        "Session 1 of 10",
        aud("150.00"),
    )
    service.assign(appt("A2", "2026-02-09T10:00"), pack_id="pk1")
    line = service.invoice_line("A2")
    assert (line.label, line.amount) == ("Session 1 of 10", aud("150.00"))


def test_e31_a_pack_is_exhausted_once_per_total(service: PackService) -> None:
    service.open_pack("C1", terms=terms(2))
    service.assign(appt("A1", "2026-02-02T10:00"), pack_id="pk1")
    service.assign(appt("A2", "2026-02-09T10:00"), pack_id="pk1")

    def exhausted() -> list[PackExhausted]:
        return [r.event for r in service.events_since() if isinstance(r.event, PackExhausted)]

    assert [e.occurrence for e in exhausted()] == ["pk1:PackExhausted:2"]
    service.cancel("A2")
    again = service.assign(appt("A3", "2026-02-16T10:00"), pack_id="pk1")
    assert again.pack is not None
    assert again.pack.remaining == 0
    assert [type(r.event) for r in again.events] == [SessionUsed]
    assert len(exhausted()) == 1
    service.adjust("pk1", 1, "goodwill")  # a new total re-arms it
    service.assign(appt("A4", "2026-02-23T10:00"), pack_id="pk1")
    assert [e.occurrence for e in exhausted()] == ["pk1:PackExhausted:2", "pk1:PackExhausted:3"]
