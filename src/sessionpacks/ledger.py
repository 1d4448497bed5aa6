"""The append-only usage ledger and the pack state folded from it (R1, R8, R11).

Each pack has a ledger: a list of entries numbered 1, 2, 3... (``sequence``). The version of a
pack is the sequence of its last entry. :func:`apply` folds one entry into a :class:`PackState`
without replaying the ledger; :func:`replay` folds a whole ledger. ``replay(entries) ==
reduce(apply, entries)`` by construction, and a property test holds the two equal.

The state keeps only the *active* usages, sorted by (start, order recorded), so the cost of
applying an entry depends on the number of active usages (bounded by the allowance), never on
the length of the ledger.

The state also remembers which balance occurrences have fired (R12b): the totals at which the
pack was exhausted, and those at which it fell to its low-balance threshold. The fold decides
them from the entries alone, so a replay agrees with the changes that emitted the events.
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import reduce
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

import attrs

from sessionpacks._limits import INT32_MAX, check_count, check_day
from sessionpacks.errors import InvalidValueError
from sessionpacks.model import (
    Amount,
    Appointment,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    Metric,
    Money,
    PackTerms,
    PerSession,
    amount,
    format_amount,
    instant,
    require_aware,
    units,
)

__all__ = [
    "Adjusted",
    "Closed",
    "Entry",
    "Expired",
    "Extended",
    "Held",
    "Hold",
    "Invoiced",
    "Mark",
    "Marked",
    "Migration",
    "Opened",
    "PackState",
    "PackStatus",
    "Released",
    "Reminded",
    "Rescheduled",
    "Resumed",
    "Shared",
    "Unshared",
    "Usage",
    "Used",
    "Voided",
    "apply",
    "replay",
    "replay_as_of",
]


class Mark(enum.Enum):
    """Why an appointment that did not happen still consumes (R7)."""

    LATE_CANCEL = "late_cancel"
    NO_SHOW = "no_show"


class PackStatus(enum.Enum):
    """A pack's status as of an instant (R11)."""

    OPEN = "open"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"
    CLOSED = "closed"
    VOIDED = "voided"


@attrs.frozen
class Migration:
    """A pack brought from another system (R19): opened there on ``opened_on`` (its expiry
    counts from that date), with ``used`` of its allowance used there, in the pack's metric,
    and ``numbered`` sessions numbered there, so the next one here is number ``numbered + 1``
    (``None``: as many as ``used`` for a sessions pack, none for hours or money).
    ``expires_on``, if given, is its expiry date there, which stands instead of its rule's.

    Its price was paid there: no line here charges it again."""

    opened_on: date = attrs.field(validator=lambda _, a, v: check_day("migrated.opened_on", v))
    used: Amount = 0
    numbered: int | None = attrs.field(
        default=None,
        validator=lambda _, a, v: (
            v is None or check_count("migrated.numbered", v, maximum=INT32_MAX)
        ),
    )
    expires_on: date | None = attrs.field(
        default=None,
        validator=lambda _, a, v: v is None or check_day("migrated.expires_on", v),
    )


@attrs.frozen(kw_only=True)
class Opened:
    """The pack was opened with these terms, copied from template ``template_id`` if given (R2).

    ``charged_on_open`` says the pack's price went on its own invoice at opening (R15).
    ``migrated`` says it was brought from another system, with what was used there (R19);
    ``transferred_from`` names the pack whose remainder it holds (R21), its price paid there.
    ``shared_with`` lists the other clients who may draw on it from the start (R20): the
    owner, ``client_id``, paid for it.
    """

    pack_id: str
    sequence: int
    recorded_at: datetime
    client_id: str
    terms: PackTerms
    timezone: str
    template_id: str | None = None
    template_version: int | None = None
    charged_on_open: bool = False
    migrated: Migration | None = None
    transferred_from: str | None = None
    shared_with: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Used:
    """An appointment drew ``covered`` from the pack; ``shortfall`` is left to bill (R3)."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    appointment: Appointment
    covered: Amount
    shortfall: Amount


@attrs.frozen(kw_only=True)
class Released:
    """The usage of ``appointment_id`` was released: what it consumed is restored (R7), and its
    invoice line, if one was issued, no longer stands (R7a)."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    appointment_id: str
    reason: str = ""


