"""The eventsourcing baselines: one aggregate event per usage, in memory (POPO), SQLite or
PostgreSQL.

eventsourcing is in the ``bench`` dependency group only: import this module only when
:func:`available` says so (``uv run --group bench python -m benchmarks``). A usage here does
what a usage through ``PackService`` does at the least: read the pack (its events replayed:
at most ten, since a pack has ten sessions), check it has a session left, record the event,
save. The aggregates are defined at module level because eventsourcing finds their classes
again by their topic (module and name) when it replays their events.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from eventsourcing.application import Application  # type: ignore[import-not-found,unused-ignore]
from eventsourcing.domain import Aggregate, event  # type: ignore[import-not-found,unused-ignore]

from .harness import Metrics
from .usages import SESSIONS, WARM_UP


class Pack(Aggregate):  # type: ignore[misc,unused-ignore]
    """A pack of ``sessions``, each usage one ``SessionUsed`` event."""

    def __init__(self, client_id: str, sessions: int) -> None:
        self.client_id = client_id
        self.sessions = sessions
        self.used: list[str] = []

    @event("SessionUsed")  # type: ignore[misc,unused-ignore]
    def use(self, appointment_id: str) -> None:
        self.used.append(appointment_id)


class Packs(Application[UUID]):  # type: ignore[misc,unused-ignore]
    def open(self, client_id: str) -> UUID:
        pack = Pack(client_id, SESSIONS)
        self.save(pack)
        return UUID(str(pack.id))

    def use(self, pack_id: UUID, appointment_id: str) -> None:
        pack: Pack = self.repository.get(pack_id)
        if len(pack.used) >= pack.sessions:
            raise ValueError(f"pack {pack_id} has no session left")
        pack.use(appointment_id)
        self.save(pack)


class EventSourcedUsages:
    """Usages as aggregate events through an eventsourcing ``Application``."""

    def __init__(self, name: str, env: dict[str, str], per_round: int, rounds: int) -> None:
        self.name = name
        self.per_round = per_round
        self.app = Packs(env=env)
        count = per_round * rounds + WARM_UP
        self.jobs = [
            pack
            for n in range((count + SESSIONS - 1) // SESSIONS)
            for pack in [self.app.open(f"C{n}")] * SESSIONS
        ]
        self.done = 0
        self._run(WARM_UP)

    def _run(self, count: int) -> float:
        started = time.perf_counter()
        for number in range(self.done, self.done + count):
            self.app.use(self.jobs[number], f"a{number}")
        self.done += count
        return count / (time.perf_counter() - started)

    def round(self) -> Metrics:
        return {"rate": self._run(self.per_round)}

    def setting(self, sql: str) -> str:
        """The value of a setting (``PRAGMA synchronous``, ``SHOW synchronous_commit``) on
        the recorder's own connection."""
        recorder: Any = self.app.recorder
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
        # psycopg's rows are dicts here (dict_row), sqlite3.Row iterates over its values
        return str(next(iter(row.values() if isinstance(row, dict) else row)))

    def close(self) -> None:
        self.app.close()


def popo(per_round: int, rounds: int) -> EventSourcedUsages:
    return EventSourcedUsages("eventsourcing POPO", {}, per_round, rounds)


def sqlite(path: str, per_round: int, rounds: int) -> EventSourcedUsages:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    return EventSourcedUsages("eventsourcing SQLite recorder", env, per_round, rounds)


def postgres(
    params: dict[str, str], schema: str, per_round: int, rounds: int
) -> EventSourcedUsages:
    """On the server and database of ``params`` (a parsed DSN), in ``schema``."""
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": params["dbname"],
        "POSTGRES_HOST": params.get("host") or params.get("hostaddr") or "127.0.0.1",
        "POSTGRES_PORT": params.get("port") or "5432",
        "POSTGRES_USER": params.get("user") or "postgres",
        "POSTGRES_PASSWORD": params.get("password") or "",
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "1",
    }
    # eventsourcing takes no DSN: libpq reads the options of every connection its pool opens
    # (now or later) from PGOPTIONS, which the PostgreSQL workloads set for the whole run.
    return EventSourcedUsages("eventsourcing PostgreSQL recorder", env, per_round, rounds)
