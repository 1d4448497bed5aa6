"""How SQLite and PostgreSQL spell the same schema and statements.

The core writes its SQL once with ``?`` placeholders and ``{token}`` fields; :meth:`Dialect.render`
turns that text into one dialect's. The tokens say where the two differ: types (SQLite keeps dates
as ISO text and booleans as integers), the column that orders packs and templates as they were
stored (SQLite's ``rowid``, PostgreSQL's identity columns), PostgreSQL's schema prefix and
foreign keys, SQLite's ``WITHOUT ROWID`` tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import attrs

from sessionpacks.errors import InvalidValueError

__all__ = ["SQLITE", "Dialect", "postgres"]


def _same(value: Any) -> Any:
    return value


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _any_text(field: str, value: str) -> str:
    return value


@attrs.frozen(kw_only=True, eq=False)
class Dialect:
    """One database's spelling of the core's SQL, and how it takes dates and booleans.

    ``tokens`` fill the ``{name}`` fields of the core's text (``client_lock`` is a statement
    of its own: taking a client's lock until the transaction ends, R13a, or empty where the
    write transaction holds the database's write lock); ``marker`` replaces its ``?``
    placeholders; ``no_limit`` is the ``LIMIT`` value meaning none; ``day``, ``flag`` and
    ``instant`` turn a ``date | None``, a ``bool`` and a ``datetime`` into what the driver
    stores (and reads back, so a stored value compares equal to a derived one); ``text``
    refuses an id the database cannot hold (raising :class:`InvalidValueError`).
    ``partitions`` is how many hash partitions by ``practice_id`` a table the schema steps
    create gets (0: none); the ``partitioned`` token is its ``PARTITION BY`` clause.
    """

    name: str
    tokens: Mapping[str, str]
    marker: str
    no_limit: int | None
    day: Callable[[date | None], Any]
    flag: Callable[[bool], Any]
    instant: Callable[[datetime], Any]
    text: Callable[[str, str], str]
    partitions: int = 0

    def render(self, sql: str) -> str:
        """``sql`` in this dialect: its ``{token}`` fields filled, its ``?`` placeholders
        written as the driver's."""
        return sql.format_map(self.tokens).replace("?", self.marker)


SQLITE = Dialect(
    name="SQLite",
    tokens={
        "s": "",
        "schema": "main",
        "bigint": "INTEGER",
        "date": "TEXT",
        "bool": "INTEGER",
        "timestamp": "TEXT",
        # packs and templates are rowid tables: the rowid is the order they were stored in
        "opened": "rowid",
        "saved": "rowid",
        "opened_column": "",
        "saved_column": "",
        "by_client": "practice_id, client_id",
        "pack_key": "UNIQUE",
        "template_key": "UNIQUE",
        "practice_ref": "",
        "pack_ref": "",
        "nonnegative": "",
        "without_rowid": " WITHOUT ROWID",
        "has_version_table": (
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ),
        # A write transaction on SQLite holds the file's write lock: no lock a client.
        "client_lock": "",
        # Text compares by its UTF-8 bytes (BINARY): pack ids sort in code point order already.
        "code_point_ids": "",
        # "+pack_id" is no column to SQLite's planner: without statistics it would rather walk
        # the key in order than read a narrow range of an index and sort what it finds.
        "sorted_after": "+",
        "partitioned": "",
        # A whole state's terms, as JSON text (schema version 6).
        "state_terms": "json_extract(state, '$.terms')",
    },
    marker="?",
    no_limit=-1,
    day=_iso,
    flag=int,
    instant=_iso,
    text=_any_text,
)
"""SQLite: one file, no schema prefix; dates as ISO text, booleans as 0 and 1."""


def postgres(schema: str, partitions: int = 0) -> Dialect:
    """PostgreSQL with every table in ``schema`` (a checked lower-case identifier), each table
    the schema steps create hash-partitioned by ``practice_id`` into ``partitions`` (0: not
    partitioned)."""
    return Dialect(
        name="PostgreSQL",
        tokens={
            "s": f"{schema}.",
            "schema": schema,
            "bigint": "bigint",
            "date": "date",
            "bool": "boolean",
            "timestamp": "timestamptz",
            "opened": "opened",
            "saved": "saved",
            "opened_column": "opened bigint GENERATED ALWAYS AS IDENTITY,",
            "saved_column": "saved bigint GENERATED ALWAYS AS IDENTITY,",
            "by_client": "practice_id, client_id, opened",
            "pack_key": "PRIMARY KEY",
            "template_key": "PRIMARY KEY",
            "practice_ref": f" REFERENCES {schema}.practices",
            "pack_ref": f",\n        FOREIGN KEY (practice_id, pack_id) REFERENCES {schema}.packs",
            "nonnegative": " CHECK (last_position >= 0)",
            "without_rowid": "",
            "has_version_table": (
                "SELECT 1 FROM pg_catalog.pg_tables"
                f" WHERE schemaname = '{schema}' AND tablename = 'schema_version'"
            ),
            # Keyed as the commit function keys it: schema, practice and client, 0x1f apart.
            "client_lock": "SELECT pg_advisory_xact_lock(hashtextextended(?::text, 7))",
            # The database's collation may sort text by language; "C" sorts by code point.
            "sorted_after": "",
            "code_point_ids": (
                f'ALTER TABLE {schema}.packs ALTER COLUMN pack_id TYPE text COLLATE "C"'
            ),
            "partitioned": " PARTITION BY HASH (practice_id)" if partitions else "",
            "state_terms": "(state::json -> 'terms')::text",
        },
        marker="%s",
        no_limit=None,
        day=_same,
        flag=bool,
        instant=_same,
        text=postgres_text,
        partitions=partitions,
    )


def postgres_text(field: str, value: str) -> str:
    """``value`` if PostgreSQL text can hold it: a string without NUL or lone surrogates."""
    if not isinstance(value, str):
        raise InvalidValueError(field, value, "must be a string")
    if "\x00" in value or (not value.isascii() and not _encodes(value)):
        raise InvalidValueError(field, value, "PostgreSQL text cannot hold NUL or lone surrogates")
    return value


def _encodes(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
