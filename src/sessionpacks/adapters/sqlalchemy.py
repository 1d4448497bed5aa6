"""The SQLAlchemy store: sessionpacks inside a host's own SQLAlchemy 2.x application.

Needs the ``sqlalchemy`` extra (and, on PostgreSQL, psycopg 3: ``postgresql+psycopg://``).
Core only: no ORM class is imposed, and the tables are a :class:`sqlalchemy.MetaData`
(:func:`create_metadata`) a host can put beside its own in its Alembic migrations.

A :class:`SqlAlchemyStore` is bound to what the host passes, and that decides who commits:

* **an Engine**: each command takes a connection from the engine's pool and runs in a
  transaction of its own, committed before the call returns;
* **a Connection in a transaction** (``connection.begin()``, or any statement the host ran,
  since SQLAlchemy 2 begins a transaction on the first one): the host's mode. The store
  commits nothing: each write runs in a savepoint (``connection.begin_nested()``), released on
  success and rolled back on a refusal or conflict, so only that command is undone and the
  service can retry it; the host's commit or rollback decides for everything, its own rows and
  the usages alike. Reads see the host's uncommitted writes;
* **a Connection with no transaction**: each command runs in a transaction of its own on that
  connection, committed before the call returns, as with an Engine.

The mode is chosen at each call, so a store on a connection follows what the host does with it.
A store bound to a Connection lets one thread use the connection at a time.

The store runs the SQL core's statements (:mod:`sessionpacks.adapters._sql`) on the host's
connection: the same tables, checks and guarantees as the SQLite and PostgreSQL stores, and a
database any of the three made opens in the others. A commit writes only where each pack is
still at its expected version (a conflict is a :class:`~sessionpacks.errors.ConcurrencyError`);
counting a client's packs (R13a) holds PostgreSQL's advisory lock of that client, or on SQLite
the database's write lock, which every write takes first; the idempotency record (R27) and the
events go in the same transaction or savepoint.

SQLite: the store sends ``BEGIN IMMEDIATE`` itself when the driver has not begun the
transaction, since pysqlite begins one only before its first write, and a savepoint outside a
transaction would commit on release. Inside a host's transaction that has already read, the
write lock is taken by the command's first statement; if another connection wrote meanwhile,
SQLite refuses the whole transaction (a :class:`~sessionpacks.errors.StoreError`): the host
retries it from the start. Use WAL mode (``PRAGMA journal_mode = WAL``) for readers that never
wait for the writer.

>>> import sqlalchemy
>>> engine = sqlalchemy.create_engine("sqlite://")
>>> repo = SqlAlchemyStore(engine).practice("clinic-1", timezone="Australia/Sydney")
>>> repo.practice.timezone
'Australia/Sydney'
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from sessionpacks.adapters._sql import sqlite_errors
from sessionpacks.adapters._sql.commit import StatementRepository
from sessionpacks.adapters._sql.core import migrate, open_practice, require_current
from sessionpacks.adapters._sql.dialect import Dialect
from sessionpacks.adapters._sql.rows import Decoded
from sessionpacks.adapters._sql.schema import STEPS, Statements
from sessionpacks.adapters._sql.session import Params, Session, Step
from sessionpacks.adapters._sql.tables import BACKENDS, add_tables, dialect_of
from sessionpacks.errors import (
    ConnectionLostError,
    InvalidValueError,
    SessionPacksError,
    StoreError,
)
from sessionpacks.events import RecordedEvent
from sessionpacks.model import Practice
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord

__all__ = [
    "SqlAlchemyRepository",
    "SqlAlchemyStore",
    "create_metadata",
    "upgrade_schema",
]

Bind = sa.Engine | sa.Connection
"""What a store is bound to: an Engine (the store's own transactions) or a Connection."""

_DEFAULT_SCHEMA = "sessionpacks"


def create_metadata(
    backend: str = "sqlite", *, schema: str | None = None, metadata: sa.MetaData | None = None
) -> sa.MetaData:
    """The store's tables for ``backend`` (``"sqlite"`` or ``"postgresql"``, as
    ``engine.dialect.name`` says), added to ``metadata`` (a new one if ``None``) and returned.

    On PostgreSQL the tables are in ``schema`` (``"sessionpacks"`` if ``None``, as the stores
    default to); on SQLite ``schema`` must be ``None``. ``metadata.create_all(engine)`` makes a
    complete database at the current schema version: the tables, the ``schema_version`` rows
    and, on PostgreSQL, the schema and the PostgreSQL store's commit functions. Give the
    store the same ``schema``.
    """
    return add_tables(metadata or sa.MetaData(), backend, _schema_for(backend, schema))


def upgrade_schema(bind: Bind, *, schema: str | None = None) -> int:
    """Create or upgrade the store's tables through ``bind``, as opening a
    :class:`SqlAlchemyStore` does; returns the schema version found (0: none). In an Alembic
    revision, ``upgrade_schema(op.get_bind())`` runs inside the migration's transaction."""
    return SqlAlchemyStore(bind, schema=schema).migrated_from


def _schema_for(backend: str, schema: str | None) -> str | None:
    if backend == "postgresql":
        from sessionpacks.adapters._sql.postgres_schema import check_schema

        return check_schema(_DEFAULT_SCHEMA if schema is None else schema)
    if backend == "sqlite" and schema is not None:
        raise InvalidValueError("schema", schema, "must be None on SQLite (one database a file)")
    return schema


# Errors ----------------------------------------------------------------------------------------


def _translate(error: sa_exc.SQLAlchemyError, field: str, value: Any) -> SessionPacksError:
    """The library's error for one SQLAlchemy raised: the driver's error judged by that
    driver's table, a connection SQLAlchemy found broken as lost."""
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return ConnectionLostError(field, value, f"the connection was lost: {error.orig}")
        if isinstance(error.orig, sqlite3.Error):
            return sqlite_errors.translate(error.orig, field, value)
        if error.orig is not None and type(error.orig).__module__.startswith("psycopg"):
            from sessionpacks.adapters._sql import postgres_errors

            return postgres_errors.translate(error.orig, field, value)
    return StoreError(field, value, f"SQLAlchemy failed: {str(error).splitlines()[0]}")


class _Session:
    """A SQLAlchemy connection running the core's statements, its errors the library's."""

    __slots__ = ("connection", "dialect", "field", "value")

    def __init__(self, connection: sa.Connection, dialect: Dialect, field: str, value: Any):
        self.connection = connection
        self.dialect = dialect
        self.field = field
        self.value = value

    def about(self, field: str, value: Any) -> _Session:
        return _Session(self.connection, self.dialect, field, value)

    def _execute(self, sql: str, params: Params | list[Sequence[Any]]) -> sa.CursorResult[Any]:
        try:
            if not params:
                # No parameters, no placeholders: a % in a function body stays as it is.
                plain = self.connection.execution_options(no_parameters=True)
                return plain.exec_driver_sql(sql)
            return self.connection.exec_driver_sql(sql, params)
        except sa_exc.SQLAlchemyError as error:
            raise _translate(error, self.field, self.value) from error

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._execute(sql, params)]

    def run(self, sql: str, params: Params = ()) -> int:
        return self._execute(sql, params).rowcount

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        many = [tuple(row) for row in rows]
        if many:  # SQLAlchemy runs a statement with no parameter sets once
            self._execute(sql, many)


