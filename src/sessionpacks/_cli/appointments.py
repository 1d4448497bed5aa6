"""Verbs on appointments: book with the client's default, assign, invoice, cancel, move."""

from __future__ import annotations

import argparse
from typing import Any

from sessionpacks.errors import NotFoundError
from sessionpacks.model import Appointment
from sessionpacks.resolution import NoPack, UsePack
from sessionpacks.service import Assignment

from .base import Subparsers, add_command, add_group, add_idempotency_key, keyed, reading
from .context import Context
from .render import describe_event, invoice_text, jsonable, pack_data
from .store import UsageError
from .values import currency, duration, identifier, instant, money

__all__ = ["appointment_of", "assignment_data", "assignment_text", "register"]

_FIELDS = ("client", "service", "start", "duration", "price")


def add_appointment_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """The appointment as the host knows it: id, client, service, start, duration, price."""
    _appointment_id(parser)
    group = parser.add_argument_group("appointment")
    group.add_argument(
        "--client", metavar="ID", type=identifier, required=required, help="the client's id"
    )
    group.add_argument(
        "--service", metavar="ID", type=identifier, required=required, help="the service's id"
    )
    group.add_argument(
        "--start",
        type=instant,
        metavar="INSTANT",
        required=required,
        help="ISO 8601 with offset: 2026-03-02T09:00+11:00",
    )
    group.add_argument(
        "--duration",
        type=duration,
        metavar="DURATION",
        required=required,
        help="45m, 1h30m or PT1H30M",
    )
    group.add_argument(
        "--price",
        type=money,
        metavar="AMOUNT",
        required=required,
        help="the appointment's price: 120.00 AUD, or 120.00 with --currency",
    )
    group.add_argument("--currency", type=currency, metavar="CODE", help="e.g. AUD")


def _appointment_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "appointment_id",
        metavar="APPOINTMENT_ID",
        type=identifier,
        help="the appointment's id (the host's)",
    )


def appointment_of(args: argparse.Namespace) -> Appointment:
    """The appointment the options describe."""
    with reading("--price"):
        price = args.price.resolve(args.currency)
    return Appointment(
        id=args.appointment_id,
        client_id=args.client,
        service_id=args.service,
        start=args.start,
        duration=args.duration,
        price=price,
    )


def assignment_text(assignment: Assignment) -> list[str]:
    """``A1: Session 2 of 10 on pack pk1 (10 x Physio) — preferred pack pk1``."""
    action = assignment.decision.action
    reason = assignment.decision.reason
    if assignment.pack is None or assignment.label is None:
        billed = (
            f"billed at service {action.service_id}'s price"
            if isinstance(action, NoPack) and action.service_id
            else "billed at its own price"
        )
        lines = [f"{assignment.appointment_id}: no pack applies ({reason}); {billed}."]
    else:
        new = "new " if assignment.opened else ""
        lines = [
            f"{assignment.appointment_id}: {assignment.label} on {new}pack "
            f"{assignment.pack.pack_id} ({assignment.pack.terms.name}) — {reason}."
        ]
    lines += [f"  passed over {p.candidate}: {p.reason}" for p in assignment.decision.passed_over]
    lines += [f"  {describe_event(e)}" for e in assignment.events]
    return lines


def assignment_data(assignment: Assignment, ctx: Context) -> dict[str, Any]:
    return {
        "appointment_id": assignment.appointment_id,
        "label": assignment.label,
        "pack_id": assignment.pack.pack_id if assignment.pack else None,
        "opened": assignment.opened,
        "decision": jsonable(assignment.decision),
        "pack": pack_data(assignment.pack, ctx.now()) if assignment.pack else None,
        "events": jsonable(assignment.events),
    }


def _emit_assignment(ctx: Context, assignment: Assignment) -> int:
    ctx.emit(assignment_data(assignment, ctx), assignment_text(assignment))
    return 0


