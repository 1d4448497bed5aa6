"""What every store does the same way, whatever its storage."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from sessionpacks._limits import INT64_MAX
from sessionpacks.errors import ConcurrencyError, InvalidValueError
from sessionpacks.ledger import PackState, PackStatus, Released, Used
from sessionpacks.model import require_aware
from sessionpacks.operations import Change


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
