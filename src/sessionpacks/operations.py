"""Pure decisions on a pack: each takes a state and returns a :class:`Change` or refuses.

A :class:`Change` holds the new ledger entries, the events they cause and the state after them.
An operation that has nothing to do (re-recording the same usage, R6; sweeping a pack already
expired, R12) returns a change with no entries, and a store writes nothing for it. A refusal
raises :class:`~sessionpacks.errors.RefusedError` before anything is built (R17), and an
argument of the wrong type or beyond the limits of R18 raises
:class:`~sessionpacks.errors.InvalidValueError` naming it, never a foreign exception.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import attrs

from sessionpacks import events as ev
from sessionpacks._limits import INT32_MAX, INT64_MAX, check_count, check_day, check_id, check_text
from sessionpacks.errors import InvalidValueError, RefusedError, Rule
from sessionpacks.ledger import (
    Adjusted,
    Closed,
    Entry,
    Expired,
    Extended,
    Held,
    Hold,
    Invoiced,
    Mark,
    Marked,
    Migration,
    Opened,
    PackState,
    Released,
    Reminded,
    Rescheduled,
    Resumed,
    Shared,
    Unshared,
    Usage,
    Used,
    Voided,
    apply,
)
from sessionpacks.model import (
    Allowance,
    Amount,
    Appointment,
    ExpiresOn,
    Metric,
    Money,
    PackTerms,
    PerPack,
    PerSession,
    Policies,
    Practice,
    Tier,
    amount,
    format_amount,
    instant,
    require_aware,
    units,
)
from sessionpacks.pricing import InvoiceLine, figures, invoice_line

__all__ = [
    "AppointmentStatus",
    "Change",
    "adjust",
    "cancel",
    "check_shared_with",
    "close",
    "differing_fact",
    "draws_on",
    "end_hold",
    "expire",
    "extend",
    "hold",
    "issue_invoice",
    "mark",
    "may_draw",
    "move",
    "open_and_use",
    "open_pack",
    "record",
    "release",
    "reschedule",
    "share",
    "transfer",
    "unshare",
    "unusable_because",
    "use",
    "void",
]

MAX_SHARED_WITH = 50
"""The most clients a pack is shared with beside its owner (R20)."""


@attrs.frozen
class Change:
    """What an operation decided: entries to append to one pack, and the events they cause."""

    before: PackState | None
    after: PackState
    entries: tuple[Entry, ...] = ()
    events: tuple[ev.Event, ...] = ()

    @property
    def pack_id(self) -> str:
        return self.after.pack_id

    @property
    def expected_version(self) -> int:
        """The version the change was decided on: 0 for a new pack."""
        return 0 if self.before is None else self.before.version

    def then(self, following: Change) -> Change:
        """This change and then ``following``, decided on this one's ``after``, as one change
        to the pack: written together or not at all (opening a pack and using it, using and
        marking, using and invoicing)."""
        if not isinstance(following, Change):
            raise InvalidValueError("following", following, "must be a Change")
        start = following.before
        if start is None or (start.pack_id, start.version) != (self.pack_id, self.after.version):
            raise InvalidValueError(
                "following", following, f"was not decided on this change's state of {self.pack_id}"
            )
        return Change(
            self.before,
            following.after,
            self.entries + following.entries,
            self.events + following.events,
        )


class _Builder:
    """Appends entries to a state one at a time, naming each event after its entry."""

    def __init__(self, state: PackState | None, at: datetime) -> None:
        self.before = state
        self.state = state
        self.at = require_aware("recorded_at", at)
        self.entries: list[Entry] = []
        self.events: list[ev.Event] = []

    def entry(self, kind: type[Any], **fields: Any) -> PackState:
        sequence = 1 if self.state is None else self.state.version + 1
        pack_id = fields.pop("pack_id", None) or (self.state.pack_id if self.state else "")
        made = kind(pack_id=pack_id, sequence=sequence, recorded_at=self.at, **fields)
        self.entries.append(made)
        self.state = apply(self.state, made)
        return self.state

    def event(self, kind: type[Any], **fields: Any) -> None:
        assert self.state is not None
        event_id = f"{self.state.pack_id}#{self.state.version}.{len(self.events) + 1}"
        self.events.append(
            kind(
                event_id=event_id,
                pack_id=self.state.pack_id,
                client_id=self.state.client_id,
                occurred_at=self.at,
                **fields,
            )
        )

    def balance_events(self, before: PackState) -> None:
        """``PackExhausted`` or ``LowBalance`` when the last entry's fold recorded a new
        occurrence: once per pack and total (R12, R12b), and first, for a bundle, the line's
        ``LineExhausted`` or ``LowBalance`` (R24). The fold decides, so a replay agrees."""
        after = self.state
        assert after is not None
        self._line_events(before, after)
        if len(after.exhausted_totals) > len(before.exhausted_totals):
            self.event(ev.PackExhausted, total=after.total)
        elif len(after.low_balance_totals) > len(before.low_balance_totals):
            self.event(
                ev.LowBalance,
                remaining=after.remaining,
                total=after.total,
                threshold=after.terms.policies.low_balance_at,
            )

    def _line_events(self, before: PackState, after: PackState) -> None:
        for line, total in after.lines_exhausted[len(before.lines_exhausted) :]:
            name = after.terms.lines[line].name
            self.event(ev.LineExhausted, line=name, total=after.amount(total))
        for line, total in after.lines_low[len(before.lines_low) :]:
            self.event(
                ev.LowBalance,
                remaining=after.line_remaining(line),
                total=after.amount(total),
                threshold=after.terms.policies.low_balance_at,
                line=after.terms.lines[line].name,
            )

    def release(self, usage: Usage, reason: str) -> PackState:
        """Release ``usage``; the event carries its issued invoice line, if any (R7, R7a)."""
        line = usage.invoice
        appointment_id = usage.appointment.id
        after = self.entry(Released, appointment_id=appointment_id, reason=reason)
        self.event(
            ev.UsageReleased,
            appointment_id=appointment_id,
            remaining=after.remaining,
            reason=reason,
            invoice_label=None if line is None else line.label,
            invoice_amount=None if line is None else line.amount,
            credit=None if line is None else _credit(self.state, line),
        )
        return after

    def done(self) -> Change:
        assert self.state is not None
        return Change(self.before, self.state, tuple(self.entries), tuple(self.events))


def _credit(state: PackState | None, line: Invoiced) -> Money:
    """What the host credits for a released line (R7a): a session's price is refunded with
    the session; a pack's price is not, as the pack and its balance remain."""
    assert state is not None
    if isinstance(state.terms.pricing, PerSession):
        return line.amount
    return Money.zero(line.amount.currency)