@attrs.frozen(kw_only=True)
class Rescheduled:
    """The usage's appointment moved to ``start`` (R7)."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    appointment_id: str
    start: datetime


@attrs.frozen(kw_only=True)
class Marked:
    """The usage stays consumed, marked late-cancelled or no-show (R7)."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    appointment_id: str
    mark: Mark


@attrs.frozen(kw_only=True)
class Adjusted:
    """A credit (positive) or debit (negative) of the pack's allowance (R9); of one ``line``
    of a bundle, by its name (R24)."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    amount: Amount
    reason: str
    line: str | None = None


@attrs.frozen(kw_only=True)
class Extended:
    """The expiry date was moved to ``until`` (R5)."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    until: date
    reason: str


@attrs.frozen(kw_only=True)
class Expired:
    """An expiry sweep as of ``as_of`` found the pack expired on ``expiry_date`` (R12)."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    expiry_date: date
    as_of: date


@attrs.frozen(kw_only=True)
class Reminded:
    """An expiry sweep as of ``as_of`` found the pack's reminder due for its expiry on
    ``expiry_date`` (R25): once per expiry date."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    expiry_date: date
    as_of: date


@attrs.frozen(kw_only=True)
class Held:
    """The pack was put on hold from ``start`` until ``until``, the first date usable again
    (R22): no usage dated inside it, and the expiry date moves later by its days."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    start: date
    until: date
    reason: str = ""


@attrs.frozen(kw_only=True)
class Resumed:
    """The hold that starts on ``start`` was ended early: the pack is usable again from ``on``,
    and the expiry date moves back by the hold's days not used (R22). ``on`` on or before
    ``start`` removes the hold."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    start: date
    on: date
    reason: str = ""


@attrs.frozen(kw_only=True)
class Shared:
    """Client ``client_id`` may draw on the pack from now on, beside its owner (R20)."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    client_id: str


@attrs.frozen(kw_only=True)
class Unshared:
    """Client ``client_id`` may no longer draw on the pack (R20). The sessions they used stay
    used and numbered."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    client_id: str


@attrs.frozen
class Hold:
    """A hold in :attr:`PackState.holds`: from ``start`` until ``until``, excluded (R22).

    ``counted``: its days move the expiry date. An extension or a recorded expiry sets the date
    itself, so the holds before it no longer count (and ending one early gives nothing back)."""

    start: date
    until: date
    reason: str = ""
    counted: bool = True

    @property
    def days(self) -> int:
        return (self.until - self.start).days

    def covers(self, day: date) -> bool:
        return self.start <= day < self.until


@attrs.frozen(kw_only=True)
class Closed:
    """The pack was closed early: no further usage (R10). ``transferred_to`` names the pack
    what remained was transferred to (R21): then it is not refundable."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    reason: str = ""
    transferred_to: str | None = None


@attrs.frozen(kw_only=True)
class Voided:
    """The pack was opened in error (R10)."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    reason: str = ""


@attrs.frozen(kw_only=True)
class Invoiced:
    """The invoice line of an appointment was issued; it keeps its label from now on (R8)."""

    pack_id: str
    sequence: int
    recorded_at: datetime
    appointment_id: str
    number: int
    label: str
    amount: Money
    prepaid: bool
    includes_pack_price: bool
    tier: int | None = None
    """For a pack charged per session, the tier place the line was charged at (R7a): the
    lowest place no standing line holds. ``None`` in ledgers written before it was recorded,
    where folding gives the same place."""


Entry: TypeAlias = (
    Opened
    | Used
    | Released
    | Rescheduled
    | Marked
    | Adjusted
    | Extended
    | Expired
    | Reminded
    | Held
    | Resumed
    | Shared
    | Unshared
    | Closed
    | Voided
    | Invoiced
)
ENTRY_TYPES: tuple[type[Any], ...] = (
    Opened,
    Used,
    Released,
    Rescheduled,
    Marked,
    Adjusted,
    Extended,
    Expired,
    Closed,
    Voided,
    Invoiced,
    Reminded,
    Held,
    Resumed,
    Shared,
    Unshared,
)


