"""The SQLite store: the embedded default, one file shared by threads and processes.

Standard library :mod:`sqlite3` only. Each thread gets its own connection to the file, in WAL
mode (readers never block the writer) with a busy timeout. A write is one ``BEGIN IMMEDIATE``
transaction: the ledger entries, the folded state beside them (``packs``), the active usages
(R6) and the events (a transactional outbox) commit together or not at all.

Guarantees rest on constraints, not on reading first: a pack's row is updated only ``WHERE
version = expected`` and its entries have ``PRIMARY KEY (practice_id, pack_id, sequence)``; an
appointment is active on one pack at a time by ``PRIMARY KEY (practice_id, appointment_id)``;
event positions are unique per practice. A conflict is a
:class:`~sessionpacks.errors.ConcurrencyError` and nothing is written.

The schema is versioned (``schema_version``): :data:`MIGRATIONS` is the ordered list of steps,
applied on open to a file made by an earlier release; a file made by a later release is refused.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "packs.db"
>>> with SqliteStore(path) as store:
...     repo = store.practice("clinic-1", timezone="Australia/Sydney")
...     repo.practice.timezone
'Australia/Sydney'
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from itertools import groupby
from types import TracebackType
from typing import Any

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
    client_conflict,
    command_conflict,
    with_statuses,
)
from sessionpacks.errors import (
    ConcurrencyError,
    InvalidValueError,
    NotFoundError,
    SessionPacksError,
    StoreError,
)
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import Entry, PackState, PackStatus, replay
from sessionpacks.model import PackTemplate, Practice, Preference
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord

__all__ = [
    "MIGRATIONS",
    "Migration",
    "SqliteRepository",
    "SqliteStore",
    "StoreError",
    "statements",
]

Migration = Callable[[sqlite3.Connection], None]
"""One schema step, run inside the upgrade's transaction (SQLite DDL is transactional)."""

_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# Only a uniqueness conflict is another writer's doing; a CHECK failure is a bug, not a race.
_CONFLICT_CODES = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


def statements(*sql: str) -> Migration:
    """A migration that runs ``sql`` statements in order."""

    def run(connection: sqlite3.Connection) -> None:
        for statement in sql:
            connection.execute(statement)

    return run


