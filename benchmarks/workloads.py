"""The workloads of issue 11's table, each with its baselines and the issue's targets.

Each workload is a function of the :class:`Config` that sets up its contenders, measures them
in interleaved rounds (:func:`~benchmarks.harness.interleave`) and returns its rows of the
table. :data:`WORKLOADS` names them for ``--only``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.adapters.sqlite import SqliteStore

from . import importing, reporting
from .harness import (
    Contender,
    Metrics,
    Row,
    Target,
    interleave,
    median_at_least,
    median_below,
    ratio_at_least,
    say,
    series,
)
from .usages import BarePostgres, BareSqlite, Usages

PG_OPTIONS = "-c synchronous_commit=on"
ES_MISSING = (
    "eventsourcing is not installed: its baselines are skipped "
    "(uv run --group bench python -m benchmarks)"
)


@dataclass
class Config:
    """What to run, how big, and where."""

    work: Path
    rounds: int = 5
    long_rounds: int = 3
    import_sizes: list[int] = field(default_factory=lambda: [100_000, 1_000_000])
    usages: int = 2000
    clients: int = 2000
    weeks: int = 52
    report_clients: int = 2000
    report_weeks: int = 52
    import_timeout: float = 600.0
    pg_dsn: str | None = None
    eventsourcing: bool = True
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        say(f"note: {text}")
        self.notes.append(text)


def eventsourcing_available() -> bool:
    try:
        return find_spec("eventsourcing") is not None
    except ValueError:  # sys.modules["eventsourcing"] is None: blocked, as by the smoke test
        return False


def _rows(
    workload: str,
    unit: str,
    results: dict[str, list[Metrics]],
    ours: str,
    targets: dict[str, Target],
    metric: str = "rate",
) -> list[Row]:
    """A row per baseline (every contender but ``ours``) for ``metric``."""
    measured = series(results[ours], metric)
    rows = [
        Row(workload, unit, measured, name, series(rounds, metric), targets.get(name))
        for name, rounds in results.items()
        if name != ours
    ]
    return rows or [Row(workload, unit, measured, target=targets.get(ours))]


@contextmanager
def _closing(contenders: list[Contender]) -> Iterator[list[Contender]]:
    try:
        yield contenders
    finally:
        for contender in contenders:
            contender.close()


# Import --------------------------------------------------------------------------------------


def run_import(config: Config) -> list[Row]:
    rows: list[Row] = []
    seed = importing.prepared_file(config.work / "import-seed.db")
    rates: dict[int, list[float]] = {}
    for size in config.import_sizes:
        say(f"import: generating {size:,} appointments")
        csv_file = importing.generate(config.work / f"appointments-{size}.csv", size)
        ours = importing.Import(csv_file, seed, config.work, config.import_timeout)
        base = importing.Executemany(csv_file, config.work)
        results = interleave([ours, base], config.long_rounds)
        csv_file.unlink()
        imported = results[ours.name]
        label = f"`sessionpacks import`, {size:,} appointments into SQLite"
        stopped = sum(r["stopped"] for r in imported)
        note = f"stopped at {config.import_timeout:g} s in {stopped:g} rounds" if stopped else ""
        rows += [
            Row(
                label,
                "rows/s",
                series(imported, "rate"),
                "bare `executemany`",
                series(results[base.name], "rate"),
                median_at_least(20_000, "rows/s"),
                note,
            ),
            Row(
                f"import, {size:,} rows: last tenth of the run vs first",
                "rows/s",
                series(imported, "last_rate"),
                "first tenth, same run",
                series(imported, "first_rate"),
            ),
            Row(
                f"import peak memory, {size:,} rows",
                "MB",
                series(imported, "peak_mb"),
                target=median_below(200, "MB"),
            ),
        ]
        refused = sum(r["refused"] for r in imported)
        if refused:
            config.note(f"import of {size:,} rows: {refused:g} rows refused over all rounds")
        rates[size] = series(imported, "rate")
    if len(rates) > 1:
        small, large = min(rates), max(rates)
        rows.append(
            Row(
                f"import rate at {large:,} rows vs at {small:,}",
                "rows/s",
                rates[large],
                f"rate at {small:,}",
                rates[small],
                Target(">= 1/1.2 (within 1.2x)", lambda r: _at_least(r.ratio, 1 / 1.2)),
            )
        )
    return rows


def _at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


# Usages --------------------------------------------------------------------------------------


def run_usages_memory(config: Config) -> list[Row]:
    contenders: list[Contender] = [
        Usages(
            "PackService, memory",
            InMemoryStore().practice("bench", "Australia/Sydney"),
            config.usages,
            config.rounds,
        )
    ]
    if config.eventsourcing:
        from . import es

        contenders.append(es.popo(config.usages, config.rounds))
    with _closing(contenders):
        results = interleave(contenders, config.rounds)
    targets = {"eventsourcing POPO": ratio_at_least(10)}
    return _rows("usages/s, in memory", "usages/s", results, contenders[0].name, targets)


def run_usages_sqlite(config: Config) -> list[Row]:
    folder = config.work / f"usages-sqlite-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    with ExitStack() as stack:
        store = stack.enter_context(SqliteStore(folder / "packs.db"))
        ours = Usages(
            "PackService, SQLite",
            store.practice("bench", "Australia/Sydney"),
            config.usages,
            config.rounds,
        )
        bare = BareSqlite(folder / "bare.db", config.usages)
        contenders: list[Contender] = [ours, bare]
        # SqliteStore sets synchronous = FULL on every connection it opens (adapters/sqlite.py).
        synchronous = {"bare": bare.synchronous()}
        if config.eventsourcing:
            from . import es

            recorder = es.sqlite(str(folder / "es.db"), config.usages, config.rounds)
            contenders.append(recorder)
            synchronous["eventsourcing"] = int(recorder.setting("PRAGMA synchronous"))
        stack.enter_context(_closing(contenders))
        results = interleave(contenders, config.rounds)
    config.note(
        "SQLite synchronous (2 = FULL) as read on the baselines' connections: "
        f"{synchronous}; SqliteStore sets FULL on each of its own"
    )
    targets = {
        bare.name: ratio_at_least(0.6),
        "eventsourcing SQLite recorder": ratio_at_least(2),
    }
    return _rows("usages/s, SQLite (WAL, FULL)", "usages/s", results, ours.name, targets)


def run_usages_postgres(config: Config, dsn: str) -> list[Row]:
    schema = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        store = stack.enter_context(PostgresStore(dsn, schema=f"{schema}_sp", max_size=1))
        ours = Usages(
            "PackService, PostgreSQL",
            store.practice("bench", "Australia/Sydney"),
            config.usages,
            config.rounds,
        )
        bare = BarePostgres(dsn, schema, config.usages)
        contenders: list[Contender] = [ours, bare]
        settings = {"bare": bare.synchronous_commit(), "PackService": _pg_setting(dsn)}
        if config.eventsourcing:
            from . import es

            params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(f"CREATE SCHEMA {schema}_es".encode())
            recorder = es.postgres(params, f"{schema}_es", config.usages, config.rounds)
            contenders.append(recorder)
            settings["eventsourcing"] = recorder.setting("SHOW synchronous_commit")
        stack.enter_context(_closing(contenders))
        results = interleave(contenders, config.rounds)
    config.note(f"PostgreSQL synchronous_commit as measured on each connection: {settings}")
    targets = {
        bare.name: ratio_at_least(0.5),
        "eventsourcing PostgreSQL recorder": ratio_at_least(2.5),
    }
    return _rows(
        "usages/s, PostgreSQL (synchronous_commit=on)", "usages/s", results, ours.name, targets
    )


def _pg_setting(dsn: str) -> str:
    with psycopg.connect(dsn) as connection:
        row = connection.execute(b"SHOW synchronous_commit").fetchone()
        return str(row[0]) if row else "?"


# Simulate ------------------------------------------------------------------------------------


class Simulate:
    """``sessionpacks simulate`` in a child process: its time from start to exit."""

    def __init__(self, name: str, store_options: list[str], clients: int, weeks: int) -> None:
        self.name = name
        self.command = [sys.executable, "-m", "sessionpacks", *store_options, "simulate"]
        self.command += ["--clients", str(clients), "--weeks", str(weeks), "--json"]

    def round(self) -> Metrics:
        started = time.perf_counter()
        subprocess.run(self.command, check=True, stdout=subprocess.DEVNULL)
        return {"seconds": time.perf_counter() - started}

    def close(self) -> None:
        pass


def run_simulate(config: Config, dsn: str | None) -> list[Row]:
    size = f"--clients {config.clients} --weeks {config.weeks}"
    sqlite = Simulate(
        "SQLite", ["--db", str(config.work / "simulate.db")], config.clients, config.weeks
    )
    contenders: list[Contender] = [sqlite]
    if dsn is not None:
        contenders.append(
            # synchronous_commit=on reaches the child through PGOPTIONS (see own_database)
            Simulate("PostgreSQL", ["--database-url", as_url(dsn)], config.clients, config.weeks)
        )
    results = interleave(contenders, config.long_rounds)
    at_size = config.clients == 2000 and config.weeks == 52

    def under_15(row: Row) -> bool | None:
        return median_below(15, "s").check(row) if at_size else None

    return [
        Row(
            f"`simulate {size}` on {name}",
            "s",
            series(rounds, "seconds"),
            target=Target("< 15 s (at 2000 x 52)", under_15) if name == "SQLite" else None,
        )
        for name, rounds in results.items()
    ]


# Report --------------------------------------------------------------------------------------


def run_report(config: Config) -> list[Row]:
    """``report`` and ``journal`` over a practice made by ``simulate``, built once per run."""
    clients, weeks = config.report_clients, config.report_weeks
    path = config.work / f"report-{clients}x{weeks}.db"
    say(f"report: simulate --clients {clients} --weeks {weeks} (once, in process)")
    built, data = reporting.build(path, clients, weeks)
    operations = int(data["operations"])
    size = reporting.facts(path)
    packs = size["packs"]
    config.note(
        f"report practice (`simulate --clients {clients} --weeks {weeks}`, seed 1, SQLite): "
        f"{packs:,} packs, {size['entries']:,} ledger entries, {size['events']:,} events, "
        f"{size['bytes'] / 2**20:.1f} MB; built in process in {built:.1f} s "
        f"({operations:,} operations); each round opens the file afresh"
    )
    period = reporting.Period(weeks)
    reporting.check(path, period)
    calls = reporting.calls(path, packs, period)
    bare = reporting.BareLedgerRows(path, packs)
    contenders: list[Contender] = [*calls, bare]
    with _closing(contenders):
        results = interleave(contenders, config.long_rounds)
    base = series(results[bare.name], "seconds")
    states = calls[-1]
    of = f"{clients:,} clients x {weeks} weeks, {packs:,} packs"
    rows: list[Row] = []
    for call in calls:
        rounds = results[call.name]
        rows.append(Row(f"{call.name} ({of})", "s", series(rounds, "seconds"), bare.name, base))
        rows.append(Row(f"{call.name} ({of})", "packs/s", series(rounds, "rate")))
    rows.insert(
        1,
        Row(
            f"{calls[0].name} ({of})",
            "s",
            series(results[calls[0].name], "seconds"),
            states.name,
            series(results[states.name], "seconds"),
        ),
    )
    rows.append(Row(f"{bare.name} ({of})", "packs/s", series(results[bare.name], "rate")))
    return rows


# PostgreSQL: a database of this run's own ----------------------------------------------------


@contextmanager
def own_database(dsn: str) -> Iterator[str]:
    """A new database on ``dsn``'s server for this run (``bench_<pid>_<random>``), dropped
    after; the DSN that reaches it, with ``synchronous_commit=on``."""
    name = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}".encode())
    os.environ["PGOPTIONS"] = PG_OPTIONS  # also for the connections eventsourcing opens
    try:
        yield make_conninfo(dsn, dbname=name, options=PG_OPTIONS)
    finally:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def as_url(dsn: str) -> str:
    """``dsn`` as the ``postgresql://`` URL the command line takes (without its options)."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    password = f":{quote(params['password'], safe='')}" if params.get("password") else ""
    user = quote(params.get("user", "postgres"), safe="")
    host = params.get("host") or params.get("hostaddr") or "127.0.0.1"
    return f"postgresql://{user}{password}@{host}:{params.get('port', '5432')}/{params['dbname']}"


