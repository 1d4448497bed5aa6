"""Ports: what the application layer needs from the outside world.

A :class:`PackRepository` is bound to one practice (tenant): nothing it reads or writes crosses
into another practice. Stores (``sessionpacks.adapters``) implement it; every store passes the
contract suite in :mod:`sessionpacks.testing.contract`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import attrs

from sessionpacks._limits import INT64_MAX, check_day, check_duration, check_id, check_instant
from sessionpacks.errors import ConcurrencyError, InvalidValueError
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import Entry, PackState, PackStatus
from sessionpacks.model import Amount, Metric, Money, PackTemplate, Practice, Preference, units
from sessionpacks.operations import Change

__all__ = [
    "MAX_PAGE",
    "Clock",
    "CommandRecord",
    "ConcurrencyError",
    "PackPage",
    "PackQuery",
    "PackRepository",
    "amount_unit",
    "check_page",
]

MAX_PAGE = 1000
"""The most packs one page of :meth:`PackRepository.find_packs` holds."""


@attrs.frozen
class CommandRecord:
    """What a command carrying an idempotency key did (R27), kept by the store for good.

    The service writes it in the same atomic change as the command's own writes, so a command
    either happened and is recorded, or neither. ``fingerprint`` identifies the command and its
    arguments; ``result`` is the command's result as JSON text, opaque to the store, with the
    positions of the events it recorded counted from 1. The store sets ``first_position``: the
    stream position just before the commit's first event (0 when it recorded none), so a
    repeated command can report the positions the first one got.
    """

    key: str
    fingerprint: str
    result: str
    first_position: int = 0


def amount_unit(metric: Metric, currency: str) -> str:
    """What an amount of ``metric`` counts in: ``"sessions"``, ``"hours"`` (a duration) or
    ``"money:AUD"``. Amounts compare only within one unit: "at most 1 left" of a sessions pack
    says nothing of an hours pack, nor 20 AUD of a pack in NZD."""
    return f"money:{currency}" if metric is Metric.MONEY else metric.value


def _unit_of(value: Amount) -> tuple[str, int]:
    """``value``'s unit (:func:`amount_unit`) and its count in that unit's minor units."""
    if isinstance(value, Money):
        return amount_unit(Metric.MONEY, value.currency), units(Metric.MONEY, value)
    if isinstance(value, timedelta):
        return amount_unit(Metric.HOURS, ""), units(Metric.HOURS, value)
    return amount_unit(Metric.SESSIONS, ""), value


def _statuses(value: Any) -> frozenset[PackStatus] | None:
    if value is None:
        return None
    if isinstance(value, PackStatus):
        return frozenset((value,))
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidValueError("statuses", value, "must be PackStatus members, or None")
    found = tuple(value)
    if not all(isinstance(s, PackStatus) for s in found):
        raise InvalidValueError("statuses", value, "must be PackStatus members, or None")
    return frozenset(found)


def _left(value: Any) -> Amount | None:
    """An amount of at least nothing: whole sessions, a duration or Money, or ``None``."""
    if value is None or (isinstance(value, Money) and value.minor >= 0):
        return value
    if isinstance(value, timedelta) and value >= timedelta():
        return check_duration("at_most_left", value, positive=False)
    if type(value) is int and 0 <= value <= INT64_MAX:
        return value
    raise InvalidValueError(
        "at_most_left", value, "must be a whole number of sessions, a duration or Money, >= 0"
    )


def _as_of(value: Any) -> datetime | None:
    return None if value is None else check_instant("as_of", value)


def _expiring_from(value: Any) -> date | None:
    return None if value is None else check_day("expiring_from", value)


def _expiring_to(value: Any) -> date | None:
    return None if value is None else check_day("expiring_to", value)


def _template_id(value: Any) -> str | None:
    return None if value is None else check_id("template_id", value)


@attrs.frozen(kw_only=True)
class PackQuery:
    """Which packs :meth:`PackRepository.find_packs` answers with: every filter given must hold.

    - ``statuses``: the pack's status as of ``as_of`` (:meth:`PackState.status`; ``as_of`` is
      required with it and only then) is one of them. Status depends on the instant through
      expiry: a pack open as of one instant is expired as of a later one.
    - ``expiring_from``, ``expiring_to``: the pack has an expiry date
      (:attr:`PackState.expiry_date`) within ``[expiring_from, expiring_to]``, both ends
      included; either end may be left open. Whatever the status: add ``statuses`` for the
      packs still usable.
    - ``at_most_left``: the pack counts in the amount's unit (:func:`amount_unit`: a whole
      number of sessions for session packs, a ``timedelta`` for hours packs, ``Money`` for
      money packs of that currency) and has at most that much left. Whatever the status.
    - ``template_id``: the pack was opened from that template.

    With no filter at all it answers with every pack of the practice. Refuses anything else
    with :class:`~sessionpacks.errors.InvalidValueError` naming the field and value (R18).
    """

    statuses: frozenset[PackStatus] | None = attrs.field(default=None, converter=_statuses)
    as_of: datetime | None = attrs.field(default=None, converter=_as_of)
    expiring_from: date | None = attrs.field(default=None, converter=_expiring_from)
    expiring_to: date | None = attrs.field(default=None, converter=_expiring_to)
    at_most_left: Amount | None = attrs.field(default=None, converter=_left)
    template_id: str | None = attrs.field(default=None, converter=_template_id)

    def __attrs_post_init__(self) -> None:
        if self.statuses is not None and self.as_of is None:
            raise InvalidValueError("as_of", None, "is required to find packs by status")
        if self.statuses is None and self.as_of is not None:
            raise InvalidValueError("as_of", self.as_of, "is only meaningful with statuses")
        low, high = self.expiring_from, self.expiring_to
        if low is not None and high is not None and low > high:
            raise InvalidValueError(
                "expiring_to", high, f"must be on or after expiring_from ({low})"
            )

    @property
    def left(self) -> tuple[str, int] | None:
        """``at_most_left`` as its unit and a count of that unit's minor units, or ``None``."""
        return None if self.at_most_left is None else _unit_of(self.at_most_left)

    def matches(self, state: PackState) -> bool:
        """The one definition of an answer: stores narrow the packs with their indexes, then
        keep those this says match."""
        return (
            self._status_matches(state)
            and self._expiry_matches(state.expiry_date)
            and (self.template_id is None or state.template_id == self.template_id)
            and self._left_matches(state)
        )

    def _status_matches(self, state: PackState) -> bool:
        if self.statuses is None or self.as_of is None:
            return True
        return state.status(self.as_of) in self.statuses

    def _expiry_matches(self, expiry: date | None) -> bool:
        low, high = self.expiring_from, self.expiring_to
        if low is None and high is None:
            return True
        return (
            expiry is not None
            and (low is None or low <= expiry)
            and (high is None or expiry <= high)
        )

    def _left_matches(self, state: PackState) -> bool:
        left = self.left
        if left is None:
            return True
        unit = amount_unit(state.metric, state.terms.currency)
        return unit == left[0] and state.remaining_units <= left[1]


