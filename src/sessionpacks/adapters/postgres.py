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

import re
import select
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import attrs
import psycopg
from psycopg_pool import ConnectionPool

from sessionpacks.adapters._common import appointment_changes
from sessionpacks.adapters._sql import schema as core_schema
from sessionpacks.adapters._sql.core import SqlRepository, SqlStore, migrate, open_practice
from sessionpacks.adapters._sql.dialect import Dialect, postgres
from sessionpacks.adapters._sql.postgres_errors import translated
from sessionpacks.adapters._sql.rows import (
    PROJECTION,
    PROJECTION_TYPES,
    Decoded,
    entry_row,
    event_row,
    projection,
)
from sessionpacks.adapters._sql.schema import Statements, statements
from sessionpacks.adapters._sql.session import Params, Session, Step
from sessionpacks.errors import ConnectionLostError, InvalidValueError, StoreError
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

# pg_advisory_xact_lock(classid, objid): classid says "sessionpacks schema upgrade", objid is
# hashtext(schema), so upgrades of different schemas do not wait for each other.
_MIGRATION_LOCK = 0x5E5510
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


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


# The commit is one call of commit_changes, so one round trip and one implicit transaction. Pack
# rows are written in the order given (the caller sorts them by id), the counter row last: no
# deadlock between commits. A conflict raises with the field in COLUMN and the value in DETAIL.
# Each schema version has its own function (PostgreSQL tells them apart by their arguments);
# the earlier ones stay, so processes of an earlier release keep working during an upgrade.


def _pack_writes(columns: Sequence[tuple[str, str]]) -> str:
    """The function's loop writing pack rows: each projection column from its argument."""
    names = ", ".join(column for column, _ in columns)
    values = ", ".join(f"{argument}[i]" for _, argument in columns)
    sets = ", ".join(f"{column} = {argument}[i]" for column, argument in columns)
    return f"""        FOR i IN 1 .. coalesce(array_length(p_packs, 1), 0) LOOP
            IF p_expected[i] = 0 THEN
                INSERT INTO {{schema}}.packs (practice_id, pack_id, {names})
                VALUES (p_practice, p_packs[i], {values})
                ON CONFLICT (practice_id, pack_id) DO NOTHING;
            ELSE
                UPDATE {{schema}}.packs SET {sets}
                WHERE practice_id = p_practice AND pack_id = p_packs[i]
                  AND version = p_expected[i];
            END IF;
            GET DIAGNOSTICS written = ROW_COUNT;
            IF written = 0 THEN
                SELECT version INTO current_version FROM {{schema}}.packs
                WHERE practice_id = p_practice AND pack_id = p_packs[i];
                RAISE EXCEPTION 'is at version %, not %', coalesce(current_version, 0),
                    p_expected[i]
                    USING ERRCODE = 'serialization_failure', COLUMN = 'pack_id',
                          DETAIL = p_packs[i];
            END IF;
        END LOOP;
"""


# What every version writes after the packs: entries, active usages, events.
_OTHER_WRITES = """\
        INSERT INTO {schema}.entries (practice_id, pack_id, sequence, kind, entry)
        SELECT p_practice, e.pack_id, e.sequence, e.kind, e.entry
        FROM unnest(e_packs, e_sequences, e_kinds, e_entries) AS e(pack_id, sequence, kind, entry);
        -- Releases first, so a move in one commit frees the appointment before it is taken.
        DELETE FROM {schema}.active_usages
        WHERE practice_id = p_practice AND appointment_id = ANY (u_released);
        FOR i IN 1 .. coalesce(array_length(u_appointments, 1), 0) LOOP
            -- The same pack holding it already is no conflict; another pack is (R6).
            INSERT INTO {schema}.active_usages (practice_id, appointment_id, pack_id)
            VALUES (p_practice, u_appointments[i], u_packs[i])
            ON CONFLICT (practice_id, appointment_id) DO UPDATE SET pack_id = EXCLUDED.pack_id
            WHERE active_usages.pack_id = EXCLUDED.pack_id;
            GET DIAGNOSTICS written = ROW_COUNT;
            IF written = 0 THEN
                SELECT pack_id INTO holder FROM {schema}.active_usages
                WHERE practice_id = p_practice AND appointment_id = u_appointments[i];
                RAISE EXCEPTION 'is active on pack % (R6)', holder
                    USING ERRCODE = 'unique_violation', COLUMN = 'appointment_id',
                          DETAIL = u_appointments[i];
            END IF;
        END LOOP;
        IF coalesce(array_length(v_ids, 1), 0) > 0 THEN
            -- The counter row stays locked until this transaction ends (module docstring).
            UPDATE {schema}.practices SET last_position = last_position + array_length(v_ids, 1)
            WHERE practice_id = p_practice
            RETURNING last_position - array_length(v_ids, 1) INTO base;
            INSERT INTO {schema}.events (practice_id, position, event_id, pack_id, kind, event)
            SELECT p_practice, base + e.n, e.event_id, e.pack_id, e.kind, e.event
            FROM unnest(v_ids, v_packs, v_kinds, v_events)
                 WITH ORDINALITY AS e(event_id, pack_id, kind, event, n);
        END IF;
"""

