"""The immutable pack model: values that cannot be constructed invalid (R1).

Money is :class:`~decimal.Decimal` in one ISO 4217 currency; durations are
:class:`~datetime.timedelta`; instants are timezone-aware :class:`~datetime.datetime` (R5).
Nothing here reads a clock or touches storage.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from dateutil.relativedelta import relativedelta

from sessionpacks._currencies import MINOR_UNITS
from sessionpacks._limits import (
    INT32_MAX,
    INT64_MAX,
    MAX_ID_LENGTH,
    MAX_PERIOD_COUNT,
    MAX_REMIND_DAYS,
    check_count,
    check_day,
    check_duration,
    check_id,
    check_instant,
    check_text,
)
from sessionpacks.errors import InvalidValueError

__all__ = [
    "Allowance",
    "Amount",
    "Appointment",
    "BundleLine",
    "ExpiresAfterFirstUse",
    "ExpiresAfterOpening",
    "ExpiresOn",
    "ExpiryRule",
    "Metric",
    "Money",
    "NoExpiry",
    "PackTemplate",
    "PackTerms",
    "PerPack",
    "PerSession",
    "Period",
    "Policies",
    "Practice",
    "PreferPack",
    "PreferService",
    "PreferTemplate",
    "Preference",
    "Pricing",
    "Service",
    "Tier",
    "instant",
    "require_aware",
]


def _fail(owner: str, name: str, value: Any, message: str) -> InvalidValueError:
    return InvalidValueError(f"{owner}.{name}", value, message)


def _check(predicate: Callable[[Any], bool], message: str) -> Callable[[Any, Any, Any], None]:
    """An attrs validator raising :class:`InvalidValueError` that names ``Class.field``."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not predicate(value):
            raise _fail(type(instance).__name__, attribute.name, value, message)

    return validate


def _typed(kind: type | tuple[type, ...]) -> Callable[[Any, Any, Any], None]:
    names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    return _check(lambda v: isinstance(v, kind) and not isinstance(v, bool), f"must be {names}")


def _limited(check: Callable[[str, Any], Any]) -> Callable[[Any, Any, Any], None]:
    """An attrs validator running a check of :mod:`sessionpacks._limits` on ``Class.field``."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check(f"{type(instance).__name__}.{attribute.name}", value)

    return validate


_non_empty_id = _limited(check_id)
_positive_duration = _limited(check_duration)


def require_aware(field: str, value: Any) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime within the accepted range
    (R5, R18), else raise naming ``field``."""
    return check_instant(field, value)


def instant(moment: datetime) -> datetime:
    """``moment`` in UTC, for ordering and subtracting instants.

    Python compares and subtracts aware datetimes that share a ``ZoneInfo`` by wall time, which
    gets the repeated hour of a DST change wrong; in UTC every instant is unambiguous.
    """
    return moment.astimezone(UTC)


_aware = _limited(check_instant)


class Metric(enum.Enum):
    """What a pack counts."""

    SESSIONS = "sessions"
    HOURS = "hours"
    MONEY = "money"


# Every accepted amount has at most 19 digits before the point and 4 after, so this context
# holds each step exactly, whatever the host made of the thread's decimal context.
_EXACT = Context(prec=50)
# An amount whose leading digit is past 10**19 is over INT64_MAX minor units in any currency;
# refusing it first keeps quantize() from raising on a huge exponent.
_MAX_ADJUSTED = 19


def _to_decimal(value: Any) -> Any:
    # Floats are refused: 0.1 is not a price anybody typed.
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except (ArithmeticError, ValueError):
            return value
    return value


def _currency_ok(value: Any) -> bool:
    return isinstance(value, str) and value in MINOR_UNITS


def _too_large(value: Decimal) -> bool:
    return bool(value) and value.adjusted() > _MAX_ADJUSTED


