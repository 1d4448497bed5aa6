"""What the PostgreSQL store guarantees beyond the contract: races between threads and between
processes, the order of the event stream, schema migrations, and the translation of driver
errors. Each test has a schema of its own (``tests.pg_support``)."""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import attrs
import psycopg
import pytest

from sessionpacks import operations as ops
from sessionpacks.adapters._sql.dialect import postgres
from sessionpacks.adapters._sql.postgres_errors import translated as _translated
from sessionpacks.adapters._sql.schema import Statements
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.postgres import (
    _COMMIT_FUNCTION,
    MIGRATIONS,
    PostgresRepository,
    PostgresStore,
    StoreError,
    _commit_call,
    statements,
)
from sessionpacks.errors import ConcurrencyError, InvalidValueError, NotFoundError
from sessionpacks.events import PackExhausted, RecordedEvent, SessionUsed
from sessionpacks.ledger import PackState, replay
from sessionpacks.model import Allowance, ExpiresOn, Money, PackTerms, PerSession
from sessionpacks.serialization import dumps_state
from sessionpacks.service import PackService

from ..pg_support import (
    NOW,
    Job,
    Outcome,
    appointment,
    book_all,
    pg_dsn,
    pg_schema,
    race_process,
    root_on_path,
)

pytestmark = pytest.mark.postgres

__all__ = ["pg_dsn", "pg_schema"]

PRACTICE = "practice-a"
SYDNEY = "Australia/Sydney"


@pytest.fixture
def store(pg_dsn: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_dsn, schema=pg_schema, max_size=6) as opened:
        yield opened


@pytest.fixture
def repo(store: PostgresStore) -> PostgresRepository:
    return store.practice(PRACTICE, SYDNEY)


def _terms(sessions: int) -> PackTerms:
    return PackTerms(
        name=f"{sessions} x Physio",
        allowance=Allowance.sessions(sessions),
        pricing=PerSession.flat(Money("120.00", "AUD")),
    )


def _open(repo: PostgresRepository, pack_id: str, sessions: int, client: str = "C1") -> PackState:
    change = ops.open_pack(pack_id, client, _terms(sessions), repo.practice, NOW)
    repo.commit([change])
    return change.after


