"""A smoke run of every benchmark workload at a tiny size, so that the harness cannot rot.

These tests assert only that each workload produced its rows with numbers in them, never a
speed: benchmarks never decide whether a test passes (docs/performance.md). The harness runs
as it is run by hand, ``python -m benchmarks --quick --no-write --rounds 1``, in a child
process with the project root as its working folder.

eventsourcing, the baseline of three workloads, is in the ``bench`` dependency group only, which
a plain ``uv run pytest`` does not install: without it the eventsourcing tests skip (also under
CI) and the harness's own note is checked instead.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from ..pg_support import pg_dsn

__all__ = ["pg_dsn"]

ROOT = Path(__file__).resolve().parents[2]
ES_MISSING = "eventsourcing is not installed (it is in the bench group: uv sync --group bench)"


@functools.cache
def harness(tmp: Path, *only: str, dsn: str = "", prelude: str = "") -> dict[str, Any]:
    """The JSON report of a tiny run of the workloads named ``only`` (cached per arguments)."""
    out = tmp / f"report-{abs(hash((only, dsn, prelude)))}.json"
    args = ["--quick", "--no-write", "--rounds", "1", "--pg-dsn", dsn, "--json", str(out)]
    for name in only:
        args += ["--only", name]
    code = f"{prelude}\nfrom benchmarks.__main__ import main\nmain({args!r})"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE")}
    ran = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("benchmarks")


def rows(report: dict[str, Any], workload: str, baseline: str | None = None) -> list[Any]:
    found = [
        r
        for r in report["rows"]
        if workload in r["workload"] and (baseline is None or baseline in r["baseline"])
    ]
    assert found, f"no row for {workload!r} against {baseline!r}: {report['rows']}"
    return found


def has_numbers(row: dict[str, Any], with_baseline: bool = True) -> None:
    assert isinstance(row["median"], float), row
    assert row["median"] > 0, row
    if with_baseline:
        assert isinstance(row["base_median"], float), row
        assert isinstance(row["ratio"], float), row
    assert row["verdict"] in ("met", "missed", "n/a", "-"), row


def test_import_against_executemany_with_memory_and_both_tenths(tmp: Path) -> None:
    report = harness(tmp, "import")
    has_numbers(rows(report, "`sessionpacks import`", "executemany")[0])
    has_numbers(rows(report, "import peak memory")[0], with_baseline=False)
    # the two tenths need progress samples, which a 200-row import may finish before
    assert rows(report, "last tenth of the run vs first")


def test_usages_on_sqlite_against_a_bare_insert(tmp: Path) -> None:
    has_numbers(rows(harness(tmp, "usages-sqlite"), "usages/s, SQLite", "bare SQLite")[0])


def test_usages_in_memory(tmp: Path) -> None:
    assert rows(harness(tmp, "usages-memory"), "usages/s, in memory")[0]["median"] > 0


def test_simulate_on_sqlite(tmp: Path) -> None:
    has_numbers(rows(harness(tmp, "simulate"), "on SQLite")[0], with_baseline=False)


def test_report_and_journal_over_a_simulated_practice(tmp: Path) -> None:
    report = harness(tmp, "report")
    for call in ("report, 2026-03-02 to 2026-03-30", "report, March 2026", "as_of", "journal"):
        has_numbers(rows(report, call, "bare SQL")[0])
        assert rows(report, call)[-1]["unit"] == "packs/s"
    has_numbers(rows(report, "report, 2026-03-02", "find_packs")[0])
    assert any("`simulate --clients 20 --weeks 4`" in note for note in report["notes"])


def test_without_a_server_the_postgresql_workloads_are_skipped_with_a_note(tmp: Path) -> None:
    report = harness(tmp, "usages-postgres")
    assert report["rows"] == []
    assert any("PostgreSQL workloads skipped" in note for note in report["notes"])


@pytest.mark.postgres
def test_usages_on_postgresql_against_a_bare_insert(tmp: Path, pg_dsn: str) -> None:
    report = harness(tmp, "usages-postgres", dsn=pg_dsn)
    has_numbers(rows(report, "usages/s, PostgreSQL", "bare psycopg")[0])
    assert any("'bare': 'on', 'PackService': 'on'" in note for note in report["notes"])


@pytest.mark.postgres
def test_simulate_on_postgresql(tmp: Path, pg_dsn: str) -> None:
    report = harness(tmp, "simulate", dsn=pg_dsn)
    has_numbers(rows(report, "on PostgreSQL")[0], with_baseline=False)


def test_without_eventsourcing_its_baselines_are_skipped_with_a_note(tmp: Path) -> None:
    report = harness(
        tmp, "usages-memory", prelude="import sys; sys.modules['eventsourcing'] = None"
    )
    assert [r["baseline"] for r in report["rows"]] == ["-"]
    assert any("eventsourcing is not installed" in note for note in report["notes"])


def needs_eventsourcing() -> None:
    if find_spec("eventsourcing") is None:
        pytest.skip(ES_MISSING)


def test_eventsourcing_popo_baseline(tmp: Path) -> None:
    needs_eventsourcing()
    has_numbers(rows(harness(tmp, "usages-memory"), "in memory", "eventsourcing POPO")[0])


def test_eventsourcing_sqlite_baseline(tmp: Path) -> None:
    needs_eventsourcing()
    report = harness(tmp, "usages-sqlite")
    has_numbers(rows(report, "SQLite", "eventsourcing SQLite")[0])
    assert any("'eventsourcing': 2" in note for note in report["notes"])


@pytest.mark.postgres
def test_eventsourcing_postgresql_baseline(tmp: Path, pg_dsn: str) -> None:
    needs_eventsourcing()
    report = harness(tmp, "usages-postgres", dsn=pg_dsn)
    has_numbers(rows(report, "PostgreSQL", "eventsourcing PostgreSQL")[0])
    assert any("'eventsourcing': 'on'" in note for note in report["notes"])