# R13a: a commit opening a pack for a client, or deciding on a client's packs, holds that
# client's advisory lock until it ends, so the next one counts after it. Keyed by schema,
# practice and client (ids hold no control characters): other clients, and other schemas of
# the same database, never wait. Taken in client order, so two such commits cannot deadlock.
_CLIENT_CHECK = """\
        PERFORM pg_advisory_xact_lock(
            hashtextextended('{schema}' || E'\\x1f' || p_practice || E'\\x1f' || c, 7))
        FROM (SELECT DISTINCT c FROM (
                  SELECT {clients}[i] AS c FROM generate_subscripts(p_packs, 1) AS i
                  WHERE p_expected[i] = 0
                  UNION SELECT unnest(c_clients)) AS named
              ORDER BY c) AS locked;
        FOR i IN 1 .. coalesce(array_length(c_clients, 1), 0) LOOP
            SELECT count(*) INTO counted FROM {schema}.packs
            WHERE practice_id = p_practice AND client_id = c_clients[i];
            IF counted <> c_counts[i] THEN
                RAISE EXCEPTION 'has % pack(s), not the % the decision was made on (R13a)',
                    counted, c_counts[i]
                    USING ERRCODE = 'serialization_failure', COLUMN = 'client_id',
                          DETAIL = c_clients[i];
            END IF;
        END LOOP;
"""

# R27: the idempotency record, written last with the position before the first event.
_COMMAND_RECORD = """        IF k_key IS NOT NULL THEN
            INSERT INTO {schema}.commands (practice_id, key, fingerprint, result, first_position)
            VALUES (p_practice, k_key, k_fingerprint, k_result, base)
            ON CONFLICT (practice_id, key) DO NOTHING;
            GET DIAGNOSTICS written = ROW_COUNT;
            IF written = 0 THEN
                RAISE EXCEPTION 'was recorded by a concurrent command (R27)'
                    USING ERRCODE = 'unique_violation', COLUMN = 'idempotency_key',
                          DETAIL = k_key;
            END IF;
        END IF;
"""


def _function(
    create: str, parameters: Sequence[tuple[str, str]], body: str, clients: str | None
) -> str:
    """One version of ``commit_changes``: its arguments, the client check, ``body`` and the
    command record; ``clients`` names the argument holding each pack's client (``None``:
    version 1, which has neither the check nor the record)."""
    check = "" if clients is None else _CLIENT_CHECK.replace("{clients}", clients)
    arguments = ",\n        ".join(f"{name} {kind}" for name, kind in parameters)
    return (
        f"""{create} {{schema}}.commit_changes(
        {arguments}
    ) RETURNS bigint LANGUAGE plpgsql AS $body$
    DECLARE
        written integer;
        current_version integer;
        holder text;
        counted bigint;
        base bigint := 0;
    BEGIN
"""
        + check
        + body
        + _OTHER_WRITES
        + ("" if clients is None else _COMMAND_RECORD)
        + """        RETURN base;
    END
    $body$"""
    )


# Versions 1 and 2 name the projection columns' arguments their own way.
_V1_COLUMNS = (
    ("client_id", "p_clients"),
    ("version", "p_versions"),
    ("state", "p_states"),
    ("expiry_date", "p_expiry_dates"),
    ("ended", "p_ended"),
    ("remaining_units", "p_remaining"),
    ("expired_on", "p_expired_on"),
)
_V1_ARGUMENTS = (
    ("p_practice", "text"),
    ("p_packs", "text[]"),
    ("p_expected", "integer[]"),
    ("p_versions", "integer[]"),
    ("p_clients", "text[]"),
    ("p_states", "text[]"),
    ("p_expiry_dates", "date[]"),
    ("p_ended", "boolean[]"),
    ("p_remaining", "bigint[]"),
    ("p_expired_on", "date[]"),
    ("e_packs", "text[]"),
    ("e_sequences", "integer[]"),
    ("e_kinds", "text[]"),
    ("e_entries", "text[]"),
    ("u_released", "text[]"),
    ("u_appointments", "text[]"),
    ("u_packs", "text[]"),
    ("v_ids", "text[]"),
    ("v_packs", "text[]"),
    ("v_kinds", "text[]"),
    ("v_events", "text[]"),
)
_V2_ARGUMENTS = (
    *_V1_ARGUMENTS,
    ("c_clients", "text[]"),
    ("c_counts", "bigint[]"),
    ("k_key", "text"),
    ("k_fingerprint", "text"),
    ("k_result", "text"),
)