def _raw(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


# Races through PackService: the last sessions of the same packs --------------------------

PACKS = ("P1", "P2")
ALLOWANCE = 10
PRE_USED = 7  # three sessions left on each pack when the race starts
# A writer loses a race only to a commit on the same pack, and a pack takes at most ALLOWANCE
# commits of usages: with this many retries no writer gives up for contention alone.
RETRIES = ALLOWANCE + 1


def _prepare_race(repo: PostgresRepository) -> None:
    service = PackService(repo, FixedClock(NOW))
    for pack_id in PACKS:
        _open(repo, pack_id, ALLOWANCE)
        book_all(service, [(f"pre-{pack_id}-{n}", pack_id) for n in range(PRE_USED)])


def _jobs(worker: int, per_worker: int) -> list[Job]:
    """Each worker's own appointments on alternating packs, then one appointment that every
    worker books, each on the pack it would use next (R6: at most one wins it)."""
    jobs = [(f"w{worker}-{n}", PACKS[(worker + n) % 2]) for n in range(per_worker)]
    return [*jobs, ("shared", PACKS[worker % 2])]


def _check_race(repo: PostgresRepository, outcomes: list[Outcome]) -> None:
    used = [o for o in outcomes if o[2] == "used"]
    per_pack = Counter(pack_id for _, pack_id, _ in used)
    assert per_pack == dict.fromkeys(PACKS, ALLOWANCE - PRE_USED), outcomes
    assert sum(1 for o in used if o[0] == "shared") <= 1
    assert all(o[0] == "shared" for o in outcomes if o[2] == "already"), outcomes
    refusals = Counter(o[2] for o in outcomes if o[2] not in ("used", "already"))
    assert set(refusals) <= {"RefusedError R3", "RefusedError R6"}, refusals
    for pack_id in PACKS:
        state, ledger = repo.load(pack_id), repo.ledger(pack_id)
        assert replay(ledger) == state
        assert state.remaining_units == 0
        assert len(state.usages) == ALLOWANCE
    assert repo.check_snapshots() == []
    for appointment_id, pack_id, outcome in outcomes:
        if appointment_id != "shared":
            expected = pack_id if outcome == "used" else None
            assert repo.pack_of_appointment(appointment_id) == expected
    events = repo.events_since(0)
    assert [r.position for r in events] == list(range(1, len(events) + 1))
    assert len({r.event.event_id for r in events}) == len(events)
    uses = Counter(r.event.appointment_id for r in events if isinstance(r.event, SessionUsed))
    everyone = {a for p in PACKS for a in (u.appointment.id for u in repo.load(p).usages)}
    assert uses == Counter(everyone)  # every usage has its event, exactly once
    exhausted = [r.event.pack_id for r in events if isinstance(r.event, PackExhausted)]
    assert sorted(exhausted) == sorted(PACKS)


def test_threads_racing_for_the_last_sessions(store: PostgresStore) -> None:
    repo = store.practice(PRACTICE, SYDNEY)
    _prepare_race(repo)
    workers, outcomes, errors = 5, list[Outcome](), list[BaseException]()
    barrier = threading.Barrier(workers)

    def work(worker: int) -> None:
        try:
            service = PackService(store.practice(PRACTICE), FixedClock(NOW), retries=RETRIES)
            barrier.wait()
            outcomes.extend(book_all(service, _jobs(worker, 4)))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(outcomes) == workers * 5
    _check_race(repo, outcomes)


@pytest.mark.slow
def test_processes_racing_for_the_last_sessions(
    store: PostgresStore, pg_dsn: str, pg_schema: str
) -> None:
    repo = store.practice(PRACTICE, SYDNEY)
    _prepare_race(repo)
    workers = 3
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(
            target=race_process,
            args=(pg_dsn, pg_schema, PRACTICE, _jobs(w, 4), RETRIES, barrier, results),
        )
        for w in range(workers)
    ]
    with root_on_path():
        for process in processes:
            process.start()
    try:
        # A generous bound so a broken worker fails the test instead of hanging it.
        outcomes = [o for _ in processes for o in results.get(timeout=300)]
    finally:
        for process in processes:
            process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * workers
    assert len(outcomes) == workers * 5
    _check_race(repo, outcomes)


def test_one_session_left_two_writers_one_wins(store: PostgresStore) -> None:
    """E13 with two uncoordinated commits decided on the same version."""
    repo = store.practice(PRACTICE, SYDNEY)
    state = _open(repo, "P", 1)
    first = ops.use(state, appointment("A1"), NOW)
    second = ops.use(state, appointment("A2"), NOW)
    repo.commit([first])
    with pytest.raises(ConcurrencyError) as raised:
        repo.commit([second])
    assert (raised.value.field, raised.value.value) == ("pack_id", "P")
    assert repo.load("P") == first.after
    assert repo.pack_of_appointment("A2") is None


# The event stream: positions are gap-free and commit in order ----------------------------


def test_a_reader_following_positions_sees_every_event_once_in_order(
    store: PostgresStore,
) -> None:
    writers, rounds = 4, 25
    store.practice(PRACTICE, SYDNEY)
    committed: list[RecordedEvent] = []
    seen: list[RecordedEvent] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def write(writer: int) -> None:
        try:
            mine = store.practice(PRACTICE)
            for n in range(rounds):
                # One event, then two (SessionUsed and PackExhausted) in one commit.
                opened = ops.open_pack(f"w{writer}-{n}", "C1", _terms(1), mine.practice, NOW)
                committed.extend(mine.commit([opened]))
                used = ops.use(opened.after, appointment(f"a{writer}-{n}"), NOW)
                committed.extend(mine.commit([used]))
        except BaseException as error:
            errors.append(error)

    def read() -> None:
        try:
            reader, position = store.practice(PRACTICE), 0
            while True:
                finished = done.is_set()
                batch = reader.events_since(position, limit=5)
                for recorded in batch:
                    if recorded.position != position + 1:
                        raise AssertionError(f"after {position} came {recorded.position}")
                    position = recorded.position
                    seen.append(recorded)
                if finished and not batch:
                    return
        except BaseException as error:
            errors.append(error)

    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert errors == []
    total = writers * rounds * 3
    assert [r.position for r in seen] == list(range(1, total + 1))
    assert sorted(committed, key=lambda r: r.position) == seen
    assert len({r.event.event_id for r in seen}) == total


