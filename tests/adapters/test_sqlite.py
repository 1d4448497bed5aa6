"""What the SQLite store adds to the contract: its file, schema versions, WAL, the folded
states it keeps beside the ledger, and writers racing or dying in threads and processes.

The race and crash tests run workers in processes started with ``spawn``; the worker functions
live here, so the repository root is put on the path the children inherit.
"""

from __future__ import annotations

import functools
import itertools
import json
import multiprocessing
import random
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionpacks import operations as ops
from sessionpacks.adapters._sql.dialect import SQLITE
from sessionpacks.adapters._sql.rows import Decoded
from sessionpacks.adapters._sql.schema import Statements
from sessionpacks.adapters._sql.sqlite_errors import translate
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.adapters.sqlite import (
    MIGRATIONS,
    SqliteRepository,
    SqliteStore,
    StoreError,
    _Connections,
    statements,
)
from sessionpacks.errors import (
    ConcurrencyError,
    InvalidValueError,
    NotFoundError,
    RefusedError,
)
from sessionpacks.events import PackExhausted, SessionUsed
from sessionpacks.ledger import Used, replay
from sessionpacks.model import (
    Allowance,
    Appointment,
    Money,
    PackTerms,
    PerSession,
    PreferTemplate,
)
from sessionpacks.ports import PackRepository
from sessionpacks.service import PackService
from sessionpacks.testing.contract import _STEPS, _World

ROOT = Path(__file__).resolve().parents[2]
SYDNEY = "Australia/Sydney"
ZONE = ZoneInfo(SYDNEY)
NOW = datetime(2026, 1, 15, 9, tzinfo=ZONE)


def _terms(sessions: int) -> PackTerms:
    return PackTerms(
        name=f"{sessions} x Physio",
        allowance=Allowance.sessions(sessions),
        pricing=PerSession.flat(Money("120.00", "AUD")),
    )


def _appointment(appointment_id: str, hours: int, client: str = "C1") -> Appointment:
    return Appointment(
        id=appointment_id,
        client_id=client,
        service_id="physio",
        start=datetime(2026, 2, 2, 8, tzinfo=ZONE) + timedelta(hours=hours),
        duration=timedelta(minutes=60),
        price=Money("120.00", "AUD"),
    )


def _service(repo: PackRepository, retries: int = 5) -> PackService:
    counter = itertools.count(1)
    return PackService(
        repo, FixedClock(NOW), retries=retries, new_pack_id=lambda: f"pk{next(counter)}"
    )


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "packs.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(path) as opened:
        yield opened


@pytest.fixture
def repo(store: SqliteStore) -> SqliteRepository:
    return store.practice("clinic-1", SYDNEY)


# Opening -------------------------------------------------------------------------------------


def test_a_practice_needs_its_timezone_the_first_time(path: Path) -> None:
    with SqliteStore(path) as store:
        with pytest.raises(NotFoundError) as raised:
            store.practice("clinic-1")
        assert raised.value.field == "practice_id"
        with pytest.raises(InvalidValueError):
            store.practice("clinic-1", "Mars/Olympus")
        store.practice("clinic-1", SYDNEY)
        assert store.practice("clinic-1", "Europe/London").practice.timezone == SYDNEY
    with SqliteStore(path) as store:
        assert store.practice("clinic-1").practice.timezone == SYDNEY


@pytest.mark.parametrize("bad", ["", ":memory:", "file:x?mode=memory", b"packs.db", 3])
def test_a_store_needs_a_file_path(bad: str) -> None:
    with pytest.raises(InvalidValueError):
        SqliteStore(bad)


@pytest.mark.parametrize("bad", [-1, "5", True])
def test_busy_timeout_is_a_number_of_seconds(path: Path, bad: Any) -> None:
    with pytest.raises(InvalidValueError):
        SqliteStore(path, busy_timeout=bad)


@pytest.mark.parametrize("bad", [-1, 2.0, None])
def test_state_cache_is_a_count(path: Path, bad: Any) -> None:
    with pytest.raises(InvalidValueError):
        SqliteStore(path, state_cache=bad)


