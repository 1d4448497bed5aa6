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

The schema, the statements and every method but the commit are the SQL core's
(:mod:`sessionpacks.adapters._sql`); this module holds the connections, the transactions and
the commit. The schema is versioned (``schema_version``): :data:`MIGRATIONS` is the ordered
list of steps, applied on open to a file made by an earlier release; a file made by a later
release is refused.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "packs.db"
>>> with SqliteStore(path) as store:
...     repo = store.practice("clinic-1", timezone="Australia/Sydney")
...     repo.practice.timezone
'Australia/Sydney'
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

from sessionpacks.adapters._sql.commit import StatementRepository
from sessionpacks.adapters._sql.core import SqlStore, migrate, open_practice
from sessionpacks.adapters._sql.dialect import SQLITE, Dialect
from sessionpacks.adapters._sql.known import Deciding, Known, Reads, check_reads
from sessionpacks.adapters._sql.rows import Decoded
from sessionpacks.adapters._sql.schema import STEPS, Statements, statements
from sessionpacks.adapters._sql.session import Params, Session, Step
from sessionpacks.adapters._sql.sqlite_errors import translate
from sessionpacks.errors import InvalidValueError, StoreError
from sessionpacks.events import RecordedEvent
from sessionpacks.model import Practice
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

Migration = Step
"""One schema step, run inside the upgrade's transaction (SQLite DDL is transactional)."""

MIGRATIONS: tuple[Migration, ...] = STEPS
"""Schema steps in order: a file at version N has had the first N applied."""

_SQL = Statements(SQLITE)


class _Session:
    """A connection whose errors name ``field`` and ``value`` (see :func:`translate`)."""

    __slots__ = ("connection", "field", "value")

    def __init__(self, connection: sqlite3.Connection, field: str, value: Any) -> None:
        self.connection = connection
        self.field = field
        self.value = value

    @property
    def dialect(self) -> Dialect:
        return SQLITE

    def about(self, field: str, value: Any) -> _Session:
        return _Session(self.connection, field, value)

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        try:
            return self.connection.execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise translate(error, self.field, self.value) from error

    def run(self, sql: str, params: Params = ()) -> int:
        try:
            return self.connection.execute(sql, params).rowcount
        except sqlite3.Error as error:
            raise translate(error, self.field, self.value) from error

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.connection.executemany(sql, rows)
        except sqlite3.Error as error:
            raise translate(error, self.field, self.value) from error


@contextmanager
def _transaction(connection: sqlite3.Connection, field: str, value: Any) -> Iterator[_Session]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: takes the write lock first, so a write never fails
    half-way for want of an upgrade, and no other writer of the file runs beside it; anything
    raised rolls everything back."""
    session = _Session(connection, field, value)
    session.run("BEGIN IMMEDIATE")
    try:
        yield session
        session.run("COMMIT")
    except BaseException:
        # Some failures (a full disk, I/O) have already rolled the transaction back.
        with suppress(sqlite3.Error):
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        raise


@contextmanager
def _reading(connection: sqlite3.Connection, field: str, value: Any) -> Iterator[_Session]:
    """A read transaction: every statement in it sees the same snapshot of the file."""
    session = _Session(connection, field, value)
    session.run("BEGIN DEFERRED")
    try:
        yield session
    finally:
        with suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


class _Handle:
    """Holds a connection; weakly referenced so a finished thread's connection is closed."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection


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
        self._state_cache = state_cache
        self.decoded = Decoded(state_cache)
        self._known = Known(state_cache)
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()

    @property
    def known(self) -> Known:
        """What this process knows of the file's packs (``_sql/known``)."""
        self._adopt()
        return self._known

    def _adopt(self) -> None:
        if self._pid != os.getpid():
            # A fresh child: its locks may have been copied held, and what the parent knew is
            # the parent's. The parent's connections are kept referenced so the child never
            # closes them either.
            self._lock = threading.Lock()
            self._inherited.extend(self._handles)
            self._known = Known(self._state_cache)
            self._reset()

    def get(self) -> sqlite3.Connection:
        self._adopt()
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
            raise translate(error, "path", self.path) from error
        return connection

    def close(self) -> None:
        with self._lock:
            self._closed = True
            handles = list(self._handles)
        for handle in handles:
            handle.connection.close()


def _set_wal(session: _Session) -> None:
    mode = session.rows("PRAGMA journal_mode = WAL")[0][0]
    if mode.lower() != "wal":
        raise StoreError("path", session.value, f"cannot use WAL mode (journal mode is {mode})")


