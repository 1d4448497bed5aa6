"""How values are shown: JSON-ready data for ``--json``, and lines a receptionist reads."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sessionpacks import events as ev
from sessionpacks import ledger as lg
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import PackState, PackStatus
from sessionpacks.model import (
    Amount,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    Money,
    PackTemplate,
    PackTerms,
    PerPack,
    Preference,
    PreferPack,
    PreferService,
    PreferTemplate,
    format_amount,
)
from sessionpacks.pricing import InvoiceLine
from sessionpacks.serialization import converter

__all__ = [
    "bundle_lines",
    "describe_entry",
    "describe_event",
    "dumps",
    "expiry_text",
    "jsonable",
    "line_data",
    "lines_text",
    "pack_data",
    "pack_line",
    "preference_text",
    "pricing_text",
    "session_line",
    "several_clients",
    "sharing_text",
    "template_lines",
]


def jsonable(value: Any) -> Any:
    """``value`` as JSON data in the library's one encoding (:mod:`sessionpacks.serialization`):
    money ``{"amount": "120.00", "currency": "AUD"}``, durations ``"PT1H30M"``, periods
    ``"P3M"``, instants and dates ISO 8601; members of a union carry ``"type"``."""
    return converter.unstructure(value)


def dumps(value: Any) -> str:
    """One JSON document (one line) for ``value``."""
    return json.dumps(jsonable(value), ensure_ascii=False)


def expiry_text(terms: PackTerms) -> str:
    rule = terms.expiry
    if isinstance(rule, ExpiresOn):
        return f"expires on {rule.date.isoformat()}"
    if isinstance(rule, ExpiresAfterOpening):
        return f"valid {rule.period} after opening"
    if isinstance(rule, ExpiresAfterFirstUse):
        return f"valid {rule.period} after first use"
    return "never expires"


def pricing_text(terms: PackTerms) -> str:
    pricing = terms.pricing
    if isinstance(pricing, PerPack):
        return f"{pricing.price} per pack"
    tiers = pricing.tiers
    if len(tiers) == 1:
        return f"{tiers[0].price} per session"
    parts = [f"{tiers[0].price} for session 1"]
    parts += [f"{t.price} from session {t.from_session}" for t in tiers[1:]]
    return ", ".join(parts)


def _services_lines(terms: PackTerms) -> list[str]:
    """The services row of a template, or for a bundle one row a line (R24)."""
    if not terms.lines:
        return [f"  services    {', '.join(sorted(terms.eligible_services)) or 'any service'}"]
    return [
        f"  {'lines' if n == 0 else '':<11} {line.name}: "
        f"{format_amount(line.allowance.amount)} of {', '.join(sorted(line.services))}"
        for n, line in enumerate(terms.lines)
    ]


def template_lines(template: PackTemplate) -> list[str]:
    terms = template.terms
    policies = terms.policies
    lines = [
        f"{template.id} v{template.version}: {terms.name}",
        f"  allowance   {format_amount(terms.allowance.amount)} ({terms.metric.value})",
        f"  pricing     {pricing_text(terms)}",
        f"  validity    {expiry_text(terms)}",
        *_services_lines(terms),
        f"  late cancel within {format_amount(policies.late_cancel_notice)}: "
        f"{'consumes' if policies.late_cancel_consumes else 'releases'}; "
        f"no-show: {'consumes' if policies.no_show_consumes else 'releases'}",
    ]
    if policies.low_balance_at is not None:
        lines.append(f"  low balance at {format_amount(policies.low_balance_at)}")
    if policies.remind_days_before_expiry is not None:
        lines.append(f"  reminder {policies.remind_days_before_expiry} days before expiry")
    if terms.description:
        lines.append(f"  {terms.description}")
    return lines


def preference_text(preference: Preference | None) -> str:
    if isinstance(preference, PreferPack):
        return f"preferred pack {preference.pack_id}"
    if isinstance(preference, PreferTemplate):
        return f"preferred template {preference.template_id}"
    if isinstance(preference, PreferService):
        return f"preferred service {preference.service_id}"
    return "no preference"


def pack_line(pack: PackState, now: datetime) -> str:
    """``pk1  10 x Physio  open  7 sessions left of 10 sessions, expires 2026-06-01``."""
    expiry = pack.expiry_date
    status = pack.status(now)
    verb = "expired on" if status is PackStatus.EXPIRED else "expires"
    until = f", {verb} {expiry.isoformat()}" if expiry else ""
    holds = "".join(f", on hold {h.start} to {h.until}" for h in pack.holds)
    return (
        f"{pack.pack_id}  {pack.terms.name}  {status.value}  "
        f"{format_amount(pack.remaining)} left of {format_amount(pack.total)}{lines_text(pack)}"
        f"{until}{holds}{sharing_text(pack)}"
    )


def _line_left(pack: PackState, line: int) -> str:
    """``Massage 1 of 2 left`` (sessions) or ``Massage 1h of 2h left``: one line of a bundle."""
    left, total = pack.line_remaining(line), pack.line_total(line)
    name = pack.terms.lines[line].name
    if isinstance(left, int):
        return f"{name} {left} of {total} left"
    return f"{name} {format_amount(left)} of {format_amount(total)} left"


def lines_text(pack: PackState) -> str:
    """`` (Physio 5 of 5 left, Massage 1 of 2 left)`` for a bundle (R24), else nothing: what
    remains of each line, which its services alone draw on."""
    if not pack.is_bundle:
        return ""
    return f" ({', '.join(_line_left(pack, i) for i in range(len(pack.terms.lines)))})"


def bundle_lines(pack: PackState) -> list[str]:
    """One row a line of a bundle, with its services: what ``pack show`` lists (R24)."""
    return [
        f"  {_line_left(pack, i):<28} {', '.join(sorted(line.services))}"
        for i, line in enumerate(pack.terms.lines)
    ]


def line_data(pack: PackState) -> list[dict[str, Any]]:
    """A bundle's lines as JSON data (R24): name, services, total and what remains; ``[]`` for
    a pack that is no bundle."""
    return [
        {
            "name": line.name,
            "services": sorted(line.services),
            "total": jsonable(pack.line_total(i)),
            "remaining": jsonable(pack.line_remaining(i)),
        }
        for i, line in enumerate(pack.terms.lines)
    ]


def sharing_text(pack: PackState) -> str:
    """``, shared by C1 with C2, C3`` for a pack other clients draw on (R20), else nothing:
    a line of a client's packs says whose a shared pack is."""
    if not pack.shared_with:
        return ""
    return f", shared by {pack.client_id} with {', '.join(pack.shared_with)}"


