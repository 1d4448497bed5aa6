"""Hypothesis strategies that build only valid sessionpacks values.

Install with the ``testing`` extra (it brings hypothesis); the core never imports this module.
Every strategy respects the cross-field rules of :mod:`sessionpacks.model`: a money pack is
priced per pack in its allowance's currency, a low-balance threshold lies strictly between zero
and the allowance, tiers start at session 1 and increase, an appointment is priced in the
currency asked for. Strategies for the public value types are registered with hypothesis, so
``st.from_type(PackTemplate)``, ``st.from_type(Money)``, ``st.from_type(Appointment)``,
``st.from_type(PackTerms)`` and the others work: by importing this module, or, with no import
at all, through hypothesis's ``sessionpacks`` entry point.

Appointments are drawn on local days of a practice's time zone, with the days a daylight-saving
change happens on drawn often (Australia/Sydney: the first Sunday of April and of October), since
validity is judged on the local date (R5).

Workflows are lists of :data:`Step` values (book, cancel, reschedule, late cancel, no-show,
adjust, extend, close, sweep, a wait that moves the clock, and, if asked for, issuing an
invoice line and putting on or ending a hold): the steps are valid values, but whether the
domain accepts each one depends on the state reached, which is what the tests are for.

:func:`migrations` draws the :class:`~sessionpacks.ledger.Migration` of a pack brought from
another system (R19), valid for the terms it is drawn for, and :func:`holds` the dates of a
hold (R22).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TypeAlias
from zoneinfo import ZoneInfo

import attrs
from hypothesis import strategies as st

from sessionpacks._currencies import MINOR_UNITS
from sessionpacks._limits import MAX_REMIND_DAYS
from sessionpacks.ledger import Migration
from sessionpacks.model import (
    Allowance,
    Amount,
    Appointment,
    BundleLine,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    ExpiryRule,
    Metric,
    Money,
    NoExpiry,
    PackTemplate,
    PackTerms,
    Period,
    PerPack,
    PerSession,
    Policies,
    Practice,
    PreferPack,
    PreferService,
    PreferTemplate,
    Pricing,
    Service,
    Tier,
    amount,
)

__all__ = [
    "DST_ZONES",
    "SERVICE_IDS",
    "Adjust",
    "Book",
    "Cancel",
    "Close",
    "EndHold",
    "Extend",
    "Invoice",
    "LateCancel",
    "NoShow",
    "PutOnHold",
    "Reschedule",
    "Share",
    "Step",
    "Sweep",
    "Unshare",
    "Wait",
    "adjustments",
    "allowances",
    "appointments",
    "bundle_lines",
    "currencies",
    "dst_days",
    "durations",
    "expiry_rules",
    "holds",
    "identifiers",
    "local_days",
    "local_starts",
    "metrics",
    "migrations",
    "money",
    "pack_terms",
    "periods",
    "policies",
    "practices",
    "pricings",
    "services",
    "templates",
    "tiers",
    "timezones",
    "workflows",
]

DST_ZONES: tuple[str, ...] = (
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Europe/London",
    "America/New_York",
    "Pacific/Auckland",
)
"""Time zones with daylight saving (Lord Howe shifts by half an hour)."""

_FIXED_ZONES: tuple[str, ...] = ("UTC", "Australia/Brisbane", "Asia/Kolkata")

SERVICE_IDS: tuple[str, ...] = ("physio", "massage", "pilates")
"""The service ids the strategies draw from by default."""

_DEFAULT_START = date(2026, 1, 1)
_DEFAULT_END = date(2026, 12, 31)


# Identifiers, currencies, money ------------------------------------------------------------


def identifiers(prefix: str = "", *, max_size: int = 8) -> st.SearchStrategy[str]:
    """Ids accepted everywhere an id is: non-empty, no surrounding spaces, ``prefix`` first."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
    body = st.text(alphabet, min_size=0 if prefix else 1, max_size=max_size)
    return body.map(lambda text: prefix + text)


