"""Verbs on templates, packs and a client's preference."""

from __future__ import annotations

import argparse
from datetime import date

from sessionpacks.ledger import Migration, PackState, PackStatus
from sessionpacks.model import (
    Amount,
    PackTerms,
    Preference,
    PreferPack,
    PreferService,
    PreferTemplate,
    amount,
    format_amount,
)
from sessionpacks.ports import MAX_PAGE, PackQuery

from .base import Subparsers, add_command, add_group, add_idempotency_key, keyed, reading
from .context import Context
from .render import (
    bundle_lines,
    describe_entry,
    jsonable,
    pack_data,
    pack_line,
    preference_text,
    session_line,
    several_clients,
    template_lines,
)
from .store import UsageError
from .terms import add_terms_options, new_terms, term_changes
from .values import (
    amount_of,
    currency,
    day,
    identifier,
    instant,
    left,
    nonblank,
    pack_name,
    positive_int,
    reason,
    whole,
    within,
)

__all__ = ["register"]


# Templates ---------------------------------------------------------------------------------


def template_add(ctx: Context, args: argparse.Namespace) -> int:
    template = ctx.service.add_template(args.template_id, new_terms(args), **keyed(args))
    ctx.emit(template, ["Template added.", *template_lines(template)])
    return 0


def template_edit(ctx: Context, args: argparse.Namespace) -> int:
    current = ctx.service.template(args.template_id)
    changes = term_changes(args, current.terms)
    template = ctx.service.edit_template(args.template_id, **keyed(args), **changes)
    lines = [
        f"Template {template.id} is now at version {template.version}; "
        "packs already open keep their terms.",
        *template_lines(template),
    ]
    ctx.emit(template, lines)
    return 0


def template_list(ctx: Context, args: argparse.Namespace) -> int:
    templates = ctx.service.templates()
    lines = [
        f"{t.id:<16} v{t.version:<3} {t.name}  ({format_amount(t.terms.allowance.amount)})"
        for t in templates
    ]
    ctx.emit(templates, lines or ["No templates yet: add one with 'sessionpacks template add'."])
    return 0


def template_show(ctx: Context, args: argparse.Namespace) -> int:
    template = ctx.service.template(args.template_id, args.version)
    ctx.emit(template, template_lines(template))
    return 0


# Packs -------------------------------------------------------------------------------------


def pack_open(ctx: Context, args: argparse.Namespace) -> int:
    has_terms = args.name is not None or any(
        getattr(args, k) is not None for k in ("sessions", "hours", "money", "line")
    )
    if (args.template is None) == (not has_terms):
        raise UsageError("give --template ID, or the terms of an ad hoc pack (--name, ...)")
    terms = None if args.template else new_terms(args)
    migrated = _migration(ctx, args, terms)
    pack = ctx.service.open_pack(
        args.client_id,
        template_id=args.template,
        terms=terms,
        pack_id=args.pack_id,
        charged_on_open=not args.not_charged,
        migrated=migrated,
        shared_with=tuple(args.share_with or ()),
        **keyed(args),
    )
    now = ctx.now()
    price = pack.terms.pricing
    lines = [f"Opened pack {pack.pack_id} for {pack.client_id}: {pack_line(pack, now)}"]
    if migrated is not None:
        lines.append(
            f"Migrated: opened {migrated.opened_on}, {format_amount(migrated.used)} used there;"
            f" the next session here is number {pack.numbered_before + 1}."
        )
    elif not args.not_charged and hasattr(price, "price"):
        lines.append(f"Invoice the pack on its own: {price.price}.")
    ctx.emit(pack_data(pack, now), lines)
    return 0


def _migration(ctx: Context, args: argparse.Namespace, terms: PackTerms | None) -> Migration | None:
    """R19's --opened-on, --used-elsewhere and --numbered-elsewhere, read in the pack's metric."""
    given = (args.opened_on, args.used_elsewhere, args.numbered_elsewhere)
    if all(value is None for value in given):
        return None
    if args.opened_on is None:
        raise UsageError("a migrated pack needs --opened-on, the date it was opened there")
    if terms is None:
        terms = ctx.service.template(args.template).terms
    used: Amount = amount(terms.metric, 0, terms.currency)
    if args.used_elsewhere is not None:
        with reading("--used-elsewhere"):
            used = amount_of(terms.metric, args.used_elsewhere, terms.currency)
    return Migration(args.opened_on, used, args.numbered_elsewhere)