# Transactions ----------------------------------------------------------------------------------


@attrs.frozen
class _Kind:
    """What a unit of work needs: ``write`` its savepoint and SQLite's write lock; ``snapshot``
    one state of the database for its reads (in the store's own transaction); ``setup`` its
    first statements, in either mode."""

    write: bool = False
    snapshot: bool = False
    setup: Callable[[_Session], None] | None = None


_READ = _Kind()
_SNAPSHOT = _Kind(snapshot=True)
_WRITE = _Kind(write=True)

# SQLite takes the write lock at a transaction's first write, even one that writes no row.
_SQLITE_WRITE_LOCK = "UPDATE practices SET last_position = last_position WHERE 0"


@attrs.frozen(eq=False)
class _Binding:
    """The bind, its dialect and the units of work every call runs in (see the module)."""

    bind: Bind
    dialect: Dialect
    lock: AbstractContextManager[Any]

    @property
    def sqlite(self) -> bool:
        return self.dialect.name == "SQLite"

    @contextmanager
    def unit(self, field: str, value: Any, kind: _Kind) -> Iterator[_Session]:
        """One call's work, in the host's transaction or in one of its own."""
        with self.lock:
            try:
                with self._connection() as connection:
                    session = _Session(connection, self.dialect, field, value)
                    hosted = connection.in_transaction()
                    with (self._hosted if hosted else self._own)(session, kind):
                        yield session
            except sa_exc.SQLAlchemyError as error:
                raise _translate(error, field, value) from error

    @contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        if isinstance(self.bind, sa.Engine):
            with self.bind.connect() as connection:
                yield connection
        else:
            yield self.bind

    @contextmanager
    def _own(self, session: _Session, kind: _Kind) -> Iterator[None]:
        with session.connection.begin():
            if self.sqlite and (kind.write or kind.snapshot):
                self._begin_sqlite(session, "BEGIN IMMEDIATE" if kind.write else "BEGIN")
            elif kind.snapshot:
                session.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if kind.setup is not None:
                kind.setup(session)
            yield

    @contextmanager
    def _hosted(self, session: _Session, kind: _Kind) -> Iterator[None]:
        if not kind.write:  # reads see the host's transaction as it stands
            yield
            return
        if self.sqlite:
            self._begin_sqlite(session, "BEGIN IMMEDIATE")
        with session.connection.begin_nested():
            if kind.setup is not None:
                kind.setup(session)
            yield

    def _begin_sqlite(self, session: _Session, begin: str) -> None:
        """Begin the driver's transaction if pysqlite has not, else take the write lock."""
        driver = session.connection.connection.dbapi_connection
        if not getattr(driver, "in_transaction", True):
            session.run(begin)
        elif begin == "BEGIN IMMEDIATE" and session.rows(
            "SELECT 1 FROM sqlite_master WHERE name = 'practices'"
        ):
            session.run(_SQLITE_WRITE_LOCK)