@attrs.frozen(order=False)
class Money:
    """An amount in one ISO 4217 currency, exact to the currency's minor unit.

    Floats are refused; an amount finer than the minor unit is refused (use :meth:`rounded`).

    >>> Money("450", "AUD")
    Money(amount=Decimal('450.00'), currency='AUD')
    >>> Money("0.001", "AUD")
    Traceback (most recent call last):
    ...
    sessionpacks.errors.InvalidValueError: Money.amount=Decimal('0.001'): has more decimal ...
    """

    amount: Decimal = attrs.field(converter=_to_decimal)
    currency: str = attrs.field(
        validator=_check(_currency_ok, "must be an active ISO 4217 currency code")
    )

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise _fail(
                "Money", "amount", self.amount, "must be a finite decimal (str, int or Decimal)"
            )
        if _too_large(self.amount):
            raise _fail("Money", "amount", self.amount, _TOO_LARGE)
        exact = self.amount.quantize(_quantum(self.currency), rounding=ROUND_DOWN, context=_EXACT)
        if exact != self.amount:
            raise _fail(
                "Money",
                "amount",
                self.amount,
                f"has more decimal places than {self.currency}'s minor unit "
                f"({MINOR_UNITS[self.currency]})",
            )
        if abs(_minor_units(exact, self.currency)) > INT64_MAX:
            raise _fail("Money", "amount", self.amount, _TOO_LARGE)
        object.__setattr__(self, "amount", exact)

    @classmethod
    def rounded(cls, amount: Decimal | int | str, currency: str) -> Money:
        """Round ``amount`` half-up to the currency's minor unit (R15)."""
        _require_currency(currency)
        value = _to_decimal(amount)
        if not isinstance(value, Decimal) or not value.is_finite():
            raise InvalidValueError("Money.amount", amount, "must be a finite decimal")
        if _too_large(value):
            raise InvalidValueError("Money.amount", amount, _TOO_LARGE)
        rounded = value.quantize(_quantum(currency), rounding=ROUND_HALF_UP, context=_EXACT)
        return cls(rounded, currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """The amount ``minor`` minor units (cents) of ``currency``."""
        _require_currency(currency)
        check_count("Money.minor", minor, minimum=-INT64_MAX, maximum=INT64_MAX)
        return cls(Decimal(minor).scaleb(-MINOR_UNITS[currency], context=_EXACT), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @property
    def minor(self) -> int:
        """The amount in minor units, as an exact integer."""
        return _minor_units(self.amount, self.currency)

    def _same(self, other: object) -> None:
        if not isinstance(other, Money):
            raise InvalidValueError("Money", other, f"cannot combine with {self}: not Money")
        if other.currency != self.currency:
            raise InvalidValueError(
                "Money.currency", other.currency, f"cannot combine with {self.currency}"
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(_EXACT.add(self.amount, other.amount), self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(_EXACT.subtract(self.amount, other.amount), self.currency)

    def __neg__(self) -> Money:
        return Money(_EXACT.minus(self.amount), self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


_TOO_LARGE = f"is too large: at most {INT64_MAX} minor units either way"


def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-MINOR_UNITS[currency], context=_EXACT)


def _minor_units(value: Decimal, currency: str) -> int:
    return int(value.scaleb(MINOR_UNITS[currency], context=_EXACT))


def _require_currency(currency: Any) -> None:
    if not _currency_ok(currency):
        raise InvalidValueError(
            "Money.currency", currency, "must be an active ISO 4217 currency code"
        )


Amount: TypeAlias = int | timedelta | Money
"""What a metric counts: whole sessions (``int``), a duration, or money."""

_PERIOD = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?$"
)
_WORDS = re.compile(r"(\d+)\s*(year|month|week|day)s?", re.IGNORECASE)


def _count(minimum: int, maximum: int) -> Callable[[Any, Any, Any], None]:
    return _limited(lambda field, v: check_count(field, v, minimum=minimum, maximum=maximum))


# Bounded so that relativedelta is never handed a count it chokes on.
_period_count = _count(0, MAX_PERIOD_COUNT)
# Longer runs of digits are refused before int() sees them (it refuses over 4,300 digits).
_MAX_DIGITS = len(str(MAX_PERIOD_COUNT))


def _parsed_count(text: str, digits: str) -> int:
    if len(digits) > _MAX_DIGITS:
        raise InvalidValueError(
            "period", text, f"counts must be whole numbers up to {MAX_PERIOD_COUNT}"
        )
    return int(digits)


@attrs.frozen
class Period:
    """A calendar period added with ``relativedelta`` (R5): 2026-01-31 + 1 month is 2026-02-28.

    >>> Period.parse("3 months").after(date(2026, 1, 15))
    datetime.date(2026, 4, 15)
    >>> Period.parse("P1M").after(date(2026, 1, 31))
    datetime.date(2026, 2, 28)
    """

    years: int = attrs.field(default=0, validator=_period_count)
    months: int = attrs.field(default=0, validator=_period_count)
    weeks: int = attrs.field(default=0, validator=_period_count)
    days: int = attrs.field(default=0, validator=_period_count)

    def __attrs_post_init__(self) -> None:
        if not (self.years or self.months or self.weeks or self.days):
            raise InvalidValueError("Period", self, "must not be empty")

    @classmethod
    def parse(cls, text: str) -> Period:
        """Read ``"3 months"``, ``"1 year 2 weeks"`` or ISO 8601 ``"P3M"``."""
        cleaned = text.strip() if isinstance(text, str) else ""
        iso = _PERIOD.match(cleaned.upper())
        if iso and cleaned.upper() != "P":
            return cls(**{k: _parsed_count(text, v) for k, v in iso.groupdict().items() if v})
        parts = _WORDS.findall(cleaned)
        if parts and _WORDS.sub("", cleaned).replace(",", "").replace("and", "").strip() == "":
            fields: dict[str, int] = {}
            for count, unit in parts:
                key = unit.lower() + "s"
                fields[key] = fields.get(key, 0) + _parsed_count(text, count)
            return cls(**fields)
        raise InvalidValueError("period", text, "must look like '3 months', '2 weeks' or 'P3M'")

    def after(self, day: date) -> date:
        """The date this period after ``day``; ``date.max`` when that is past the calendar's end
        (a period so long it never runs out)."""
        try:
            result: date = day + relativedelta(
                years=self.years, months=self.months, weeks=self.weeks, days=self.days
            )
        except (ValueError, OverflowError):
            return date.max
        return result

    def __str__(self) -> str:
        parts = [
            (self.years, "year"),
            (self.months, "month"),
            (self.weeks, "week"),
            (self.days, "day"),
        ]
        return " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n)


@attrs.frozen
class NoExpiry:
    """The pack never expires."""


@attrs.frozen
class ExpiresOn:
    """A fixed expiry date: the first date on which the pack is no longer valid."""

    date: date = attrs.field(validator=_limited(check_day))


@attrs.frozen
class ExpiresAfterOpening:
    """Expires a calendar period after the local date the pack was opened."""

    period: Period = attrs.field(validator=_typed(Period))


@attrs.frozen
class ExpiresAfterFirstUse:
    """Expires a calendar period after the local date of its earliest active usage."""

    period: Period = attrs.field(validator=_typed(Period))


ExpiryRule: TypeAlias = NoExpiry | ExpiresOn | ExpiresAfterOpening | ExpiresAfterFirstUse
_EXPIRY_RULES = (NoExpiry, ExpiresOn, ExpiresAfterOpening, ExpiresAfterFirstUse)


def _non_negative_money(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Money) or value.amount < 0:
        raise _fail(type(instance).__name__, attribute.name, value, "must be Money >= 0")


@attrs.frozen
class PerPack:
    """One price for the whole pack (R15)."""

    price: Money = attrs.field(validator=_non_negative_money)

    @property
    def currency(self) -> str:
        return self.price.currency


@attrs.frozen
class Tier:
    """From session number ``from_session`` on, each session costs ``price``."""

    from_session: int = attrs.field(validator=_count(1, INT64_MAX))
    price: Money = attrs.field(validator=_non_negative_money)


def _tiers(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not value or not all(isinstance(t, Tier) for t in value):
        raise _fail("PerSession", "tiers", value, "must be a non-empty tuple of Tier")
    if value[0].from_session != 1:
        raise _fail("PerSession", "tiers", value, "the first tier must start at session 1")
    starts = [t.from_session for t in value]
    if starts != sorted(set(starts)):
        raise _fail("PerSession", "tiers", value, "tiers must start at increasing session numbers")
    if len({t.price.currency for t in value}) != 1:
        raise _fail("PerSession", "tiers", value, "all tiers must be in one currency")


def _as_tuple(value: Iterable[Tier]) -> tuple[Tier, ...]:
    return tuple(value) if isinstance(value, Iterable) else value


@attrs.frozen
class PerSession:
    """A price per session, by session number: ``tiers`` start at session 1 (R15).

    >>> p = PerSession.reduced(Money("150", "AUD"), Money("120", "AUD"))
    >>> [str(p.price_of(n)) for n in (1, 2, 3)]
    ['150.00 AUD', '120.00 AUD', '120.00 AUD']
    """

    tiers: tuple[Tier, ...] = attrs.field(converter=_as_tuple, validator=_tiers)

    @classmethod
    def flat(cls, price: Money) -> PerSession:
        return cls((Tier(1, price),))

    @classmethod
    def reduced(cls, first: Money, later: Money) -> PerSession:
        """The first session at ``first``, every later one at ``later``."""
        return cls((Tier(1, first), Tier(2, later)))

    @property
    def currency(self) -> str:
        return self.tiers[0].price.currency

    def price_of(self, number: int) -> Money:
        """The price of session number ``number`` (1-based)."""
        chosen = self.tiers[0]
        for tier in self.tiers:
            if tier.from_session <= number:
                chosen = tier
        return chosen.price


Pricing: TypeAlias = PerPack | PerSession


def _amount_for(metric: Metric, value: Any) -> bool:
    if metric is Metric.SESSIONS:
        return type(value) is int
    if metric is Metric.HOURS:
        return isinstance(value, timedelta)
    return isinstance(value, Money)


def _is_amount(value: Any) -> bool:
    """Any amount of any metric within the limits: sessions, a duration, or Money."""
    if isinstance(value, Money):
        return True
    if isinstance(value, timedelta):
        return abs(value // timedelta(microseconds=1)) <= INT64_MAX
    return type(value) is int and abs(value) <= INT64_MAX


def units(metric: Metric, amount: Amount) -> int:
    """An amount as an exact integer: sessions, microseconds, or minor units."""
    if metric is Metric.SESSIONS:
        assert isinstance(amount, int)
        return amount
    if metric is Metric.HOURS:
        assert isinstance(amount, timedelta)
        return amount // timedelta(microseconds=1)
    assert isinstance(amount, Money)
    return amount.minor


def amount(metric: Metric, count: int, currency: str) -> Amount:
    """The inverse of :func:`units`."""
    if metric is Metric.SESSIONS:
        return count
    if metric is Metric.HOURS:
        return timedelta(microseconds=count)
    return Money.from_minor(count, currency)


def format_amount(value: Amount) -> str:
    """``3 sessions``, ``1h30m``, ``120.00 AUD``."""
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, timedelta):
        minutes = int(value.total_seconds() // 60)
        hours, rest = divmod(minutes, 60)
        if hours and rest:
            return f"{hours}h{rest:02d}m"
        return f"{hours}h" if hours else f"{rest}m"
    return f"{value} session{'s' if value != 1 else ''}"


@attrs.frozen
class Allowance:
    """How much a pack grants: N sessions, a duration, or an amount of money.

    >>> Allowance.sessions(10)
    Allowance(metric=<Metric.SESSIONS: 'sessions'>, amount=10)
    """

    metric: Metric = attrs.field(validator=_typed(Metric))
    amount: Amount = attrs.field()

    @amount.validator
    def _positive(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        # Above zero and, as a count of sessions, microseconds or minor units, within int64.
        if self.metric is Metric.SESSIONS:
            check_count("Allowance.amount", value, minimum=1)
        elif self.metric is Metric.HOURS:
            check_duration("Allowance.amount", value)
        elif not isinstance(value, Money) or value.amount <= 0:
            raise _fail("Allowance", "amount", value, "must be Money > 0")

    @classmethod
    def sessions(cls, count: int) -> Allowance:
        return cls(Metric.SESSIONS, count)

    @classmethod
    def hours(cls, duration: timedelta) -> Allowance:
        return cls(Metric.HOURS, duration)

    @classmethod
    def money(cls, value: Money) -> Allowance:
        return cls(Metric.MONEY, value)

    @property
    def units(self) -> int:
        return units(self.metric, self.amount)


def _non_negative_duration(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    field = f"{type(instance).__name__}.{attribute.name}"
    if check_duration(field, value, positive=False) < timedelta(0):
        raise InvalidValueError(field, value, "must be a timedelta >= 0")


@attrs.frozen
class Policies:
    """A template's policies: late cancellation, no-show, the low-balance threshold and the
    expiry reminder (R7, R12, R25).

    ``low_balance_at`` is an amount in the pack's metric: ``LowBalance`` is emitted when what
    remains first falls to it or below (but not to zero, which is ``PackExhausted``).
    ``remind_days_before_expiry`` is how many days before its expiry date a pack with something
    left is due an ``ExpiringSoon`` reminder from the sweep (1 to :data:`MAX_REMIND_DAYS`), or
    ``None`` for no reminder.
    """

    late_cancel_notice: timedelta = attrs.field(
        default=timedelta(hours=24), validator=_non_negative_duration
    )
    late_cancel_consumes: bool = attrs.field(
        default=False, validator=_check(lambda v: type(v) is bool, "must be a bool")
    )
    no_show_consumes: bool = attrs.field(
        default=False, validator=_check(lambda v: type(v) is bool, "must be a bool")
    )
    low_balance_at: Amount | None = attrs.field(
        default=None,
        validator=_check(
            lambda v: v is None or _is_amount(v),
            "must be None or an amount (sessions, a timedelta or Money) within the limits",
        ),
    )
    remind_days_before_expiry: int | None = attrs.field(
        default=None,
        validator=_limited(
            lambda field, v: (
                v if v is None else check_count(field, v, minimum=1, maximum=MAX_REMIND_DAYS)
            )
        ),
    )


_text = _limited(check_text)
_name = _limited(lambda field, v: check_text(field, v, max_length=MAX_ID_LENGTH))
_required_name = _limited(
    lambda field, v: check_text(field, v, max_length=MAX_ID_LENGTH, required=True)
)


def _services(value: Any) -> Any:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return value  # refused by the validator: a str is not a collection of ids
    try:
        return frozenset(value)
    except TypeError:
        return value  # unhashable members: refused by the validator


def _service_ids(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    field = f"{type(instance).__name__}.{attribute.name}"
    if not isinstance(value, frozenset):
        raise InvalidValueError(field, value, "must be a collection of service ids")
    strays = [s for s in value if not isinstance(s, str)]
    # Sorted so that the id named is the same on every run, whatever the hash seed.
    for service_id in strays[:1] + sorted(s for s in value if isinstance(s, str)):
        check_id(field, service_id)


MAX_BUNDLE_LINES = 20
"""The most lines the terms of a bundle hold (R24)."""


@attrs.frozen
class BundleLine:
    """One line of a bundle (R24): ``allowance`` of the services ``services``, numbered on its
    own under ``name`` ("Massage 1 of 2")."""

    name: str = attrs.field(validator=_required_name)
    services: frozenset[str] = attrs.field(converter=_services, validator=_service_ids)
    allowance: Allowance = attrs.field(validator=_typed(Allowance))

    def __attrs_post_init__(self) -> None:
        if not self.services:
            raise _fail("BundleLine", "services", self.services, "must name at least one service")


def _bundle_lines(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _check_lines(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, BundleLine) for v in value):
        raise _fail("PackTerms", "lines", value, "must be a tuple of BundleLine")
    if len(value) > MAX_BUNDLE_LINES:
        raise _fail("PackTerms", "lines", len(value), f"holds more than {MAX_BUNDLE_LINES} lines")


@attrs.frozen
class PackTerms:
    """What a pack grants and on which terms; a template's terms are copied into each pack (R2).

    ``eligible_services`` empty means any service (R4). ``lines`` makes the pack a bundle
    (R24): each line grants its own services their own allowance, in the pack's metric, and
    ``allowance`` is their sum; the services are the lines' (``eligible_services`` stays
    empty), no two lines share one, and the pack is charged per pack.
    """

    name: str = attrs.field(validator=_required_name)
    allowance: Allowance = attrs.field(validator=_typed(Allowance))
    pricing: Pricing = attrs.field(validator=_typed((PerPack, PerSession)))
    expiry: ExpiryRule = attrs.field(factory=NoExpiry, validator=_typed(_EXPIRY_RULES))
    eligible_services: frozenset[str] = attrs.field(
        factory=frozenset,
        converter=_services,
        validator=_service_ids,
    )
    policies: Policies = attrs.field(factory=Policies, validator=_typed(Policies))
    description: str = attrs.field(default="", validator=_text)
    lines: tuple[BundleLine, ...] = attrs.field(
        default=(), converter=_bundle_lines, validator=_check_lines
    )

    def __attrs_post_init__(self) -> None:
        metric = self.allowance.metric
        if self.lines:
            self._check_bundle()
        if metric is Metric.MONEY:
            assert isinstance(self.allowance.amount, Money)
            if not isinstance(self.pricing, PerPack):
                raise _fail(
                    "PackTerms", "pricing", self.pricing, "a money pack is charged per pack"
                )
            if self.allowance.amount.currency != self.pricing.currency:
                raise _fail(
                    "PackTerms",
                    "allowance",
                    self.allowance,
                    f"must be in the pricing currency {self.pricing.currency}",
                )
        threshold = self.policies.low_balance_at
        if threshold is not None and (
            not _amount_for(metric, threshold)
            or not 0 < units(metric, threshold) < self.allowance.units
            or (isinstance(threshold, Money) and threshold.currency != self.currency)
        ):
            raise _fail(
                "Policies",
                "low_balance_at",
                threshold,
                f"must be an amount in {metric.value} between zero and the allowance",
            )

    @property
    def metric(self) -> Metric:
        return self.allowance.metric

    @property
    def currency(self) -> str:
        """The pack's currency: every money amount about it is in this currency (R4)."""
        return self.pricing.currency

    def _check_bundle(self) -> None:
        """R24: lines of the pack's metric, of services no other line names, adding up to the
        allowance; the bundle's price is the whole pack's."""
        metric, seen = self.allowance.metric, set[str]()
        for line in self.lines:
            if line.allowance.metric is not metric:
                raise _fail("BundleLine", "allowance", line.allowance, f"must be {metric.value}")
            given = line.allowance.amount
            if isinstance(given, Money) and given.currency != self.pricing.currency:
                raise _fail("BundleLine", "allowance", given, f"must be in {self.pricing.currency}")
            shared = sorted(seen & line.services)
            if shared:
                raise _fail("BundleLine", "services", shared[0], "is on two lines of the bundle")
            seen |= line.services
        names = [line.name for line in self.lines]
        twice = next((name for name in names if names.count(name) > 1), None)
        if twice is not None:
            raise _fail("PackTerms", "lines", twice, "names two lines of the bundle")
        if self.eligible_services:
            raise _fail(
                "PackTerms",
                "eligible_services",
                self.eligible_services,
                "must be empty for a bundle: its lines name the services",
            )
        if not isinstance(self.pricing, PerPack):
            raise _fail("PackTerms", "pricing", self.pricing, "a bundle is charged per pack")
        total = sum(line.allowance.units for line in self.lines)
        if total != self.allowance.units:
            raise _fail(
                "PackTerms", "allowance", self.allowance, "must be the sum of the lines' allowances"
            )

    def covers_service(self, service_id: str) -> bool:
        if self.lines:
            return self.line_of(service_id) is not None
        return not self.eligible_services or service_id in self.eligible_services

    def line_of(self, service_id: str) -> int | None:
        """The index of the bundle line granting ``service_id``, or ``None`` (R24)."""
        return next((i for i, line in enumerate(self.lines) if service_id in line.services), None)

    def line_named(self, name: object) -> int | None:
        """The index of the bundle line called ``name``, or ``None`` (R24)."""
        return next((i for i, line in enumerate(self.lines) if line.name == name), None)


@attrs.frozen
class PackTemplate:
    """A reusable pack definition. Editing it makes a new version (:meth:`revise`)."""

    id: str = attrs.field(validator=_non_empty_id)
    terms: PackTerms = attrs.field(validator=_typed(PackTerms))
    # PostgreSQL stores versions as integer.
    version: int = attrs.field(default=1, validator=_count(1, INT32_MAX))

    @property
    def name(self) -> str:
        return self.terms.name

    def revise(self, **changes: Any) -> PackTemplate:
        """A new version of this template with ``changes`` applied to its terms."""
        known = attrs.fields_dict(PackTerms)
        for name in changes:
            if name not in known:
                raise InvalidValueError(
                    "changes", name, f"is not a term of a template ({', '.join(known)})"
                )
        return PackTemplate(self.id, attrs.evolve(self.terms, **changes), self.version + 1)


@attrs.frozen
class Service:
    """A bookable thing of the host's, with its default price and duration."""

    id: str = attrs.field(validator=_non_empty_id)
    name: str = attrs.field(validator=_name)
    price: Money = attrs.field(validator=_non_negative_money)
    duration: timedelta = attrs.field(validator=_positive_duration)


@attrs.frozen
class Appointment:
    """The host's booking, as input: the library records what it consumes, never owns it."""

    id: str = attrs.field(validator=_non_empty_id)
    client_id: str = attrs.field(validator=_non_empty_id)
    service_id: str = attrs.field(validator=_non_empty_id)
    start: datetime = attrs.field(validator=_aware)
    duration: timedelta = attrs.field(validator=_positive_duration)
    price: Money = attrs.field(validator=_non_negative_money)

    def local_date(self, zone: ZoneInfo) -> date:
        """The appointment's date in the practice's time zone: validity is judged on it (R5)."""
        return self.start.astimezone(zone).date()


@attrs.frozen
class PreferService:
    """The client's default is a service: no pack, billed at the service's price (R13.4)."""

    service_id: str = attrs.field(validator=_non_empty_id)


@attrs.frozen
class PreferTemplate:
    """The client's default is a template: its usable open packs, or a new one (R13.3)."""

    template_id: str = attrs.field(validator=_non_empty_id)


@attrs.frozen
class PreferPack:
    """The client's default is one pack (R13.2)."""

    pack_id: str = attrs.field(validator=_non_empty_id)


Preference: TypeAlias = PreferService | PreferTemplate | PreferPack


# IANA names: "Australia/Sydney", "America/Port-au-Prince", "Etc/GMT+10". Anything else would
# reach ZoneInfo as a file path ("../etc/passwd", "/etc/localtime", 5,000 characters).
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*", re.ASCII)


def _zone(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        return False
    if not _ZONE_NAME.fullmatch(value):
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, OSError, ValueError, TypeError):
        return False
    return True


@attrs.frozen
class Practice:
    """A tenant: the host's business, with the time zone validity is judged in (R5)."""

    id: str = attrs.field(validator=_non_empty_id)
    timezone: str = attrs.field(validator=_check(_zone, "must be an IANA time zone name"))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