def book(ctx: Context, args: argparse.Namespace) -> int:
    return _emit_assignment(ctx, ctx.service.book(appointment_of(args), **keyed(args)))


def assign(ctx: Context, args: argparse.Namespace) -> int:
    assignment = ctx.service.assign(
        appointment_of(args), pack_id=args.pack, template_id=args.template, **keyed(args)
    )
    return _emit_assignment(ctx, assignment)


def choices(ctx: Context, args: argparse.Namespace) -> int:
    appointment = appointment_of(args)
    offered = ctx.service.choices(appointment)
    decision = ctx.service.decide(appointment)
    lines = [f"Default for {appointment.id}: {decision.reason}.", "Choices:"]
    for n, choice in enumerate(offered, start=1):
        target = (
            f"--pack {choice.action.pack_id}"
            if isinstance(choice.action, UsePack)
            else f"--template {choice.action.template_id}"
        )
        lines.append(f"  {n}. {choice.label}  [{target}]")
    if not offered:
        lines.append("  none: no open pack or template can cover it")
    ctx.emit({"default": jsonable(decision), "choices": jsonable(offered)}, lines)
    return 0


def add_to_invoice(ctx: Context, args: argparse.Namespace) -> int:
    line = ctx.service.add_to_invoice(
        appointment_of(args), pack_id=args.pack, template_id=args.template, **keyed(args)
    )
    ctx.emit(line, invoice_text(line))
    return 0


def invoice(ctx: Context, args: argparse.Namespace) -> int:
    line = ctx.service.invoice_line(
        args.appointment_id, as_of=args.as_of, idempotency_key=args.idempotency_key
    )
    ctx.emit(line, invoice_text(line))
    return 0


def _after(ctx: Context, args: argparse.Namespace, verb: str) -> int:
    key = keyed(args)
    pack = {
        "cancel": lambda: ctx.service.cancel(args.appointment_id, getattr(args, "at", None), **key),
        "late-cancel": lambda: ctx.service.late_cancel(args.appointment_id, **key),
        "no-show": lambda: ctx.service.no_show(args.appointment_id, **key),
        "reschedule": lambda: ctx.service.reschedule(args.appointment_id, args.to, **key),
    }[verb]()
    usage = pack.usage(args.appointment_id)
    if usage is None:
        outcome = f"released from pack {pack.pack_id}; its session is given back"
    elif usage.mark is not None:
        outcome = f"still uses {pack.label(args.appointment_id)} on pack {pack.pack_id}, marked "
        outcome += usage.mark.value.replace("_", "-")
    else:
        outcome = f"is now {pack.label(args.appointment_id)} on pack {pack.pack_id}"
    data = {"appointment_id": args.appointment_id, "active": usage is not None}
    ctx.emit({**data, "pack": pack_data(pack, ctx.now())}, f"{args.appointment_id} {outcome}.")
    return 0


def cancel(ctx: Context, args: argparse.Namespace) -> int:
    return _after(ctx, args, "cancel")


def late_cancel(ctx: Context, args: argparse.Namespace) -> int:
    return _after(ctx, args, "late-cancel")


def no_show(ctx: Context, args: argparse.Namespace) -> int:
    return _after(ctx, args, "no-show")


def reschedule(ctx: Context, args: argparse.Namespace) -> int:
    return _after(ctx, args, "reschedule")


def move(ctx: Context, args: argparse.Namespace) -> int:
    given = [f for f in _FIELDS if getattr(args, f) is not None]
    if given and len(given) != len(_FIELDS):
        missing = ", ".join(f"--{f}" for f in _FIELDS if f not in given)
        raise UsageError(f"give all of the appointment's details or none (missing {missing})")
    if given:
        appointment = appointment_of(args)
    else:
        holder = ctx.service.holder(args.appointment_id)
        if holder is None:
            raise NotFoundError(
                "appointment_id",
                args.appointment_id,
                "is not on any pack: give its details (--client ... --price) to assign it",
            )
        usage = ctx.service.pack(holder).usage(args.appointment_id)
        assert usage is not None
        appointment = usage.appointment
    return _emit_assignment(ctx, ctx.service.move(appointment, args.to, **keyed(args)))