def _wait_for_lock_wait(dsn: str, schema: str) -> None:
    """Until a commit on ``schema`` waits on a lock (bounded)."""
    with _raw(dsn) as watcher:
        for _ in range(2000):
            row = watcher.execute(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE wait_event_type = 'Lock' AND position(%s in query) > 0""",
                (f"{schema}.commit_changes",),
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.01)
    raise AssertionError("no commit ever waited for the counter row")


def test_positions_wait_for_an_uncommitted_writer_and_leave_no_gap(
    store: PostgresStore, pg_dsn: str, pg_schema: str
) -> None:
    repo = store.practice(PRACTICE, SYDNEY)
    state = _open(repo, "P", 5)
    result: list[tuple[RecordedEvent, ...]] = []
    with _raw(pg_dsn) as slow:
        # A writer that has taken position 2 and not committed yet.
        slow.execute(b"BEGIN")
        slow.execute(
            f"UPDATE {pg_schema}.practices SET last_position = last_position + 1"
            " WHERE practice_id = %s".encode(),
            (PRACTICE,),
        )
        change = ops.adjust(state, 1, "goodwill", NOW)
        writer = threading.Thread(target=lambda: result.append(repo.commit([change])))
        writer.start()
        _wait_for_lock_wait(pg_dsn, pg_schema)
        assert repo.events_since(1) == []  # nothing past 1 until the slow writer ends
        slow.execute(b"ROLLBACK")
        writer.join()
    assert [r.position for r in result[0]] == [2]  # its rollback left no gap
    assert [r.position for r in repo.events_since(0)] == [1, 2]


def test_a_refused_commit_takes_no_position(repo: PostgresRepository) -> None:
    p = _open(repo, "P", 5)
    q = _open(repo, "Q", 5)
    repo.commit([ops.use(p, appointment("A1"), NOW)])
    with pytest.raises(ConcurrencyError):  # R6, found after the pack writes went out
        repo.commit([ops.use(q, appointment("A1"), NOW)])
    recorded = repo.commit([ops.adjust(q, 1, "goodwill", NOW)])
    assert [r.position for r in recorded] == [4]
    assert [r.position for r in repo.events_since(0)] == [1, 2, 3, 4]
    assert repo.load("Q") == replay(repo.ledger("Q"))


# Migrations ---------------------------------------------------------------------------------


def _versions(dsn: str, schema: str) -> list[int]:
    with _raw(dsn) as connection:
        rows = connection.execute(
            f"SELECT version FROM {schema}.schema_version ORDER BY version".encode()
        ).fetchall()
    return [row[0] for row in rows]


def test_the_schema_is_created_once_and_versioned(pg_dsn: str, pg_schema: str) -> None:
    with PostgresStore(pg_dsn, schema=pg_schema) as first:
        assert first.migrated_from == 0
        first.practice(PRACTICE, SYDNEY)
    with PostgresStore(pg_dsn, schema=pg_schema) as again:
        assert again.migrated_from == len(MIGRATIONS)
        assert again.practice(PRACTICE).practice.timezone == SYDNEY
    assert _versions(pg_dsn, pg_schema) == list(range(1, len(MIGRATIONS) + 1))


def test_concurrent_first_opens_migrate_once(pg_dsn: str, pg_schema: str) -> None:
    opens = 4
    barrier = threading.Barrier(opens)
    found: list[int] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            barrier.wait()
            with PostgresStore(pg_dsn, schema=pg_schema) as store:
                found.append(store.migrated_from)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(opens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(found) == [0] + [len(MIGRATIONS)] * (opens - 1)
    assert _versions(pg_dsn, pg_schema) == list(range(1, len(MIGRATIONS) + 1))


def test_a_later_migration_upgrades_an_existing_schema(pg_dsn: str, pg_schema: str) -> None:
    with PostgresStore(pg_dsn, schema=pg_schema) as old:
        _open(old.practice(PRACTICE, SYDNEY), "P", 3)
    step = statements("ALTER TABLE {schema}.packs ADD COLUMN note text")
    with PostgresStore(pg_dsn, schema=pg_schema, migrations=(*MIGRATIONS, step)) as new:
        assert new.migrated_from == len(MIGRATIONS)
        assert new.practice(PRACTICE).load("P").version == 1
    assert _versions(pg_dsn, pg_schema) == list(range(1, len(MIGRATIONS) + 2))
    with pytest.raises(StoreError) as raised:  # this release does not know that step
        PostgresStore(pg_dsn, schema=pg_schema)
    assert raised.value.field == "schema_version"
    assert raised.value.value == len(MIGRATIONS) + 1


def test_a_failing_migration_leaves_the_schema_as_it_was(pg_dsn: str, pg_schema: str) -> None:
    PostgresStore(pg_dsn, schema=pg_schema).close()
    broken = statements("ALTER TABLE {schema}.packs ADD COLUMN ok text", "SELECT 1/0")
    with pytest.raises(InvalidValueError):  # division by zero is a data error
        PostgresStore(pg_dsn, schema=pg_schema, migrations=(*MIGRATIONS, broken))
    assert _versions(pg_dsn, pg_schema) == list(range(1, len(MIGRATIONS) + 1))
    with _raw(pg_dsn) as connection:
        columns = connection.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = %s AND table_name = 'packs'""",
            (pg_schema,),
        ).fetchall()
    assert ("ok",) not in columns


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("schema", "Public"),
        ("schema", "a-b"),
        ("schema", "x" * 64),
        ("min_size", 0),
        ("max_size", 0),
        ("max_size", True),
        ("state_cache", -1),
        ("state_cache", 2.0),
        ("state_cache", None),
    ],
)
def test_bad_options_are_refused_before_connecting(option: str, value: Any) -> None:
    with pytest.raises(InvalidValueError) as raised:
        PostgresStore("postgresql://postgres@127.0.0.1:1/none", **{option: value})
    assert raised.value.field == option


