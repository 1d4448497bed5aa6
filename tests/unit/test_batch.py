"""Batches (``sessionpacks._batch``): commands decided on the batch's own writes, committed in
one commit; a refusal leaves the rest; a conflict decides again; the same ledgers as one at a
time."""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
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
from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.errors import InvalidValueError, RefusedError, SessionPacksError
from sessionpacks.operations import AppointmentStatus
from sessionpacks.ports import PackRepository
from sessionpacks.testing.plugin import scaled

SYDNEY = ZoneInfo("Australia/Sydney")
START = datetime(2026, 3, 2, 9, tzinfo=SYDNEY)


def desk(repository: PackRepository | None = None, sessions: int = 3) -> PackService:
    counter = itertools.count(1)
    service = PackService(
        repository or InMemoryStore().practice("clinic-1", timezone="Australia/Sydney"),
        FixedClock(datetime(2026, 3, 1, 9, tzinfo=SYDNEY)),
        new_pack_id=lambda: f"pk{next(counter):04d}",
    )
    terms = PackTerms(
        f"{sessions} x Physio", Allowance.sessions(sessions), PerPack(Money("300", "AUD"))
    )
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


def _shape(service: PackService) -> list[object]:
    """Each client's packs in order, their ledgers, and the events (in any order: a batch
    groups its events by pack), with each pack named by its client and place: a command the
    batch decides again after a flush (``_Full``) draws a new pack id, so a batch may open
    ``pk0003`` where one at a time opens ``pk0002``."""
    name: dict[str, str] = {}
    shape: list[object] = []
    for client in ("C1", "C2", "C3"):
        for place, pack in enumerate(service.client_packs(client)):
            name[pack.pack_id] = f"{client}/{place}"
            state = attrs.evolve(pack, pack_id=name[pack.pack_id])
            ledger = tuple(
                attrs.evolve(e, pack_id=state.pack_id) for e in service.ledger(pack.pack_id)
            )
            shape.append((state, ledger))
    events = sorted(
        (type(e.event).__name__, name[e.event.pack_id], getattr(e.event, "number", 0))
        for e in service.events_since(0)
    )
    return [*shape, events]


@scaled(0.5, deadline=None)
@given(ROWS, st.integers(1, 7))
def test_batches_give_the_ledgers_of_one_at_a_time(rows: list[tuple[str, ...]], size: int) -> None:
    _one_at_a_time_and_batched(desk(), desk(), rows, size)


def _one_at_a_time_and_batched(
    one: PackService, batched: PackService, rows: list[tuple[str, ...]], size: int
) -> None:
    """Record ``rows`` on ``one`` a command at a time and on ``batched`` in batches of
    ``size``: the same packs, ledgers and events."""
    batch: Batch[object] = Batch(batched, size=size, live_only=True)
    for n, (client, status, kind) in enumerate(rows):
        appointment = visit(n % 9, client, kind)  # ids repeat: later rows change earlier ones

        def command(s: PackService, a: Appointment = appointment, k: object = status) -> object:
            return s.record(a, k)  # type: ignore[arg-type]

        with contextlib.suppress(SessionPacksError):
            command(one)
        batch.add(command)
    batch.flush()
    assert _shape(batched) == _shape(one)


# On a store that reads a client's usable packs only (SQLite's count and index, issue 11) ------


def test_a_pack_made_usable_earlier_in_the_batch_is_drawn_on(tmp_path: Path) -> None:
    """The store's read of usable packs leaves out a used-up pack that a command held in the
    batch released a session of: the next command on that client is decided after a flush."""
    with SqliteStore(tmp_path / "packs.db") as store:
        service = desk(store.practice("clinic-1", "Australia/Sydney"), sessions=1)
        assert service.book(visit(1)).opened is not None  # one session, now used
        batch: Batch[object] = Batch(service, live_only=True, size=100, seconds=60)
        batch.add(lambda on: on.record(visit(1), AppointmentStatus.CANCELLED))
        batch.add(lambda on: on.record(visit(2), AppointmentStatus.BOOKED))
        *_, booked = batch.flush()
        assert booked.error is None
        assert len(service.client_packs("C1")) == 1  # drawn on again, no second pack opened


@scaled(0.5, deadline=None)
@given(ROWS, st.integers(1, 7), st.sampled_from([1, 3]))
def test_batches_on_sqlite_give_the_ledgers_of_one_at_a_time(
    rows: list[tuple[str, ...]], size: int, sessions: int
) -> None:
    with tempfile.TemporaryDirectory() as folder, SqliteStore(Path(folder) / "p.db") as store:
        batched = desk(store.practice("clinic-1", "Australia/Sydney"), sessions=sessions)
        _one_at_a_time_and_batched(desk(sessions=sessions), batched, rows, size)
