"""Domain events (R12): what a host reacts to, stored atomically with the entries causing them.

Every event has a unique ``event_id``, derived from the pack and the ledger entry that caused it
(``"<pack>#<sequence>.<n>"``), so the same change can never produce two different ids. A store
gives each event a ``position`` in one ordered stream per practice (:class:`RecordedEvent`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeAlias

import attrs

from sessionpacks.ledger import Mark
from sessionpacks.model import Amount

__all__ = [
    "Event",
    "ExpiryExtended",
    "LowBalance",
    "PackAdjusted",
    "PackClosed",
    "PackExhausted",
    "PackExpired",
    "PackOpened",
    "PackVoided",
    "RecordedEvent",
    "SessionUsed",
    "UsageMarked",
    "UsageReleased",
    "UsageRescheduled",
]


@attrs.frozen(kw_only=True)
class PackOpened:
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    name: str
    template_id: str | None


@attrs.frozen(kw_only=True)
class SessionUsed:
    """An appointment used the pack; ``number`` is its session number when recorded (R8)."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    appointment_id: str
    number: int
    covered: Amount
    shortfall: Amount
    remaining: Amount


@attrs.frozen(kw_only=True)
class UsageReleased:
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    appointment_id: str
    remaining: Amount


@attrs.frozen(kw_only=True)
class UsageRescheduled:
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    appointment_id: str
    start: datetime


@attrs.frozen(kw_only=True)
class UsageMarked:
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    appointment_id: str
    mark: Mark


@attrs.frozen(kw_only=True)
class PackAdjusted:
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    amount: Amount
    reason: str
    remaining: Amount


@attrs.frozen(kw_only=True)
class PackExhausted:
    """The last of the allowance was used: a task for the host, once per event."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime


@attrs.frozen(kw_only=True)
class LowBalance:
    """What remains first fell to the template's threshold or below."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    remaining: Amount


@attrs.frozen(kw_only=True)
class PackExpired:
    """An expiry sweep found the pack expired with ``remaining`` unused: once per expiry."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    expiry_date: date
    remaining: Amount


@attrs.frozen(kw_only=True)
class ExpiryExtended:
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    until: date
    reason: str


@attrs.frozen(kw_only=True)
class PackClosed:
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    remaining: Amount
    reason: str


@attrs.frozen(kw_only=True)
class PackVoided:
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    reason: str


Event: TypeAlias = (
    PackOpened
    | SessionUsed
    | UsageReleased
    | UsageRescheduled
    | UsageMarked
    | PackAdjusted
    | PackExhausted
    | LowBalance
    | PackExpired
    | ExpiryExtended
    | PackClosed
    | PackVoided
)
EVENT_TYPES = (
    PackOpened,
    SessionUsed,
    UsageReleased,
    UsageRescheduled,
    UsageMarked,
    PackAdjusted,
    PackExhausted,
    LowBalance,
    PackExpired,
    ExpiryExtended,
    PackClosed,
    PackVoided,
)


@attrs.frozen
class RecordedEvent:
    """An event at its ``position`` in the practice's stream (1, 2, 3...)."""

    position: int
    event: Event
