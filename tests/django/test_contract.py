"""The Django store passes the repository contract on SQLite and on PostgreSQL.

Each test runs as Django's ``TransactionTestCase`` does (``transaction=True``): the store's
commands are transactions of their own, as outside a host's ``atomic()`` block, and the tables
are emptied after the test. Threads of one test write at once, each on its own connection.
"""

from __future__ import annotations

import pytest

from sessionpacks.contrib.django.store import DjangoStore
from sessionpacks.testing.contract import Opener, RepositoryContract

from .settings import PG

__all__ = ["TestDjangoPostgresContract", "TestDjangoSqliteContract"]


# excerpt: contract
@pytest.mark.django_db(transaction=True)
class TestDjangoSqliteContract(RepositoryContract):
    def make_store(self) -> Opener:
        return DjangoStore().practice


# end excerpt


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=[PG])
@pytest.mark.usefixtures("django_pg_db")
class TestDjangoPostgresContract(RepositoryContract):
    def make_store(self) -> Opener:
        return DjangoStore(PG).practice