@attrs.frozen
class _Commit:
    """What one commit writes, in the order ``commit_changes`` takes it: packs by id."""

    practice_id: str
    packs: list[Change]
    columns: list[tuple[Any, ...]]  # each pack's projection
    entries: list[tuple[str, int, str, str]]
    released: list[str]
    used: dict[str, str]
    events: list[tuple[str, str, str, str]]
    client_packs: Mapping[str, int]
    command: CommandRecord | None


def _projected(index: int) -> Callable[[_Commit], list[Any]]:
    return lambda commit: [columns[index] for columns in commit.columns]


def _field(rows: str, index: int) -> Callable[[_Commit], list[Any]]:
    return lambda commit: [row[index] for row in getattr(commit, rows)]


def _kept(name: str) -> Callable[[_Commit], Any]:
    return lambda commit: None if commit.command is None else getattr(commit.command, name)


_PG = postgres("schema")  # for the type names only: they do not depend on the schema

# The arguments of commit_changes (version 3), their types and where each value comes from:
# the function's signature, the call (by name) and its values are all made from this list.
_ARGUMENTS: tuple[tuple[str, str, Callable[[_Commit], Any]], ...] = (
    ("p_practice", "text", lambda commit: commit.practice_id),
    ("p_packs", "text[]", lambda commit: [change.pack_id for change in commit.packs]),
    ("p_expected", "integer[]", lambda commit: [c.expected_version for c in commit.packs]),
    *(
        (f"p_{column}", _PG.render(kind) + "[]", _projected(index))
        for index, (column, kind) in enumerate(zip(PROJECTION, PROJECTION_TYPES, strict=True))
    ),
    ("e_packs", "text[]", _field("entries", 0)),
    ("e_sequences", "integer[]", _field("entries", 1)),
    ("e_kinds", "text[]", _field("entries", 2)),
    ("e_entries", "text[]", _field("entries", 3)),
    ("u_released", "text[]", lambda commit: commit.released),
    ("u_appointments", "text[]", lambda commit: sorted(commit.used)),
    ("u_packs", "text[]", lambda commit: [commit.used[a] for a in sorted(commit.used)]),
    ("v_ids", "text[]", _field("events", 0)),
    ("v_packs", "text[]", _field("events", 1)),
    ("v_kinds", "text[]", _field("events", 2)),
    ("v_events", "text[]", _field("events", 3)),
    ("c_clients", "text[]", lambda commit: sorted(commit.client_packs)),
    ("c_counts", "bigint[]", lambda c: [c.client_packs[k] for k in sorted(c.client_packs)]),
    ("k_key", "text", _kept("key")),
    ("k_fingerprint", "text", _kept("fingerprint")),
    ("k_result", "text", _kept("result")),
)

_V1_FUNCTION = _function("CREATE FUNCTION", _V1_ARGUMENTS, _pack_writes(_V1_COLUMNS), None)
_V2_FUNCTION = _function("CREATE FUNCTION", _V2_ARGUMENTS, _pack_writes(_V1_COLUMNS), "p_clients")
# From version 3 the earlier functions write pending_expiry too, as their expiry date: no later
# than the pending one, so the expiry query finds their packs and the definition decides.
_EARLIER = (*_V1_COLUMNS, ("pending_expiry", "p_expiry_dates"))
_COMMIT_FUNCTION = _function(
    "CREATE FUNCTION",
    [(name, kind) for name, kind, _ in _ARGUMENTS],
    _pack_writes([(column, f"p_{column}") for column in PROJECTION]),
    "p_client_id",
)
"""The commit function this release calls (schema version 3)."""


def _v1(session: Session) -> None:
    core_schema.V1(session)
    statements(_V1_FUNCTION)(session)


