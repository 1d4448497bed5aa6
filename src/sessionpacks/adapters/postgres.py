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

Driver errors are judged in one place, :func:`_translated`: a uniqueness conflict, a
serialization failure or a deadlock is a :class:`~sessionpacks.errors.ConcurrencyError` (the
service layer retries), text PostgreSQL cannot hold is an
:class:`~sessionpacks.errors.InvalidValueError`, anything else a :class:`StoreError`.

JSON is stored as ``text``, not ``jsonb``: the codec writes ASCII-only JSON, which text keeps
byte for byte, whereas ``jsonb`` refuses ``\\u0000`` and lone surrogates that a Python string
(a reason, a name) may hold. Cast a column to ``jsonb`` to query it.
"""

from __future__ import annotations

import functools
import itertools
import re
import select
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from types import TracebackType
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg_pool import ConnectionPool, PoolTimeout

from sessionpacks._limits import check_id
from sessionpacks.adapters._codec import (
    dump_entry,
    dump_event,
    dump_preference,
    dump_state,
    dump_template,
    load_entry,
    load_event,
    load_preference,
    load_state,
    load_template,
)
from sessionpacks.adapters._common import (
    appointment_changes,
    check_distinct,
    check_window,
    command_conflict,
    with_statuses,
)
from sessionpacks.errors import (
    ConcurrencyError,
    ConnectionLostError,
    InvalidValueError,
    NotFoundError,
    SessionPacksError,
    StoreError,
)
from sessionpacks.events import Event, RecordedEvent
from sessionpacks.ledger import Entry, PackState, PackStatus, replay
from sessionpacks.model import PackTemplate, Practice, Preference
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
Migration = Callable[[Connection, str], None]
"""One schema step, given a connection inside the upgrade's transaction and the schema name."""

# pg_advisory_xact_lock(classid, objid): classid says "sessionpacks schema upgrade", objid is
# hashtext(schema), so upgrades of different schemas do not wait for each other.
_MIGRATION_LOCK = 0x5E5510
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def statements(*sql: str) -> Migration:
    """A migration running ``sql`` in order; ``{schema}`` in a statement names the schema."""

    def run(connection: Connection, schema: str) -> None:
        for statement in sql:
            connection.execute(statement.format(schema=schema).encode())

    return run


# The whole commit in one statement, so in one round trip and one implicit transaction. Pack
# rows are written in the order given (the caller sorts them by id), the counter row last: no
# deadlock between commits. A conflict raises with the field in COLUMN and the value in DETAIL.
# What both versions of the function write: packs, entries, active usages, events.
_COMMIT_WRITES = """        FOR i IN 1 .. coalesce(array_length(p_packs, 1), 0) LOOP
            IF p_expected[i] = 0 THEN
                INSERT INTO {schema}.packs (practice_id, pack_id, client_id, version, state,
                                            expiry_date, ended, remaining_units, expired_on)
                VALUES (p_practice, p_packs[i], p_clients[i], p_versions[i], p_states[i],
                        p_expiry_dates[i], p_ended[i], p_remaining[i], p_expired_on[i])
                ON CONFLICT (practice_id, pack_id) DO NOTHING;
            ELSE
                UPDATE {schema}.packs SET client_id = p_clients[i], version = p_versions[i],
                    state = p_states[i], expiry_date = p_expiry_dates[i], ended = p_ended[i],
                    remaining_units = p_remaining[i], expired_on = p_expired_on[i]
                WHERE practice_id = p_practice AND pack_id = p_packs[i]
                  AND version = p_expected[i];
            END IF;
            GET DIAGNOSTICS written = ROW_COUNT;
            IF written = 0 THEN
                SELECT version INTO current_version FROM {schema}.packs
                WHERE practice_id = p_practice AND pack_id = p_packs[i];
                RAISE EXCEPTION 'is at version %, not %', coalesce(current_version, 0),
                    p_expected[i]
                    USING ERRCODE = 'serialization_failure', COLUMN = 'pack_id',
                          DETAIL = p_packs[i];
            END IF;
        END LOOP;
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

_COMMIT_FUNCTION = (
    """CREATE FUNCTION {schema}.commit_changes(
        p_practice text,
        p_packs text[], p_expected integer[], p_versions integer[], p_clients text[],
        p_states text[], p_expiry_dates date[], p_ended boolean[], p_remaining bigint[],
        p_expired_on date[],
        e_packs text[], e_sequences integer[], e_kinds text[], e_entries text[],
        u_released text[], u_appointments text[], u_packs text[],
        v_ids text[], v_packs text[], v_kinds text[], v_events text[]
    ) RETURNS bigint LANGUAGE plpgsql AS $body$
    DECLARE
        written integer;
        current_version integer;
        holder text;
        base bigint := 0;
    BEGIN