_CURSOR_PREFIX = "p1."


@attrs.frozen
class PackPage:
    """One page of :meth:`PackRepository.find_packs`: packs in ascending ``pack_id`` (by code
    point, as Python orders strings), and the cursor of the next page, ``None`` on the last.

    ``next_cursor`` is opaque: pass it back as ``after``. A page starts after the pack the
    cursor names, so while nothing changes in between the pages hold every answer once, in
    order; a pack written meanwhile is in a later page if it sorts after the cursor.
    """

    packs: tuple[PackState, ...]
    next_cursor: str | None = None

    @staticmethod
    def cursor(pack_id: str) -> str:
        """The cursor of a page that starts after ``pack_id``."""
        encoded = base64.urlsafe_b64encode(pack_id.encode()).decode().rstrip("=")
        return _CURSOR_PREFIX + encoded

    @staticmethod
    def start(after: str | None) -> str | None:
        """The pack id a page given ``after`` starts after (``None``: the first page); refuses
        a cursor this library did not give with :class:`InvalidValueError` (field ``after``)."""
        if after is None:
            return None
        if not isinstance(after, str) or not after.startswith(_CURSOR_PREFIX):
            raise InvalidValueError("after", after, "is not a cursor find_packs gave")
        body = after[len(_CURSOR_PREFIX) :]
        try:
            pack_id = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidValueError("after", after, "is not a cursor find_packs gave") from None
        if PackPage.cursor(pack_id) != after:
            raise InvalidValueError("after", after, "is not a cursor find_packs gave")
        try:
            return check_id("after", pack_id)
        except InvalidValueError:
            raise InvalidValueError("after", after, "is not a cursor find_packs gave") from None

    @staticmethod
    def check_limit(limit: object) -> int:
        """``limit`` if it is a whole number from 1 to :data:`MAX_PAGE`."""
        if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
            raise InvalidValueError("limit", limit, f"must be a whole number from 1 to {MAX_PAGE}")
        return limit

    @classmethod
    def of(cls, matches: Iterable[PackState], limit: int) -> PackPage:
        """The page of the first ``limit`` of ``matches`` (answers in order, after the start):
        a store reads up to ``limit + 1`` of them, so the page knows whether another follows."""
        found: list[PackState] = []
        for state in matches:
            if len(found) == limit:
                return cls(tuple(found), cls.cursor(found[-1].pack_id))
            found.append(state)
        return cls(tuple(found))

    @classmethod
    def scan(
        cls, states: Iterable[PackState], query: PackQuery, after: str | None, limit: int
    ) -> PackPage:
        """The page of ``query`` over ``states`` by reading every one: for a store without
        indexes (the reference store, a small host's). Checks ``query``, ``after`` and
        ``limit`` first."""
        start, limit = check_page(query, after, limit)
        ordered = sorted((s for s in states if start is None or s.pack_id > start), key=_pack_id)
        return cls.of((s for s in ordered if query.matches(s)), limit)