def currencies(*, codes: Sequence[str] | None = None) -> st.SearchStrategy[str]:
    """ISO 4217 codes the model accepts, shrinking towards AUD; ``codes`` narrows the choice."""
    chosen = list(codes) if codes is not None else ["AUD", "USD", "JPY", "BHD", "EUR", "CLF"]
    chosen += [] if codes is not None else sorted(set(MINOR_UNITS) - set(chosen))
    unknown = [c for c in chosen if c not in MINOR_UNITS]
    if unknown or not chosen:
        raise ValueError(f"codes={codes!r}: not active ISO 4217 codes: {unknown}")
    return st.sampled_from(chosen)


def _minor(value: Decimal | int | str, currency: str) -> int:
    return int(Decimal(value).scaleb(MINOR_UNITS[currency]).to_integral_value())


@st.composite
def money(
    draw: st.DrawFn,
    currency: str | st.SearchStrategy[str] | None = None,
    *,
    min_amount: Decimal | int | str = 0,
    max_amount: Decimal | int | str = 10_000,
) -> Money:
    """Money in ``currency`` (any code if ``None``) exact to its minor unit, within the bounds.

    The bounds are in major units (dollars); negative amounts are drawn only if asked for.
    """
    code = _pick_currency(draw, currency)
    low, high = _minor(min_amount, code), _minor(max_amount, code)
    return Money.from_minor(draw(st.integers(low, high)), code)


def _pick_currency(draw: st.DrawFn, currency: str | st.SearchStrategy[str] | None) -> str:
    if currency is None:
        return draw(currencies())
    if isinstance(currency, str):
        return currency
    return draw(currency)


# Allowances, periods, expiry, pricing ------------------------------------------------------


def metrics() -> st.SearchStrategy[Metric]:
    """Any metric, shrinking towards sessions."""
    return st.sampled_from([Metric.SESSIONS, Metric.HOURS, Metric.MONEY])


@st.composite
def allowances(
    draw: st.DrawFn,
    metric: Metric | None = None,
    *,
    currency: str | st.SearchStrategy[str] | None = None,
    max_sessions: int = 20,
) -> Allowance:
    """An allowance of ``metric`` (any if ``None``): 1..``max_sessions`` sessions, 1 to
    ``max_sessions`` hours in quarter hours, or 50 to 100 x ``max_sessions`` of ``currency``."""
    chosen = metric if metric is not None else draw(metrics())
    if chosen is Metric.SESSIONS:
        return Allowance.sessions(draw(st.integers(1, max_sessions)))
    if chosen is Metric.HOURS:
        return Allowance.hours(timedelta(minutes=15 * draw(st.integers(4, 4 * max_sessions))))
    return Allowance.money(draw(money(currency, min_amount=50, max_amount=100 * max_sessions)))


@st.composite
def periods(draw: st.DrawFn) -> Period:
    """A non-empty calendar period of at most a few years, months, weeks and days."""
    years, months, weeks, days = draw(
        st.tuples(
            st.integers(0, 2), st.integers(0, 13), st.integers(0, 6), st.integers(0, 40)
        ).filter(any)
    )
    return Period(years=years, months=months, weeks=weeks, days=days)


def expiry_rules(
    *,
    kinds: Sequence[type] = (NoExpiry, ExpiresOn, ExpiresAfterOpening, ExpiresAfterFirstUse),
    min_date: date = _DEFAULT_START,
    max_date: date = date(2028, 12, 31),
) -> st.SearchStrategy[ExpiryRule]:
    """Expiry rules of the given ``kinds`` (all four by default); fixed dates in the range."""
    built: dict[type, st.SearchStrategy[ExpiryRule]] = {
        NoExpiry: st.just(NoExpiry()),
        ExpiresOn: st.dates(min_date, max_date).map(ExpiresOn),
        ExpiresAfterOpening: periods().map(ExpiresAfterOpening),
        ExpiresAfterFirstUse: periods().map(ExpiresAfterFirstUse),
    }
    unknown = [k for k in kinds if k not in built]
    if unknown or not kinds:
        raise ValueError(f"kinds={kinds!r}: not expiry rule types: {unknown}")
    return st.one_of([built[k] for k in kinds])


