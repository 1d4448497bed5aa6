"""What every store does the same way, whatever its storage."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

import attrs

from sessionpacks._limits import EARLIEST, INT64_MAX
from sessionpacks.errors import ConcurrencyError, InvalidValueError
from sessionpacks.ledger import PackState, PackStatus, Released, Used
from sessionpacks.model import require_aware
from sessionpacks.operations import Change
from sessionpacks.ports import PackQuery, amount_unit

NEVER = date.max
"""``open_until`` of a live pack without an expiry date: it is open at every instant."""

_LIVE = (PackStatus.OPEN, PackStatus.EXPIRED)
_DAY = timedelta(days=1)


@attrs.frozen
class QueryColumns:
    """The columns of a pack's row that :meth:`~sessionpacks.ports.PackRepository.find_packs`
    narrows by, each a function of the state.

    ``lasting_status`` is the status of a closed, voided or exhausted pack, which it has at
    every instant (``None`` for any other pack); ``open_until`` is, for any other pack, its
    expiry date, or :data:`NEVER`: it is open before that local date and expired from it.
    ``remaining_unit`` is :func:`~sessionpacks.ports.amount_unit` of its metric.
    """

    lasting_status: str | None
    open_until: date | None
    remaining_unit: str
    template_id: str | None


def query_columns(state: PackState) -> QueryColumns:
    """The :class:`QueryColumns` of ``state``, read from the domain's own status."""
    unit = amount_unit(state.metric, state.terms.currency)
    # Status decides voided, closed and exhausted before it looks at the instant: the status
    # at the first instant accepted is the status at every instant for those.
    first = state.status(EARLIEST)
    if first not in _LIVE:
        return QueryColumns(first.value, None, unit, state.template_id)
    return QueryColumns(None, state.expiry_date or NEVER, unit, state.template_id)


@attrs.frozen
class Bounds:
    """What a pack's :class:`QueryColumns` (and ``expiry_date``, ``remaining_units``) must
    satisfy to be a candidate of a query: every answer satisfies them, and
    :meth:`PackQuery.matches` then decides.

    With ``by_status``, a candidate has a ``lasting_status`` among ``lasting``, or an
    ``open_until`` after ``open_after`` (open wanted), or on or before ``expired_by`` (expired
    wanted). The instant's local date is within a day of its UTC date in every zone, so the
    dates are a day wide on the safe side.
    """

    by_status: bool
    lasting: tuple[str, ...]
    open_after: date | None
    expired_by: date | None
    expiring_from: date | None
    expiring_to: date | None
    left: tuple[str, int] | None
    template_id: str | None


def bounds(query: PackQuery) -> Bounds:
    """The :class:`Bounds` of ``query``'s candidates."""
    statuses = query.statuses or frozenset()
    day = None if query.as_of is None else query.as_of.astimezone(UTC).date()
    wide = day is not None and PackStatus.OPEN in statuses
    narrow = day is not None and PackStatus.EXPIRED in statuses
    return Bounds(
        by_status=query.statuses is not None,
        lasting=tuple(sorted(s.value for s in statuses if s not in _LIVE)),
        open_after=day - _DAY if wide and day is not None else None,
        expired_by=day + _DAY if narrow and day is not None else None,
        expiring_from=query.expiring_from,
        expiring_to=query.expiring_to,
        left=query.left,
        template_id=query.template_id,
    )


def serving(states: Iterable[PackState], client_id: str, former: bool) -> list[PackState]:
    """The states a client's packs are (R20): those that serve them, and with ``former`` those
    shared with them before too."""
    return [s for s in states if former or s.serves(client_id)]


def with_statuses(
    states: Iterable[PackState], statuses: Collection[PackStatus] | None, as_of: datetime | None
) -> list[PackState]:
    """Keep the states whose status as of ``as_of`` is in ``statuses`` (all if ``None``)."""
    if statuses is None:
        return list(states)
    if as_of is None:
        raise InvalidValueError("as_of", as_of, "is required to filter packs by status")
    require_aware("as_of", as_of)
    return [s for s in states if s.status(as_of) in statuses]


def check_window(position: int, limit: int | None) -> None:
    """Refuse a malformed ``events_since`` window: whole numbers from 0 to the largest signed
    64-bit integer, which every store can compare against (``limit`` may be None)."""
    if type(position) is not int or not 0 <= position <= INT64_MAX:
        raise InvalidValueError("position", position, f"must be a whole number 0..{INT64_MAX}")
    if limit is not None and (type(limit) is not int or not 0 <= limit <= INT64_MAX):
        raise InvalidValueError("limit", limit, f"must be a whole number 0..{INT64_MAX}, or None")


def appointment_changes(changes: Sequence[Change]) -> tuple[dict[str, str], set[str]]:
    """Appointments each commit makes active (appointment -> pack) and releases."""
    used: dict[str, str] = {}
    released: set[str] = set()
    for change in changes:
        for entry in change.entries:
            if isinstance(entry, Used):
                if entry.appointment.id in used:
                    raise ConcurrencyError(
                        "appointment_id",
                        entry.appointment.id,
                        "recorded on two packs in one commit (R6)",
                    )
                used[entry.appointment.id] = entry.pack_id
            elif isinstance(entry, Released):
                released.add(entry.appointment_id)
    return used, released


@attrs.frozen
class Sharing:
    """The clients each commit lists on a pack (R20), as ``(pack_id, client_id)`` pairs: a
    store indexes a pack by every client it serves, its owner and these."""

    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[tuple[str, str], ...] = ()


def sharing_changes(changes: Sequence[Change]) -> Sharing:
    """What ``changes`` add to and remove from the clients a store indexes their packs by
    (:attr:`PackState.ever_shared_with`), from the state each was decided on and the state
    after it. A client taken off stays indexed (they may still ask for what they drew on,
    R23), so nothing is removed by the library's own changes."""
    added: list[tuple[str, str]] = []
    removed: list[tuple[str, str]] = []
    for change in changes:
        before = () if change.before is None else change.before.ever_shared_with
        after = change.after.ever_shared_with
        if before == after:
            continue
        added.extend((change.pack_id, c) for c in after if c not in before)
        removed.extend((change.pack_id, c) for c in before if c not in after)
    return Sharing(tuple(added), tuple(removed))


def client_conflict(client_id: str, count: int, seen: int) -> ConcurrencyError:
    """A pack decision made on ``seen`` packs of the client, who now has ``count`` (R13a)."""
    return ConcurrencyError(
        "client_id",
        client_id,
        f"has {count} pack(s), not the {seen} the decision was made on (R13a)",
    )


def command_conflict(key: str) -> ConcurrencyError:
    """A second writer of one idempotency key: the retry finds the first one's result (R27)."""
    return ConcurrencyError("idempotency_key", key, "was recorded by a concurrent command (R27)")


def check_distinct(changes: Sequence[Change]) -> list[Change]:
    """The changes that write something, refusing two changes to one pack in a commit."""
    seen: set[str] = set()
    for change in changes:
        if change.pack_id in seen:
            raise InvalidValueError("changes", change.pack_id, "one commit changes a pack once")
        seen.add(change.pack_id)
    return [c for c in changes if c.entries]