def _unchanged(state: PackState) -> Change:
    return Change(state, state)


# Arguments (R17, R18): each entry point checks what it is given before deciding anything ------


def _state(value: object) -> PackState:
    if not isinstance(value, PackState):
        raise InvalidValueError("state", value, "must be a PackState")
    return value


def _appointment(field: str, value: object) -> Appointment:
    if not isinstance(value, Appointment):
        raise InvalidValueError(field, value, "must be an Appointment")
    return value


def _flag(field: str, value: object) -> bool:
    if type(value) is not bool:
        raise InvalidValueError(field, value, "must be True or False")
    return value


def _reason(value: object, *, required: bool = False) -> str:
    """A reason: text of at most 1,000 characters without NUL or lone surrogates (R18);
    not blank where the rule needs one (R5, R9)."""
    return check_text("reason", value, required=required)


# Opening -------------------------------------------------------------------------------------


def open_pack(
    pack_id: str,
    client_id: str,
    terms: PackTerms,
    practice: Practice,
    at: datetime,
    *,
    template_id: str | None = None,
    template_version: int | None = None,
    charged_on_open: bool = False,
    migrated: Migration | None = None,
    shared_with: tuple[str, ...] | list[str] = (),
) -> Change:
    """Open a pack with ``terms`` for ``client_id`` (R2); ``migrated``: as brought from another
    system, with what it used there (R19); ``shared_with``: other clients who may draw on it,
    its owner being ``client_id`` (R20)."""
    check_id("pack_id", pack_id)
    check_id("client_id", client_id)
    shared_with = check_shared_with(client_id, shared_with)
    if not isinstance(terms, PackTerms):
        raise InvalidValueError("terms", terms, "must be PackTerms")
    if not isinstance(practice, Practice):
        raise InvalidValueError("practice", practice, "must be a Practice")
    if template_id is not None:
        check_id("template_id", template_id)
    if template_version is not None:
        check_count("template_version", template_version, minimum=1, maximum=INT32_MAX)
    _flag("charged_on_open", charged_on_open)
    migrated = _check_migration(migrated, terms, practice, at)
    build = _Builder(None, at)
    build.entry(
        Opened,
        pack_id=pack_id,
        client_id=client_id,
        terms=terms,
        timezone=practice.timezone,
        template_id=template_id,
        template_version=template_version,
        charged_on_open=charged_on_open,
        migrated=migrated,
        shared_with=shared_with,
    )
    build.event(
        ev.PackOpened,
        name=terms.name,
        template_id=template_id,
        migrated=migrated is not None,
        shared_with=shared_with,
    )
    opened = build.state
    assert opened is not None
    if opened.low_balance_totals:  # a migrated pack opened at or under its threshold (R12b)
        build.event(
            ev.LowBalance,
            remaining=opened.remaining,
            total=opened.total,
            threshold=opened.terms.policies.low_balance_at,
        )
    return build.done()


def check_shared_with(owner: str, value: object) -> tuple[str, ...]:
    """``value`` as the clients a pack of ``owner`` is shared with (R20): client ids other
    than the owner's, each once, at most :data:`MAX_SHARED_WITH`; else
    :class:`~sessionpacks.errors.InvalidValueError` naming ``shared_with``."""
    if isinstance(value, str | bytes) or not isinstance(value, tuple | list):
        raise InvalidValueError("shared_with", value, "must be a tuple or list of client ids")
    if len(value) > MAX_SHARED_WITH:
        raise InvalidValueError(
            "shared_with", value, f"lists {len(value)} clients, more than {MAX_SHARED_WITH}"
        )
    found = tuple(check_id("shared_with", client) for client in value)
    if owner in found:
        raise InvalidValueError("shared_with", owner, "is the pack's owner")
    if len(set(found)) != len(found):
        twice = next(c for c in found if found.count(c) > 1)
        raise InvalidValueError("shared_with", twice, "is listed twice")
    return found


def _check_migration(
    migrated: object, terms: PackTerms, practice: Practice, at: datetime
) -> Migration | None:
    """R19: a migration's use is an amount of the pack's own metric (a plain 0: none), less
    than its allowance; it was opened there no later than today here, expires after that, and
    a sessions pack numbered no more sessions there than it holds. The migration, its use in
    the pack's metric."""
    if migrated is None:
        return None
    if not isinstance(migrated, Migration):
        raise InvalidValueError("migrated", migrated, "must be a ledger.Migration or None")
    if terms.lines:
        # What a bundle used elsewhere would be line by line: not modelled yet (R19, R24).
        raise InvalidValueError(
            "migrated",
            migrated,
            "a bundle cannot be opened as migrated: open it with the lines left",
        )
    metric = terms.metric
    if type(migrated.used) is int and migrated.used == 0:
        migrated = attrs.evolve(migrated, used=amount(metric, 0, terms.currency))
    used = migrated.used
    if not (
        (metric is Metric.SESSIONS and type(used) is int)
        or (metric is Metric.HOURS and isinstance(used, timedelta))
        or (metric is Metric.MONEY and isinstance(used, Money) and used.currency == terms.currency)
    ):
        raise InvalidValueError(
            "migrated.used", used, f"must be an amount of the pack's metric ({terms.metric.value})"
        )
    count, allowance = units(terms.metric, used), terms.allowance.units
    if not 0 <= count < allowance:
        raise InvalidValueError(
            "migrated.used",
            format_amount(used),
            f"must be from zero to less than the allowance "
            f"({format_amount(terms.allowance.amount)})",
        )
    _check_migration_dates(migrated, practice, at)
    numbered = migrated.numbered
    if metric is Metric.SESSIONS and numbered is not None and numbered > allowance:
        raise InvalidValueError(
            "migrated.numbered", numbered, f"is more than the pack's {allowance} sessions"
        )
    return migrated


def _check_migration_dates(migrated: Migration, practice: Practice, at: datetime) -> None:
    today = require_aware("recorded_at", at).astimezone(practice.zone).date()
    if migrated.opened_on > today:
        raise InvalidValueError(
            "migrated.opened_on", migrated.opened_on.isoformat(), f"is after today ({today})"
        )
    ends = migrated.expires_on
    if ends is not None and ends <= migrated.opened_on:
        raise InvalidValueError(
            "migrated.expires_on",
            ends.isoformat(),
            f"must be after opened_on ({migrated.opened_on})",
        )


# Using ---------------------------------------------------------------------------------------


def _needed(state: PackState, appointment: Appointment) -> int:
    if state.metric is Metric.SESSIONS:
        return 1
    if state.metric is Metric.HOURS:
        return units(Metric.HOURS, appointment.duration)
    return appointment.price.minor