class _EachOnItsOwn:
    """A session whose every statement is a unit of work of its own: the reads of a schema
    check and a practice opening, which write (if at all) in a unit they open themselves."""

    def __init__(self, binding: _Binding, field: str, value: Any) -> None:
        self._binding = binding
        self._field = field
        self._value = value
        self.dialect = binding.dialect

    def about(self, field: str, value: Any) -> _EachOnItsOwn:
        return _EachOnItsOwn(self._binding, field, value)

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self._binding.unit(self._field, self._value, _READ) as session:
            return session.rows(sql, params)

    def run(self, sql: str, params: Params = ()) -> int:
        with self._binding.unit(self._field, self._value, _WRITE) as session:
            return session.run(sql, params)

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._binding.unit(self._field, self._value, _WRITE) as session:
            session.run_many(sql, rows)


# The store -------------------------------------------------------------------------------------


def _backend(bind: object) -> str:
    if not isinstance(bind, sa.Engine | sa.Connection):
        raise InvalidValueError("bind", bind, "must be a SQLAlchemy Engine or Connection")
    name, driver = bind.dialect.name, bind.dialect.driver
    if name not in BACKENDS or (name == "postgresql" and driver != "psycopg"):
        raise InvalidValueError(
            "bind", f"{name}+{driver}", "must be SQLite or PostgreSQL through psycopg 3"
        )
    return name