@st.composite
def tiers(
    draw: st.DrawFn, currency: str | st.SearchStrategy[str] | None = None, *, max_tiers: int = 4
) -> tuple[Tier, ...]:
    """Price tiers in one currency starting at session 1 at increasing session numbers."""
    code = _pick_currency(draw, currency)
    later = draw(st.lists(st.integers(2, 30), max_size=max_tiers - 1, unique=True))
    starts = [1, *sorted(later)]
    prices = draw(st.lists(money(code, max_amount=500), min_size=len(starts), max_size=len(starts)))
    return tuple(Tier(n, price) for n, price in zip(starts, prices, strict=True))


@st.composite
def pricings(
    draw: st.DrawFn,
    currency: str | st.SearchStrategy[str] | None = None,
    *,
    metric: Metric | None = None,
) -> Pricing:
    """Per-pack or per-session pricing in ``currency``; a money pack is priced per pack."""
    code = _pick_currency(draw, currency)
    if metric is Metric.MONEY or draw(st.booleans()):
        return PerPack(draw(money(code, max_amount=5000)))
    return PerSession(draw(tiers(code)))


@st.composite
def policies(draw: st.DrawFn, allowance: Allowance | None = None) -> Policies:
    """Late-cancel and no-show policies, maybe an expiry reminder; with ``allowance``, maybe a
    low-balance threshold strictly between zero and it, in its metric."""
    notice = timedelta(hours=draw(st.sampled_from([0, 2, 12, 24, 48])))
    threshold: Amount | None = None
    if allowance is not None and allowance.units > 1 and draw(st.booleans()):
        count = draw(st.integers(1, allowance.units - 1))
        if allowance.metric is Metric.SESSIONS:
            threshold = count
        elif allowance.metric is Metric.HOURS:
            threshold = timedelta(microseconds=count)
        else:
            assert isinstance(allowance.amount, Money)
            threshold = Money.from_minor(count, allowance.amount.currency)
    return Policies(
        late_cancel_notice=notice,
        late_cancel_consumes=draw(st.booleans()),
        no_show_consumes=draw(st.booleans()),
        low_balance_at=threshold,
        remind_days_before_expiry=draw(st.none() | st.integers(1, MAX_REMIND_DAYS)),
    )


_NAMES = st.sampled_from(["10 x Physio", "5 h Massage", "Wellness credit", "Pilates block"])


@st.composite
def pack_terms(
    draw: st.DrawFn,
    metric: Metric | None = None,
    *,
    currency: str | st.SearchStrategy[str] | None = "AUD",
    expiry: st.SearchStrategy[ExpiryRule] | None = None,
    service_ids: Sequence[str] = SERVICE_IDS,
    max_sessions: int = 20,
    bundles: bool = False,
) -> PackTerms:
    """Pack terms of ``metric`` (any if ``None``) in ``currency``, eligible for a subset of
    ``service_ids`` (empty: any service), with an expiry rule from ``expiry``; with
    ``bundles``, now and then a bundle (R24) of :func:`bundle_lines` over ``service_ids``."""
    code = _pick_currency(draw, currency)
    if bundles and len(service_ids) >= 2 and draw(st.booleans()):
        chosen = metric if metric is not None else draw(metrics())
        lines = draw(bundle_lines(chosen, currency=code, service_ids=service_ids))
        return _bundle_terms(draw, lines, code, expiry)
    allowance = draw(allowances(metric, currency=code, max_sessions=max_sessions))
    eligible = draw(st.frozensets(st.sampled_from(list(service_ids)))) if service_ids else None
    return PackTerms(
        name=draw(_NAMES),
        allowance=allowance,
        pricing=draw(pricings(code, metric=allowance.metric)),
        expiry=draw(expiry if expiry is not None else expiry_rules()),
        eligible_services=eligible or frozenset(),
        policies=draw(policies(allowance)),
        description=draw(st.sampled_from(["", "Prepaid sessions"])),
    )