def _past_expiry(state: PackState) -> Usage | None:
    """The first active usage on or after the expiry date, if any (R5)."""
    expiry = state.expiry_date
    if expiry is None:
        return None
    for usage in reversed(state.usages):
        if usage.appointment.local_date(state.zone) >= expiry:
            return usage
    return None


def _facts(appointment: Appointment) -> tuple[tuple[str, object, str], ...]:
    """The facts of an appointment R6a compares, in order: (field, value compared, shown)."""
    return (
        ("client_id", appointment.client_id, appointment.client_id),
        ("service_id", appointment.service_id, appointment.service_id),
        # As instants: the same moment written with another offset is the same fact.
        ("start", instant(appointment.start), appointment.start.isoformat()),
        ("duration", appointment.duration, str(appointment.duration)),
        ("price", appointment.price.amount, str(appointment.price)),
        ("price.currency", appointment.price.currency, appointment.price.currency),
    )


def differing_fact(recorded: Appointment, asked: Appointment) -> RefusedError | None:
    """The refusal of recording ``asked`` where ``recorded`` is the active usage's appointment
    of the same id: the first fact that differs, with both values (R6a); ``None`` when every
    fact is the same, and recording it again is the same request repeated (R6)."""
    _appointment("recorded", recorded)
    _appointment("appointment", asked)
    if recorded.id != asked.id:
        raise InvalidValueError("appointment.id", asked.id, f"is not {recorded.id}")
    values = {
        "start": asked.start.isoformat(),
        "duration": asked.duration,
        "price": asked.price,
    }
    for (field, was, was_shown), (_, now, now_shown) in zip(
        _facts(recorded), _facts(asked), strict=True
    ):
        if was != now:
            return RefusedError(
                Rule.R6a,
                f"appointment.{field}",
                values.get(field, now),
                f"appointment {asked.id} is recorded with {field} {was_shown}, not "
                f"{now_shown}; a new start is a reschedule",
            )
    return None


def _ended(state: PackState, appointment: Appointment | None = None) -> RefusedError | None:
    """R10: a closed or voided pack covers nothing more, and its figures never change again."""
    if state.voided_at is None and state.closed_at is None:
        return None
    word = "voided" if state.voided_at is not None else "closed"
    return RefusedError(Rule.R10, "pack_id", state.pack_id, f"the pack is {word}")


def _other_client(state: PackState, appointment: Appointment) -> RefusedError | None:
    """R4, R20: a pack covers only the appointments of its owner and the clients it is
    shared with."""
    if state.serves(appointment.client_id):
        return None
    shared = f", shared with {', '.join(state.shared_with)}" if state.shared_with else ""
    return RefusedError(
        Rule.R4,
        "appointment.client_id",
        appointment.client_id,
        f"pack {state.pack_id} belongs to client {state.client_id}{shared}",
    )


def _other_service(state: PackState, appointment: Appointment) -> RefusedError | None:
    """R4: only the services the pack lists (no list: any service)."""
    terms = state.terms
    if terms.covers_service(appointment.service_id):
        return None
    services = terms.eligible_services.union(*(line.services for line in terms.lines))
    return RefusedError(
        Rule.R4,
        "appointment.service_id",
        appointment.service_id,
        f"pack {state.pack_id} covers only {sorted(services)}",
    )


def _other_currency(state: PackState, appointment: Appointment) -> RefusedError | None:
    """R4: money amounts in the pack's currency only."""
    if appointment.price.currency == state.terms.currency:
        return None
    return RefusedError(
        Rule.R4,
        "appointment.price.currency",
        appointment.price.currency,
        f"pack {state.pack_id} is in {state.terms.currency}",
    )


def _outside_validity(state: PackState, appointment: Appointment) -> RefusedError | None:
    """R5 for one more appointment: on or after the expiry it would have, or, as the first use,
    making the pack expire before a usage already recorded."""
    local = appointment.local_date(state.zone)
    expiry = state.expiry_if_used_on(local)
    if expiry is not None and local >= expiry:
        return RefusedError(
            Rule.R5,
            "appointment.start",
            appointment.start.isoformat(),
            f"pack {state.pack_id} expires on {expiry.isoformat()}; the local date "
            f"{local.isoformat()} is not before it",
        )
    latest = state.usages[-1] if state.usages else None
    if (
        expiry is not None
        and latest is not None
        and latest.appointment.local_date(state.zone) >= expiry
    ):
        return RefusedError(
            Rule.R5,
            "appointment.start",
            appointment.start.isoformat(),
            f"as the first use it would make pack {state.pack_id} expire on "
            f"{expiry.isoformat()}, before appointment {latest.appointment.id}",
        )
    return None


def _inside_hold(state: PackState, appointment: Appointment) -> RefusedError | None:
    """R22: no usage dated inside a hold."""
    local = appointment.local_date(state.zone)
    hold = state.hold_on(local)
    if hold is None:
        return None
    return _held_refusal(state, hold, "appointment.start", appointment.start.isoformat())


def _held_refusal(state: PackState, hold: Hold, field: str, value: str) -> RefusedError:
    why = f" ({hold.reason})" if hold.reason else ""
    return RefusedError(
        Rule.R22,
        field,
        value,
        f"pack {state.pack_id} is on hold from {hold.start.isoformat()} until "
        f"{hold.until.isoformat()}{why}",
    )


def _nothing_left(state: PackState, appointment: Appointment) -> RefusedError | None:
    """R3: a pack with nothing left refuses (a short ``hours`` or ``money`` pack covers part);
    in a bundle, the line of the appointment's service with nothing left (R24)."""
    line = state.terms.line_of(appointment.service_id)
    if line is not None and state.line_remaining_units(line) <= 0:
        name = state.terms.lines[line].name
        return RefusedError(
            Rule.R24, "pack_id", state.pack_id, f"the bundle's line {name} has nothing left"
        )
    if state.remaining_units > 0:
        return None
    return RefusedError(Rule.R3, "pack_id", state.pack_id, "the pack has nothing left")


def _left_for(state: PackState, appointment: Appointment) -> int:
    """What the pack can cover of ``appointment``: what remains, of its line in a bundle."""
    line = state.terms.line_of(appointment.service_id)
    return state.remaining_units if line is None else state.line_remaining_units(line)


# The checks of unusable_because, in the order they are asked: the first refusal wins, so a
# closed pack says it is closed rather than that it has nothing left.
_USABILITY_CHECKS: tuple[Callable[[PackState, Appointment], RefusedError | None], ...] = (
    _ended,
    _other_client,
    _other_service,
    _other_currency,
    _inside_hold,
    _outside_validity,
    _nothing_left,
)