def pack_list(ctx: Context, args: argparse.Namespace) -> int:
    packs = ctx.service.client_packs(args.client_id, as_of=args.as_of)
    now = args.as_of or ctx.now()
    lines = [pack_line(p, now) for p in packs] or [f"{args.client_id} has no packs."]
    ctx.emit([pack_data(p, now) for p in packs], lines)
    return 0


def pack_show(ctx: Context, args: argparse.Namespace) -> int:
    pack = ctx.service.pack(args.pack_id, as_of=args.as_of)
    ledger = ctx.service.ledger(args.pack_id)[: pack.version]
    now = args.as_of or ctx.now()
    lines = [f"{pack_line(pack, now)}", f"  client {pack.client_id}"]
    if pack.template_id:
        lines[-1] += f", from template {pack.template_id} v{pack.template_version}"
    if pack.is_bundle:
        lines.append("Lines:")
        lines += bundle_lines(pack)
    lines.append("Sessions:")
    whose = several_clients(pack)
    lines += [session_line(pack, u, whose) for u in pack.usages] or ["  none yet"]
    lines.append("Ledger:")
    lines += [
        f"  {e.sequence:>3}  {e.recorded_at.astimezone(pack.zone):%Y-%m-%d %H:%M}  "
        f"{describe_entry(e)}"
        for e in ledger
    ]
    ctx.emit(pack_data(pack, now, ledger), lines)
    return 0


def pack_adjust(ctx: Context, args: argparse.Namespace) -> int:
    pack = ctx.service.pack(args.pack_id)
    with reading("AMOUNT"):
        amount = amount_of(
            pack.metric, args.amount, args.currency or pack.terms.currency, signed=True
        )
    after = ctx.service.adjust(args.pack_id, amount, args.reason, line=args.line, **keyed(args))
    now = ctx.now()
    ctx.emit(pack_data(after, now), f"Adjusted. {pack_line(after, now)}")
    return 0


def pack_extend(ctx: Context, args: argparse.Namespace) -> int:
    after = ctx.service.extend(args.pack_id, args.until, args.reason, **keyed(args))
    now = ctx.now()
    ctx.emit(pack_data(after, now), f"Extended. {pack_line(after, now)}")
    return 0


def pack_hold(ctx: Context, args: argparse.Namespace) -> int:
    after = ctx.service.hold(args.pack_id, args.start, args.until, args.reason or "", **keyed(args))
    now = ctx.now()
    ctx.emit(pack_data(after, now), f"On hold. {pack_line(after, now)}")
    return 0


def pack_end_hold(ctx: Context, args: argparse.Namespace) -> int:
    after = ctx.service.end_hold(args.pack_id, args.on, args.reason or "", **keyed(args))
    now = ctx.now()
    ctx.emit(pack_data(after, now), f"Hold ended. {pack_line(after, now)}")
    return 0


def pack_transfer(ctx: Context, args: argparse.Namespace) -> int:
    after = ctx.service.transfer(
        args.pack_id,
        args.client_id,
        new_pack_id=args.pack_id_new,
        reason=args.reason or "",
        **keyed(args),
    )
    now = ctx.now()
    ctx.emit(
        pack_data(after, now),
        f"Transferred {args.pack_id} to {after.client_id}: {pack_line(after, now)}",
    )
    return 0


def pack_share(ctx: Context, args: argparse.Namespace) -> int:
    after = ctx.service.share(args.pack_id, args.client_id, **keyed(args))
    now = ctx.now()
    ctx.emit(
        pack_data(after, now),
        f"{after.pack_id} is shared with {args.client_id}: {pack_line(after, now)}",
    )
    return 0


def pack_unshare(ctx: Context, args: argparse.Namespace) -> int:
    after = ctx.service.unshare(args.pack_id, args.client_id, **keyed(args))
    now = ctx.now()
    lines = [f"{after.pack_id} is no longer shared with {args.client_id}: {pack_line(after, now)}"]
    used = sum(u.appointment.client_id == args.client_id for u in after.usages)
    if used:
        what = "1 session" if used == 1 else f"{used} sessions"
        lines.append(f"What {args.client_id} used ({what}) stays used and numbered.")
    ctx.emit(pack_data(after, now), lines)
    return 0