@attrs.frozen(kw_only=True)
class Usage:
    """One active usage: an appointment drawing on the pack."""

    appointment: Appointment
    order: int
    consumed: int
    shortfall: int
    mark: Mark | None = None
    invoice: Invoiced | None = None

    @property
    def key(self) -> tuple[datetime, int]:
        """Session order (R8): the appointment's instant, ties by the order recorded."""
        return (instant(self.appointment.start), self.order)


def _usage_key(usage: Usage) -> tuple[datetime, int]:
    return usage.key


def _exhausted_so_far(state: PackState) -> tuple[int, ...]:
    """The default of ``exhausted_totals`` for a state stored by an earlier release, which
    did not keep it: a pack at zero was exhausted at its present total (a replay says so too)."""
    return (state.total_units,) if state.remaining_units <= 0 else ()


@attrs.frozen(kw_only=True)
class PackState:
    """A pack as its ledger says it is at ``version``. Every figure is derived (R1).

    Amount-valued figures (``remaining``, ``total``) are in the pack's metric: whole sessions,
    a ``timedelta`` or ``Money``.

    ``lines_issued`` counts the invoice lines that still stand (issued, on an active usage), and
    ``price_charged`` says the per-pack price was charged, on the opening or on a line: it stays
    charged when that line is released, since the price is the pack's, not a session's (R7a).
    ``exhausted_totals`` and ``low_balance_totals`` are the totals, in units, at which
    ``PackExhausted`` and ``LowBalance`` fired: each fires once per pack and total (R12b).
    ``reminded_for`` are the expiry dates ``ExpiringSoon`` reminded of (R25), ``holds``
    the pack's holds by start date (R22), and ``shared_with`` the clients beside the owner
    (``client_id``) who may draw on it, in the order listed (R20).
    """

    pack_id: str
    client_id: str
    terms: PackTerms
    timezone: str
    opened_at: datetime
    template_id: str | None
    template_version: int | None
    charged_on_open: bool
    version: int
    # Before exhausted_totals: its default reads the balance, which counts what was used there.
    migrated: Migration | None = None
    transferred_from: str | None = None
    transferred_to: str | None = None
    adjustment_units: int = 0
    consumed_units: int = 0
    usages: tuple[Usage, ...] = ()
    expiry_override: date | None = None
    expired_on: date | None = None
    closed_at: datetime | None = None
    voided_at: datetime | None = None
    price_charged: bool = False
    lines_issued: int = 0
    exhausted_totals: tuple[int, ...] = attrs.field(
        default=attrs.Factory(_exhausted_so_far, takes_self=True)
    )
    low_balance_totals: tuple[int, ...] = ()
    reminded_for: tuple[date, ...] = ()
    holds: tuple[Hold, ...] = ()
    shared_with: tuple[str, ...] = ()
    formerly_shared_with: tuple[str, ...] = ()
    # R24: a bundle's adjustments by line, and the (line, line total) its occurrences fired at.
    line_adjustments: tuple[int, ...] = ()
    lines_exhausted: tuple[tuple[int, int], ...] = ()
    lines_low: tuple[tuple[int, int], ...] = ()

    @property
    def is_bundle(self) -> bool:
        return bool(self.terms.lines)

    def line_of(self, usage: Usage) -> int | None:
        """The index of the bundle line ``usage`` draws on (R24), or ``None``."""
        return self.terms.line_of(usage.appointment.service_id)

    def line_total_units(self, line: int) -> int:
        adjusted = self.line_adjustments[line] if line < len(self.line_adjustments) else 0
        return self.terms.lines[line].allowance.units + adjusted

    def line_remaining_units(self, line: int) -> int:
        used = sum(u.consumed for u in self.usages if self.line_of(u) == line)
        return self.line_total_units(line) - used

    def line_remaining(self, line: int) -> Amount:
        """What remains of bundle line ``line`` (R24)."""
        return self.amount(self.line_remaining_units(line))

    def line_total(self, line: int) -> Amount:
        """Bundle line ``line``'s allowance plus its adjustments: the N of "Massage n of N"."""
        return self.amount(self.line_total_units(line))

    @property
    def ever_shared_with(self) -> tuple[str, ...]:
        """The clients the pack is or was shared with (R20): a store indexes it by them, so
        the packs a client drew on are found after they are taken off (R23)."""
        return (*self.shared_with, *self.formerly_shared_with)

    @property
    def clients(self) -> tuple[str, ...]:
        """Every client who may draw on the pack: the owner first, then those it is shared
        with (R20)."""
        return (self.client_id, *self.shared_with)

    def serves(self, client_id: str) -> bool:
        """``client_id`` owns the pack or is listed on it (R4, R20)."""
        return client_id == self.client_id or client_id in self.shared_with

    @property
    def metric(self) -> Metric:
        return self.terms.metric

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def opened_on(self) -> date:
        """The local date the pack was opened, in the practice's time zone; for a migrated
        pack, the date it was opened in the other system (R19)."""
        if self.migrated is not None:
            return self.migrated.opened_on
        return self.opened_at.astimezone(self.zone).date()

    @property
    def total_units(self) -> int:
        return self.terms.allowance.units + self.adjustment_units

    @property
    def used_before_units(self) -> int:
        """What a migrated pack used in the other system, in units (R19); else 0."""
        return 0 if self.migrated is None else units(self.metric, self.migrated.used)

    @property
    def numbered_before(self) -> int:
        """Sessions a migrated pack numbered in the other system: the first here is
        ``numbered_before + 1`` (R19)."""
        found = self.migrated
        if found is None:
            return 0
        if found.numbered is not None:
            return found.numbered
        return self.used_before_units if self.metric is Metric.SESSIONS else 0

    @property
    def remaining_units(self) -> int:
        return self.total_units - self.used_before_units - self.consumed_units

    @property
    def next_tier(self) -> int:
        """The tier place the next line of a per-session pack is charged at: the lowest that no
        standing line holds, so the standing lines always pay tiers 1..n (R7a, R15); after the
        sessions a migrated pack numbered elsewhere (R19)."""
        taken = {u.invoice.tier for u in self.usages if u.invoice is not None}
        place = 1 + self.numbered_before
        while place in taken:
            place += 1
        return place

    def amount(self, count: int) -> Amount:
        """``count`` units as an amount of the pack's metric."""
        return amount(self.metric, count, self.terms.currency)

    @property
    def total(self) -> Amount:
        """The allowance plus adjustments: the N of "Session n of N" (R8)."""
        return self.amount(self.total_units)

    @property
    def remaining(self) -> Amount:
        return self.amount(self.remaining_units)

    @property
    def low_balance_units(self) -> int | None:
        """The low-balance threshold in units, or ``None`` (R12)."""
        threshold = self.terms.policies.low_balance_at
        return None if threshold is None else units(self.metric, threshold)

    @property
    def first_use(self) -> date | None:
        """The local date of the earliest active usage's appointment. A migrated pack used in
        the other system was first used there on its opening date at the earliest, so that
        date counts (R19)."""
        here = self.usages[0].appointment.local_date(self.zone) if self.usages else None
        if self.used_before_units > 0:
            assert self.migrated is not None
            return self.migrated.opened_on if here is None else min(here, self.migrated.opened_on)
        return here

    @property
    def expiry_date(self) -> date | None:
        """The first date on which the pack is no longer valid, or ``None`` (R5)."""
        if self.expiry_override is not None:
            return self._held(self.expiry_override, self.opened_on)
        return self.expiry_if_first_use(self.first_use)

    def expiry_if_first_use(self, first_use: date | None) -> date | None:
        """The expiry date the pack's rule gives when its first use falls on ``first_use``,
        moved by the holds (R22)."""
        rule = self.terms.expiry
        if isinstance(rule, ExpiresOn):
            return self._held(rule.date, self.opened_on)
        if isinstance(rule, ExpiresAfterOpening):
            return self._held(rule.period.after(self.opened_on), self.opened_on)
        if isinstance(rule, ExpiresAfterFirstUse) and first_use is not None:
            return self._held(rule.period.after(first_use), first_use)
        return None

    def _held(self, day: date, since: date) -> date:
        """``day`` moved later by the days of the counted holds that pause the validity running
        from ``since``: the days of each from ``since`` on, if it starts before the expiry as
        moved by the holds before it (R22)."""
        for hold in self.holds:
            if not hold.counted or hold.until <= since:
                continue
            if hold.start >= day:
                break
            day += timedelta(days=(hold.until - max(hold.start, since)).days)
        return day

    def hold_on(self, day: date) -> Hold | None:
        """The hold that covers local date ``day``, or ``None`` (R22)."""
        return next((h for h in self.holds if h.covers(day)), None)

    def expiry_if_used_on(self, day: date) -> date | None:
        """The expiry date the pack would have if an appointment on local date ``day`` were
        recorded: ``day`` becomes the first use when it comes before the present one."""
        if self.expiry_override is not None:
            return self._held(self.expiry_override, self.opened_on)
        first = self.first_use
        return self.expiry_if_first_use(day if first is None or day < first else first)

    @property
    def pending_expiry(self) -> date | None:
        """The expiry date a sweep has yet to record, or ``None``: the pack's expiry date while
        it is not closed or voided, has something left and that expiry is not recorded (R12).

        The one definition of "due to expire": :meth:`due_to_expire` compares it with a day,
        and the SQL stores keep it in a column their expiry query compares the same way."""
        expiry = self.expiry_date
        if self.ended or self.remaining_units <= 0 or expiry == self.expired_on:
            return None
        return expiry

    @property
    def reminder_due(self) -> date | None:
        """The day the sweep is due to remind of the :attr:`pending_expiry`, or ``None``: the
        policy's ``remind_days_before_expiry`` before it, unless reminded for it already (R25)."""
        expiry, days = self.pending_expiry, self.terms.policies.remind_days_before_expiry
        if expiry is None or days is None or expiry in self.reminded_for:
            return None
        return expiry - timedelta(days=days)

    @property
    def next_sweep(self) -> date | None:
        """The first day a sweep has something to record for the pack, a reminder (R25) or an
        expiry (R12), or ``None``. The SQL stores keep it in their ``pending_expiry`` column,
        which their sweep query compares with the sweep's day."""
        days = [d for d in (self.reminder_due, self.pending_expiry) if d is not None]
        return min(days, default=None)

    def due_for_sweep(self, as_of: date) -> bool:
        """A sweep as of ``as_of`` has something to record: :attr:`next_sweep` is on or
        before ``as_of``."""
        due = self.next_sweep
        return due is not None and due <= as_of

    def due_to_expire(self, as_of: date) -> bool:
        """An expiry sweep as of ``as_of`` must record this pack's expiry: its
        :attr:`pending_expiry` is on or before ``as_of``."""
        pending = self.pending_expiry
        return pending is not None and pending <= as_of

    def status(self, as_of: datetime) -> PackStatus:
        """The pack's status at the instant ``as_of`` (R11)."""
        require_aware("as_of", as_of)
        if self.voided_at is not None:
            return PackStatus.VOIDED
        if self.closed_at is not None:
            return PackStatus.CLOSED
        if self.remaining_units <= 0:
            return PackStatus.EXHAUSTED
        expiry = self.expiry_date
        if expiry is not None and as_of.astimezone(self.zone).date() >= expiry:
            return PackStatus.EXPIRED
        return PackStatus.OPEN

    @property
    def ended(self) -> bool:
        """Closed or voided: no usage can ever be recorded again."""
        return self.closed_at is not None or self.voided_at is not None

    def usage(self, appointment_id: str) -> Usage | None:
        """The active usage of ``appointment_id``, or ``None``."""
        for usage in self.usages:
            if usage.appointment.id == appointment_id:
                return usage
        return None

    def number(self, appointment_id: str) -> int:
        """The session number of an active usage: 1..k by start, ties by order recorded (R8);
        in a bundle, among the usages of its line (R24)."""
        usages = self.usages
        if self.is_bundle:
            found = self.usage(appointment_id)
            line = None if found is None else self.line_of(found)
            usages = tuple(u for u in usages if self.line_of(u) == line)
        for index, usage in enumerate(usages, start=1 + self.numbered_before):
            if usage.appointment.id == appointment_id:
                return index
        raise InvalidValueError(
            "appointment_id", appointment_id, f"has no active usage on pack {self.pack_id}"
        )

    def remaining_after(self, number: int) -> Amount:
        """What remains after sessions 1..number, in start order (R8's label for hours, money)."""
        here = self.usages[: number - self.numbered_before]
        consumed = self.used_before_units + sum(u.consumed for u in here)
        return self.amount(self.total_units - consumed)

    def label(self, appointment_id: str) -> str:
        """``Session 3 of 10``, or ``Session 3, 2h left`` for hours and money packs (R8); in a
        bundle the line's name and numbers, ``Massage 1 of 2`` (R24)."""
        number = self.number(appointment_id)
        if self.is_bundle:
            return self._line_label(appointment_id, number)
        if self.metric is Metric.SESSIONS:
            return f"Session {number} of {self.total_units}"
        return f"Session {number}, {format_amount(self.remaining_after(number))} left"

    def _line_label(self, appointment_id: str, number: int) -> str:
        usage = self.usage(appointment_id)
        assert usage is not None
        line = self.line_of(usage)
        assert line is not None
        name = self.terms.lines[line].name
        if self.metric is Metric.SESSIONS:
            return f"{name} {number} of {self.line_total_units(line)}"
        here = [u for u in self.usages if self.line_of(u) == line][:number]
        left = self.line_total_units(line) - sum(u.consumed for u in here)
        return f"{name} {number}, {format_amount(self.amount(left))} left"