def unusable_because(state: PackState, appointment: Appointment) -> RefusedError | None:
    """Why ``state`` cannot cover ``appointment`` (R3, R4, R5, R10), or ``None`` if it can.

    Named checks are asked in this order, and the first refusal is the answer: the pack is
    closed or voided (R10); it is another client's (R4); it does not list the service (R4);
    the price is in another currency (R4); the date is inside a hold (R22); the date is
    outside its validity (R5); it has
    nothing left (R3). A new rule is a new check in ``_USABILITY_CHECKS``, placed before the
    checks whose refusal it should win over.
    """
    _state(state)
    _appointment("appointment", appointment)
    for check in _USABILITY_CHECKS:
        refusal = check(state, appointment)
        if refusal is not None:
            return refusal
    return None


def use(state: PackState, appointment: Appointment, at: datetime) -> Change:
    """Record ``appointment`` on the pack (R3 to R6). The same appointment again, with the same
    facts, writes nothing; with another fact it is refused (R6a)."""
    _state(state)
    _appointment("appointment", appointment)
    require_aware("recorded_at", at)
    return _use(state, appointment, at, usable=False)


def _use(state: PackState, appointment: Appointment, at: datetime, *, usable: bool) -> Change:
    """:func:`use` of checked arguments; ``usable``: :func:`unusable_because` has just found
    ``state`` usable for ``appointment``, so it is not asked twice."""
    recorded = state.usage(appointment.id)
    if recorded is not None:
        refusal = differing_fact(recorded.appointment, appointment)
        if refusal is not None:
            raise refusal
        return _unchanged(state)
    refusal = None if usable else unusable_because(state, appointment)
    if refusal is not None:
        raise refusal
    needed = _needed(state, appointment)
    covered = min(needed, _left_for(state, appointment))
    build = _Builder(state, at)
    after = build.entry(
        Used,
        appointment=appointment,
        covered=state.amount(covered),
        shortfall=state.amount(needed - covered),
    )
    build.event(
        ev.SessionUsed,
        appointment_id=appointment.id,
        number=after.number(appointment.id),
        covered=state.amount(covered),
        shortfall=state.amount(needed - covered),
        remaining=after.remaining,
    )
    build.balance_events(state)
    return build.done()


# Changing a usage ----------------------------------------------------------------------------


def _require_usage(state: PackState, appointment_id: str) -> Usage:
    check_id("appointment_id", appointment_id)
    usage = state.usage(appointment_id)
    if usage is None:
        raise RefusedError(
            Rule.R7,
            "appointment_id",
            appointment_id,
            f"has no active usage on pack {state.pack_id}",
        )
    return usage


def _require_live(state: PackState) -> None:
    refusal = _ended(state)
    if refusal is not None:
        raise refusal


def _live_usage(state: object, appointment_id: str, at: datetime) -> tuple[PackState, Usage]:
    """The checks every change to one usage starts with: the arguments, the usage, R10."""
    checked = _state(state)
    require_aware("recorded_at", at)
    usage = _require_usage(checked, appointment_id)
    _require_live(checked)
    return checked, usage


def release(state: PackState, appointment_id: str, at: datetime, reason: str = "") -> Change:
    """Release a usage: what it consumed is restored and later sessions renumber (R7, R8); an
    issued invoice line goes with it, on the event, for the host to credit (R7a)."""
    _reason(reason)
    state, usage = _live_usage(state, appointment_id, at)
    build = _Builder(state, at)
    build.release(usage, reason)
    return build.done()


def reschedule(state: PackState, appointment_id: str, start: datetime, at: datetime) -> Change:
    """Move a usage's appointment to ``start``, re-checked against the expiry (R5, R7)."""
    require_aware("start", start)
    state, usage = _live_usage(state, appointment_id, at)
    if instant(usage.appointment.start) == instant(start):
        return _unchanged(state)
    hold = state.hold_on(start.astimezone(state.zone).date())
    if hold is not None:
        raise _held_refusal(state, hold, "start", start.isoformat())
    client = usage.appointment.client_id
    if not state.serves(client) and instant(start) > instant(at):
        # R20: a client taken off the pack holds no appointment to come on it.
        raise RefusedError(
            Rule.R20,
            "start",
            start.isoformat(),
            f"client {client} no longer shares pack {state.pack_id}: move the appointment",
        )
    build = _Builder(state, at)
    after = build.entry(Rescheduled, appointment_id=appointment_id, start=start)
    if _past_expiry(after) is not None:
        raise RefusedError(
            Rule.R5,
            "start",
            start.isoformat(),
            f"pack {state.pack_id} is not valid on that date (expiry {after.expiry_date})",
        )
    build.event(ev.UsageRescheduled, appointment_id=appointment_id, start=start)
    return build.done()


def mark(state: PackState, appointment_id: str, why: Mark, at: datetime) -> Change:
    """Keep a usage consumed, marked late-cancelled or no-show (R7)."""
    if not isinstance(why, Mark):
        raise InvalidValueError("why", why, "must be Mark.LATE_CANCEL or Mark.NO_SHOW")
    state, usage = _live_usage(state, appointment_id, at)
    if usage.mark is why:
        return _unchanged(state)
    build = _Builder(state, at)
    build.entry(Marked, appointment_id=appointment_id, mark=why)
    build.event(ev.UsageMarked, appointment_id=appointment_id, mark=why)
    return build.done()


def cancel(
    state: PackState,
    appointment_id: str,
    at: datetime,
    *,
    late: bool | None = None,
    no_show: bool = False,
    cancelled_at: datetime | None = None,
) -> Change:
    """Cancel an appointment under the pack's policy (R7).

    ``late=None`` judges lateness from ``cancelled_at`` (default ``at``) and the notice window:
    a cancellation less than the notice before the start is late. A late cancellation or a
    no-show whose policy consumes marks the usage; anything else releases it.
    """
    if late is not None:
        _flag("late", late)
    _flag("no_show", no_show)
    if cancelled_at is not None:
        require_aware("cancelled_at", cancelled_at)
    state, usage = _live_usage(state, appointment_id, at)
    if usage.mark is not None:
        raise RefusedError(
            Rule.R7,
            "appointment_id",
            appointment_id,
            f"is already marked {usage.mark.value} on pack {state.pack_id}",
        )
    policies = state.terms.policies
    if late is None and not no_show:
        late = _late(policies, usage.appointment, at if cancelled_at is None else cancelled_at)
    kept = _kept(policies, late=bool(late), no_show=no_show)
    if kept is not None:
        return mark(state, appointment_id, kept, at)
    reason = "no-show" if no_show else ("late cancel" if late else "cancelled")
    return release(state, appointment_id, at, reason)