def pack_close(ctx: Context, args: argparse.Namespace) -> int:
    closure = ctx.service.close(args.pack_id, args.reason or "", **keyed(args))
    now = ctx.now()
    data = {
        "pack": pack_data(closure.pack, now),
        "remaining": jsonable(closure.remaining),
        "refundable": jsonable(closure.refundable),
    }
    ctx.emit(
        data,
        f"Closed {args.pack_id}: {format_amount(closure.remaining)} unused, "
        f"refundable {closure.refundable}.",
    )
    return 0


def pack_void(ctx: Context, args: argparse.Namespace) -> int:
    after = ctx.service.void(args.pack_id, args.reason or "", **keyed(args))
    ctx.emit(pack_data(after, ctx.now()), f"Voided {args.pack_id}.")
    return 0


# Finding packs -----------------------------------------------------------------------------


def packs_find(ctx: Context, args: argparse.Namespace) -> int:
    query = _query(ctx, args)
    shown_at = args.as_of or ctx.now()
    if args.limit is None:
        found, cursor = _every_page(ctx, query, args.after), None
    else:
        page = ctx.service.find_packs(query, after=args.after, limit=args.limit)
        found, cursor = list(page.packs), page.next_cursor
    lines = [pack_line(p, shown_at) for p in found] or ["No packs match."]
    if cursor is not None:
        lines.append(f"More: --after {cursor}")
    data = {"packs": [pack_data(p, shown_at) for p in found], "next_cursor": cursor}
    ctx.emit(data, lines)
    return 0


def _query(ctx: Context, args: argparse.Namespace) -> PackQuery:
    if args.as_of is not None and not args.status:
        raise UsageError("--as-of gives the instant of --status: give --status too")
    window: tuple[date | None, date | None] = (None, None)
    if args.expiring_within is not None:
        today = ctx.service.today()
        window = (today, args.expiring_within.after(today))
    statuses = [PackStatus(s) for s in args.status] if args.status else None
    return PackQuery(
        statuses=statuses,
        as_of=(args.as_of or ctx.now()) if statuses else None,
        expiring_from=window[0],
        expiring_to=window[1],
        at_most_left=args.low,
        template_id=args.template,
    )


def _every_page(ctx: Context, query: PackQuery, after: str | None) -> list[PackState]:
    found: list[PackState] = []
    while True:
        page = ctx.service.find_packs(query, after=after, limit=MAX_PAGE)
        found.extend(page.packs)
        if page.next_cursor is None:
            return found
        after = page.next_cursor


# Client preference -------------------------------------------------------------------------


def client_prefer(ctx: Context, args: argparse.Namespace) -> int:
    # Only --clear removes a preference: an empty --pack is refused as a usage error.
    preference: Preference | None = None
    if args.pack is not None:
        preference = PreferPack(args.pack)
    elif args.template is not None:
        preference = PreferTemplate(args.template)
    elif args.service is not None:
        preference = PreferService(args.service)
    ctx.service.set_preference(args.client_id, preference, **keyed(args))
    ctx.emit(
        {"client_id": args.client_id, "preference": jsonable(preference)},
        f"{args.client_id}: {preference_text(preference)}.",
    )
    return 0


def client_show(ctx: Context, args: argparse.Namespace) -> int:
    preference = ctx.service.preference(args.client_id)
    packs = ctx.service.client_packs(args.client_id)
    now = ctx.now()
    lines = [f"{args.client_id}: {preference_text(preference)}."]
    lines += [f"  {pack_line(p, now)}" for p in packs] or ["  no packs"]
    data = {
        "client_id": args.client_id,
        "preference": jsonable(preference),
        "packs": [pack_data(p, now) for p in packs],
    }
    ctx.emit(data, lines)
    return 0


# Parsers -----------------------------------------------------------------------------------


def register(top: Subparsers, common: argparse.ArgumentParser) -> None:
    _templates(top, common)
    _packs(top, common)
    _find(top, common)
    _clients(top, common)