def test_a_file_that_is_not_a_database_is_refused(path: Path) -> None:
    path.write_bytes(b"not a database at all " * 100)
    with pytest.raises(StoreError) as raised:
        SqliteStore(path)
    assert raised.value.field == "path"


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SqliteStore(tmp_path / "missing" / "packs.db")


def test_a_closed_store_refuses_to_work(path: Path) -> None:
    with SqliteStore(path) as store:
        repo = store.practice("clinic-1", SYDNEY)
    with pytest.raises(StoreError) as raised:
        repo.load("p1")
    assert "closed" in str(raised.value)
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(errors, lambda: repo.templates()))
    thread.start()
    thread.join()
    assert isinstance(errors[0], StoreError)


def _capture(errors: list[BaseException], call: Callable[[], object]) -> None:
    try:
        call()
    except BaseException as error:  # handed back to the test's thread
        errors.append(error)


def test_the_file_is_in_wal_mode(path: Path, store: SqliteStore) -> None:
    assert store.path == str(path)
    assert _raw(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_arguments_are_refused_before_any_sql(repo: SqliteRepository) -> None:
    with pytest.raises(InvalidValueError):
        repo.expiry_candidates(NOW)  # a datetime is not a date here
    with pytest.raises(InvalidValueError):
        repo.save_template("t1")  # type: ignore[arg-type]


def _driver_error(kind: type[sqlite3.Error], name: str, code: int) -> sqlite3.Error:
    error = kind(name)
    error.sqlite_errorname = name
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_driver_error(sqlite3.IntegrityError, "SQLITE_CONSTRAINT_PRIMARYKEY", 1555), "conflict"),
        (_driver_error(sqlite3.IntegrityError, "SQLITE_CONSTRAINT_UNIQUE", 2067), "conflict"),
        (_driver_error(sqlite3.IntegrityError, "SQLITE_CONSTRAINT_CHECK", 275), "store"),
        # Busy past busy_timeout is not retried as a conflict: one command waits that long once.
        (_driver_error(sqlite3.OperationalError, "SQLITE_BUSY", 5), "store"),
        (_driver_error(sqlite3.OperationalError, "SQLITE_LOCKED_SHAREDCACHE", 262), "store"),
        (_driver_error(sqlite3.OperationalError, "SQLITE_IOERR_FSYNC", 1034), "store"),
        (sqlite3.ProgrammingError("Cannot operate on a closed database."), "store"),
    ],
)
def test_driver_errors_become_the_librarys(error: sqlite3.Error, expected: str) -> None:
    translated = translate(error, "pack_id", "p1")
    kind = ConcurrencyError if expected == "conflict" else StoreError
    assert type(translated) is kind
    assert (translated.field, translated.value) == ("pack_id", "p1")


def test_a_decoded_state_is_kept_by_its_text(repo: SqliteRepository) -> None:
    service = _service(repo)
    older = service.open_pack("C1", terms=_terms(5))
    newer = service.assign(_appointment("a1", 0), pack_id="pk1").pack
    assert newer is not None
    states = Decoded(10)
    states.remember("the newer text", newer)
    states.remember("the older text", older)
    assert states.state("the newer text") is newer  # not decoded: the text is the key
    assert states.state("the older text") is older
    small = Decoded(1)
    small.remember("first", older)
    small.remember("second", newer)
    with pytest.raises(json.JSONDecodeError):  # "first" fell out: decoded, and it is no JSON
        small.state("first")


# Schema versions -----------------------------------------------------------------------------


def _versions(path: Path) -> list[int]:
    rows = _raw(path).execute("SELECT version FROM schema_version ORDER BY version")
    return [row[0] for row in rows]


_NOTES = statements(
    "CREATE TABLE notes (practice_id TEXT NOT NULL, note TEXT NOT NULL)",
    "ALTER TABLE packs ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0",
)


