"""Stores side by side: usages per second through PackService, and load() cost by ledger length.

Run by hand::

    uv run python benchmarks/bench_stores.py [--usages 1000] [--entries 10000]

Each store is a *factory*: a context manager yielding ``opener(practice_id, timezone) ->
PackRepository`` on a fresh store (see ``STORES``). The SQLite figures are set against a bare
one-row-per-transaction INSERT on the same file, with the same pragmas: the floor a store that
commits once per command can approach. To add a store, write a factory and add it to ``STORES``
(or to the list ``main`` builds from the command line).
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sessionpacks import operations as ops
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.model import Allowance, Appointment, Money, PackTerms, PerPack, PerSession
from sessionpacks.ports import PackRepository
from sessionpacks.service import PackService

Opener = Callable[[str, str], PackRepository]
StoreFactory = Callable[[Path], AbstractContextManager[Opener]]

SYDNEY = "Australia/Sydney"
ZONE = ZoneInfo(SYDNEY)
NOW = datetime(2026, 1, 15, 9, tzinfo=ZONE)


@contextmanager
def memory_store(_: Path) -> Iterator[Opener]:
    yield InMemoryStore().practice


@contextmanager
def sqlite_store(directory: Path) -> Iterator[Opener]:
    with SqliteStore(directory / "packs.db") as store:
        yield store.practice


@contextmanager
def sqlite_store_uncached(directory: Path) -> Iterator[Opener]:
    """Every read decodes the stored state: the cost a cold cache (or another process) pays."""
    with SqliteStore(directory / "packs.db", state_cache=0) as store:
        yield store.practice


STORES: dict[str, StoreFactory] = {
    "memory": memory_store,
    "sqlite": sqlite_store,
    "sqlite, no state cache": sqlite_store_uncached,
}


def _appointment(number: int, price: str = "120.00") -> Appointment:
    return Appointment(
        id=f"a{number}",
        client_id="C1",
        service_id="physio",
        start=datetime(2026, 2, 2, 8, tzinfo=ZONE) + timedelta(minutes=number),
        duration=timedelta(minutes=60),
        price=Money(price, "AUD"),
    )


def usages_per_second(opener: Opener, usages: int) -> float:
    """Record ``usages`` appointments through :meth:`PackService.assign`, 100 per pack."""
    counter = itertools.count(1)
    service = PackService(
        opener("bench-usages", SYDNEY), FixedClock(NOW), new_pack_id=lambda: f"pk{next(counter)}"
    )
    terms = PackTerms(
        name="100 x Physio",
        allowance=Allowance.sessions(100),
        pricing=PerSession.flat(Money("120.00", "AUD")),
    )
    packs = [service.open_pack("C1", terms=terms).pack_id for _ in range(usages // 100 + 1)]
    started = time.perf_counter()
    for n in range(usages):
        service.assign(_appointment(n), pack_id=packs[n // 100])
    return usages / (time.perf_counter() - started)


def bare_inserts_per_second(path: Path, rows: int) -> float:
    """One row per ``BEGIN IMMEDIATE`` ... ``COMMIT``, same file, same pragmas as the store."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, body TEXT)")
    body = "x" * 200
    started = time.perf_counter()
    for _ in range(rows):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO bench_rows (body) VALUES (?)", (body,))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return rows / elapsed


def _long_pack(repo: PackRepository, pack_id: str, entries: int) -> None:
    """A money pack whose ledger is ``entries`` long: one usage used and released over and
    over, so its state stays small however long the ledger grows. Written in one commit."""
    terms = PackTerms(
        name="500 credit",
        allowance=Allowance.money(Money("500.00", "AUD")),
        pricing=PerPack(Money("450.00", "AUD")),
    )
    first = ops.open_pack(pack_id, "C1", terms, repo.practice, NOW)
    state, changes = first.after, [first]
    for n in range((entries - 1) // 2):
        used = ops.use(state, _appointment(n, "20.00"), NOW)
        released = ops.release(used.after, f"a{n}", NOW)
        changes += [used, released]
        state = released.after
    if len(changes) < entries:
        changes.append(ops.use(state, _appointment(entries, "20.00"), NOW))
    merged = ops.Change(
        None,
        changes[-1].after,
        tuple(e for c in changes for e in c.entries),
        tuple(e for c in changes for e in c.events),
    )
    repo.commit([merged])


def _timed(call: Callable[[], object], repeat: int) -> float:
    """The median seconds per call."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def load_costs(opener: Opener, entries: int, repeat: int = 200) -> dict[str, float]:
    """Seconds per load() and ledger() of a pack with 10 entries and one with ``entries``."""
    repo = opener("bench-load", SYDNEY)
    _long_pack(repo, "short", 10)
    _long_pack(repo, "long", entries)
    assert len(repo.ledger("short")) == 10
    assert len(repo.ledger("long")) == entries
    return {
        "load short": _timed(lambda: repo.load("short"), repeat),
        "load long": _timed(lambda: repo.load("long"), repeat),
        "ledger short": _timed(lambda: repo.ledger("short"), 20),
        "ledger long": _timed(lambda: repo.ledger("long"), 5),
    }


def run_store(name: str, factory: StoreFactory, args: argparse.Namespace) -> float:
    """Print one store's figures; returns its usages per second."""
    with tempfile.TemporaryDirectory() as directory, factory(Path(directory)) as opener:
        rate = usages_per_second(opener, args.usages)
        costs = load_costs(opener, args.entries)
    short, long = costs["load short"], costs["load long"]
    print(f"{name}: {rate:.0f} usages/s through PackService")
    print(
        f"    load(): {short * 1e6:.1f} us at 10 entries, {long * 1e6:.1f} us at "
        f"{args.entries} entries (ratio {long / short:.2f})"
    )
    print(
        f"    ledger(), for contrast: {costs['ledger short'] * 1e3:.2f} ms at 10 entries, "
        f"{costs['ledger long'] * 1e3:.2f} ms at {args.entries}"
    )
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--usages", type=int, default=1000, help="usages recorded per store")
    parser.add_argument("--entries", type=int, default=10_000, help="entries in the long ledger")
    args = parser.parse_args(argv)
    rates = {name: run_store(name, factory, args) for name, factory in STORES.items()}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "packs.db"
        SqliteStore(path).close()  # the same kind of file: schema, WAL
        bare = bare_inserts_per_second(path, args.usages)
    print(f"bare SQLite: {bare:.0f} one-row INSERT transactions/s on the same kind of file")
    for name, rate in rates.items():
        if name != "memory":
            print(f"{name} / bare insert: {rate / bare:.2f}")


if __name__ == "__main__":
    main()
