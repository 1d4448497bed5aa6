"""A smoke run of ``python -m benchmarks.costs`` at a tiny size, so that it cannot rot.

It checks that every workload prints its table and that the parts add up to the plain run's
figure (the module's construction), never how big any figure is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..pg_support import pg_dsn

__all__ = ["pg_dsn"]

ROOT = Path(__file__).resolve().parents[2]
TITLE = re.compile(r"^(?P<title>.+): (?P<total>[\d,.]+) (?P<unit>.+) \(plain run\)$")


def run(*args: str, module: str = "benchmarks.costs") -> str:
    """What ``python -m module args`` prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE")}
    ran = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return ran.stdout


def costs(*args: str) -> dict[str, tuple[float, dict[str, float]]]:
    """The tables printed by ``python -m benchmarks.costs args``: by title, the plain run's
    figure and the parts."""
    tables: dict[str, tuple[float, dict[str, float]]] = {}
    title = ""
    for line in run(*args).splitlines():
        if found := TITLE.match(line):
            title = found["title"]
            tables[title] = (_number(found["total"]), {})
        elif line.startswith("| ") and not line.startswith(("| part", "| ---")):
            part, figure, _ = (cell.strip() for cell in line.strip("|").split("|"))
            tables[title][1][part] = _number(figure)
    return tables


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _adds_up(total: float, parts: dict[str, float]) -> None:
    assert parts, "no parts"
    # Each figure is rounded to three significant digits or so; the sum is checked to 5%.
    assert sum(parts.values()) == pytest.approx(total, rel=0.05, abs=0.05)


def test_memory_sqlite_import_and_simulate_each_print_parts_that_add_up() -> None:
    tables = costs(
        *("--only", "memory", "--only", "sqlite", "--only", "import", "--only", "simulate"),
        *("--usages", "40", "--rows", "150", "--simulate", "4x2"),
    )
    assert [t.split(" (")[0] for t in tables] == [
        "a usage, memory",
        "a usage, sqlite",
        "an imported row",
        "`simulate --clients 4 --weeks 2` on SQLite, in process",
    ]
    for total, parts in tables.values():
        _adds_up(total, parts)
    sqlite = next(parts for title, (_, parts) in tables.items() if "sqlite" in title)
    assert "database: sqlite3 calls (statements, COMMIT and its fsync)" in sqlite


def test_postgres_splits_the_database_into_the_server_and_the_round_trip(pg_dsn: str) -> None:
    tables = costs("--only", "postgres", "--usages", "40", "--pg-dsn", pg_dsn)
    [(total, parts)] = tables.values()
    _adds_up(total, parts)
    assert parts["database: the commit function on the server (pg_stat_user_functions)"] > 0


def test_wal_pages_name_the_tables_and_indexes_a_usage_writes() -> None:
    printed = run("--only", "pages", "--usages", "20")
    rows = {
        cells[0].strip(): float(cells[1])
        for line in printed.splitlines()
        if line.startswith("| ") and not line.startswith(("| table", "| ---"))
        for cells in [line.strip("|").split("|")]
    }
    assert "WAL pages a transaction on SQLite (20 usages; 20 bare INSERTs)" in printed
    # Each usage appends one entry and at least one event, and moves the event counter.
    assert rows["entries"] >= 1
    assert rows["events"] >= 1
    assert rows["practices"] >= 1
    bare = rows.pop("the bare one-row INSERT, all")
    assert 0 < bare < rows["all"]
    assert rows["all"] == pytest.approx(sum(v for k, v in rows.items() if k != "all"), abs=0.05)
