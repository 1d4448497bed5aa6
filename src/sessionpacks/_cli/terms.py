"""The options that describe a pack's terms, shared by ``template add|edit`` and ``pack open``."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

import attrs

from sessionpacks._limits import INT64_MAX
from sessionpacks.model import (
    Allowance,
    BundleLine,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    ExpiryRule,
    Metric,
    Money,
    NoExpiry,
    PackTerms,
    PerPack,
    PerSession,
    Policies,
    Pricing,
    Tier,
    amount,
)

from .base import reading
from .store import UsageError
from .values import (
    MoneyText,
    amount_of,
    currency,
    day,
    description,
    duration,
    identifier,
    money,
    nonblank,
    pack_name,
    period,
    positive_int,
    shown,
)

__all__ = ["LineText", "add_terms_options", "bundle_line", "new_terms", "term_changes"]


def tier(text: str) -> tuple[int, MoneyText]:
    """``2=120.00``: from session 2 on, 120.00 each."""
    number, sep, price = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not a tier: write FROM_SESSION=PRICE, e.g. 2=120.00"
        )
    return positive_int(number), money(price)


@attrs.frozen
class LineText:
    """One ``--line`` as typed: its AMOUNT is read later, in the pack's metric (R24)."""

    name: str
    services: frozenset[str]
    amount: str


_WHOLE = re.compile(r"[+-]?[0-9]+")
_LINE_EXAMPLE = "write NAME=SERVICE[,SERVICE...]:AMOUNT, e.g. Massage=massage:2"


def bundle_line(text: str) -> LineText:
    """``Massage=massage:2``: a line of a bundle, its name, its services and its amount."""
    name, equals, rest = text.partition("=")
    # The last colon: a service id may hold one, an amount (2, 90m, 300.00 AUD) never does.
    services, colon, allowance = rest.rpartition(":")
    if not equals or not colon:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a bundle line: {_LINE_EXAMPLE}")
    try:
        ids = frozenset(identifier(s.strip()) for s in services.split(","))
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{shown(text)}: a service {error}") from None
    try:
        return LineText(pack_name(name.strip()), ids, nonblank(allowance.strip()))
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{shown(text)}: {error}") from None


def add_terms_options(parser: argparse.ArgumentParser, *, editing: bool = False) -> None:
    """The terms options; when ``editing``, every option is optional and only changes."""
    terms = parser.add_argument_group("terms")
    terms.add_argument("--name", type=pack_name, help="the pack's name, e.g. '10 x Physio'")
    terms.add_argument("--description", type=description, help="a longer description")
    allowance = terms.add_mutually_exclusive_group()
    allowance.add_argument("--sessions", type=positive_int, metavar="N", help="N sessions")
    allowance.add_argument(
        "--hours", type=duration, metavar="DURATION", help="a duration: 5h, 90m, PT10H"
    )
    allowance.add_argument(
        "--money", type=money, metavar="AMOUNT", help="a money balance (face value): 500.00"
    )
    pricing = terms.add_mutually_exclusive_group()
    pricing.add_argument(
        "--price",
        type=money,
        metavar="AMOUNT",
        help="one price for the whole pack (a money pack defaults to its face value)",
    )
    pricing.add_argument(
        "--per-session", type=money, metavar="AMOUNT", help="a price per session (session 1 on)"
    )
    terms.add_argument(
        "--reduced-rate",
        type=money,
        metavar="AMOUNT",
        help="with --per-session: the price of every session after the first",
    )
    terms.add_argument(
        "--tier",
        type=tier,
        action="append",
        metavar="N=AMOUNT",
        help="with --per-session: from session N on, AMOUNT each (repeatable)",
    )
    terms.add_argument(
        "--currency",
        type=currency,
        metavar="CODE",
        help="ISO 4217 currency of amounts written without one, e.g. AUD",
    )
    expiry = terms.add_mutually_exclusive_group()
    expiry.add_argument("--expires-on", type=day, metavar="DATE", help="a fixed expiry date")
    expiry.add_argument(
        "--valid-for", type=period, metavar="PERIOD", help="expires PERIOD after opening: 6 months"
    )
    expiry.add_argument(
        "--valid-after-first-use",
        type=period,
        metavar="PERIOD",
        help="expires PERIOD after the first session: P3M",
    )
    if editing:
        expiry.add_argument("--no-expiry", action="store_true", help="remove the expiry")
    terms.add_argument(
        "--service",
        action="append",
        metavar="ID",
        type=identifier,
        help="a service the pack covers (repeatable; none: any service)",
    )
    if editing:
        terms.add_argument("--any-service", action="store_true", help="cover any service")
    _add_line_options(terms, editing)
    terms.add_argument(
        "--late-cancel-notice",
        type=duration,
        metavar="DURATION",
        help="notice below which a cancellation is late (default 24h)",
    )
    terms.add_argument(
        "--late-cancel",
        choices=("consumes", "releases"),
        help="whether a late cancellation still uses the session (default releases)",
    )
    terms.add_argument(
        "--no-show",
        choices=("consumes", "releases"),
        help="whether a no-show still uses the session (default releases)",
    )
    terms.add_argument(
        "--low-balance",
        metavar="AMOUNT",
        type=nonblank,
        help="emit LowBalance when this much is left: 1 (session), 1h, 50.00"
        + ("; 'none' removes it" if editing else ""),
    )
    terms.add_argument(
        "--remind-days",
        metavar="DAYS",
        type=nonblank,
        help="the sweep emits ExpiringSoon this many days before the expiry date (1 to 366)"
        + ("; 'none' removes it" if editing else ""),
    )


