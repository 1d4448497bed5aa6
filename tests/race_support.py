"""Workers for the R13a races (E22): a module a spawned process can import (as
``tests.race_support``, with the project root on its path; see ``pg_support.root_on_path``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sessionpacks import (
    Allowance,
    Appointment,
    FixedClock,
    Money,
    PackService,
    PackTerms,
    PerPack,
    PreferTemplate,
)
from sessionpacks.ports import PackRepository

SYDNEY = "Australia/Sydney"
NOW = datetime(2026, 3, 1, 9, tzinfo=ZoneInfo(SYDNEY))
PRICE = Money("1000.00", "AUD")


def prepare(repo: PackRepository) -> None:
    """Template T (10 sessions, 1000.00 per pack), preferred by C1, who has no pack."""
    desk = PackService(repo, FixedClock(NOW))
    terms = PackTerms("10 x Physio", Allowance.sessions(10), PerPack(PRICE))
    desk.add_template("T", terms)
    desk.set_preference("C1", PreferTemplate("T"))


def appointment(n: int) -> Appointment:
    return Appointment(
        f"A{n}",
        "C1",
        "physio",
        NOW + timedelta(days=n),
        timedelta(hours=1),
        Money("120.00", "AUD"),
    )


def book_and_invoice(repo: PackRepository, numbers: list[int]) -> list[tuple[str, str]]:
    """Book each appointment by C1's default and issue its line: (pack, line amount)."""
    desk = PackService(repo, FixedClock(NOW))  # the default retries (E22)
    done = []
    for n in numbers:
        booked = desk.book(appointment(n))
        assert booked.pack is not None
        done.append((booked.pack.pack_id, str(desk.invoice_line(f"A{n}").amount)))
    return done


def sqlite_worker(path: str, numbers: list[int], barrier: Any, results: Any) -> None:
    from sessionpacks.adapters.sqlite import SqliteStore

    with SqliteStore(path, busy_timeout=30) as store:
        repo = store.practice("race")
        barrier.wait()
        results.put(book_and_invoice(repo, numbers))


def postgres_worker(dsn: str, schema: str, numbers: list[int], barrier: Any, results: Any) -> None:
    from sessionpacks.adapters.postgres import PostgresStore

    with PostgresStore(dsn, schema=schema, max_size=1) as store:
        repo = store.practice("race")
        barrier.wait()
        results.put(book_and_invoice(repo, numbers))
