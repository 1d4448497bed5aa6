"""Many practices, several writer processes (issue 11, item 6): usages/s on PostgreSQL.

``python -m benchmarks.practices`` makes a database of its own (``own_database``), and in it,
for each layout (plain tables, then ``partitions=N`` hash partitions by practice), a schema
holding ``--practices`` practices. Each practice has one template and packs of 10 sessions;
``--writers`` processes (spawned, each with its own store and one connection) each take every
``writers``-th practice, set its packs up, wait for the others and then assign ``--usages``
appointments per practice through ``PackService.assign``, going round its practices one usage
at a time. It prints, per layout, the usages/s of all writers together (from the moment they
start to the last one's end) and each writer's own. Small by default; nothing is written to
the docs page.

    uv run python -m benchmarks.practices --practices 200 --writers 4 --usages 10
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import time
from typing import Any

from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.model import Allowance, Money, PackTerms, PerSession
from sessionpacks.service import PackService

from .usages import NOW, SESSIONS, appointment
from .workloads import own_database, reachable

Job = tuple[PackService, str, str, int]
"""(the practice's service, pack id, client id, session number)."""


def _practice_jobs(store: PostgresStore, practice_id: str, usages: int) -> list[Job]:
    ids = itertools.count(1)
    service = PackService(
        store.practice(practice_id, "Australia/Sydney"),
        FixedClock(NOW),
        new_pack_id=lambda: f"pk{next(ids)}",
    )
    terms = PackTerms(
        "10 x Physio", Allowance.sessions(SESSIONS), PerSession.flat(Money("120", "AUD"))
    )
    service.add_template("t10", terms)
    jobs: list[Job] = []
    for n in range((usages + SESSIONS - 1) // SESSIONS):
        pack = service.open_pack(f"C{n}", template_id="t10")
        jobs += [(service, pack.pack_id, pack.client_id, s) for s in range(SESSIONS)]
    return jobs[:usages]


def writer(dsn: str, schema: str, practices: list[str], usages: int, start: Any, out: Any) -> None:
    """One writer process: its practices set up, then (once all are ready) their usages, one
    practice after another, round and round."""
    with PostgresStore(dsn, schema=schema, max_size=1) as store:
        per_practice = [_practice_jobs(store, p, usages) for p in practices]
        start.wait()
        began = time.perf_counter()
        number = 0
        for jobs in zip(*per_practice, strict=True):
            for service, pack_id, client_id, session in jobs:
                service.assign(appointment(number, client_id, session), pack_id=pack_id)
                number += 1
        out.put((number, time.perf_counter() - began))


def run(dsn: str, schema: str, practices: int, writers: int, usages: int) -> dict[str, Any]:
    """One layout's run (the schema made already): usages/s in all, and each writer's."""
    names = [f"practice-{n:05d}" for n in range(practices)]
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(writers + 1), context.Queue()
    processes = [
        context.Process(target=writer, args=(dsn, schema, names[w::writers], usages, start, out))
        for w in range(writers)
    ]
    for process in processes:
        process.start()
    start.wait()
    began = time.perf_counter()
    results = [out.get() for _ in processes]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join()
    done = sum(count for count, _ in results)
    return {
        "usages": done,
        "seconds": elapsed,
        "rate": done / elapsed,
        "writers": sorted(round(count / seconds) for count, seconds in results),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.practices", description=__doc__)
    p.add_argument("--practices", type=int, default=40)
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--usages", type=int, default=10, help="usages per practice")
    p.add_argument("--partitions", type=int, default=8, help="of the partitioned layout")
    p.add_argument("--pg-dsn", default=os.environ.get("SESSIONPACKS_PG_DSN"))
    args = p.parse_args(argv)
    dsn, why = reachable(args.pg_dsn)
    if dsn is None:
        raise SystemExit(f"no PostgreSQL: {why}")
    with own_database(dsn) as database:
        for label, partitions in (
            ("plain", None),
            (f"{args.partitions} partitions", args.partitions),
        ):
            schema = "many_plain" if partitions is None else "many_parted"
            PostgresStore(database, schema=schema, partitions=partitions).close()
            found = run(database, schema, args.practices, args.writers, args.usages)
            print(
                f"{label}: {args.practices} practices, {args.writers} writers, "
                f"{found['usages']} usages in {found['seconds']:.2f} s = {found['rate']:.0f} "
                f"usages/s (each writer: {found['writers']} usages/s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