def _low_on_arrival(entry: Opened) -> tuple[int, ...]:
    """A migrated pack that arrives at or under its low-balance threshold has reached it, once,
    at its opening (R12b): the total it fired at."""
    threshold, moved = entry.terms.policies.low_balance_at, entry.migrated
    if threshold is None or moved is None:
        return ()
    metric, total = entry.terms.metric, entry.terms.allowance.units
    left = total - units(metric, moved.used)
    return (total,) if 0 < left <= units(metric, threshold) else ()


def _replace_usage(state: PackState, appointment_id: str, **changes: Any) -> tuple[Usage, ...]:
    return tuple(
        attrs.evolve(u, **changes) if u.appointment.id == appointment_id else u
        for u in state.usages
    )


def _without(state: PackState, appointment_id: str) -> tuple[Usage, ...]:
    return tuple(u for u in state.usages if u.appointment.id != appointment_id)


def _insert(usages: tuple[Usage, ...], usage: Usage) -> tuple[Usage, ...]:
    at = bisect_left(usages, usage.key, key=_usage_key)
    return (*usages[:at], usage, *usages[at:])


def _active(state: PackState, appointment_id: str) -> Usage:
    found = state.usage(appointment_id)
    if found is None:
        raise InvalidValueError(
            "entry.appointment_id", appointment_id, f"has no active usage on pack {state.pack_id}"
        )
    return found


