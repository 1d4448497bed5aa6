"""The PostgreSQL store in its partitioned layout (every table ``PARTITION BY HASH
(practice_id)``, four partitions each), each test in a schema of its own, passes the repository
contract: the contract's PostgreSQL class, opened with ``partitions=4``."""

from __future__ import annotations

import psycopg
import pytest

from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.testing.contract import Opener

from ..pg_support import pg_dsn, pg_schema
from . import test_contract_postgres

pytestmark = pytest.mark.postgres

__all__ = ["TestPartitionedPostgresContract", "pg_dsn", "pg_schema"]

PARTITIONS = 4


# Through its module: a class imported by name would be collected and run here a second time.
class TestPartitionedPostgresContract(test_contract_postgres.TestPostgresContract):
    def make_store(self) -> Opener:
        self.store = PostgresStore(self.dsn, schema=self.schema, max_size=4, partitions=PARTITIONS)
        return self.store.practice

    def test_the_tables_are_partitioned_by_practice(self) -> None:
        opener = self.make_store()
        try:
            opener("clinic-1", "Australia/Sydney")
            with psycopg.connect(self.dsn, autocommit=True) as connection:
                found = connection.execute(
                    b"""SELECT c.relname, pg_get_partkeydef(c.oid),
                           (SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid)
                        FROM pg_partitioned_table AS p JOIN pg_class AS c ON c.oid = p.partrelid
                        WHERE c.relnamespace = %s::regnamespace ORDER BY 1""",
                    (self.schema,),
                ).fetchall()
            assert self.store.partitions == PARTITIONS
        finally:
            self.close_store()
        tables = ["active_usages", "commands", "entries", "events", "packs", "practices"]
        tables += ["preferences", "shared_packs", "templates"]
        assert found == [(table, "HASH (practice_id)", PARTITIONS) for table in tables]