def test_max_size_below_min_size_is_refused() -> None:
    with pytest.raises(InvalidValueError) as raised:
        PostgresStore("postgresql://postgres@127.0.0.1:1/none", min_size=3, max_size=2)
    assert raised.value.field == "max_size"


# Tenant isolation, statement by statement ------------------------------------------------


# The schema's own bookkeeping, which no practice owns.
_SCHEMA_STATEMENTS = {"version_table", "has_version_table", "schema_version", "add_version"}


def _statements() -> dict[str, bytes]:
    """Every statement the store runs: the core's, and those of ``commit_changes``."""
    sql = {
        name: text.encode()
        for name, text in vars(Statements(postgres("s"))).items()
        if isinstance(text, str) and name not in _SCHEMA_STATEMENTS
    }
    assert "s.commit_changes(" in _commit_call("s")
    body = _COMMIT_FUNCTION.format(schema="s").split("$body$")[1]
    for number, part in enumerate(body.split(";")):
        # The client lock (R13a) reads the function's arguments, no table.
        if "pg_advisory_xact_lock" in part:
            continue
        if re.search(r"\b(INSERT|UPDATE|DELETE|SELECT)\b", part):
            sql[f"commit_changes #{number}"] = part.encode()
    return sql


def test_every_statement_names_the_practice() -> None:
    """Every statement touches rows of one practice: each WHERE clause names practice_id,
    except an ON CONFLICT's, whose row is the one keyed by this practice's id, and one that
    compares with a subquery, whose own WHERE is checked."""
    sql = _statements()
    assert len(sql) > 25
    for name, statement in sql.items():
        text = re.sub(rb"DO UPDATE SET [^;]*?WHERE", b"DO UPDATE SET", statement)
        clauses = re.split(rb"\bWHERE\b", text)[1:]
        assert b"practice_id" in statement, name
        for clause in clauses:
            condition = re.split(rb"\b(?:ORDER BY|RETURNING|LIMIT|GROUP BY)\b", clause)[0]
            # A condition on a subquery: the subquery's own WHERE is the next clause checked.
            assert b"practice_id" in condition or b"(SELECT" in condition, (name, condition)