def pack_summary(pack: PackState, now: datetime) -> dict[str, Any]:
    """A pack's figures as JSON data: what ``pack show`` and ``export packs`` both print."""
    return {
        "pack_id": pack.pack_id,
        "client_id": pack.client_id,
        "shared_with": list(pack.shared_with),
        "name": pack.terms.name,
        "metric": pack.metric.value,
        "status": pack.status(now).value,
        "total": jsonable(pack.total),
        "remaining": jsonable(pack.remaining),
        "lines": line_data(pack),
        "expiry_date": jsonable(pack.expiry_date),
        "holds": jsonable(pack.holds),
        "migrated": jsonable(pack.migrated),
        "opened_at": pack.opened_at.isoformat(),
        "template_id": pack.template_id,
        "template_version": pack.template_version,
        "version": pack.version,
    }


def pack_data(pack: PackState, now: datetime, ledger: Iterable[lg.Entry] | None = None) -> Any:
    """A pack as JSON data: its figures, terms, numbered sessions and, if given, its ledger."""
    data: dict[str, Any] = {
        **pack_summary(pack, now),
        "terms": jsonable(pack.terms),
        "sessions": [session_data(pack, u) for u in pack.usages],
    }
    if ledger is not None:
        data["ledger"] = [jsonable(e) for e in ledger]
    return data


def session_data(pack: PackState, usage: lg.Usage) -> dict[str, Any]:
    appointment = usage.appointment
    line = pack.line_of(usage)
    return {
        "number": pack.number(appointment.id),
        "label": pack.label(appointment.id),
        "line": None if line is None else pack.terms.lines[line].name,
        "appointment_id": appointment.id,
        "client_id": appointment.client_id,
        "service_id": appointment.service_id,
        "start": appointment.start.isoformat(),
        "covered": jsonable(pack.amount(usage.consumed)),
        "shortfall": jsonable(pack.amount(usage.shortfall)),
        "mark": usage.mark.value if usage.mark else None,
        "invoiced": usage.invoice.label if usage.invoice else None,
    }


def several_clients(pack: PackState) -> bool:
    """The pack is shared, or was: some of its sessions may be another client's (R20)."""
    return bool(pack.shared_with) or any(
        u.appointment.client_id != pack.client_id for u in pack.usages
    )