class SqliteStore(SqlStore):
    """A SQLite file holding any number of practices; :meth:`practice` hands out a handle.

    Opening creates or upgrades the schema. Safe to share between threads (each gets its own
    connection) and between processes opening the same file. Close it, or use it as a context
    manager.

    ``busy_timeout``: seconds a write waits for another writer before it fails with a
    :class:`~sessionpacks.errors.StoreError` (not retried: it is the whole wait of one
    command). ``state_cache``: how many decoded pack states to keep (by their stored text, so
    a state is reused only while it is the one stored; 0 keeps none). ``migrations``: the
    schema steps, for tests and tools; a file further along is refused.
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
            _set_wal(_Session(connection, "path", text))
            migrate(
                _Session(connection, "path", text),
                lambda: _transaction(connection, "path", text),
                migrations,
                text,
            )
        except BaseException:
            self._connections.close()
            raise

    @property
    def path(self) -> str:
        return self._connections.path

    def practice(self, practice_id: str, timezone: str | None = None) -> SqliteRepository:
        """A repository bound to ``practice_id``; ``timezone`` is required the first time."""
        connection = self._connections.get()
        practice = open_practice(
            _Session(connection, "practice_id", practice_id),
            lambda: _transaction(connection, "practice_id", practice_id),
            practice_id,
            timezone,
        )
        return SqliteRepository(self._connections, practice)

    def close(self) -> None:
        """Close every connection; the store and its repositories are unusable afterwards."""
        self._connections.close()


class SqliteRepository(Deciding, StatementRepository):
    """One practice's view of a :class:`SqliteStore`; every statement is scoped to it.

    Inside a decision (:meth:`deciding`, which :class:`~sessionpacks.service.PackService`
    enters for every call) the holder of an appointment and a pack's state may be answered
    from what this process last wrote or read, without a statement; each such answer is
    checked by the commit (its version check and its R6 check) or by one read, inside the
    commit's transaction or at the end (:mod:`sessionpacks.adapters._sql.known`)."""

    def __init__(self, connections: _Connections, practice: Practice) -> None:
        super().__init__(practice, _SQL, connections.decoded)
        self._connections = connections
        self._local = threading.local()

    def _memory(self) -> Known:
        return self._connections.known

    def _read(self, field: str, value: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        return _Session(self._connections.get(), field, value).rows(sql, params)

    def _writing(self, field: str, value: Any) -> AbstractContextManager[Session]:
        return _transaction(self._connections.get(), field, value)

    def _snapshot(self, field: str, value: Any) -> AbstractContextManager[Session]:
        return _reading(self._connections.get(), field, value)

    def _exclusive(self, field: str, value: Any) -> AbstractContextManager[Session]:
        # BEGIN IMMEDIATE admits no other writer of the file until it ends.
        return _transaction(self._connections.get(), field, value)

    # The commit --------------------------------------------------------------------------------

    def _check(self, reads: Reads, repairs: int | None, session: Session | None = None) -> None:
        packs, appointments = sorted(reads.packs), sorted(reads.unheld)
        params = (self._id, self._id, json.dumps(packs), self._id, json.dumps(appointments))
        if session is None:
            found = self._read("pack_id", packs, _CHECK_READS, params)
        else:
            found = session.about("pack_id", packs).rows(_CHECK_READS, params)
        check_reads(reads, found, self._id, repairs)

    def _commit(
        self,
        writing: list[Change],
        client_packs: Mapping[str, int],
        command: CommandRecord | None,
    ) -> tuple[RecordedEvent, ...]:
        def commit(uncovered: Reads | None, repairs: int | None) -> tuple[RecordedEvent, ...]:
            # BEGIN IMMEDIATE makes writers of the file take turns, so counting a client's
            # packs (R13a) and checking what the decision read are race-free inside it.
            with _transaction(self._connections.get(), "practice_id", self._id) as session:
                if uncovered is not None:
                    self._check(uncovered, None, session)  # the write checks the repairs
                return self._write(session, writing, client_packs, command, repairs)

        return self._committing(writing, commit)


# The practice's repairs, the versions of the packs and the holders of the appointments a
# decision was told of.
_CHECK_READS = """SELECT 'r', practice_id, repairs FROM practices WHERE practice_id = ?
    UNION ALL
    SELECT 'p', pack_id, version FROM packs
    WHERE practice_id = ? AND pack_id IN (SELECT value FROM json_each(?))
    UNION ALL
    SELECT 'u', appointment_id, pack_id FROM active_usages
    WHERE practice_id = ? AND appointment_id IN (SELECT value FROM json_each(?))"""
