"""A SQLite file written by the release before issue 9 (``tests/fixtures/before-lifecycle.db``,
the demo's file, made by commit e0dbed1 as ``tests/fixtures/make_before_lifecycle.py`` says)
opens with this release, passes ``check_snapshots()`` and reports every figure as that release
did (``before-lifecycle.json``); the new rules (holds R22, reminders R25, as-of R23, shared
packs R20) then work on its packs."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sessionpacks import FixedClock, PackService
from sessionpacks.adapters.sqlite import SqliteStore

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _maker() -> Any:
    """The script that made the fixture, loaded from its file (it is not a package module)."""
    spec = importlib.util.spec_from_file_location(
        "make_before_lifecycle", FIXTURES / "make_before_lifecycle.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reported: Callable[[str], dict[str, Any]] = _maker().reported

SYDNEY = ZoneInfo("Australia/Sydney")


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURES / "before-lifecycle.db", path)
    return path


def test_the_file_passes_its_snapshot_check_and_reports_what_it_did(old_file: Path) -> None:
    expected: dict[str, Any] = json.loads((FIXTURES / "before-lifecycle.json").read_text())
    with SqliteStore(old_file) as store:
        assert store.practice("demo-clinic").check_snapshots() == []
    found = reported(str(old_file))
    for pack in (v for k, v in found.items() if not k.startswith("_")):
        # A figure this release added (R21): nothing was ever transferred in that file.
        assert pack["figures"].pop("transferred") == "0.00 AUD"
    assert found == expected


def test_the_new_rules_work_on_the_old_packs(old_file: Path) -> None:
    with SqliteStore(old_file) as store:
        clock = FixedClock(datetime(2026, 3, 20, 9, tzinfo=SYDNEY))
        service = PackService(store.practice("demo-clinic"), clock)
        before = service.pack("PK-0001")
        held = service.hold("PK-0001", date(2026, 4, 1), date(2026, 4, 8), "travel")
        assert held.expiry_date == before.expiry_date.replace(day=9)  # type: ignore[union-attr]
        then = service.pack("PK-0001", as_of=datetime(2026, 3, 19, 9, tzinfo=SYDNEY))
        assert then == before
        assert store.practice("demo-clinic").check_snapshots() == []


def test_an_old_pack_can_be_shared(old_file: Path) -> None:
    """Schema version 5 adds the index of shared packs (R20) to a file made before it."""
    with SqliteStore(old_file) as store:
        clock = FixedClock(datetime(2026, 3, 20, 9, tzinfo=SYDNEY))
        repo = store.practice("demo-clinic")
        service = PackService(repo, clock)
        owner = service.pack("PK-0001").client_id
        shared = service.share("PK-0001", "new-family-member")
        assert shared.clients == (owner, "new-family-member")
        assert [p.pack_id for p in service.client_packs("new-family-member")] == ["PK-0001"]
        assert repo.check_snapshots() == []
    with SqliteStore(old_file) as store:
        assert store.practice("demo-clinic").load("PK-0001").shared_with == ("new-family-member",)