def session_line(pack: PackState, usage: lg.Usage, whose: bool | None = None) -> str:
    """One numbered session; with ``whose`` (default: :func:`several_clients`, which a caller
    of many lines works out once) it names the session's client."""
    appointment = usage.appointment
    local = appointment.start.astimezone(pack.zone)
    whose = several_clients(pack) if whose is None else whose
    extra = f" for {appointment.client_id}" if whose else ""
    extra += f"  ({usage.mark.value.replace('_', '-')})" if usage.mark else ""
    if usage.shortfall:
        extra += f"  shortfall {format_amount(pack.amount(usage.shortfall))}"
    if usage.invoice is not None:
        extra += f"  invoiced as {usage.invoice.label!r} {usage.invoice.amount}"
    return (
        f"  {pack.label(appointment.id):<24} {appointment.id:<10} "
        f"{local:%a %d %b %Y %H:%M}  {appointment.service_id}{extra}"
    )


def invoice_text(line: InvoiceLine) -> str:
    """``A3: Session 3 of 10 on pack pk1: 0.00 AUD (prepaid)``."""
    notes = []
    if line.prepaid:
        notes.append("prepaid")
    if line.includes_pack_price:
        notes.append("includes the pack price")
    if line.shortfall_amount.amount:
        notes.append(
            f"plus {line.shortfall_amount} for {format_amount(line.shortfall)} not covered"
        )
    note = f" ({'; '.join(notes)})" if notes else ""
    return f"{line.appointment_id}: {line.label} on pack {line.pack_id}: {line.amount}{note}"


def _amount(value: Amount) -> str:
    return format_amount(value)


def describe_entry(entry: lg.Entry) -> str:
    """One ledger entry in words."""
    said = _usage_entry(entry)
    if said is None:
        said = _pack_entry(entry)
    return said


def _usage_entry(entry: lg.Entry) -> str | None:
    match entry:
        case lg.Used():
            short = f", shortfall {_amount(entry.shortfall)}" if _nonzero(entry.shortfall) else ""
            return f"used by {entry.appointment.id}: {_amount(entry.covered)}{short}"
        case lg.Released():
            why = f" ({entry.reason})" if entry.reason else ""
            return f"released {entry.appointment_id}{why}"
        case lg.Rescheduled():
            return f"rescheduled {entry.appointment_id} to {entry.start.isoformat()}"
        case lg.Marked():
            return f"{entry.appointment_id} marked {entry.mark.value.replace('_', '-')}"
        case lg.Invoiced():
            return f"invoiced {entry.appointment_id} as {entry.label!r}: {entry.amount}"
    return None


def _opened(entry: lg.Opened) -> str:
    source = (
        f"from template {entry.template_id} v{entry.template_version}"
        if entry.template_id
        else "ad hoc"
    )
    charged = ", charged on its own invoice" if entry.charged_on_open else ""
    if entry.transferred_from is not None:
        charged = f", transferred from {entry.transferred_from}"
    moved = entry.migrated
    if moved is not None:
        charged = (
            f", migrated: opened {moved.opened_on.isoformat()} elsewhere, "
            f"{format_amount(moved.used)} used there"
        )
    listed = entry.shared_with
    shared = f", shared with {', '.join(listed)}" if listed else ""
    return f"opened for {entry.client_id} {source}{charged}{shared}"


def _pack_entry(entry: lg.Entry) -> str:
    match entry:
        case lg.Opened():
            return _opened(entry)
        case lg.Shared():
            return f"shared with {entry.client_id}, who may draw on it from now on"
        case lg.Unshared():
            return f"no longer shared with {entry.client_id}; the sessions they used stay used"
        case lg.Adjusted():
            line = "" if entry.line is None else f" on line {entry.line}"
            return f"adjusted by {_signed(entry.amount)}{line}: {entry.reason}"
        case lg.Extended():
            return f"expiry extended to {entry.until.isoformat()}: {entry.reason}"
        case lg.Expired():
            return f"expired on {entry.expiry_date.isoformat()} (sweep as of {entry.as_of})"
        case lg.Reminded():
            return (
                f"reminder due of expiry on {entry.expiry_date.isoformat()}"
                f" (sweep as of {entry.as_of})"
            )
        case lg.Held():
            why = f": {entry.reason}" if entry.reason else ""
            return f"on hold from {entry.start.isoformat()} until {entry.until.isoformat()}{why}"
        case lg.Resumed():
            why = f": {entry.reason}" if entry.reason else ""
            return (
                f"hold from {entry.start.isoformat()} ended, usable again from "
                f"{entry.on.isoformat()}{why}"
            )
        case lg.Closed():
            handed = f", transferred to {entry.transferred_to}" if entry.transferred_to else ""
            return f"closed{handed}{': ' + entry.reason if entry.reason else ''}"
        case lg.Voided():
            return f"voided{': ' + entry.reason if entry.reason else ''}"
    raise TypeError(f"unknown entry {entry!r}")  # pragma: no cover - the union is closed