def apply(state: PackState | None, entry: Entry) -> PackState:
    """Fold one entry into ``state``; ``state`` is ``None`` only for the :class:`Opened` entry."""
    if state is None:
        if not isinstance(entry, Opened) or entry.sequence != 1:
            raise InvalidValueError("entry", entry, "a ledger starts with Opened at sequence 1")
        return PackState(
            pack_id=entry.pack_id,
            client_id=entry.client_id,
            terms=entry.terms,
            timezone=entry.timezone,
            opened_at=entry.recorded_at,
            template_id=entry.template_id,
            template_version=entry.template_version,
            charged_on_open=entry.charged_on_open,
            price_charged=(
                entry.charged_on_open
                or entry.migrated is not None
                or entry.transferred_from is not None
            ),
            transferred_from=entry.transferred_from,
            shared_with=entry.shared_with,
            low_balance_totals=_low_on_arrival(entry),
            migrated=entry.migrated,
            expiry_override=None if entry.migrated is None else entry.migrated.expires_on,
            version=1,
        )
    if entry.pack_id != state.pack_id or entry.sequence != state.version + 1:
        raise InvalidValueError(
            "entry.sequence",
            (entry.pack_id, entry.sequence),
            f"does not follow {state.pack_id} at version {state.version}",
        )
    folded = _fold(state, entry)
    # The fold of a usage sets the version itself: one evolve per entry on the hot path.
    return (
        folded if folded.version == entry.sequence else attrs.evolve(folded, version=entry.sequence)
    )