class SqlAlchemyStore:
    """The store on a host's Engine or Connection; :meth:`practice` hands out a repository.

    ``bind``: an Engine or a Connection, which decides who commits (see the module).
    ``schema``: on PostgreSQL the schema of the tables (``"sessionpacks"`` if ``None``, as for
    :func:`create_metadata` and the PostgreSQL store); ``None`` on SQLite. ``upgrade``: create
    or upgrade the tables on opening (in the host's transaction if there is one); with
    ``False`` a database not at the current schema version is refused with a
    :class:`~sessionpacks.errors.StoreError`. ``state_cache``: how many decoded pack states to
    keep. The store owns nothing: closing the bind is the host's.
    """

    def __init__(
        self,
        bind: Bind,
        *,
        schema: str | None = None,
        upgrade: bool = True,
        state_cache: int = 4096,
    ) -> None:
        backend = _backend(bind)
        if type(state_cache) is not int or state_cache < 0:
            raise InvalidValueError("state_cache", state_cache, "must be a whole number >= 0")
        self._schema = _schema_for(backend, schema)
        self._steps = _steps(backend)
        self._decoded = Decoded(state_cache)
        self._binding = _binding(bind, dialect_of(backend, self._schema))
        self._sql = Statements(self._binding.dialect)
        where = "the database" if self._schema is None else f"schema {self._schema}"
        reader = _EachOnItsOwn(self._binding, "schema", self._schema or "main")
        if upgrade:
            upgrading = _Kind(write=True, setup=self._prepare_upgrade)
            self._migrated_from = migrate(
                reader,
                lambda: self._binding.unit("schema", self._schema or "main", upgrading),
                self._steps,
                where,
            )
        else:
            self._migrated_from = require_current(reader, self._steps, where)

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema of the tables (``None`` on SQLite)."""
        return self._schema

    @property
    def migrated_from(self) -> int:
        """The schema version found on opening (0: the tables were created by this open)."""
        return self._migrated_from

    def using(self, bind: Bind) -> SqlAlchemyStore:
        """The same store on another bind of the same database (say, a request's connection
        in its transaction), sharing the decoded states, without checking the schema again."""
        if _backend(bind) != _backend(self._binding.bind):
            raise InvalidValueError("bind", bind, "must reach the same kind of database")
        other = object.__new__(SqlAlchemyStore)
        other.__dict__.update(self.__dict__)
        other._binding = _binding(bind, self._binding.dialect)
        return other

    def practice(self, practice_id: str, timezone: str | None = None) -> SqlAlchemyRepository:
        """A repository bound to ``practice_id``; ``timezone`` is required the first time.
        A new practice is written like a command: in the host's transaction if there is one."""
        practice = open_practice(
            _EachOnItsOwn(self._binding, "practice_id", practice_id),
            lambda: self._binding.unit("practice_id", practice_id, _WRITE),
            practice_id,
            timezone,
        )
        return SqlAlchemyRepository(self._binding, self._sql, self._decoded, practice)

    def _prepare_upgrade(self, session: _Session) -> None:
        """On PostgreSQL, what the PostgreSQL store's upgrade holds: the schema's upgrade lock
        (a concurrent first open waits, then finds the schema current) and the schema."""
        if self._schema is None:
            return
        from sessionpacks.adapters._sql.postgres_schema import MIGRATION_LOCK

        session.rows(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (MIGRATION_LOCK, self._schema)
        )
        if not session.rows("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self._schema,)):
            session.run(f"CREATE SCHEMA {self._schema}")


def _steps(backend: str) -> Sequence[Step]:
    if backend == "postgresql":
        from sessionpacks.adapters._sql.postgres_schema import MIGRATIONS

        return MIGRATIONS
    return STEPS


def _binding(bind: Bind, dialect: Dialect) -> _Binding:
    # A Connection serves one thread at a time; an Engine's connections are each a thread's.
    lock = threading.RLock() if isinstance(bind, sa.Connection) else nullcontext()
    return _Binding(bind, dialect, lock)


class SqlAlchemyRepository(StatementRepository):
    """One practice's view of a :class:`SqlAlchemyStore`; every statement is scoped to it."""

    def __init__(
        self, binding: _Binding, sql: Statements, decoded: Decoded, practice: Practice
    ) -> None:
        super().__init__(practice, sql, decoded)
        self._binding = binding

    def _read(self, field: str, value: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._binding.unit(field, value, _READ) as session:
            return session.rows(sql, params)

    def _writing(self, field: str, value: Any) -> AbstractContextManager[Session]:
        return self._binding.unit(field, value, _WRITE)

    def _snapshot(self, field: str, value: Any) -> AbstractContextManager[Session]:
        return self._binding.unit(field, value, _SNAPSHOT)

    def _exclusive(self, field: str, value: Any) -> AbstractContextManager[Session]:
        return self._binding.unit(field, value, _Kind(write=True, setup=self._lock_tables))

    def _lock_tables(self, session: _Session) -> None:
        # As the PostgreSQL store's rebuild: commits wait, reads go on. SQLite's write lock,
        # which every write unit takes, is enough there.
        schema = self._sql.dialect.tokens["schema"]
        if not self._binding.sqlite:
            tables = ", ".join(f"{schema}.{t}" for t in ("packs", "entries", "active_usages"))
            session.run(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")

    def _commit(
        self,
        writing: list[Change],
        client_packs: Mapping[str, int],
        command: CommandRecord | None,
    ) -> tuple[RecordedEvent, ...]:
        field, value = ("pack_id", writing[0].pack_id) if writing else ("practice_id", self._id)
        with self._binding.unit(field, value, _WRITE) as session:
            return self._write(session, writing, client_packs, command)
