"""The application side of reports (R26): gather a practice's ledgers through
:class:`~sessionpacks.service.PackService`'s public reads and hand them to
:mod:`sessionpacks.reports`, which decides every figure.

Packs are found by their ``PackOpened`` events, read a page at a time; each pack's whole ledger
is read with :meth:`PackService.ledger`. A period may be given as local dates of the practice
(from the start of ``start`` to the start of ``end``, the day after the last one reported) or
as timezone-aware instants.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from typing import TYPE_CHECKING

from sessionpacks import reports
from sessionpacks._limits import check_day, check_instant
from sessionpacks.events import PackOpened
from sessionpacks.ledger import Entry

if TYPE_CHECKING:  # the service delegates its report here: no import back at run time
    from sessionpacks.service import PackService

__all__ = ["journal", "ledgers", "report"]

_PAGE = 500


def _pack_ids(service: PackService) -> Iterator[str]:
    position, seen = 0, set()
    while True:
        page = service.events_since(position, _PAGE)
        for recorded in page:
            event = recorded.event
            if isinstance(event, PackOpened) and event.pack_id not in seen:
                seen.add(event.pack_id)
                yield event.pack_id
        if len(page) < _PAGE:
            return
        position = page[-1].position


def ledgers(service: PackService) -> Iterator[tuple[Entry, ...]]:
    """Every ledger of the service's practice, in the order its packs were opened."""
    for pack_id in _pack_ids(service):
        yield service.ledger(pack_id)


def _moment(service: PackService, field: str, value: date | datetime) -> datetime:
    """An instant as it is, or a local date's first instant in the practice's zone (in a gap
    at midnight, the instant the day's clocks start)."""
    if isinstance(value, datetime):
        return check_instant(field, value)
    day = check_day(field, value)
    return datetime.combine(day, time(), service.practice.zone)


def _period(
    service: PackService, start: date | datetime, end: date | datetime, as_of: datetime | None
) -> tuple[datetime, datetime, datetime | None]:
    return (
        _moment(service, "start", start),
        _moment(service, "end", end),
        None if as_of is None else check_instant("as_of", as_of),
    )


def report(
    service: PackService,
    start: date | datetime,
    end: date | datetime,
    *,
    as_of: datetime | None = None,
) -> reports.Report:
    """The practice's :class:`~sessionpacks.reports.Report` for ``[start, end)``, from the
    entries recorded before ``as_of`` (``None``: all of them), so it can be run again later
    with the same answer (R23)."""
    begin, finish, cut = _period(service, start, end, as_of)
    return reports.report(ledgers(service), begin, finish, as_of=cut)


def journal(
    service: PackService,
    start: date | datetime,
    end: date | datetime,
    *,
    accounts: reports.JournalAccounts | None = None,
    as_of: datetime | None = None,
) -> tuple[reports.JournalLine, ...]:
    """The practice's journal lines for ``[start, end)`` (:func:`sessionpacks.reports.journal`)."""
    begin, finish, cut = _period(service, start, end, as_of)
    return reports.journal(ledgers(service), begin, finish, accounts=accounts, as_of=cut)