def _v2(session: Session) -> None:
    core_schema.V2(session)
    statements(_V2_FUNCTION)(session)


def _v3(session: Session) -> None:
    core_schema.V3(session)
    statements(
        _function("CREATE OR REPLACE FUNCTION", _V1_ARGUMENTS, _pack_writes(_EARLIER), None),
        _function("CREATE OR REPLACE FUNCTION", _V2_ARGUMENTS, _pack_writes(_EARLIER), "p_clients"),
        _COMMIT_FUNCTION,
    )(session)


MIGRATIONS: tuple[Migration, ...] = (_v1, _v2, _v3)
"""Schema steps in order: a schema at version N has had the first N applied."""


def _commit_call(schema: str) -> str:
    """``SELECT commit_changes(name => value, ...)``: each argument matched by its name; arrays
    go in binary (``%b``)."""
    named = (
        f"{name} => %({name}){'b' if kind.endswith('[]') else 's'}::{kind}"
        for name, kind, _ in _ARGUMENTS
    )
    return f"SELECT {schema}.commit_changes({', '.join(named)})"


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


class PostgresStore(SqlStore):
    """A PostgreSQL database holding any number of practices, through a connection pool.

    Opening creates or upgrades the tables in ``schema``. Safe to share between threads; each
    process opens its own store. Close it, or use it as a context manager.
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
    ) -> None:
        if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
            raise InvalidValueError(
                "schema", schema, "must be a lower-case SQL identifier of at most 63 characters"
            )
        for name, size in (("min_size", min_size), ("max_size", max_size)):
            if type(size) is not int or size < 1:
                raise InvalidValueError(name, size, "must be a whole number >= 1")
        if max_size < min_size:
            raise InvalidValueError("max_size", max_size, f"must be >= min_size ({min_size})")
        self._schema = schema
        self._max_size = max_size
        self._sql = Statements(postgres(schema))
        self.decoded = Decoded(4096)
        """Decoded states, shared by the store's repositories."""
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
                self._migrated_from = migrate(
                    _Session(connection, self._sql.dialect, "schema", schema),
                    lambda: self._upgrade(connection),
                    migrations,
                    f"schema {schema}",
                )
        except BaseException:
            self._pool.close()
            raise

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
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_MIGRATION_LOCK, self._schema)
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


class PostgresRepository(SqlRepository):
    """One practice's view of a :class:`PostgresStore`; every statement is scoped to it."""

    def __init__(self, store: PostgresStore, sql: Statements, practice: Practice) -> None:
        super().__init__(practice, sql, store.decoded)
        self._store = store
        self._call = _commit_call(store.schema).encode()

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

    # The commit --------------------------------------------------------------------------------

    def _commit(
        self,
        writing: list[Change],
        client_packs: Mapping[str, int],
        command: CommandRecord | None,
    ) -> tuple[RecordedEvent, ...]:
        commit = self._prepare(writing, client_packs, command)
        arguments = {name: value(commit) for name, _, value in _ARGUMENTS}
        first = writing[0].pack_id if writing else self._id
        with self._store.connection("pack_id" if writing else "practice_id", first) as connection:
            row = connection.execute(self._call, arguments).fetchone()
        for change, columns in zip(commit.packs, commit.columns, strict=True):
            self._decoded.remember(columns[PROJECTION.index("state")], change.after)
        base = 0 if row is None else int(row[0])
        events = [event for change in writing for event in change.events]
        return tuple(RecordedEvent(base + n, event) for n, event in enumerate(events, start=1))

    def _prepare(
        self, writing: list[Change], client_packs: Mapping[str, int], command: CommandRecord | None
    ) -> _Commit:
        """The commit's values, every id checked storable; packs sorted by id (the order their
        rows lock)."""
        used, released = appointment_changes(writing)
        for change in writing:
            self._text("pack_id", change.pack_id)
            self._text("client_id", change.after.client_id)
        for appointment_id in used.keys() | released:
            self._text("appointment_id", appointment_id)
        for client_id in client_packs:
            self._text("client_id", client_id)
        if command is not None:
            self._text("idempotency_key", command.key)
        packs = sorted(writing, key=lambda change: change.pack_id)
        return _Commit(
            practice_id=self._id,
            packs=packs,
            columns=[projection(self._sql.dialect, change.after) for change in packs],
            entries=[entry_row(entry) for change in writing for entry in change.entries],
            released=sorted(released),
            used=used,
            events=[event_row(event) for change in writing for event in change.events],
            client_packs=client_packs,
            command=command,
        )