"""
    + _COMMIT_WRITES
    + """        RETURN base;
    END
    $body$"""
)

# V2: the client check (R13a) comes first and the idempotency record (R27) last, in the same
# one call; the writes between are version 1's.
_COMMIT_FUNCTION_V2 = (
    """CREATE FUNCTION {schema}.commit_changes(
        p_practice text,
        p_packs text[], p_expected integer[], p_versions integer[], p_clients text[],
        p_states text[], p_expiry_dates date[], p_ended boolean[], p_remaining bigint[],
        p_expired_on date[],
        e_packs text[], e_sequences integer[], e_kinds text[], e_entries text[],
        u_released text[], u_appointments text[], u_packs text[],
        v_ids text[], v_packs text[], v_kinds text[], v_events text[],
        c_clients text[], c_counts bigint[],
        k_key text, k_fingerprint text, k_result text
    ) RETURNS bigint LANGUAGE plpgsql AS $body$
    DECLARE
        written integer;
        current_version integer;
        holder text;
        counted bigint;
        base bigint := 0;
    BEGIN
        -- R13a: a commit opening a pack for a client, or deciding on a client's packs, holds
        -- that client's advisory lock until it ends, so the next one counts after it. Keyed
        -- by schema, practice and client (ids hold no control characters): other clients,
        -- and other schemas of the same database, never wait.
        -- Taken in client order, so two such commits cannot deadlock.
        PERFORM pg_advisory_xact_lock(
            hashtextextended('{schema}' || E'\x1f' || p_practice || E'\x1f' || c, 7))
        FROM (SELECT DISTINCT c FROM (
                  SELECT p_clients[i] AS c FROM generate_subscripts(p_packs, 1) AS i
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
    + _COMMIT_WRITES
    + """        IF k_key IS NOT NULL THEN
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
        RETURN base;
    END
    $body$"""
)


_V1 = statements(
    """CREATE TABLE {schema}.practices (
        practice_id text PRIMARY KEY,
        timezone text NOT NULL,
        last_position bigint NOT NULL DEFAULT 0 CHECK (last_position >= 0)
    )""",
    # "opened" is the order packs were opened in: client_packs() lists them so.
    """CREATE TABLE {schema}.packs (
        practice_id text NOT NULL REFERENCES {schema}.practices,
        pack_id text NOT NULL,
        opened bigint GENERATED ALWAYS AS IDENTITY,
        client_id text NOT NULL,
        version integer NOT NULL CHECK (version >= 1),
        state text NOT NULL,
        expiry_date date,
        ended boolean NOT NULL,
        remaining_units bigint NOT NULL,
        expired_on date,
        PRIMARY KEY (practice_id, pack_id)
    )""",
    "CREATE INDEX packs_by_client ON {schema}.packs (practice_id, client_id, opened)",
    """CREATE INDEX packs_expiring ON {schema}.packs (practice_id, expiry_date)
        WHERE NOT ended AND remaining_units > 0""",
    """CREATE TABLE {schema}.entries (
        practice_id text NOT NULL,
        pack_id text NOT NULL,
        sequence integer NOT NULL CHECK (sequence >= 1),
        kind text NOT NULL,
        entry text NOT NULL,
        PRIMARY KEY (practice_id, pack_id, sequence),
        FOREIGN KEY (practice_id, pack_id) REFERENCES {schema}.packs
    )""",
    """CREATE TABLE {schema}.events (
        practice_id text NOT NULL REFERENCES {schema}.practices,
        position bigint NOT NULL CHECK (position >= 1),
        event_id text NOT NULL,
        pack_id text NOT NULL,
        kind text NOT NULL,
        event text NOT NULL,
        PRIMARY KEY (practice_id, position),
        UNIQUE (practice_id, event_id)
    )""",
    """CREATE TABLE {schema}.active_usages (
        practice_id text NOT NULL,
        appointment_id text NOT NULL,
        pack_id text NOT NULL,
        PRIMARY KEY (practice_id, appointment_id),
        FOREIGN KEY (practice_id, pack_id) REFERENCES {schema}.packs
    )""",
    # "saved" orders templates() by when each id was first saved, like the reference store.
    """CREATE TABLE {schema}.templates (
        practice_id text NOT NULL REFERENCES {schema}.practices,
        template_id text NOT NULL,
        version integer NOT NULL CHECK (version >= 1),
        saved bigint GENERATED ALWAYS AS IDENTITY,
        template text NOT NULL,
        PRIMARY KEY (practice_id, template_id, version)
    )""",
    """CREATE TABLE {schema}.preferences (
        practice_id text NOT NULL REFERENCES {schema}.practices,
        client_id text NOT NULL,
        preference text NOT NULL,
        PRIMARY KEY (practice_id, client_id)
    )""",
    _COMMIT_FUNCTION,
)

_COMMANDS = statements(
    """CREATE TABLE {schema}.commands (
        practice_id text NOT NULL REFERENCES {schema}.practices,
        key text NOT NULL,
        fingerprint text NOT NULL,
        result text NOT NULL,
        first_position bigint NOT NULL,
        PRIMARY KEY (practice_id, key)
    )""",
    # The version 1 function stays beside it (PostgreSQL tells them apart by their arguments),
    # so processes of the earlier release keep working while a rolling upgrade goes on.
    _COMMIT_FUNCTION_V2,
)


def refold_states(connection: Connection, schema: str) -> None:
    """Fold every ledger again and store the states: a state an earlier release kept lacks
    what this one tracks (events fired once per total, R12b; tier places, R7a). The ledgers,
    and so every figure they give, are untouched."""
    rows = connection.execute(
        f"""SELECT practice_id, pack_id, entry FROM {schema}.entries
            ORDER BY practice_id, pack_id, sequence""".encode()
    )
    update = f"""UPDATE {schema}.packs SET state = %s, expiry_date = %s, ended = %s,
                     remaining_units = %s, expired_on = %s
                 WHERE practice_id = %s AND pack_id = %s""".encode()
    folded = [
        (key, replay(load_entry(row[2]) for row in ledger))
        for key, ledger in itertools.groupby(rows.fetchall(), key=lambda row: (row[0], row[1]))
    ]
    for (practice_id, pack_id), state in folded:
        connection.execute(
            update,
            (
                dump_state(state),
                state.expiry_date,
                state.ended,
                state.remaining_units,
                state.expired_on,
                practice_id,
                pack_id,
            ),
        )


def _v2(connection: Connection, schema: str) -> None:
    _COMMANDS(connection, schema)
    refold_states(connection, schema)


MIGRATIONS: tuple[Migration, ...] = (_V1, _v2)
"""Schema steps in order: a schema at version N has had the first N applied."""

# What a uniqueness conflict on each constraint means, for ConcurrencyError's field.
_CONFLICTS = {
    "packs_pkey": "pack_id",
    "entries_pkey": "pack_id",
    "active_usages_pkey": "appointment_id",
    "templates_pkey": "template.version",
    "events_pkey": "position",
    "events_practice_id_event_id_key": "event_id",
    "practices_pkey": "practice_id",
    "commands_pkey": "idempotency_key",
}
_RACES = (
    pgerrors.UniqueViolation,
    pgerrors.SerializationFailure,
    pgerrors.DeadlockDetected,
    pgerrors.LockNotAvailable,
)


@contextmanager
def _translated(field: str = "database", value: Any = None) -> Iterator[None]:
    """Turn driver errors into the library's: the one place they are judged. ``field`` and
    ``value`` name what the statement was about, for errors that do not say it themselves."""
    try:
        yield
    except SessionPacksError:
        raise
    except _RACES as error:
        diag = error.diag
        if diag.column_name is not None:  # raised by commit_changes: field, value, message
            raise ConcurrencyError(
                diag.column_name, diag.message_detail, diag.message_primary or ""
            ) from error
        field = _CONFLICTS.get(diag.constraint_name or "", diag.table_name or field)
        raise ConcurrencyError(
            field, diag.message_detail, f"conflicts with a concurrent write ({error.sqlstate})"
        ) from error
    except (psycopg.DataError, UnicodeEncodeError) as error:
        raise InvalidValueError(
            field, value, f"PostgreSQL cannot store it: {_first_line(error)}"
        ) from error
    except psycopg.Error as error:
        if _lost(error):
            # The server went away (a restart, a killed backend, the network): a write may or
            # may not have been committed before it did.
            raise ConnectionLostError(
                field, value, f"the connection to PostgreSQL was lost: {_first_line(error)}"
            ) from error
        raise StoreError(field, value, f"PostgreSQL failed: {_first_line(error)}") from error
    except PoolTimeout as error:
        raise StoreError(field, value, f"PostgreSQL failed: {_first_line(error)}") from error


# SQLSTATEs after which the server may or may not have committed: class 08 (connection
# exceptions) and the server shutting the session down (57P01-57P03). A statement timeout or a
# cancel (57014) rolled its transaction back: that outcome is known, so it is no lost connection.
_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})


