"""The clinic's test set-up: its API on a fresh database, SQLite in a temporary file and, when
``SESSIONPACKS_PG_DSN`` names a server, PostgreSQL in a schema of the test's own.

Without ``SESSIONPACKS_PG_DSN`` the PostgreSQL tests skip, except under ``CI=true``, where
they fail: CI must not pass by skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from clinic_api import create_app, create_tables
from fastapi.testclient import TestClient

from sessionpacks import FixedClock, PackService
from sessionpacks.adapters.sqlalchemy import SqlAlchemyStore

PRACTICE = "clinic-1"
NOW = datetime(2026, 3, 2, 9, tzinfo=ZoneInfo("Australia/Sydney"))


@dataclass(frozen=True)
class Clinic:
    """The API under test, its database, and the packs as the library sees them."""

    client: TestClient
    engine: sa.Engine
    packs: PackService

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _postgres_url() -> str:
    dsn = os.environ.get("SESSIONPACKS_PG_DSN", "")
    if not dsn:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true needs PostgreSQL: set SESSIONPACKS_PG_DSN", pytrace=False)
        pytest.skip("no PostgreSQL: set SESSIONPACKS_PG_DSN")
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine_and_schema(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[sa.Engine, str | None]]:
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'clinic.db'}")
        yield engine, None
        engine.dispose()
        return
    url = _postgres_url()
    # One schema per test for the clinic's tables and sessionpacks': tests never meet.
    schema = f"clinic_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine = sa.create_engine(url, execution_options={"schema_translate_map": {None: schema}})
    yield engine, schema
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def clinic(engine_and_schema: tuple[sa.Engine, str | None]) -> Clinic:
    engine, schema = engine_and_schema
    clock = FixedClock(NOW)
    create_tables(engine, schema=schema)
    app = create_app(engine, practice_id=PRACTICE, schema=schema, clock=clock)
    # A failure inside the app is answered 500, as a server would, not raised into the test.
    client = TestClient(app, raise_server_exceptions=False)
    packs = PackService(SqlAlchemyStore(engine, schema=schema).practice(PRACTICE), clock)
    return Clinic(client, engine, packs)