# Error translation -------------------------------------------------------------------------


def test_a_unique_violation_is_a_concurrency_error(store: PostgresStore) -> None:
    store.practice(PRACTICE, SYDNEY)
    table = store.schema + ".practices"
    with pytest.raises(ConcurrencyError) as raised, store.connection() as connection:
        connection.execute(
            f"INSERT INTO {table} (practice_id, timezone) VALUES (%s, 'UTC')".encode(), (PRACTICE,)
        )
    assert raised.value.field == "practice_id"
    assert PRACTICE in str(raised.value.value)


def test_a_serialization_failure_is_a_concurrency_error(store: PostgresStore, pg_dsn: str) -> None:
    store.practice(PRACTICE, SYDNEY)
    table = f"{store.schema}.practices".encode()
    with _raw(pg_dsn) as other, store.connection() as mine:
        mine.execute(b"BEGIN ISOLATION LEVEL REPEATABLE READ")
        mine.execute(b"SELECT last_position FROM " + table)
        other.execute(b"UPDATE " + table + b" SET last_position = 5")
        with pytest.raises(ConcurrencyError), _translated():
            mine.execute(b"UPDATE " + table + b" SET last_position = 6")
        mine.execute(b"ROLLBACK")


def test_a_template_saved_twice_at_once_is_a_concurrency_error(
    repo: PostgresRepository, pg_dsn: str, store: PostgresStore
) -> None:
    from sessionpacks.model import PackTemplate

    repo.save_template(PackTemplate("t1", _terms(5)))
    racing = PackTemplate("t1", _terms(6), version=2)
    outcome: list[BaseException] = []

    def save() -> None:
        try:
            repo.save_template(racing)
        except BaseException as error:
            outcome.append(error)

    with _raw(pg_dsn) as other:
        other.execute(b"BEGIN")
        other.execute(
            f"""INSERT INTO {store.schema}.templates (practice_id, template_id, version, template)
                VALUES (%s, 't1', 2, %s)""".encode(),
            (PRACTICE, repo.template("t1").terms.name),
        )
        saver = threading.Thread(target=save)
        saver.start()
        _wait_for_template_lock(pg_dsn)
        other.execute(b"COMMIT")
        saver.join()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ConcurrencyError)
    assert outcome[0].field == "template.version"


