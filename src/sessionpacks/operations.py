"""Pure decisions on a pack: each takes a state and returns a :class:`Change` or refuses.

A :class:`Change` holds the new ledger entries, the events they cause and the state after them.
An operation that has nothing to do (re-recording the same usage, R6; sweeping a pack already
expired, R12) returns a change with no entries, and a store writes nothing for it. A refusal
raises :class:`~sessionpacks.errors.RefusedError` before anything is built (R17).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import attrs

from sessionpacks import events as ev
from sessionpacks.errors import InvalidValueError, RefusedError
from sessionpacks.ledger import (
    Adjusted,
    Closed,
    Entry,
    Expired,
    Extended,
    Invoiced,
    Mark,
    Marked,
    Opened,
    PackState,
    Released,
    Rescheduled,
    Usage,
    Used,
    Voided,
    apply,
)
from sessionpacks.model import (
    Amount,
    Appointment,
    Metric,
    Money,
    PackTerms,
    Practice,
    instant,
    require_aware,
    units,
)
from sessionpacks.pricing import InvoiceLine, invoice_line

__all__ = [
    "Change",
    "adjust",
    "cancel",
    "close",
    "expire",
    "extend",
    "issue_invoice",
    "mark",
    "open_pack",
    "release",
    "reschedule",
    "unusable_because",
    "use",
    "void",
]


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

    def balance_events(self, remaining_before: int) -> None:
        """``PackExhausted`` when the balance reaches zero; ``LowBalance`` when it crosses the
        threshold (R12)."""
        assert self.state is not None
        after = self.state.remaining_units
        if remaining_before > 0 and after <= 0:
            self.event(ev.PackExhausted)
            return
        threshold = self.state.terms.policies.low_balance_at
        if threshold is not None:
            limit = units(self.state.metric, threshold)
            if remaining_before > limit >= after:
                self.event(ev.LowBalance, remaining=self.state.remaining)

    def done(self) -> Change:
        assert self.state is not None
        return Change(self.before, self.state, tuple(self.entries), tuple(self.events))


def _unchanged(state: PackState) -> Change:
    return Change(state, state)


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
) -> Change:
    """Open a pack with ``terms`` for ``client_id`` (R2)."""
    for field, value in (("pack_id", pack_id), ("client_id", client_id)):
        if not isinstance(value, str) or not value or value.strip() != value:
            raise InvalidValueError(
                field, value, "must be a non-empty string without surrounding spaces"
            )
    if not isinstance(terms, PackTerms):
        raise InvalidValueError("terms", terms, "must be PackTerms")
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
    )
    build.event(ev.PackOpened, name=terms.name, template_id=template_id)
    return build.done()


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


def unusable_because(state: PackState, appointment: Appointment) -> RefusedError | None:
    """Why ``state`` cannot cover ``appointment`` (R3, R4, R5, R10), or ``None`` if it can."""
    if state.voided_at is not None or state.closed_at is not None:
        word = "voided" if state.voided_at is not None else "closed"
        return RefusedError("R10", "pack_id", state.pack_id, f"the pack is {word}")
    if appointment.client_id != state.client_id:
        return RefusedError(
            "R4",
            "appointment.client_id",
            appointment.client_id,
            f"pack {state.pack_id} belongs to client {state.client_id}",
        )
    if not state.terms.covers_service(appointment.service_id):
        return RefusedError(
            "R4",
            "appointment.service_id",
            appointment.service_id,
            f"pack {state.pack_id} covers only {sorted(state.terms.eligible_services)}",
        )
    if appointment.price.currency != state.terms.currency:
        return RefusedError(
            "R4",
            "appointment.price.currency",
            appointment.price.currency,
            f"pack {state.pack_id} is in {state.terms.currency}",
        )
    local = appointment.local_date(state.zone)
    expiry = state.expiry_if_used_on(local)
    if expiry is not None and local >= expiry:
        return RefusedError(
            "R5",
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
            "R5",
            "appointment.start",
            appointment.start.isoformat(),
            f"as the first use it would make pack {state.pack_id} expire on "
            f"{expiry.isoformat()}, before appointment {latest.appointment.id}",
        )
    if state.remaining_units <= 0:
        return RefusedError("R3", "pack_id", state.pack_id, "the pack has nothing left")
    return None


def use(state: PackState, appointment: Appointment, at: datetime) -> Change:
    """Record ``appointment`` on the pack (R3 to R6); the same appointment again writes nothing."""
    if state.usage(appointment.id) is not None:
        return _unchanged(state)
    refusal = unusable_because(state, appointment)
    if refusal is not None:
        raise refusal
    needed = _needed(state, appointment)
    covered = min(needed, state.remaining_units)
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
    build.balance_events(state.remaining_units)
    return build.done()


def _require_usage(state: PackState, appointment_id: str) -> Usage:
    usage = state.usage(appointment_id)
    if usage is None:
        raise RefusedError(
            "R7", "appointment_id", appointment_id, f"has no active usage on pack {state.pack_id}"
        )
    return usage


def _require_live(state: PackState) -> None:
    if state.voided_at is not None or state.closed_at is not None:
        word = "voided" if state.voided_at is not None else "closed"
        raise RefusedError("R10", "pack_id", state.pack_id, f"the pack is {word}")


def release(state: PackState, appointment_id: str, at: datetime, reason: str = "") -> Change:
    """Release a usage: what it consumed is restored and later sessions renumber (R7, R8)."""
    _require_usage(state, appointment_id)
    build = _Builder(state, at)
    after = build.entry(Released, appointment_id=appointment_id, reason=reason)
    build.event(ev.UsageReleased, appointment_id=appointment_id, remaining=after.remaining)
    return build.done()


def reschedule(state: PackState, appointment_id: str, start: datetime, at: datetime) -> Change:
    """Move a usage's appointment to ``start``, re-checked against the expiry (R5, R7)."""
    require_aware("start", start)
    usage = _require_usage(state, appointment_id)
    _require_live(state)
    if instant(usage.appointment.start) == instant(start):
        return _unchanged(state)
    build = _Builder(state, at)
    after = build.entry(Rescheduled, appointment_id=appointment_id, start=start)
    if _past_expiry(after) is not None:
        raise RefusedError(
            "R5",
            "start",
            start.isoformat(),
            f"pack {state.pack_id} is not valid on that date (expiry {after.expiry_date})",
        )
    build.event(ev.UsageRescheduled, appointment_id=appointment_id, start=start)
    return build.done()


