"""The SQLAlchemy store passes the repository contract on SQLite and PostgreSQL, in both of its
modes: bound to an Engine (its own transactions) and inside a host's open transaction.

The helpers here (engines, the host's connection) serve the store's other tests too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
import sqlalchemy as sa

from sessionpacks.adapters.sqlalchemy import SqlAlchemyStore
from sessionpacks.testing.contract import Opener, RepositoryContract

from ..pg_support import pg_dsn, pg_schema

__all__ = [
    "Host",
    "TestHostedPostgresContract",
    "TestHostedSqliteContract",
    "TestPostgresContract",
    "TestSqliteContract",
    "pg_dsn",
    "pg_engine",
    "pg_schema",
    "sqlite_engine",
]


def sqlite_engine(path: Path) -> sa.Engine:
    """An engine on a SQLite file in WAL mode, its connections usable from any thread (the
    hosted store lets one thread use the host's connection at a time)."""
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
    sa.event.listen(engine, "connect", _wal)
    return engine


def _wal(connection: Any, _: Any) -> None:
    connection.execute("PRAGMA journal_mode = WAL")


def pg_engine(dsn: str) -> sa.Engine:
    """An engine of the psycopg 3 dialect on ``dsn`` (a URL or key=value DSN)."""
    return sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))


@attrs.define
class Host:
    """A host's connection with its transaction begun, counting every commit on the engine
    and every statement that would end a transaction, so a test sees the store commit none."""

    engine: sa.Engine
    connection: sa.Connection
    transaction: sa.RootTransaction
    commits: list[str] = attrs.Factory(list)

    @classmethod
    def open(cls, engine: sa.Engine) -> Host:
        connection = engine.connect()
        host = cls(engine, connection, connection.begin())
        sa.event.listen(engine, "commit", lambda _: host.commits.append("Connection.commit"))
        sa.event.listen(engine, "before_cursor_execute", host._statement)
        return host

    def _statement(self, _c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.strip().upper().split(" ")[0] in ("COMMIT", "END"):
            self.commits.append(statement)

    def close(self) -> None:
        """Roll the host's transaction back, having checked the store committed nothing."""
        assert self.commits == [], self.commits
        assert self.transaction.is_active
        self.transaction.rollback()
        self.connection.close()
        self.engine.dispose()


class _Contract(RepositoryContract):
    """One store a test: bound to the engine, or (``hosted``) to a host's connection."""

    hosted = False
    engine_for: Callable[[], sa.Engine]
    schema: str | None = None

    def make_store(self) -> Opener:
        engine = self.engine_for()
        if self.hosted:
            self.host: Host | None = Host.open(engine)
            bind: sa.Engine | sa.Connection = self.host.connection
        else:
            self.host, bind = None, engine
        self.engine = engine
        return SqlAlchemyStore(bind, schema=self.schema).practice

    def close_store(self) -> None:
        if self.host is not None:
            self.host.close()
        self.engine.dispose()


class TestSqliteContract(_Contract):
    @pytest.fixture(autouse=True)
    def _file(self, tmp_path: Path) -> None:
        self.engine_for = lambda: sqlite_engine(tmp_path / "packs.db")


class TestHostedSqliteContract(TestSqliteContract):
    hosted = True


@pytest.mark.postgres
class TestPostgresContract(_Contract):
    @pytest.fixture(autouse=True)
    def _schema(self, pg_dsn: str, pg_schema: str) -> None:
        self.engine_for = lambda: pg_engine(pg_dsn)
        self.schema = pg_schema


class TestHostedPostgresContract(TestPostgresContract):
    hosted = True
