"""The SQLAlchemy store inside a host: its transaction decides, the store commits nothing in it;
its tables are the other stores' tables, whether the store, ``create_all`` or Alembic made them.

Every test runs on SQLite (a temporary file) and on PostgreSQL (a schema of its own).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from sessionpacks.adapters._sql.schema import STEPS
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.adapters.sqlalchemy import (
    SqlAlchemyRepository,
    SqlAlchemyStore,
    create_metadata,
    upgrade_schema,
)
from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.errors import ConcurrencyError, InvalidValueError, StoreError
from sessionpacks.events import RecordedEvent
from sessionpacks.model import Allowance, Money, PackTerms, PerPack
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord
from sessionpacks.service import PackService

from ..contract.test_contract_sqlalchemy import Host, pg_engine, sqlite_engine
from ..pg_support import appointment, pg_dsn, pg_schema

__all__ = ["pg_dsn", "pg_schema"]

NOW = datetime(2026, 1, 10, 9, tzinfo=ZoneInfo("Australia/Sydney"))
TERMS = PackTerms(
    name="5 x Physio", allowance=Allowance.sessions(5), pricing=PerPack(Money("500.00", "AUD"))
)


@attrs.frozen
class Database:
    """One empty database of a backend: its engine, the tables' schema, and how to open the
    backend's own store on it."""

    backend: str
    engine: sa.Engine
    schema: str | None
    location: str

    def native(self) -> SqliteStore | PostgresStore:
        if self.backend == "sqlite":
            return SqliteStore(self.location)
        return PostgresStore(self.location, schema=self.schema or "", max_size=2)

    def metadata(self, into: sa.MetaData | None = None) -> sa.MetaData:
        return create_metadata(self.backend, schema=self.schema, metadata=into)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "host.db"
        made = Database("sqlite", sqlite_engine(path), None, str(path))
    else:
        dsn = request.getfixturevalue("pg_dsn")
        made = Database("postgresql", pg_engine(dsn), request.getfixturevalue("pg_schema"), dsn)
    yield made
    made.engine.dispose()


def _service(store: SqlAlchemyStore) -> PackService:
    repository = store.practice("clinic-1", "Australia/Sydney")
    return PackService(repository, FixedClock(NOW), new_pack_id=lambda: "pk1")


def _appointments(database: Database) -> sa.Table:
    """The host's own table, in a MetaData of its own beside the store's."""
    metadata = sa.MetaData()
    table = sa.Table(
        "appointments",
        metadata,
        sa.Column("appointment_id", sa.Text, primary_key=True),
        sa.Column("pack_id", sa.Text),
        schema=database.schema,
    )
    with database.engine.begin() as connection:
        SqlAlchemyStore(connection, schema=database.schema)  # the schema exists for the table
        metadata.create_all(connection)
    return table


# The host's transaction decides ------------------------------------------------------------------


def test_a_host_rollback_leaves_no_usage_event_or_record(database: Database) -> None:
    _service(SqlAlchemyStore(database.engine, schema=database.schema)).open_pack("C1", terms=TERMS)
    host = Host.open(database.engine)
    desk = _service(SqlAlchemyStore(host.connection, schema=database.schema))
    desk.assign(appointment("A1"), pack_id="pk1", idempotency_key="k1")
    assert desk.repository.pack_of_appointment("A1") == "pk1"  # seen inside the transaction
    host.close()  # rolls back, having checked nothing was committed
    after = _service(SqlAlchemyStore(database.engine, schema=database.schema)).repository
    assert after.pack_of_appointment("A1") is None
    assert after.load("pk1").remaining_units == 5
    assert [type(r.event).__name__ for r in after.events_since(0)] == ["PackOpened"]
    assert after.command("k1") is None


def test_a_host_commit_keeps_its_row_and_the_usage(database: Database) -> None:
    appointments = _appointments(database)
    _service(SqlAlchemyStore(database.engine, schema=database.schema)).open_pack("C1", terms=TERMS)
    with database.engine.connect() as connection, connection.begin():
        desk = _service(SqlAlchemyStore(connection, schema=database.schema))
        connection.execute(appointments.insert().values(appointment_id="A1"))
        assigned = desk.assign(appointment("A1"), pack_id="pk1")
        assert assigned.pack is not None
        connection.execute(appointments.update().values(pack_id=assigned.pack.pack_id))
    with database.engine.connect() as connection:
        assert connection.execute(sa.select(appointments)).all() == [("A1", "pk1")]
    after = _service(SqlAlchemyStore(database.engine, schema=database.schema)).repository
    assert after.pack_of_appointment("A1") == "pk1"


