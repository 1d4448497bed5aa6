"""The ``report`` workload: ``PackService.report`` and ``journal`` over a simulated practice.

The practice is made once per run by ``sessionpacks simulate --clients C --weeks W`` (seed 1,
from 2026-03-02), run in this process through the command line's own entry point
(:func:`sessionpacks._cli.app.main`), into a SQLite file in the run's temporary folder. Every
round then opens the file afresh (a new store, so no state is cached from the round before) and
times one call, interleaved with the others:

* ``report`` for the whole simulated period (``[start, start + W weeks)``), for the month in
  its middle, and for the whole period ``as_of`` its middle instant;
* ``journal`` for the same month;
* baselines: every ledger row of the practice read with ``sqlite3`` and decoded with
  ``json.loads`` (the floor of any report read from this file), and every pack's folded state
  read through ``PackService.find_packs`` in pages of 1,000.

Rates are packs per second: the practice's packs over the seconds of the call, since every
call reads every pack's ledger whatever the period. ``python -m benchmarks.reporting --db
PATH`` profiles one report over such a file (building it first if it does not exist).
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sessionpacks import _compose as compose
from sessionpacks._cli.app import main as cli
from sessionpacks._cli.simulate import SIM_PRACTICE
from sessionpacks.clock import FixedClock
from sessionpacks.ports import MAX_PAGE, PackQuery
from sessionpacks.service import PackService

from .harness import Metrics, say

ZONE = ZoneInfo("Australia/Sydney")
START = date(2026, 3, 2)
"""The simulation's first Monday (``simulate``'s default ``--start``)."""


def build(path: Path, clients: int, weeks: int) -> tuple[float, dict[str, Any]]:
    """``sessionpacks simulate`` into ``path``, in process: its seconds and its JSON."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["--db", str(path), "--json", "simulate"]
    argv += ["--clients", str(clients), "--weeks", str(weeks), "--start", START.isoformat()]
    started = time.perf_counter()
    status = cli(argv, out=out, err=err)
    seconds = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"simulate {argv} exited {status}: {err.getvalue()[-2000:]}")
    data: dict[str, Any] = json.loads(out.getvalue())
    return seconds, data


def facts(path: Path) -> dict[str, int]:
    """How big the practice is: its packs, ledger entries and events, and the file's bytes."""
    with sqlite3.connect(path) as connection:

        def count(table: str) -> int:
            row = connection.execute(
                f"SELECT count(*) FROM {table} WHERE practice_id = ?", (SIM_PRACTICE,)
            ).fetchone()
            return int(row[0])

        found = {t: count(t) for t in ("packs", "entries", "events")}
    connection.close()
    found["bytes"] = sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*") if p.is_file())
    return found


class Period:
    """The periods reported on: the whole simulation, its middle month, its middle instant."""

    def __init__(self, weeks: int) -> None:
        self.start = START
        self.end = START + timedelta(weeks=weeks)
        middle = START + (self.end - START) / 2
        self.month_start = middle.replace(day=1)
        self.month_end = (self.month_start + timedelta(days=32)).replace(day=1)
        self.middle = datetime.combine(middle, datetime.min.time(), ZONE)

    def month(self) -> str:
        return self.month_start.strftime("%B %Y")


class _Call:
    """One call timed on a freshly opened store: its seconds and packs/s."""

    def __init__(
        self, name: str, path: Path, packs: int, call: Callable[[PackService], object]
    ) -> None:
        self.name = name
        self.path = path
        self.packs = packs
        self.call = call

    def round(self) -> Metrics:
        store = compose.open_store(None, self.path)
        try:
            clock = FixedClock(datetime.combine(START, datetime.min.time(), ZONE))
            service = compose.open_service(store, SIM_PRACTICE, ZONE.key, clock)
            started = time.perf_counter()
            self.call(service)
            seconds = time.perf_counter() - started
        finally:
            compose.close(store)
        return {"seconds": seconds, "rate": self.packs / seconds}

    def close(self) -> None:
        pass