@st.composite
def bundle_lines(
    draw: st.DrawFn,
    metric: Metric = Metric.SESSIONS,
    *,
    currency: str = "AUD",
    service_ids: Sequence[str] = SERVICE_IDS,
    max_lines: int = 3,
    max_sessions: int = 6,
) -> tuple[BundleLine, ...]:
    """Two to ``max_lines`` lines of a bundle (R24) of ``metric``, each of its own services
    among ``service_ids`` (no service on two lines), named after their first service."""
    if len(service_ids) < 2:
        raise ValueError("bundle_lines() needs at least two service_ids")
    order = draw(st.permutations(list(service_ids)))
    count = draw(st.integers(2, min(max_lines, len(order))))
    cuts = sorted(
        draw(st.sets(st.integers(1, len(order) - 1), min_size=count - 1, max_size=count - 1))
    )
    groups = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    return tuple(
        BundleLine(
            group[0].capitalize(),
            group,
            draw(allowances(metric, currency=currency, max_sessions=max_sessions)),
        )
        for group in groups
    )


def _bundle_terms(
    draw: st.DrawFn,
    lines: tuple[BundleLine, ...],
    currency: str,
    expiry: st.SearchStrategy[ExpiryRule] | None,
) -> PackTerms:
    metric = lines[0].allowance.metric
    total = amount(metric, sum(line.allowance.units for line in lines), currency)
    allowance = Allowance(metric, total)
    return PackTerms(
        name=draw(_NAMES),
        allowance=allowance,
        pricing=PerPack(draw(money(currency, max_amount=5000))),
        expiry=draw(expiry if expiry is not None else expiry_rules()),
        policies=draw(policies(allowance)),
        lines=lines,
    )


@st.composite
def templates(
    draw: st.DrawFn,
    metric: Metric | None = None,
    *,
    template_id: str | st.SearchStrategy[str] | None = None,
    currency: str | st.SearchStrategy[str] | None = "AUD",
    expiry: st.SearchStrategy[ExpiryRule] | None = None,
    service_ids: Sequence[str] = SERVICE_IDS,
) -> PackTemplate:
    """A template (version 1..3) with terms from :func:`pack_terms`."""
    tid = draw(identifiers("T") if template_id is None else _strategy(template_id))
    terms = draw(pack_terms(metric, currency=currency, expiry=expiry, service_ids=service_ids))
    return PackTemplate(tid, terms, draw(st.integers(1, 3)))


# Opening balances, holds ---------------------------------------------------------------------


def _used_before(terms: PackTerms) -> st.SearchStrategy[Amount]:
    """An amount of ``terms``' metric from zero to less than its allowance: whole sessions,
    five-minute steps of hours, minor units of money."""
    allowance = terms.allowance.units
    if terms.metric is Metric.SESSIONS:
        return st.integers(0, allowance - 1)
    if terms.metric is Metric.HOURS:
        step = timedelta(minutes=5)
        most = (allowance - 1) // (step // timedelta(microseconds=1))
        return st.integers(0, most).map(lambda n: n * step)
    return st.integers(0, allowance - 1).map(lambda n: Money.from_minor(n, terms.currency))