def server_version(dsn: str | None) -> str:
    if dsn is None:
        return "none"
    with psycopg.connect(dsn) as connection:
        row = connection.execute(b"SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def reachable(dsn: str | None) -> tuple[str | None, str]:
    """``dsn`` if a server answers there on 127.0.0.1, else ``None`` and why not."""
    if not dsn:
        return None, "no --pg-dsn and no $SESSIONPACKS_PG_DSN"
    hosts = {str(v) for k, v in conninfo_to_dict(dsn).items() if k in ("host", "hostaddr")}
    if hosts != {"127.0.0.1"}:
        return None, f"the PostgreSQL DSN must name host 127.0.0.1 only, not {sorted(hosts)}"
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
    except psycopg.OperationalError as error:
        return None, f"cannot connect: {str(error).strip()}"
    return dsn, ""


Workload = Callable[[Config, "str | None"], list[Row]]


def _without_pg(run: Callable[[Config], list[Row]]) -> Workload:
    return lambda config, _dsn: run(config)


def _needs_pg(run: Callable[[Config, str], list[Row]]) -> Workload:
    def workload(config: Config, dsn: str | None) -> list[Row]:
        if dsn is None:  # the note saying why is made once, for all of them
            return []
        return run(config, dsn)

    return workload


WORKLOADS: dict[str, Workload] = {
    "import": _without_pg(run_import),
    "usages-postgres": _needs_pg(run_usages_postgres),
    "usages-sqlite": _without_pg(run_usages_sqlite),
    "usages-memory": _without_pg(run_usages_memory),
    "simulate": run_simulate,
    "report": _without_pg(run_report),
}
