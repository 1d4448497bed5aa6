"""The state machine of :mod:`sessionpacks.testing.stateful` on the SQLAlchemy store: SQLite
and PostgreSQL, bound to an Engine (its own transactions) and inside a host's transaction.

Each run gets a fresh database: a SQLite file in a temporary directory of its own, or a
PostgreSQL schema of its own, dropped after the run. A database store does a fraction of the
active profile's runs, since each of its steps is a round of queries.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy as sa
from hypothesis import settings

from sessionpacks.adapters.sqlalchemy import SqlAlchemyStore
from sessionpacks.ports import PackRepository
from sessionpacks.testing.stateful import StoreMachine

from ..contract.test_contract_sqlalchemy import Host, pg_engine, sqlite_engine
from ..pg_support import drop_schema, pg_dsn

__all__ = [
    "TestHostedPostgresMachine",
    "TestHostedSqliteMachine",
    "TestPostgresMachine",
    "TestSqliteMachine",
    "pg_dsn",
]


class _Machine(StoreMachine):
    """Opens the store on a fresh database, on the engine or (``hosted``) a host's connection."""

    hosted: ClassVar[bool] = False

    def engine(self) -> tuple[sa.Engine, str | None]:
        """A fresh database's engine, and the schema of the tables."""
        raise NotImplementedError

    def open_repository(self, practice_id: str, timezone: str) -> PackRepository:
        self.sql_engine, schema = self.engine()
        self.host = Host.open(self.sql_engine) if self.hosted else None
        bind = self.sql_engine if self.host is None else self.host.connection
        return SqlAlchemyStore(bind, schema=schema).practice(practice_id, timezone)

    def close_repository(self) -> None:
        # Every row's projection is still its ledger's (a commit rewrites only the columns it
        # changes: adapters/_sql/commit.py).
        assert self.repository.check_snapshots() == []  # type: ignore[attr-defined]
        if self.host is not None:
            self.host.close()
        self.sql_engine.dispose()


class SqliteMachine(_Machine):
    def engine(self) -> tuple[sa.Engine, str | None]:
        self.directory = tempfile.TemporaryDirectory(prefix="sessionpacks-machine-")
        return sqlite_engine(Path(self.directory.name) / "packs.db"), None

    def close_repository(self) -> None:
        super().close_repository()
        self.directory.cleanup()


class HostedSqliteMachine(SqliteMachine):
    hosted = True


class PostgresMachine(_Machine):
    dsn: ClassVar[str] = ""

    def engine(self) -> tuple[sa.Engine, str | None]:
        self.schema = f"m_{uuid.uuid4().hex[:16]}"
        return pg_engine(self.dsn), self.schema

    def close_repository(self) -> None:
        super().close_repository()
        drop_schema(self.dsn, self.schema)


class HostedPostgresMachine(PostgresMachine):
    hosted = True


@pytest.fixture
def postgres_machine_server(pg_dsn: str) -> None:
    """The PostgreSQL machines' server (skips locally without one, fails under CI=true)."""
    PostgresMachine.dsn = pg_dsn


def _case(machine: type[StoreMachine], divisor: int) -> type:
    """The machine's TestCase with ``1/divisor`` of the active profile's runs."""
    current = machine.TestCase.settings
    machine.TestCase.settings = settings(
        current, max_examples=max(5, current.max_examples // divisor)
    )
    return machine.TestCase


TestSqliteMachine = _case(SqliteMachine, 4)
TestHostedSqliteMachine = _case(HostedSqliteMachine, 4)
_on_postgres = pytest.mark.usefixtures("postgres_machine_server")
TestPostgresMachine = pytest.mark.postgres(_on_postgres(_case(PostgresMachine, 8)))
TestHostedPostgresMachine = pytest.mark.postgres(_on_postgres(_case(HostedPostgresMachine, 8)))