def _find(top: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        top,
        "packs",
        help="the practice's packs that match every filter given, by pack id",
        example="sessionpacks packs --status open --expiring-within 30d\n"
        "sessionpacks packs --status open --low 1 --json\n"
        "sessionpacks packs --template physio-10 --limit 50",
        run=packs_find,
        common=common,
    )
    p.add_argument(
        "--status",
        action="append",
        choices=[s.value for s in PackStatus],
        help="status as of --as-of (default: now); repeat for any of several",
    )
    p.add_argument(
        "--as-of", metavar="INSTANT", type=instant, help="the instant of --status (ISO 8601)"
    )
    p.add_argument(
        "--expiring-within",
        metavar="PERIOD",
        type=within,
        help="an expiry date from today to today plus PERIOD (30d, 4w, 3m, 1y, '30 days'),"
        " whatever the status: add --status open for the packs still usable",
    )
    p.add_argument(
        "--low",
        metavar="AMOUNT",
        type=left,
        help="at most AMOUNT left: sessions (1), a duration for hours packs (90m), money"
        " with its currency ('20.00 AUD'); whatever the status",
    )
    p.add_argument("--template", metavar="ID", type=identifier, help="opened from this template")
    p.add_argument(
        "--limit",
        metavar="N",
        type=positive_int,
        help=f"one page of at most N packs (up to {MAX_PAGE}) and the cursor of the next"
        " (default: every page)",
    )
    p.add_argument(
        "--after",
        metavar="CURSOR",
        type=nonblank,
        help="start after this cursor (a page's 'More: --after')",
    )


def _templates(top: Subparsers, common: argparse.ArgumentParser) -> None:
    verbs = add_group(
        top,
        "template",
        help="pack templates: add, list, show, edit",
        example="sessionpacks template list",
    )
    p = add_command(
        verbs,
        "add",
        help="add a template (version 1)",
        example="sessionpacks template add physio-10 --name '10 x Physio' --sessions 10 \\\n"
        "    --price '1000.00 AUD' --valid-for '6 months' --service physio\n"
        "sessionpacks template add rehab --name 'Physio and massage' --price '700.00 AUD' \\\n"
        "    --line Physio=physio:5 --line Massage=massage:2",
        run=template_add,
        common=common,
    )
    p.add_argument("template_id", metavar="TEMPLATE_ID", type=identifier, help="the template's id")
    add_terms_options(p)
    add_idempotency_key(p)
    p = add_command(
        verbs,
        "edit",
        help="edit a template: a new version; open packs keep their terms",
        example="sessionpacks template edit physio-10 --price '950.00 AUD'",
        run=template_edit,
        common=common,
    )
    p.add_argument("template_id", metavar="TEMPLATE_ID", type=identifier, help="the template's id")
    add_terms_options(p, editing=True)
    add_idempotency_key(p)
    add_command(
        verbs,
        "list",
        help="list the templates",
        example="sessionpacks template list",
        run=template_list,
        common=common,
    )
    p = add_command(
        verbs,
        "show",
        help="show a template's terms",
        example="sessionpacks template show physio-10 --version 1",
        run=template_show,
        common=common,
    )
    p.add_argument("template_id", metavar="TEMPLATE_ID", type=identifier, help="the template's id")
    p.add_argument("--version", type=positive_int, help="an earlier version (default: latest)")


