"""Domain events (R12): what a host reacts to, stored atomically with the entries causing them.

Every event has a unique ``event_id``, derived from the pack and the ledger entry that caused it
(``"<pack>#<sequence>.<n>"``), so the same change can never produce two different ids. A store
gives each event a ``position`` in one ordered stream per practice (:class:`RecordedEvent`).

Every event also has a stable ``occurrence`` key (R12b): what a host turns into one task. For
``PackExhausted`` it is ``"<pack>:PackExhausted:<total>"``, once per pack and total; for
``LowBalance`` ``"<pack>:LowBalance:<total>:<threshold>"``, once per pack, total and threshold
(totals and thresholds in the pack's units: sessions, microseconds, or minor units of money);
for ``PackExpired`` ``"<pack>:PackExpired:<expiry date>"``, once per expiry date, and for
``ExpiringSoon`` ``"<pack>:ExpiringSoon:<expiry date>"``, likewise (R25). A bundle's line
(R24) has ``"<pack>:LowBalance:<line>:<total>:<threshold>"`` and
``"<pack>:LineExhausted:<line>:<total>"``, in the line's units. For every
other event, and for a ``PackExhausted`` or ``LowBalance`` stored by an earlier release, it is
the event id.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TypeAlias

import attrs

from sessionpacks.ledger import Mark
from sessionpacks.model import Amount, Money

__all__ = [
    "Event",
    "ExpiringSoon",
    "ExpiryExtended",
    "HoldEnded",
    "LineExhausted",
    "LowBalance",
    "PackAdjusted",
    "PackClosed",
    "PackExhausted",
    "PackExpired",
    "PackHeld",
    "PackOpened",
    "PackShared",
    "PackTransferred",
    "PackUnshared",
    "PackVoided",
    "RecordedEvent",
    "SessionUsed",
    "UsageMarked",
    "UsageReleased",
    "UsageRescheduled",
]


def _units(value: Amount) -> int:
    """An amount as the integer its key shows: sessions, microseconds, or minor units."""
    if isinstance(value, Money):
        return value.minor
    if isinstance(value, timedelta):
        return value // timedelta(microseconds=1)
    return value


class _Occurs:
    """The occurrence key of an event that is its own occurrence: its id (R12b)."""

    __slots__ = ()
    event_id: str

    @property
    def occurrence(self) -> str:
        return self.event_id


@attrs.frozen(kw_only=True)
class PackOpened(_Occurs):
    """A pack was opened; ``migrated`` says it came from another system, with what it used
    there, and no ``SessionUsed`` tells of that (R19). ``shared_with``: the clients beside the
    owner (``client_id``) who may draw on it (R20)."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    name: str
    template_id: str | None
    migrated: bool = False
    shared_with: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class SessionUsed(_Occurs):
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
class UsageReleased(_Occurs):
    """A usage was released (R7, R10a). If its invoice line was issued, ``invoice_label`` and
    ``invoice_amount`` are that line and ``credit`` is what the host credits for it (R7a):
    the line's amount on a pack charged per session, zero on a pack charged per pack, whose
    price stays with the pack (what is unused is refundable at close, R15). All three are
    ``None`` when no line was issued."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    appointment_id: str
    remaining: Amount
    reason: str = ""
    invoice_label: str | None = None
    invoice_amount: Money | None = None
    credit: Money | None = None


@attrs.frozen(kw_only=True)
class UsageRescheduled(_Occurs):
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    appointment_id: str
    start: datetime


@attrs.frozen(kw_only=True)
class UsageMarked(_Occurs):
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    appointment_id: str
    mark: Mark


@attrs.frozen(kw_only=True)
class PackAdjusted(_Occurs):
    """A credit or debit (R9): of one ``line`` of a bundle (R24), which has ``line_remaining``
    left after it; ``remaining`` is the whole pack's."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    amount: Amount
    reason: str
    remaining: Amount
    line: str | None = None
    line_remaining: Amount | None = None


@attrs.frozen(kw_only=True)
class PackExhausted:
    """The last of the allowance was used: a task for the host, once per pack and ``total``
    (R12b). ``total`` is ``None`` only in an event stored by an earlier release."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    total: Amount | None = None

    @property
    def occurrence(self) -> str:
        if self.total is None:
            return self.event_id
        return f"{self.pack_id}:PackExhausted:{_units(self.total)}"


@attrs.frozen(kw_only=True)
class LowBalance:
    """What remains fell to the template's ``threshold`` or below: once per pack, ``total``
    and threshold (R12b). Both are ``None`` only in an event stored by an earlier release.
    For a bundle (R24) it tells of one ``line``: what remains of it and its total."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    remaining: Amount
    total: Amount | None = None
    threshold: Amount | None = None
    line: str | None = None

    @property
    def occurrence(self) -> str:
        if self.total is None or self.threshold is None:
            return self.event_id
        line = "" if self.line is None else f"{self.line}:"
        return f"{self.pack_id}:LowBalance:{line}{_units(self.total)}:{_units(self.threshold)}"


