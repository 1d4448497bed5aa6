"""The core's schema (version 8) as SQLAlchemy Core tables, for a host's own migrations.

The schema steps (:mod:`.schema`) stay the one history of the tables: these tables describe
their result, in each database's spelling (``tests/adapters/test_sqlalchemy.py`` holds the two
alike, column by column, key by key). The pack projection's columns come from
:data:`~.rows.PROJECTION` and its types. Creating the tables (``metadata.create_all``) also
records the schema as current in ``schema_version`` and, on PostgreSQL, creates the schema and
the ``commit_changes`` functions, so the stores open the database as one they made.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeEngine

from sessionpacks.adapters._sql import schema as core_schema
from sessionpacks.adapters._sql.dialect import SQLITE, Dialect, postgres
from sessionpacks.adapters._sql.rows import PROJECTION, PROJECTION_TYPES, V3_PROJECTION
from sessionpacks.adapters._sql.schema import Statements
from sessionpacks.errors import InvalidValueError

__all__ = ["BACKENDS", "STEPS", "add_tables"]

BACKENDS = ("sqlite", "postgresql")
"""The SQLAlchemy dialect names the tables are spelt for."""

STEPS = len(core_schema.STEPS)
"""The schema version the tables are (the number of schema steps)."""

_TYPES: dict[str, dict[str, Callable[[], TypeEngine[Any]]]] = {
    # SQLite keeps dates and instants as ISO text and booleans as 0 and 1 (see .dialect).
    "sqlite": {"{date}": sa.Text, "{bool}": sa.Integer, "{bigint}": sa.Integer},
    "postgresql": {"{date}": sa.Date, "{bool}": sa.Boolean, "{bigint}": sa.BigInteger},
}
_NAMED = {"text": sa.Text, "integer": sa.Integer}


def _type(backend: str, kind: str) -> TypeEngine[Any]:
    return (_NAMED.get(kind) or _TYPES[backend][kind])()


def dialect_of(backend: str, schema: str | None) -> Dialect:
    """The core's dialect for a SQLAlchemy backend and schema."""
    return SQLITE if backend == "sqlite" else postgres(schema or "")


class _Builder:
    """The tables of one backend and schema, added to one MetaData."""

    def __init__(self, metadata: sa.MetaData, backend: str, schema: str | None) -> None:
        self.metadata = metadata
        self.backend = backend
        self.schema = schema
        self.pg = backend == "postgresql"
        self.prefix = f"{schema}." if schema else ""

    def table(self, name: str, *items: SchemaItem, rowid: bool = False) -> sa.Table:
        # sqlite_with_rowid: SQLite's WITHOUT ROWID, on the tables no query orders by rowid.
        return sa.Table(name, self.metadata, *items, schema=self.schema, sqlite_with_rowid=rowid)

    def column(self, name: str, kind: str, *, nullable: bool = False) -> sa.Column[Any]:
        return sa.Column(name, _type(self.backend, kind), nullable=nullable)

    def key(self, table: str, *columns: str, unique_on_sqlite: bool = False) -> sa.Constraint:
        if unique_on_sqlite and not self.pg:  # a rowid table, keyed by a unique constraint
            return sa.UniqueConstraint(*columns)
        return sa.PrimaryKeyConstraint(*columns, name=f"{table}_pkey" if self.pg else None)

    def check(self, table: str, column: str, bound: int) -> sa.CheckConstraint:
        name = f"{table}_{column}_check" if self.pg else None
        return sa.CheckConstraint(f"{column} >= {bound}", name=name)

    def refs(self, table: str, target: str, *columns: str) -> list[SchemaItem]:
        """PostgreSQL's foreign key of ``columns`` to ``target``'s key (SQLite has none)."""
        if not self.pg:
            return []
        return [
            sa.ForeignKeyConstraint(
                list(columns),
                [f"{self.prefix}{target}.{c}" for c in columns],
                name=f"{table}_{'_'.join(columns)}_fkey",
            )
        ]

    def identity(self, name: str) -> list[sa.Column[Any]]:
        """PostgreSQL's identity column keeping the order rows were stored in (SQLite's rowid)."""
        return [sa.Column(name, sa.BigInteger, sa.Identity(always=True))] if self.pg else []


