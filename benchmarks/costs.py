"""What the time of each workload is made of: ``python -m benchmarks.costs``.

Each workload runs twice at the same size in one process: once plain, timed, which gives the
cost of one usage (or one imported row, or the whole simulation), and once under
``cProfile``, whose functions are put into parts by the module that defines them. The
profiler's own cost falls on every Python call, so it inflates the Python parts and leaves
the database's calls (a handful of C calls, each waiting on the disk or the server) almost
as they are. So the database's part is taken from the profile as measured, and the rest of
the plain time is shared among the other parts in the profile's proportions. The parts add
up to the plain time by construction; the database's part is a measurement, the others are
estimates from the profile.

It writes nothing; it prints a table per workload. Sizes are small by default so the whole
run takes a few minutes: the per-usage and per-row figures do not depend on size (the
import's rate stays flat from 100,000 to 1,000,000 rows in the harness).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

from sessionpacks.ports import PackRepository

_ROUND_TRIP: frozenset[str] = frozenset(
    {"_send_query_prepared", "_send_query", "wait", "wait_c", "_wait", "wait_conn"}
)

# Parts, tried in order: the first whose test matches a function's (file, name) takes it.
PARTS: list[tuple[str, Callable[[str, str], bool]]] = [
    (
        "database: sqlite3 calls (statements, COMMIT and its fsync)",
        lambda f, n: f == "~" and "sqlite3." in n,
    ),
    (
        # The binary driver's libpq calls are Cython functions, which the profiler does not
        # see: their time is the own time of the Python functions that send and wait.
        "database: the round trip (sending, the server's work, waiting for the reply)",
        lambda f, n: (
            ("psycopg" in f and n in _ROUND_TRIP) or (f == "~" and ("select" in n or "poll" in n))
        ),
    ),
    (
        "psycopg: adapting arguments and results, its Python layers",
        lambda f, n: "psycopg" in f or (f == "~" and "psycopg" in n),
    ),
    (
        "encoding and decoding (json, cattrs, the row codecs)",
        lambda f, n: (
            "/json/" in f
            or "_json" in n
            or "/cattrs/" in f
            or "cattrs generated" in f
            or f.endswith(("sessionpacks/serialization.py", "sessionpacks/_encoding.py"))
            or f.endswith("_sql/rows.py")
        ),
    ),
    (
        "the decision (operations, resolution, pricing, limits)",
        lambda f, n: f.endswith(
            (
                "sessionpacks/operations.py",
                "sessionpacks/resolution.py",
                "sessionpacks/pricing.py",
                "sessionpacks/_limits.py",
            )
        ),
    ),
    ("the fold (ledger)", lambda f, n: f.endswith("sessionpacks/ledger.py")),
    (
        "values built and checked (model, events, attrs)",
        lambda f, n: (
            f.endswith(
                ("sessionpacks/model.py", "sessionpacks/events.py", "sessionpacks/_currencies.py")
            )
            or "/attr/" in f
            or "attrs generated" in f
        ),
    ),
    (
        "the service and the batch",
        lambda f, n: f.endswith(
            ("sessionpacks/service.py", "sessionpacks/_batch.py", "sessionpacks/_commands.py")
        ),
    ),
    ("the store's own code (adapters)", lambda f, n: "sessionpacks/adapters/" in f),
    (
        "the command line and the CSV file",
        lambda f, n: "sessionpacks/_cli/" in f or f.endswith("/csv.py") or "_csv" in n,
    ),
    ("dates, times and zones", lambda f, n: "datetime" in n or "zoneinfo" in f or "dateutil" in f),
]
KINDS = ("memory", "sqlite", "postgres", "pages", "import", "simulate")
OTHER = "everything else (builtins, the standard library, the benchmark's loop)"
DATABASE = PARTS[0][0], PARTS[1][0]


def part_of(file: str, name: str) -> str:
    for part, test in PARTS:
        if test(file, name):
            return part
    return OTHER


def parts(profile: cProfile.Profile) -> dict[str, float]:
    """Own time (``tottime``) by part, in seconds."""
    stats = pstats.Stats(profile)
    totals: dict[str, float] = {}
    for (file, _, name), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        part = part_of(file, name)
        totals[part] = totals.get(part, 0.0) + own
    return totals


def share(plain: float, profiled: dict[str, float]) -> dict[str, float]:
    """``plain`` seconds split into parts: the database's as profiled, the rest in proportion.
    Should the database's calls have taken longer in the profiled run than the whole plain
    run (a disk that was slower for a moment), every part is its share of the profiled run."""
    database = sum(profiled.get(p, 0.0) for p in DATABASE)
    rest = sum(v for p, v in profiled.items() if p not in DATABASE)
    if database >= plain or not rest:
        total = database + rest
        return {p: v / total * plain for p, v in profiled.items()} if total else {}
    left = plain - database
    return {p: (v if p in DATABASE else v / rest * left) for p, v in profiled.items()}


def table(title: str, unit: str, scale: float, plain: float, split: dict[str, float]) -> str:
    """A markdown table of ``split`` (seconds) in ``unit`` (seconds times ``scale``)."""
    lines = [f"\n{title}: {_figure(plain * scale)} {unit} (plain run)\n"]
    lines.append(f"| part | {unit} | share |")
    lines.append("| --- | --- | --- |")
    for part, seconds in sorted(split.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {part} | {_figure(seconds * scale)} | {seconds / plain:.0%} |")
    return "\n".join(lines)


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def measure(
    run: Callable[[], object], again: Callable[[], object]
) -> tuple[float, dict[str, float]]:
    """``run`` timed plain, then ``again`` (the same work, afresh) under the profiler."""
    started = time.perf_counter()
    run()
    plain = time.perf_counter() - started
    profile = cProfile.Profile()
    profile.runcall(again)
    return plain, parts(profile)


# Usages ---------------------------------------------------------------------------------------


def usages(kind: str, count: int, work: Path, dsn: str | None) -> str:
    from sessionpacks.adapters.memory import InMemoryStore
    from sessionpacks.adapters.postgres import PostgresStore
    from sessionpacks.adapters.sqlite import SqliteStore

    from .usages import Usages

    stores: list[object] = []
    schemas: list[str] = []

    def repository(tag: str) -> PackRepository:
        if kind == "memory":
            return InMemoryStore().practice("bench", "Australia/Sydney")
        store: SqliteStore | PostgresStore
        if kind == "sqlite":
            store = SqliteStore(work / f"costs-{tag}.db")
        else:
            schemas.append(f"costs_{os.getpid()}_{uuid.uuid4().hex[:8]}")
            store = PostgresStore(str(dsn), schema=schemas[-1], max_size=1)
        stores.append(store)
        return store.practice("bench", "Australia/Sydney")

    try:
        runs = [Usages(kind, repository(tag), count, 1) for tag in ("plain", "profiled")]
        plain, profiled = measure(lambda: runs[0]._run(count), lambda: runs[1]._run(count))
    finally:
        for store in stores:
            store.close()  # type: ignore[attr-defined]
    split = share(plain, profiled)
    title = f"a usage, {kind} ({count:,} usages)"
    if schemas:
        round_trip = split.pop(DATABASE[1])
        # One commit a usage. The server's time is of the plain run and the round trip's of
        # the profiled one: should a slower moment make the first the larger, the round trip
        # is taken as all server time, so that the parts still add up.
        server = min(_server_seconds(str(dsn), schemas) * count, round_trip)
        split["database: the commit function on the server (pg_stat_user_functions)"] = server
        split["database: the round trip besides (network, WAL flush, the other statements)"] = (
            round_trip - server
        )
    return table(title, "µs a usage", 1e6 / count, plain, split)


def _server_seconds(dsn: str, schemas: list[str]) -> float:
    """The server's mean time in one call of ``commit_changes`` in the plain run's schema
    (``schemas[0]``; its set-up's calls too: opening a pack commits much the same); the
    schemas are dropped."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        time.sleep(1.0)  # the closed sessions' statistics reach the collector
        row = connection.execute(
            b"SELECT sum(self_time) / nullif(sum(calls), 0) FROM pg_stat_user_functions "
            b"WHERE schemaname = %s AND funcname = 'commit_changes'",
            (schemas[0],),
        ).fetchone()
        for schema in schemas:
            connection.execute(f"DROP SCHEMA {schema} CASCADE".encode())
    return float(row[0] if row else 0.0) / 1000.0


def wal_pages(count: int, work: Path) -> str:
    """The pages a usage writes to SQLite's WAL, by the table or index each belongs to, and
    those of the bare one-row INSERT beside it: read from the frames' headers after ``count``
    transactions (fewer than fill the WAL before it is checkpointed), each page named by the
    ``dbstat`` table."""
    from sessionpacks.adapters.sqlite import SqliteStore

    from .usages import BareSqlite, Usages

    path = work / "costs-pages.db"
    with SqliteStore(path) as store:
        run = Usages("pages", store.practice("bench", "Australia/Sydney"), count, 1)
        ours = _frames(path, lambda: run._run(count))
    bare = BareSqlite(work / "costs-pages-bare.db", count)
    try:
        theirs = _frames(work / "costs-pages-bare.db", lambda: bare._run(count))
    finally:
        bare.close()
    lines = [f"\nWAL pages a transaction on SQLite ({count:,} usages; {count:,} bare INSERTs)\n"]
    lines += ["| table or index | pages a usage |", "| --- | --- |"]
    for name, n in sorted(ours.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {n / count:.2f} |")
    lines.append(f"| all | {sum(ours.values()) / count:.2f} |")
    lines.append(f"| the bare one-row INSERT, all | {sum(theirs.values()) / count:.2f} |")
    return "\n".join(lines)


def _frames(path: Path, run: Callable[[], object]) -> dict[str, int]:
    """The WAL frames ``run`` writes to the file at ``path``, counted by the table or index
    their page belongs to."""
    import sqlite3
    import struct

    side = sqlite3.connect(path, isolation_level=None)
    try:
        side.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        run()
        wal = Path(f"{path}-wal").read_bytes()
        names = dict(side.execute("SELECT pageno, name FROM dbstat").fetchall())
    finally:
        side.close()
    size = struct.unpack(">I", wal[8:12])[0]
    pages: dict[str, int] = {}
    for offset in range(32, len(wal) - 23, 24 + size):
        page = struct.unpack(">I", wal[offset : offset + 4])[0]
        name = str(names.get(page, "a page freed since"))
        pages[name] = pages.get(name, 0) + 1
    return pages


# Import and simulate, in process through the command line's entry point -------------------------


def _cli(argv: list[str]) -> None:
    from sessionpacks._cli.app import main

    with redirect_stdout(io.StringIO()):
        status = main(argv)
    if status not in (0, 1):
        raise RuntimeError(f"{argv}: exit status {status}")


def importing(rows: int, work: Path) -> str:
    import shutil

    from . import importing as imp

    csv_file = imp.generate(work / "costs.csv", rows)
    seed = imp.prepared_file(work / "costs-seed.db")

    def run(tag: str) -> Callable[[], None]:
        db = work / f"costs-import-{tag}.db"
        shutil.copyfile(seed, db)
        argv = ["--db", str(db), "--practice", imp.PRACTICE, "--now", imp.NOW, "--json"]
        return lambda: _cli([*argv, "import", str(csv_file)])

    plain, profiled = measure(run("plain"), run("profiled"))
    return table(
        f"an imported row ({rows:,} rows, in process)",
        "µs a row",
        1e6 / rows,
        plain,
        share(plain, profiled),
    )


def simulate(clients: int, weeks: int, work: Path) -> str:
    def run(tag: str) -> Callable[[], None]:
        db = work / f"costs-simulate-{tag}.db"
        return lambda: _cli(
            ["--db", str(db), "simulate", "--clients", str(clients), "--weeks", str(weeks)]
        )

    plain, profiled = measure(run("plain"), run("profiled"))
    return table(
        f"`simulate --clients {clients} --weeks {weeks}` on SQLite, in process",
        "s",
        1.0,
        plain,
        share(plain, profiled),
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.costs", description=__doc__)
    p.add_argument("--usages", type=int, default=2000, help="usages per store (default 2000)")
    p.add_argument("--rows", type=int, default=20000, help="rows imported (default 20000)")
    p.add_argument("--simulate", default="200x52", help="CLIENTSxWEEKS (default 200x52)")
    p.add_argument("--only", action="append", choices=KINDS, help="a workload; may be repeated")
    p.add_argument("--pg-dsn", default=os.environ.get("SESSIONPACKS_PG_DSN"))
    args = p.parse_args(argv)
    # The server times its functions for this process's sessions only (libpq reads PGOPTIONS).
    os.environ["PGOPTIONS"] = f"{os.environ.get('PGOPTIONS', '')} -c track_functions=all"
    chosen = args.only or list(KINDS)
    clients, weeks = (int(x) for x in args.simulate.split("x"))
    with tempfile.TemporaryDirectory(prefix="costs-") as folder:
        work = Path(folder)
        for name in chosen:
            if name in ("memory", "sqlite", "postgres"):
                if name == "postgres" and not args.pg_dsn:
                    print("\npostgres: no --pg-dsn or SESSIONPACKS_PG_DSN; skipped")
                    continue
                print(usages(name, args.usages, work, args.pg_dsn), flush=True)
            elif name == "pages":
                print(wal_pages(min(args.usages, 60), work), flush=True)
            elif name == "import":
                print(importing(args.rows, work), flush=True)
            elif name == "simulate":
                print(simulate(clients, weeks, work), flush=True)
            else:
                sys.exit(f"--only {name}: not one of {', '.join(KINDS)}")


if __name__ == "__main__":
    main()
