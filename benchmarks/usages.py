"""Usages per second through ``PackService.assign``, and the bare writes they are set against.

A usage is one appointment assigned to a 10-session pack with sessions left (a fresh client
per pack): the service reads what it decides on (the holder, the pack, its template) and
commits the ledger entry, the folded state, the active usage and its events. The baselines
are the cheapest durable write of the same database: one INSERT of one row per transaction,
with the same durability settings (SQLite: WAL and ``synchronous = FULL``; PostgreSQL:
``synchronous_commit = on``). The eventsourcing baselines are in :mod:`benchmarks.es`.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from sessionpacks.adapters.clock import FixedClock
from sessionpacks.model import Allowance, Appointment, Money, PackTerms, PerSession
from sessionpacks.ports import PackRepository
from sessionpacks.service import PackService

from .harness import Metrics

ZONE = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 1, 10, 9, tzinfo=ZONE)
SESSIONS = 10
"""Per pack: the folded state a usage reads and writes holds up to 10 usages."""
WARM_UP = 50
BODY = '{"type":"SessionUsed","pack_id":"pk1","sequence":2,"appointment_id":"a1"}'


def appointment(number: int, client_id: str, session: int) -> Appointment:
    return Appointment(
        id=f"a{number}",
        client_id=client_id,
        service_id="physio",
        start=NOW + timedelta(days=7 * session + 1),
        duration=timedelta(hours=1),
        price=Money("120.00", "AUD"),
    )


class Usages:
    """Usages through ``PackService.assign`` on ``repository``, ``per_round`` a round."""

    def __init__(self, name: str, repository: PackRepository, per_round: int, rounds: int) -> None:
        self.name = name
        self.per_round = per_round
        ids = itertools.count(1)
        self.service = PackService(
            repository, FixedClock(NOW), new_pack_id=lambda: f"pk{next(ids)}"
        )
        terms = PackTerms(
            name="10 x Physio",
            allowance=Allowance.sessions(SESSIONS),
            pricing=PerSession.flat(Money("120.00", "AUD")),
        )
        self.service.add_template("t10", terms)
        self.jobs: list[tuple[str, str, int]] = []
        count = per_round * rounds + WARM_UP
        for n in range((count + SESSIONS - 1) // SESSIONS):
            pack = self.service.open_pack(f"C{n}", template_id="t10")
            self.jobs += [(pack.pack_id, pack.client_id, s) for s in range(SESSIONS)]
        self.done = 0
        self._run(WARM_UP)

    def _run(self, count: int) -> float:
        started = time.perf_counter()
        for number in range(self.done, self.done + count):
            pack_id, client_id, session = self.jobs[number]
            self.service.assign(appointment(number, client_id, session), pack_id=pack_id)
        self.done += count
        return count / (time.perf_counter() - started)

    def round(self) -> Metrics:
        return {"rate": self._run(self.per_round)}

    def close(self) -> None:
        pass


class BareSqlite:
    """One row per ``BEGIN IMMEDIATE`` ... ``COMMIT``, WAL and ``synchronous = FULL``."""

    name = "bare SQLite 1-row INSERT"

    def __init__(self, path: Path, per_round: int) -> None:
        self.per_round = per_round
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute("PRAGMA synchronous = FULL")
        self.connection.execute("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, body TEXT)")
        self._run(WARM_UP)

    def _run(self, count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            self.connection.execute("BEGIN IMMEDIATE")
            self.connection.execute("INSERT INTO bench_rows (body) VALUES (?)", (BODY,))
            self.connection.execute("COMMIT")
        return count / (time.perf_counter() - started)

    def round(self) -> Metrics:
        return {"rate": self._run(self.per_round)}

    def synchronous(self) -> int:
        return int(self.connection.execute("PRAGMA synchronous").fetchone()[0])

    def close(self) -> None:
        self.connection.close()


class BarePostgres:
    """One-row INSERTs, each its own transaction (autocommit: one round trip)."""

    name = "bare psycopg 1-row INSERT"

    def __init__(self, dsn: str, schema: str, per_round: int) -> None:
        self.per_round = per_round
        self.connection = psycopg.connect(dsn, autocommit=True)
        self.connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}".encode())
        self.connection.execute(
            f"CREATE TABLE {schema}.bare (id bigserial PRIMARY KEY, body text NOT NULL)".encode()
        )
        self.insert = f"INSERT INTO {schema}.bare (body) VALUES (%s)".encode()
        self._run(WARM_UP)  # the prepared statement, the caches

    def _run(self, count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            self.connection.execute(self.insert, (BODY,))
        return count / (time.perf_counter() - started)

    def round(self) -> Metrics:
        return {"rate": self._run(self.per_round)}

    def synchronous_commit(self) -> str:
        row = self.connection.execute(b"SHOW synchronous_commit").fetchone()
        return str(row[0]) if row else "?"

    def close(self) -> None:
        self.connection.close()
