"""Batches (``sessionpacks._batch``): commands decided on the batch's own writes, committed in
one commit; a refusal leaves the rest; a conflict decides again; the same ledgers as one at a
time."""

from __future__ import annotations

import contextlib
import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import (
    Allowance,
    Appointment,
    FixedClock,
    InMemoryStore,
    Money,
    PackService,
    PackTerms,
    PerPack,
    PreferTemplate,
)
from sessionpacks._batch import Batch, assign_many
from sessionpacks.errors import InvalidValueError, RefusedError, SessionPacksError
from sessionpacks.operations import AppointmentStatus
from sessionpacks.testing.plugin import scaled

SYDNEY = ZoneInfo("Australia/Sydney")
START = datetime(2026, 3, 2, 9, tzinfo=SYDNEY)


def desk() -> PackService:
    counter = itertools.count(1)
    service = PackService(
        InMemoryStore().practice("clinic-1", timezone="Australia/Sydney"),
        FixedClock(datetime(2026, 3, 1, 9, tzinfo=SYDNEY)),
        new_pack_id=lambda: f"pk{next(counter):04d}",
    )
    terms = PackTerms("3 x Physio", Allowance.sessions(3), PerPack(Money("300", "AUD")))
    service.add_template("physio-3", terms)
    for client in ("C1", "C2", "C3"):
        service.set_preference(client, PreferTemplate("physio-3"))
    return service


def visit(n: int, client: str = "C1", service: str = "physio") -> Appointment:
    return Appointment(
        f"a{n}", client, service, START + timedelta(hours=n), timedelta(hours=1), Money("1", "AUD")
    )


def test_assign_many_books_each_and_a_refusal_leaves_the_others() -> None:
    service = desk()
    items = [visit(1), visit(2), "not an appointment", visit(3), visit(4)]
    answers = assign_many(service, items, size=2)  # type: ignore[arg-type]
    assert isinstance(answers[2], InvalidValueError)
    labels = [a.label for a in answers if not isinstance(a, Exception)]
    assert labels == ["Session 1 of 3", "Session 2 of 3", "Session 3 of 3", "Session 1 of 3"]
    stream = service.events_since(0)
    given_back = [e for a in answers if not isinstance(a, Exception) for e in a.events]
    assert sorted(given_back, key=lambda r: r.position) == stream  # positions as stored


def test_a_command_refused_after_a_write_leaves_nothing_of_itself() -> None:
    service = desk()
    batch: Batch[object] = Batch(service)

    def both(s: PackService) -> object:
        s.book(visit(1))
        return s.assign(visit(2), pack_id="no-such-pack")  # refused (R4) after a write

    assert isinstance(batch.add(both) + batch.flush(), list)
    assert service.holder("a1") is None  # the first write went with the refusal
    batch.add(lambda s: s.book(visit(3)))
    [outcome] = batch.flush()
    assert outcome.error is None
    assert service.holder("a3") is not None


def test_a_conflict_at_the_commit_decides_the_batch_again() -> None:
    service = desk()
    service.book(visit(1))
    batch: Batch[object] = Batch(service)
    batch.add(lambda s: s.book(visit(2)))
    service.book(visit(3))  # another writer takes the pack's second session meanwhile
    [outcome] = batch.flush()
    assert outcome.error is None
    pack = service.pack(service.holder("a2") or "")
    assert len(pack.usages) == 3  # decided again on the pack as the other writer left it
    assert [pack.label(a) for a in ("a1", "a2", "a3")] == [
        "Session 1 of 3",
        "Session 2 of 3",
        "Session 3 of 3",
    ]


def test_an_explicit_refusal_is_its_outcome() -> None:
    service = desk()
    batch: Batch[object] = Batch(service)
    batch.add(lambda s: s.assign(visit(1), template_id="nope"))
    [outcome] = batch.flush()
    assert isinstance(outcome.error, RefusedError)


STATUSES = st.sampled_from(list(AppointmentStatus))
ROWS = st.lists(
    st.tuples(st.sampled_from(["C1", "C2", "C3"]), STATUSES, st.sampled_from(["physio", "x"])),
    max_size=40,
)


@scaled(0.5, deadline=None)
@given(ROWS, st.integers(1, 7))
def test_batches_give_the_ledgers_of_one_at_a_time(rows: list[tuple[str, ...]], size: int) -> None:
    one, batched = desk(), desk()
    batch: Batch[object] = Batch(batched, size=size, live_only=True)
    for n, (client, status, kind) in enumerate(rows):
        appointment = visit(n % 9, client, kind)  # ids repeat: later rows change earlier ones

        def command(s: PackService, a: Appointment = appointment, k: object = status) -> object:
            return s.record(a, k)  # type: ignore[arg-type]

        with contextlib.suppress(SessionPacksError):
            command(one)
        batch.add(command)
    batch.flush()
    for client in ("C1", "C2", "C3"):
        packs = one.client_packs(client)
        assert batched.client_packs(client) == packs
        for pack in packs:
            assert batched.ledger(pack.pack_id) == one.ledger(pack.pack_id)
    assert sorted(e.event.event_id for e in batched.events_since(0)) == sorted(
        e.event.event_id for e in one.events_since(0)
    )
