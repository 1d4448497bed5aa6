"""The workflows of PackService on the in-memory store (R2, R6, R7, R10, R12 to R16)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from sessionpacks import events as ev
from sessionpacks.adapters.clock import FixedClock, SystemClock
from sessionpacks.adapters.memory import InMemoryRepository
from sessionpacks.errors import ConcurrencyError, InvalidValueError, RefusedError, Rule
from sessionpacks.ledger import Invoiced, Mark, PackState, PackStatus, Released, Used
from sessionpacks.model import (
    Allowance,
    ExpiresAfterFirstUse,
    ExpiresOn,
    PackTemplate,
    Period,
    PerPack,
    PerSession,
    Policies,
    PreferPack,
    PreferService,
    PreferTemplate,
)
from sessionpacks.operations import AppointmentStatus, use
from sessionpacks.ports import PackQuery
from sessionpacks.resolution import NoPack, OpenPack, UsePack
from sessionpacks.service import PackService

from ..conftest import SYDNEY, appt, at, aud, snapshot, terms


def event_kinds(service: PackService, since: int = 0) -> list[type]:
    return [type(r.event) for r in service.events_since(since)]


# Construction and retries --------------------------------------------------------------------


def test_defaults_are_the_system_clock_and_random_pack_ids(repo: InMemoryRepository) -> None:
    service = PackService(repo)
    assert isinstance(service.clock, SystemClock)
    assert service.retries == 10
    first, second = (service.open_pack("C1", terms=terms(3)) for _ in range(2))
    assert first.pack_id.startswith("pk_")
    assert len(first.pack_id) == 19
    assert first.pack_id != second.pack_id


def interfere(repo: InMemoryRepository, monkeypatch: pytest.MonkeyPatch, times: int) -> list[str]:
    """Make a rival write to a pack right after each of the first ``times`` loads of it."""
    plain = repo.load
    loads: list[str] = []

    def load(pack_id: str) -> PackState:
        state = plain(pack_id)
        loads.append(pack_id)
        if len(loads) <= times:
            rival = appt(f"R{len(loads)}", "2026-03-01T10:00")
            repo.commit([use(state, rival, at("2026-01-15T09:00"))])
        return state

    monkeypatch.setattr(repo, "load", load)
    return loads


def test_service_retries_a_bounded_number_of_times(
    repo: InMemoryRepository, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = PackService(repo, clock, retries=2, new_pack_id=lambda: "pk1")
    service.open_pack("C1", terms=terms(10))
    loads = interfere(repo, monkeypatch, times=3)
    with pytest.raises(ConcurrencyError) as conflict:
        service.adjust("pk1", 1, "goodwill")
    assert (conflict.value.field, conflict.value.value) == ("pack_id", "pk1")
    assert loads == ["pk1"] * 3
    assert repo.load("pk1").adjustment_units == 0
    assert len(repo.load("pk1").usages) == 3


def test_service_succeeds_on_the_last_retry(
    repo: InMemoryRepository, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = PackService(repo, clock, retries=2, new_pack_id=lambda: "pk1")
    service.open_pack("C1", terms=terms(10))
    loads = interfere(repo, monkeypatch, times=2)
    assert service.adjust("pk1", 1, "goodwill").total == 11
    assert loads == ["pk1"] * 3


# Templates and preferences -------------------------------------------------------------------


def test_templates_are_versioned_and_open_packs_keep_their_terms(service: PackService) -> None:
    template = service.add_template("T", terms(10))
    assert template == PackTemplate("T", terms(10), 1)
    pack = service.open_pack("C1", template_id="T")
    revised = service.edit_template("T", allowance=Allowance.sessions(12), name="12 x Physio")
    assert (revised.version, revised.name) == (2, "12 x Physio")
    assert service.repository.template("T") == revised
    assert service.pack(pack.pack_id).terms == terms(10)
    assert (pack.template_id, pack.template_version) == ("T", 1)
    newer = service.open_pack("C1", template_id="T")
    assert (newer.total, newer.template_version) == (12, 2)


def test_edit_template_retries_a_concurrent_edit(
    service: PackService, repo: InMemoryRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.add_template("T", terms(10))
    plain = repo.template
    reads: list[str] = []

    def template(template_id: str, version: int | None = None) -> PackTemplate:
        found = plain(template_id, version)
        reads.append(template_id)
        if len(reads) == 1:
            repo.save_template(found.revise(description="rival edit"))
        return found

    monkeypatch.setattr(repo, "template", template)
    revised = service.edit_template("T", name="Physio ten")
    assert revised.version == 3
    assert (revised.terms.description, revised.name) == ("rival edit", "Physio ten")


def test_preferences_are_set_and_cleared(service: PackService) -> None:
    service.add_template("T", terms(10))
    pack = service.open_pack("C1", template_id="T")
    for preference in (PreferService("physio"), PreferTemplate("T"), PreferPack(pack.pack_id)):
        service.set_preference("C1", preference)
        assert service.repository.preference("C1") == preference
    service.set_preference("C1", None)
    assert service.repository.preference("C1") is None


# Opening -------------------------------------------------------------------------------------


def test_open_pack_from_the_profile_is_charged_on_its_own_invoice(service: PackService) -> None:
    pack = service.open_pack("C1", terms=terms(3, pricing=PerPack(aud("300"))), pack_id="mine")
    assert pack.pack_id == "mine"
    assert pack.charged_on_open
    line = service.add_to_invoice(appt("A1"), pack_id="mine")
    assert (line.amount, line.prepaid, line.includes_pack_price) == (aud(0), True, False)
    assert event_kinds(service) == [ev.PackOpened, ev.SessionUsed]


def test_open_pack_not_charged_on_open(service: PackService) -> None:
    pricing = PerPack(aud("300"))
    service.open_pack("C1", terms=terms(3, pricing=pricing), charged_on_open=False)
    line = service.add_to_invoice(appt("A1"), pack_id="pk1")
    assert (line.amount, line.includes_pack_price) == (aud("300"), True)


# Deciding, booking, assigning ----------------------------------------------------------------


def test_decide_and_choices_write_nothing(service: PackService) -> None:
    service.add_template("T", terms(10, name="Physio ten"))
    service.add_template("M", terms(5, name="massage five", services=["massage"]))
    service.add_template("A", terms(5, name="Any five"))
    older = service.open_pack("C1", terms=terms(3, name="Old"))
    expiring = service.open_pack("C1", terms=terms(3, expiry=ExpiresOn(date(2026, 5, 1))))
    service.set_preference("C1", PreferTemplate("T"))
    before = snapshot(service.repository)
    appointment = appt("A1")
    assert service.decide(appointment).action == OpenPack("T")
    assert service.decide(appointment, PreferPack(older.pack_id)).action == UsePack("pk1")
    offered = service.choices(appointment)
    assert [c.action for c in offered] == [
        UsePack(expiring.pack_id),
        UsePack(older.pack_id),
        OpenPack("A"),
        OpenPack("T"),
    ]
    assert offered[1].label == "Old (pk1), 3 left"
    assert offered[2].label == "new pack: Any five"
    assert snapshot(service.repository) == before


def test_book_without_preference_or_with_a_service_uses_no_pack(service: PackService) -> None:
    service.open_pack("C1", terms=terms(3))
    before = snapshot(service.repository)
    plain = service.book(appt("A1"))
    assert plain.decision.action == NoPack()
    assert (plain.pack, plain.label, plain.events, plain.opened) == (None, None, (), False)
    service.set_preference("C1", PreferService("massage"))
    by_service = service.book(appt("A1"))
    assert by_service.decision.action == NoPack("massage")
    assert "massage" in by_service.decision.reason
    before["preferences"]["C1"] = PreferService("massage")
    assert snapshot(service.repository) == before


def test_book_by_preferred_template_opens_then_reuses(service: PackService) -> None:
    service.add_template("T", terms(2))
    service.set_preference("C1", PreferTemplate("T"))
    first = service.book(appt("A1", "2026-02-02T10:00"))
    assert (first.opened, first.label) == (True, "Session 1 of 2")
    assert [r.position for r in first.events] == [1, 2]
    assert [type(r.event) for r in first.events] == [ev.PackOpened, ev.SessionUsed]
    second = service.book(appt("A2", "2026-02-09T10:00"))
    assert (second.opened, second.label) == (False, "Session 2 of 2")
    assert second.decision.action == UsePack("pk1")
    third = service.book(appt("A3", "2026-02-16T10:00"))
    assert (third.opened, third.label) == (True, "Session 1 of 2")
    assert third.pack is not None
    assert third.pack.pack_id == "pk2"


def test_booking_again_returns_the_usage_even_when_it_took_the_last_session(
    service: PackService,
) -> None:
    service.add_template("T", terms(1))
    service.set_preference("C1", PreferTemplate("T"))
    first = service.book(appt("A1"))
    before = snapshot(service.repository)
    again = service.book(appt("A1"))
    by_template = service.assign(appt("A1"), template_id="T")
    by_pack = service.assign(appt("A1"), pack_id="pk1")
    for repeat in (again, by_template, by_pack):
        assert repeat.pack == first.pack
        assert repeat.decision.action == UsePack("pk1")
        assert (repeat.events, repeat.opened) == ((), False)
    assert "already recorded on pack pk1" in again.decision.reason
    assert snapshot(service.repository) == before


def test_assign_a_template_opens_a_pack_not_charged_on_open(service: PackService) -> None:
    service.add_template("T", terms(3, pricing=PerPack(aud("300"))))
    assignment = service.assign(appt("A1"), template_id="T")
    assert assignment.opened
    assert assignment.pack is not None
    assert not assignment.pack.charged_on_open
    assert assignment.decision.reason == "chosen template T: a new pack is opened"
    ledger = service.repository.ledger("pk1")
    assert [e.sequence for e in ledger] == [1, 2]


def test_move_releases_and_uses_atomically(service: PackService) -> None:
    service.open_pack("C1", terms=terms(3))
    service.open_pack("C1", terms=terms(5))
    service.assign(appt("A1"), pack_id="pk1")
    position = len(service.events_since())
    moved = service.move(appt("A1"), "pk2")
    assert moved.decision.action == UsePack("pk2")
    assert moved.decision.reason == "moved from pk1"
    assert moved.label == "Session 1 of 5"
    assert [type(r.event) for r in moved.events] == [ev.UsageReleased, ev.SessionUsed]
    assert event_kinds(service, position) == [ev.UsageReleased, ev.SessionUsed]
    assert service.repository.pack_of_appointment("A1") == "pk2"
    released = service.repository.ledger("pk1")[-1]
    assert isinstance(released, Released)
    assert released.reason == "moved to pk2"
    assert service.pack("pk1").remaining == 3


def test_move_to_its_own_pack_or_of_a_new_appointment_is_an_assignment(
    service: PackService,
) -> None:
    service.open_pack("C1", terms=terms(3))
    fresh = service.move(appt("A1"), "pk1")
    assert fresh.label == "Session 1 of 3"
    before = snapshot(service.repository)
    same = service.move(appt("A1"), "pk1")
    assert same.pack == fresh.pack
    assert snapshot(service.repository) == before


def test_add_to_invoice_by_preference(service: PackService) -> None:
    service.add_template("T", terms(3, pricing=PerSession.reduced(aud("150"), aud("120"))))
    service.set_preference("C1", PreferTemplate("T"))
    line = service.add_to_invoice(appt("A1"))
    assert (line.pack_id, line.label, line.amount) == ("pk1", "Session 1 of 3", aud("150"))


def test_invoice_line_is_issued_once(service: PackService) -> None:
    service.open_pack("C1", terms=terms(3))
    first = service.add_to_invoice(appt("A2", "2026-02-09T10:00"), pack_id="pk1")
    ledger = service.repository.ledger("pk1")
    assert isinstance(ledger[-1], Invoiced)
    service.assign(appt("A1", "2026-02-02T10:00"), pack_id="pk1")
    again = service.invoice_line("A2")
    assert again == first
    assert again.label == "Session 1 of 3"
    assert service.pack("pk1").label("A2") == "Session 2 of 3"
    assert len(service.repository.ledger("pk1")) == len(ledger) + 1


# Changing usages -----------------------------------------------------------------------------


def test_cancel_at_a_given_instant_and_by_the_clock(
    service: PackService, clock: FixedClock
) -> None:
    policy = Policies(late_cancel_notice=timedelta(hours=24), late_cancel_consumes=True)
    service.open_pack("C1", terms=terms(5, policies=policy))
    service.assign(appt("A1", "2026-02-02T10:00"), pack_id="pk1")
    service.assign(appt("A2", "2026-02-03T08:00"), pack_id="pk1")
    clock.set(at("2026-02-02T09:00"))
    early = service.cancel("A1", cancelled_at=at("2026-01-30T09:00"))
    assert early.usage("A1") is None
    late = service.cancel("A2")
    usage = late.usage("A2")
    assert usage is not None
    assert usage.mark is Mark.LATE_CANCEL
    assert service.repository.pack_of_appointment("A1") is None
    assert service.repository.pack_of_appointment("A2") == "pk1"


def test_late_cancel_and_no_show_follow_the_policy(service: PackService) -> None:
    policy = Policies(late_cancel_consumes=False, no_show_consumes=True)
    service.open_pack("C1", terms=terms(5, policies=policy))
    service.assign(appt("A1", "2026-02-02T10:00"), pack_id="pk1")
    service.assign(appt("A2", "2026-02-03T10:00"), pack_id="pk1")
    assert service.late_cancel("A1").usage("A1") is None
    shown = service.no_show("A2").usage("A2")
    assert shown is not None
    assert shown.mark is Mark.NO_SHOW
    assert service.pack("pk1").remaining == 4


def test_reschedule_and_mark(service: PackService) -> None:
    service.open_pack("C1", terms=terms(5))
    service.assign(appt("A1", "2026-02-02T10:00"), pack_id="pk1")
    service.assign(appt("A2", "2026-02-03T10:00"), pack_id="pk1")
    moved = service.reschedule("A1", at("2026-02-04T10:00"))
    assert moved.label("A1") == "Session 2 of 5"
    marked = service.mark("A2", Mark.NO_SHOW).usage("A2")
    assert marked is not None
    assert marked.mark is Mark.NO_SHOW
    assert event_kinds(service)[-2:] == [ev.UsageRescheduled, ev.UsageMarked]


# Changing packs ------------------------------------------------------------------------------


def test_adjust_extend_close(service: PackService, clock: FixedClock) -> None:
    service.open_pack(
        "C1", terms=terms(3, pricing=PerPack(aud("300")), expiry=ExpiresOn(date(2026, 4, 1)))
    )
    service.assign(appt("A1"), pack_id="pk1")
    assert service.adjust("pk1", 1, "goodwill").remaining == 3
    assert service.extend("pk1", date(2026, 5, 1), "surgery").expiry_date == date(2026, 5, 1)
    clock.set(at("2026-02-03T09:00"))  # A1 is past: the close keeps it (R10a)
    closure = service.close("pk1", "moving away")
    assert closure.remaining == 3
    assert closure.refundable == aud("200")
    assert closure.pack.closed_at is not None
    assert event_kinds(service)[-3:] == [ev.PackAdjusted, ev.ExpiryExtended, ev.PackClosed]


def test_void(service: PackService) -> None:
    service.open_pack("C1", terms=terms(3))
    assert service.void("pk1", "wrong client").voided_at is not None
    assert event_kinds(service)[-1] is ev.PackVoided


def test_sweep_expires_each_pack_once(service: PackService, clock: FixedClock) -> None:
    expiring = terms(3, expiry=ExpiresOn(date(2026, 4, 16)))
    service.open_pack("C1", terms=expiring)
    service.open_pack("C2", terms=expiring)
    service.open_pack("C1", terms=terms(3, expiry=ExpiresOn(date(2026, 4, 17))))
    service.open_pack("C1", terms=terms(1, expiry=ExpiresOn(date(2026, 4, 16))))
    service.assign(appt("A1"), pack_id="pk4")
    clock.set(at("2026-04-16T02:00"))
    swept = service.sweep(date(2026, 4, 16))
    assert sorted(r.event.pack_id for r in swept) == ["pk1", "pk2"]
    assert all(isinstance(r.event, ev.PackExpired) for r in swept)
    clock.set(at("2026-04-18T02:00"))  # a sweep cannot look ahead (R12a)
    assert [r.event.pack_id for r in service.sweep(date(2026, 4, 17))] == ["pk3"]
    assert service.sweep(date(2026, 4, 18)) == ()


# Reading -------------------------------------------------------------------------------------


def test_client_packs_live_first_then_oldest(service: PackService, clock: FixedClock) -> None:
    service.open_pack("C1", terms=terms(1))  # pk1: exhausted below
    clock.advance(timedelta(minutes=1))
    service.open_pack("C1", terms=terms(3))  # pk2: voided below
    clock.advance(timedelta(minutes=1))
    service.open_pack("C1", terms=terms(3))  # pk3: closed below
    clock.advance(timedelta(minutes=1))
    service.open_pack("C1", terms=terms(3, expiry=ExpiresOn(date(2026, 1, 16))))  # pk4: expires
    clock.advance(timedelta(minutes=1))
    service.open_pack("C1", terms=terms(3))  # pk5: open
    service.open_pack("C2", terms=terms(3))
    service.assign(appt("A1", "2026-01-15T10:00"), pack_id="pk1")
    service.void("pk2")
    service.close("pk3")
    clock.set(at("2026-01-16T09:00"))
    packs = service.client_packs("C1")
    assert [p.pack_id for p in packs] == ["pk5", "pk1", "pk4", "pk3", "pk2"]
    now = clock.now()
    assert [p.status(now) for p in packs] == [
        PackStatus.OPEN,
        PackStatus.EXHAUSTED,
        PackStatus.EXPIRED,
        PackStatus.CLOSED,
        PackStatus.VOIDED,
    ]


def test_events_since_reads_from_a_position(service: PackService) -> None:
    service.open_pack("C1", terms=terms(3))
    service.assign(appt("A1"), pack_id="pk1")
    service.assign(appt("A2"), pack_id="pk1")
    everything = service.events_since()
    assert [r.position for r in everything] == [1, 2, 3]
    assert service.events_since(1, limit=1) == everything[1:2]
    assert len({r.event.event_id for r in everything}) == 3


def test_usage_entries_record_the_clock(service: PackService, clock: FixedClock) -> None:
    service.open_pack("C1", terms=terms(3))
    clock.set(at("2026-01-20T12:00"))
    service.assign(appt("A1"), pack_id="pk1")
    entry = service.repository.ledger("pk1")[-1]
    assert isinstance(entry, Used)
    assert entry.recorded_at == at("2026-01-20T12:00")


class NaiveClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 15, 9)


def test_a_naive_clock_is_refused(repo: InMemoryRepository) -> None:
    service = PackService(repo, NaiveClock())
    before = snapshot(repo)
    with pytest.raises(Exception, match=r"clock\.now\(\)") as caught:
        service.open_pack("C1", terms=terms(3))
    error: Any = caught.value
    assert error.field == "clock.now()"
    assert snapshot(repo) == before


def test_assigning_an_unknown_template_is_refused_with_nothing_written(
    service: PackService, repo: InMemoryRepository
) -> None:
    before = snapshot(repo)
    with pytest.raises(RefusedError) as refused:
        service.assign(appt("A1"), template_id="nope")
    assert (refused.value.rule, refused.value.field, refused.value.value) == (
        "R2",
        "template_id",
        "nope",
    )
    assert snapshot(repo) == before


def test_an_explicit_service_is_billed_at_its_price_without_reading_packs(
    service: PackService,
) -> None:
    decision = service.decide(appt("A1"), PreferService("massage"))
    assert decision.action == NoPack("massage")


def test_assigning_an_unknown_pack_is_refused_with_nothing_written(
    service: PackService, repo: InMemoryRepository
) -> None:
    before = snapshot(repo)
    with pytest.raises(RefusedError) as refused:
        service.assign(appt("A1"), pack_id="nope")
    assert (refused.value.rule, refused.value.field, refused.value.value) == (
        "R4",
        "pack_id",
        "nope",
    )
    assert snapshot(repo) == before


class _MovesAfterReading:
    """A repository whose first holder lookup is followed by a rival move of the appointment."""

    def __init__(self, inner: InMemoryRepository, rival: Any) -> None:
        self._inner = inner
        self._rival = rival

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        holder = self._inner.pack_of_appointment(appointment_id)
        if self._rival is not None:
            rival, self._rival = self._rival, None
            rival()
        return holder


def test_a_cancel_racing_a_move_is_retried_on_the_new_pack(
    service: PackService, repo: InMemoryRepository, clock: FixedClock
) -> None:
    a, b = service.open_pack("C1", terms=terms()), service.open_pack("C1", terms=terms())
    service.assign(appt("A1", "2026-03-02T10:00"), pack_id=a.pack_id)
    racing = PackService(
        _MovesAfterReading(repo, lambda: service.move(appt("A1", "2026-03-02T10:00"), b.pack_id)),
        clock,
    )
    after = racing.cancel("A1")
    assert after.pack_id == b.pack_id
    assert repo.pack_of_appointment("A1") is None


def test_an_expired_first_use_pack_stays_expired_when_its_first_use_is_cancelled(
    service: PackService, clock: FixedClock
) -> None:
    pack = service.open_pack(
        "C1", terms=terms(expiry=ExpiresAfterFirstUse(Period(months=1))), charged_on_open=False
    )
    service.assign(appt("A1", "2026-02-01T10:00"), pack_id=pack.pack_id)
    service.assign(appt("A2", "2026-02-20T10:00"), pack_id=pack.pack_id)
    clock.set(at("2026-03-01T09:00"))
    assert len(service.sweep(date(2026, 3, 1))) == 1
    clock.set(at("2026-03-02T09:00"))
    after = service.cancel("A1")
    assert after.expiry_date == date(2026, 3, 1)
    assert after.status(at("2026-03-02T09:00")) is PackStatus.EXPIRED
    clock.set(at("2026-03-20T09:00"))
    assert service.sweep(date(2026, 3, 20)) == ()


# Reads for the command line and hosts ---------------------------------------------------------


def test_reads_give_what_the_store_keeps_with_ids_checked(repo: InMemoryRepository) -> None:
    service = PackService(repo, FixedClock(at("2026-03-02T09:00")))
    service.add_template("zeta", terms(5, name="Zeta pack"))
    service.add_template("alpha", terms(3, name="alpha pack"))
    service.edit_template("alpha", name="Alpha pack")
    service.set_preference("C1", PreferTemplate("alpha"))
    booked = service.book(appt("A1", "2026-03-03T09:00"))
    assert booked.pack is not None
    pack_id = booked.pack.pack_id
    assert [t.id for t in service.templates()] == ["alpha", "zeta"]
    assert service.template("alpha").version == 2
    assert service.template("alpha", 1).name == "alpha pack"
    assert service.preference("C1") == PreferTemplate("alpha")
    assert service.preference("C2") is None
    assert service.holder("A1") == pack_id
    assert service.holder("A2") is None
    assert service.ledger(pack_id) == repo.ledger(pack_id)
    assert service.practice == repo.practice
    assert service.today() == date(2026, 3, 2)
    with pytest.raises(InvalidValueError, match="version"):
        service.template("alpha", 0)
    for read in (service.ledger, service.holder, service.template, service.preference):
        with pytest.raises(InvalidValueError):
            read("")


# Recording an appointment with its status -------------------------------------------------


KEEPS = Policies(late_cancel_consumes=True, no_show_consumes=False)


def test_record_booked_is_a_booking_and_again_writes_nothing(service: PackService) -> None:
    service.add_template("t", terms(5))
    service.set_preference("C1", PreferTemplate("t"))
    first = service.record(appt("A1"), AppointmentStatus.BOOKED)
    assert (first.opened, first.label, first.decision.action) == (
        True,
        "Session 1 of 5",
        OpenPack("t"),
    )
    assert [type(e.event) for e in first.events] == [ev.PackOpened, ev.SessionUsed]
    before = snapshot(service.repository)
    again = service.record(appt("A1"), "booked")  # type: ignore[arg-type]
    assert (again.events, again.label) == ((), "Session 1 of 5")
    assert snapshot(service.repository) == before
    with pytest.raises(RefusedError) as differs:
        service.record(appt("A1", price="99.00"), AppointmentStatus.BOOKED)
    assert (differs.value.rule, differs.value.field) == ("R6a", "appointment.price")


def test_record_a_late_cancel_opens_uses_and_marks_in_one_change(service: PackService) -> None:
    service.add_template("t", terms(5, policies=KEEPS))
    service.set_preference("C1", PreferTemplate("t"))
    recorded = service.record(appt("A1"), AppointmentStatus.LATE_CANCEL)
    assert [type(e.event) for e in recorded.events] == [
        ev.PackOpened,
        ev.SessionUsed,
        ev.UsageMarked,
    ]
    assert recorded.pack is not None
    assert service.pack("pk1").version == recorded.pack.version == 3
    usage = service.pack("pk1").usage("A1")
    assert usage is not None
    assert usage.mark is Mark.LATE_CANCEL
    before = snapshot(service.repository)
    assert service.record(appt("A1"), AppointmentStatus.LATE_CANCEL).events == ()
    assert snapshot(service.repository) == before  # already marked so: nothing written
    with pytest.raises(RefusedError) as marked:
        service.record(appt("A1"), AppointmentStatus.NO_SHOW)
    assert marked.value.rule == "R7"


def test_record_what_the_policy_gives_back_records_nothing(service: PackService) -> None:
    service.add_template("t", terms(5, policies=KEEPS))
    service.open_pack("C1", template_id="t")
    service.set_preference("C1", PreferTemplate("t"))
    before = snapshot(service.repository)
    shown = service.record(appt("A1"), AppointmentStatus.NO_SHOW)
    assert (shown.events, shown.pack, shown.decision.action) == ((), None, NoPack())
    assert "pack pk1 gives such a session back" in shown.decision.reason
    good_time = service.record(appt("A2"), AppointmentStatus.CANCELLED)
    assert good_time.decision.reason == "cancelled in good time: nothing to record"
    assert snapshot(service.repository) == before
    service.set_preference("C1", PreferService("physio"))
    assert service.record(appt("A3"), AppointmentStatus.LATE_CANCEL).decision.action == NoPack(
        "physio"
    )


def test_record_a_template_that_gives_it_back_opens_nothing(service: PackService) -> None:
    service.add_template("t", terms(5))
    shown = service.record(appt("A1"), AppointmentStatus.NO_SHOW, template_id="t")
    assert (shown.events, shown.opened) == ((), False)
    assert "template t gives such a session back" in shown.decision.reason
    assert service.client_packs("C1") == []


def test_record_a_cancellation_with_its_instant_judges_lateness(service: PackService) -> None:
    service.open_pack("C1", terms=terms(5, policies=KEEPS))
    early, late = at("2026-01-30T09:00"), at("2026-02-02T08:00")
    kept = service.record(appt("A1"), AppointmentStatus.CANCELLED, cancelled_at=late, pack_id="pk1")
    assert kept.label == "Session 1 of 5"
    assert (
        service.record(
            appt("A2"), AppointmentStatus.CANCELLED, cancelled_at=early, pack_id="pk1"
        ).events
        == ()
    )
    with pytest.raises(InvalidValueError) as wrong:
        service.record(appt("A3"), AppointmentStatus.NO_SHOW, cancelled_at=late)
    assert wrong.value.field == "cancelled_at"


def test_record_a_status_of_an_appointment_on_a_pack_acts_on_its_usage(
    service: PackService,
) -> None:
    service.open_pack("C1", terms=terms(5, policies=KEEPS))
    service.assign(appt("A1"), pack_id="pk1")
    service.assign(appt("A2", "2026-02-03T10:00"), pack_id="pk1")
    service.assign(appt("A3", "2026-02-04T10:00"), pack_id="pk1")
    released = service.record(appt("A1"), AppointmentStatus.CANCELLED)
    assert (released.label, released.decision.reason) == (None, "cancelled on pack pk1")
    assert [type(e.event) for e in released.events] == [ev.UsageReleased]
    marked = service.record(appt("A2", "2026-02-03T10:00"), AppointmentStatus.LATE_CANCEL)
    assert marked.label == "Session 1 of 5"
    shown = service.record(appt("A3", "2026-02-04T10:00"), AppointmentStatus.NO_SHOW)
    assert shown.label is None  # this policy gives a no-show back
    assert service.holder("A1") is None
    assert service.holder("A3") is None


def test_record_is_idempotent_with_a_key_and_refuses_bad_status(service: PackService) -> None:
    service.open_pack("C1", terms=terms(5, policies=KEEPS))
    first = service.record(
        appt("A1"), AppointmentStatus.LATE_CANCEL, pack_id="pk1", idempotency_key="k1"
    )
    again = service.record(
        appt("A1"), AppointmentStatus.LATE_CANCEL, pack_id="pk1", idempotency_key="k1"
    )
    assert again == first
    assert len(service.ledger("pk1")) == 3
    with pytest.raises(RefusedError) as other:
        service.record(appt("A1"), AppointmentStatus.NO_SHOW, pack_id="pk1", idempotency_key="k1")
    assert other.value.rule == "R27"
    for status in ("canceled", "", None, Mark.NO_SHOW):
        with pytest.raises(InvalidValueError) as bad:
            service.record(appt("A9"), status)  # type: ignore[arg-type]
        assert bad.value.field == "status"


def test_set_preference_of_another_clients_pack_is_refused(service: PackService) -> None:
    service.open_pack("C2", terms=terms(5))
    with pytest.raises(RefusedError) as foreign:
        service.set_preference("C1", PreferPack("pk1"))
    assert (foreign.value.rule, foreign.value.field) == (Rule.R4, "preference.pack_id")
    assert service.preference("C1") is None


# find_packs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"statuses": [PackStatus.OPEN]}, "as_of"),
        ({"as_of": at("2026-03-01T10:00")}, "as_of"),
        ({"statuses": ["open"], "as_of": at("2026-03-01T10:00")}, "statuses"),
        ({"statuses": "open", "as_of": at("2026-03-01T10:00")}, "statuses"),
        ({"statuses": [PackStatus.OPEN], "as_of": datetime(2026, 3, 1)}, "as_of"),
        ({"expiring_from": datetime(2026, 3, 1, tzinfo=SYDNEY)}, "expiring_from"),
        ({"expiring_to": date(2200, 1, 1)}, "expiring_to"),
        ({"expiring_from": date(2026, 3, 2), "expiring_to": date(2026, 3, 1)}, "expiring_to"),
        ({"at_most_left": -1}, "at_most_left"),
        ({"at_most_left": True}, "at_most_left"),
        ({"at_most_left": 1.5}, "at_most_left"),
        ({"at_most_left": timedelta(minutes=-1)}, "at_most_left"),
        ({"at_most_left": aud("-0.01")}, "at_most_left"),
        ({"template_id": ""}, "template_id"),
        ({"template_id": "x" * 201}, "template_id"),
    ],
)
def test_a_pack_query_refuses_bad_values(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValueError) as refused:
        PackQuery(**arguments)
    assert refused.value.field == field


def test_a_pack_query_takes_one_status_or_several() -> None:
    when = at("2026-03-01T10:00")
    one = PackQuery(statuses=PackStatus.OPEN, as_of=when)
    assert one == PackQuery(statuses=[PackStatus.OPEN], as_of=when)
    assert one.statuses == frozenset({PackStatus.OPEN})
    assert PackQuery(at_most_left=aud("5.00")).left == ("money:AUD", 500)
    assert PackQuery(at_most_left=timedelta(hours=1)).left == ("hours", 3_600_000_000)


def test_find_packs_checks_before_the_store_sees_anything(
    service: PackService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.open_pack("C1", terms=terms(2), pack_id="pk-a")
    service.open_pack("C1", terms=terms(1), pack_id="pk-b")
    seen: list[Any] = []
    monkeypatch.setattr(service.repository, "find_packs", lambda *a, **k: seen.append(a))
    bad: list[tuple[Any, dict[str, Any]]] = [
        ({"at_most_left": 1}, {}),
        (PackQuery(), {"after": "pk-a"}),
        (PackQuery(), {"limit": 0}),
    ]
    for query, page in bad:
        with pytest.raises(InvalidValueError):
            service.find_packs(query, **page)
    assert seen == []


def test_find_packs_pages_through_the_store(service: PackService) -> None:
    for pack_id in ("pk-c", "pk-a", "pk-b"):
        service.open_pack("C1", terms=terms(1), pack_id=pack_id)
    first = service.find_packs(PackQuery(at_most_left=1), limit=2)
    assert [p.pack_id for p in first.packs] == ["pk-a", "pk-b"]
    rest = service.find_packs(PackQuery(at_most_left=1), after=first.next_cursor, limit=2)
    assert [p.pack_id for p in rest.packs] == ["pk-c"]
    assert rest.next_cursor is None