@attrs.define
class _Interrupted:
    """A repository whose first commit another booking on the same pack overtakes, so the
    service's change is stale when it arrives."""

    repository: SqlAlchemyRepository
    overtaken: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.repository, name)

    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        if not self.overtaken:
            self.overtaken = True
            PackService(self.repository, FixedClock(NOW)).assign(appointment("A0"), pack_id="pk1")
        return self.repository.commit(changes, client_packs=client_packs, command=command)


def test_a_conflict_rolls_back_only_its_savepoint_and_the_retry_succeeds(
    database: Database,
) -> None:
    appointments = _appointments(database)
    _service(SqlAlchemyStore(database.engine, schema=database.schema)).open_pack("C1", terms=TERMS)
    host = Host.open(database.engine)
    host.connection.execute(appointments.insert().values(appointment_id="A1"))
    store = SqlAlchemyStore(host.connection, schema=database.schema)
    interrupted = _Interrupted(store.practice("clinic-1"))
    stale = PackService(interrupted, FixedClock(NOW), retries=0)
    with pytest.raises(ConcurrencyError):
        stale.assign(appointment("A1"), pack_id="pk1")
    # The host's row and the overtaking booking stand; the retry then goes through.
    assert host.connection.execute(sa.select(appointments.c.appointment_id)).all() == [("A1",)]
    interrupted.overtaken = False
    retrying = PackService(interrupted, FixedClock(NOW), retries=1)
    retrying.assign(appointment("A1"), pack_id="pk1")
    assert interrupted.repository.load("pk1").remaining_units == 3  # A0 and A1
    assert host.commits == []
    host.transaction.commit()
    host.connection.close()
    after = _service(SqlAlchemyStore(database.engine, schema=database.schema)).repository
    assert {after.pack_of_appointment(a) for a in ("A0", "A1")} == {"pk1"}


def test_the_store_never_commits_the_hosts_connection(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: sa.Connection) -> None:
        raise AssertionError("the store committed the host's transaction")

    with database.engine.connect() as connection, connection.begin() as transaction:
        monkeypatch.setattr(sa.Connection, "commit", refuse)
        monkeypatch.setattr(sa.RootTransaction, "commit", refuse)
        repository = SqlAlchemyStore(connection, schema=database.schema).practice("c", "UTC")
        desk = PackService(repository, FixedClock(NOW), new_pack_id=lambda: "pk1")
        desk.open_pack("C1", terms=TERMS, idempotency_key="k0")
        desk.assign(appointment("A1"), pack_id="pk1")
        assert repository.check_snapshots() == repository.rebuild_snapshots() == []
        monkeypatch.undo()
        assert transaction.is_active
        transaction.rollback()
    assert (
        _service(SqlAlchemyStore(database.engine, schema=database.schema)).repository.templates()
        == []
    )


def test_a_connection_outside_a_transaction_commits_each_command(database: Database) -> None:
    with database.engine.connect() as connection:
        desk = _service(SqlAlchemyStore(connection, schema=database.schema))
        desk.open_pack("C1", terms=TERMS)
        assert not connection.in_transaction()
        connection.rollback()  # nothing the store wrote is left to roll back
    after = _service(SqlAlchemyStore(database.engine, schema=database.schema)).repository
    assert after.load("pk1").remaining_units == 5


def test_a_bind_must_be_sqlite_or_psycopg() -> None:
    with pytest.raises(InvalidValueError) as raised:
        SqlAlchemyStore("sqlite://")  # type: ignore[arg-type]
    assert raised.value.field == "bind"
    with pytest.raises(InvalidValueError) as raised:
        SqlAlchemyStore(sa.create_engine("sqlite://"), schema="packs")
    assert raised.value.field == "schema"


# One schema, whoever made it ----------------------------------------------------------------------


def test_a_metadata_database_opens_in_the_backends_own_store(database: Database) -> None:
    database.metadata().create_all(database.engine)
    with database.native() as native:
        desk = PackService(native.practice("clinic-1", "Australia/Sydney"), FixedClock(NOW))
        pack = desk.open_pack("C1", terms=TERMS)
        desk.assign(appointment("A1"), pack_id=pack.pack_id)
    store = SqlAlchemyStore(database.engine, schema=database.schema, upgrade=False)
    assert store.migrated_from == len(STEPS)
    assert store.practice("clinic-1").load(pack.pack_id).remaining_units == 4


def test_a_native_database_opens_in_the_sqlalchemy_store(database: Database) -> None:
    database.native().close()
    store = SqlAlchemyStore(database.engine, schema=database.schema, upgrade=False)
    _service(store).open_pack("C1", terms=TERMS)
    with database.native() as native:
        assert native.practice("clinic-1").load("pk1").remaining_units == 5