def _pack_id(state: PackState) -> str:
    return state.pack_id


def check_page(query: object, after: object, limit: object) -> tuple[str | None, int]:
    """Refuse a malformed :meth:`PackRepository.find_packs` call: returns the pack id the page
    starts after (``None`` for the first page) and the limit."""
    if not isinstance(query, PackQuery):
        raise InvalidValueError("query", query, "must be a PackQuery")
    return PackPage.start(after), PackPage.check_limit(limit)  # type: ignore[arg-type]


@runtime_checkable
class Clock(Protocol):
    """Where the application layer gets "now": always timezone-aware."""

    def now(self) -> datetime: ...


@runtime_checkable
class PackRepository(Protocol):
    """Storage for one practice's packs, ledgers, events, templates and preferences.

    Writes go through :meth:`commit` only, conditional on versions (R16). Reads of unknown ids
    raise :class:`~sessionpacks.errors.NotFoundError`.
    """

    @property
    def practice(self) -> Practice:
        """The practice this handle is bound to."""

    def load(self, pack_id: str) -> PackState:
        """The pack's current state; its ``version`` is what a write must expect."""

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        """Every entry of the pack's ledger, in order."""

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        """The client's packs in the order opened: those they own and those shared with them
        (:attr:`PackState.shared_with`, R20), read by index; with ``former``, those shared
        with them before and not now too (:attr:`PackState.ever_shared_with`: what they drew
        on, asked as of a past instant, R23); with ``statuses``, only those whose status as
        of ``as_of`` is one of them (``as_of`` is then required)."""

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        """The pack the appointment is active on, if any (R6)."""

    def expiry_candidates(self, as_of: date) -> list[PackState]:
        """Packs an expiry sweep as of ``as_of`` must look at: those whose
        :meth:`PackState.due_for_sweep` holds. Not closed or voided, with something left, and
        an expiry date on or before ``as_of`` not yet recorded (R12), or a reminder due on or
        before it not yet recorded for that expiry date (R25)."""

    def find_packs(
        self, query: PackQuery, *, after: str | None = None, limit: int = 100
    ) -> PackPage:
        """The packs that match ``query`` (:meth:`PackQuery.matches`), at most ``limit`` of
        them (1 to :data:`MAX_PAGE`), in ascending ``pack_id``, starting after the cursor
        ``after`` (a :attr:`PackPage.next_cursor`; ``None``: the first page).

        Its cost grows with the answer, not with the practice: a store with many packs answers
        from indexes and keeps only the candidates :meth:`PackQuery.matches` accepts. A query
        that is not a :class:`PackQuery`, a cursor it did not give or a limit out of range
        raises :class:`~sessionpacks.errors.InvalidValueError` (see :func:`check_page`)."""

    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        """Append every change's entries and events in one atomic transaction.

        Each change is written only if its pack is still at ``change.expected_version`` (0 for
        a new pack); otherwise :class:`ConcurrencyError` is raised and nothing is written. An
        appointment active on one pack cannot be recorded on another unless the same commit
        releases it (R6).

        ``client_packs`` maps a client to the number of packs the client owned when the
        decision was made (packs shared with them not counted): the commit conflicts if the
        client owns another number now, so two bookings that each decided to open a pack
        cannot both open one (R13a). Checking it must not make writers on other clients wait.

        A change whose state lists other clients than its state before (``shared_with``,
        R20) updates the store's index of the client's packs in the same transaction.

        ``command`` is stored in the same transaction (R27), even when no change writes
        anything; a key already stored conflicts. Returns the events with their positions.
        """

    def command(self, key: str) -> CommandRecord | None:
        """The command stored under idempotency key ``key``, if any (R27)."""

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        """Events after ``position`` (exclusive), in stream order."""

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        """Store a template version; it must be 1 for a new id, else the latest plus one.

        ``command`` is stored with it, as in :meth:`commit`."""

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        """A template's latest version, or the given one."""

    def templates(self) -> list[PackTemplate]:
        """The latest version of every template."""

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        """Set, or with ``None`` clear, the client's preferred service, template or pack.

        ``command`` is stored with it, as in :meth:`commit`."""

    def preference(self, client_id: str) -> Preference | None:
        """The client's preference, if any."""
