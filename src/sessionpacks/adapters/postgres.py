"""The PostgreSQL store: many processes on many machines sharing one database.

Needs the ``postgres`` extra (psycopg 3 and psycopg_pool). A :class:`PostgresStore` holds a
connection pool and keeps its tables in one PostgreSQL schema (``sessionpacks`` unless told
otherwise), created and upgraded on open; :meth:`PostgresStore.practice` hands out a
:class:`PostgresRepository` bound to one practice. Every row carries its ``practice_id`` and
every statement filters on it (tenant isolation).

Writes: a commit is one call of the ``commit_changes`` function (created by the migration), so
one round trip and one transaction holding the ledger entries, the folded state beside them
(``packs``), the active usages (R6) and the events (a transactional outbox). Guarantees rest on
constraints and conditional writes, not on reading first, at PostgreSQL's default READ COMMITTED
isolation:

* a pack's row is updated only ``WHERE version = expected``, a new pack's inserted only if its
  id is free (zero rows: another writer got there first), and its entries have
  ``PRIMARY KEY (practice_id, pack_id, sequence)``;
* an appointment is active on one pack at a time: ``PRIMARY KEY (practice_id, appointment_id)``;
* a template version is inserted only if it is the latest plus one, and its primary key refuses
  a second writer of the same version.

Event positions: sequence values are handed out when asked for, not when their transaction
commits, so a reader following positions could pass position 7 before the transaction holding
6 commits and never see 6. Here each practice has a counter row (``practices.last_position``)
that a commit increments with ``UPDATE ... RETURNING`` as the last write before its events. The
row lock is held until the commit ends, so the next writer of the same practice reads the
counter only after this commit is visible: positions are gap-free (a rolled-back commit rolls
its increment back too) and become visible in position order. A reader that has seen position
``n`` finds ``n + 1`` on a later read or not yet, never skips it. The price: commits of one
practice that emit events take turns on that row, each for the end of one function call;
practices do not wait for each other. Because the counter is the last lock a commit takes and
the pack rows are locked in pack id order, commits cannot deadlock on each other.

The schema, the statements and every method but the commit are the SQL core's
(:mod:`sessionpacks.adapters._sql`); this module holds the pool, the transactions and the
commit function. Driver errors are judged in one place,
:func:`~sessionpacks.adapters._sql.postgres_errors.translated`.

JSON is stored as ``text``, not ``jsonb``: the codec writes ASCII-only JSON, which text keeps
byte for byte, whereas ``jsonb`` refuses ``\\u0000`` and lone surrogates that a Python string
(a reason, a name) may hold. Cast a column to ``jsonb`` to query it.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from sessionpacks.adapters._common import appointment_changes, sharing_changes
from sessionpacks.adapters._sql.core import SqlRepository, SqlStore, migrate, open_practice
from sessionpacks.adapters._sql.dialect import Dialect, postgres
from sessionpacks.adapters._sql.known import Deciding, Known, Reads, check_reads
from sessionpacks.adapters._sql.postgres_errors import translated
from sessionpacks.adapters._sql.postgres_schema import (
    ARGUMENTS,
    COMMIT_FUNCTION,
    MIGRATION_LOCK,
    MIGRATIONS,
    Commit,
    check_schema,
    commit_call,
)
from sessionpacks.adapters._sql.rows import (
    PROJECTION,
    Decoded,
    entry_row,
    event_row,
    lean_state,
    projection,
    terms_text,
)
from sessionpacks.adapters._sql.schema import Statements, statements
from sessionpacks.adapters._sql.session import Params, Session, Step
from sessionpacks.errors import (
    ConnectionLostError,
    InvalidValueError,
    StoreError,
)
from sessionpacks.events import RecordedEvent
from sessionpacks.model import Practice
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord

__all__ = [
    "MIGRATIONS",
    "Migration",
    "PostgresRepository",
    "PostgresStore",
    "StoreError",
    "statements",
]

Connection = psycopg.Connection[tuple[Any, ...]]
Migration = Step
"""One schema step, run inside the upgrade's transaction; ``{schema}`` in a statement of
:func:`statements` names the schema."""

_COMMIT_FUNCTION = COMMIT_FUNCTION
"""The commit function this release calls (schema version 7)."""
_commit_call = commit_call


class _Session:
    """A psycopg connection whose errors name ``field`` and ``value``."""

    __slots__ = ("connection", "dialect", "field", "value")

    def __init__(self, connection: Connection, dialect: Dialect, field: str, value: Any) -> None:
        self.connection = connection
        self.dialect = dialect
        self.field = field
        self.value = value

    def about(self, field: str, value: Any) -> _Session:
        return _Session(self.connection, self.dialect, field, value)

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with translated(self.field, self.value):
            return self.connection.execute(sql.encode(), params or None).fetchall()

    def run(self, sql: str, params: Params = ()) -> int:
        # No parameters, no placeholders: a % in a function body stays as it is.
        with translated(self.field, self.value):
            return self.connection.execute(sql.encode(), params or None).rowcount

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with translated(self.field, self.value), self.connection.cursor() as cursor:
            cursor.executemany(sql.encode(), list(rows))


def _alive(connection: Connection) -> bool:
    """Whether an idle connection is still open: the server says nothing to an idle client,
    so anything to read on its socket is the server ending it (or the socket closing)."""
    if connection.closed or connection.broken:
        return False
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


_LAYOUT = b"""SELECT CASE WHEN p.partrelid IS NULL THEN 0
    ELSE (SELECT count(*) FROM pg_catalog.pg_inherits WHERE inhparent = c.oid) END
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_partitioned_table AS p ON p.partrelid = c.oid
WHERE n.nspname = %s AND c.relname = 'packs'"""


class PostgresStore(SqlStore):
    """A PostgreSQL database holding any number of practices, through a connection pool.

    Opening creates or upgrades the tables in ``schema``. Safe to share between threads; each
    process opens its own store. Close it, or use it as a context manager.

    ``partitions``: a schema created by this open gets its tables as ``PARTITION BY HASH
    (practice_id)`` with that many partitions each (native partitioning; ``None``, the default,
    creates plain tables). The layout is chosen when the schema is created: a store opening an
    existing schema with ``partitions`` given refuses one laid out otherwise
    (:class:`StoreError`), and without it keeps the schema's layout, its later steps included.

    ``state_cache``: how many decoded pack states to keep, and how many states this process's
    decisions may answer from (as :class:`~sessionpacks.adapters.sqlite.SqliteStore`'s; 0
    keeps none).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "sessionpacks",
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 30.0,
        migrations: Sequence[Migration] = MIGRATIONS,
        partitions: int | None = None,
        state_cache: int = 4096,
    ) -> None:
        check_schema(schema)
        if type(state_cache) is not int or state_cache < 0:
            raise InvalidValueError("state_cache", state_cache, "must be a whole number >= 0")
        for name, size in (
            ("min_size", min_size),
            ("max_size", max_size),
            ("partitions", 1 if partitions is None else partitions),
        ):
            if type(size) is not int or size < 1:
                raise InvalidValueError(name, size, "must be a whole number >= 1")
        if max_size < min_size:
            raise InvalidValueError("max_size", max_size, f"must be >= min_size ({min_size})")
        self._schema = schema
        self._max_size = max_size
        self._sql = Statements(postgres(schema))
        self.decoded = Decoded(state_cache)
        """Decoded states, shared by the store's repositories."""
        self.known = Known(state_cache)
        """The states this process last wrote or read, for its repositories' decisions."""
        # autocommit: a read is one round trip; writes open their transaction explicitly.
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True},
            open=False,
            name=f"sessionpacks-{schema}",
        )
        try:
            with translated():
                self._pool.open()
            with self.connection() as connection:
                self._open_schema(connection, migrations, partitions)
        except BaseException:
            self._pool.close()
            raise

    def _open_schema(
        self, connection: Connection, migrations: Sequence[Migration], partitions: int | None
    ) -> None:
        """Create or upgrade the schema in the layout it has (or ``partitions``' if new)."""
        found = self._layout(connection)
        layout = (partitions or 0) if found is None else found
        self._sql = Statements(postgres(self._schema, layout))
        self._migrated_from = migrate(
            _Session(connection, self._sql.dialect, "schema", self._schema),
            lambda: self._upgrade(connection),
            migrations,
            f"schema {self._schema}",
        )
        # Read again: another process may have created the schema meanwhile.
        found = self._layout(connection)
        if partitions is not None and found != partitions:
            raise StoreError(
                "partitions",
                partitions,
                f"schema {self._schema} has {found or 'no'} partitions by practice: the layout"
                " is chosen when the schema is created",
            )

    def _layout(self, connection: Connection) -> int | None:
        """How many partitions the schema's ``packs`` has (0: not partitioned; ``None``: no
        such table yet)."""
        with translated("schema", self._schema):
            row = connection.execute(_LAYOUT, (self._schema,)).fetchone()
        return None if row is None else int(row[0])

    @property
    def partitions(self) -> int:
        """How many hash partitions by ``practice_id`` each table has (0: not partitioned)."""
        return self._sql.dialect.partitions

    @property
    def schema(self) -> str:
        return self._schema

    @property
    def migrated_from(self) -> int:
        """The schema version found on open (0: the tables were created by this open)."""
        return self._migrated_from

    @contextmanager
    def connection(self, field: str = "database", value: Any = None) -> Iterator[Connection]:
        """A pooled connection (autocommit), its driver errors translated; ``field`` and
        ``value`` name what it is used for, in the errors.

        A connection whose server ended it while it sat in the pool (a restart, a killed
        backend) is found before it is used, and another is taken in its place."""
        with translated(field, value):
            connection = self._live_connection()
            try:
                yield connection
            finally:
                self._pool.putconn(connection)

    def _live_connection(self) -> Connection:
        # The pool's own check costs a round trip per use and, on finding a dead connection,
        # waits a second or more before the next; a look at the socket costs neither.
        for _ in range(self._max_size):
            connection = self._pool.getconn()
            if _alive(connection):
                return connection
            connection.close()  # the pool puts a new connection in its place
            self._pool.putconn(connection)
        return self._pool.getconn()

    def read(self, sql: bytes, params: Params, field: str, value: Any) -> list[Any]:
        """The rows of one read. A read is safe to repeat, so one that lost its connection is
        sent once more on another (the pool checks a connection before handing it out)."""
        try:
            with self.connection(field, value) as connection:
                return connection.execute(sql, params).fetchall()
        except ConnectionLostError:
            with self.connection(field, value) as connection:
                return connection.execute(sql, params).fetchall()

    def practice(self, practice_id: str, timezone: str | None = None) -> PostgresRepository:
        """A repository bound to ``practice_id``; ``timezone`` is required the first time."""
        with self.connection("practice_id", practice_id) as connection:
            session = _Session(connection, self._sql.dialect, "practice_id", practice_id)
            # autocommit: the insert is a transaction of its own
            practice = open_practice(session, lambda: nullcontext(session), practice_id, timezone)
        return PostgresRepository(self, self._sql, practice)

    @contextmanager
    def _upgrade(self, connection: Connection) -> Iterator[Session]:
        """The upgrade's transaction. An advisory lock serialises concurrent first opens: the
        second waits, then finds the schema up to date."""
        session = _Session(connection, self._sql.dialect, "schema", self._schema)
        with connection.transaction():
            session.run(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (MIGRATION_LOCK, self._schema)
            )
            # Checked first: CREATE SCHEMA IF NOT EXISTS wants the CREATE right even then.
            if not session.rows("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self._schema,)):
                session.run(f"CREATE SCHEMA {self._schema}")
            yield session

    @contextmanager
    def transaction(self, field: str, value: Any, *setup: str) -> Iterator[Session]:
        """A transaction on one pooled connection, ``setup`` its first statements; errors
        name ``field`` and ``value``."""
        with self.connection(field, value) as connection, connection.transaction():
            session = _Session(connection, self._sql.dialect, field, value)
            for statement in setup:
                session.run(statement)
            yield session

    def close(self) -> None:
        """Close the pool; the store and its repositories are unusable afterwards."""
        self._pool.close()


class PostgresRepository(Deciding, SqlRepository):
    """One practice's view of a :class:`PostgresStore`; every statement is scoped to it."""

    def __init__(self, store: PostgresStore, sql: Statements, practice: Practice) -> None:
        super().__init__(practice, sql, store.decoded)
        self._store = store
        self._call = _commit_call(store.schema).encode()
        self._local = threading.local()
        self._check_sql = (
            f"""SELECT 'r', practice_id, repairs::text FROM {store.schema}.practices
                WHERE practice_id = %s
                UNION ALL
                SELECT 'p', pack_id, version::text FROM {store.schema}.packs
                WHERE practice_id = %s AND pack_id = ANY (%s::text[])
                UNION ALL
                SELECT 'u', appointment_id, pack_id FROM {store.schema}.active_usages
                WHERE practice_id = %s AND appointment_id = ANY (%s::text[])"""
        ).encode()

    def _memory(self) -> Known:
        return self._store.known

    def _read(self, field: str, value: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._store.read(sql.encode(), params, field, value)

    def _writing(self, field: str, value: Any) -> AbstractContextManager[Session]:
        return self._store.transaction(field, value)

    def _snapshot(self, field: str, value: Any) -> AbstractContextManager[Session]:
        # REPEATABLE READ: every statement sees the database as the first one did.
        return self._store.transaction(
            field, value, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
        )

    def _exclusive(self, field: str, value: Any) -> AbstractContextManager[Session]:
        # Commits write packs first, so taking that lock first cannot deadlock with one; reads
        # go on. Every practice's writers wait: a rebuild is a repair, not a routine.
        tables = ", ".join(
            f"{self._store.schema}.{t}" for t in ("packs", "entries", "active_usages")
        )
        return self._store.transaction(field, value, f"LOCK TABLE {tables} IN EXCLUSIVE MODE")

    # A decision: reads answered from what the process knows, each checked (_sql/known) ------

    def _check(self, reads: Reads, repairs: int | None) -> None:
        """Check ``reads`` and ``repairs`` against the database in one read."""
        packs, appointments = sorted(reads.packs), sorted(reads.unheld)
        params = (self._id, self._id, packs, self._id, appointments)
        found = self._store.read(self._check_sql, params, "pack_id", packs)
        check_reads(reads, found, self._id, repairs)

    # The commit --------------------------------------------------------------------------------

    def _commit(
        self,
        writing: list[Change],
        client_packs: Mapping[str, int],
        command: CommandRecord | None,
    ) -> tuple[RecordedEvent, ...]:
        def commit(uncovered: Reads | None, repairs: int | None) -> tuple[RecordedEvent, ...]:
            if uncovered is not None:
                self._check(uncovered, None)  # one read before the call, which checks repairs
            return self._call_commit(writing, client_packs, command, repairs)

        return self._committing(writing, commit)

    def _call_commit(
        self,
        writing: list[Change],
        client_packs: Mapping[str, int],
        command: CommandRecord | None,
        repairs: int | None = None,
    ) -> tuple[RecordedEvent, ...]:
        commit = self._prepare(writing, client_packs, command, repairs)
        arguments = {name: value(commit) for name, _, value in ARGUMENTS}
        first = writing[0].pack_id if writing else self._id
        with self._store.connection("pack_id" if writing else "practice_id", first) as connection:
            row = connection.execute(self._call, arguments).fetchone()
        for change, columns in zip(commit.packs, commit.columns, strict=True):
            text = columns[PROJECTION.index("state")]
            self._decoded.remember(text, change.after, practice=self._id)
        base = 0 if row is None else int(row[0])
        events = [event for change in writing for event in change.events]
        return tuple(RecordedEvent(base + n, event) for n, event in enumerate(events, start=1))

    def _prepare(
        self,
        writing: list[Change],
        client_packs: Mapping[str, int],
        command: CommandRecord | None,
        repairs: int | None = None,
    ) -> Commit:
        """The commit's values, every id checked storable; packs sorted by id (the order their
        rows lock)."""
        used, released = appointment_changes(writing)
        for change in writing:
            self._text("pack_id", change.pack_id)
            self._text("client_id", change.after.client_id)
        for appointment_id in used.keys() | released:
            self._text("appointment_id", appointment_id)
        for client_id in (*client_packs, *(c for w in writing for c in w.after.shared_with)):
            self._text("client_id", client_id)
        if command is not None:
            self._text("idempotency_key", command.key)
        packs = sorted(writing, key=lambda change: change.pack_id)
        return Commit(
            practice_id=self._id,
            packs=packs,
            columns=[
                projection(self._sql.dialect, change.after, lean_state(change.after))
                for change in packs
            ],
            entries=[entry_row(entry) for change in writing for entry in change.entries],
            released=sorted(released),
            used=used,
            events=[event_row(event) for change in writing for event in change.events],
            client_packs=client_packs,
            command=command,
            sharing=sharing_changes(packs),
            terms=[
                terms_text(change.after.terms) if change.expected_version == 0 else None
                for change in packs
            ],
            repairs=repairs,
        )