class BareLedgerRows:
    """Every ledger row of the practice read with ``sqlite3`` and decoded by ``json.loads``."""

    name = "bare SQL: every ledger row read and decoded"

    def __init__(self, path: Path, packs: int) -> None:
        self.path = path
        self.packs = packs

    def round(self) -> Metrics:
        connection = sqlite3.connect(self.path)
        try:
            started = time.perf_counter()
            rows = connection.execute(
                "SELECT pack_id, sequence, entry FROM entries WHERE practice_id = ? "
                "ORDER BY pack_id, sequence",
                (SIM_PRACTICE,),
            )
            decoded = [(pack, sequence, json.loads(entry)) for pack, sequence, entry in rows]
            seconds = time.perf_counter() - started
        finally:
            connection.close()
        if not decoded:
            raise RuntimeError(f"no ledger rows in {self.path}")
        return {"seconds": seconds, "rate": self.packs / seconds}

    def close(self) -> None:
        pass


def every_state(service: PackService) -> int:
    """Every pack of the practice through ``find_packs``: how many."""
    page = service.find_packs(PackQuery(), limit=MAX_PAGE)
    count = len(page.packs)
    while page.next_cursor is not None:
        page = service.find_packs(PackQuery(), after=page.next_cursor, limit=MAX_PAGE)
        count += len(page.packs)
    return count


def calls(path: Path, packs: int, period: Period) -> list[_Call]:
    """The report calls timed, and the ``find_packs`` baseline, in their table's order."""
    month = period.month()
    return [
        _Call(
            f"report, {period.start} to {period.end}",
            path,
            packs,
            lambda s: s.report(period.start, period.end),
        ),
        _Call(
            f"report, {month}",
            path,
            packs,
            lambda s: s.report(period.month_start, period.month_end),
        ),
        _Call(
            f"report, {period.start} to {period.end}, as_of {period.middle:%Y-%m-%d %H:%M}",
            path,
            packs,
            lambda s: s.report(period.start, period.end, as_of=period.middle),
        ),
        _Call(
            f"journal, {month}",
            path,
            packs,
            lambda s: s.journal(period.month_start, period.month_end),
        ),
        _Call("every pack state through find_packs", path, packs, every_state),
    ]


def check(path: Path, period: Period) -> None:
    """The year's report reconciles and has figures in it (a report of nothing is no test)."""
    store = compose.open_store(None, path)
    try:
        clock = FixedClock(datetime.combine(START, datetime.min.time(), ZONE))
        service = compose.open_service(store, SIM_PRACTICE, ZONE.key, clock)
        found = service.report(period.start, period.end)
    finally:
        compose.close(store)
    if not found.totals or not found.balances:
        raise RuntimeError(f"the report over {path} is empty or does not balance: {found}")
    say(f"report: {len(found.lines)} lines, {len(found.totals)} totals, balances")


def profile(path: Path, weeks: int, top: int) -> None:
    """``cProfile`` of one ``report`` over the whole period of the practice at ``path``."""
    import cProfile
    import pstats

    period = Period(weeks)
    store = compose.open_store(None, path)
    try:
        clock = FixedClock(datetime.combine(START, datetime.min.time(), ZONE))
        service = compose.open_service(store, SIM_PRACTICE, ZONE.key, clock)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(service.report, period.start, period.end)
        seconds = time.perf_counter() - started
    finally:
        compose.close(store)
    say(f"report {period.start} to {period.end}: {seconds:.2f} s under cProfile")
    for order in ("cumulative", "tottime"):
        pstats.Stats(profiler).strip_dirs().sort_stats(order).print_stats(top)


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.reporting",
        description="Profile one report over a simulated practice (the report workload's "
        "file); the timed figures come from python -m benchmarks --only report.",
    )
    p.add_argument("--db", type=Path, required=True, help="the file: reused if it exists")
    p.add_argument("--clients", type=int, default=2000, help="to build it (default 2000)")
    p.add_argument("--weeks", type=int, default=52, help="its weeks (default 52)")
    p.add_argument("--top", type=int, default=25, help="functions shown (default 25)")
    args = p.parse_args(argv)
    if not args.db.exists():
        seconds, _ = build(args.db, args.clients, args.weeks)
        say(f"built {args.db} in {seconds:.1f} s")
    say(f"{facts(args.db)}")
    profile(args.db, args.weeks, args.top)


if __name__ == "__main__":
    main()