def _packs(b: _Builder) -> None:
    # Dates may be missing; so may every column version 4 added (ALTER TABLE ADD COLUMN).
    projection = [
        b.column(name, kind, nullable=kind == "{date}" or name not in V3_PROJECTION)
        for name, kind in zip(PROJECTION, PROJECTION_TYPES, strict=True)
    ]
    packs = b.table(
        "packs",
        b.column("practice_id", "text"),
        # PostgreSQL sorts pack ids by code point from version 4, as SQLite's BINARY does.
        sa.Column("pack_id", sa.Text(collation="C") if b.pg else sa.Text(), nullable=False),
        *b.identity("opened"),
        *projection,
        # Each pack's terms, stored once (schema version 6); none where an earlier release's
        # writer opened the pack, whose state holds them.
        b.column("terms", "text", nullable=True),
        b.check("packs", "version", 1),
        b.key("packs", "practice_id", "pack_id", unique_on_sqlite=True),
        *b.refs("packs", "practices", "practice_id"),
        rowid=True,
    )
    by_client = ["practice_id", "client_id", *(["opened"] if b.pg else [])]
    sa.Index("packs_by_client", *(packs.c[c] for c in by_client))
    live = packs.c.lasting_status.is_(None)
    sa.Index(
        "packs_live_by_client",
        *(packs.c[c] for c in by_client),
        sqlite_where=live,
        postgresql_where=live,
    )
    pending = packs.c.pending_expiry.isnot(None)
    sa.Index(
        "packs_pending_expiry",
        packs.c.practice_id,
        packs.c.pending_expiry,
        sqlite_where=pending,
        postgresql_where=pending,
    )
    _query_indexes(b, packs)


def _query_indexes(b: _Builder, packs: sa.Table) -> None:
    """The indexes of ``find_packs`` (schema version 4)."""
    c = packs.c
    in_order = c.pack_id

    def partial(name: str, *columns: Any, where: Any = None) -> None:
        sa.Index(name, c.practice_id, *columns, sqlite_where=where, postgresql_where=where)

    partial("packs_lasting", c.lasting_status, in_order, where=c.lasting_status.isnot(None))
    partial("packs_open_until", c.open_until, where=c.open_until.isnot(None))
    partial("packs_by_expiry", c.expiry_date, where=c.expiry_date.isnot(None))
    partial("packs_by_left", c.remaining_unit, c.remaining_units)
    partial("packs_by_template", c.template_id, in_order, where=c.template_id.isnot(None))


def _ledger(b: _Builder) -> None:
    b.table(
        "entries",
        *(b.column(c, "text") for c in ("practice_id", "pack_id")),
        b.column("sequence", "integer"),
        *(b.column(c, "text") for c in ("kind", "entry")),
        b.check("entries", "sequence", 1),
        b.key("entries", "practice_id", "pack_id", "sequence"),
        *b.refs("entries", "packs", "practice_id", "pack_id"),
    )
    b.table(
        "events",
        b.column("practice_id", "text"),
        b.column("position", "{bigint}"),
        *(b.column(c, "text") for c in ("event_id", "pack_id", "kind", "event")),
        b.check("events", "position", 1),
        b.key("events", "practice_id", "position"),
        sa.UniqueConstraint(
            "practice_id", "event_id", name="events_practice_id_event_id_key" if b.pg else None
        ),
        *b.refs("events", "practices", "practice_id"),
    )
    b.table(
        "active_usages",
        *(b.column(c, "text") for c in ("practice_id", "appointment_id", "pack_id")),
        b.key("active_usages", "practice_id", "appointment_id"),
        *b.refs("active_usages", "packs", "practice_id", "pack_id"),
    )
    b.table(
        "shared_packs",
        *(b.column(c, "text") for c in ("practice_id", "client_id", "pack_id")),
        b.key("shared_packs", "practice_id", "client_id", "pack_id"),
        *b.refs("shared_packs", "packs", "practice_id", "pack_id"),
    )