def test_a_new_file_is_at_the_latest_version(path: Path, repo: SqliteRepository) -> None:
    assert _versions(path) == list(range(1, len(MIGRATIONS) + 1))


def test_a_file_is_upgraded_by_a_later_migration(path: Path) -> None:
    with SqliteStore(path) as store:
        _service(store.practice("clinic-1", SYDNEY)).open_pack("C1", terms=_terms(3))
    later = (*MIGRATIONS, _NOTES)
    for _ in range(2):  # the second open finds nothing to do (the ALTER would fail twice)
        with SqliteStore(path, migrations=later) as store:
            assert store.practice("clinic-1").client_packs("C1")[0].pack_id == "pk1"
    assert _versions(path) == list(range(1, len(later) + 1))
    columns = [row[1] for row in _raw(path).execute("PRAGMA table_info(packs)")]
    assert "flagged" in columns


def test_a_file_from_a_newer_release_is_refused(path: Path) -> None:
    SqliteStore(path, migrations=(*MIGRATIONS, _NOTES)).close()
    with pytest.raises(StoreError) as raised:
        SqliteStore(path)
    assert raised.value.field == "schema_version"
    assert raised.value.value == len(MIGRATIONS) + 1
    assert "newer release" in str(raised.value)


def test_a_failing_migration_changes_nothing(path: Path) -> None:
    SqliteStore(path).close()
    broken = statements("CREATE TABLE half (x)", "THIS IS NOT SQL")
    with pytest.raises(StoreError) as raised:
        SqliteStore(path, migrations=(*MIGRATIONS, broken))
    assert raised.value.field == "schema_version"
    assert raised.value.value == len(MIGRATIONS) + 1
    assert _versions(path) == list(range(1, len(MIGRATIONS) + 1))
    tables = {row[0] for row in _raw(path).execute("SELECT name FROM sqlite_master")}
    assert "half" not in tables


