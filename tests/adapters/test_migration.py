"""A SQLite file written by the release before issue 8 (``tests/fixtures/release-0.1.0.db``,
made by that release with every kind of history) opens, migrates and reads as it did.

``release-0.1.0.json`` holds the figures that release reported for each pack. The migration
adds the idempotency table (R27) and folds every ledger again, since the states it kept lack
what this release tracks (R7a tier places, R12b occurrences); no entry changes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sessionpacks import FixedClock, PackService, PreferTemplate
from sessionpacks.adapters.sqlite import MIGRATIONS, SqliteStore
from sessionpacks.ledger import replay
from sessionpacks.pricing import figures, invoice_line, recognised, refundable

from ..conftest import appt
from ..pg_support import pg_dsn, pg_schema

__all__ = ["pg_dsn", "pg_schema"]

FIXTURES = Path(__file__).parents[1] / "fixtures"
NOW = datetime(2026, 3, 1, 9, tzinfo=ZoneInfo("Australia/Sydney"))


def _read_only() -> Any:
    """The fixture, opened read-only: a missing file is an error, not a new empty one."""
    return sqlite3.connect(f"file:{FIXTURES / 'release-0.1.0.db'}?mode=ro", uri=True)


@pytest.fixture
def migrated(tmp_path: Path) -> SqliteStore:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURES / "release-0.1.0.db", path)
    store = SqliteStore(path)
    assert store.practice("clinic-1") is not None
    return store


def _reported(store: SqliteStore) -> dict[str, object]:
    repo = store.practice("clinic-1")
    found: dict[str, object] = {}
    for client in ("C1", "C2", "C3", "C4"):
        for p in repo.client_packs(client):
            found[p.pack_id] = {
                "client": p.client_id,
                "version": p.version,
                "remaining": str(p.remaining),
                "total": str(p.total),
                "status": p.status(NOW).value,
                "expiry": None if p.expiry_date is None else p.expiry_date.isoformat(),
                "labels": {u.appointment.id: p.label(u.appointment.id) for u in p.usages},
                "lines": {
                    u.appointment.id: [
                        str(invoice_line(p, u.appointment.id).amount),
                        invoice_line(p, u.appointment.id).label,
                    ]
                    for u in p.usages
                    if u.invoice is not None
                },
                "recognised": [str(r.amount) for r in recognised(p)],
                "refundable": str(refundable(p)),
            }
    found["_events"] = len(repo.events_since(0))
    return found


def test_an_old_file_migrates_and_every_state_is_its_ledger(migrated: SqliteStore) -> None:
    repo = migrated.practice("clinic-1")
    assert repo.check_snapshots() == []
    for client in ("C1", "C2", "C3", "C4"):
        for pack in repo.client_packs(client):
            assert pack == replay(repo.ledger(pack.pack_id))


def test_every_figure_reads_as_the_old_release_reported(migrated: SqliteStore) -> None:
    old = json.loads((FIXTURES / "release-0.1.0.json").read_text())
    new = _reported(migrated)
    # The one figure that changed is the bug fixed by R15a: a per-pack debit's value was in no
    # figure, and the old release counted it as refundable. Now it is written off.
    repo = migrated.practice("clinic-1")
    for pack_id, written in old.items():
        if pack_id == "_events":
            continue
        state = repo.load(pack_id)
        written_off = figures(state).written_off
        expected = dict(written)
        if written_off.amount:
            expected["refundable"] = str(refundable(state) + written_off)
            assert expected["refundable"] == written["refundable"]
            expected["refundable"] = str(refundable(state))
        assert new[pack_id] == expected, pack_id
    assert new["_events"] == old["_events"]


def test_an_old_file_takes_new_commands(migrated: SqliteStore) -> None:
    repo = migrated.practice("clinic-1")
    desk = PackService(repo, FixedClock(NOW))
    events = len(repo.events_since(0))
    desk.set_preference("C1", PreferTemplate("ten"), idempotency_key="k1")
    booked = desk.book(appt("N1", "2026-03-10T10:00"), idempotency_key="k2")
    assert desk.book(appt("N1", "2026-03-10T10:00"), idempotency_key="k2") == booked
    assert len(repo.events_since(0)) > events
    assert repo.check_snapshots() == []


def test_the_fixture_is_at_the_first_schema_version(tmp_path: Path) -> None:

    with _read_only() as raw:
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone() == (1,)
    assert len(MIGRATIONS) == 8


def _due(store: SqliteStore, day: date) -> tuple[list[str], list[str]]:
    """The expiry candidates as of ``day``, and the packs the definition says are due."""
    repo = store.practice("clinic-1")
    packs = [p for c in ("C1", "C2", "C3", "C4") for p in repo.client_packs(c)]
    due = sorted(p.pack_id for p in packs if p.due_to_expire(day))
    return sorted(p.pack_id for p in repo.expiry_candidates(day)), due


_SWEEPS = [date(2026, 1, 1), date(2026, 6, 1), date(2027, 6, 1), date(2030, 1, 1)]


def test_every_pack_keeps_its_pending_expiry_after_the_upgrade(migrated: SqliteStore) -> None:
    with closing(sqlite3.connect(migrated.path)) as raw:
        stored = dict(raw.execute("SELECT pack_id, pending_expiry FROM packs").fetchall())
    repo = migrated.practice("clinic-1")
    assert stored
    for pack_id, pending in stored.items():
        expected = repo.load(pack_id).pending_expiry
        assert pending == (None if expected is None else expected.isoformat()), pack_id
    for day in _SWEEPS:
        candidates, due = _due(migrated, day)
        assert candidates == due, day
    assert any(_due(migrated, day)[1] for day in _SWEEPS)  # the fixture has packs to expire


def test_a_file_at_version_2_migrates(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    shutil.copy(FIXTURES / "release-0.1.0.db", path)
    SqliteStore(path, migrations=MIGRATIONS[:2]).close()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone() == (2,)
        columns = [row[1] for row in raw.execute("PRAGMA table_info(packs)")]
    assert "pending_expiry" not in columns
    with SqliteStore(path) as store:
        repo = store.practice("clinic-1")
        assert repo.check_snapshots() == []
        for day in _SWEEPS:
            candidates, due = _due(store, day)
            assert candidates == due, day


@pytest.mark.postgres
@pytest.mark.parametrize("version", [1, 2])
def test_an_old_postgresql_schema_migrates_the_same(
    pg_dsn: str, pg_schema: str, version: int
) -> None:
    """The fixture's rows copied into a schema at ``version``, then opened by this release."""

    import psycopg

    from sessionpacks.adapters.postgres import MIGRATIONS as PG_MIGRATIONS
    from sessionpacks.adapters.postgres import PostgresStore

    PostgresStore(pg_dsn, schema=pg_schema, migrations=PG_MIGRATIONS[:version]).close()
    columns = {
        "practices": "practice_id, timezone, last_position",
        "packs": "practice_id, pack_id, client_id, version, state, expiry_date, ended,"
        " remaining_units, expired_on",
        "entries": "practice_id, pack_id, sequence, kind, entry",
        "events": "practice_id, position, event_id, pack_id, kind, event",
        "active_usages": "practice_id, appointment_id, pack_id",
        "templates": "practice_id, template_id, version, template",
        "preferences": "practice_id, client_id, preference",
    }
    with _read_only() as old, psycopg.connect(pg_dsn) as pg:
        for table, names in columns.items():
            order = "rowid" if table in ("packs", "templates") else "1"
            rows = old.execute(f"SELECT {names} FROM {table} ORDER BY {order}").fetchall()
            if table == "packs":  # SQLite keeps booleans as integers
                rows = [(*r[:6], bool(r[6]), *r[7:]) for r in rows]
            marks = ", ".join(["%s"] * len(names.split(",")))
            with pg.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {pg_schema}.{table} ({names}) VALUES ({marks})".encode(), rows
                )
    old_figures = json.loads((FIXTURES / "release-0.1.0.json").read_text())
    with PostgresStore(pg_dsn, schema=pg_schema) as store:
        assert store.migrated_from == version
        repo = store.practice("clinic-1")
        assert repo.check_snapshots() == []
        packs = [p for c in ("C1", "C2", "C3", "C4") for p in repo.client_packs(c)]
        for day in _SWEEPS:
            due = sorted(p.pack_id for p in packs if p.due_to_expire(day))
            assert sorted(p.pack_id for p in repo.expiry_candidates(day)) == due, day
        for pack_id, written in old_figures.items():
            if pack_id != "_events":
                state = repo.load(pack_id)
                assert state == replay(repo.ledger(pack_id))
                assert (str(state.remaining), state.version) == (
                    written["remaining"],
                    written["version"],
                )
        desk = PackService(repo, FixedClock(NOW))
        booked = desk.book(appt("N1", "2026-03-10T10:00"), idempotency_key="k")
        assert desk.book(appt("N1", "2026-03-10T10:00"), idempotency_key="k") == booked