@st.composite
def migrations(
    draw: st.DrawFn,
    terms: PackTerms,
    *,
    min_date: date = date(2024, 1, 1),
    max_date: date = _DEFAULT_START,
    max_numbered: int = 30,
) -> Migration:
    """A pack with ``terms`` as brought from another system (R19), that
    ``open_pack(..., terms=terms, migrated=...)`` accepts on any day from ``max_date`` on.

    Opened there between the dates (``max_date``, the latest, at most the practice's today
    when the pack is opened here; recent dates drawn often), with ``used`` in the terms' metric
    (and currency) from zero to less than the allowance, ``numbered`` sessions there (for a
    sessions pack at most its allowance, otherwise up to ``max_numbered``) or ``None`` (its
    default: as many as used for a sessions pack), and maybe ``expires_on``, its expiry date
    there, after its opening (it may be past by now)."""
    recent = st.integers(0, 60).map(lambda n: max(min_date, max_date - timedelta(days=n)))
    opened_on = draw(st.one_of(recent, st.dates(min_date, max_date)))
    used = draw(_used_before(terms))
    most = terms.allowance.units if terms.metric is Metric.SESSIONS else max_numbered
    numbered = draw(st.none() | st.integers(0, most))
    later = st.integers(1, 730).map(lambda n: opened_on + timedelta(days=n))
    return Migration(opened_on, used, numbered, draw(st.none() | later))


def holds(
    *,
    min_date: date = _DEFAULT_START,
    max_date: date = _DEFAULT_END,
    max_days: int = 60,
) -> st.SearchStrategy[tuple[date, date]]:
    """The dates of a hold (R22): ``(start, until)``, ``start`` between the dates and
    ``until``, the first date usable again, 1 to ``max_days`` days after it."""
    if max_days < 1:
        raise ValueError(f"max_days={max_days!r}: a hold lasts at least one day")
    return st.tuples(st.dates(min_date, max_date), st.integers(1, max_days)).map(
        lambda pair: (pair[0], pair[0] + timedelta(days=pair[1]))
    )


# Time zones, days, appointments -------------------------------------------------------------


def timezones() -> st.SearchStrategy[str]:
    """IANA zone names, with and without daylight saving, shrinking towards Australia/Sydney."""
    return st.sampled_from([*DST_ZONES, *_FIXED_ZONES])


def practices(timezone: str | None = None) -> st.SearchStrategy[Practice]:
    """A practice in ``timezone`` (any of :func:`timezones` if ``None``)."""
    zones = st.just(timezone) if timezone is not None else timezones()
    return st.builds(Practice, identifiers("clinic-"), zones)


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


@functools.cache
def _transitions(timezone: str, first: date, last: date) -> tuple[date, ...]:
    zone = ZoneInfo(timezone)
    found = []
    day = first
    while day <= last:
        start, end = _day_start(day, zone), _day_start(day + timedelta(days=1), zone)
        if end - start != timedelta(days=1):
            found.append(day)
        day += timedelta(days=1)
    return tuple(found)


def dst_days(
    timezone: str = "Australia/Sydney",
    *,
    min_date: date = _DEFAULT_START,
    max_date: date = _DEFAULT_END,
) -> st.SearchStrategy[date]:
    """The local dates between the bounds on which ``timezone``'s clocks change.

    Australia/Sydney in 2026: 2026-04-05 (a 25-hour day) and 2026-10-04 (a 23-hour day).
    Raises ``ValueError`` if there is none, as for a zone without daylight saving.
    """
    found = _transitions(timezone, min_date, max_date)
    if not found:
        raise ValueError(f"timezone={timezone!r} changes its clocks on no day in the range")
    return st.sampled_from(found)


def local_days(
    timezone: str = "Australia/Sydney",
    *,
    min_date: date = _DEFAULT_START,
    max_date: date = _DEFAULT_END,
) -> st.SearchStrategy[date]:
    """Local dates in the range, with the days around a daylight-saving change drawn often."""
    found = _transitions(timezone, min_date, max_date)
    near = sorted(
        {
            d + timedelta(days=k)
            for d in found
            for k in (-1, 0, 1)
            if min_date <= d + timedelta(days=k) <= max_date
        }
    )
    plain = st.dates(min_date, max_date)
    return st.one_of(plain, st.sampled_from(near)) if near else plain


