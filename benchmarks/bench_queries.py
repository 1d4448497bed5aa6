"""``find_packs`` on a small and a large practice: the cost grows with the answer, not the practice.

Run by hand (never a timed assertion in the tests)::

    uv run python -m benchmarks.bench_queries              # SQLite, 1,000 and 100,000 packs
    SESSIONPACKS_PG_DSN=postgresql://... uv run python -m benchmarks.bench_queries --postgres

Each practice holds the same answers: 100 packs with one session left, 100 expiring in March
2026 (so expired as of April), 100 of the template ``rare``; the rest (open, ten sessions,
expiring from 2027, of the template ``common``) only makes the practice larger. Each query
reads its first page of 100 (``open`` and ``everything``) or its whole answer, and the table
shows the median time per query at each size and the ratio: near 1 when the indexes answer,
near the ratio of the sizes (100) when a query reads the practice.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sessionpacks import operations as ops
from sessionpacks.adapters.postgres import PostgresStore
from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.ledger import PackStatus
from sessionpacks.model import Allowance, ExpiresOn, Money, PackTerms, PerPack
from sessionpacks.ports import PackQuery, PackRepository

ZONE = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 3, 2, 9, tzinfo=ZONE)
RARE = 100
"""The packs of each answer, at every size."""

QUERIES: dict[str, PackQuery] = {
    "open (first page)": PackQuery(statuses=[PackStatus.OPEN], as_of=NOW),
    "at most 1 left": PackQuery(at_most_left=1),
    "open, at most 1 left": PackQuery(statuses=[PackStatus.OPEN], as_of=NOW, at_most_left=1),
    "expiring in March": PackQuery(expiring_from=date(2026, 3, 1), expiring_to=date(2026, 3, 31)),
    "expired as of April": PackQuery(
        statuses=[PackStatus.EXPIRED], as_of=datetime(2026, 4, 1, 9, tzinfo=ZONE)
    ),
    "of template rare": PackQuery(template_id="rare"),
    "everything (first page)": PackQuery(),
}
FIRST_PAGE_ONLY = {"open (first page)", "everything (first page)"}


def _terms(sessions: int, expires: date) -> PackTerms:
    return PackTerms(
        name=f"{sessions} x Physio",
        allowance=Allowance.sessions(sessions),
        pricing=PerPack(Money("100.00", "AUD")),
        expiry=ExpiresOn(expires),
    )


def fill(repo: PackRepository, size: int) -> None:
    """``size`` packs: ``RARE`` of each answer, the rest common, committed 1,000 at a time."""
    low, soon = _terms(1, date(2027, 6, 1)), _terms(10, date(2026, 3, 15))
    common = [_terms(10, date(2027, 1, 1) + timedelta(days=d)) for d in range(700)]
    batch: list[ops.Change] = []
    for n in range(size):
        kind = n % (size // RARE)
        terms = low if kind == 1 else soon if kind == 2 else common[n % 700]
        template = "rare" if kind == 3 else "common"
        batch.append(
            ops.open_pack(
                f"pk{n:07}",
                f"C{n}",
                terms,
                repo.practice,
                NOW,
                template_id=template,
                template_version=1,
            )
        )
        if len(batch) == 1000:
            repo.commit(batch)
            batch = []
    if batch:
        repo.commit(batch)


def timed(run: Callable[[], object], rounds: int) -> float:
    """The median seconds of ``run`` over ``rounds`` calls, after one to warm up."""
    run()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def answer(repo: PackRepository, name: str, query: PackQuery) -> int:
    """Read the query's answer (its first page only where named so); the packs read."""
    page = repo.find_packs(query, limit=100)
    count = len(page.packs)
    while page.next_cursor is not None and name not in FIRST_PAGE_ONLY:
        page = repo.find_packs(query, after=page.next_cursor, limit=100)
        count += len(page.packs)
    return count


@contextmanager
def sqlite(size: int) -> Iterator[PackRepository]:
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "bench.db")
        try:
            repo = store.practice(f"bench-{size}", "Australia/Sydney")
            fill(repo, size)
            yield repo
        finally:
            store.close()


@contextmanager
def postgres(size: int) -> Iterator[PackRepository]:
    schema = f"bench_queries_{os.getpid()}_{size}"
    store = PostgresStore(os.environ["SESSIONPACKS_PG_DSN"], schema=schema)
    try:
        repo = store.practice(f"bench-{size}", "Australia/Sydney")
        fill(repo, size)
        with store._pool.connection() as connection:  # fresh statistics for the planner
            connection.execute(f"ANALYZE {schema}.packs")
        yield repo
    finally:
        with store._pool.connection() as connection:  # the run's own schema
            connection.execute(f"DROP SCHEMA {schema} CASCADE")
        store.close()


def measure(
    opener: Callable[[int], AbstractContextManager[PackRepository]],
    sizes: tuple[int, int],
    rounds: int,
) -> dict[str, list[tuple[int, float]]]:
    """Each query's packs read and median seconds, at each size."""
    results: dict[str, list[tuple[int, float]]] = {name: [] for name in QUERIES}
    for size in sizes:
        started = time.perf_counter()
        with opener(size) as repo:
            print(f"  {size:>7} packs written in {time.perf_counter() - started:.1f} s")
            for name, query in QUERIES.items():
                count = answer(repo, name, query)
                seconds = timed(_call(repo, name, query), rounds)
                results[name].append((count, seconds))
    return results


def _call(repo: PackRepository, name: str, query: PackQuery) -> Callable[[], object]:
    return lambda: answer(repo, name, query)


def report(title: str, sizes: tuple[int, int], results: dict[str, list[tuple[int, float]]]) -> None:
    small, large = sizes
    print(f"\n{title}: median time per query")
    print(f"  {'query':<24} {'packs read':>10} {small:>10,} {large:>10,}  ratio")
    for name, ((count, fast), (_, slow)) in results.items():
        print(
            f"  {name:<24} {count:>10} {fast * 1000:>8.2f}ms {slow * 1000:>8.2f}ms"
            f"  {slow / fast:5.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_queries")
    parser.add_argument("--sizes", default="1000,100000", help="two practice sizes")
    parser.add_argument("--rounds", type=int, default=20, help="timed calls per query")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL")
    args = parser.parse_args()
    small, large = (int(s) for s in args.sizes.split(","))
    if small < 4 * RARE:
        parser.error(f"the smaller size must hold the answers: at least {4 * RARE} packs")
    sizes = (small, large)
    print("SQLite")
    report("SQLite", sizes, measure(sqlite, sizes, args.rounds))
    if args.postgres:
        print("PostgreSQL")
        report("PostgreSQL", sizes, measure(postgres, sizes, args.rounds))


if __name__ == "__main__":
    main()