def _add_line_options(terms: argparse._ArgumentGroup, editing: bool) -> None:
    lines = terms.add_mutually_exclusive_group() if editing else terms
    lines.add_argument(
        "--line",
        type=bundle_line,
        action="append",
        metavar="NAME=SERVICE[,SERVICE...]:AMOUNT",
        help="a line of a bundle (repeatable): its services draw on AMOUNT of their own, in "
        "the pack's metric (Physio=physio:5, Massage=massage:90m, Retail=shop:50.00); the "
        "allowance defaults to the lines' sum, and a bundle is priced --price per pack"
        + ("; the lines given replace the template's" if editing else ""),
    )
    if editing:
        lines.add_argument(
            "--no-lines", action="store_true", help="no longer a bundle: remove its lines"
        )


def _currency(args: argparse.Namespace, fallback: str | None = None) -> str | None:
    given: str | None = args.currency
    if given:
        return given
    for value in (args.money, args.price, args.per_session, args.reduced_rate):
        if isinstance(value, MoneyText) and value.currency:
            return value.currency
    for line in args.line or ():
        try:
            found = money(line.amount).currency
        except argparse.ArgumentTypeError:
            continue  # not money, or money the line's own reading refuses later
        if found:
            return found
    return fallback


def _allowance(args: argparse.Namespace, code: str | None) -> Allowance | None:
    if args.sessions is not None:
        return Allowance.sessions(args.sessions)
    if args.hours is not None:
        return Allowance.hours(args.hours)
    if args.money is not None:
        with reading("--money"):
            return Allowance.money(args.money.resolve(code))
    return None


def _line_metric(text: str) -> Metric:
    """The metric a line's AMOUNT is written in, when no --sessions, --hours or --money says
    it: a whole number is sessions, money is money, a duration hours."""
    if _WHOLE.fullmatch(text.strip()):  # even one too large: refused as sessions, not money
        return Metric.SESSIONS
    if _reads(money, text):
        return Metric.MONEY
    if _reads(lambda t: amount_of(Metric.HOURS, t, None, signed=True), text):
        return Metric.HOURS
    raise argparse.ArgumentTypeError(
        f"{shown(text)} is not an amount: write sessions (5), a duration (90m) or money "
        "(300.00 AUD)"
    )


def _reads(reader: Callable[[str], object], text: str) -> bool:
    try:
        reader(text)
    except argparse.ArgumentTypeError:
        return False
    return True


def _lines(
    args: argparse.Namespace, metric: Metric | None, code: str | None
) -> tuple[BundleLine, ...] | None:
    """The bundle's lines of ``--line`` (R24), their amounts in ``metric`` (else in the metric
    the first one is written in); ``None`` when none is given."""
    given: list[LineText] = args.line or []
    if not given:
        return None
    with reading("--line"):
        metric = metric or _line_metric(given[0].amount)
        amounts = [amount_of(metric, line.amount, code) for line in given]
    return tuple(
        BundleLine(line.name, line.services, Allowance(metric, value))
        for line, value in zip(given, amounts, strict=True)
    )


def _sum(lines: tuple[BundleLine, ...]) -> Allowance:
    """The allowance of a bundle given only its lines: their sum."""
    first = lines[0].allowance
    total = sum(line.allowance.units for line in lines)
    if total > INT64_MAX:  # past what any amount holds (and what timedelta() can be given)
        raise UsageError(
            f"argument --line: the lines add up to more than {INT64_MAX} "
            f"({first.metric.value} units): give fewer or smaller lines",
            argument="--line",
        )
    currency = first.amount.currency if isinstance(first.amount, Money) else ""
    return Allowance(first.metric, amount(first.metric, total, currency))


