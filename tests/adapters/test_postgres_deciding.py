"""PostgreSQL at one round trip: reads answered from memory inside a decision
(``PostgresRepository.deciding``), each checked before anything decided on it leaves.

``DecidingService`` is ``PackService`` with each attempt inside the repository's decision, the
change to the service this needs. Another ``PostgresStore`` on the same schema stands for
another process: its writes make this one's memory stale.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import psycopg
import pytest

from sessionpacks import operations as ops
from sessionpacks._batch import Batch
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.postgres import PostgresRepository, PostgresStore
from sessionpacks.errors import ConcurrencyError, RefusedError
from sessionpacks.ledger import replay
from sessionpacks.model import PreferPack
from sessionpacks.service import Assignment, PackService

from ..pg_support import NOW, Outcome, appointment, book_all, pg_dsn, pg_schema
from ..stateful.test_stateful_stores import PostgresMachine, postgres_machine_server
from .test_postgres import PRACTICE, RETRIES, SYDNEY, _check_race, _jobs, _open, _prepare_race

pytestmark = pytest.mark.postgres

__all__ = ["pg_dsn", "pg_schema", "postgres_machine_server"]

T = TypeVar("T")


def _within(deciding: Callable[[], AbstractContextManager[Any]], attempt: Callable[[], T]) -> T:
    with deciding():
        return attempt()


class DecidingService(PackService):
    """Each attempt (decide and commit) inside the repository's decision, where it has one."""

    def _retrying(
        self, attempt: Callable[[], T], again: tuple[type[Exception], ...] = (ConcurrencyError,)
    ) -> T:
        deciding = getattr(self.repository, "deciding", nullcontext)
        return super()._retrying(lambda: _within(deciding, attempt), again)


@pytest.fixture
def ours(pg_dsn: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_dsn, schema=pg_schema, max_size=2) as opened:
        yield opened


@pytest.fixture
def theirs(ours: PostgresStore, pg_dsn: str, pg_schema: str) -> Iterator[PostgresStore]:
    """Another process's store on the same schema."""
    with PostgresStore(pg_dsn, schema=pg_schema, max_size=2) as opened:
        yield opened


def _desk(store: PostgresStore, deciding: bool = True) -> PackService:
    kind = DecidingService if deciding else PackService
    return kind(store.practice(PRACTICE, SYDNEY), FixedClock(NOW))


