"""SQLite with fewer statements: reads answered from memory inside a decision
(``SqliteRepository.deciding``, which ``PackService`` enters for every call), each checked
before anything decided on it leaves.

Another ``SqliteStore`` on the same file stands for another process: its writes make this
one's memory stale. The races of ``test_sqlite.py`` run through the same decisions.
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from sessionpacks._batch import Batch
from sessionpacks.adapters._sql.known import Known
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.sqlite import SqliteStore, _Connections
from sessionpacks.errors import ConcurrencyError, RefusedError
from sessionpacks.ledger import replay
from sessionpacks.model import PreferPack
from sessionpacks.service import Assignment, PackService

from .test_sqlite import NOW, SYDNEY, _appointment, _terms

PRACTICE = "clinic-1"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "packs.db"


@pytest.fixture
def ours(path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(path) as opened:
        yield opened


@pytest.fixture
def theirs(ours: SqliteStore, path: Path) -> Iterator[SqliteStore]:
    """Another process's store on the same file (a memory of its own)."""
    with SqliteStore(path) as opened:
        yield opened


def _desk(store: SqliteStore) -> PackService:
    return PackService(store.practice(PRACTICE, SYDNEY), FixedClock(NOW))


def _open(desk: PackService, pack_id: str, sessions: int) -> None:
    desk.open_pack("C1", terms=_terms(sessions), pack_id=pack_id)


class _Counting:
    """The statements run on connections opened from now on, while ``on``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[str] = []
        self.on = False
        connect = _Connections._connect

        def traced(connections: _Connections) -> sqlite3.Connection:
            connection = connect(connections)
            connection.set_trace_callback(self._seen)
            return connection

        monkeypatch.setattr(_Connections, "_connect", traced)

    def _seen(self, sql: str) -> None:
        if self.on:
            self.sent.append(" ".join(sql.split()[:3]))


def test_a_usage_on_a_known_pack_reads_nothing(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _Counting(monkeypatch)
    with SqliteStore(path) as store:
        desk = _desk(store)
        _open(desk, "P", 10)
        desk.assign(_appointment("A1", 0), pack_id="P")
        counting.on = True
        assigned = desk.assign(_appointment("A2", 1), pack_id="P")
        assert assigned.label == "Session 2 of 10"
        assert [s for s in counting.sent if s.startswith("SELECT")] == []
        assert counting.sent[0] == "BEGIN IMMEDIATE"
        assert counting.sent[-1] == "COMMIT"
        assert len(counting.sent) == 7, counting.sent  # the pack, entry, usage, counter, event
        counting.sent.clear()
        again = desk.assign(_appointment("A2", 1), pack_id="P")  # a repeat: nothing to commit
        assert again.events == ()
        assert again.label == "Session 2 of 10"
        assert len(counting.sent) == 1, counting.sent  # the repeat's one check of what it read
        assert counting.sent[0].startswith("SELECT 'r',")


def test_a_pack_written_by_another_process_is_decided_again(
    ours: SqliteStore, theirs: SqliteStore
) -> None:
    desk, other = _desk(ours), _desk(theirs)
    _open(desk, "P", 10)
    desk.assign(_appointment("A1", 0), pack_id="P")  # ours knows P at version 2
    other.assign(_appointment("A2", 1), pack_id="P")
    assigned = desk.assign(_appointment("A3", 2), pack_id="P")
    assert assigned.label == "Session 3 of 10"
    repo = ours.practice(PRACTICE)
    assert [u.appointment.id for u in repo.load("P").usages] == ["A1", "A2", "A3"]
    assert replay(repo.ledger("P")) == repo.load("P")
    assert repo.check_snapshots() == []


def test_an_appointment_another_process_put_on_a_pack_is_not_recorded_again(
    ours: SqliteStore, theirs: SqliteStore
) -> None:
    desk, other = _desk(ours), _desk(theirs)
    for pack_id in ("P1", "P2"):
        _open(desk, pack_id, 10)
    other.assign(_appointment("A1", 0), pack_id="P2")
    with pytest.raises(RefusedError) as raised:
        desk.assign(_appointment("A1", 0), pack_id="P1")  # memory: A1 on no pack
    with pytest.raises(RefusedError) as fresh:
        other.assign(_appointment("A1", 0), pack_id="P1")
    assert (raised.value.rule, raised.value.field) == (fresh.value.rule, fresh.value.field)
    assert desk.holder("A1") == "P2"
    assert desk.pack("P1").usages == ()


def test_a_repeat_answered_from_memory_is_checked(ours: SqliteStore, theirs: SqliteStore) -> None:
    desk, other = _desk(ours), _desk(theirs)
    _open(desk, "P", 10)
    desk.assign(_appointment("A1", 0), pack_id="P")  # memory: A1 on P
    other.cancel("A1")
    again = desk.assign(_appointment("A1", 0), pack_id="P")  # no longer a repeat
    assert again.events != ()
    assert desk.holder("A1") == "P"


def test_a_refusal_decided_on_a_stale_state_is_decided_again(
    ours: SqliteStore, theirs: SqliteStore
) -> None:
    desk, other = _desk(ours), _desk(theirs)
    _open(desk, "P", 1)
    desk.assign(_appointment("A1", 0), pack_id="P")  # memory: P used up
    other.adjust("P", 1, "goodwill")
    assigned = desk.assign(_appointment("A2", 1), pack_id="P")
    assert assigned.label == "Session 2 of 2"
    with pytest.raises(RefusedError):  # and now it is used up indeed
        desk.assign(_appointment("A3", 2), pack_id="P")


def test_a_cancel_on_a_pack_moved_meanwhile_follows_the_appointment(
    ours: SqliteStore, theirs: SqliteStore
) -> None:
    desk, other = _desk(ours), _desk(theirs)
    for pack_id in ("P1", "P2"):
        _open(desk, pack_id, 10)
    desk.assign(_appointment("A1", 0), pack_id="P1")  # memory: A1 on P1
    other.move(_appointment("A1", 0), "P2")
    after = desk.cancel("A1")
    assert after.pack_id == "P2"
    assert after.usages == ()
    assert desk.pack("P1").usages == ()
    assert desk.holder("A1") is None


def test_a_write_other_than_the_commit_checks_what_it_read_first(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preference decided on a pack answered from memory: the check comes before the write,
    so a stale answer would stop the write rather than follow it (R17)."""
    counting = _Counting(monkeypatch)
    with SqliteStore(path) as store:
        desk = _desk(store)
        _open(desk, "P", 10)
        counting.on = True
        desk.set_preference("C1", PreferPack("P"))
        assert counting.sent[0].startswith("SELECT 'r',")
        assert "INSERT INTO preferences" in counting.sent
        assert desk.preference("C1") == PreferPack("P")


