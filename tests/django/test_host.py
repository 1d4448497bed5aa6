"""A host's view: its own row and a pack usage in one ``transaction.atomic()`` block, on SQLite
and on PostgreSQL. ``docs/embedding-django.md`` quotes this module (``test_docs_page.py``
checks that its excerpts are the code here, verbatim).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connections, transaction

from sessionpacks import (
    Allowance,
    Appointment,
    FixedClock,
    Money,
    PackService,
    PackTerms,
    PerPack,
    PreferPack,
)
from sessionpacks.contrib.django.store import DjangoRepository, DjangoStore
from sessionpacks.events import RecordedEvent
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord

from .host.models import Booking
from .settings import PG

SYDNEY = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=SYDNEY)


# The host's code -----------------------------------------------------------------------------
# excerpt: book
def book(packs: PackService, appointment: Appointment, using: str = "default") -> Booking:
    """The front desk books an appointment: the host's row and the pack usage commit together,
    or neither does."""
    with transaction.atomic(using=using):
        booking: Booking = Booking.objects.using(using).create(
            appointment_id=appointment.id, client_id=appointment.client_id
        )
        assigned = packs.book(appointment)
        booking.pack_id = assigned.pack.pack_id if assigned.pack else ""
        booking.save(using=using)
    return booking


# end excerpt


# excerpt: failing
def book_and_invoice(packs: PackService, appointment: Appointment, using: str) -> None:
    """A booking whose invoice fails after the usage is recorded."""
    with transaction.atomic(using=using):
        Booking.objects.using(using).create(
            appointment_id=appointment.id, client_id=appointment.client_id
        )
        packs.book(appointment)
        raise RuntimeError("the invoice could not be written")


# end excerpt


def visit(appointment_id: str, client_id: str = "C1") -> Appointment:
    return Appointment(
        appointment_id,
        client_id,
        "physio",
        NOW + timedelta(days=2),
        timedelta(minutes=45),
        Money("110.00", "AUD"),
    )


def opened(using: str, sessions: int = 3) -> PackService:
    """A service on the Django store with pack ``pk1`` of ``sessions`` open for client C1."""
    # excerpt: service
    repository = DjangoStore(using).practice("clinic-1", "Australia/Sydney")
    packs = PackService(repository, FixedClock(NOW), new_pack_id=lambda: "pk1")
    terms = PackTerms(
        name=f"{sessions} x Physio",
        allowance=Allowance.sessions(sessions),
        pricing=PerPack(Money("300.00", "AUD")),
    )
    packs.open_pack("C1", terms=terms)
    packs.set_preference("C1", PreferPack("pk1"))  # C1's visits draw on pk1 by default
    # end excerpt
    return packs


class Overtaken(DjangoRepository):
    """A repository whose first commit another writer overtakes: ``interloper`` writes first."""

    def __init__(self, using: str, interloper: Callable[[], object]) -> None:
        super().__init__(using, DjangoStore(using).practice("clinic-1").practice)
        self.interloper = interloper
        self.commits = 0

    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        self.commits += 1
        if self.commits == 1:
            self.interloper()
        return super().commit(changes, client_packs=client_packs, command=command)


@pytest.mark.postgres
@pytest.mark.django_db(databases=[PG], transaction=True)
@pytest.mark.usefixtures("django_pg_db")
def test_a_conflict_with_another_connection_is_retried_in_the_host_transaction() -> None:
    """On PostgreSQL, the other writer is another connection, committing while the host's
    transaction is open: the retry reads its committed usage (READ COMMITTED)."""
    packs = opened(PG, sessions=2)

    def elsewhere() -> None:
        def run() -> None:
            try:
                packs.book(visit("A0"))
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()

    overtaken = Overtaken(PG, elsewhere)
    book(PackService(overtaken, FixedClock(NOW)), visit("A1"), PG)
    assert overtaken.commits == 2
    assert {packs.repository.pack_of_appointment(a) for a in ("A0", "A1")} == {"pk1"}
    assert packs.pack("pk1").remaining_units == 0


class HostTransactions:
    """The host's transaction decides; on the database ``using``."""

    using = "default"

    @pytest.fixture
    def packs(self) -> PackService:
        return opened(self.using)

    def test_a_commit_keeps_the_row_and_the_usage(self, packs: PackService) -> None:
        using = self.using
        # excerpt: commit
        booking = book(packs, visit("A1"), using)
        assert Booking.objects.using(using).get(appointment_id="A1").pack_id == "pk1"
        assert packs.repository.pack_of_appointment("A1") == "pk1"
        assert packs.pack("pk1").remaining_units == 2
        # end excerpt
        assert booking.pack_id == "pk1"

    def test_an_error_after_the_usage_rolls_back_both(self, packs: PackService) -> None:
        using = self.using
        # excerpt: rollback
        with pytest.raises(RuntimeError):
            book_and_invoice(packs, visit("A1"), using)
        assert not Booking.objects.using(using).filter(appointment_id="A1").exists()
        assert packs.repository.pack_of_appointment("A1") is None
        assert packs.pack("pk1").remaining_units == 3
        # end excerpt
        assert len(packs.events_since(0)) == 1  # the opening only

    def test_a_conflict_rolls_back_only_its_savepoint(self, packs: PackService) -> None:
        """The other writer's usage lands in the same host transaction (a savepoint of its
        own): the service's first commit is then stale and conflicts, its savepoint rolls
        back, the service reads again and its retry commits, beside the host's row."""
        overtaken = Overtaken(self.using, lambda: packs.book(visit("A0")))
        booking = book(PackService(overtaken, FixedClock(NOW)), visit("A1"), self.using)
        assert overtaken.commits == 2
        assert Booking.objects.using(self.using).get(appointment_id="A1") == booking
        assert packs.repository.pack_of_appointment("A0") == "pk1"
        assert packs.repository.pack_of_appointment("A1") == "pk1"
        assert packs.pack("pk1").remaining_units == 1


@pytest.mark.django_db
class TestSqliteHost(HostTransactions):
    pass


@pytest.mark.postgres
@pytest.mark.django_db(databases=[PG])
@pytest.mark.usefixtures("django_pg_db")
class TestPostgresHost(HostTransactions):
    using = PG