class _Counting:
    """The statements sent on any psycopg connection while it is active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[str] = []
        execute = psycopg.Connection.execute

        def counting(connection: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            text = query.decode() if isinstance(query, bytes) else str(query)
            self.sent.append(" ".join(text.split())[:60])
            return execute(connection, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Connection, "execute", counting)


def test_a_usage_on_a_known_pack_is_one_round_trip(
    ours: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = _desk(ours)
    _open(desk.repository, "P", 10)  # type: ignore[arg-type]
    desk.assign(appointment("A1"), pack_id="P")
    counting = _Counting(monkeypatch)
    assigned = desk.assign(appointment("A2"), pack_id="P")
    assert assigned.label == "Session 2 of 10"
    assert len(counting.sent) == 1, counting.sent
    assert "commit_changes" in counting.sent[0]
    again = desk.assign(appointment("A2"), pack_id="P")  # a repeat: nothing to commit
    assert again.events == ()
    assert again.label == "Session 2 of 10"
    assert len(counting.sent) == 2, counting.sent  # the repeat's one check of what it read


def test_outside_a_decision_every_read_asks_the_database(
    ours: PostgresStore, theirs: PostgresStore
) -> None:
    desk, other = _desk(ours), _desk(theirs)
    _open(desk.repository, "P", 10)  # type: ignore[arg-type]
    desk.assign(appointment("A1"), pack_id="P")
    other.assign(appointment("A2"), pack_id="P")
    assert desk.pack("P").version == 3
    assert desk.holder("A2") == "P"


def test_a_pack_written_by_another_process_is_decided_again(
    ours: PostgresStore, theirs: PostgresStore
) -> None:
    desk, other = _desk(ours), _desk(theirs)
    _open(desk.repository, "P", 10)  # type: ignore[arg-type]
    desk.assign(appointment("A1"), pack_id="P")  # ours knows P at version 2
    other.assign(appointment("A2"), pack_id="P")
    assigned = desk.assign(appointment("A3"), pack_id="P")
    assert assigned.label == "Session 3 of 10"
    repo = desk.repository
    assert [u.appointment.id for u in repo.load("P").usages] == ["A1", "A2", "A3"]
    assert replay(repo.ledger("P")) == repo.load("P")
    assert repo.check_snapshots() == []  # type: ignore[attr-defined]


def test_an_appointment_another_process_put_on_a_pack_is_not_recorded_again(
    ours: PostgresStore, theirs: PostgresStore
) -> None:
    desk, other = _desk(ours), _desk(theirs)
    for pack_id in ("P1", "P2"):
        _open(desk.repository, pack_id, 10)  # type: ignore[arg-type]
    other.assign(appointment("A1"), pack_id="P2")
    with pytest.raises(RefusedError) as raised:
        desk.assign(appointment("A1"), pack_id="P1")  # memory: A1 on no pack
    with pytest.raises(RefusedError) as fresh:
        _desk(theirs, deciding=False).assign(appointment("A1"), pack_id="P1")
    assert (raised.value.rule, raised.value.field) == (fresh.value.rule, fresh.value.field)
    assert desk.holder("A1") == "P2"
    assert desk.pack("P1").usages == ()


def test_a_repeat_answered_from_memory_is_checked(
    ours: PostgresStore, theirs: PostgresStore
) -> None:
    desk, other = _desk(ours), _desk(theirs)
    _open(desk.repository, "P", 10)  # type: ignore[arg-type]
    desk.assign(appointment("A1"), pack_id="P")  # memory: A1 on P
    other.cancel("A1")
    again = desk.assign(appointment("A1"), pack_id="P")  # no longer a repeat
    assert again.events != ()
    assert desk.holder("A1") == "P"


def test_a_refusal_decided_on_a_stale_state_is_decided_again(
    ours: PostgresStore, theirs: PostgresStore
) -> None:
    desk, other = _desk(ours), _desk(theirs)
    _open(desk.repository, "P", 1)  # type: ignore[arg-type]
    desk.assign(appointment("A1"), pack_id="P")  # memory: P used up
    other.adjust("P", 1, "goodwill")
    assigned = desk.assign(appointment("A2"), pack_id="P")
    assert assigned.label == "Session 2 of 2"
    with pytest.raises(RefusedError):  # and now it is used up indeed
        desk.assign(appointment("A3"), pack_id="P")


def test_a_cancel_on_a_pack_moved_meanwhile_follows_the_appointment(
    ours: PostgresStore, theirs: PostgresStore
) -> None:
    desk, other = _desk(ours), _desk(theirs)
    for pack_id in ("P1", "P2"):
        _open(desk.repository, pack_id, 10)  # type: ignore[arg-type]
    desk.assign(appointment("A1"), pack_id="P1")  # memory: A1 on P1
    other.move(appointment("A1"), "P2")
    after = desk.cancel("A1")
    assert after.pack_id == "P2"
    assert after.usages == ()
    assert desk.pack("P1").usages == ()
    assert desk.holder("A1") is None


def _race(stores: list[PostgresStore], repo: PostgresRepository) -> None:
    outcomes, errors = list[Outcome](), list[BaseException]()
    barrier = threading.Barrier(len(stores))

    def work(worker: int) -> None:
        try:
            service = DecidingService(
                stores[worker].practice(PRACTICE), FixedClock(NOW), retries=RETRIES
            )
            for pack_id in ("P1", "P2"):
                service.pack(pack_id)  # each worker knows both packs before the race
            barrier.wait()
            outcomes.extend(book_all(service, _jobs(worker, 4)))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(outcomes) == len(stores) * 5
    _check_race(repo, outcomes)


def test_writers_answering_from_their_own_memories_race_for_the_last_sessions(
    ours: PostgresStore, pg_dsn: str, pg_schema: str
) -> None:
    repo = ours.practice(PRACTICE, SYDNEY)
    _prepare_race(repo)
    stores = [PostgresStore(pg_dsn, schema=pg_schema, max_size=1) for _ in range(4)]
    try:
        _race(stores, repo)
    finally:
        for store in stores:
            store.close()


def test_threads_sharing_one_memory_race_for_the_last_sessions(ours: PostgresStore) -> None:
    repo = ours.practice(PRACTICE, SYDNEY)
    _prepare_race(repo)
    _race([ours] * 4, repo)


class DecidingMachine(PostgresMachine):
    """The PostgreSQL store machine with every workflow inside the repository's decision: one
    writer, so whatever it answers from memory is right, and must agree with the reference."""

    def __init__(self) -> None:
        super().__init__()
        counter = itertools.count(1)
        self.service = DecidingService(
            self.repository, self.clock, retries=0, new_pack_id=lambda: f"P{next(counter)}"
        )


DecidingMachine.TestCase.settings = PostgresMachine.TestCase.settings
TestDecidingMachine = pytest.mark.usefixtures("postgres_machine_server")(DecidingMachine.TestCase)


def test_a_write_other_than_the_commit_checks_what_it_read_first(
    ours: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preference decided on a pack answered from memory: the check comes before the write,
    so a stale answer would stop the write rather than follow it (R17)."""
    desk = _desk(ours)
    _open(desk.repository, "P", 10)  # type: ignore[arg-type]
    counting = _Counting(monkeypatch)
    desk.set_preference("C1", PreferPack("P"))
    assert [s.split()[0:2] for s in counting.sent] == [["SELECT", "'r',"], ["INSERT", "INTO"]]
    assert desk.preference("C1") == PreferPack("P")