# The consume policy (R7): the one place that says whether an appointment that did not happen
# still draws on its pack. cancel, record and draws_on all ask it.


def _late(policies: Policies, appointment: Appointment, cancelled_at: datetime) -> bool:
    """A cancellation less than the notice window before the start is late."""
    return instant(appointment.start) - instant(cancelled_at) < policies.late_cancel_notice


def _kept(policies: Policies, *, late: bool, no_show: bool) -> Mark | None:
    """The mark of a usage the policy keeps consumed, or ``None``: it is given back."""
    if no_show:
        return Mark.NO_SHOW if policies.no_show_consumes else None
    return Mark.LATE_CANCEL if late and policies.late_cancel_consumes else None


class AppointmentStatus(enum.StrEnum):
    """What became of an appointment, as the host's records say, for :func:`record`."""

    BOOKED = "booked"
    CANCELLED = "cancelled"
    LATE_CANCEL = "late_cancel"
    NO_SHOW = "no_show"

    @classmethod
    def of(cls, value: object) -> AppointmentStatus:
        """The status ``value`` names: a member, or its value as a string (``"no_show"``)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value in cls._value2member_map_:
            return cls(value)
        raise InvalidValueError(
            "status", value, "must be an AppointmentStatus: booked, cancelled, late_cancel, no_show"
        )


_status = AppointmentStatus.of


_MARKS = {AppointmentStatus.LATE_CANCEL: Mark.LATE_CANCEL, AppointmentStatus.NO_SHOW: Mark.NO_SHOW}


def _kept_for(
    terms: PackTerms,
    appointment: Appointment,
    status: AppointmentStatus,
    cancelled_at: datetime | None,
) -> Mark | None:
    """The mark an appointment of ``status`` (not booked) keeps on a pack of ``terms``."""
    policies = terms.policies
    late = status is AppointmentStatus.LATE_CANCEL or (
        cancelled_at is not None and _late(policies, appointment, cancelled_at)
    )
    return _kept(policies, late=late, no_show=status is AppointmentStatus.NO_SHOW)


def _cancelled_at(status: AppointmentStatus, cancelled_at: object) -> datetime | None:
    if cancelled_at is None:
        return None
    if status is not AppointmentStatus.CANCELLED:
        raise InvalidValueError(
            "cancelled_at", cancelled_at, f"is for a cancellation, not {status.value}"
        )
    return require_aware("cancelled_at", cancelled_at)


def may_draw(status: AppointmentStatus, cancelled_at: datetime | None = None) -> bool:
    """Whether an appointment of ``status`` could draw on any pack (R7): all but a
    cancellation in good time, which is one without ``cancelled_at``. ``False`` means there
    is nothing to record, whatever the pack."""
    status = _status(status)
    when = _cancelled_at(status, cancelled_at)
    return status is not AppointmentStatus.CANCELLED or when is not None


def draws_on(
    terms: PackTerms,
    appointment: Appointment,
    status: AppointmentStatus,
    cancelled_at: datetime | None = None,
) -> bool:
    """Whether an appointment of ``status`` draws on a pack of ``terms`` (R7).

    Booked, always. Late-cancelled or not shown, when the policy keeps such a session. Cancelled,
    only when ``cancelled_at`` is given, is inside the notice window and the policy keeps a
    late cancellation; without ``cancelled_at`` a cancellation was made in good time.
    """
    if not isinstance(terms, PackTerms):
        raise InvalidValueError("terms", terms, "must be PackTerms")
    _appointment("appointment", appointment)
    status = _status(status)
    when = _cancelled_at(status, cancelled_at)
    if status is AppointmentStatus.BOOKED:
        return True
    return _kept_for(terms, appointment, status, when) is not None


def record(
    state: PackState,
    appointment: Appointment,
    status: AppointmentStatus,
    at: datetime,
    *,
    cancelled_at: datetime | None = None,
    usable: bool = False,
) -> Change:
    """Record on ``state`` an appointment whose ``status`` the host already knows, as one
    change (R3 to R7).

    Not on the pack yet: booked, it is used; otherwise it is used and marked when the policy
    keeps it (:func:`draws_on`), and nothing is written when it does not. Already on the pack:
    booked again is :func:`use` again (the same facts write nothing, R6, R6a); another status
    acts on its usage as :func:`cancel` does, and writes nothing when the usage is already
    marked so.

    ``usable=True`` says :func:`unusable_because` found this very ``state`` usable for
    ``appointment`` in the decision just made (resolution does, for the pack it chooses), so
    the check is not asked twice; anything else leaves it ``False``.
    """
    _state(state)
    _appointment("appointment", appointment)
    status = _status(status)
    when = _cancelled_at(status, cancelled_at)
    require_aware("recorded_at", at)
    _flag("usable", usable)
    if status is AppointmentStatus.BOOKED:
        return _use(state, appointment, at, usable=usable)
    usage = state.usage(appointment.id)
    if usage is not None:
        if usage.mark is not None and usage.mark is _MARKS.get(status):
            return _unchanged(state)
        return _cancel_as(state, appointment.id, status, at, when)
    kept = _kept_for(state.terms, appointment, status, when)
    if kept is None:
        return _unchanged(state)
    used = _use(state, appointment, at, usable=usable)
    return used.then(mark(used.after, appointment.id, kept, at))


def _cancel_as(
    state: PackState,
    appointment_id: str,
    status: AppointmentStatus,
    at: datetime,
    cancelled_at: datetime | None,
) -> Change:
    """:func:`cancel` as ``status`` says. A cancellation without its instant was made in good
    time; with it, lateness is judged from it."""
    if status is AppointmentStatus.NO_SHOW:
        return cancel(state, appointment_id, at, no_show=True)
    if status is AppointmentStatus.LATE_CANCEL:
        return cancel(state, appointment_id, at, late=True)
    late = None if cancelled_at is not None else False
    return cancel(state, appointment_id, at, late=late, cancelled_at=cancelled_at)


def open_and_use(
    pack_id: str,
    appointment: Appointment,
    terms: PackTerms,
    practice: Practice,
    at: datetime,
    *,
    template_id: str | None = None,
    template_version: int | None = None,
    status: AppointmentStatus = AppointmentStatus.BOOKED,
    cancelled_at: datetime | None = None,
) -> Change:
    """Open a pack for the appointment's client and :func:`record` the appointment on it, as
    one change to the new pack (R2, R3, R13): ``PackOpened``, then ``SessionUsed`` and what
    follows. The pack's price goes on its first session's invoice line (R15).

    Refused (R7) for a status the terms' policy gives back (:func:`draws_on`): there is then
    nothing to open a pack for.
    """
    if not draws_on(terms, appointment, status, cancelled_at):
        raise RefusedError(
            Rule.R7,
            "status",
            status,
            f"is not kept by the policy of {terms.name!r}: there is nothing to open a pack for",
        )
    opened = open_pack(
        pack_id,
        appointment.client_id,
        terms,
        practice,
        at,
        template_id=template_id,
        template_version=template_version,
    )
    return opened.then(record(opened.after, appointment, status, at, cancelled_at=cancelled_at))


def move(
    source: PackState, target: PackState, appointment: Appointment, at: datetime
) -> tuple[Change, Change]:
    """Move ``appointment`` from ``source``, the pack holding it, to ``target``: two changes
    to commit together (R6). The usage is released from ``source`` (reason ``"moved to
    <target>"``, with its issued line, R7a) and used on ``target``, re-checked there (R3 to
    R5). The facts must be those recorded (R6a): a new start is a reschedule."""
    _state(source)
    _state(target)
    _appointment("appointment", appointment)
    if source.pack_id == target.pack_id:
        raise InvalidValueError("target", target.pack_id, "is the pack holding it already")
    recorded = _require_usage(source, appointment.id)
    refusal = differing_fact(recorded.appointment, appointment)
    if refusal is not None:
        raise refusal
    released = release(source, appointment.id, at, f"moved to {target.pack_id}")
    return released, use(target, appointment, at)


# Changing a pack -----------------------------------------------------------------------------


def _signed_units(state: PackState, value: Amount) -> int:
    metric = state.metric
    valid = (
        (metric is Metric.SESSIONS and type(value) is int)
        or (metric is Metric.HOURS and isinstance(value, timedelta))
        or (
            metric is Metric.MONEY
            and isinstance(value, Money)
            and value.currency == state.terms.currency
        )
    )
    if not valid:
        raise InvalidValueError(
            "amount",
            value,
            f"must be an amount in {metric.value} ({state.terms.currency} for money)",
        )
    delta = units(metric, value)
    # R18: every count a store keeps is a signed 64-bit integer, the new total included.
    if abs(delta) > INT64_MAX or state.total_units + delta > INT64_MAX:
        raise InvalidValueError("amount", value, "takes the pack's total past what it can hold")
    return delta


def adjust(
    state: PackState, value: Amount, reason: str, at: datetime, *, line: str | None = None
) -> Change:
    """Credit (positive) or debit (negative) the pack; a debit never goes below zero (R9). A
    bundle's adjustment names its ``line``, which it credits or debits (R24)."""
    _state(state)
    delta = _signed_units(state, value)
    if delta == 0:
        raise InvalidValueError("amount", value, "must not be zero")
    _reason(reason, required=True)
    require_aware("recorded_at", at)
    index = _adjusted_line(state, line)
    _require_live(state)
    left = state.remaining if index is None else state.line_remaining(index)
    if units(state.metric, left) + delta < 0:
        what = f"pack {state.pack_id}" if line is None else f"line {line} of {state.pack_id}"
        raise RefusedError(
            Rule.R9, "amount", value, f"a debit may not take {what} below zero (remaining {left})"
        )
    build = _Builder(state, at)
    after = build.entry(Adjusted, amount=value, reason=reason, line=line)
    build.event(
        ev.PackAdjusted,
        amount=value,
        reason=reason,
        remaining=after.remaining,
        line=line,
        line_remaining=None if index is None else after.line_remaining(index),
    )
    build.balance_events(state)
    return build.done()