def _lost(error: psycopg.Error) -> bool:
    state = error.sqlstate
    if state is None:  # no answer from the server at all: the connection broke
        return isinstance(error, psycopg.OperationalError)
    return state.startswith("08") or state in _LOST_STATES


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


def _first_line(error: BaseException) -> str:
    """The driver's message without its DETAIL, HINT and CONTEXT lines."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# Decoding is a pure function of the stored text and its results are immutable: a workflow that
# reads the same pack twice (client_packs, then load) or every template on each booking decodes
# each version once. Keyed by the text itself, so a new version is a new key.
_state = functools.lru_cache(maxsize=1024)(load_state)
_template = functools.lru_cache(maxsize=1024)(load_template)
_preference = functools.lru_cache(maxsize=1024)(load_preference)


def _storable(field: str, value: str) -> str:
    """``value`` if PostgreSQL text can hold it: a string without NUL or lone surrogates."""
    if not isinstance(value, str):
        raise InvalidValueError(field, value, "must be a string")
    if "\x00" in value or (not value.isascii() and not _encodes(value)):
        raise InvalidValueError(field, value, "PostgreSQL text cannot hold NUL or lone surrogates")
    return value


def _encodes(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _migrate(connection: Connection, schema: str, migrations: Sequence[Migration]) -> int:
    """Bring ``schema`` to ``len(migrations)``; returns the version it found (under the lock).

    An advisory lock serialises concurrent first opens: the second waits, then finds the
    schema up to date.
    """
    known = len(migrations)
    before = _schema_version(connection, schema)
    _refuse_newer(before, known, schema)
    if before == known:
        return before
    with connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_MIGRATION_LOCK, schema)
        )
        if not _exists(connection, "SELECT 1 FROM pg_namespace WHERE nspname = %s", schema):
            connection.execute(f"CREATE SCHEMA {schema}".encode())
        connection.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_version (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now())""".encode()
        )
        current = _schema_version(connection, schema)
        _refuse_newer(current, known, schema)
        for number in range(current + 1, known + 1):
            migrations[number - 1](connection, schema)
            connection.execute(
                f"INSERT INTO {schema}.schema_version (version) VALUES (%s)".encode(), (number,)
            )
    return current