def _settings(b: _Builder) -> None:
    b.table(
        "templates",
        *(b.column(c, "text") for c in ("practice_id", "template_id")),
        b.column("version", "integer"),
        *b.identity("saved"),
        b.column("template", "text"),
        b.check("templates", "version", 1),
        b.key("templates", "practice_id", "template_id", "version", unique_on_sqlite=True),
        *b.refs("templates", "practices", "practice_id"),
        rowid=True,
    )
    b.table(
        "preferences",
        *(b.column(c, "text") for c in ("practice_id", "client_id", "preference")),
        b.key("preferences", "practice_id", "client_id"),
        *b.refs("preferences", "practices", "practice_id"),
    )
    b.table(
        "commands",
        *(b.column(c, "text") for c in ("practice_id", "key", "fingerprint", "result")),
        b.column("first_position", "{bigint}"),
        b.key("commands", "practice_id", "key"),
        *b.refs("commands", "practices", "practice_id"),
    )


def _practices(b: _Builder) -> None:
    last = sa.Column(
        "last_position", _type(b.backend, "{bigint}"), nullable=False, server_default=sa.text("0")
    )
    b.table(
        "practices",
        b.column("practice_id", "text"),
        b.column("timezone", "text"),
        last,
        # How many times rebuild_snapshots repaired the practice (schema version 7).
        sa.Column("repairs", sa.Integer, nullable=False, server_default=sa.text("0")),
        *([b.check("practices", "last_position", 0)] if b.pg else []),
        b.key("practices", "practice_id"),
    )


def _versions(b: _Builder) -> sa.Table:
    instant = sa.DateTime(timezone=True) if b.pg else sa.Text()
    return sa.Table(
        "schema_version",
        b.metadata,
        # SQLite's INTEGER PRIMARY KEY is the rowid, which it reports as nullable.
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False, nullable=not b.pg),
        sa.Column("applied_at", instant, nullable=False),
        sa.PrimaryKeyConstraint("version", name="schema_version_pkey" if b.pg else None),
        schema=b.schema,
    )


def add_tables(metadata: sa.MetaData, backend: str, schema: str | None) -> sa.MetaData:
    """Add the tables of ``backend`` (one of :data:`BACKENDS`) in ``schema`` to ``metadata``,
    with the events that finish a database ``metadata.create_all`` makes; returns it."""
    if backend not in BACKENDS:
        raise InvalidValueError("backend", backend, f"must be one of {', '.join(BACKENDS)}")
    builder = _Builder(metadata, backend, schema)
    _practices(builder)
    _packs(builder)
    _ledger(builder)
    _settings(builder)
    versions = _versions(builder)
    dialect = dialect_of(backend, schema)
    if builder.pg:
        for table in metadata.tables.values():
            if table.schema == schema:
                sa.event.listen(table, "before_create", _create_schema(schema or ""))
    sa.event.listen(versions, "after_create", _finish(dialect))
    return metadata


def _create_schema(schema: str) -> Callable[..., None]:
    def create(target: sa.Table, connection: sa.Connection, **_: Any) -> None:
        # Checked first: CREATE SCHEMA IF NOT EXISTS wants the CREATE right even then.
        found = connection.exec_driver_sql(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
        ).first()
        if found is None:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")

    return create


def _finish(dialect: Dialect) -> Callable[..., None]:
    """Record every step as applied and, on PostgreSQL, create the commit functions, which
    the PostgreSQL store calls and tables alone do not give."""

    def finish(target: sa.Table, connection: sa.Connection, **_: Any) -> None:
        sql = Statements(dialect)
        now = dialect.instant(datetime.now(UTC))
        for number in range(1, STEPS + 1):
            connection.exec_driver_sql(sql.add_version, (number, now))
        if dialect is not SQLITE:
            from sessionpacks.adapters._sql.postgres_schema import FUNCTIONS

            for function in FUNCTIONS:
                rendered = dialect.render(function)
                connection.execution_options(no_parameters=True).exec_driver_sql(rendered)

    return finish