def _adjusted_line(state: PackState, line: object) -> int | None:
    """The index of the bundle line an adjustment names: required of a bundle, refused of
    any other pack (R24)."""
    if line is None and not state.is_bundle:
        return None
    found = None if line is None else state.terms.line_named(line)
    if found is None:
        listed = ", ".join(b.name for b in state.terms.lines) or "none: the pack is not a bundle"
        raise InvalidValueError("line", line, f"must name a line of the bundle ({listed})")
    return found


def extend(state: PackState, until: date, reason: str, at: datetime) -> Change:
    """Move the expiry date later (R5)."""
    _state(state)
    check_day("until", until)
    _reason(reason, required=True)
    require_aware("recorded_at", at)
    _require_live(state)
    current = state.expiry_date
    if current is None:
        raise RefusedError(
            Rule.R5,
            "until",
            until.isoformat(),
            f"pack {state.pack_id} has no expiry date to extend",
        )
    if until <= current:
        raise RefusedError(
            Rule.R5,
            "until",
            until.isoformat(),
            f"must be after the current expiry date {current.isoformat()}",
        )
    build = _Builder(state, at)
    build.entry(Extended, until=until, reason=reason)
    build.event(ev.ExpiryExtended, until=until, reason=reason)
    return build.done()


def expire(state: PackState, as_of: date, at: datetime) -> Change:
    """The expiry sweep for one pack: ``PackExpired`` once per expiry date, if something is
    left, with the breakage it leaves (R12, R12b, R15a). Before the expiry date, once its
    reminder is due, ``ExpiringSoon`` once per expiry date instead (R25)."""
    _state(state)
    check_day("as_of", as_of)
    require_aware("recorded_at", at)
    if not state.due_to_expire(as_of):
        return _remind(state, as_of, at)
    expiry = state.expiry_date
    assert expiry is not None
    build = _Builder(state, at)
    after = build.entry(Expired, expiry_date=expiry, as_of=as_of)
    build.event(
        ev.PackExpired,
        expiry_date=expiry,
        remaining=state.remaining,
        breakage=figures(after).breakage,
    )
    return build.done()


def _remind(state: PackState, as_of: date, at: datetime) -> Change:
    due, expiry = state.reminder_due, state.pending_expiry
    if due is None or expiry is None or as_of < due:
        return _unchanged(state)
    days = state.terms.policies.remind_days_before_expiry
    assert days is not None
    build = _Builder(state, at)
    build.entry(Reminded, expiry_date=expiry, as_of=as_of)
    build.event(ev.ExpiringSoon, expiry_date=expiry, remaining=state.remaining, days_before=days)
    return build.done()