_V1 = statements(
    """CREATE TABLE practices (
        practice_id TEXT PRIMARY KEY,
        timezone TEXT NOT NULL,
        last_position INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
    # A rowid table on purpose: the rowid is the order packs were opened in (never deleted).
    """CREATE TABLE packs (
        practice_id TEXT NOT NULL,
        pack_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        state TEXT NOT NULL,
        expiry_date TEXT,
        ended INTEGER NOT NULL,
        remaining_units INTEGER NOT NULL,
        expired_on TEXT,
        UNIQUE (practice_id, pack_id)
    )""",
    "CREATE INDEX packs_by_client ON packs (practice_id, client_id)",
    """CREATE INDEX packs_expiring ON packs (practice_id, expiry_date)
        WHERE ended = 0 AND remaining_units > 0""",
    """CREATE TABLE entries (
        practice_id TEXT NOT NULL,
        pack_id TEXT NOT NULL,
        sequence INTEGER NOT NULL CHECK (sequence >= 1),
        kind TEXT NOT NULL,
        entry TEXT NOT NULL,
        PRIMARY KEY (practice_id, pack_id, sequence)
    ) WITHOUT ROWID""",
    """CREATE TABLE events (
        practice_id TEXT NOT NULL,
        position INTEGER NOT NULL CHECK (position >= 1),
        event_id TEXT NOT NULL,
        pack_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (practice_id, position),
        UNIQUE (practice_id, event_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE active_usages (
        practice_id TEXT NOT NULL,
        appointment_id TEXT NOT NULL,
        pack_id TEXT NOT NULL,
        PRIMARY KEY (practice_id, appointment_id)
    ) WITHOUT ROWID""",
    # A rowid table: templates() lists ids in the order first saved, like the reference store.
    """CREATE TABLE templates (
        practice_id TEXT NOT NULL,
        template_id TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        template TEXT NOT NULL,
        UNIQUE (practice_id, template_id, version)
    )""",
    """CREATE TABLE preferences (
        practice_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        preference TEXT NOT NULL,
        PRIMARY KEY (practice_id, client_id)
    ) WITHOUT ROWID""",
)

# R27: a command's idempotency key, its fingerprint and result, written with its changes.
_COMMANDS = statements(
    """CREATE TABLE commands (
        practice_id TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        result TEXT NOT NULL,
        first_position INTEGER NOT NULL,
        PRIMARY KEY (practice_id, key)
    ) WITHOUT ROWID""",
)


def refold_states(connection: sqlite3.Connection) -> None:
    """Fold every ledger again and store the states: a state an earlier release kept lacks
    what this one tracks (events fired once per total, R12b; tier places, R7a). The ledgers,
    and so every figure they give, are untouched."""
    cursor = connection.execute(
        "SELECT practice_id, pack_id, entry FROM entries ORDER BY practice_id, pack_id, sequence"
    )
    for (practice_id, pack_id), rows in groupby(cursor, key=lambda row: (row[0], row[1])):
        state = replay(load_entry(row[2]) for row in rows)
        connection.execute(
            """UPDATE packs SET state = ?, expiry_date = ?, ended = ?, remaining_units = ?,
                   expired_on = ?
               WHERE practice_id = ? AND pack_id = ?""",
            (*_derived_columns(state), practice_id, pack_id),
        )


def _derived_columns(state: PackState) -> tuple[Any, ...]:
    """The stored state and the columns the queries read from it, in the order the statements
    of this module name them."""
    return (
        dump_state(state),
        _iso(state.expiry_date),
        int(state.ended),
        state.remaining_units,
        _iso(state.expired_on),
    )


def _v2(connection: sqlite3.Connection) -> None:
    _COMMANDS(connection)
    refold_states(connection)


MIGRATIONS: tuple[Migration, ...] = (_V1, _v2)
"""Schema steps in order: a file at version N has had the first N applied."""


def _translate(
    error: sqlite3.Error, field: str, value: Any, conflict: str | None = None
) -> SessionPacksError:
    """The library's error for a driver error: the one place driver errors are judged.

    ``conflict`` says what a uniqueness conflict means for ``field``, if the caller knows.
    """
    name = getattr(error, "sqlite_errorname", "")
    code = getattr(error, "sqlite_errorcode", -1) & 0xFF
    if isinstance(error, sqlite3.IntegrityError) and name in _CONFLICT_CODES:
        return ConcurrencyError(
            field, value, conflict or f"conflicts with a concurrent write ({error})"
        )
    if code in _BUSY_CODES:
        # Not a ConcurrencyError: the service would retry it, and a command would wait a
        # multiple of busy_timeout. The timeout is the whole wait.
        return StoreError(field, value, f"the database stayed busy past the busy timeout ({error})")
    if isinstance(error, sqlite3.ProgrammingError) and "closed" in str(error):
        return StoreError(field, value, "the store is closed")
    return StoreError(field, value, f"SQLite failed: {error}")


def _execute(
    connection: sqlite3.Connection, sql: str, params: Sequence[Any], field: str, value: Any
) -> sqlite3.Cursor:
    """Run one statement; ``field`` and ``value`` name what it is about, for the error."""
    try:
        return connection.execute(sql, params)
    except sqlite3.Error as error:
        raise _translate(error, field, value) from error


def _execute_many(
    connection: sqlite3.Connection,
    sql: str,
    rows: Iterable[Sequence[Any]],
    field: str,
    value: Any,
) -> None:
    try:
        connection.executemany(sql, rows)
    except sqlite3.Error as error:
        raise _translate(error, field, value) from error


def _fetch(
    connection: sqlite3.Connection, sql: str, params: Sequence[Any], field: str, value: Any
) -> list[Any]:
    try:
        return connection.execute(sql, params).fetchall()
    except sqlite3.Error as error:
        raise _translate(error, field, value) from error


@contextmanager
def _transaction(connection: sqlite3.Connection, field: str, value: Any) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: takes the write lock first, so a write never fails
    half-way for want of an upgrade; anything raised rolls everything back."""
    _execute(connection, "BEGIN IMMEDIATE", (), field, value)
    try:
        yield
        _execute(connection, "COMMIT", (), field, value)
    except BaseException:
        # Some failures (a full disk, I/O) have already rolled the transaction back.
        with suppress(sqlite3.Error):
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        raise


@contextmanager
def _reading(connection: sqlite3.Connection, field: str, value: Any) -> Iterator[None]:
    """A read transaction: every statement in it sees the same snapshot of the file."""
    _execute(connection, "BEGIN DEFERRED", (), field, value)
    try:
        yield
    finally:
        with suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


class _Handle:
    """Holds a connection; weakly referenced so a finished thread's connection is closed."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection


class _States:
    """Decoded states by (practice, pack), each valid for the version it was decoded at.

    Decoding a state costs in proportion to its active usages; a pack's state at a version never
    changes (it is the fold of the ledger up to it), so a read whose row has the cached version
    skips decoding. Bounded, least recently used first out.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._states: OrderedDict[tuple[str, str], PackState] = OrderedDict()

    def decode(self, practice_id: str, pack_id: str, version: int, text: str) -> PackState:
        key = (practice_id, pack_id)
        with self._lock:
            cached = self._states.get(key)
            if cached is not None and cached.version == version:
                self._states.move_to_end(key)
                return cached
        state = load_state(text)
        self.remember(practice_id, [state])
        return state

    def remember(self, practice_id: str, states: Iterable[PackState]) -> None:
        with self._lock:
            for state in states:
                key = (practice_id, state.pack_id)
                known = self._states.get(key)
                # A slow reader must not put back a state older than a writer's newer one.
                if known is None or known.version <= state.version:
                    self._states[key] = state
                    self._states.move_to_end(key)
            while len(self._states) > self._size:
                self._states.popitem(last=False)

    def forget(self, practice_id: str) -> None:
        with self._lock:
            for key in [k for k in self._states if k[0] == practice_id]:
                del self._states[key]


class _Connections:
    """One connection per thread to one file, all closed by :meth:`close`.

    A forked child never uses (nor closes) a connection inherited from its parent, which SQLite
    forbids: it opens its own.
    """

    def __init__(self, path: str, busy_timeout: float, state_cache: int) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._inherited: list[_Handle] = []
        self.states = _States(state_cache)
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()

    def get(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # A fresh child: its lock may have been copied held. The parent's connections are
            # kept referenced so the child never closes them either.
            self._lock = threading.Lock()
            self._inherited.extend(self._handles)
            self._reset()
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None:
            handle = _Handle(self._connect())
            with self._lock:
                if self._closed:
                    handle.connection.close()
                    raise StoreError("path", self.path, "the store is closed")
                self._handles.add(handle)
            self._local.handle = handle
        return handle.connection

    def _connect(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: the module opens no transaction by itself; we do, explicitly.
            connection = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as error:
            raise _translate(error, "path", self.path) from error
        return connection

    def close(self) -> None:
        with self._lock:
            self._closed = True
            handles = list(self._handles)
        for handle in handles:
            handle.connection.close()


def _schema_version(connection: sqlite3.Connection, path: str) -> int:
    found = _fetch(
        connection,
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
        (),
        "path",
        path,
    )
    if not found:
        return 0
    row = _fetch(connection, "SELECT MAX(version) FROM schema_version", (), "path", path)
    return int(row[0][0] or 0)


def _refuse_newer(version: int, known: int, path: str) -> None:
    if version > known:
        raise StoreError(
            "schema_version",
            version,
            f"{path} was written by a newer release of sessionpacks (schema {version}); "
            f"this one knows schemas up to {known}: upgrade sessionpacks to open it",
        )


def _migrate(connection: sqlite3.Connection, path: str, migrations: Sequence[Migration]) -> int:
    """Bring the file to ``len(migrations)``; returns the version it was at."""
    known = len(migrations)
    before = _schema_version(connection, path)
    _refuse_newer(before, known, path)
    if before == known:
        return before
    with _transaction(connection, "path", path):
        # Re-read under the write lock: another process may have migrated meanwhile.
        _execute(
            connection,
            """CREATE TABLE IF NOT EXISTS schema_version (
                version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)""",
            (),
            "path",
            path,
        )
        current = _schema_version(connection, path)
        _refuse_newer(current, known, path)
        for number in range(current + 1, known + 1):
            try:
                migrations[number - 1](connection)
            except sqlite3.Error as error:
                raise _translate(error, "schema_version", number) from error
            _execute(
                connection,
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (number, datetime.now(UTC).isoformat()),
                "schema_version",
                number,
            )
    return before


def _set_wal(connection: sqlite3.Connection, path: str) -> None:
    rows = _fetch(connection, "PRAGMA journal_mode = WAL", (), "path", path)
    if rows[0][0].lower() != "wal":
        raise StoreError("path", path, f"cannot use WAL mode (journal mode is {rows[0][0]})")


class SqliteStore:
    """A SQLite file holding any number of practices; :meth:`practice` hands out a handle.

    Opening creates or upgrades the schema. Safe to share between threads (each gets its own
    connection) and between processes opening the same file. Close it, or use it as a context
    manager.

    ``busy_timeout``: seconds a write waits for another writer before it fails with a
    :class:`~sessionpacks.errors.StoreError` (not retried: it is the whole wait of one
    command). ``state_cache``: how many decoded pack states
    to keep (each is reused only while its version is the one stored; 0 keeps none).
    ``migrations``: the schema steps, for tests and tools; a file further along is refused.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 10.0,
        state_cache: int = 4096,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        text = os.fspath(path) if isinstance(path, str | os.PathLike) else None
        if not isinstance(text, str) or text in ("", ":memory:") or text.startswith("file:"):
            # Each thread opens its own connection: a private in-memory database would differ.
            raise InvalidValueError("path", path, "must be the path of a database file")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, int | float):
            raise InvalidValueError("busy_timeout", busy_timeout, "must be a number of seconds")
        if busy_timeout < 0:
            raise InvalidValueError("busy_timeout", busy_timeout, "must be >= 0 seconds")
        if type(state_cache) is not int or state_cache < 0:
            raise InvalidValueError("state_cache", state_cache, "must be a whole number >= 0")
        self._connections = _Connections(text, float(busy_timeout), state_cache)
        try:
            connection = self._connections.get()
            _set_wal(connection, text)
            _migrate(connection, text, migrations)
        except BaseException:
            self._connections.close()
            raise

    @property
    def path(self) -> str:
        return self._connections.path

    def practice(self, practice_id: str, timezone: str | None = None) -> SqliteRepository:
        """A repository bound to ``practice_id``; ``timezone`` is required the first time."""
        check_id("practice_id", practice_id)
        connection = self._connections.get()
        stored = self._timezone(connection, practice_id)
        if stored is None:
            if timezone is None:
                raise NotFoundError(
                    "practice_id", practice_id, "is a new practice: give its timezone"
                )
            Practice(practice_id, timezone)  # refuses a bad id or zone before writing
            with _transaction(connection, "practice_id", practice_id):
                _execute(
                    connection,
                    "INSERT INTO practices (practice_id, timezone) VALUES (?, ?)"
                    " ON CONFLICT (practice_id) DO NOTHING",
                    (practice_id, timezone),
                    "practice_id",
                    practice_id,
                )
            stored = self._timezone(connection, practice_id)
            assert stored is not None
        return SqliteRepository(self._connections, Practice(practice_id, stored))

    @staticmethod
    def _timezone(connection: sqlite3.Connection, practice_id: str) -> str | None:
        rows = _fetch(
            connection,
            "SELECT timezone FROM practices WHERE practice_id = ?",
            (practice_id,),
            "practice_id",
            practice_id,
        )
        return str(rows[0][0]) if rows else None

    def close(self) -> None:
        """Close every connection; the store and its repositories are unusable afterwards."""
        self._connections.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class SqliteRepository:
    """One practice's view of a :class:`SqliteStore`; every statement is scoped to it."""

    def __init__(self, connections: _Connections, practice: Practice) -> None:
        self._connections = connections
        self._practice = practice
        self._id = practice.id

    @property
    def practice(self) -> Practice:
        return self._practice

    def _fetch(self, sql: str, params: Sequence[Any], field: str, value: Any) -> list[Any]:
        return _fetch(self._connections.get(), sql, (self._id, *params), field, value)

    # Reading -------------------------------------------------------------------------------

    def load(self, pack_id: str) -> PackState:
        rows = self._fetch(
            "SELECT pack_id, version, state FROM packs WHERE practice_id = ? AND pack_id = ?",
            (pack_id,),
            "pack_id",
            pack_id,
        )
        if not rows:
            raise NotFoundError("pack_id", pack_id, "no such pack in this practice")
        return self._decode(rows[0])

    def _decode(self, row: Any) -> PackState:
        """A state from a row ``(pack_id, version, state)``."""
        return self._connections.states.decode(self._id, row[0], row[1], row[2])

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        rows = self._fetch(
            "SELECT entry FROM entries WHERE practice_id = ? AND pack_id = ? ORDER BY sequence",
            (pack_id,),
            "pack_id",
            pack_id,
        )
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
        rows = self._fetch(
            """SELECT pack_id, version, state FROM packs WHERE practice_id = ? AND client_id = ?
               ORDER BY rowid""",
            (client_id,),
            "client_id",
            client_id,
        )
        return with_statuses(map(self._decode, rows), statuses, as_of)

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        rows = self._fetch(
            "SELECT pack_id FROM active_usages WHERE practice_id = ? AND appointment_id = ?",
            (appointment_id,),
            "appointment_id",
            appointment_id,
        )
        return str(rows[0][0]) if rows else None

    def expiry_candidates(self, as_of: date) -> list[PackState]:
        if type(as_of) is not date:
            raise InvalidValueError("as_of", as_of, "must be a date")
        # The WHERE repeats the partial index's condition so the planner can use it.
        rows = self._fetch(
            """SELECT pack_id, version, state FROM packs
               WHERE practice_id = ? AND ended = 0 AND remaining_units > 0
                 AND expiry_date <= ? AND (expired_on IS NULL OR expired_on != expiry_date)
               ORDER BY rowid""",
            (as_of.isoformat(),),
            "as_of",
            as_of,
        )
        return [self._decode(row) for row in rows]

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        check_window(position, limit)
        rows = self._fetch(
            """SELECT position, event FROM events WHERE practice_id = ? AND position > ?
               ORDER BY position LIMIT ?""",
            (position, -1 if limit is None else limit),
            "position",
            position,
        )
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
        connection = self._connections.get()
        # BEGIN IMMEDIATE makes writers of the file take turns, so counting a client's packs
        # inside the transaction is race-free (R13a).
        with _transaction(connection, "practice_id", self._id):
            for client_id, seen in (client_packs or {}).items():
                self._check_client(connection, client_id, seen)
            for change in writing:
                self._write_pack(connection, change)
            self._move_usages(connection, used, released)
            recorded = self._append_events(connection, writing)
            first = recorded[0].position - 1 if recorded else 0
            self._record(connection, command, first)
        self._connections.states.remember(self._id, (c.after for c in writing))
        return recorded

    def _check_client(self, connection: sqlite3.Connection, client_id: str, seen: int) -> None:
        count = _fetch(
            connection,
            "SELECT count(*) FROM packs WHERE practice_id = ? AND client_id = ?",
            (self._id, client_id),
            "client_id",
            client_id,
        )[0][0]
        if count != seen:
            raise client_conflict(client_id, count, seen)

    def _record(
        self, connection: sqlite3.Connection, command: CommandRecord | None, first: int = 0
    ) -> None:
        if command is None:
            return
        try:
            connection.execute(
                """INSERT INTO commands (practice_id, key, fingerprint, result, first_position)
                   VALUES (?, ?, ?, ?, ?)""",
                (self._id, command.key, command.fingerprint, command.result, first),
            )
        except sqlite3.Error as error:
            conflict = command_conflict(command.key).reason
            raise _translate(error, "idempotency_key", command.key, conflict) from error

    def command(self, key: str) -> CommandRecord | None:
        rows = self._fetch(
            """SELECT key, fingerprint, result, first_position FROM commands
               WHERE practice_id = ? AND key = ?""",
            (key,),
            "idempotency_key",
            key,
        )
        return CommandRecord(*rows[0]) if rows else None

    def _write_pack(self, connection: sqlite3.Connection, change: Change) -> None:
        state = change.after
        columns = (
            state.client_id,
            state.version,
            dump_state(state),
            _iso(state.expiry_date),
            int(state.ended),
            state.remaining_units,
            _iso(state.expired_on),
        )
        if change.expected_version == 0:
            # A second opener of the same id fails on UNIQUE (practice_id, pack_id).
            _execute(
                connection,
                """INSERT INTO packs (practice_id, pack_id, client_id, version, state,
                       expiry_date, ended, remaining_units, expired_on)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (self._id, change.pack_id, *columns),
                "pack_id",
                change.pack_id,
            )
        else:
            updated = _execute(
                connection,
                """UPDATE packs SET client_id = ?, version = ?, state = ?, expiry_date = ?,
                       ended = ?, remaining_units = ?, expired_on = ?
                   WHERE practice_id = ? AND pack_id = ? AND version = ?""",
                (*columns, self._id, change.pack_id, change.expected_version),
                "pack_id",
                change.pack_id,
            )
            if updated.rowcount != 1:
                raise self._stale(connection, change)
        _execute_many(
            connection,
            """INSERT INTO entries (practice_id, pack_id, sequence, kind, entry)
               VALUES (?, ?, ?, ?, ?)""",
            [
                (self._id, e.pack_id, e.sequence, type(e).__name__, dump_entry(e))
                for e in change.entries
            ],
            "pack_id",
            change.pack_id,
        )

    def _stale(self, connection: sqlite3.Connection, change: Change) -> ConcurrencyError:
        rows = _fetch(
            connection,
            "SELECT version FROM packs WHERE practice_id = ? AND pack_id = ?",
            (self._id, change.pack_id),
            "pack_id",
            change.pack_id,
        )
        version = rows[0][0] if rows else 0
        return ConcurrencyError(
            "pack_id", change.pack_id, f"is at version {version}, not {change.expected_version}"
        )

    def _move_usages(
        self, connection: sqlite3.Connection, used: dict[str, str], released: set[str]
    ) -> None:
        """Releases first, so a move in one commit frees the appointment before it is taken."""
        for appointment_id in sorted(released):
            _execute(
                connection,
                "DELETE FROM active_usages WHERE practice_id = ? AND appointment_id = ?",
                (self._id, appointment_id),
                "appointment_id",
                appointment_id,
            )
        for appointment_id, pack_id in used.items():
            try:
                connection.execute(
                    """INSERT INTO active_usages (practice_id, appointment_id, pack_id)
                       VALUES (?, ?, ?)""",
                    (self._id, appointment_id, pack_id),
                )
            except sqlite3.Error as error:
                conflict = None
                if isinstance(error, sqlite3.IntegrityError):
                    conflict = f"is active on pack {self._holder(connection, appointment_id)} (R6)"
                raise _translate(error, "appointment_id", appointment_id, conflict) from error

    def _holder(self, connection: sqlite3.Connection, appointment_id: str) -> str:
        rows = _fetch(
            connection,
            "SELECT pack_id FROM active_usages WHERE practice_id = ? AND appointment_id = ?",
            (self._id, appointment_id),
            "appointment_id",
            appointment_id,
        )
        return str(rows[0][0]) if rows else "?"

    def _append_events(
        self, connection: sqlite3.Connection, writing: list[Change]
    ) -> tuple[RecordedEvent, ...]:
        events = [event for change in writing for event in change.events]
        if not events:
            return ()
        # The practice's counter row serialises positions: gap-free, one stream per practice.
        last = _execute(
            connection,
            """UPDATE practices SET last_position = last_position + ?
               WHERE practice_id = ? RETURNING last_position""",
            (len(events), self._id),
            "practice_id",
            self._id,
        ).fetchone()[0]
        recorded = tuple(
            RecordedEvent(position, event)
            for position, event in enumerate(events, start=last - len(events) + 1)
        )
        _execute_many(
            connection,
            """INSERT INTO events (practice_id, position, event_id, pack_id, kind, event)
               VALUES (?, ?, ?, ?, ?, ?)""",
            [
                (
                    self._id,
                    r.position,
                    r.event.event_id,
                    r.event.pack_id,
                    type(r.event).__name__,
                    dump_event(r.event),
                )
                for r in recorded
            ],
            "practice_id",
            self._id,
        )
        return recorded

    # Templates and preferences -------------------------------------------------------------

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        if not isinstance(template, PackTemplate):
            raise InvalidValueError("template", template, "must be a PackTemplate")
        connection = self._connections.get()
        with _transaction(connection, "template.id", template.id):
            self._record(connection, command)
            latest = (
                _fetch(
                    connection,
                    "SELECT MAX(version) FROM templates WHERE practice_id = ? AND template_id = ?",
                    (self._id, template.id),
                    "template.id",
                    template.id,
                )[0][0]
                or 0
            )
            if template.version != latest + 1:
                raise ConcurrencyError(
                    "template.version",
                    template.version,
                    f"template {template.id} is at version {latest}",
                )
            # UNIQUE (practice_id, template_id, version) refuses a second writer of a version.
            _execute(
                connection,
                """INSERT INTO templates (practice_id, template_id, version, template)
                   VALUES (?, ?, ?, ?)""",
                (self._id, template.id, template.version, dump_template(template)),
                "template.version",
                template.version,
            )

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        if version is None:
            rows = self._fetch(
                """SELECT template FROM templates WHERE practice_id = ? AND template_id = ?
                   ORDER BY version DESC LIMIT 1""",
                (template_id,),
                "template_id",
                template_id,
            )
        else:
            rows = self._fetch(
                """SELECT template FROM templates
                   WHERE practice_id = ? AND template_id = ? AND version = ?""",
                (template_id, version),
                "version",
                version,
            )
        if rows:
            return load_template(rows[0][0])
        if version is not None and self._fetch(
            "SELECT 1 FROM templates WHERE practice_id = ? AND template_id = ? LIMIT 1",
            (template_id,),
            "template_id",
            template_id,
        ):
            raise NotFoundError("version", version, f"template {template_id} has no such version")
        raise NotFoundError("template_id", template_id, "no such template in this practice")

    def templates(self) -> list[PackTemplate]:
        rows = self._fetch(
            """SELECT t.template FROM templates AS t
               JOIN (SELECT template_id, MAX(version) AS latest, MIN(rowid) AS first
                     FROM templates WHERE practice_id = ?1 GROUP BY template_id) AS h
                 ON t.template_id = h.template_id AND t.version = h.latest
               WHERE t.practice_id = ?1
               ORDER BY h.first""",
            (),
            "practice_id",
            self._id,
        )
        return [load_template(row[0]) for row in rows]

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        connection = self._connections.get()
        with _transaction(connection, "client_id", client_id):
            self._record(connection, command)
            if preference is None:
                _execute(
                    connection,
                    "DELETE FROM preferences WHERE practice_id = ? AND client_id = ?",
                    (self._id, client_id),
                    "client_id",
                    client_id,
                )
                return
            _execute(
                connection,
                """INSERT INTO preferences (practice_id, client_id, preference) VALUES (?, ?, ?)
                   ON CONFLICT (practice_id, client_id) DO UPDATE
                   SET preference = excluded.preference""",
                (self._id, client_id, dump_preference(preference)),
                "client_id",
                client_id,
            )

    def preference(self, client_id: str) -> Preference | None:
        rows = self._fetch(
            "SELECT preference FROM preferences WHERE practice_id = ? AND client_id = ?",
            (client_id,),
            "client_id",
            client_id,
        )
        return load_preference(rows[0][0]) if rows else None

    # The folded state is derived: it can always be checked and rebuilt from the ledger ---------

    def check_snapshots(self) -> list[str]:
        """Pack ids whose stored state or active usages differ from the replay of their ledger
        (a snapshot without a ledger counts too); empty when the store is sound."""
        connection = self._connections.get()
        with _reading(connection, "practice_id", self._id):
            replayed = self._replay_all(connection)
            return sorted(self._differing(connection, replayed))

    def rebuild_snapshots(self) -> list[str]:
        """Rewrite the folded states and active usages from the ledgers, in one transaction;
        returns the pack ids that differed."""
        connection = self._connections.get()
        with _transaction(connection, "practice_id", self._id):
            replayed = self._replay_all(connection)
            differing = self._differing(connection, replayed)
            for pack_id in differing:
                self._rewrite(connection, pack_id, replayed.get(pack_id))
            _execute(
                connection,
                "DELETE FROM active_usages WHERE practice_id = ?",
                (self._id,),
                "practice_id",
                self._id,
            )
            _execute_many(
                connection,
                """INSERT INTO active_usages (practice_id, appointment_id, pack_id)
                   VALUES (?, ?, ?)""",
                [(self._id, a, p) for a, p in _active_usages(replayed.values()).items()],
                "practice_id",
                self._id,
            )
        self._connections.states.forget(self._id)
        return sorted(differing)

    def _replay_all(self, connection: sqlite3.Connection) -> dict[str, PackState]:
        cursor = _execute(
            connection,
            "SELECT pack_id, entry FROM entries WHERE practice_id = ? ORDER BY pack_id, sequence",
            (self._id,),
            "practice_id",
            self._id,
        )
        return {
            pack_id: replay(load_entry(row[1]) for row in rows)
            for pack_id, rows in groupby(cursor, key=lambda row: str(row[0]))
        }

    def _differing(
        self, connection: sqlite3.Connection, replayed: dict[str, PackState]
    ) -> set[str]:
        stored = {
            str(row[0]): load_state(row[1])
            for row in _fetch(
                connection,
                "SELECT pack_id, state FROM packs WHERE practice_id = ?",
                (self._id,),
                "practice_id",
                self._id,
            )
        }
        differing = {p for p in stored.keys() | replayed.keys() if stored.get(p) != replayed.get(p)}
        actual = {
            str(row[0]): str(row[1])
            for row in _fetch(
                connection,
                "SELECT appointment_id, pack_id FROM active_usages WHERE practice_id = ?",
                (self._id,),
                "practice_id",
                self._id,
            )
        }
        expected = _active_usages(replayed.values())
        for appointment_id in actual.keys() | expected.keys():
            if actual.get(appointment_id) != expected.get(appointment_id):
                differing.update(
                    p for p in (actual.get(appointment_id), expected.get(appointment_id)) if p
                )
        return differing

    def _rewrite(
        self, connection: sqlite3.Connection, pack_id: str, state: PackState | None
    ) -> None:
        if state is None:  # a state with no ledger behind it is not derived from anything
            _execute(
                connection,
                "DELETE FROM packs WHERE practice_id = ? AND pack_id = ?",
                (self._id, pack_id),
                "pack_id",
                pack_id,
            )
            return
        _execute(
            connection,
            """INSERT INTO packs (practice_id, pack_id, client_id, version, state,
                   expiry_date, ended, remaining_units, expired_on)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (practice_id, pack_id) DO UPDATE SET
                   client_id = excluded.client_id, version = excluded.version,
                   state = excluded.state, expiry_date = excluded.expiry_date,
                   ended = excluded.ended, remaining_units = excluded.remaining_units,
                   expired_on = excluded.expired_on""",
            (
                self._id,
                pack_id,
                state.client_id,
                state.version,
                dump_state(state),
                _iso(state.expiry_date),
                int(state.ended),
                state.remaining_units,
                _iso(state.expired_on),
            ),
            "pack_id",
            pack_id,
        )


def _active_usages(states: Iterable[PackState]) -> dict[str, str]:
    return {u.appointment.id: s.pack_id for s in states for u in s.usages}