def _packs(top: Subparsers, common: argparse.ArgumentParser) -> None:
    verbs = add_group(
        top,
        "pack",
        help="packs: open, list, show, adjust, extend, hold, end-hold, transfer, share, "
        "unshare, close, void",
        example="sessionpacks pack show pk_1234",
    )
    p = add_command(
        verbs,
        "open",
        help="open a pack for a client from their profile (from a template or ad hoc)",
        example="sessionpacks pack open C1 --template physio-10\n"
        "sessionpacks pack open C1 --name 'Goodwill 2' --sessions 2 --price '0 AUD'\n"
        "sessionpacks pack open C1 --template physio-10 --share-with C2 --share-with C3\n"
        "sessionpacks pack open C1 --name 'Physio and massage' --price '700.00 AUD' \\\n"
        "    --line Physio=physio:5 --line Massage=massage:2",
        run=pack_open,
        common=common,
    )
    p.add_argument(
        "client_id", metavar="CLIENT_ID", type=identifier, help="the client's id (the host's)"
    )
    p.add_argument("--template", metavar="ID", type=identifier, help="open from this template")
    p.add_argument(
        "--pack-id", metavar="ID", type=identifier, help="the new pack's id (default: generated)"
    )
    p.add_argument(
        "--not-charged",
        action="store_true",
        help="do not invoice the pack's price on its own (it goes on its first session)",
    )
    p.add_argument(
        "--share-with",
        metavar="CLIENT_ID",
        action="append",
        type=identifier,
        help="another client who may draw on it beside CLIENT_ID, who pays (a family, a "
        "couple; repeatable)",
    )
    migrated = p.add_argument_group("a pack brought from another system (R19)")
    migrated.add_argument(
        "--opened-on", metavar="DATE", type=day, help="the date it was opened there"
    )
    migrated.add_argument(
        "--used-elsewhere",
        metavar="AMOUNT",
        type=nonblank,
        help="how much was used there, in the pack's metric: 6, 2h, 150.00 (default none)",
    )
    migrated.add_argument(
        "--numbered-elsewhere",
        metavar="N",
        type=whole,
        help="sessions numbered there (default: as many as used, for a sessions pack)",
    )
    add_terms_options(p)
    add_idempotency_key(p)
    p = add_command(
        verbs,
        "list",
        help="a client's packs, open ones first",
        example="sessionpacks pack list C1",
        run=pack_list,
        common=common,
    )
    p.add_argument(
        "client_id", metavar="CLIENT_ID", type=identifier, help="the client's id (the host's)"
    )
    _as_of(p)
    p = add_command(
        verbs,
        "show",
        help="a pack with its numbered sessions and its ledger",
        example="sessionpacks pack show pk_1234\n"
        "sessionpacks pack show pk_1234 --as-of 2026-03-31T23:59+11:00  # as it was then",
        run=pack_show,
        common=common,
    )
    p.add_argument("pack_id", metavar="PACK_ID", type=identifier, help="the pack's id")
    _as_of(p)
    p = add_command(
        verbs,
        "adjust",
        help="credit (+) or debit (-) a pack, with a reason",
        example="sessionpacks pack adjust pk_1234 +1 --reason 'goodwill session'\n"
        "sessionpacks pack adjust pk_1234 --reason correction -- -30m  # -- before a -duration\n"
        "sessionpacks pack adjust pk_1234 +1 --line Massage --reason goodwill  # a bundle's line",
        run=pack_adjust,
        common=common,
    )
    p.add_argument("pack_id", metavar="PACK_ID", type=identifier, help="the pack's id")
    p.add_argument(
        "amount", metavar="AMOUNT", type=nonblank, help="in the pack's metric: +1, -1, 30m, -50.00"
    )
    p.add_argument("--reason", type=reason, required=True, help="why (kept in the ledger)")
    p.add_argument("--currency", type=currency, metavar="CODE", help="for a money amount")
    p.add_argument(
        "--line",
        metavar="NAME",
        type=pack_name,
        help="the line of a bundle to credit or debit: required for a bundle, refused otherwise",
    )
    add_idempotency_key(p)
    p = add_command(
        verbs,
        "extend",
        help="move a pack's expiry date later",
        example="sessionpacks pack extend pk_1234 2026-09-01 --reason 'away for surgery'",
        run=pack_extend,
        common=common,
    )
    p.add_argument("pack_id", metavar="PACK_ID", type=identifier, help="the pack's id")
    p.add_argument("until", metavar="DATE", type=day, help="the new expiry date")
    p.add_argument("--reason", type=reason, required=True, help="why (kept in the ledger)")
    add_idempotency_key(p)
    _holds(verbs, common)
    _transfer(verbs, common)
    _sharing(verbs, common)
    for name, run, help_text in (
        ("close", pack_close, "close a pack early: no further use; shows the refundable value"),
        ("void", pack_void, "void a pack opened in error (no active sessions)"),
    ):
        p = add_command(
            verbs,
            name,
            help=help_text,
            example=f"sessionpacks pack {name} pk_1234 --reason 'moved interstate'",
            run=run,
            common=common,
        )
        p.add_argument("pack_id", metavar="PACK_ID", type=identifier, help="the pack's id")
        # No string default: argparse would run it through reason(), which refuses "".
        p.add_argument("--reason", type=reason, help="why (kept in the ledger)")
        add_idempotency_key(p)


def _as_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of",
        metavar="INSTANT",
        type=instant,
        help="as the ledger said at this instant (ISO 8601), from the entries recorded by then",
    )


