"""PostgreSQL for the tests: find a server, or start the project's throwaway one.

``SESSIONPACKS_PG_DSN`` names the server (it must be on 127.0.0.1). Without it, the
session-scoped :func:`pg_dsn` fixture runs ``scripts/postgres.sh start`` if PostgreSQL is
installed (locally it never installs anything; the script is idempotent, so a server already
running is reused). It leaves the server running, since another test run may be using it:
``scripts/postgres.sh stop`` stops it. With no server to be had the PostgreSQL tests are
skipped, except under ``CI=true``, where they fail: CI must never pass by skipping them.

Each test gets its own PostgreSQL schema (:func:`pg_schema`), dropped afterwards, so tests
never see each other's rows and need no TRUNCATE.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.errors import SessionPacksError
from sessionpacks.model import Appointment, Money
from sessionpacks.service import PackService

DSN_ENV = "SESSIONPACKS_PG_DSN"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"
LOOPBACK = "127.0.0.1"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail under CI=true, where the PostgreSQL tests must run."""
    if under_ci():
        pytest.fail(f"CI=true needs PostgreSQL and there is none: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason}; set {DSN_ENV} or install postgresql")


def check_loopback(dsn: str) -> str:
    """``dsn`` if it points at 127.0.0.1 (host and hostaddr), else fail: tests never leave it."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as error:
        pytest.fail(f"{DSN_ENV} is not a valid DSN: {error}", pytrace=False)
    hosts = [params.get(key) for key in ("host", "hostaddr") if params.get(key)]
    if not hosts or any(str(host) != LOOPBACK for host in hosts):
        pytest.fail(f"the test DSN must name host {LOOPBACK}, not {hosts}: {dsn}", pytrace=False)
    return dsn


def _script(command: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if not under_ci():
        env["SESSIONPACKS_PG_INSTALL"] = "0"
    return subprocess.run(
        ["sh", str(SCRIPT), command],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _installed() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/postgres"))


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The DSN of a reachable PostgreSQL on 127.0.0.1 (see the module's docstring)."""
    dsn = os.environ.get(DSN_ENV, "")
    if not dsn:
        if not _installed() and not under_ci():
            unavailable("postgresql is not installed")
        ran = _script("start")
        if ran.returncode != 0 or not ran.stdout.strip():
            unavailable(f"scripts/postgres.sh start failed: {ran.stderr.strip()[-500:]}")
        dsn = ran.stdout.strip().splitlines()[-1]
    check_loopback(dsn)
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
    except psycopg.OperationalError as error:
        unavailable(f"cannot connect to {dsn}: {error}")
    return dsn


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A schema name of this test's own; the schema (if the test made it) is dropped after."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield schema
    drop_schema(pg_dsn, schema)


# Racing workers ----------------------------------------------------------------------------
# They live here, in a module a spawned process can import (with the project root on its
# sys.path, see root_on_path), not in a test module.

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 1, 10, 9, tzinfo=ZoneInfo("Australia/Sydney"))
Job = tuple[str, str]
"""(appointment id, pack id): book the appointment on that pack."""
Outcome = tuple[str, str, str]
"""(appointment id, pack id, "used" or the error's class name and rule)."""


@contextmanager
def root_on_path() -> Iterator[None]:
    """The project root on sys.path while processes are spawned, so they can import this
    module as ``tests.pg_support`` (pytest's importlib mode does not put it there)."""
    sys.path.insert(0, str(ROOT))
    try:
        yield
    finally:
        sys.path.remove(str(ROOT))


def appointment(appointment_id: str, client: str = "C1") -> Appointment:
    return Appointment(
        id=appointment_id,
        client_id=client,
        service_id="physio",
        start=NOW + timedelta(days=7),
        duration=timedelta(hours=1),
        price=Money("120.00", "AUD"),
    )


def book_all(service: PackService, jobs: Sequence[Job]) -> list[Outcome]:
    """Assign each job's appointment to its pack through the service, noting what happened:
    ``used``, ``already`` (another worker recorded the same appointment on the same pack first:
    the same request, answered with the existing usage, R6) or the refusal."""
    outcomes: list[Outcome] = []
    for appointment_id, pack_id in jobs:
        try:
            assigned = service.assign(appointment(appointment_id), pack_id=pack_id)
            outcomes.append((appointment_id, pack_id, "used" if assigned.events else "already"))
        except SessionPacksError as error:
            outcomes.append((appointment_id, pack_id, f"{type(error).__name__} {error.rule}"))
    return outcomes


def race_process(
    dsn: str,
    schema: str,
    practice_id: str,
    jobs: list[Job],
    retries: int,
    barrier: Any,
    results: Any,
) -> None:
    """One racing process: its own store and pool; waits for the others, then books."""
    with PostgresStore(dsn, schema=schema, max_size=1) as store:
        service = PackService(store.practice(practice_id), FixedClock(NOW), retries=retries)
        barrier.wait()
        results.put(book_all(service, jobs))