@st.composite
def local_starts(
    draw: st.DrawFn,
    timezone: str = "Australia/Sydney",
    *,
    days: st.SearchStrategy[date] | None = None,
) -> datetime:
    """An instant on a local day of ``timezone`` (from ``days``), aware in that zone.

    Drawn as minutes into the real (23, 24 or 25 hour) local day, so every instant of a
    daylight-saving day is reachable, the repeated hour included, and none is skipped-over time.
    """
    zone = ZoneInfo(timezone)
    day = draw(days if days is not None else local_days(timezone))
    start = _day_start(day, zone)
    length = _day_start(day + timedelta(days=1), zone) - start
    minutes = draw(st.integers(0, length // timedelta(minutes=5) - 1)) * 5
    return (start + timedelta(minutes=minutes)).astimezone(zone)


def durations() -> st.SearchStrategy[timedelta]:
    """Appointment durations: quarter hours from 15 minutes to 3 hours."""
    return st.integers(1, 12).map(lambda n: timedelta(minutes=15 * n))


def _strategy(value: str | st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    if isinstance(value, str):
        return st.just(value)
    return value


@st.composite
def appointments(
    draw: st.DrawFn,
    client_id: str | st.SearchStrategy[str] = "C1",
    service_id: str | st.SearchStrategy[str] | None = None,
    *,
    timezone: str = "Australia/Sydney",
    currency: str | st.SearchStrategy[str] = "AUD",
    appointment_id: str | st.SearchStrategy[str] | None = None,
    days: st.SearchStrategy[date] | None = None,
    max_price: Decimal | int | str = 300,
) -> Appointment:
    """An appointment of ``client_id`` for ``service_id`` (one of :data:`SERVICE_IDS` if
    ``None``), starting on a local day of ``timezone`` (daylight-saving days drawn often),
    priced in ``currency``."""
    services_ = st.sampled_from(SERVICE_IDS) if service_id is None else service_id
    ids = identifiers("A") if appointment_id is None else appointment_id
    return Appointment(
        id=draw(_strategy(ids)),
        client_id=draw(_strategy(client_id)),
        service_id=draw(_strategy(services_)),
        start=draw(local_starts(timezone, days=days)),
        duration=draw(durations()),
        price=draw(money(currency, max_amount=max_price)),
    )


@st.composite
def services(draw: st.DrawFn, currency: str | st.SearchStrategy[str] = "AUD") -> Service:
    """A service with a default price in ``currency`` and a default duration."""
    return Service(
        id=draw(st.sampled_from(SERVICE_IDS)),
        name=draw(st.sampled_from(["Physio", "Massage", "Pilates"])),
        price=draw(money(currency, max_amount=300)),
        duration=draw(durations()),
    )


# Workflows ---------------------------------------------------------------------------------


@attrs.frozen
class Book:
    """Record the appointment on the pack (again, if it was booked before)."""

    appointment: Appointment


@attrs.frozen
class Cancel:
    """Cancel the appointment now; lateness follows the pack's notice window."""

    appointment_id: str


@attrs.frozen
class LateCancel:
    """A cancellation the receptionist calls late."""

    appointment_id: str


@attrs.frozen
class NoShow:
    """The client did not come."""

    appointment_id: str


@attrs.frozen
class Reschedule:
    """Move the appointment to ``start``."""

    appointment_id: str
    start: datetime


@attrs.frozen
class Adjust:
    """A credit (positive) or debit (negative) in the pack's metric; never zero. Of a bundle,
    of the ``line`` it names (R24)."""

    amount: Amount
    reason: str
    line: str | None = None


@attrs.frozen
class Extend:
    """Move the expiry date ``days`` later than it is when the step runs."""

    days: int
    reason: str


@attrs.frozen
class Close:
    """Close the pack early."""

    reason: str


@attrs.frozen
class Sweep:
    """Run the expiry sweep as of ``as_of``."""

    as_of: date


@attrs.frozen
class Wait:
    """Move the clock on by ``by`` before the next step."""

    by: timedelta


@attrs.frozen
class PutOnHold:
    """Put the pack on hold from ``start`` until ``until``, the first date usable again (R22;
    drawn only by ``workflows(..., holds=True)``)."""

    start: date
    until: date
    reason: str


@attrs.frozen
class EndHold:
    """End the pack's hold early, usable again from ``on`` (R22; drawn only by
    ``workflows(..., holds=True)``)."""

    on: date
    reason: str


@attrs.frozen
class Share:
    """Share the pack with ``client_id`` (R20; drawn only by ``workflows(..., shared_with=...)``,
    for one of those clients)."""

    client_id: str


@attrs.frozen
class Unshare:
    """Stop sharing the pack with ``client_id`` (R20; drawn only by
    ``workflows(..., shared_with=...)``, for one of those clients)."""

    client_id: str


@attrs.frozen
class Invoice:
    """Issue the appointment's invoice line (drawn only by ``workflows(..., invoices=True)``)."""

    appointment_id: str


Step: TypeAlias = (
    Book
    | Cancel
    | LateCancel
    | NoShow
    | Reschedule
    | Adjust
    | Extend
    | Close
    | Sweep
    | Wait
    | Invoice
    | PutOnHold
    | EndHold
    | Share
    | Unshare
)


@st.composite
def adjustments(draw: st.DrawFn, terms: PackTerms) -> Amount:
    """A non-zero credit or debit in ``terms``' metric (and currency, for money)."""
    sign = draw(st.sampled_from([1, -1]))
    if terms.metric is Metric.SESSIONS:
        return sign * draw(st.integers(1, 3))
    if terms.metric is Metric.HOURS:
        return sign * timedelta(minutes=15 * draw(st.integers(1, 12)))
    return Money.from_minor(sign * draw(st.integers(1, 30_000)), terms.currency)


def _hold_steps(
    min_date: date, max_date: date, reasons: st.SearchStrategy[str]
) -> list[st.SearchStrategy[Step]]:
    dates = holds(min_date=min_date, max_date=max_date, max_days=45)
    return [
        st.builds(lambda pair, why: PutOnHold(pair[0], pair[1], why), dates, reasons),
        st.builds(EndHold, st.dates(min_date, max_date), reasons),
    ]


@st.composite
def workflows(
    draw: st.DrawFn,
    terms: PackTerms,
    *,
    client_id: str = "C1",
    timezone: str = "Australia/Sydney",
    min_date: date = date(2026, 3, 1),
    max_date: date = date(2026, 11, 30),
    max_appointments: int = 8,
    max_steps: int = 25,
    invoices: bool = False,
    holds: bool = False,
    shared_with: tuple[str, ...] = (),
) -> list[Step]:
    """A list of steps on one pack with ``terms``, on appointments of ``client_id``.

    Appointments (unique ids ``A1``, ``A2``...) are for services the terms cover, priced in
    their currency, on days of ``timezone`` between the dates (daylight-saving days drawn often).
    Steps refer to any of them, booked or not: a refusal is an outcome the tests expect.
    ``invoices=True`` adds :class:`Invoice` steps and ``holds=True`` :class:`PutOnHold` and
    :class:`EndHold` steps on dates in the range (both off by default, so a host's runner
    written for the other steps keeps working). ``shared_with`` names the clients the host
    opens the pack shared with (R20): appointments are then for ``client_id`` or one of them,
    and :class:`Share` and :class:`Unshare` steps name one of them.
    """
    clients = st.sampled_from((client_id, *shared_with))
    days = local_days(timezone, min_date=min_date, max_date=max_date)
    lined = sorted({s for line in terms.lines for s in line.services})
    covered = lined or sorted(terms.eligible_services) or list(SERVICE_IDS)
    count = draw(st.integers(1, max_appointments))
    pool = [
        draw(
            appointments(
                clients,
                st.sampled_from(covered),
                timezone=timezone,
                currency=terms.currency,
                appointment_id=f"A{n}",
                days=days,
            )
        )
        for n in range(1, count + 1)
    ]
    ids = st.sampled_from([a.id for a in pool])
    reasons = st.sampled_from(["goodwill", "correction", "client request"])
    kinds: list[st.SearchStrategy[Step]] = [
        st.sampled_from(pool).map(Book),
        ids.map(Cancel),
        ids.map(LateCancel),
        ids.map(NoShow),
        st.builds(Reschedule, ids, local_starts(timezone, days=days)),
        st.builds(
            Adjust,
            adjustments(terms),
            reasons,
            st.sampled_from([line.name for line in terms.lines]) if terms.lines else st.none(),
        ),
        st.builds(Wait, st.integers(1, 24 * 60).map(lambda m: timedelta(minutes=5 * m))),
        st.builds(Sweep, st.dates(min_date, max_date + timedelta(days=800))),
        st.builds(Extend, st.integers(1, 120), reasons),
        st.builds(Close, reasons),
    ]
    weights = [4, 2, 1, 1, 2, 2, 2, 1, 1, 0]
    if invoices:
        kinds.append(ids.map(Invoice))
        weights.append(2)
    if holds:
        kinds += _hold_steps(min_date, max_date, reasons)
        weights += [2, 1]
    if shared_with:
        listed = st.sampled_from(shared_with)
        kinds += [listed.map(Share), listed.map(Unshare)]
        weights += [1, 1]
    # Drawn by weight, so that a pack is closed in few workflows, and early in fewer.
    weighted = [k for k, w in zip(kinds, weights, strict=True) for _ in range(w)]
    step = st.one_of(weighted) | st.one_of(kinds)
    # Booking first makes the other steps meaningful more often.
    books: list[Step] = [Book(a) for a in draw(st.permutations(pool))]
    rest = draw(st.lists(step, max_size=max_steps))
    head = draw(st.integers(0, len(books)))
    return books[:head] + rest


# Registration ------------------------------------------------------------------------------

_TYPE_STRATEGIES: dict[type, st.SearchStrategy[object]] = {
    Money: money(),
    Period: periods(),
    Allowance: allowances(),
    Tier: money("AUD", max_amount=500).flatmap(
        lambda price: st.builds(Tier, st.integers(1, 30), st.just(price))
    ),
    PerPack: money().map(PerPack),
    PerSession: tiers().map(PerSession),
    NoExpiry: st.just(NoExpiry()),
    ExpiresOn: expiry_rules(kinds=[ExpiresOn]),
    ExpiresAfterOpening: expiry_rules(kinds=[ExpiresAfterOpening]),
    ExpiresAfterFirstUse: expiry_rules(kinds=[ExpiresAfterFirstUse]),
    Policies: policies(),
    PackTerms: pack_terms(currency=None, bundles=True),
    BundleLine: bundle_lines().map(lambda lines: lines[0]),
    PackTemplate: templates(currency=None),
    Appointment: appointments(identifiers("C"), timezone="Australia/Sydney"),
    Service: services(currencies()),
    Practice: practices(),
    PreferService: st.sampled_from(SERVICE_IDS).map(PreferService),
    PreferTemplate: identifiers("T").map(PreferTemplate),
    PreferPack: identifiers("pk").map(PreferPack),
}
"""The strategy ``st.from_type`` uses for each public value type; importing this module
registers them, and so does hypothesis's ``sessionpacks`` entry point, lazily, in any test
suite of an environment where sessionpacks is installed (``_sessionpacks_plugins``)."""

for _registered, _drawn in _TYPE_STRATEGIES.items():
    st.register_type_strategy(_registered, _drawn)
del _registered, _drawn