# Parsers -----------------------------------------------------------------------------------

_APPOINTMENT = (
    "A7 --client C1 --service physio --start 2026-03-09T09:00+11:00 \\\n"
    "    --duration 45m --price '120.00 AUD'"
)


def register(top: Subparsers, common: argparse.ArgumentParser) -> None:
    verbs = add_group(
        top,
        "appointment",
        help="appointments: book, assign, choices, invoice, cancel, reschedule, move",
        example=f"sessionpacks appointment book {_APPOINTMENT}",
    )
    for name, run, help_text in (
        ("book", book, "apply the client's default pack, template or service (R13)"),
        ("choices", choices, "the packs and templates a receptionist may pick from (R14)"),
    ):
        p = add_command(
            verbs,
            name,
            help=help_text,
            example=f"sessionpacks appointment {name} {_APPOINTMENT}",
            run=run,
            common=common,
        )
        add_appointment_options(p)
        if run is book:
            add_idempotency_key(p)
    for name, run, help_text in (
        ("assign", assign, "put the appointment on an open pack, or a new one from a template"),
        (
            "add-to-invoice",
            add_to_invoice,
            "record an appointment that already happened on a pack and issue its invoice line",
        ),
    ):
        p = add_command(
            verbs,
            name,
            help=help_text,
            example=f"sessionpacks appointment {name} {_APPOINTMENT} --template physio-10",
            run=run,
            common=common,
        )
        add_appointment_options(p)
        target = p.add_mutually_exclusive_group(required=name == "assign")
        target.add_argument(
            "--pack", metavar="ID", type=identifier, help="an open pack of the client's"
        )
        target.add_argument(
            "--template", metavar="ID", type=identifier, help="open a new pack from this template"
        )
        add_idempotency_key(p)
    for name, run, help_text in (
        ("invoice", invoice, "the invoice line of an appointment: 'Session n of N' and price"),
        ("late-cancel", late_cancel, "a late cancellation: the pack's policy says if it consumes"),
        ("no-show", no_show, "the client did not come: the pack's policy says if it consumes"),
    ):
        p = add_command(
            verbs,
            name,
            help=help_text,
            example=f"sessionpacks appointment {name} A7",
            run=run,
            common=common,
        )
        _appointment_id(p)
        add_idempotency_key(p)
        if name == "invoice":
            p.add_argument(
                "--as-of",
                metavar="INSTANT",
                type=instant,
                help="the line as the ledger said at this instant; writes nothing",
            )
    p = add_command(
        verbs,
        "cancel",
        help="cancel: gives the session back, unless late and the policy says it consumes",
        example="sessionpacks appointment cancel A7\n"
        "sessionpacks appointment cancel A7 --at 2026-03-08T10:00+11:00",
        run=cancel,
        common=common,
    )
    _appointment_id(p)
    p.add_argument(
        "--at", type=instant, metavar="INSTANT", help="when the client cancelled (default: now)"
    )
    add_idempotency_key(p)
    p = add_command(
        verbs,
        "reschedule",
        help="move the appointment's start (re-checked against the expiry)",
        example="sessionpacks appointment reschedule A7 --to 2026-03-10T15:00+11:00",
        run=reschedule,
        common=common,
    )
    _appointment_id(p)
    p.add_argument("--to", type=instant, metavar="INSTANT", required=True, help="the new start")
    add_idempotency_key(p)
    p = add_command(
        verbs,
        "move",
        help="move the appointment to another pack, atomically",
        example="sessionpacks appointment move A7 --to pk_5678",
        run=move,
        common=common,
    )
    add_appointment_options(p, required=False)
    p.add_argument(
        "--to", metavar="PACK_ID", type=identifier, required=True, help="the pack to use instead"
    )
    add_idempotency_key(p)