def _nonzero(value: Amount) -> bool:
    if isinstance(value, Money):
        return value.amount != 0
    return bool(value)


def _signed(value: Amount) -> str:
    if isinstance(value, Money):
        negative = value.amount < 0
    elif isinstance(value, timedelta):
        negative = value < timedelta(0)
    else:
        negative = value < 0
    magnitude = -value if negative else value
    return ("-" if negative else "+") + format_amount(magnitude)


def describe_event(recorded: RecordedEvent) -> str:
    """``#7 PackExhausted pk1 (client C1)``, with the details that matter."""
    event = recorded.event
    detail = _usage_detail(event)
    if detail is None:
        detail = _pack_detail(event)
    name = type(event).__name__
    return f"#{recorded.position} {name} {event.pack_id} (client {event.client_id}){detail}"


def _usage_detail(event: ev.Event) -> str | None:
    match event:
        case ev.SessionUsed():
            return (
                f" {event.appointment_id} is session {event.number}, "
                f"{format_amount(event.remaining)} left"
            )
        case ev.UsageReleased():
            detail = f" {event.appointment_id} released, {format_amount(event.remaining)} left"
            if event.invoice_label is not None:  # R7a: the issued line, for the host to credit
                detail += (
                    f"; line {event.invoice_label!r} {event.invoice_amount}, credit {event.credit}"
                )
            return detail
        case ev.UsageRescheduled():
            return f" {event.appointment_id} moved to {event.start.isoformat()}"
        case ev.UsageMarked():
            return f" {event.appointment_id} {event.mark.value.replace('_', '-')}"
    return None


def _balance_detail(event: ev.Event) -> str | None:
    """What an adjustment, a low balance or a line used up says (R9, R12, R24)."""
    match event:
        case ev.PackAdjusted():
            detail = f" {_signed(event.amount)} ({event.reason})"
            if event.line is not None and event.line_remaining is not None:
                detail += f" on line {event.line}, {format_amount(event.line_remaining)} left of it"
            return f"{detail}, {format_amount(event.remaining)} left"
        case ev.LowBalance():
            if event.line is not None and event.total is not None:
                return (
                    f" line {event.line}: {format_amount(event.remaining)} left of "
                    f"{format_amount(event.total)}"
                )
            return f" {format_amount(event.remaining)} left"
        case ev.LineExhausted():
            return (
                f" line {event.line} used up ({format_amount(event.total)}): its services draw "
                "on the pack no more, the other lines go on"
            )
    return None


def _pack_detail(event: ev.Event) -> str:
    balance = _balance_detail(event)
    if balance is not None:
        return balance
    match event:
        case ev.PackExpired():
            return f" on {event.expiry_date}, {format_amount(event.remaining)} unused"
        case ev.ExpiringSoon():
            return f" on {event.expiry_date}, {format_amount(event.remaining)} left"
        case ev.ExpiryExtended():
            return f" to {event.until}"
        case ev.PackHeld():
            return f" from {event.start} until {event.until}, expires {event.expiry_date}"
        case ev.HoldEnded():
            return f" usable again from {event.on}, expires {event.expiry_date}"
        case ev.PackTransferred():
            value = "" if event.value is None else f", {event.value}"
            return (
                f" {event.from_pack_id} ({event.from_client_id}) to {event.to_pack_id} "
                f"({event.to_client_id}): {format_amount(event.remaining)}{value}"
            )
        case ev.PackClosed():
            return f" with {format_amount(event.remaining)} left"
    return _life_detail(event)


def _life_detail(event: ev.Event) -> str:
    """The details of a pack's opening and of the clients listed on it (R20)."""
    match event:
        case ev.PackShared():
            return f" now shared with {event.with_client_id}{_listed(event.shared_with)}"
        case ev.PackUnshared():
            return f" no longer shared with {event.with_client_id}{_listed(event.shared_with)}"
        case ev.PackOpened():
            migrated = " (migrated)" if event.migrated else ""
            shared = f", shared with {', '.join(event.shared_with)}" if event.shared_with else ""
            return f" {event.name!r}{migrated}{shared}"
    return ""


def _listed(clients: tuple[str, ...]) -> str:
    """Who may draw on a pack beside its owner after a change of its list (R20)."""
    return f"; beside the owner: {', '.join(clients) or 'no one'}"


def status_order(status: PackStatus) -> int:
    return list(PackStatus).index(status)