# A repair keeps each row's version: what a process remembered from before is not decided on.


def _break(dsn: str, schema: str, pack_id: str, adjustment: int) -> None:
    """Hand-edit the pack's stored state (its version stays): ``adjustment`` sessions more."""
    with psycopg.connect(dsn, autocommit=True) as raw:
        found = raw.execute(
            f"SELECT state FROM {schema}.packs WHERE pack_id = %s".encode(), (pack_id,)
        ).fetchone()
        assert found is not None
        state = json.loads(found[0])
        state["adjustment_units"] += adjustment
        raw.execute(
            f"UPDATE {schema}.packs SET state = %s WHERE pack_id = %s".encode(),
            (json.dumps(state), pack_id),
        )


@pytest.mark.parametrize("adjustment", [5, -8], ids=["more", "used-up"])
def test_a_state_repaired_by_another_process_is_not_decided_on(
    ours: PostgresStore, theirs: PostgresStore, pg_dsn: str, pg_schema: str, adjustment: int
) -> None:
    """Ours remembers P broken (more sessions, or none left); theirs repairs it. Ours neither
    writes the broken state back nor refuses on it."""
    desk, other = _desk(ours), _desk(theirs)
    _open(other.repository, "P", 10)  # type: ignore[arg-type]
    other.assign(appointment("A1"), pack_id="P")
    other.assign(appointment("A2"), pack_id="P")
    _break(pg_dsn, pg_schema, "P", adjustment)
    assert desk.pack("P").remaining == 8 + adjustment  # read, and remembered
    assert theirs.practice(PRACTICE).rebuild_snapshots() == ["P"]
    assert desk.assign(appointment("A3"), pack_id="P").label == "Session 3 of 10"
    assert desk.pack("P").remaining == 7
    assert ours.practice(PRACTICE).check_snapshots() == []


