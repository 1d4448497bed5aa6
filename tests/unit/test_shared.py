"""R20: a pack has one owner (who paid) and may list other clients who may draw on it (a
family, a couple). Numbering runs across all of them in start order. Preferences of a listed
client may name the shared pack. Removing a client from the list refuses while they hold
future usages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import events as ev
from sessionpacks import operations as ops
from sessionpacks.clock import FixedClock
from sessionpacks.errors import InvalidValueError, RefusedError
from sessionpacks.ledger import PackState, Shared, Unshared, replay
from sessionpacks.model import Practice, PreferPack, PreferTemplate
from sessionpacks.resolution import UsePack
from sessionpacks.serialization import dumps_event, dumps_state, loads_event, loads_state
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

from ..conftest import appt, at, terms

SYDNEY = Practice("clinic-1", "Australia/Sydney")
NOW = at("2026-03-01T09:00")


def family(*listed: str) -> PackState:
    return ops.open_pack("pk1", "C1", terms(10), SYDNEY, NOW, shared_with=listed).after


def test_e26_numbering_runs_across_the_owner_and_the_clients_it_is_shared_with(
    service: PackService,
) -> None:
    service.open_pack("C1", terms=terms(10), shared_with=["C2"])
    labels = [
        service.assign(appt(a, start, client=c), pack_id="pk1").label
        for a, start, c in (
            ("A1", "2026-03-02T10:00", "C1"),
            ("A2", "2026-03-03T10:00", "C2"),
            ("A3", "2026-03-04T10:00", "C1"),
        )
    ]
    assert labels == ["Session 1 of 10", "Session 2 of 10", "Session 3 of 10"]
    assert service.pack("pk1").remaining == 7


def test_a_client_not_listed_cannot_draw_on_the_pack() -> None:
    with pytest.raises(RefusedError) as refused:
        ops.use(family("C2"), appt("A1", client="C3"), NOW)
    assert (refused.value.rule, refused.value.field) == ("R4", "appointment.client_id")
    assert "belongs to client C1, shared with C2" in str(refused.value)


def test_a_booking_of_a_listed_client_considers_the_shared_pack(service: PackService) -> None:
    """R13.3: a listed client preferring the template draws on the shared pack from it
    before a new pack of their own is opened; R14 offers it first."""
    service.add_template("T", terms(10))
    service.open_pack("C1", template_id="T", shared_with=["C2"])
    assert [p.pack_id for p in service.client_packs("C2")] == ["pk1"]
    choices = service.choices(appt("A1", client="C2"))
    assert choices[0].action == UsePack("pk1")
    service.set_preference("C2", PreferTemplate("T"))
    booked = service.book(appt("A1", client="C2"))
    assert booked.pack is not None
    assert (booked.pack.pack_id, booked.label) == ("pk1", "Session 1 of 10")


def test_a_listed_client_may_prefer_the_shared_pack(service: PackService) -> None:
    service.open_pack("C1", terms=terms(10))
    service.open_pack("C1", terms=terms(10), shared_with=["C2"])
    service.open_pack("C2", terms=terms(10))
    service.set_preference("C2", PreferPack("pk2"))
    booked = service.book(appt("A1", client="C2")).pack
    assert booked is not None
    assert booked.pack_id == "pk2"
    with pytest.raises(RefusedError) as refused:
        service.set_preference("C2", PreferPack("pk1"))
    assert refused.value.field == "preference.pack_id"


def test_a_preferred_pack_no_longer_shared_goes_on_with_its_template(
    service: PackService,
) -> None:
    """R13.2: the preferred pack is not usable once unshared: its template is tried next."""
    service.add_template("T", terms(10))
    service.open_pack("C1", template_id="T", shared_with=["C2"])
    service.open_pack("C2", template_id="T")
    service.set_preference("C2", PreferPack("pk1"))
    service.unshare("pk1", "C2")
    booked = service.book(appt("A1", client="C2"))
    assert booked.pack is not None
    assert booked.pack.pack_id == "pk2"
    [passed] = booked.decision.passed_over
    assert passed.candidate == "pk1"
    assert "belongs to client C1" in passed.reason


def test_sharing_after_opening_and_ending_it(service: PackService, clock: FixedClock) -> None:
    service.open_pack("C1", terms=terms(10))
    shared = service.share("pk1", "C2")
    assert shared.shared_with == ("C2",)
    assert service.share("pk1", "C2") == shared  # again: nothing written
    service.assign(appt("A1", "2026-01-20T10:00", client="C2"), pack_id="pk1")
    clock.advance(timedelta(days=10))
    after = service.unshare("pk1", "C2")
    assert after.shared_with == ()
    assert after.label("A1") == "Session 1 of 10"  # what they used stays used and numbered
    assert service.client_packs("C2") == []
    kinds = [type(r.event).__name__ for r in service.events_since(0)]
    assert kinds == ["PackOpened", "PackShared", "SessionUsed", "PackUnshared"]
    with pytest.raises(RefusedError) as refused:
        service.assign(appt("A2", "2026-02-02T10:00", client="C2"), pack_id="pk1")
    assert refused.value.rule == "R4"
    assert service.book(appt("A2", "2026-02-02T10:00", client="C2")).pack is None


def test_unsharing_refuses_while_the_client_holds_an_appointment_to_come(
    service: PackService,
) -> None:
    service.open_pack("C1", terms=terms(10), shared_with=["C2", "C3"])
    service.assign(appt("A1", "2026-02-02T10:00", client="C2"), pack_id="pk1")
    service.assign(appt("A2", "2026-02-02T11:00", client="C3"), pack_id="pk1")
    with pytest.raises(RefusedError) as refused:
        service.unshare("pk1", "C2")
    assert (refused.value.rule, refused.value.field, refused.value.value) == (
        "R20",
        "client_id",
        "C2",
    )
    assert "appointment A1" in str(refused.value)
    assert len(service.ledger("pk1")) == 3
    service.cancel("A1")
    assert service.unshare("pk1", "C2").shared_with == ("C3",)


def test_sharing_refusals_name_the_field_and_value() -> None:
    with pytest.raises(InvalidValueError, match="owns pack pk1"):
        ops.share(family(), "C1", NOW)
    with pytest.raises(RefusedError, match=r"not shared with them \(shared with C2\)"):
        ops.unshare(family("C2"), "C3", NOW)
    closed = ops.close(family(), "", NOW).after
    with pytest.raises(RefusedError) as refused:
        ops.share(closed, "C2", NOW)
    assert refused.value.rule == "R10"
    for listed, why in ((("C1",), "owner"), (("C2", "C2"), "twice"), ("C2", "tuple")):
        with pytest.raises(InvalidValueError, match=why) as bad:
            ops.open_pack("pk1", "C1", terms(10), SYDNEY, NOW, shared_with=listed)  # type: ignore[arg-type]
        assert bad.value.field == "shared_with"
    many = tuple(f"C{n}" for n in range(2, ops.MAX_SHARED_WITH + 3))
    with pytest.raises(InvalidValueError, match="lists 51 clients, more than 50"):
        ops.open_pack("pk1", "C1", terms(10), SYDNEY, NOW, shared_with=many)
    full = family(*many[:-1])
    with pytest.raises(RefusedError, match="shared with 50 clients already"):
        ops.share(full, many[-1], NOW)


def test_the_ledger_folds_to_the_same_clients_and_round_trips() -> None:
    change = ops.share(family("C2"), "C3", NOW)
    [event] = change.events
    assert isinstance(event, ev.PackShared)
    assert (event.client_id, event.with_client_id, event.shared_with) == ("C1", "C3", ("C2", "C3"))
    assert loads_event(dumps_event(event)) == event
    assert loads_state(dumps_state(change.after)) == change.after
    removed = ops.unshare(change.after, "C2", NOW)
    assert isinstance(removed.events[0], ev.PackUnshared)
    assert removed.after.clients == ("C1", "C3")
    entries = (*ops.open_pack("pk1", "C1", terms(10), SYDNEY, NOW).entries,)
    entries += (Shared(pack_id="pk1", sequence=2, recorded_at=NOW, client_id="C2"),)
    assert replay(entries).shared_with == ("C2",)
    with pytest.raises(InvalidValueError):
        replay((*entries, Unshared(pack_id="pk1", sequence=3, recorded_at=NOW, client_id="C9")))
    with pytest.raises(InvalidValueError):
        replay((*entries, Shared(pack_id="pk1", sequence=3, recorded_at=NOW, client_id="C1")))


def test_a_transfer_of_a_shared_pack_opens_a_pack_of_the_receiver_alone(
    service: PackService,
) -> None:
    service.open_pack("C1", terms=terms(10), shared_with=["C2"])
    service.transfer("pk1", "C2", new_pack_id="pk9", reason="moved out")
    assert service.pack("pk9").clients == ("C2",)
    # The closed source stays among C2's packs, as history: it was shared with them.
    assert [p.pack_id for p in service.client_packs("C2")] == ["pk9", "pk1"]


def test_a_template_default_of_a_listed_client_still_opens_their_own_pack(
    service: PackService,
) -> None:
    """R13a counts the packs the client owns: a shared pack that is used up opens theirs."""
    service.open_pack("C1", terms=terms(1), shared_with=["C2"])
    service.assign(appt("A1", client="C1"), pack_id="pk1")
    service.add_template("T", terms(10))
    service.set_preference("C2", PreferTemplate("T"))
    booked = service.book(appt("A2", client="C2"))
    assert booked.opened
    assert booked.pack is not None
    assert booked.pack.client_id == "C2"


_CLIENTS = ("C1", "C2", "C3")


@given(
    order=st.lists(st.tuples(st.sampled_from(_CLIENTS), st.integers(0, 60 * 24 * 20)), max_size=9)
)
@scaled(1.0)
def test_numbering_is_1_to_k_in_start_order_across_every_client(
    order: list[tuple[str, int]],
) -> None:
    state = family("C2", "C3")
    start = at("2026-03-02T08:00")
    for n, (client, minutes) in enumerate(order):
        moment = start + timedelta(minutes=minutes)
        state = ops.use(state, appt(f"A{n}", moment, client=client), NOW).after
    by_start = sorted(state.usages, key=lambda u: u.key)
    assert [state.number(u.appointment.id) for u in by_start] == list(range(1, len(order) + 1))
    assert state.remaining == 10 - len(order)
    assert {u.appointment.client_id for u in state.usages} <= set(_CLIENTS)


def test_a_client_taken_off_the_pack_cannot_move_a_session_into_the_future(
    service: PackService, clock: FixedClock
) -> None:
    """R20: unsharing refuses while the client holds an appointment to come; a reschedule
    cannot give them one afterwards either."""
    service.open_pack("C1", terms=terms(10), shared_with=["C2"])
    service.assign(appt("B1", "2026-01-10T10:00", client="C2"), pack_id="pk1")  # past
    service.unshare("pk1", "C2")
    with pytest.raises(RefusedError) as refused:
        service.reschedule("B1", at("2026-03-20T10:00"))
    assert (refused.value.rule, refused.value.field) == ("R20", "start")
    assert "client C2 no longer shares pack pk1" in str(refused.value)
    assert service.reschedule("B1", at("2026-01-09T10:00")).label("B1") == "Session 1 of 10"


def test_as_of_a_past_instant_a_client_taken_off_still_sees_what_they_drew_on(
    service: PackService, clock: FixedClock
) -> None:
    """R23: the packs and lines of a client as of then, though they are off the pack now."""
    service.open_pack("C1", terms=terms(10), shared_with=["C2"])
    service.open_pack("C2", terms=terms(5, name="Own"))
    booked = appt("B1", "2026-01-16T10:00", client="C2")
    service.assign(booked, pack_id="pk1")
    service.invoice_line("B1")
    clock.advance(timedelta(days=2))
    then = clock.now()
    clock.advance(timedelta(days=1))
    service.move(booked, "pk2")
    service.unshare("pk1", "C2")
    assert [p.pack_id for p in service.client_packs("C2")] == ["pk2"]
    assert [p.pack_id for p in service.client_packs("C2", as_of=then)] == ["pk1", "pk2"]
    line = service.invoice_line("B1", as_of=then)
    assert (line.pack_id, line.label) == ("pk1", "Session 1 of 10")
