"""The PostgreSQL store, each test in a schema of its own, passes the repository contract."""

from __future__ import annotations

import pytest

from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.testing.contract import Opener, RepositoryContract

from ..pg_support import pg_dsn, pg_schema

pytestmark = pytest.mark.postgres

__all__ = ["TestPostgresContract", "pg_dsn", "pg_schema"]


class TestPostgresContract(RepositoryContract):
    @pytest.fixture(autouse=True)
    def _schema(self, pg_dsn: str, pg_schema: str) -> None:
        self.dsn = pg_dsn
        self.schema = pg_schema

    def make_store(self) -> Opener:
        self.store = PostgresStore(self.dsn, schema=self.schema, max_size=4)
        return self.store.practice

    def close_store(self) -> None:
        self.store.close()
