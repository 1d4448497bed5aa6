"""Schema version 6: a pack's terms are stored once, in ``packs.terms``, and the state every
commit rewrites leaves them out (issue 11, item 4).

A file at version 5 upgrades with every state unchanged; a row as this release writes it (a
state without terms) and one as a writer of an earlier release leaves it during a rolling
upgrade (a whole state, with or without ``terms`` in the row) load to the same state, pass
``check_snapshots`` and take this release's commits.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from sessionpacks.adapters._sql.rows import PROJECTION, lean_state, projection, terms_text
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.adapters.sqlite import MIGRATIONS, SqliteStore
from sessionpacks.ledger import PackState
from sessionpacks.model import (
    Allowance,
    Appointment,
    BundleLine,
    Money,
    PackTerms,
    PerPack,
    PerSession,
)
from sessionpacks.ports import PackQuery, PackRepository
from sessionpacks.serialization import dumps_state, loads_state
from sessionpacks.service import PackService

from ..pg_support import pg_dsn, pg_schema

__all__ = ["pg_dsn", "pg_schema"]

FIXTURES = Path(__file__).parents[1] / "fixtures"
ZONE = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 1, 15, 9, tzinfo=ZONE)
TEN = PackTerms(
    name="10 x Physio",
    allowance=Allowance.sessions(10),
    pricing=PerSession.flat(Money("120.00", "AUD")),
)
BUNDLE = PackTerms(
    name="Physio and massage",
    allowance=Allowance.sessions(10),
    pricing=PerPack(Money("700.00", "AUD")),
    lines=(
        BundleLine("Physio", {"physio"}, Allowance.sessions(6)),
        BundleLine("Massage", {"massage"}, Allowance.sessions(4)),
    ),
)


def _appointment(appointment_id: str, day: int, client: str = "C1") -> Appointment:
    return Appointment(
        id=appointment_id,
        client_id=client,
        service_id="massage" if day % 2 else "physio",
        start=datetime(2026, 2, 2, 8, tzinfo=ZONE) + timedelta(days=day),
        duration=timedelta(minutes=60),
        price=Money("120.00", "AUD"),
    )


def _desk(repo: PackRepository, prefix: str = "pk") -> PackService:
    ids = itertools.count(1)
    return PackService(repo, FixedClock(NOW), new_pack_id=lambda: f"{prefix}{next(ids)}")


def _used(desk: PackService, appointment: Appointment, pack_id: str) -> PackState:
    pack = desk.assign(appointment, pack_id=pack_id).pack
    assert pack is not None
    return pack


def _states(repo: PackRepository, pack_ids: list[str]) -> dict[str, PackState]:
    return {pack_id: repo.load(pack_id) for pack_id in pack_ids}


# A file at schema version 5 ----------------------------------------------------------------


def test_a_version_5_file_upgrades_past_6_with_every_state_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    shutil.copy(FIXTURES / "before-lifecycle.db", path)  # schema version 4
    SqliteStore(path, migrations=MIGRATIONS[:5]).close()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone() == (5,)
        whole = dict(raw.execute("SELECT pack_id, state FROM packs").fetchall())
        events = raw.execute("SELECT * FROM events ORDER BY practice_id, position").fetchall()
    assert whole
    before = {pack_id: loads_state(text) for pack_id, text in whole.items()}
    with SqliteStore(path) as store:
        repo = store.practice("demo-clinic")
        assert _states(repo, sorted(before)) == before
        assert repo.check_snapshots() == []
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone() == (
            len(MIGRATIONS),
        )
        rows = raw.execute("SELECT pack_id, state, terms FROM packs").fetchall()
        assert raw.execute("SELECT * FROM events ORDER BY practice_id, position").fetchall() == (
            events
        )
    for pack_id, state, terms in rows:
        assert "terms" not in json.loads(state), pack_id
        assert json.loads(terms) == json.loads(whole[pack_id])["terms"], pack_id
        assert len(state) + len(terms) < len(whole[pack_id]) + len(',"terms":')


# Rows as this release and an earlier one write them ------------------------------------------


@attrs.frozen
class Backend:
    """A store's opener and a raw ``run(sql, params)`` on its database (``?`` placeholders,
    ``{s}`` the table prefix)."""

    open: Callable[[], Any]
    run: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


@pytest.fixture(params=["sqlite", "postgres", "postgres-partitioned"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "packs.db"

        def run_sqlite(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            with closing(sqlite3.connect(path, isolation_level=None)) as raw:
                return raw.execute(sql.format(s=""), params).fetchall()

        yield Backend(lambda: SqliteStore(path), run_sqlite)
        return
    import psycopg

    dsn: str = request.getfixturevalue("pg_dsn")
    schema: str = request.getfixturevalue("pg_schema")
    partitions = 4 if request.param == "postgres-partitioned" else None
    PostgresStore(dsn, schema=schema, partitions=partitions).close()

    def run_pg(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn, autocommit=True) as raw:
            cursor = raw.execute(sql.format(s=f"{schema}.").replace("?", "%s").encode(), params)
            return cursor.fetchall() if cursor.description else []

    yield Backend(lambda: PostgresStore(dsn, schema=schema), run_pg)


_WHOLE = "UPDATE {s}packs SET state = ? WHERE pack_id = ?"
_OPENED_BEFORE = "UPDATE {s}packs SET state = ?, terms = NULL WHERE pack_id = ?"
_ROW = "SELECT state, terms FROM {s}packs WHERE pack_id = ?"


def _opened(backend: Backend) -> dict[str, PackState]:
    with backend.open() as store:
        desk = _desk(store.practice("clinic-1", "Australia/Sydney"))
        for client, terms in (("C1", TEN), ("C1", BUNDLE), ("C2", BUNDLE)):
            desk.open_pack(client, terms=terms)
        for day, pack_id in enumerate(["pk1", "pk1", "pk2", "pk2", "pk2", "pk3", "pk3"]):
            client = "C2" if pack_id == "pk3" else "C1"
            desk.assign(_appointment(f"A{day}", day, client), pack_id=pack_id)
        return _states(store.practice("clinic-1"), ["pk1", "pk2", "pk3"])


def test_rows_without_terms_and_whole_states_load_alike(backend: Backend) -> None:
    expected = _opened(backend)
    for pack_id, state in expected.items():
        text, terms = backend.run(_ROW, (pack_id,))[0]
        assert text == lean_state(state)
        assert terms == terms_text(state.terms)
    # As a writer of an earlier release leaves them: pk2 updated, pk3 opened by it.
    backend.run(_WHOLE, (dumps_state(expected["pk2"]), "pk2"))
    backend.run(_OPENED_BEFORE, (dumps_state(expected["pk3"]), "pk3"))
    with backend.open() as store:  # decoding nothing from an earlier store's cache
        repo = store.practice("clinic-1")
        assert _states(repo, sorted(expected)) == expected
        assert repo.client_packs("C1") == [expected["pk1"], expected["pk2"]]
        assert repo.client_packs("C2") == [expected["pk3"]]
        assert list(repo.find_packs(PackQuery()).packs) == list(expected.values())
        assert repo.check_snapshots() == []
        # This release's commits on them: pk3's terms are taken from the whole state.
        desk = _desk(repo)
        used = _used(desk, _appointment("B1", 20, "C2"), "pk3")
        desk.assign(_appointment("B2", 21), pack_id="pk2")
        text, terms = backend.run(_ROW, ("pk3",))[0]
        assert text == lean_state(used)
        assert json.loads(terms) == json.loads(terms_text(BUNDLE))
        assert repo.check_snapshots() == []
    with backend.open() as store:
        repo = store.practice("clinic-1")
        assert repo.load("pk3") == used
        assert repo.check_snapshots() == []


def test_a_state_without_terms_in_a_row_without_them_is_reported_and_rebuilt(
    backend: Backend,
) -> None:
    expected = _opened(backend)
    backend.run(_OPENED_BEFORE, (lean_state(expected["pk2"]), "pk2"))
    with backend.open() as store:
        repo = store.practice("clinic-1")
        assert repo.check_snapshots() == ["pk2"]
        assert repo.rebuild_snapshots() == ["pk2"]
        assert repo.check_snapshots() == []
        assert _states(repo, sorted(expected)) == expected
    assert backend.run(_ROW, ("pk2",))[0] == (
        lean_state(expected["pk2"]),
        terms_text(expected["pk2"].terms),
    )


@pytest.mark.postgres
def test_an_earlier_release_process_commits_during_the_upgrade(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its ``commit_changes`` (version 5) writes whole states and opens packs without terms."""
    from sessionpacks.adapters import postgres as pg
    from sessionpacks.adapters._sql import postgres_schema

    with PostgresStore(pg_dsn, schema=pg_schema) as store:
        desk = _desk(store.practice("clinic-1", "Australia/Sydney"))
        desk.open_pack("C1", terms=BUNDLE)
        desk.assign(_appointment("A1", 1), pack_id="pk1")
        # A process of the release before: version 5's arguments, whole states.
        earlier = store.practice("clinic-1")
        arguments = postgres_schema._arguments(PROJECTION, sharing=True)
        named = ", ".join(
            f"{name} => %({name}){'b' if kind.endswith('[]') else 's'}::{kind}"
            for name, kind, _ in arguments
        )
        monkeypatch.setattr(pg, "ARGUMENTS", arguments)
        monkeypatch.setattr(
            earlier, "_call", f"SELECT {pg_schema}.commit_changes({named})".encode()
        )
        prepare = earlier._prepare

        def whole(*given: Any) -> postgres_schema.Commit:
            commit = prepare(*given)
            columns = [projection(earlier._sql.dialect, c.after) for c in commit.packs]
            return attrs.evolve(commit, columns=columns)

        monkeypatch.setattr(earlier, "_prepare", whole)
        old_desk = _desk(earlier, "old")
        on_pk1 = _used(old_desk, _appointment("A2", 2), "pk1")
        old_pack = old_desk.open_pack("C1", terms=TEN)
        on_old = _used(old_desk, _appointment("A3", 3), old_pack.pack_id)
        monkeypatch.undo()
    with PostgresStore(pg_dsn, schema=pg_schema) as store:
        repo = store.practice("clinic-1")
        rows = {
            pack_id: (json.loads(state), terms)
            for pack_id, state, terms in _pg_rows(pg_dsn, pg_schema)
        }
        assert "terms" in rows["pk1"][0]  # updated by it: a whole state
        assert rows["pk1"][1] is not None
        assert "terms" in rows["old1"][0]  # opened by it: no terms in the row
        assert rows["old1"][1] is None
        assert repo.load("pk1") == on_pk1
        assert repo.load("old1") == on_old
        assert repo.check_snapshots() == []
        now = _used(_desk(repo), _appointment("A4", 4), "old1")
        rows = {pack_id: (state, terms) for pack_id, state, terms in _pg_rows(pg_dsn, pg_schema)}
        assert rows["old1"][0] == lean_state(now)
        assert rows["old1"][1] is not None
        assert json.loads(rows["old1"][1]) == json.loads(terms_text(TEN))
        assert repo.check_snapshots() == []
    with PostgresStore(pg_dsn, schema=pg_schema) as store:
        assert store.practice("clinic-1").load("old1") == now


def _pg_rows(dsn: str, schema: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as raw:
        sql = f"SELECT pack_id, state, terms FROM {schema}.packs ORDER BY pack_id"
        return raw.execute(sql.encode()).fetchall()


def test_packs_of_two_practices_alike_but_for_their_terms_load_their_own(
    backend: Backend,
) -> None:
    """Their states without terms are the same text: the decoded states are kept by practice."""
    with backend.open() as store:
        for practice, terms in (("clinic-1", TEN), ("clinic-2", BUNDLE)):
            _desk(store.practice(practice, "Australia/Sydney")).open_pack("C1", terms=terms)
        first, second = (store.practice(p).load("pk1") for p in ("clinic-1", "clinic-2"))
        assert lean_state(first) == lean_state(second)
        assert (first.terms, second.terms) == (TEN, BUNDLE)
    with backend.open() as store:
        assert store.practice("clinic-1").load("pk1").terms == TEN
        assert store.practice("clinic-2").load("pk1").terms == BUNDLE
