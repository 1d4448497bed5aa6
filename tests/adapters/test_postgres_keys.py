"""``practice_id`` leads every key and index of the PostgreSQL schema (issue 11, item 6).

Read from the catalog of a freshly migrated schema, and of one made by each earlier version and
then upgraded: every primary key, unique constraint, index and foreign key of the library's
tables starts with ``practice_id``, so a practice's rows are one range of each index, a table
can be partitioned by it (a partitioned table's unique indexes must hold the partition key) and
distributed by it (Citus: unique constraints and foreign keys between co-located tables must
hold the distribution column). ``schema_version`` is the schema's own, not a practice's.
"""

from __future__ import annotations

import psycopg
import pytest

from sessionpacks.adapters.postgres import MIGRATIONS, PostgresStore, StoreError
from sessionpacks.errors import InvalidValueError

from ..pg_support import pg_dsn, pg_schema

pytestmark = pytest.mark.postgres

__all__ = ["pg_dsn", "pg_schema"]

TABLES = {
    "practices",
    "packs",
    "entries",
    "events",
    "active_usages",
    "templates",
    "preferences",
    "commands",
}

# Every index (primary keys and unique constraints have theirs) of a table in the schema, with
# its columns in key order; partitions' own indexes included.
_INDEXES = """
SELECT t.relname, i.relname, array_agg(a.attname::text ORDER BY k.n)
FROM pg_index x
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
JOIN unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) ON k.attnum > 0
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE t.relnamespace = %s::regnamespace AND k.n <= x.indnkeyatts
GROUP BY t.relname, i.relname
"""

# Every constraint with columns (primary, unique, foreign key, exclusion), its columns in order.
_CONSTRAINTS = """
SELECT t.relname, c.conname, c.contype::text, array_agg(a.attname::text ORDER BY k.n)
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) ON true
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE c.connamespace = %s::regnamespace AND c.contype IN ('p', 'u', 'f', 'x')
GROUP BY t.relname, c.conname, c.contype
"""


def _catalog(dsn: str, schema: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        indexes = connection.execute(_INDEXES.encode(), (schema,)).fetchall()
        constraints = connection.execute(_CONSTRAINTS.encode(), (schema,)).fetchall()
    return indexes, constraints


def _not_led(rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [
        row for row in rows if row[0] != "schema_version" and list(row[-1])[:1] != ["practice_id"]
    ]


def _assert_practice_leads(dsn: str, schema: str, *, complete: bool = True) -> None:
    indexes, constraints = _catalog(dsn, schema)
    assert _not_led(indexes) == []
    assert _not_led(constraints) == []
    if not complete:  # an earlier version: not every table yet
        return
    assert {row[0] for row in indexes} >= TABLES | {"schema_version"}
    keyed = {row[0] for row in constraints if row[2] == "p"}
    assert keyed >= TABLES


def test_practice_id_leads_every_key_and_index(pg_dsn: str, pg_schema: str) -> None:
    PostgresStore(pg_dsn, schema=pg_schema).close()
    _assert_practice_leads(pg_dsn, pg_schema)


@pytest.mark.parametrize("made_at", range(1, len(MIGRATIONS)))
def test_a_schema_of_an_earlier_version_upgrades_with_the_same_keys(
    pg_dsn: str, pg_schema: str, made_at: int
) -> None:
    PostgresStore(pg_dsn, schema=pg_schema, migrations=MIGRATIONS[:made_at]).close()
    _assert_practice_leads(pg_dsn, pg_schema, complete=False)
    with PostgresStore(pg_dsn, schema=pg_schema) as store:
        assert store.migrated_from == made_at
    _assert_practice_leads(pg_dsn, pg_schema)


def test_the_partitioned_layout_keeps_the_keys(pg_dsn: str, pg_schema: str) -> None:
    with PostgresStore(pg_dsn, schema=pg_schema, partitions=3) as store:
        assert store.partitions == 3
        store.practice("clinic-1", "Australia/Sydney")
    _assert_practice_leads(pg_dsn, pg_schema)


def test_an_existing_schema_keeps_its_layout(pg_dsn: str, pg_schema: str) -> None:
    PostgresStore(pg_dsn, schema=pg_schema, partitions=2).close()
    with PostgresStore(pg_dsn, schema=pg_schema) as again:
        assert again.partitions == 2
    for other in (1, 3):
        with pytest.raises(StoreError) as raised:
            PostgresStore(pg_dsn, schema=pg_schema, partitions=other)
        assert raised.value.field == "partitions"
        assert raised.value.value == other


def test_a_plain_schema_is_not_partitioned_by_asking(pg_dsn: str, pg_schema: str) -> None:
    with PostgresStore(pg_dsn, schema=pg_schema) as plain:
        assert plain.partitions == 0
    with pytest.raises(StoreError, match="no partitions"):
        PostgresStore(pg_dsn, schema=pg_schema, partitions=4)


@pytest.mark.parametrize("partitions", [0, -1, 2.0, "4", True])
def test_partitions_must_be_a_whole_number(partitions: object) -> None:
    with pytest.raises(InvalidValueError) as raised:
        PostgresStore("postgresql://127.0.0.1:1/none", partitions=partitions)  # type: ignore[arg-type]
    assert raised.value.field == "partitions"