def _exists(connection: Connection, sql: str, *params: Any) -> bool:
    return connection.execute(sql.encode(), params).fetchone() is not None


def _schema_version(connection: Connection, schema: str) -> int:
    found = connection.execute("SELECT to_regclass(%s)", (f"{schema}.schema_version",)).fetchone()
    if found is None or found[0] is None:
        return 0
    row = connection.execute(
        f"SELECT coalesce(max(version), 0) FROM {schema}.schema_version".encode()
    ).fetchone()
    return int(row[0]) if row else 0


def _refuse_newer(version: int, known: int, schema: str) -> None:
    if version > known:
        raise StoreError(
            "schema_version",
            version,
            f"schema {schema} was written by a newer release of sessionpacks (version "
            f"{version}); this one knows versions up to {known}: upgrade sessionpacks",
        )


class PostgresStore:
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
        self._sql = _Sql(schema)
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
            with _translated():
                self._pool.open()
            with self.connection() as connection:
                self._migrated_from = _migrate(connection, schema, migrations)
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
        with _translated(field, value):
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

    def read(self, sql: bytes, params: Sequence[Any], field: str, value: Any) -> list[Any]:
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
        check_id("practice_id", practice_id)
        _storable("practice_id", practice_id)
        with self.connection() as connection:
            stored = self._timezone(connection, practice_id)
            if stored is None:
                if timezone is None:
                    raise NotFoundError(
                        "practice_id", practice_id, "is a new practice: give its timezone"
                    )
                Practice(practice_id, timezone)  # refuses a bad id or zone before writing
                connection.execute(self._sql.add_practice, (practice_id, timezone))
                stored = self._timezone(connection, practice_id)
                assert stored is not None
        return PostgresRepository(self, self._sql, Practice(practice_id, stored))

    def _timezone(self, connection: Connection, practice_id: str) -> str | None:
        row = connection.execute(self._sql.timezone, (practice_id,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Close the pool; the store and its repositories are unusable afterwards."""
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _Sql:
    """Every statement, with the schema written in once (it is a checked identifier)."""

    def __init__(self, schema: str) -> None:
        s = schema
        self.add_practice = _q(
            f"""INSERT INTO {s}.practices (practice_id, timezone) VALUES (%s, %s)
                ON CONFLICT (practice_id) DO NOTHING"""
        )
        self.timezone = _q(f"SELECT timezone FROM {s}.practices WHERE practice_id = %s")
        self.load = _q(f"SELECT state FROM {s}.packs WHERE practice_id = %s AND pack_id = %s")
        self.version = _q(f"SELECT version FROM {s}.packs WHERE practice_id = %s AND pack_id = %s")
        self.ledger = _q(
            f"""SELECT entry FROM {s}.entries WHERE practice_id = %s AND pack_id = %s
                ORDER BY sequence"""
        )
        self.client_packs = _q(
            f"""SELECT state FROM {s}.packs WHERE practice_id = %s AND client_id = %s
                ORDER BY opened"""
        )
        self.holder = _q(
            f"""SELECT pack_id FROM {s}.active_usages
                WHERE practice_id = %s AND appointment_id = %s"""
        )
        # The WHERE repeats the partial index's condition so the planner can use it.
        self.expiry_candidates = _q(
            f"""SELECT state FROM {s}.packs
                WHERE practice_id = %s AND NOT ended AND remaining_units > 0
                  AND expiry_date <= %s AND expired_on IS DISTINCT FROM expiry_date
                ORDER BY opened"""
        )
        self.events_since = _q(
            f"""SELECT position, event FROM {s}.events WHERE practice_id = %s AND position > %s
                ORDER BY position LIMIT %s"""
        )
        # Named arguments: each array is matched by name, not by its place among 26.
        self.commit = _q(
            f"SELECT {s}.commit_changes("
            + ", ".join(_placeholder(name, cast) for name, cast in _COMMIT_PARAMETERS)
            + ")"
        )
        self.record_command = _q(
            f"""INSERT INTO {s}.commands (practice_id, key, fingerprint, result, first_position)
                VALUES (%s, %s, %s, %s, 0) ON CONFLICT (practice_id, key) DO NOTHING"""
        )
        self.command = _q(
            f"""SELECT key, fingerprint, result, first_position FROM {s}.commands
                WHERE practice_id = %s AND key = %s"""
        )
        self.latest_template_version = _q(
            f"""SELECT coalesce(max(version), 0) FROM {s}.templates
                WHERE practice_id = %s AND template_id = %s"""
        )
        self.save_template = _q(
            f"""INSERT INTO {s}.templates (practice_id, template_id, version, template)
                SELECT %(practice)s, %(id)s, %(version)s, %(template)s
                WHERE (SELECT coalesce(max(version), 0) FROM {s}.templates
                       WHERE practice_id = %(practice)s AND template_id = %(id)s)
                      = %(version)s - 1"""
        )
        self.latest_template = _q(
            f"""SELECT template FROM {s}.templates WHERE practice_id = %s AND template_id = %s
                ORDER BY version DESC LIMIT 1"""
        )
        self.template_version = _q(
            f"""SELECT template FROM {s}.templates
                WHERE practice_id = %s AND template_id = %s AND version = %s"""
        )
        self.templates = _q(
            f"""SELECT template FROM (
                    SELECT DISTINCT ON (template_id) template,
                           min(saved) OVER (PARTITION BY template_id) AS first
                    FROM {s}.templates WHERE practice_id = %s
                    ORDER BY template_id, version DESC) AS latest
                ORDER BY first"""
        )
        self.set_preference = _q(
            f"""INSERT INTO {s}.preferences (practice_id, client_id, preference)
                VALUES (%s, %s, %s)
                ON CONFLICT (practice_id, client_id) DO UPDATE
                SET preference = EXCLUDED.preference"""
        )
        self.clear_preference = _q(
            f"DELETE FROM {s}.preferences WHERE practice_id = %s AND client_id = %s"
        )
        self.preference = _q(
            f"SELECT preference FROM {s}.preferences WHERE practice_id = %s AND client_id = %s"
        )
        self.all_entries = _q(
            f"""SELECT pack_id, entry FROM {s}.entries WHERE practice_id = %s
                ORDER BY pack_id, sequence"""
        )
        self.all_states = _q(f"SELECT pack_id, state FROM {s}.packs WHERE practice_id = %s")
        self.all_active = _q(
            f"SELECT appointment_id, pack_id FROM {s}.active_usages WHERE practice_id = %s"
        )


def _q(sql: str) -> bytes:
    # psycopg takes a statement built at run time as bytes (its typed API wants a literal str).
    return sql.encode()


# The parameters of commit_changes (V2) and their casts; arrays go in binary (``%b``).
_COMMIT_PARAMETERS = (
    ("p_practice", "::text"),
    *(
        (name, f"::{kind}[]")
        for name, kind in (
            ("p_packs", "text"),
            ("p_expected", "integer"),
            ("p_versions", "integer"),
            ("p_clients", "text"),
            ("p_states", "text"),
            ("p_expiry_dates", "date"),
            ("p_ended", "boolean"),
            ("p_remaining", "bigint"),
            ("p_expired_on", "date"),
            ("e_packs", "text"),
            ("e_sequences", "integer"),
            ("e_kinds", "text"),
            ("e_entries", "text"),
            ("u_released", "text"),
            ("u_appointments", "text"),
            ("u_packs", "text"),
            ("v_ids", "text"),
            ("v_packs", "text"),
            ("v_kinds", "text"),
            ("v_events", "text"),
            ("c_clients", "text"),
            ("c_counts", "bigint"),
        )
    ),
    ("k_key", "::text"),
    ("k_fingerprint", "::text"),
    ("k_result", "::text"),
)


def _placeholder(name: str, cast: str) -> str:
    return f"{name} => %({name}){'b' if cast.endswith('[]') else 's'}{cast}"


def _commit_parameters(
    practice_id: str,
    writing: list[Change],
    used: dict[str, str],
    released: set[str],
    events: list[Event],
    client_packs: Mapping[str, int],
    command: CommandRecord | None,
) -> dict[str, Any]:
    """The arguments of ``commit_changes``: packs sorted by id (the order their rows lock)."""
    packs = sorted(writing, key=lambda change: change.pack_id)
    states = [change.after for change in packs]
    entries = [entry for change in writing for entry in change.entries]
    appointments = sorted(used)
    clients = sorted(client_packs)
    return {
        "p_practice": practice_id,
        "p_packs": [change.pack_id for change in packs],
        "p_expected": [change.expected_version for change in packs],
        "p_versions": [state.version for state in states],
        "p_clients": [state.client_id for state in states],
        "p_states": [dump_state(state) for state in states],
        "p_expiry_dates": [state.expiry_date for state in states],
        "p_ended": [state.ended for state in states],
        "p_remaining": [state.remaining_units for state in states],
        "p_expired_on": [state.expired_on for state in states],
        "e_packs": [entry.pack_id for entry in entries],
        "e_sequences": [entry.sequence for entry in entries],
        "e_kinds": [type(entry).__name__ for entry in entries],
        "e_entries": [dump_entry(entry) for entry in entries],
        "u_released": sorted(released),
        "u_appointments": appointments,
        "u_packs": [used[appointment_id] for appointment_id in appointments],
        "v_ids": [event.event_id for event in events],
        "v_packs": [event.pack_id for event in events],
        "v_kinds": [type(event).__name__ for event in events],
        "v_events": [dump_event(event) for event in events],
        "c_clients": clients,
        "c_counts": [client_packs[client_id] for client_id in clients],
        "k_key": None if command is None else command.key,
        "k_fingerprint": None if command is None else command.fingerprint,
        "k_result": None if command is None else command.result,
    }


class PostgresRepository:
    """One practice's view of a :class:`PostgresStore`; every statement is scoped to it."""

    def __init__(self, store: PostgresStore, sql: _Sql, practice: Practice) -> None:
        self._store = store
        self._sql = sql
        self._practice = practice
        self._id = practice.id

    @property
    def practice(self) -> Practice:
        return self._practice

    def _rows(self, field: str, sql: bytes, *params: Any) -> list[tuple[Any, ...]]:
        """A read of this practice's rows; ``field`` names its first parameter, for errors."""
        value = params[0] if params else self._id
        return self._store.read(sql, (self._id, *params), field, value)

    # Reading -------------------------------------------------------------------------------

    def load(self, pack_id: str) -> PackState:
        rows = self._rows("pack_id", self._sql.load, _storable("pack_id", pack_id))
        if not rows:
            raise NotFoundError("pack_id", pack_id, "no such pack in this practice")
        return _state(rows[0][0])

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        rows = self._rows("pack_id", self._sql.ledger, _storable("pack_id", pack_id))
        if not rows:
            raise NotFoundError("pack_id", pack_id, "no such pack in this practice")
        return tuple(load_entry(row[0]) for row in rows)

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
    ) -> list[PackState]:
        rows = self._rows("client_id", self._sql.client_packs, _storable("client_id", client_id))
        return with_statuses((_state(row[0]) for row in rows), statuses, as_of)

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        rows = self._rows(
            "appointment_id", self._sql.holder, _storable("appointment_id", appointment_id)
        )
        return str(rows[0][0]) if rows else None

    def expiry_candidates(self, as_of: date) -> list[PackState]:
        if type(as_of) is not date:
            raise InvalidValueError("as_of", as_of, "must be a date")
        return [_state(row[0]) for row in self._rows("as_of", self._sql.expiry_candidates, as_of)]

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        check_window(position, limit)
        rows = self._rows("position", self._sql.events_since, position, limit)
        return [RecordedEvent(row[0], load_event(row[1])) for row in rows]

    # Writing -------------------------------------------------------------------------------

    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        writing = check_distinct(changes)
        if not writing and command is None:
            return ()
        used, released = appointment_changes(writing)
        for change in writing:
            _storable("pack_id", change.pack_id)
            _storable("client_id", change.after.client_id)
        for appointment_id in used.keys() | released:
            _storable("appointment_id", appointment_id)
        for client_id in client_packs or {}:
            _storable("client_id", client_id)
        events = [event for change in writing for event in change.events]
        parameters = _commit_parameters(
            self._id, writing, used, released, events, client_packs or {}, command
        )
        first = writing[0].pack_id if writing else self._id
        with self._store.connection("pack_id" if writing else "practice_id", first) as connection:
            row = connection.execute(self._sql.commit, parameters).fetchone()
        base = 0 if row is None else int(row[0])
        return tuple(RecordedEvent(base + n, event) for n, event in enumerate(events, start=1))

    # Templates and preferences -------------------------------------------------------------

    def command(self, key: str) -> CommandRecord | None:
        rows = self._rows("idempotency_key", self._sql.command, _storable("idempotency_key", key))
        return CommandRecord(*rows[0]) if rows else None

    def _record(self, connection: Connection, command: CommandRecord | None) -> None:
        if command is None:
            return
        recorded = connection.execute(
            self._sql.record_command,
            (
                self._id,
                _storable("idempotency_key", command.key),
                command.fingerprint,
                command.result,
            ),
        )
        if recorded.rowcount != 1:
            raise command_conflict(command.key)

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        if not isinstance(template, PackTemplate):
            raise InvalidValueError("template", template, "must be a PackTemplate")
        _storable("template.id", template.id)
        with (
            self._store.connection("template.id", template.id) as connection,
            connection.transaction(),
        ):
            self._record(connection, command)
            # Conditional on the latest version; two writers of one version: the primary key.
            saved = connection.execute(
                self._sql.save_template,
                {
                    "practice": self._id,
                    "id": template.id,
                    "version": template.version,
                    "template": dump_template(template),
                },
            )
            if saved.rowcount != 1:
                row = connection.execute(
                    self._sql.latest_template_version, (self._id, template.id)
                ).fetchone()
                raise ConcurrencyError(
                    "template.version",
                    template.version,
                    f"template {template.id} is at version {row[0] if row else 0}",
                )

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        _storable("template_id", template_id)
        if version is None:
            rows = self._rows("template_id", self._sql.latest_template, template_id)
        else:
            rows = self._rows("version", self._sql.template_version, template_id, version)
        if rows:
            return _template(rows[0][0])
        if version is not None and self._rows(
            "template_id", self._sql.latest_template, template_id
        ):
            raise NotFoundError("version", version, f"template {template_id} has no such version")
        raise NotFoundError("template_id", template_id, "no such template in this practice")

    def templates(self) -> list[PackTemplate]:
        return [_template(row[0]) for row in self._rows("practice_id", self._sql.templates)]

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        _storable("client_id", client_id)
        with self._store.connection("client_id", client_id) as connection, connection.transaction():
            self._record(connection, command)
            if preference is None:
                connection.execute(self._sql.clear_preference, (self._id, client_id))
            else:
                connection.execute(
                    self._sql.set_preference, (self._id, client_id, dump_preference(preference))
                )

    def preference(self, client_id: str) -> Preference | None:
        rows = self._rows("client_id", self._sql.preference, _storable("client_id", client_id))
        return _preference(rows[0][0]) if rows else None

    # The folded state is derived: it can always be checked against the ledger --------------

    def check_snapshots(self) -> list[str]:
        """Pack ids whose stored state or active usages differ from the replay of their ledger
        (a state without a ledger counts too); empty when the store is sound. Reads in one
        REPEATABLE READ transaction, so concurrent commits do not show as differences."""
        with (
            self._store.connection("practice_id", self._id) as connection,
            connection.transaction(),
        ):
            connection.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            entries = connection.execute(self._sql.all_entries, (self._id,)).fetchall()
            states = connection.execute(self._sql.all_states, (self._id,)).fetchall()
            active = connection.execute(self._sql.all_active, (self._id,)).fetchall()
        ledgers: dict[str, list[Entry]] = {}
        for pack_id, entry in entries:
            ledgers.setdefault(pack_id, []).append(load_entry(entry))
        replayed = {pack_id: replay(ledger) for pack_id, ledger in ledgers.items()}
        stored = {pack_id: load_state(state) for pack_id, state in states}
        differing = {p for p in stored.keys() | replayed.keys() if stored.get(p) != replayed.get(p)}
        expected = {u.appointment.id: s.pack_id for s in replayed.values() for u in s.usages}
        actual = dict(active)
        for appointment_id in expected.keys() | actual.keys():
            if expected.get(appointment_id) != actual.get(appointment_id):
                differing.update(
                    p for p in (expected.get(appointment_id), actual.get(appointment_id)) if p
                )
        return sorted(differing)