@attrs.frozen(kw_only=True)
class LineExhausted:
    """The last of one line of a bundle was used (R24): its services draw on the pack no more
    while the other lines go on. Once per pack, line and ``total`` (the line's); the pack's
    own ``PackExhausted`` follows when every line is."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    line: str
    total: Amount

    @property
    def occurrence(self) -> str:
        return f"{self.pack_id}:LineExhausted:{self.line}:{_units(self.total)}"


@attrs.frozen(kw_only=True)
class PackExpired:
    """An expiry sweep found the pack expired with ``remaining`` unused: once per expiry date
    (R12b). ``breakage`` is the price of what was left (R15a; zero for a pack charged per
    session), ``None`` only in an event stored by an earlier release."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    expiry_date: date
    remaining: Amount
    breakage: Money | None = None

    @property
    def occurrence(self) -> str:
        return f"{self.pack_id}:PackExpired:{self.expiry_date.isoformat()}"


@attrs.frozen(kw_only=True)
class ExpiringSoon:
    """A sweep found the pack due its reminder (R25): it expires on ``expiry_date`` with
    ``remaining`` left. ``days_before`` is its policy's ``remind_days_before_expiry``: the
    reminder was due that many days before the expiry date. Once per pack and expiry date."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    expiry_date: date
    remaining: Amount
    days_before: int

    @property
    def occurrence(self) -> str:
        return f"{self.pack_id}:ExpiringSoon:{self.expiry_date.isoformat()}"


@attrs.frozen(kw_only=True)
class ExpiryExtended(_Occurs):
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    until: date
    reason: str


@attrs.frozen(kw_only=True)
class PackHeld(_Occurs):
    """The pack was put on hold from ``start`` until ``until`` (the first date usable again);
    it now expires on ``expiry_date`` (R22)."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    start: date
    until: date
    reason: str
    expiry_date: date | None


@attrs.frozen(kw_only=True)
class HoldEnded(_Occurs):
    """The hold from ``start`` until ``until`` was ended early: usable again from ``on``; the
    pack now expires on ``expiry_date`` (R22)."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    start: date
    until: date
    on: date
    reason: str
    expiry_date: date | None


@attrs.frozen(kw_only=True)
class PackTransferred(_Occurs):
    """What remained of pack ``from_pack_id`` (client ``from_client_id``) was transferred to a
    new pack ``to_pack_id`` for ``to_client_id`` (R21): ``remaining`` and its unearned
    ``value`` (``None`` for a pack charged per session, which holds none). Emitted on both
    packs, in one atomic change: ``pack_id`` says which side this is."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    from_pack_id: str
    to_pack_id: str
    from_client_id: str
    to_client_id: str
    remaining: Amount
    value: Money | None
    reason: str


@attrs.frozen(kw_only=True)
class PackShared(_Occurs):
    """Client ``with_client_id`` may now draw on the pack of ``client_id``, its owner (R20);
    ``shared_with`` lists every client beside the owner who now may."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    with_client_id: str
    shared_with: tuple[str, ...]


@attrs.frozen(kw_only=True)
class PackUnshared(_Occurs):
    """Client ``with_client_id`` may no longer draw on the pack of ``client_id`` (R20);
    ``shared_with`` lists the clients beside the owner who still may."""

    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    with_client_id: str
    shared_with: tuple[str, ...]


@attrs.frozen(kw_only=True)
class PackClosed(_Occurs):
    event_id: str
    pack_id: str
    client_id: str
    occurred_at: datetime
    remaining: Amount
    reason: str


@attrs.frozen(kw_only=True)
class PackVoided(_Occurs):
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
    | LineExhausted
    | LowBalance
    | PackExpired
    | ExpiringSoon
    | ExpiryExtended
    | PackHeld
    | HoldEnded
    | PackTransferred
    | PackShared
    | PackUnshared
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
    ExpiringSoon,
    PackHeld,
    HoldEnded,
    PackTransferred,
    PackShared,
    PackUnshared,
    LineExhausted,
)


@attrs.frozen
class RecordedEvent:
    """An event at its ``position`` in the practice's stream (1, 2, 3...)."""

    position: int
    event: Event