def test_a_preference_decided_on_a_stale_pack_is_decided_again(
    ours: SqliteStore, theirs: SqliteStore
) -> None:
    """Memory says the pack is shared with C2; another process took C2 off it (R20): the
    check before the write finds the pack moved on, and the decision again refuses (R4)."""
    desk, other = _desk(ours), _desk(theirs)
    desk.open_pack("C1", terms=_terms(10), pack_id="P", shared_with=("C2",))
    assert desk.pack("P").shared_with == ("C2",)  # known
    other.unshare("P", "C2")
    with pytest.raises(RefusedError) as refused:
        desk.set_preference("C2", PreferPack("P"))
    assert refused.value.rule == "R4"
    assert desk.preference("C2") is None


def test_a_conflict_inside_a_hosts_decision_starts_it_again(
    ours: SqliteStore, theirs: SqliteStore
) -> None:
    """A host that wraps service calls in its own ``deciding()``: the service's retry after a
    stale answer reads from the database, inside the same decision."""
    desk, other = _desk(ours), _desk(theirs)
    _open(desk, "P", 5)
    desk.assign(_appointment("A1", 0), pack_id="P")
    other.assign(_appointment("A2", 1), pack_id="P")  # ours remembers P at version 2
    repo = desk.repository
    with repo.deciding():  # type: ignore[attr-defined]
        assigned = desk.assign(_appointment("A3", 2), pack_id="P")
        again = desk.assign(_appointment("A4", 3), pack_id="P")
    assert (assigned.label, again.label) == ("Session 3 of 5", "Session 4 of 5")
    assert ours.practice(PRACTICE).check_snapshots() == []