def _wait_for_template_lock(dsn: str) -> None:
    with _raw(dsn) as watcher:
        for _ in range(2000):
            row = watcher.execute(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE wait_event_type = 'Lock' AND position('templates' in query) > 0"""
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.01)
    raise AssertionError("the second saver never waited for the first")


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_text_postgresql_cannot_hold_is_invalid(
    store: PostgresStore, repo: PostgresRepository, bad: str
) -> None:
    with pytest.raises(InvalidValueError) as raised:
        store.practice(bad, SYDNEY)
    assert raised.value.field == "practice_id"
    with pytest.raises(InvalidValueError):
        repo.load(bad)
    with pytest.raises(InvalidValueError):
        repo.commit([ops.open_pack("P", bad, _terms(3), repo.practice, NOW)])
    with pytest.raises(InvalidValueError):
        repo.set_preference(bad, None)
    with pytest.raises(InvalidValueError), store.connection() as connection:
        connection.execute(b"SELECT %s::text", (bad,))
    assert repo.client_packs(bad.replace("\x00", "").replace("\ud800", "")) == []
    assert repo.events_since(0) == []


def test_an_id_that_is_no_string_is_invalid(store: PostgresStore, repo: PostgresRepository) -> None:
    number: Any = 7
    for call in (store.practice, repo.load, repo.preference):
        with pytest.raises(InvalidValueError) as raised:
            call(number)
        assert raised.value.value == 7


def test_other_driver_errors_are_store_errors(store: PostgresStore) -> None:
    repo = store.practice(PRACTICE, SYDNEY)
    with pytest.raises(StoreError), store.connection() as connection:
        connection.execute(b"SELECT * FROM no_such_table")
    store.close()
    with pytest.raises(StoreError):
        repo.load("P")


def test_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError):  # nothing listens on port 1
        PostgresStore("postgresql://postgres@127.0.0.1:1/test", timeout=0.5)


def test_translated_passes_library_errors_through() -> None:
    with pytest.raises(NotFoundError), _translated():
        raise NotFoundError("pack_id", "x", "no such pack")


def test_a_new_practice_needs_its_timezone(store: PostgresStore) -> None:
    with pytest.raises(NotFoundError) as raised:
        store.practice("nowhere")
    assert raised.value.field == "practice_id"
    with pytest.raises(InvalidValueError):
        store.practice("nowhere", "Mars/Olympus")
    with pytest.raises(NotFoundError):
        store.practice("nowhere")


def test_hours_and_money_round_trip_exactly(repo: PostgresRepository) -> None:
    hours = PackTerms(
        name="5 hours",
        allowance=Allowance.hours(timedelta(hours=5, microseconds=1)),
        pricing=PerSession.flat(Money("0.01", "AUD")),
    )
    change = ops.open_pack("H", "C1", hours, repo.practice, NOW)
    repo.commit([change])
    assert repo.load("H") == change.after
    assert repo.load("H").remaining == timedelta(hours=5, microseconds=1)


def test_check_snapshots_finds_what_differs_from_the_ledgers(
    store: PostgresStore, repo: PostgresRepository
) -> None:
    opened = _open(repo, "P", 3)
    repo.commit([ops.use(opened, appointment("A1"), NOW)])
    _open(repo, "Q", 3)
    assert repo.check_snapshots() == []
    schema = store.schema
    with store.connection() as connection:
        connection.execute(
            f"UPDATE {schema}.packs SET state = %s WHERE pack_id = 'P'".encode(),
            (dumps_state(opened),),
        )
    assert repo.check_snapshots() == ["P"]
    with store.connection() as connection:
        connection.execute(
            f"UPDATE {schema}.active_usages SET pack_id = 'Q' WHERE appointment_id = 'A1'".encode()
        )
    assert repo.check_snapshots() == ["P", "Q"]


def test_shares_are_checked_and_rebuilt_from_the_ledgers(
    store: PostgresStore, repo: PostgresRepository
) -> None:
    """R20: ``shared_packs`` is derived from the ledgers; a lost or stray row is found and
    mended, and a pack row with shares can still be removed by the rebuild."""
    repo.commit([ops.share(_open(repo, "P", 3), "C7", NOW)])
    _open(repo, "Q", 3)
    assert repo.check_snapshots() == []
    s = store.schema
    with store.connection() as connection:
        connection.execute(f"DELETE FROM {s}.shared_packs WHERE client_id = 'C7'".encode())
        connection.execute(
            f"INSERT INTO {s}.shared_packs VALUES (%s, 'C9', 'Q')".encode(), (PRACTICE,)
        )
    assert repo.check_snapshots() == ["P", "Q"]
    assert repo.rebuild_snapshots() == ["P", "Q"]
    assert [p.pack_id for p in repo.client_packs("C7")] == ["P"]
    assert repo.client_packs("C9") == []
    assert repo.check_snapshots() == []


def test_rebuild_snapshots_rewrites_what_differs_from_the_ledgers(
    store: PostgresStore, repo: PostgresRepository
) -> None:
    opened = _open(repo, "P", 3)
    used = repo.commit([ops.use(opened, appointment("A1"), NOW)])
    assert used
    _open(repo, "Q", 3)
    _open(store.practice("practice-b", SYDNEY), "P", 3)  # another practice: left alone
    assert repo.rebuild_snapshots() == []
    s = store.schema
    with store.connection() as connection:
        connection.execute(
            f"UPDATE {s}.packs SET state = %s WHERE pack_id = 'P' AND practice_id = %s".encode(),
            (dumps_state(opened), PRACTICE),
        )
        connection.execute(f"UPDATE {s}.active_usages SET pack_id = 'Q'".encode())
        connection.execute(  # a row with no ledger behind it
            f"""INSERT INTO {s}.packs (practice_id, pack_id, client_id, version, state, ended,
                    remaining_units)
                SELECT practice_id, 'ghost', client_id, version, state, ended, remaining_units
                FROM {s}.packs WHERE practice_id = %s AND pack_id = 'Q'""".encode(),
            (PRACTICE,),
        )
    assert repo.check_snapshots() == ["P", "Q", "ghost"]
    assert repo.rebuild_snapshots() == ["P", "Q", "ghost"]
    assert repo.check_snapshots() == []
    assert repo.load("P") == replay(repo.ledger("P"))
    assert repo.pack_of_appointment("A1") == "P"
    with pytest.raises(NotFoundError):
        repo.load("ghost")
    assert store.practice("practice-b").check_snapshots() == []


def test_a_stale_pending_expiry_is_found_and_the_sweep_still_decides(
    store: PostgresStore, repo: PostgresRepository
) -> None:
    """A writer of an earlier release (its commit function) stores the expiry date as the
    pending one: the expiry query finds the pack, and the definition leaves it out."""
    fixed = attrs.evolve(_terms(3), expiry=ExpiresOn(date(2026, 4, 16)))
    state = ops.open_pack("P", "C1", fixed, repo.practice, NOW).after
    repo.commit([ops.open_pack("P", "C1", fixed, repo.practice, NOW)])
    repo.commit([ops.close(state, "done", NOW)])
    assert repo.expiry_candidates(date(2026, 5, 1)) == []
    with store.connection() as connection:
        connection.execute(f"UPDATE {store.schema}.packs SET pending_expiry = expiry_date".encode())
    assert repo.expiry_candidates(date(2026, 5, 1)) == []
    assert repo.check_snapshots() == ["P"]
    assert repo.rebuild_snapshots() == ["P"]


def test_the_earlier_commit_functions_stay_and_write_a_pending_expiry(
    store: PostgresStore, pg_dsn: str
) -> None:
    with _raw(pg_dsn) as connection:
        bodies = connection.execute(
            """SELECT prosrc FROM pg_proc JOIN pg_namespace ON pronamespace = pg_namespace.oid
               WHERE nspname = %s AND proname = 'commit_changes'""",
            (store.schema,),
        ).fetchall()
    assert len(MIGRATIONS) == 8
    assert len(bodies) == 7  # one a schema version up to 7 (8 adds an index only)
    assert all("pending_expiry" in body for (body,) in bodies)


def test_malformed_arguments_are_refused(repo: PostgresRepository) -> None:
    anything: Any = "2026-03-01"
    with pytest.raises(InvalidValueError) as raised:
        repo.expiry_candidates(anything)
    assert raised.value.field == "as_of"
    with pytest.raises(InvalidValueError) as raised:
        repo.save_template(anything)
    assert raised.value.field == "template"


def test_ids_beyond_ascii_round_trip(store: PostgresStore) -> None:
    repo = store.practice("praxis-zürich", "Europe/Zurich")
    change = ops.open_pack("päckchen-1", "Zoë 🙂", _terms(3), repo.practice, NOW)
    repo.commit([change])
    assert store.practice("praxis-zürich").load("päckchen-1") == change.after
    assert [p.pack_id for p in repo.client_packs("Zoë 🙂")] == ["päckchen-1"]


# Faults: killed backends, lost connections ---------------------------------------------------


def _kill_backends(dsn: str, application: str) -> int:
    """Terminate this test's own pooled connections (named by application_name), never
    another run's."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (application,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_killed_backends_are_replaced_before_a_command_uses_them(
    pg_dsn: str, pg_schema: str
) -> None:
    application = f"sp-kill-{pg_schema}"
    dsn = f"{pg_dsn}?application_name={application}"
    with PostgresStore(dsn, schema=pg_schema, min_size=3, max_size=3) as store:
        repo = store.practice(PRACTICE, SYDNEY)
        service = PackService(repo, FixedClock(NOW))
        pack = service.open_pack("C1", terms=_terms(100)).pack_id
        killed = 0
        for n in range(60):
            if n % 10 == 0:
                time.sleep(0.05)  # let the pool's idle connections settle in
                killed += _kill_backends(pg_dsn, application)
            if n % 2:
                service.assign(appointment(f"a{n}"), pack_id=pack)
            else:
                service.adjust(pack, 1, "goodwill", idempotency_key=f"k{n}")
            assert service.pack(pack).version >= 2
        assert killed >= 6
        state = service.pack(pack)
        assert len(state.usages) == 30
        assert state.total_units == 130
        assert repo.check_snapshots() == []