def mark(state: PackState, appointment_id: str, why: Mark, at: datetime) -> Change:
    """Keep a usage consumed, marked late-cancelled or no-show (R7)."""
    usage = _require_usage(state, appointment_id)
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
    usage = _require_usage(state, appointment_id)
    if usage.mark is not None:
        raise RefusedError(
            "R7",
            "appointment_id",
            appointment_id,
            f"is already marked {usage.mark.value} on pack {state.pack_id}",
        )
    policies = state.terms.policies
    if no_show:
        consumes, why = policies.no_show_consumes, Mark.NO_SHOW
    else:
        if late is None:
            when = at if cancelled_at is None else require_aware("cancelled_at", cancelled_at)
            late = instant(usage.appointment.start) - instant(when) < policies.late_cancel_notice
        consumes, why = late and policies.late_cancel_consumes, Mark.LATE_CANCEL
    if consumes:
        return mark(state, appointment_id, why, at)
    reason = "no-show" if no_show else ("late cancel" if late else "cancelled")
    return release(state, appointment_id, at, reason)


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
    return units(metric, value)


def _require_reason(reason: str, message: str) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidValueError("reason", reason, message)


def adjust(state: PackState, value: Amount, reason: str, at: datetime) -> Change:
    """Credit (positive) or debit (negative) the pack; a debit never goes below zero (R9)."""
    delta = _signed_units(state, value)
    if delta == 0:
        raise InvalidValueError("amount", value, "must not be zero")
    _require_reason(reason, "an adjustment needs a reason")
    _require_live(state)
    if state.remaining_units + delta < 0:
        raise RefusedError(
            "R9",
            "amount",
            value,
            f"a debit may not take pack {state.pack_id} below zero (remaining {state.remaining})",
        )
    build = _Builder(state, at)
    after = build.entry(Adjusted, amount=value, reason=reason)
    build.event(ev.PackAdjusted, amount=value, reason=reason, remaining=after.remaining)
    build.balance_events(state.remaining_units)
    return build.done()


def extend(state: PackState, until: date, reason: str, at: datetime) -> Change:
    """Move the expiry date later (R5)."""
    if type(until) is not date:
        raise InvalidValueError("until", until, "must be a date")
    _require_reason(reason, "an extension needs a reason")
    _require_live(state)
    current = state.expiry_date
    if current is None:
        raise RefusedError(
            "R5", "until", until.isoformat(), f"pack {state.pack_id} has no expiry date to extend"
        )
    if until <= current:
        raise RefusedError(
            "R5",
            "until",
            until.isoformat(),
            f"must be after the current expiry date {current.isoformat()}",
        )
    build = _Builder(state, at)
    build.entry(Extended, until=until, reason=reason)
    build.event(ev.ExpiryExtended, until=until, reason=reason)
    return build.done()


def expire(state: PackState, as_of: date, at: datetime) -> Change:
    """The expiry sweep for one pack: ``PackExpired`` once per expiry, if something is left."""
    if not state.due_to_expire(as_of):
        return _unchanged(state)
    expiry = state.expiry_date
    assert expiry is not None
    build = _Builder(state, at)
    build.entry(Expired, expiry_date=expiry, as_of=as_of)
    build.event(ev.PackExpired, expiry_date=expiry, remaining=state.remaining)
    return build.done()


def close(state: PackState, reason: str, at: datetime) -> Change:
    """Close the pack early; what remains is reported by :func:`pricing.refundable` (R10)."""
    _require_live(state)
    build = _Builder(state, at)
    build.entry(Closed, reason=reason)
    build.event(ev.PackClosed, remaining=state.remaining, reason=reason)
    return build.done()


def void(state: PackState, reason: str, at: datetime) -> Change:
    """Void a pack opened in error; refused while it has an active usage (R10)."""
    _require_live(state)
    if state.usages:
        raise RefusedError(
            "R10",
            "pack_id",
            state.pack_id,
            f"has {len(state.usages)} active usage(s); release them or close it",
        )
    build = _Builder(state, at)
    build.entry(Voided, reason=reason)
    build.event(ev.PackVoided, reason=reason)
    return build.done()


def issue_invoice(
    state: PackState, appointment_id: str, at: datetime
) -> tuple[Change, InvoiceLine]:
    """Issue the invoice line of an appointment once; it keeps its label from then on (R8)."""
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
    )
    return build.done(), line