# A repair keeps each row's version: what a process remembered from before is not decided on.


def _break(path: Path, pack_id: str, adjustment: int) -> None:
    """Hand-edit the pack's stored state (its version stays): ``adjustment`` sessions more."""
    with closing(sqlite3.connect(path, isolation_level=None, timeout=30)) as raw:
        raw.execute("BEGIN IMMEDIATE")  # no commit between the read and the write
        (text,) = raw.execute("SELECT state FROM packs WHERE pack_id = ?", (pack_id,)).fetchone()
        state = json.loads(text)
        state["adjustment_units"] += adjustment
        raw.execute("UPDATE packs SET state = ? WHERE pack_id = ?", (json.dumps(state), pack_id))
        raw.execute("COMMIT")


def _broken_and_remembered(
    ours: SqliteStore, theirs: SqliteStore, path: Path, adjustment: int
) -> PackService:
    """P with two sessions used, broken by ``adjustment``; ours remembers it broken, and
    theirs repairs it."""
    desk, other = _desk(ours), _desk(theirs)
    _open(other, "P", 10)
    other.assign(_appointment("A1", 0), pack_id="P")
    other.assign(_appointment("A2", 1), pack_id="P")
    _break(path, "P", adjustment)
    assert desk.pack("P").remaining == 8 + adjustment  # read, and remembered
    assert theirs.practice(PRACTICE).rebuild_snapshots() == ["P"]
    return desk


def test_a_state_repaired_by_another_process_is_not_written_back(
    ours: SqliteStore, theirs: SqliteStore, path: Path
) -> None:
    desk = _broken_and_remembered(ours, theirs, path, 5)
    assigned = desk.assign(_appointment("A3", 2), pack_id="P")
    assert assigned.label == "Session 3 of 10"
    assert desk.pack("P").remaining == 7
    assert ours.practice(PRACTICE).check_snapshots() == []


def test_a_refusal_decided_on_a_state_repaired_meanwhile_is_decided_again(
    ours: SqliteStore, theirs: SqliteStore, path: Path
) -> None:
    desk = _broken_and_remembered(ours, theirs, path, -8)  # remembered used up
    assigned = desk.assign(_appointment("A3", 2), pack_id="P")
    assert assigned.label == "Session 3 of 10"
    assert ours.practice(PRACTICE).check_snapshots() == []


def test_a_repair_inside_a_hosts_decision_starts_it_again(
    ours: SqliteStore, theirs: SqliteStore, path: Path
) -> None:
    """The state read from the database inside the host's decision, before the repair: the
    commit finds the practice repaired, and the decision starts again knowing it so."""
    desk, other = _desk(ours), _desk(theirs)
    _open(other, "P", 10)
    other.assign(_appointment("A1", 0), pack_id="P")
    _break(path, "P", 5)
    with desk.repository.deciding():  # type: ignore[attr-defined]
        assert desk.pack("P").remaining == 14
        assert theirs.practice(PRACTICE).rebuild_snapshots() == ["P"]
        assigned = desk.assign(_appointment("A2", 1), pack_id="P")
        again = desk.assign(_appointment("A3", 2), pack_id="P")
    assert (assigned.label, again.label) == ("Session 2 of 10", "Session 3 of 10")
    assert ours.practice(PRACTICE).check_snapshots() == []


def test_the_process_that_repairs_forgets_what_it_knew(ours: SqliteStore, path: Path) -> None:
    desk = _desk(ours)
    _open(desk, "P", 10)
    desk.assign(_appointment("A1", 0), pack_id="P")  # remembered, sound
    _break(path, "P", 5)
    assert desk.pack("P").remaining == 14  # read, and remembered broken
    assert ours.practice(PRACTICE).rebuild_snapshots() == ["P"]
    assert desk.assign(_appointment("A2", 1), pack_id="P").label == "Session 2 of 10"
    assert ours.practice(PRACTICE).check_snapshots() == []