def _pricing(
    args: argparse.Namespace, code: str | None, allowance: Allowance | None
) -> Pricing | None:
    if args.price is not None:
        with reading("--price"):
            return PerPack(args.price.resolve(code))
    extra: list[tuple[int, MoneyText]] = list(args.tier or [])
    if args.reduced_rate is not None:
        extra.insert(0, (2, args.reduced_rate))
    if args.per_session is None:
        if extra:
            raise UsageError("--reduced-rate and --tier need --per-session (the first price)")
        if allowance is not None and allowance.metric is Metric.MONEY:
            assert isinstance(allowance.amount, Money)
            return PerPack(allowance.amount)
        return None
    with reading("--per-session"):
        tiers = [Tier(1, args.per_session.resolve(code))]
    with reading("--reduced-rate/--tier"):
        tiers += [Tier(n, price.resolve(code)) for n, price in sorted(extra, key=lambda t: t[0])]
    return PerSession(tuple(tiers))


def _expiry(args: argparse.Namespace) -> ExpiryRule | None:
    if args.expires_on is not None:
        return ExpiresOn(args.expires_on)
    if args.valid_for is not None:
        return ExpiresAfterOpening(args.valid_for)
    if args.valid_after_first_use is not None:
        return ExpiresAfterFirstUse(args.valid_after_first_use)
    if getattr(args, "no_expiry", False):
        return NoExpiry()
    return None


_POLICY_OPTIONS = ("late_cancel_notice", "late_cancel", "no_show", "low_balance", "remind_days")


def _policies(args: argparse.Namespace, base: Policies, metric: Metric, code: str) -> Policies:
    changes: dict[str, Any] = {}
    if args.late_cancel_notice is not None:
        changes["late_cancel_notice"] = args.late_cancel_notice
    if args.late_cancel is not None:
        changes["late_cancel_consumes"] = args.late_cancel == "consumes"
    if args.no_show is not None:
        changes["no_show_consumes"] = args.no_show == "consumes"
    if args.low_balance is not None:
        text = args.low_balance.strip()
        with reading("--low-balance"):
            changes["low_balance_at"] = (
                None if text.lower() == "none" else amount_of(metric, text, code)
            )
    if args.remind_days is not None:
        changes["remind_days_before_expiry"] = _remind_days(args.remind_days)
    return attrs.evolve(base, **changes) if changes else base


def _remind_days(text: str) -> int | None:
    cleaned = text.strip()
    if cleaned.lower() == "none":
        return None
    with reading("--remind-days"):
        return positive_int(cleaned)


def new_terms(args: argparse.Namespace) -> PackTerms:
    """Terms from the options, for a new template or an ad hoc pack."""
    code = _currency(args)
    allowance = _allowance(args, code)
    lines = _lines(args, allowance.metric if allowance else None, code)
    if allowance is None and lines:
        allowance = _sum(lines)
    if args.name is None or allowance is None:
        raise UsageError(
            "new terms need --name and one of --sessions, --hours, --money (or --line)"
        )
    pricing = _pricing(args, code, allowance)
    if pricing is None:
        raise UsageError("new terms need --price (per pack) or --per-session")
    policies = _policies(args, Policies(), allowance.metric, pricing.currency)
    return PackTerms(
        name=args.name,
        allowance=allowance,
        pricing=pricing,
        expiry=_expiry(args) or NoExpiry(),
        eligible_services=frozenset(args.service or ()),
        policies=policies,
        description=args.description or "",
        lines=lines or (),
    )


def _edited_allowance(
    args: argparse.Namespace, base: PackTerms, code: str | None, changes: dict[str, Any]
) -> Allowance | None:
    """The allowance and lines an edit gives, into ``changes``: lines replace the template's,
    read in the metric of --sessions, --hours or --money if given, else the template's; their
    sum is the allowance unless one is given (R24)."""
    allowance = _allowance(args, code)
    lines = _lines(args, (allowance or base.allowance).metric, code)
    if lines is not None:
        changes["lines"] = lines
        allowance = allowance or _sum(lines)
    elif args.no_lines:
        changes["lines"] = ()
    if allowance is not None:
        changes["allowance"] = allowance
    return allowance


def term_changes(args: argparse.Namespace, base: PackTerms) -> dict[str, Any]:
    """The fields of ``base`` that the options change, for ``template edit``."""
    code = _currency(args, base.currency)
    changes: dict[str, Any] = {}
    for name in ("name", "description"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    allowance = _edited_allowance(args, base, code, changes)
    pricing = _pricing(args, code, allowance)
    if pricing is not None:
        changes["pricing"] = pricing
    expiry = _expiry(args)
    if expiry is not None:
        changes["expiry"] = expiry
    if args.any_service:
        changes["eligible_services"] = frozenset()
    elif args.service:
        changes["eligible_services"] = frozenset(args.service)
    metric = (allowance or base.allowance).metric
    # Given, not merely different: a retry under the same --idempotency-key must send the
    # same changes as the first call, though the template already holds them (R27).
    if any(getattr(args, option) is not None for option in _POLICY_OPTIONS):
        changes["policies"] = _policies(args, base.policies, metric, code or base.currency)
    if not changes:
        raise UsageError("nothing to change: give at least one terms option")
    return changes