def _with_lines(state: PackState, usages: tuple[Usage, ...]) -> PackState:
    """``state`` with ``usages`` and the lines still standing among them: a release of an
    invoiced usage un-counts its line and frees its tier place (R7a). Once charged, a per-pack
    price stays charged."""
    lines = [u.invoice for u in usages if u.invoice is not None]
    return attrs.evolve(
        state,
        usages=usages,
        lines_issued=len(lines),
        price_charged=state.price_charged or any(i.includes_pack_price for i in lines),
    )


def _placed(state: PackState, entry: Invoiced) -> Invoiced:
    """``entry`` with its tier place, for a ledger written before places were recorded."""
    if entry.tier is not None or not isinstance(state.terms.pricing, PerSession):
        return entry
    return attrs.evolve(entry, tier=state.next_tier)


def _balance_occurrences(before: PackState, after: PackState) -> PackState:
    """Record the balance occurrence a usage or an adjustment reaches, once per total (R12b):
    exhausted when the balance reaches zero, else low when it falls to the threshold."""
    was, now, total = before.remaining_units, after.remaining_units, after.total_units
    if was > 0 >= now:
        if total in after.exhausted_totals:
            return after
        return attrs.evolve(after, exhausted_totals=(*after.exhausted_totals, total))
    limit = after.low_balance_units
    if after.is_bundle:  # a bundle's balance is low line by line (R24)
        return after
    if limit is not None and was > limit >= now and total not in after.low_balance_totals:
        return attrs.evolve(after, low_balance_totals=(*after.low_balance_totals, total))
    return after