def test_a_rebuild_that_finds_nothing_to_repair_keeps_memories(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a rewrite counts the repairs up: a sound rebuild leaves other processes' memories
    valid (no conflict, no reads)."""
    counting = _Counting(monkeypatch)
    with SqliteStore(path) as store, SqliteStore(path) as elsewhere:
        desk = _desk(store)
        _open(desk, "P", 10)
        desk.assign(_appointment("A1", 0), pack_id="P")
        assert elsewhere.practice(PRACTICE).rebuild_snapshots() == []
        counting.on = True
        assert desk.assign(_appointment("A2", 1), pack_id="P").label == "Session 2 of 10"
        assert [s for s in counting.sent if s.startswith("SELECT")] == []
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT repairs FROM practices").fetchall() == [(0,)]


def test_a_state_read_before_the_practice_was_forgotten_is_not_kept(ours: SqliteStore) -> None:
    desk = _desk(ours)
    _open(desk, "P", 10)
    state = desk.repository.load("P")
    known = Known(8)
    token = known.learn(PRACTICE, 0)
    known.unlearn(PRACTICE)  # a repair seen while the state was being read
    known.learn(PRACTICE, 1)
    known.put(PRACTICE, [state], token)
    assert known.state(PRACTICE, state.pack_id) is None
    known.put(PRACTICE, [state], known.token(PRACTICE))
    assert known.state(PRACTICE, state.pack_id) == state
    known.learn(PRACTICE, 2)  # another repair: forgotten
    assert known.state(PRACTICE, state.pack_id) is None


def test_a_batch_decided_before_a_repair_is_decided_again(
    ours: SqliteStore, theirs: SqliteStore, path: Path
) -> None:
    """A batch (the import's, ``assign_many``'s) holds the states it read outside a decision
    until its commit, which checks what they were read at."""
    desk, other = _desk(ours), _desk(theirs)
    _open(other, "P", 10)
    other.assign(_appointment("A1", 0), pack_id="P")
    _break(path, "P", 5)
    batch: Batch[Assignment] = Batch(desk, size=100, seconds=60, live_only=True)
    assert batch.add(lambda on: on.assign(_appointment("A2", 1), pack_id="P")) == []
    assert theirs.practice(PRACTICE).rebuild_snapshots() == ["P"]
    [outcome] = batch.flush()
    assert outcome.value is not None
    assert outcome.value.label == "Session 2 of 10"
    assert ours.practice(PRACTICE).check_snapshots() == []


@pytest.mark.parametrize("seed", range(3))
def test_writers_racing_breakages_and_repairs_leave_the_repair(path: Path, seed: int) -> None:
    """Threads of two processes book on one pack while a third breaks its row and repairs it,
    again and again: after the last repair, nothing broken comes back."""
    chance = random.Random(seed)
    with SqliteStore(path) as ours, SqliteStore(path) as third, SqliteStore(path) as repairing:
        _open(_desk(repairing), "P", 100_000)
        numbers = itertools.count()
        stop = threading.Event()
        booked: list[int] = []
        failed: list[BaseException] = []

        def book(store: SqliteStore) -> None:
            desk = _desk(store)
            while not stop.is_set():
                n = next(numbers)
                try:
                    desk.assign(_appointment(f"A{n}", n % 5000), pack_id="P")
                except ConcurrencyError:  # retries used up against the breakages
                    continue
                except BaseException as error:  # anything else fails the test, below
                    failed.append(error)
                    return
                booked.append(n)
                if n % 3 == 0:
                    desk.pack("P")  # read outside a decision, and remembered

        threads = [threading.Thread(target=book, args=(s,)) for s in (ours, ours, third, third)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(8):
                _break(path, "P", 1)
                time.sleep(chance.random() * 0.02)
                repairing.practice(PRACTICE).rebuild_snapshots()
                time.sleep(chance.random() * 0.02)
            repairing.practice(PRACTICE).rebuild_snapshots()
            time.sleep(0.2)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert failed == []
        assert len(booked) >= 8  # the writers did write between the repairs
        assert repairing.practice(PRACTICE).check_snapshots() == []