def hold(state: PackState, start: date, until: date, reason: str, at: datetime) -> Change:
    """Put the pack on hold from ``start`` until ``until``, the first date usable again (R22).
    The expiry date moves later by the hold's days. Refused for a closed or voided pack, a
    hold that overlaps another, starts on or after the expiry date, or covers a usage."""
    _state(state)
    check_day("start", start)
    check_day("until", until)
    reason = _reason(reason)
    require_aware("recorded_at", at)
    if until <= start:
        raise InvalidValueError("until", until.isoformat(), f"must be after start ({start})")
    refusal = _ended(state) or _unholdable(state, start, until)
    if refusal is not None:
        raise refusal
    build = _Builder(state, at)
    after = build.entry(Held, start=start, until=until, reason=reason)
    build.event(ev.PackHeld, start=start, until=until, reason=reason, expiry_date=after.expiry_date)
    return build.done()


def _unholdable(state: PackState, start: date, until: date) -> RefusedError | None:
    for other in state.holds:
        if other.start < until and start < other.until:
            return _held_refusal(state, other, "start", start.isoformat())
    expiry = state.expiry_date
    if expiry is not None and start >= expiry:
        return RefusedError(
            Rule.R22,
            "start",
            start.isoformat(),
            f"pack {state.pack_id} expires on {expiry.isoformat()}, before the hold would start",
        )
    for usage in state.usages:
        day = usage.appointment.local_date(state.zone)
        if start <= day < until:
            return RefusedError(
                Rule.R22,
                "start",
                start.isoformat(),
                f"appointment {usage.appointment.id} on {day.isoformat()} uses pack "
                f"{state.pack_id} inside the hold: cancel or move it first",
            )
    return None


def end_hold(state: PackState, on: date, reason: str, at: datetime) -> Change:
    """End early the first hold still running on ``on`` (or still to come): the pack is usable
    again from ``on`` and the expiry date moves back by the days not used (R22). A hold that
    had not started by ``on`` is removed."""
    _state(state)
    check_day("on", on)
    reason = _reason(reason)
    require_aware("recorded_at", at)
    _require_live(state)
    running = next((h for h in state.holds if h.until > on), None)
    if running is None:
        raise RefusedError(
            Rule.R22, "on", on.isoformat(), f"pack {state.pack_id} has no hold running after it"
        )
    build = _Builder(state, at)
    after = build.entry(Resumed, start=running.start, on=on, reason=reason)
    stranded = _past_expiry(after)
    if stranded is not None:
        raise RefusedError(
            Rule.R5,
            "on",
            on.isoformat(),
            f"ending the hold then would make pack {state.pack_id} expire on "
            f"{after.expiry_date}, before appointment {stranded.appointment.id}: "
            "cancel or move it first",
        )
    build.event(
        ev.HoldEnded,
        start=running.start,
        until=running.until,
        on=on,
        reason=reason,
        expiry_date=after.expiry_date,
    )
    return build.done()


def share(state: PackState, client_id: str, at: datetime) -> Change:
    """Let ``client_id`` draw on the pack beside its owner (R20): a family, a couple. Sharing
    it with a client already listed writes nothing; refused for the owner, a closed or voided
    pack, and beyond :data:`MAX_SHARED_WITH` clients."""
    _state(state)
    check_id("client_id", client_id)
    require_aware("recorded_at", at)
    _require_live(state)
    if client_id in state.shared_with:
        return _unchanged(state)
    if client_id == state.client_id:
        raise InvalidValueError("client_id", client_id, f"owns pack {state.pack_id}")
    if len(state.shared_with) >= MAX_SHARED_WITH:
        raise RefusedError(
            Rule.R20,
            "client_id",
            client_id,
            f"pack {state.pack_id} is shared with {MAX_SHARED_WITH} clients already",
        )
    build = _Builder(state, at)
    after = build.entry(Shared, client_id=client_id)
    build.event(ev.PackShared, with_client_id=client_id, shared_with=after.shared_with)
    return build.done()


def unshare(state: PackState, client_id: str, at: datetime) -> Change:
    """Stop ``client_id`` drawing on the pack (R20): refused while one of their appointments
    after ``at`` uses it (cancel or move it first), and for a client not listed. What they
    used before stays used and numbered."""
    _state(state)
    check_id("client_id", client_id)
    moment = instant(require_aware("recorded_at", at))
    _require_live(state)
    if client_id not in state.shared_with:
        listed = ", ".join(state.shared_with) or "no one"
        raise RefusedError(
            Rule.R20,
            "client_id",
            client_id,
            f"pack {state.pack_id} is not shared with them (shared with {listed})",
        )
    for usage in state.usages:
        appointment = usage.appointment
        if appointment.client_id == client_id and instant(appointment.start) > moment:
            raise RefusedError(
                Rule.R20,
                "client_id",
                client_id,
                f"appointment {appointment.id} on {appointment.start.isoformat()} uses pack "
                f"{state.pack_id}: cancel or move it first",
            )
    build = _Builder(state, at)
    after = build.entry(Unshared, client_id=client_id)
    build.event(ev.PackUnshared, with_client_id=client_id, shared_with=after.shared_with)
    return build.done()


# The reason of the releases that closing writes for the usages still to come (R10a).
_CLOSING_RELEASE = "pack closed"


def close(state: PackState, reason: str, at: datetime) -> Change:
    """Close the pack early (R10, R10a). In the same change every usage whose appointment
    starts after ``at`` is released (one ``UsageReleased`` each, reason ``"pack closed"``),
    unless marked late-cancelled or no-show, which the policy already settled as consumed;
    then ``PackClosed``. What remains is reported by :func:`pricing.figures` as refundable."""
    _state(state)
    _reason(reason)
    moment = instant(require_aware("recorded_at", at))
    _require_live(state)
    build = _Builder(state, at)
    _release_to_come(build, state, moment, _CLOSING_RELEASE)
    after = build.entry(Closed, reason=reason)
    build.event(ev.PackClosed, remaining=after.remaining, reason=reason)
    return build.done()


def _holds_ended(state: PackState, today: date) -> tuple[Hold, ...]:
    """The holds as they stand if each ends today: those over stay, the one running ends, and
    those to come go."""
    kept = []
    for hold in state.holds:
        if hold.until <= today:
            kept.append(hold)
        elif hold.start < today:
            kept.append(attrs.evolve(hold, until=today))
    return tuple(kept)


def _tiers_from(pricing: PerSession, place: int) -> PerSession:
    """The tiers as the ``place``-th session on sees them, renumbered from 1."""
    shift = place - 1
    first = pricing.price_of(place)
    later = [
        Tier(tier.from_session - shift, tier.price)
        for tier in pricing.tiers
        if tier.from_session - shift > 1
    ]
    return PerSession((Tier(1, first), *later))


# The reason of the releases a transfer writes for the usages still to come (R21).
_TRANSFER_RELEASE = "pack transferred"