def _line_occurrences(before: PackState, after: PackState, line: int | None) -> PackState:
    """Record the occurrence a usage or an adjustment of bundle line ``line`` reaches, once per
    line and line total (R24, R12b): the line exhausted, else low."""
    if line is None:
        return after
    was, now = before.line_remaining_units(line), after.line_remaining_units(line)
    key = (line, after.line_total_units(line))
    if was > 0 >= now:
        if key in after.lines_exhausted:
            return after
        return attrs.evolve(after, lines_exhausted=(*after.lines_exhausted, key))
    limit = after.low_balance_units
    if limit is not None and was > limit >= now > 0 and key not in after.lines_low:
        return attrs.evolve(after, lines_low=(*after.lines_low, key))
    return after


def _fold(state: PackState, entry: Entry) -> PackState:
    folded = _fold_usage(state, entry)
    if folded is None:
        folded = _fold_pack(state, entry)
    return folded


def _fold_usage(state: PackState, entry: Entry) -> PackState | None:
    metric = state.metric
    match entry:
        case Used():
            usage = Usage(
                appointment=entry.appointment,
                order=entry.sequence,
                consumed=units(metric, entry.covered),
                shortfall=units(metric, entry.shortfall),
            )
            after = attrs.evolve(
                state,
                usages=_insert(state.usages, usage),
                consumed_units=state.consumed_units + usage.consumed,
                version=entry.sequence,
            )
            lined = _line_occurrences(state, after, after.line_of(usage))
            return _balance_occurrences(state, lined)
        case Released():
            gone = _active(state, entry.appointment_id)
            freed = attrs.evolve(state, consumed_units=state.consumed_units - gone.consumed)
            return _with_lines(freed, _without(state, entry.appointment_id))
        case Rescheduled():
            moved = _active(state, entry.appointment_id)
            usage = attrs.evolve(
                moved, appointment=attrs.evolve(moved.appointment, start=entry.start)
            )
            return attrs.evolve(state, usages=_insert(_without(state, entry.appointment_id), usage))
        case Marked():
            _active(state, entry.appointment_id)
            return attrs.evolve(
                state, usages=_replace_usage(state, entry.appointment_id, mark=entry.mark)
            )
        case Invoiced():
            _active(state, entry.appointment_id)
            placed = _placed(state, entry)
            return _with_lines(state, _replace_usage(state, entry.appointment_id, invoice=placed))
    return None


