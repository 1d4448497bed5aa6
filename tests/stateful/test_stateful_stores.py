"""The state machine of :mod:`sessionpacks.testing.stateful` on each of the library's stores.

Each run gets a fresh store: the in-memory one; SQLite on a file in a temporary directory of
its own; PostgreSQL in a schema of its own, dropped after the run. Runs and steps come from the
active hypothesis profile (``sessionpacks.testing.plugin``); a database store does a fraction of
the runs, since each of its steps is a round of queries.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import settings

from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.ports import PackRepository
from sessionpacks.testing.stateful import StoreMachine

from ..pg_support import drop_schema, pg_dsn

__all__ = ["TestInMemoryMachine", "TestPostgresMachine", "TestSqliteMachine", "pg_dsn"]


def _fraction(machine: type[StoreMachine], divisor: int) -> settings:
    """The TestCase's settings (the active profile's) with ``1/divisor`` of its runs."""
    current = machine.TestCase.settings
    return settings(current, max_examples=max(5, current.max_examples // divisor))


class InMemoryMachine(StoreMachine):
    """The reference store against itself: checks the machine and the invariants."""

    def open_repository(self, practice_id: str, timezone: str) -> PackRepository:
        return InMemoryStore().practice(practice_id, timezone)


class SqliteMachine(StoreMachine):
    def open_repository(self, practice_id: str, timezone: str) -> PackRepository:
        self.directory = tempfile.TemporaryDirectory(prefix="sessionpacks-machine-")
        self.store = SqliteStore(Path(self.directory.name) / "packs.db")
        return self.store.practice(practice_id, timezone)

    def close_repository(self) -> None:
        # Every row's projection is still its ledger's: a commit rewrites only the columns
        # it changes (adapters/_sql/commit.py).
        assert self.store.practice(self.practice_id, self.timezone).check_snapshots() == []
        self.store.close()
        self.directory.cleanup()


class PostgresMachine(StoreMachine):
    dsn: ClassVar[str] = ""

    def open_repository(self, practice_id: str, timezone: str) -> PackRepository:
        self.schema = f"m_{uuid.uuid4().hex[:16]}"
        self.store = PostgresStore(self.dsn, schema=self.schema, max_size=2)
        return self.store.practice(practice_id, timezone)

    def close_repository(self) -> None:
        assert self.store.practice(self.practice_id, self.timezone).check_snapshots() == []
        self.store.close()
        drop_schema(self.dsn, self.schema)


@pytest.fixture
def postgres_machine_server(pg_dsn: str) -> None:
    """The PostgreSQL machine's server (skips locally without one, fails under CI=true)."""
    PostgresMachine.dsn = pg_dsn


SqliteMachine.TestCase.settings = _fraction(SqliteMachine, 2)
PostgresMachine.TestCase.settings = _fraction(PostgresMachine, 4)

TestInMemoryMachine = InMemoryMachine.TestCase
TestSqliteMachine = SqliteMachine.TestCase
TestPostgresMachine = pytest.mark.postgres(
    pytest.mark.usefixtures("postgres_machine_server")(PostgresMachine.TestCase)
)