def transfer(
    state: PackState, pack_id: str, client_id: str, practice: Practice, reason: str, at: datetime
) -> tuple[Change, Change]:
    """Transfer what remains of the pack to a new pack ``pack_id`` for ``client_id`` (R21).

    Two changes, to be committed together: the source is closed with the remainder marked
    transferred (not refundable), its usages still to come released as closing releases
    them (R10a); the new pack opens with the same terms but that remainder as its allowance,
    the source's expiry date, and, charged per pack, its unearned value as its price, paid
    already. Each ledger names the other pack; ``PackTransferred`` on both."""
    _state(state)
    check_id("pack_id", pack_id)
    check_id("client_id", client_id)
    reason = _reason(reason)
    require_aware("recorded_at", at)
    _require_live(state)
    if pack_id == state.pack_id:
        raise InvalidValueError("pack_id", pack_id, "must be a new pack, not the one transferred")
    if client_id == state.client_id:
        raise InvalidValueError("client_id", client_id, "must be another client than the pack's")
    build = _Builder(state, at)
    left = _released_for_transfer(build, at)
    value = figures(left).usable if isinstance(left.terms.pricing, PerPack) else None
    today = at.astimezone(left.zone).date()
    build.entry(Closed, reason=reason, transferred_to=pack_id)
    moved: dict[str, Any] = {
        "from_pack_id": state.pack_id,
        "to_pack_id": pack_id,
        "from_client_id": state.client_id,
        "to_client_id": client_id,
        "remaining": left.remaining,
        "value": value,
        "reason": reason,
    }
    build.event(ev.PackTransferred, **moved)
    target = _Builder(None, at)
    opened = target.entry(
        Opened,
        pack_id=pack_id,
        client_id=client_id,
        terms=_carried_terms(left, value, today),
        timezone=practice.timezone,
        template_id=state.template_id,
        template_version=state.template_version,
        transferred_from=state.pack_id,
    )
    target.event(ev.PackOpened, name=opened.terms.name, template_id=state.template_id)
    target.event(ev.PackTransferred, **moved)
    return build.done(), target.done()


def _released_for_transfer(build: _Builder, at: datetime) -> PackState:
    """The source with its usages still to come released (R10a), checked transferable."""
    state = build.state
    assert state is not None
    _release_to_come(build, state, instant(at), _TRANSFER_RELEASE)
    left = build.state
    assert left is not None
    refusal = _untransferable(left, at.astimezone(left.zone).date())
    if refusal is not None:
        raise refusal
    return left


def _untransferable(state: PackState, today: date) -> RefusedError | None:
    """R21: only what remains of an open pack, not one expired by today, and, charged per
    pack, only once its price is invoiced: the value carried must have been paid for."""
    if state.remaining_units <= 0:
        return RefusedError(Rule.R21, "pack_id", state.pack_id, "the pack has nothing left")
    if isinstance(state.terms.pricing, PerPack) and not state.price_charged:
        return RefusedError(
            Rule.R21,
            "pack_id",
            state.pack_id,
            "the pack's price is not invoiced yet: invoice it before transferring the pack",
        )
    expiry = state.expiry_date
    if expiry is not None and today >= expiry:
        return RefusedError(
            Rule.R21, "pack_id", state.pack_id, f"the pack expired on {expiry.isoformat()}"
        )
    return None


def _carried_terms(state: PackState, value: Money | None, today: date) -> PackTerms:
    """The source's terms for the remainder: its allowance; its expiry date, with its holds
    ended today (the receiver is not on hold, so it gets no days of it to come); for a pack
    charged per pack its unearned value as the price (so the money carried is exact), and for
    one charged per session its tiers from the source's next place on."""
    terms = state.terms
    allowance = Allowance(terms.metric, state.remaining)
    expiry = attrs.evolve(state, holds=_holds_ended(state, today)).expiry_date
    changes: dict[str, Any] = {"allowance": allowance}
    if terms.lines:  # each line with what remains of it; a line used up goes (R24)
        changes["lines"] = tuple(
            attrs.evolve(line, allowance=Allowance(terms.metric, state.line_remaining(i)))
            for i, line in enumerate(terms.lines)
            if state.line_remaining_units(i) > 0
        )
    if expiry is not None:
        changes["expiry"] = ExpiresOn(expiry)
    if value is not None:
        changes["pricing"] = PerPack(value)
    elif isinstance(terms.pricing, PerSession):
        changes["pricing"] = _tiers_from(terms.pricing, state.next_tier)
    policies = terms.policies
    low = policies.low_balance_at
    if low is not None and units(terms.metric, low) >= allowance.units:
        changes["policies"] = attrs.evolve(policies, low_balance_at=None)
    return attrs.evolve(terms, **changes)


def _release_to_come(build: _Builder, state: PackState, moment: datetime, why: str) -> None:
    """Release every usage whose appointment starts after ``moment``, unless marked late-cancelled
    or no-show, which the policy already settled as consumed (R10a)."""
    for usage in state.usages:
        if usage.mark is None and instant(usage.appointment.start) > moment:
            build.release(usage, why)


def void(state: PackState, reason: str, at: datetime) -> Change:
    """Void a pack opened in error; refused while it has an active usage (R10)."""
    _state(state)
    _reason(reason)
    require_aware("recorded_at", at)
    _require_live(state)
    if state.usages:
        raise RefusedError(
            Rule.R10,
            "pack_id",
            state.pack_id,
            f"has {len(state.usages)} active usage(s); release them or close it",
        )
    if state.transferred_from is not None:
        raise RefusedError(
            Rule.R21,
            "pack_id",
            state.pack_id,
            f"holds what pack {state.transferred_from} transferred: transfer it on, or close it",
        )
    build = _Builder(state, at)
    build.entry(Voided, reason=reason)
    build.event(ev.PackVoided, reason=reason)
    return build.done()


def issue_invoice(
    state: PackState, appointment_id: str, at: datetime
) -> tuple[Change, InvoiceLine]:
    """Issue the invoice line of an appointment once; it keeps its label from then on (R8).

    Allowed on a closed pack too: a line changes what is charged, never the pack's figures.
    """
    _state(state)
    require_aware("recorded_at", at)
    usage = _require_usage(state, appointment_id)
    line = invoice_line(state, appointment_id)
    if usage.invoice is not None:
        return _unchanged(state), line
    build = _Builder(state, at)
    build.entry(
        Invoiced,
        appointment_id=appointment_id,
        number=line.number,
        label=line.label,
        amount=line.amount,
        prepaid=line.prepaid,
        includes_pack_price=line.includes_pack_price,
        tier=state.next_tier if isinstance(state.terms.pricing, PerSession) else None,
    )
    return build.done(), line