def _fold_pack(state: PackState, entry: Entry) -> PackState:
    match entry:
        case Adjusted():
            delta = units(state.metric, entry.amount)
            after = attrs.evolve(state, adjustment_units=state.adjustment_units + delta)
            line = _line_named(state, entry.line)
            if line is not None:
                by_line = list(state.line_adjustments or (0,) * len(state.terms.lines))
                by_line[line] += delta
                after = _line_occurrences(
                    state, attrs.evolve(after, line_adjustments=tuple(by_line)), line
                )
            return _balance_occurrences(state, after)
        case Extended():
            return attrs.evolve(state, expiry_override=entry.until, holds=_uncounted(state))
        case Expired():
            # The recorded expiry stands: a later release of the first use must not move it
            # and revive the pack (R12: once per expiry). Only an extension moves it again.
            return attrs.evolve(
                state,
                expired_on=entry.expiry_date,
                expiry_override=entry.expiry_date,
                holds=_uncounted(state),
            )
        case Held() | Resumed():
            return _fold_hold(state, entry)
        case Reminded():
            return attrs.evolve(state, reminded_for=(*state.reminded_for, entry.expiry_date))
        case Shared() | Unshared():
            return _fold_sharing(state, entry)
        case Closed():
            return attrs.evolve(
                state, closed_at=entry.recorded_at, transferred_to=entry.transferred_to
            )
        case Voided():
            return attrs.evolve(state, voided_at=entry.recorded_at)
    raise InvalidValueError("entry", entry, "is not a ledger entry that follows Opened")


def _uncounted(state: PackState) -> tuple[Hold, ...]:
    """The holds, none counted any more: a date set by an extension or a recorded expiry."""
    return tuple(attrs.evolve(h, counted=False) for h in state.holds)


def _fold_hold(state: PackState, entry: Held | Resumed) -> PackState:
    if isinstance(entry, Held):
        hold = Hold(entry.start, entry.until, entry.reason)
        return attrs.evolve(state, holds=_by_start((*state.holds, hold)))
    ended = next((h for h in state.holds if h.start == entry.start), None)
    if ended is None:
        raise InvalidValueError(
            "entry.start", entry.start, f"no hold of pack {state.pack_id} starts then"
        )
    others = tuple(h for h in state.holds if h is not ended)
    kept = attrs.evolve(ended, until=entry.on)
    return attrs.evolve(state, holds=_by_start((*others, kept)) if kept.days > 0 else others)


def _line_named(state: PackState, name: str | None) -> int | None:
    if name is None:
        return None
    found = state.terms.line_named(name)
    if found is None:
        raise InvalidValueError("entry.line", name, f"is not a line of pack {state.pack_id}")
    return found


def _fold_sharing(state: PackState, entry: Shared | Unshared) -> PackState:
    listed = entry.client_id in state.shared_with
    if isinstance(entry, Shared):
        if listed or entry.client_id == state.client_id:
            raise InvalidValueError(
                "entry.client_id", entry.client_id, f"already draws on pack {state.pack_id}"
            )
        former = tuple(c for c in state.formerly_shared_with if c != entry.client_id)
        return attrs.evolve(
            state,
            shared_with=(*state.shared_with, entry.client_id),
            formerly_shared_with=former,
        )
    if not listed:
        raise InvalidValueError(
            "entry.client_id", entry.client_id, f"is not listed on pack {state.pack_id}"
        )
    kept = tuple(c for c in state.shared_with if c != entry.client_id)
    former = (*state.formerly_shared_with, entry.client_id)
    return attrs.evolve(state, shared_with=kept, formerly_shared_with=former)


def _by_start(holds: Iterable[Hold]) -> tuple[Hold, ...]:
    return tuple(sorted(holds, key=lambda h: h.start))


def replay_as_of(entries: Iterable[Entry], moment: datetime) -> PackState | None:
    """The state the ledger gave at the instant ``moment``, from the entries recorded before it
    (R23), as reports cut (:func:`sessionpacks.reports.report`'s ``as_of``), or ``None`` if the
    pack was not opened by then. Entries are taken in order until the first one recorded at or
    after ``moment``; an entry recorded at an instant before an earlier entry's (a clock set
    back) counts from that earlier instant, so what was known at any instant is a prefix of the
    ledger."""
    cut = instant(require_aware("as_of", moment))
    state: PackState | None = None
    latest: datetime | None = None
    for entry in entries:
        recorded = instant(entry.recorded_at)
        latest = recorded if latest is None or recorded > latest else latest
        if latest >= cut:
            break
        state = apply(state, entry)
    return state


def replay(entries: Iterable[Entry]) -> PackState:
    """The state of a pack from its whole ledger."""
    state = reduce(apply, entries, None)
    if state is None:
        raise InvalidValueError("entries", [], "a ledger has at least its Opened entry")
    return state
