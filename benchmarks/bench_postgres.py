"""Usages per second through PackService on PostgresStore, against bare INSERTs.

The yardstick is the cheapest durable write the same database can do: one INSERT of one row per
transaction (autocommit: one round trip). A usage through the service reads what it decides on
(the appointment's holder, the client's packs, templates, preference, the pack) and commits the
ledger entry, the folded state, the active usage and its events in one transaction. Both run
single-threaded on one connection each, in alternating rounds (the median of each is reported),
with ``synchronous_commit`` on (every commit waits for its WAL flush, as in production) and off
(round trips and CPU only).

Run: ``uv run python benchmarks/bench_postgres.py [--usages N]``. The server is
``SESSIONPACKS_PG_DSN`` or the project's throwaway one (``scripts/postgres.sh start``), always on
127.0.0.1; the benchmark works in a schema of its own and drops it at the end.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.model import Allowance, Appointment, Money, PackTerms, PerSession
from sessionpacks.service import PackService

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 1, 10, 9, tzinfo=ZONE)
SESSIONS = 10  # per pack: the folded state a usage reads and writes holds up to 10 usages


def server() -> str:
    dsn = os.environ.get("SESSIONPACKS_PG_DSN") or _start()
    hosts = {str(v) for k, v in conninfo_to_dict(dsn).items() if k in ("host", "hostaddr")}
    if hosts != {"127.0.0.1"}:
        sys.exit(f"refusing to benchmark anything but 127.0.0.1: {dsn}")
    return dsn


def _start() -> str:
    ran = subprocess.run(
        ["sh", str(ROOT / "scripts" / "postgres.sh"), "start"],
        capture_output=True,
        text=True,
        check=False,
    )
    if ran.returncode != 0:
        sys.exit(f"no PostgreSQL: {ran.stderr.strip()}")
    return ran.stdout.strip().splitlines()[-1]


class Bare:
    """One-row INSERTs, each its own transaction (autocommit: one round trip)."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.connection = psycopg.connect(dsn, autocommit=True)
        self.connection.execute(
            f"CREATE TABLE {schema}.bare (id bigserial PRIMARY KEY, body text NOT NULL)".encode()
        )
        self.insert = f"INSERT INTO {schema}.bare (body) VALUES (%s)".encode()
        self.run(50)  # warm up: prepared statement, caches

    def run(self, count: int) -> float:
        """Inserts per second over ``count`` inserts."""
        body = '{"type":"Used","pack_id":"pk1","sequence":2}'
        started = time.perf_counter()
        for _ in range(count):
            self.connection.execute(self.insert, (body,))
        return count / (time.perf_counter() - started)

    def close(self) -> None:
        self.connection.close()


class Usages:
    """Usages through ``PackService.assign``, each on a 10-session pack with sessions left."""

    def __init__(self, dsn: str, schema: str, count: int) -> None:
        self.store = PostgresStore(dsn, schema=schema, max_size=1)
        ids = itertools.count(1)
        self.service = PackService(
            self.store.practice("bench", "Australia/Sydney"),
            FixedClock(NOW),
            new_pack_id=lambda: f"pk{next(ids)}",
        )
        terms = PackTerms(
            name="10 x Physio",
            allowance=Allowance.sessions(SESSIONS),
            pricing=PerSession.flat(Money("120.00", "AUD")),
        )
        self.service.add_template("t10", terms)
        self.jobs: list[tuple[str, str, int]] = []
        for n in range((count + 50 + SESSIONS - 1) // SESSIONS):
            pack = self.service.open_pack(f"C{n}", template_id="t10")
            self.jobs += [(pack.pack_id, pack.client_id, s) for s in range(SESSIONS)]
        self.done = 0
        self.run(50)  # warm up

    def run(self, count: int) -> float:
        """Usages per second over the next ``count`` usages."""
        started = time.perf_counter()
        for number in range(self.done, self.done + count):
            pack_id, client_id, session = self.jobs[number]
            self.service.assign(_appointment(number, client_id, session), pack_id=pack_id)
        self.done += count
        return count / (time.perf_counter() - started)

    def close(self) -> None:
        self.store.close()


def measure(dsn: str, schema: str, count: int, rounds: int) -> tuple[float, float]:
    """Median rates of bare inserts and of usages, measured in alternating rounds so that a
    change in the machine's load touches both alike."""
    bare, usages = Bare(dsn, schema), Usages(dsn, schema, count)
    try:
        per_round = count // rounds
        rates = [(bare.run(per_round), usages.run(per_round)) for _ in range(rounds)]
    finally:
        bare.close()
        usages.close()
    return statistics.median(r[0] for r in rates), statistics.median(r[1] for r in rates)


def _appointment(number: int, client_id: str, session: int) -> Appointment:
    return Appointment(
        id=f"a{number}",
        client_id=client_id,
        service_id="physio",
        start=NOW + timedelta(days=7 * session + 1),
        duration=timedelta(hours=1),
        price=Money("120.00", "AUD"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usages", type=int, default=2000, help="usages (and inserts) timed")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    args = parser.parse_args()
    base = server()
    print(f"PostgreSQL on 127.0.0.1, {args.usages} usages vs {args.usages} bare INSERTs")
    for synchronous_commit in ("on", "off"):
        dsn = make_conninfo(base, options=f"-c synchronous_commit={synchronous_commit}")
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        try:
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(f"CREATE SCHEMA {schema}".encode())
            bare, usages = measure(dsn, schema, args.usages, args.rounds)
        finally:
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
        print(
            f"synchronous_commit={synchronous_commit:<3}  bare INSERT {bare:8.0f}/s  "
            f"usage via PackService {usages:7.0f}/s  ratio {usages / bare:.2f}"
        )


if __name__ == "__main__":
    main()