def test_a_repair_inside_a_hosts_decision_starts_it_again(
    ours: PostgresStore, theirs: PostgresStore, pg_dsn: str, pg_schema: str
) -> None:
    """The state read from the database inside the host's decision, before the repair: the
    commit function finds the practice repaired, and the decision starts again knowing it."""
    desk, other = _desk(ours), _desk(theirs)
    _open(other.repository, "P", 10)  # type: ignore[arg-type]
    other.assign(appointment("A1"), pack_id="P")
    _break(pg_dsn, pg_schema, "P", 5)
    with desk.repository.deciding():  # type: ignore[attr-defined]
        assert desk.pack("P").remaining == 14
        assert theirs.practice(PRACTICE).rebuild_snapshots() == ["P"]
        assigned = desk.assign(appointment("A2"), pack_id="P")
        again = desk.assign(appointment("A3"), pack_id="P")
    assert (assigned.label, again.label) == ("Session 2 of 10", "Session 3 of 10")
    assert ours.practice(PRACTICE).check_snapshots() == []


def test_the_commit_function_checks_the_repairs_it_is_given(ours: PostgresStore) -> None:
    repo = ours.practice(PRACTICE, SYDNEY)
    state = _open(repo, "P", 10)
    used = ops.use(state, appointment("A1"), NOW)
    with pytest.raises(ConcurrencyError) as raised:
        repo._call_commit([used], {}, None, repairs=1)  # the practice has none
    assert raised.value.field == "practice_id"
    assert repo.load("P") == state
    repo._call_commit([used], {}, None, repairs=0)
    assert repo.load("P") == used.after


def test_a_commit_waiting_on_a_rebuild_sees_its_repair(
    ours: PostgresStore, pg_dsn: str, pg_schema: str
) -> None:
    """The commit function checks the repairs after writing its pack rows, when a rebuild
    holding the table's lock has ended: a commit that began before the rebuild committed its
    repair still finds it."""
    repo = ours.practice(PRACTICE, SYDNEY)
    used = ops.use(_open(repo, "P", 10), appointment("A1"), NOW)
    outcome: list[BaseException | None] = []

    def commit() -> None:
        try:
            repo._call_commit([used], {}, None, repairs=0)
            outcome.append(None)
        except BaseException as error:  # what the thread met, asserted below
            outcome.append(error)

    with psycopg.connect(pg_dsn) as rebuild:  # what rebuild_snapshots holds, by hand
        rebuild.execute(f"LOCK TABLE {pg_schema}.packs IN EXCLUSIVE MODE".encode())
        rebuild.execute(f"UPDATE {pg_schema}.practices SET repairs = repairs + 1".encode())
        waiting = threading.Thread(target=commit)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # waits on the lock
    waiting.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ConcurrencyError), outcome
    assert outcome[0].field == "practice_id"
    assert repo.load("P").usages == ()


def test_a_batch_decided_before_a_repair_is_decided_again(
    ours: PostgresStore, theirs: PostgresStore, pg_dsn: str, pg_schema: str
) -> None:
    desk, other = _desk(ours, deciding=False), _desk(theirs)
    _open(other.repository, "P", 10)  # type: ignore[arg-type]
    other.assign(appointment("A1"), pack_id="P")
    _break(pg_dsn, pg_schema, "P", 5)
    batch: Batch[Assignment] = Batch(desk, size=100, seconds=60, live_only=True)
    assert batch.add(lambda on: on.assign(appointment("A2"), pack_id="P")) == []
    assert theirs.practice(PRACTICE).rebuild_snapshots() == ["P"]
    [outcome] = batch.flush()
    assert outcome.value is not None
    assert outcome.value.label == "Session 2 of 10"
    assert ours.practice(PRACTICE).check_snapshots() == []
