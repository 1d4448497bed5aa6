"""The immutable model: values that cannot be constructed invalid (R1, R4, R5, R15)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks.errors import InvalidValueError, SessionPacksError
from sessionpacks.model import (
    Allowance,
    Amount,
    Appointment,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    Metric,
    Money,
    NoExpiry,
    PackTemplate,
    Period,
    PerPack,
    PerSession,
    Policies,
    Practice,
    PreferPack,
    PreferService,
    PreferTemplate,
    Service,
    Tier,
    amount,
    format_amount,
    require_aware,
    units,
)
from sessionpacks.testing.plugin import scaled

from ..conftest import appt, aud, terms

MODEST = scaled(0.25, deadline=None)  # 50 under ci


def refused(call: Any, field: str) -> InvalidValueError:
    """Run ``call``; it must raise InvalidValueError naming ``field``."""
    with pytest.raises(InvalidValueError) as caught:
        call()
    assert caught.value.field == field
    assert field in str(caught.value)
    assert isinstance(caught.value, SessionPacksError)
    return caught.value


# Money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["450", 450, Decimal("450"), " 450.00 ", Decimal("450.000")])
def test_money_is_exact_to_the_minor_unit(given: Any) -> None:
    money = Money(given, "AUD")
    assert money.amount == Decimal("450.00")
    assert str(money.amount) == "450.00"
    assert money.minor == 45000


@pytest.mark.parametrize("given", [1.5, True, "abc", "NaN", "Infinity", None])
def test_money_refuses_what_is_not_a_finite_decimal(given: Any) -> None:
    error = refused(lambda: Money(given, "AUD"), "Money.amount")
    assert "finite decimal" in error.reason


def test_money_refuses_finer_than_minor_unit() -> None:
    error = refused(lambda: Money("0.001", "AUD"), "Money.amount")
    assert error.value == Decimal("0.001")
    refused(lambda: Money("1.5", "JPY"), "Money.amount")
    assert Money("1.234", "KWD").minor == 1234


@pytest.mark.parametrize("code", ["aud", "XYZ", "", 36])
def test_money_refuses_unknown_currency(code: Any) -> None:
    error = refused(lambda: Money("1", code), "Money.currency")
    assert error.value == code


def test_money_rounds_half_up() -> None:
    assert Money.rounded("2.675", "AUD") == aud("2.68")
    assert Money.rounded("2.665", "AUD") == aud("2.67")
    assert Money.rounded(Decimal("-2.665"), "AUD") == aud("-2.67")
    assert Money.rounded(3, "AUD") == aud("3.00")
    assert Money.rounded("0.5", "JPY") == Money(1, "JPY")


def test_money_rounded_refuses_bad_input() -> None:
    refused(lambda: Money.rounded("1", "QQQ"), "Money.currency")
    refused(lambda: Money.rounded("NaN", "AUD"), "Money.amount")
    refused(lambda: Money.rounded(0.1, "AUD"), "Money.amount")  # type: ignore[arg-type]


def test_money_arithmetic_and_order() -> None:
    assert aud("1.10") + aud("2.25") == aud("3.35")
    assert aud("1.10") - aud("2.25") == aud("-1.15")
    assert -aud("1.10") == aud("-1.10")
    assert aud("1") < aud("2")
    assert aud("2") <= aud("2")
    assert not aud("3") <= aud("2")
    assert str(aud("7")) == "7.00 AUD"
    assert Money.zero("JPY") == Money.from_minor(0, "JPY")
    assert Money.from_minor(12345, "AUD") == aud("123.45")


@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
    ],
)
def test_money_never_mixes_currencies(combine: Any) -> None:
    error = refused(lambda: combine(aud("1"), Money("1", "USD")), "Money.currency")
    assert error.value == "USD"


def test_money_is_frozen() -> None:
    money: Money = aud("1")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        money.amount = Decimal(2)  # type: ignore[misc]


@MODEST
@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_money_minor_round_trips(minor: int) -> None:
    assert Money.from_minor(minor, "AUD").minor == minor


@MODEST
@given(st.decimals(min_value=-(10**9), max_value=10**9, places=6))
def test_money_rounded_is_nearest_with_ties_up(value: Decimal) -> None:
    rounded = Money.rounded(value, "AUD").amount
    assert abs(rounded - value) <= Decimal("0.005")
    if abs(rounded - value) == Decimal("0.005"):
        assert abs(rounded) > abs(value)


# Periods and expiry rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("3 months", Period(months=3)),
        ("1 month", Period(months=1)),
        ("P3M", Period(months=3)),
        ("p1y2m3w4d", Period(years=1, months=2, weeks=3, days=4)),
        ("1 year 2 weeks", Period(years=1, weeks=2)),
        ("1 year, 2 months and 3 days", Period(years=1, months=2, days=3)),
        ("2 Weeks", Period(weeks=2)),
        ("1 day 1 day", Period(days=2)),
    ],
)
def test_period_parses_words_and_iso(text: str, period: Period) -> None:
    assert Period.parse(text) == period


@pytest.mark.parametrize("text", ["", "P", "3", "3 fortnights", "PT1H", "3 months ago", None, 3])
def test_period_refuses_what_it_cannot_read(text: Any) -> None:
    error = refused(lambda: Period.parse(text), "period")
    assert error.value == text


def test_period_must_not_be_empty_or_negative() -> None:
    refused(lambda: Period.parse("P0D"), "Period")
    refused(lambda: Period(), "Period")
    refused(lambda: Period(months=-1), "Period.months")
    refused(lambda: Period(days=1.5), "Period.days")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("opened", "text", "expires"),
    [
        (date(2026, 1, 15), "3 months", date(2026, 4, 15)),
        (date(2026, 1, 31), "1 month", date(2026, 2, 28)),
        (date(2028, 1, 31), "1 month", date(2028, 2, 29)),
        (date(2028, 2, 29), "1 year", date(2029, 2, 28)),
        (date(2026, 1, 1), "2 weeks", date(2026, 1, 15)),
    ],
)
def test_period_is_calendar(opened: date, text: str, expires: date) -> None:
    assert Period.parse(text).after(opened) == expires


def test_period_prints_in_words() -> None:
    assert str(Period(years=1, months=2, weeks=1, days=3)) == "1 year 2 months 1 week 3 days"
    assert str(Period.parse("P1D")) == "1 day"


def test_expiry_rules_validate() -> None:
    assert ExpiresOn(date(2026, 4, 16)).date == date(2026, 4, 16)
    refused(lambda: ExpiresOn(datetime(2026, 4, 16, tzinfo=UTC)), "ExpiresOn.date")
    refused(lambda: ExpiresAfterOpening("3 months"), "ExpiresAfterOpening.period")  # type: ignore[arg-type]
    refused(lambda: ExpiresAfterFirstUse(None), "ExpiresAfterFirstUse.period")  # type: ignore[arg-type]


# Pricing values ------------------------------------------------------------------------------


def test_per_session_tiers() -> None:
    tiers = PerSession([Tier(1, aud("150")), Tier(2, aud("120")), Tier(5, aud("100"))])
    assert [tiers.price_of(n) for n in (1, 2, 4, 5, 9)] == [
        aud("150"),
        aud("120"),
        aud("120"),
        aud("100"),
        aud("100"),
    ]
    assert tiers.currency == "AUD"
    assert PerSession.flat(aud("90")).price_of(7) == aud("90")


@pytest.mark.parametrize(
    "tiers",
    [
        (),
        "12",
        (Tier(2, aud("1")),),
        (Tier(1, aud("1")), Tier(1, aud("2"))),
        (Tier(1, aud("1")), Tier(3, aud("2")), Tier(2, aud("2"))),
        (Tier(1, aud("1")), Tier(2, Money("1", "USD"))),
        (Tier(1, aud("1")), "x"),
        5,
    ],
)
def test_per_session_refuses_bad_tiers(tiers: Any) -> None:
    refused(lambda: PerSession(tiers), "PerSession.tiers")


def test_prices_are_non_negative_money() -> None:
    refused(lambda: PerPack(aud("-1")), "PerPack.price")
    refused(lambda: PerPack("450"), "PerPack.price")  # type: ignore[arg-type]
    refused(lambda: Tier(0, aud("1")), "Tier.from_session")
    refused(lambda: Tier(1, aud("-0.01")), "Tier.price")
    assert PerPack(aud("0")).currency == "AUD"


# Amounts and allowances ----------------------------------------------------------------------


def test_units_and_amounts_are_exact_and_inverse() -> None:
    cases: list[tuple[Metric, Amount, int]] = [
        (Metric.SESSIONS, 3, 3),
        (Metric.HOURS, timedelta(minutes=90), 5_400_000_000),
        (Metric.MONEY, aud("12.34"), 1234),
    ]
    for metric, value, count in cases:
        assert units(metric, value) == count
        assert amount(metric, count, "AUD") == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1 session"),
        (3, "3 sessions"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(hours=2), "2h"),
        (timedelta(minutes=30), "30m"),
        (timedelta(0), "0m"),
        (aud("5"), "5.00 AUD"),
    ],
)
def test_format_amount(value: Any, text: str) -> None:
    assert format_amount(value) == text


def test_allowance_by_metric() -> None:
    assert Allowance.sessions(10).units == 10
    assert Allowance.hours(timedelta(hours=5)).metric is Metric.HOURS
    assert Allowance.money(aud("500")).amount == aud("500")


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        (Metric.SESSIONS, 0),
        (Metric.SESSIONS, -1),
        (Metric.SESSIONS, True),
        (Metric.SESSIONS, 1.0),
        (Metric.HOURS, 5),
        (Metric.HOURS, timedelta(0)),
        (Metric.MONEY, Decimal(5)),
        (Metric.MONEY, aud("0")),
    ],
)
def test_allowance_refuses_amount_not_of_its_metric(metric: Metric, value: Any) -> None:
    error = refused(lambda: Allowance(metric, value), "Allowance.amount")
    assert error.value is value


def test_allowance_refuses_unknown_metric() -> None:
    refused(lambda: Allowance("sessions", 3), "Allowance.metric")  # type: ignore[arg-type]


# Terms and templates -------------------------------------------------------------------------


def test_terms_defaults_and_services() -> None:
    plain = terms(10)
    assert plain.expiry == NoExpiry()
    assert plain.covers_service("anything")
    assert plain.metric is Metric.SESSIONS
    assert plain.currency == "AUD"
    only = terms(10, services=["physio"])
    assert only.covers_service("physio")
    assert not only.covers_service("massage")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": " "}, "PackTerms.name"),
        ({"allowance": 10}, "PackTerms.allowance"),
        ({"pricing": aud("1")}, "PackTerms.pricing"),
        ({"expiry": date(2026, 1, 1)}, "PackTerms.expiry"),
        ({"eligible_services": "physio"}, "PackTerms.eligible_services"),
        ({"eligible_services": ["physio", ""]}, "PackTerms.eligible_services"),
        ({"eligible_services": 3}, "PackTerms.eligible_services"),
        ({"policies": None}, "PackTerms.policies"),
        ({"description": None}, "PackTerms.description"),
    ],
)
def test_terms_refuse_bad_fields(changes: dict[str, Any], field: str) -> None:
    refused(lambda: attrs.evolve(terms(10), **changes), field)


def test_money_pack_is_charged_per_pack_in_its_currency() -> None:
    face = Allowance.money(aud("500"))
    assert terms(face, pricing=PerPack(aud("450"))).currency == "AUD"
    refused(lambda: terms(face, pricing=PerSession.flat(aud("1"))), "PackTerms.pricing")
    refused(lambda: terms(face, pricing=PerPack(Money("450", "USD"))), "PackTerms.allowance")


@pytest.mark.parametrize(
    ("allowance", "threshold"),
    [
        (10, 0),
        (10, 10),
        (10, timedelta(hours=1)),
        (Allowance.hours(timedelta(hours=5)), 1),
        (Allowance.money(aud("500")), Money("50", "USD")),
    ],
)
def test_low_balance_threshold_is_between_zero_and_allowance(
    allowance: Any, threshold: Any
) -> None:
    pricing = PerPack(aud("450"))
    error = refused(
        lambda: terms(allowance, pricing=pricing, policies=Policies(low_balance_at=threshold)),
        "Policies.low_balance_at",
    )
    assert error.value == threshold


def test_policies_validate() -> None:
    assert Policies().late_cancel_notice == timedelta(hours=24)
    refused(lambda: Policies(late_cancel_notice=timedelta(hours=-1)), "Policies.late_cancel_notice")
    refused(lambda: Policies(late_cancel_consumes=1), "Policies.late_cancel_consumes")  # type: ignore[arg-type]
    refused(lambda: Policies(no_show_consumes="yes"), "Policies.no_show_consumes")  # type: ignore[arg-type]


def test_template_revise_makes_a_new_version() -> None:
    template = PackTemplate("T", terms(10))
    revised = template.revise(name="12 x Physio", allowance=Allowance.sessions(12))
    assert (revised.id, revised.version, revised.name) == ("T", 2, "12 x Physio")
    assert revised.terms.allowance.units == 12
    assert template.terms == terms(10)


def test_template_revise_refuses_unknown_terms() -> None:
    error = refused(lambda: PackTemplate("T", terms(10)).revise(colour="red"), "changes")
    assert error.value == "colour"


def test_template_validates() -> None:
    refused(lambda: PackTemplate(" T", terms(10)), "PackTemplate.id")
    refused(lambda: PackTemplate("T", terms(10), 0), "PackTemplate.version")
    refused(lambda: PackTemplate("T", "terms"), "PackTemplate.terms")  # type: ignore[arg-type]


# Host values ---------------------------------------------------------------------------------


def test_service_validates() -> None:
    physio = Service("physio", "Physio", aud("120"), timedelta(minutes=45))
    assert physio.duration == timedelta(minutes=45)
    refused(lambda: Service("", "Physio", aud("1"), timedelta(1)), "Service.id")
    refused(lambda: Service("x", None, aud("1"), timedelta(1)), "Service.name")  # type: ignore[arg-type]
    refused(lambda: Service("x", "X", aud("1"), timedelta(0)), "Service.duration")


def test_appointment_validates() -> None:
    start = datetime(2026, 2, 2, 10, tzinfo=UTC)
    refused(
        lambda: Appointment("A1", "C1", "physio", start.replace(tzinfo=None), timedelta(1), aud(1)),
        "Appointment.start",
    )
    not_a_datetime: Any = "2026"
    refused(
        lambda: Appointment("A1", "C1", "physio", not_a_datetime, timedelta(1), aud(1)),
        "Appointment.start",
    )
    refused(
        lambda: Appointment("A1", "C1", "physio", start, timedelta(0), aud(1)),
        "Appointment.duration",
    )
    refused(
        lambda: Appointment("A1", "C1", "physio", start, timedelta(1), aud(-1)), "Appointment.price"
    )
    refused(
        lambda: Appointment("A1", " C1", "physio", start, timedelta(1), aud(1)),
        "Appointment.client_id",
    )


def test_appointment_local_date_is_in_the_practice_zone() -> None:
    late = appt("A1", "2026-04-15T14:30+00:00")
    assert late.local_date(Practice("p", "Australia/Sydney").zone) == date(2026, 4, 16)
    assert late.local_date(Practice("p", "UTC").zone) == date(2026, 4, 15)


def test_preferences_and_practice_validate() -> None:
    assert PreferService("physio").service_id == "physio"
    assert PreferTemplate("T").template_id == "T"
    assert PreferPack("pk1").pack_id == "pk1"
    refused(lambda: PreferPack(""), "PreferPack.pack_id")
    refused(lambda: Practice("p", "Mars/Olympus"), "Practice.timezone")
    refused(lambda: Practice("p", None), "Practice.timezone")  # type: ignore[arg-type]
    refused(lambda: Practice("p", "../etc/passwd"), "Practice.timezone")


def test_require_aware() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert require_aware("when", moment) is moment
    assert (
        "must be a datetime"
        in refused(lambda: require_aware("when", date(2026, 1, 1)), "when").reason
    )


def test_money_too_large_for_its_minor_unit_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidValueError) as refused:
        Money("1e30", "AUD")
    assert refused.value.field == "Money.amount"


def test_money_combined_with_a_number_is_refused() -> None:
    with pytest.raises(InvalidValueError) as refused:
        Money("1", "AUD") + 1  # type: ignore[operator]
    assert (refused.value.field, refused.value.value) == ("Money", 1)


def test_a_period_past_the_calendar_never_runs_out() -> None:
    assert Period(years=9000).after(date(2026, 1, 1)) == date.max
    assert Period.parse("100000 years").after(date(2026, 1, 1)) == date.max


def test_a_period_longer_than_its_limit_is_refused() -> None:
    # R18: relativedelta is never given absurd counts, and int() never a 5,000-digit one.
    error = refused(lambda: Period.parse("99999999999 days"), "period")
    assert error.value == "99999999999 days"
    refused(lambda: Period.parse("9" * 5000 + " days"), "period")
    refused(lambda: Period.parse("100001 days"), "Period.days")