def _transfer(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        verbs,
        "transfer",
        help="move what remains of a pack to a new pack for another client (not refundable)",
        example="sessionpacks pack transfer pk_1234 C3 --reason 'given to her partner'",
        run=pack_transfer,
        common=common,
    )
    p.add_argument("pack_id", metavar="PACK_ID", type=identifier, help="the pack's id")
    p.add_argument(
        "client_id", metavar="CLIENT_ID", type=identifier, help="the client who receives it"
    )
    p.add_argument(
        "--pack-id",
        dest="pack_id_new",
        metavar="ID",
        type=identifier,
        help="the new pack's id (default: generated)",
    )
    p.add_argument("--reason", type=reason, help="why (kept in both ledgers)")
    add_idempotency_key(p)


def _sharing(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    """R20: the clients beside its owner who may draw on a pack."""
    for name, run, help_text, example, whose in (
        (
            "share",
            pack_share,
            "let another client draw on a pack (a family, a couple): numbering runs across all",
            "sessionpacks pack share pk_1234 C2",
            "the client who may draw on it",
        ),
        (
            "unshare",
            pack_unshare,
            "stop a client drawing on a pack: refused while an appointment of theirs to come "
            "uses it",
            "sessionpacks pack unshare pk_1234 C2",
            "the client who may no longer draw on it",
        ),
    ):
        p = add_command(verbs, name, help=help_text, example=example, run=run, common=common)
        p.add_argument("pack_id", metavar="PACK_ID", type=identifier, help="the pack's id")
        p.add_argument("client_id", metavar="CLIENT_ID", type=identifier, help=whose)
        add_idempotency_key(p)


def _holds(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        verbs,
        "hold",
        help="put a pack on hold (a freeze): no use inside it, and the expiry moves later",
        example="sessionpacks pack hold pk_1234 2026-04-01 2026-04-15 --reason travel",
        run=pack_hold,
        common=common,
    )
    p.add_argument("pack_id", metavar="PACK_ID", type=identifier, help="the pack's id")
    p.add_argument("start", metavar="FROM", type=day, help="the first date on hold")
    p.add_argument("until", metavar="UNTIL", type=day, help="the first date usable again")
    p.add_argument("--reason", type=reason, help="why (kept in the ledger)")
    add_idempotency_key(p)
    p = add_command(
        verbs,
        "end-hold",
        help="end a pack's hold early: usable again from a date, the expiry moves back",
        example="sessionpacks pack end-hold pk_1234 2026-04-08",
        run=pack_end_hold,
        common=common,
    )
    p.add_argument("pack_id", metavar="PACK_ID", type=identifier, help="the pack's id")
    p.add_argument("on", metavar="DATE", type=day, help="the first date usable again")
    p.add_argument("--reason", type=reason, help="why (kept in the ledger)")
    add_idempotency_key(p)


def _clients(top: Subparsers, common: argparse.ArgumentParser) -> None:
    verbs = add_group(
        top,
        "client",
        help="a client's preferred service, template or pack",
        example="sessionpacks client show C1",
    )
    p = add_command(
        verbs,
        "prefer",
        help="set (or clear) a client's preferred service, template or pack",
        example="sessionpacks client prefer C1 --template physio-10\n"
        "sessionpacks client prefer C1 --clear",
        run=client_prefer,
        common=common,
    )
    p.add_argument(
        "client_id", metavar="CLIENT_ID", type=identifier, help="the client's id (the host's)"
    )
    choice = p.add_mutually_exclusive_group(required=True)
    choice.add_argument(
        "--pack", metavar="ID", type=identifier, help="use this pack while it can be used"
    )
    choice.add_argument(
        "--template", metavar="ID", type=identifier, help="use (or open) a pack from this template"
    )
    choice.add_argument(
        "--service", metavar="ID", type=identifier, help="no pack: bill at this service's price"
    )
    choice.add_argument(
        "--clear", action="store_true", help="remove the preference (the only way to remove it)"
    )
    add_idempotency_key(p)
    p = add_command(
        verbs,
        "show",
        help="a client's preference and packs",
        example="sessionpacks client show C1",
        run=client_show,
        common=common,
    )
    p.add_argument(
        "client_id", metavar="CLIENT_ID", type=identifier, help="the client's id (the host's)"
    )