def test_an_older_database_is_refused_without_upgrade(database: Database) -> None:
    with pytest.raises(StoreError) as raised:
        SqlAlchemyStore(database.engine, schema=database.schema, upgrade=False)
    assert (raised.value.field, raised.value.value) == ("schema_version", 0)


def _conditions(index: Any) -> dict[str, str]:
    """An index's dialect options (its WHERE, say) as text, spaces and case aside."""
    options = index.get("dialect_options", {})
    return {name: " ".join(str(value).lower().split()) for name, value in options.items()}


def _shape(engine: sa.Engine, schema: str | None) -> dict[str, Any]:
    """What a database's tables are: columns (type, nullability, identity), keys, unique
    constraints, foreign keys, checks, indexes (with their conditions) and SQLite's rowid."""
    inspector = sa.inspect(engine)
    shape: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names(schema=schema)):
        columns = [
            (c["name"], str(c["type"]).upper(), c["nullable"], "identity" in c)
            for c in inspector.get_columns(table, schema=schema)
        ]
        indexes = [
            (i["name"], i["column_names"], i["unique"], _conditions(i))
            for i in inspector.get_indexes(table, schema=schema)
        ]
        shape[table] = {
            "columns": columns,
            "key": inspector.get_pk_constraint(table, schema=schema)["constrained_columns"],
            "unique": sorted(
                (u["name"], u["column_names"])
                for u in inspector.get_unique_constraints(table, schema=schema)
            ),
            "refs": sorted(
                (f["name"], f["constrained_columns"], f["referred_table"])
                for f in inspector.get_foreign_keys(table, schema=schema)
            ),
            "checks": sorted(
                " ".join(c["sqltext"].split())
                for c in inspector.get_check_constraints(table, schema=schema)
            ),
            "indexes": sorted(indexes, key=str),
        }
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            shape["without rowid"] = connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND upper(sql) LIKE '%WITHOUT ROWID%' ORDER BY name"
            ).all()
    return shape


def test_the_metadata_is_the_stores_schema(database: Database, tmp_path: Path) -> None:
    SqlAlchemyStore(database.engine, schema=database.schema)
    if database.backend == "sqlite":
        other = sqlite_engine(tmp_path / "from-metadata.db")
        schema = None
    else:
        other, schema = database.engine, f"{database.schema}_m"
    try:
        create_metadata(database.backend, schema=schema).create_all(other)
        made, described = _shape(database.engine, database.schema), _shape(other, schema)
        assert set(made) == set(described)
        for table in made:
            assert made[table] == described[table], table
    finally:
        if schema is not None:
            with other.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        other.dispose()


def test_alembic_finds_no_difference_on_a_store_made_database(database: Database) -> None:
    upgrade_schema(database.engine, schema=database.schema)
    with database.engine.connect() as connection:
        # Only this test's schema: the server holds other tests' too.
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": database.schema is not None,
                "include_name": lambda name, kind, _: kind != "schema" or name == database.schema,
            },
        )
        differences = compare_metadata(context, database.metadata())
    assert differences == []


# The Alembic recipe of docs/embedding-sqlalchemy.md, run for real ------------------------------

ENV = """
from alembic import context
import sqlalchemy as sa

from sessionpacks.adapters.sqlalchemy import create_metadata

host_metadata = sa.MetaData()
sa.Table("appointments", host_metadata, sa.Column("appointment_id", sa.Text, primary_key=True))
target_metadata = [host_metadata, create_metadata("sqlite")]

engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
"""

REVISION = '''
"""sessionpacks and the appointments"""
from alembic import op
import sqlalchemy as sa

from sessionpacks.adapters.sqlalchemy import upgrade_schema

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("appointments", sa.Column("appointment_id", sa.Text, primary_key=True))
    upgrade_schema(op.get_bind())
'''


def test_the_alembic_recipe_makes_a_database_every_store_opens(tmp_path: Path) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(textwrap.dedent(ENV), encoding="utf-8")
    (tmp_path / "script.py.mako").write_text("", encoding="utf-8")
    (tmp_path / "versions" / "0001_sessionpacks.py").write_text(REVISION, encoding="utf-8")
    config = Config()
    config.set_main_option("script_location", str(tmp_path))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'host.db'}")
    command.upgrade(config, "head")
    command.check(config)  # autogenerate finds nothing left to migrate
    with SqliteStore(tmp_path / "host.db") as native:
        native.practice("clinic-1", "Australia/Sydney")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'host.db'}")
    assert SqlAlchemyStore(engine, upgrade=False).practice("clinic-1").practice.id == "clinic-1"
    engine.dispose()