def test_a_lost_connection_is_its_own_error_named_by_field() -> None:
    from sessionpacks.errors import ConnectionLostError

    with pytest.raises(ConnectionLostError) as lost, _translated("pack_id", "P1"):
        raise psycopg.OperationalError("server closed the connection\nDETAIL: more\nHINT: x")
    assert (lost.value.field, lost.value.value) == ("pack_id", "P1")
    assert "\n" not in str(lost.value)


def test_a_value_postgresql_cannot_store_is_named(store: PostgresStore) -> None:
    with pytest.raises(InvalidValueError) as refused, _translated("pack_id", "P1"):
        raise psycopg.DataError("value too long\nDETAIL: something")
    assert (refused.value.field, refused.value.value) == ("pack_id", "P1")
    assert "\n" not in str(refused.value)


def test_a_statement_timeout_is_no_lost_connection() -> None:
    from sessionpacks.errors import ConnectionLostError

    with pytest.raises(StoreError) as failed, _translated("pack_id", "P1"):
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")
    assert not isinstance(failed.value, ConnectionLostError)
    with pytest.raises(ConnectionLostError), _translated("pack_id", "P1"):
        raise psycopg.errors.AdminShutdown("terminating connection due to administrator command")


def test_advisory_locks_of_two_schemas_do_not_meet(pg_dsn: str, pg_schema: str) -> None:
    """Two sessionpacks schemas in one database: a commit opening a pack for C1 in one holds
    no lock the other's commits wait for."""
    other = f"{pg_schema}_b"
    try:
        with (
            PostgresStore(pg_dsn, schema=pg_schema) as first,
            PostgresStore(pg_dsn, schema=other) as second,
        ):
            one, two = first.practice(PRACTICE, SYDNEY), second.practice(PRACTICE, SYDNEY)
            with psycopg.connect(pg_dsn) as holder:
                holder.execute(  # hold C1's lock of the first schema, as an open commit would
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))",
                    (f"{pg_schema}\x1f{PRACTICE}\x1fC1",),
                )
                opened = ops.open_pack("p1", "C1", _terms(3), two.practice, NOW)
                started = time.monotonic()
                two.commit([opened], client_packs={"C1": 0})
                assert time.monotonic() - started < 5
                waiting = ops.open_pack("p1", "C1", _terms(3), one.practice, NOW)
                done: list[bool] = []
                worker = threading.Thread(
                    target=lambda: done.append(bool(one.commit([waiting], client_packs={"C1": 0})))
                )
                worker.start()
                worker.join(timeout=0.5)
                assert done == []  # the first schema's commit waits for the lock held above
            worker.join(timeout=10)
            assert done == [True]
    finally:
        from ..pg_support import drop_schema

        drop_schema(pg_dsn, other)


def test_the_state_cache_is_sized_by_the_store(pg_dsn: str, pg_schema: str) -> None:
    """0 keeps nothing: every read in a decision asks the database."""
    with PostgresStore(pg_dsn, schema=pg_schema, state_cache=0) as store:
        repo = store.practice(PRACTICE, SYDNEY)
        state = _open(repo, "P", 10)
        assert store.known.state(PRACTICE, "P") is None
        assert repo.load("P") == state
        assert store.known.state(PRACTICE, "P") is None
