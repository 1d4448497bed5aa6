"""The state machine of :mod:`sessionpacks.testing.stateful` on the Django store, on SQLite and
on PostgreSQL, each run inside a host's ``transaction.atomic()`` block.

Every command of a run is then a savepoint in the host's transaction, as in a host's view, and
the run's block is rolled back at its end: the next run starts from empty tables. Runs and
steps are a fraction of the active hypothesis profile's, since each step is a round of queries.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from django.db import transaction
from hypothesis import settings

from sessionpacks.contrib.django.store import DjangoStore
from sessionpacks.ports import PackRepository
from sessionpacks.testing.stateful import StoreMachine

from .settings import PG

__all__ = ["TestDjangoPostgresMachine", "TestDjangoSqliteMachine"]


class DjangoMachine(StoreMachine):
    using: ClassVar[str] = "default"

    def open_repository(self, practice_id: str, timezone: str) -> PackRepository:
        self.host: Any = transaction.atomic(using=self.using)
        self.host.__enter__()
        return DjangoStore(self.using).practice(practice_id, timezone)

    def close_repository(self) -> None:
        transaction.set_rollback(True, using=self.using)
        self.host.__exit__(None, None, None)


class DjangoPostgresMachine(DjangoMachine):
    using = PG


def _fraction(machine: type[StoreMachine], divisor: int) -> settings:
    current = machine.TestCase.settings
    return settings(current, max_examples=max(5, current.max_examples // divisor))


DjangoMachine.TestCase.settings = _fraction(DjangoMachine, 2)
DjangoPostgresMachine.TestCase.settings = _fraction(DjangoPostgresMachine, 4)

TestDjangoSqliteMachine = pytest.mark.django_db(DjangoMachine.TestCase)
TestDjangoPostgresMachine = pytest.mark.postgres(
    pytest.mark.django_db(databases=[PG])(
        pytest.mark.usefixtures("django_pg_db")(DjangoPostgresMachine.TestCase)
    )
)
