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
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from dateutil.relativedelta import relativedelta

from sessionpacks._currencies import MINOR_UNITS
from sessionpacks.errors import InvalidValueError

__all__ = [
    "Allowance",
    "Amount",
    "Appointment",
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


_non_empty_id = _check(
    lambda v: isinstance(v, str) and v.strip() == v and v != "",
    "must be a non-empty string without surrounding spaces",
)


def require_aware(field: str, value: Any) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime, else raise naming ``field`` (R5)."""
    if not isinstance(value, datetime):
        raise InvalidValueError(field, value, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValueError(
            field, value, "must be timezone-aware (naive datetimes are refused)"
        )
    return value


def instant(moment: datetime) -> datetime:
    """``moment`` in UTC, for ordering and subtracting instants.

    Python compares and subtracts aware datetimes that share a ``ZoneInfo`` by wall time, which
    gets the repeated hour of a DST change wrong; in UTC every instant is unambiguous.
    """
    return moment.astimezone(UTC)


def _aware(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    require_aware(f"{type(instance).__name__}.{attribute.name}", value)


class Metric(enum.Enum):
    """What a pack counts."""

    SESSIONS = "sessions"
    HOURS = "hours"
    MONEY = "money"


def _to_decimal(value: Any) -> Any:
    # Floats are refused: 0.1 is not a price anybody typed.
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return value
    return value


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
        validator=_check(lambda c: c in MINOR_UNITS, "must be an active ISO 4217 currency code")
    )

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise _fail(
                "Money", "amount", self.amount, "must be a finite decimal (str, int or Decimal)"
            )
        quantum = _quantum(self.currency)
        try:
            exact = self.amount.quantize(quantum, rounding=ROUND_DOWN)
        except InvalidOperation:
            raise _fail("Money", "amount", self.amount, "is too large") from None
        if exact != self.amount:
            raise _fail(
                "Money",
                "amount",
                self.amount,
                f"has more decimal places than {self.currency}'s minor unit "
                f"({MINOR_UNITS[self.currency]})",
            )
        object.__setattr__(self, "amount", exact)

    @classmethod
    def rounded(cls, amount: Decimal | int | str, currency: str) -> Money:
        """Round ``amount`` half-up to the currency's minor unit (R15)."""
        if currency not in MINOR_UNITS:
            raise InvalidValueError(
                "Money.currency", currency, "must be an active ISO 4217 currency code"
            )
        value = _to_decimal(amount)
        if not isinstance(value, Decimal) or not value.is_finite():
            raise InvalidValueError("Money.amount", amount, "must be a finite decimal")
        return cls(value.quantize(_quantum(currency), rounding=ROUND_HALF_UP), currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """The amount ``minor`` minor units (cents) of ``currency``."""
        return cls(Decimal(minor).scaleb(-MINOR_UNITS.get(currency, 0)), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @property
    def minor(self) -> int:
        """The amount in minor units, as an exact integer."""
        return int(self.amount.scaleb(MINOR_UNITS[self.currency]))

    def _same(self, other: object) -> None:
        if not isinstance(other, Money):
            raise InvalidValueError("Money", other, f"cannot combine with {self}: not Money")
        if other.currency != self.currency:
            raise InvalidValueError(
                "Money.currency", other.currency, f"cannot combine with {self.currency}"
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-MINOR_UNITS[currency])


Amount: TypeAlias = int | timedelta | Money
"""What a metric counts: whole sessions (``int``), a duration, or money."""

_PERIOD = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?$"
)
_WORDS = re.compile(r"(\d+)\s*(year|month|week|day)s?", re.IGNORECASE)


@attrs.frozen
class Period:
    """A calendar period added with ``relativedelta`` (R5): 2026-01-31 + 1 month is 2026-02-28.

    >>> Period.parse("3 months").after(date(2026, 1, 15))
    datetime.date(2026, 4, 15)
    >>> Period.parse("P1M").after(date(2026, 1, 31))
    datetime.date(2026, 2, 28)
    """

    years: int = attrs.field(
        default=0,
        validator=_check(lambda v: type(v) is int and v >= 0, "must be a whole number >= 0"),
    )
    months: int = attrs.field(
        default=0,
        validator=_check(lambda v: type(v) is int and v >= 0, "must be a whole number >= 0"),
    )
    weeks: int = attrs.field(
        default=0,
        validator=_check(lambda v: type(v) is int and v >= 0, "must be a whole number >= 0"),
    )
    days: int = attrs.field(
        default=0,
        validator=_check(lambda v: type(v) is int and v >= 0, "must be a whole number >= 0"),
    )

    def __attrs_post_init__(self) -> None:
        if not (self.years or self.months or self.weeks or self.days):
            raise InvalidValueError("Period", self, "must not be empty")

    @classmethod
    def parse(cls, text: str) -> Period:
        """Read ``"3 months"``, ``"1 year 2 weeks"`` or ISO 8601 ``"P3M"``."""
        cleaned = text.strip() if isinstance(text, str) else ""
        iso = _PERIOD.match(cleaned.upper())
        if iso and cleaned.upper() != "P":
            return cls(**{k: int(v) for k, v in iso.groupdict().items() if v})
        parts = _WORDS.findall(cleaned)
        if parts and _WORDS.sub("", cleaned).replace(",", "").replace("and", "").strip() == "":
            fields: dict[str, int] = {}
            for count, unit in parts:
                key = unit.lower() + "s"
                fields[key] = fields.get(key, 0) + int(count)
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

    date: date = attrs.field(validator=_check(lambda v: type(v) is date, "must be a date"))


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

    from_session: int = attrs.field(
        validator=_check(lambda v: type(v) is int and v >= 1, "must be a session number >= 1")
    )
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
        if not _amount_for(self.metric, value) or units(self.metric, value) <= 0:
            kind = {
                "sessions": "a whole number of sessions",
                "hours": "a timedelta",
                "money": "Money",
            }[self.metric.value]
            raise _fail("Allowance", "amount", value, f"must be {kind} > 0")

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


@attrs.frozen
class Policies:
    """A template's policies: late cancellation, no-show, and the low-balance threshold (R7, R12).

    ``low_balance_at`` is an amount in the pack's metric: ``LowBalance`` is emitted when what
    remains first falls to it or below (but not to zero, which is ``PackExhausted``).
    """

    late_cancel_notice: timedelta = attrs.field(
        default=timedelta(hours=24),
        validator=_check(
            lambda v: isinstance(v, timedelta) and v >= timedelta(0), "must be a timedelta >= 0"
        ),
    )
    late_cancel_consumes: bool = attrs.field(
        default=False, validator=_check(lambda v: type(v) is bool, "must be a bool")
    )
    no_show_consumes: bool = attrs.field(
        default=False, validator=_check(lambda v: type(v) is bool, "must be a bool")
    )
    low_balance_at: Amount | None = attrs.field(default=None)


def _text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise _fail(type(instance).__name__, attribute.name, value, "must be a string")


def _services(value: Any) -> Any:
    if isinstance(value, str):
        return value  # refused by the validator: a str is not a collection of ids
    return frozenset(value) if isinstance(value, Iterable) else value


@attrs.frozen
class PackTerms:
    """What a pack grants and on which terms; a template's terms are copied into each pack (R2).

    ``eligible_services`` empty means any service (R4).
    """

    name: str = attrs.field(
        validator=_check(
            lambda v: isinstance(v, str) and v.strip() != "", "must be a non-empty string"
        )
    )
    allowance: Allowance = attrs.field(validator=_typed(Allowance))
    pricing: Pricing = attrs.field(validator=_typed((PerPack, PerSession)))
    expiry: ExpiryRule = attrs.field(factory=NoExpiry, validator=_typed(_EXPIRY_RULES))
    eligible_services: frozenset[str] = attrs.field(
        factory=frozenset,
        converter=_services,
        validator=_check(
            lambda v: isinstance(v, frozenset) and all(isinstance(s, str) and s for s in v),
            "must be a collection of service ids",
        ),
    )
    policies: Policies = attrs.field(factory=Policies, validator=_typed(Policies))
    description: str = attrs.field(default="", validator=_text)

    def __attrs_post_init__(self) -> None:
        metric = self.allowance.metric
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

    def covers_service(self, service_id: str) -> bool:
        return not self.eligible_services or service_id in self.eligible_services


@attrs.frozen
class PackTemplate:
    """A reusable pack definition. Editing it makes a new version (:meth:`revise`)."""

    id: str = attrs.field(validator=_non_empty_id)
    terms: PackTerms = attrs.field(validator=_typed(PackTerms))
    version: int = attrs.field(
        default=1, validator=_check(lambda v: type(v) is int and v >= 1, "must be >= 1")
    )

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
    name: str = attrs.field(validator=_text)
    price: Money = attrs.field(validator=_non_negative_money)
    duration: timedelta = attrs.field(
        validator=_check(
            lambda v: isinstance(v, timedelta) and v > timedelta(0), "must be a timedelta > 0"
        )
    )


@attrs.frozen
class Appointment:
    """The host's booking, as input: the library records what it consumes, never owns it."""

    id: str = attrs.field(validator=_non_empty_id)
    client_id: str = attrs.field(validator=_non_empty_id)
    service_id: str = attrs.field(validator=_non_empty_id)
    start: datetime = attrs.field(validator=_aware)
    duration: timedelta = attrs.field(
        validator=_check(
            lambda v: isinstance(v, timedelta) and v > timedelta(0), "must be a timedelta > 0"
        )
    )
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


def _zone(value: Any) -> bool:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
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