def test_openers_racing_on_a_new_file_migrate_it_once(path: Path) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        with SqliteStore(path) as store:
            store.practice("clinic-1", SYDNEY)

    threads = [threading.Thread(target=_capture, args=(errors, open_it)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _versions(path) == list(range(1, len(MIGRATIONS) + 1))


# Writes: constraints, locks, translation -------------------------------------------------------


def test_a_writer_holding_the_lock_past_the_busy_timeout_is_a_store_error(path: Path) -> None:
    with SqliteStore(path, busy_timeout=0.05) as store:
        repo = store.practice("clinic-1", SYDNEY)
        opened = ops.open_pack("p1", "C1", _terms(3), repo.practice, NOW)
        other = _raw(path)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError) as raised:
            repo.commit([opened])
        assert "busy" in str(raised.value)
        assert repo.client_packs("C1") == []  # readers are not blocked by the writer (WAL)
        other.execute("ROLLBACK")
        repo.commit([opened])
        assert repo.load("p1") == opened.after


def test_the_ledger_key_refuses_a_stale_write_the_version_let_through(
    path: Path, repo: SqliteRepository
) -> None:
    state = _service(repo).open_pack("C1", terms=_terms(3))
    first = ops.use(state, _appointment("a1", 0), NOW)
    repo.commit([first])
    with _raw(path) as raw:  # as if the version column had been left behind
        raw.execute("UPDATE packs SET version = 1")
    before = repo.ledger("pk1"), repo.events_since(0)
    with pytest.raises(ConcurrencyError) as raised:
        repo.commit([ops.use(state, _appointment("a2", 1), NOW)])
    assert raised.value.field == "pack_id"
    assert (repo.ledger("pk1"), repo.events_since(0)) == before
    assert repo.pack_of_appointment("a2") is None


def test_an_empty_commit_does_not_touch_the_file(path: Path, repo: SqliteRepository) -> None:
    service = _service(repo)
    service.open_pack("C1", terms=_terms(3))
    service.assign(_appointment("a1", 0), pack_id="pk1")
    watcher = _raw(path)  # data_version moves when another connection commits to the file
    seen = watcher.execute("PRAGMA data_version").fetchone()[0]
    service.assign(_appointment("a1", 0), pack_id="pk1")  # E12: the same usage
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == seen
    service.assign(_appointment("a2", 1), pack_id="pk1")
    assert watcher.execute("PRAGMA data_version").fetchone()[0] != seen


# Folded states beside the ledger ---------------------------------------------------------------


@pytest.mark.parametrize("cache", [0, 1, 4096])
def test_a_store_sees_what_another_store_wrote(path: Path, cache: int) -> None:
    with SqliteStore(path, state_cache=cache) as mine, SqliteStore(path) as theirs:
        repo, other = mine.practice("clinic-1", SYDNEY), theirs.practice("clinic-1")
        service = _service(repo)
        for _ in range(2):
            service.open_pack("C1", terms=_terms(5))
        assert repo.load("pk1").version == repo.load("pk2").version == 1
        _service(other).assign(_appointment("a1", 0), pack_id="pk1")
        assert repo.load("pk1") == other.load("pk1")
        assert repo.load("pk1").version == 2
        assert [p.version for p in repo.client_packs("C1")] == [2, 1]
        service.assign(_appointment("a2", 1), pack_id="pk1")  # decided on the state it read
        assert other.load("pk1").version == repo.load("pk1").version == 3


@settings(
    settings(),  # the active profile, with a quarter of its runs
    max_examples=max(5, settings().max_examples // 4),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_STEPS, min_size=5, max_size=30))
def test_snapshots_are_the_replay_of_the_ledger(
    store: SqliteStore, steps: list[tuple[Any, ...]]
) -> None:
    world = _World(store.practice(f"random-{next(_practice_ids)}", SYDNEY))
    for step in steps:
        world.run(step)
    repo = world.repo
    assert isinstance(repo, SqliteRepository)
    assert repo.check_snapshots() == []
    for pack_id in world.pack_ids():
        assert repo.load(pack_id) == replay(repo.ledger(pack_id))
    assert repo.rebuild_snapshots() == []


_practice_ids = itertools.count(1)


def test_a_usage_in_the_hour_a_zone_repeats_is_sound(repo: SqliteRepository) -> None:
    """The state the store remembers from its commit holds the caller's ZoneInfo datetimes and
    the replay fixed offsets; inside the hour DST's end repeats, Python finds no two such
    datetimes equal (PEP 495), and check_snapshots must not take that for a difference."""
    service = _service(repo)
    service.open_pack("C1", terms=_terms(5))
    repeated = datetime(2026, 4, 5, 2, 30, tzinfo=ZONE)  # 02:00-03:00 happens twice
    assert repeated != repeated.astimezone(UTC)  # the comparison that would fail
    appointment = attrs.evolve(_appointment("a1", 0), start=repeated)
    service.assign(appointment, pack_id="pk1")
    assert repo.check_snapshots() == []


def test_a_commit_sets_only_the_columns_it_changes(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite rewrites every index on a column an UPDATE sets, changed or not: a usage leaves
    the client, the template, the dates and the other columns it does not change unset."""
    updates: list[set[str]] = []
    connect = _Connections._connect

    def traced(self: _Connections) -> sqlite3.Connection:
        connection = connect(self)

        def seen(sql: str) -> None:
            if sql.lstrip().startswith("UPDATE packs SET"):
                head = sql.split("terms = coalesce")[0]
                updates.append(set(re.findall(r"(?:SET|,)\s*(\w+) = ", head)))

        connection.set_trace_callback(seen)
        return connection

    monkeypatch.setattr(_Connections, "_connect", traced)
    with SqliteStore(path) as store:
        repo = store.practice("clinic-1", SYDNEY)
        service = _service(repo)
        service.open_pack("C1", terms=_terms(2), template_id=None)
        service.assign(_appointment("a1", 0), pack_id="pk1")
        service.assign(_appointment("a2", 1), pack_id="pk1")  # the last session: used up
        service.cancel("a2")  # a session back: open again
        assert repo.check_snapshots() == []
    first, used_up, back = updates
    assert first == {"version", "state", "remaining_units"}
    assert used_up == {"version", "state", "remaining_units", "lasting_status", "open_until"}
    assert back == used_up


def _three_packs(repo: SqliteRepository) -> PackService:
    service = _service(repo)
    for client in ("C1", "C1", "C2"):
        service.open_pack(client, terms=_terms(5))
    service.assign(_appointment("a1", 0), pack_id="pk1")
    service.assign(_appointment("a2", 1), pack_id="pk1")
    service.assign(_appointment("b1", 2), pack_id="pk2")
    return service


def test_a_stale_snapshot_is_found_and_rebuilt(path: Path, repo: SqliteRepository) -> None:
    _three_packs(repo)
    other = repo.ledger("pk1")
    with _raw(path) as raw:
        old = raw.execute("SELECT state FROM packs WHERE pack_id = 'pk3'").fetchone()[0]
        raw.execute("UPDATE packs SET state = ? WHERE pack_id = 'pk1'", (old,))
    assert repo.check_snapshots() == ["pk1"]
    assert repo.rebuild_snapshots() == ["pk1"]
    assert repo.check_snapshots() == []
    assert repo.load("pk1") == replay(other)


def test_lost_active_usages_are_found_and_rebuilt(path: Path, repo: SqliteRepository) -> None:
    _three_packs(repo)
    with _raw(path) as raw:
        raw.execute("DELETE FROM active_usages WHERE appointment_id = 'a2'")
        raw.execute("UPDATE active_usages SET pack_id = 'pk3' WHERE appointment_id = 'b1'")
    assert repo.check_snapshots() == ["pk1", "pk2", "pk3"]
    assert repo.rebuild_snapshots() == ["pk1", "pk2", "pk3"]
    assert repo.pack_of_appointment("a2") == "pk1"
    assert repo.pack_of_appointment("b1") == "pk2"
    assert repo.check_snapshots() == []


def test_lost_and_stray_shares_are_found_and_rebuilt(path: Path, repo: SqliteRepository) -> None:
    """R20: the index of shared packs is derived from the ledgers like the rest."""
    service = _three_packs(repo)
    service.share("pk1", "C7")
    service.share("pk2", "C8")
    with _raw(path) as raw:
        raw.execute("DELETE FROM shared_packs WHERE client_id = 'C7'")
        raw.execute(
            "INSERT INTO shared_packs (practice_id, client_id, pack_id) VALUES (?, 'C9', 'pk3')",
            ("clinic-1",),
        )
    assert repo.client_packs("C7") == []
    assert repo.check_snapshots() == ["pk1", "pk3"]
    assert repo.rebuild_snapshots() == ["pk1", "pk3"]
    assert [p.pack_id for p in repo.client_packs("C7")] == ["pk1"]
    assert [p.pack_id for p in repo.client_packs("C8")] == ["pk2"]
    assert repo.client_packs("C9") == []
    assert repo.check_snapshots() == []


def test_missing_and_orphan_snapshots_are_rebuilt(path: Path, store: SqliteStore) -> None:
    repo = store.practice("clinic-1", SYDNEY)
    elsewhere = store.practice("clinic-2", SYDNEY)
    _three_packs(repo)
    _three_packs(elsewhere)
    with _raw(path) as raw:
        raw.execute("DELETE FROM packs WHERE practice_id = 'clinic-1' AND pack_id = 'pk2'")
        raw.execute(
            """INSERT INTO packs (practice_id, pack_id, client_id, version, state, ended,
                   remaining_units)
               SELECT practice_id, 'ghost', client_id, version, state, ended, remaining_units
               FROM packs WHERE practice_id = 'clinic-1' AND pack_id = 'pk3'"""
        )
    assert repo.check_snapshots() == ["ghost", "pk2"]
    assert elsewhere.check_snapshots() == []
    assert repo.rebuild_snapshots() == ["ghost", "pk2"]
    assert repo.load("pk2") == replay(repo.ledger("pk2"))
    with pytest.raises(NotFoundError):
        repo.load("ghost")
    assert [p.pack_id for p in repo.client_packs("C1")] == ["pk1", "pk2"]
    assert elsewhere.check_snapshots() == repo.check_snapshots() == []


# Races: threads and processes sharing one file -------------------------------------------------

PACKS = ("pk1", "pk2", "pk3")
ALLOWANCE, USED_BEFORE, TRIES = 5, 2, 2


def _prepare_race(path: Path) -> None:
    """Three packs of five sessions with two used each: three last sessions per pack."""
    with SqliteStore(path) as store:
        service = _service(store.practice("race", SYDNEY))
        for _ in PACKS:
            service.open_pack("C1", terms=_terms(ALLOWANCE))
        for n, pack_id in enumerate(PACKS * USED_BEFORE):
            service.assign(_appointment(f"before-{n}", n), pack_id=pack_id)


def _race(path: str, worker: int, store: SqliteStore | None = None) -> list[tuple[str, str, str]]:
    """Worker ``worker`` tries ``TRIES`` appointments on each pack; what became of each."""
    own = store is None
    store = store or SqliteStore(path, busy_timeout=30)
    try:
        service = PackService(store.practice("race"), FixedClock(NOW), retries=1000)
        outcomes = []
        for n, pack_id in enumerate(PACKS * TRIES):
            appointment = _appointment(f"w{worker}-{n}", 100 + n)
            try:
                service.assign(appointment, pack_id=pack_id)
                outcomes.append((appointment.id, pack_id, "used"))
            except RefusedError as refused:
                outcomes.append((appointment.id, pack_id, refused.rule or "?"))
        return outcomes
    finally:
        if own:
            store.close()


def _race_in_process(path: str, worker: int, barrier: Any, results: Any) -> None:
    barrier.wait()
    results.put(_race(path, worker))


def _check_race(path: Path, outcomes: list[tuple[str, str, str]], workers: int) -> None:
    assert len(outcomes) == workers * TRIES * len(PACKS)
    used = [(a, p) for a, p, what in outcomes if what == "used"]
    assert {what for *_, what in outcomes} <= {"used", "R3"}
    assert Counter(p for _, p in used) == dict.fromkeys(PACKS, ALLOWANCE - USED_BEFORE)
    with SqliteStore(path) as store:
        repo = store.practice("race")
        assert repo.check_snapshots() == []
        events = repo.events_since(0)
        assert [r.position for r in events] == list(range(1, len(events) + 1))
        assert len({r.event.event_id for r in events}) == len(events)
        sessions = [
            (r.event.appointment_id, r.event.pack_id)
            for r in events
            if isinstance(r.event, SessionUsed) and r.event.appointment_id[0] == "w"
        ]
        assert sorted(sessions) == sorted(used)
        exhausted = [r.event.pack_id for r in events if isinstance(r.event, PackExhausted)]
        assert sorted(exhausted) == list(PACKS)
        for pack_id in PACKS:
            state = repo.load(pack_id)
            assert state.remaining_units == 0
            assert len(state.usages) == ALLOWANCE
            assert state == replay(repo.ledger(pack_id))
        for appointment_id, pack_id in used:
            assert repo.pack_of_appointment(appointment_id) == pack_id


def test_threads_race_for_the_last_sessions(path: Path) -> None:
    _prepare_race(path)
    workers = 6
    barrier = threading.Barrier(workers)
    outcomes: list[tuple[str, str, str]] = []
    errors: list[BaseException] = []
    with SqliteStore(path) as shared:

        def run(worker: int) -> None:
            barrier.wait()
            # Half the threads share one store (a connection each), half open their own.
            outcomes.extend(_race(str(path), worker, shared if worker % 2 else None))

        threads = [
            threading.Thread(target=_capture, args=(errors, lambda w=w: run(w)))
            for w in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    _check_race(path, outcomes, workers)


def test_threads_race_to_put_one_appointment_on_two_packs(path: Path) -> None:
    with SqliteStore(path) as store:
        repo = store.practice("clinic-1", SYDNEY)
        service = _service(repo)
        service.open_pack("C1", terms=_terms(50))
        service.open_pack("C1", terms=_terms(50))
        appointments = [_appointment(f"a{n}", n) for n in range(15)]
        barrier = threading.Barrier(4)
        outcomes: list[tuple[str, str]] = []
        refusals: list[str | None] = []
        errors: list[BaseException] = []

        def run(worker: int) -> None:
            mine = PackService(repo, FixedClock(NOW), retries=1000)
            barrier.wait()
            for appointment in appointments:
                try:
                    mine.assign(appointment, pack_id=f"pk{worker % 2 + 1}")
                    outcomes.append((appointment.id, f"pk{worker % 2 + 1}"))
                except RefusedError as refused:
                    refusals.append(refused.rule)

        threads = [
            threading.Thread(target=_capture, args=(errors, lambda w=w: run(w))) for w in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert set(refusals) <= {"R6"}
        for appointment in appointments:
            holders = {p for a, p in outcomes if a == appointment.id}
            assert len(holders) == 1
            assert repo.pack_of_appointment(appointment.id) in holders
            entries = [
                e
                for p in ("pk1", "pk2")
                for e in repo.ledger(p)
                if isinstance(e, Used) and e.appointment.id == appointment.id
            ]
            assert len(entries) == 1
        assert repo.check_snapshots() == []


def _use_in_child(repo: SqliteRepository, parent: tuple[int, int], answers: Any) -> None:
    known = repo._connections.known  # a memory of its own, before anything is read
    _service(repo).assign(_appointment("a-child", 5), pack_id="pk1")
    answers.put(id(repo._connections.get()) != parent[0] and id(known) != parent[1])
    answers.put(known.state("clinic-1", "pk1") is not None)


def test_a_forked_child_opens_its_own_connection_and_memory(repo: SqliteRepository) -> None:
    service = _service(repo)
    service.open_pack("C1", terms=_terms(5))
    assert repo._connections.known.state("clinic-1", "pk1") is not None
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    parent = (id(repo._connections.get()), id(repo._connections.known))
    child = context.Process(target=_use_in_child, args=(repo, parent, answers))
    child.start()
    assert answers.get(timeout=60) is True
    assert answers.get(timeout=60) is True  # the child remembers what it wrote
    child.join(timeout=60)
    assert child.exitcode == 0
    assert repo.pack_of_appointment("a-child") == "pk1"
    service.assign(_appointment("a-parent", 6), pack_id="pk1")
    assert repo.load("pk1").version == 3


def _spawn() -> Any:
    return multiprocessing.get_context("spawn")


@pytest.mark.slow
def test_processes_race_for_the_last_sessions(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # the children import this module
    _prepare_race(path)
    context, workers = _spawn(), 3
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=_race_in_process, args=(str(path), w, barrier, results))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    outcomes = [o for _ in processes for o in results.get(timeout=60)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    _check_race(path, outcomes, workers)


# Crash safety: a writer killed mid-stream --------------------------------------------------


def _crash_service(repo: PackRepository) -> PackService:
    service = _service(repo)
    service.add_template("t3", _terms(3))
    for client in ("C1", "C2", "C3"):
        service.set_preference(client, PreferTemplate("t3"))
    return service


def _commands(service: PackService) -> Iterator[Callable[[], object]]:
    """An endless, deterministic stream of commands, each writing something."""
    clock = service.clock
    assert isinstance(clock, FixedClock)
    for n in itertools.count():
        clock.advance(timedelta(minutes=1))
        if n % 4 == 3:
            yield functools.partial(service.cancel, f"a{n - 2}")
        else:
            appointment = _appointment(f"a{n}", 24 * 30 + n, f"C{n % 3 + 1}")
            yield functools.partial(service.book, appointment)


def _crash_writer(path: str, practice_id: str, progress: Any) -> None:
    with SqliteStore(path) as store:
        service = _crash_service(store.practice(practice_id, SYDNEY))
        for done, command in enumerate(_commands(service), start=1):
            command()
            progress.value = done


# Seeded: a failing run kills the writer at the same moments when run again.
_KILL_DELAYS = random.Random(20260301)


def _killed_writer(path: Path, practice_id: str) -> int:
    """Start a writer, kill it (SIGKILL) at a random moment mid-stream; commands it reported."""
    context = _spawn()
    progress = context.Value("i", 0)
    process = context.Process(target=_crash_writer, args=(str(path), practice_id, progress))
    process.start()
    deadline = time.monotonic() + 60
    while progress.value < 30 and process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(_KILL_DELAYS.uniform(0, 0.05))
    process.kill()
    process.join(timeout=30)
    assert process.exitcode == -9
    return int(progress.value)


def _check_whole(repo: SqliteRepository, reported: int) -> None:
    """The file holds exactly the first k commands, k = reported or one more (killed after
    its commit but before it said so), each whole."""
    assert repo.check_snapshots() == []
    stored = repo.events_since(0)
    assert [r.position for r in stored] == list(range(1, len(stored) + 1))
    reference = InMemoryStore().practice(repo.practice.id, SYDNEY)
    commands = _commands(_crash_service(reference))
    for _ in range(reported):
        next(commands)()
    if len(reference.events_since(0)) < len(stored):
        next(commands)()
    assert reference.events_since(0) == stored
    packs = [p for c in ("C1", "C2", "C3") for p in reference.client_packs(c)]
    assert [p for c in ("C1", "C2", "C3") for p in repo.client_packs(c)] == packs
    for pack in packs:
        assert repo.ledger(pack.pack_id) == reference.ledger(pack.pack_id)
    for recorded in stored:  # every event's entry is there
        pack_id, _, rest = recorded.event.event_id.rpartition("#")
        assert len(repo.ledger(pack_id)) >= int(rest.split(".")[0])


@pytest.mark.slow
def test_a_killed_writer_leaves_only_whole_commands(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # the child imports this module
    SqliteStore(path).close()
    rounds = {"crash-1": _killed_writer(path, "crash-1")}
    rounds["crash-2"] = _killed_writer(path, "crash-2")  # on the file the first one left
    with _raw(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with SqliteStore(path) as store:
        for practice_id, reported in rounds.items():
            assert reported >= 30
            _check_whole(store.practice(practice_id), reported)


def test_the_crash_stream_is_deterministic() -> None:
    """The crash test compares the file with a replay: the stream must replay identically."""
    first = InMemoryStore().practice("x", SYDNEY)
    second = InMemoryStore().practice("x", SYDNEY)
    for repo in (first, second):
        for command in itertools.islice(_commands(_crash_service(repo)), 40):
            command()
    assert first.events_since(0) == second.events_since(0)
    assert len(first.events_since(0)) >= 40


def test_a_commit_that_writes_nothing_takes_no_write_lock(path: Path) -> None:
    with SqliteStore(path, busy_timeout=0.05) as store:
        repo = store.practice("clinic-1", SYDNEY)
        service = _service(repo)
        service.open_pack("C1", terms=_terms(3))
        appointment = _appointment("a1", 0)
        service.assign(appointment, pack_id="pk1")
        other = _raw(path)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the file
        try:
            assert repo.commit([]) == ()
            assert service.assign(appointment, pack_id="pk1").events == ()  # R6: a repeat
            assert service.book(appointment).events == ()
        finally:
            other.execute("ROLLBACK")


def test_a_clients_usable_packs_are_read_without_visiting_the_used_up_ones(path: Path) -> None:
    """Schema version 8: the partial index of live packs, so a booking's read does not grow
    with the packs a client has used up (the import's fall with file size)."""

    SqliteStore(path).close()
    with _raw(path) as raw:
        live = Statements(SQLITE).live_client_packs
        plan = [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {live}", ("a",) * 4)]
    assert any("USING INDEX packs_live_by_client" in step for step in plan), plan
