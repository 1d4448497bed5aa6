"""The limits of values (R18): each limit at its boundary is accepted and one past it refused
with InvalidValueError naming the field and the value; hostile values of any kind make every
constructor either build or refuse with our error; every accepted value round-trips through the
stores' codec as UTF-8 JSON."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import _encoding as _codec
from sessionpacks import _limits as limits
from sessionpacks._limits import (
    EARLIEST,
    FIRST_DAY,
    INT32_MAX,
    INT64_MAX,
    LAST_DAY,
    LATEST,
    MAX_ID_LENGTH,
    MAX_PERIOD_COUNT,
    MAX_TEXT_LENGTH,
    check_count,
    check_day,
    check_duration,
    check_id,
    check_instant,
    check_text,
)
from sessionpacks.errors import SHOWN_LENGTH, InvalidValueError, SessionPacksError, shown
from sessionpacks.model import (
    Allowance,
    Appointment,
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
    Preference,
    PreferPack,
    PreferService,
    PreferTemplate,
    Service,
    Tier,
    instant,
    require_aware,
)

from ..conftest import aud, terms

START = datetime(2026, 3, 2, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
MAX_DURATION = timedelta(microseconds=INT64_MAX)
PAST_DURATION = timedelta(microseconds=INT64_MAX + 1)
PLUS_11 = timezone(timedelta(hours=11))
MINUS_11 = timezone(timedelta(hours=-11))
ALMOST_A_DAY = timedelta(hours=23, minutes=59)


def refused(call: Callable[[], object], field: str, value: object = None) -> InvalidValueError:
    """Run ``call``; it must raise InvalidValueError naming ``field`` (and ``value``)."""
    with pytest.raises(InvalidValueError) as caught:
        call()
    error = caught.value
    assert error.field == field
    assert str(error).startswith(f"{field}={shown(error.value)}: ")
    if value is not None:
        assert error.value is value or error.value == value
    return error


def appointment(**changes: Any) -> Appointment:
    fields: dict[str, Any] = {
        "id": "A1",
        "client_id": "C1",
        "service_id": "physio",
        "start": START,
        "duration": HOUR,
        "price": aud("120"),
    }
    return Appointment(**(fields | changes))


# The constants --------------------------------------------------------------------------------


def test_the_constants_are_the_documented_ones() -> None:
    assert (MAX_ID_LENGTH, MAX_TEXT_LENGTH) == (200, 1000)
    assert (INT64_MAX, INT32_MAX) == (2**63 - 1, 2**31 - 1)
    assert datetime(1900, 1, 1, tzinfo=UTC) == EARLIEST
    assert datetime(2200, 1, 1, tzinfo=UTC) == LATEST
    assert date(1900, 1, 1) == FIRST_DAY
    assert date(2199, 12, 31) == LAST_DAY
    assert MAX_PERIOD_COUNT == 100_000
    assert set(limits.__all__) <= set(dir(limits))


# Ids --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["A", "a" * MAX_ID_LENGTH, "é" * 200, "😀" * 200, 'O\'Brien "x"'])
def test_an_id_of_up_to_200_characters_is_accepted(value: str) -> None:
    assert check_id("id", value) is value
    assert appointment(id=value).id == value


@pytest.mark.parametrize(
    "value",
    [
        "a" * (MAX_ID_LENGTH + 1),
        "a" * 100_000,
        "",
        " a",
        "a\n",
        "a\x00b",
        "a\x1fb",
        "a\x7fb",
        "a\x85b",  # NEL, a C1 control
        "a\tb",
        "a\ud800b",
        "\udfff",
        None,
        3,
        b"A1",
        ["A1"],
    ],
)
def test_an_id_past_the_limits_is_refused(value: Any) -> None:
    refused(lambda: check_id("Appointment.id", value), "Appointment.id", value)
    refused(lambda: appointment(id=value), "Appointment.id", value)
    refused(lambda: PreferPack(value), "PreferPack.pack_id", value)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda v: appointment(client_id=v), "Appointment.client_id"),
        (lambda v: appointment(service_id=v), "Appointment.service_id"),
        (lambda v: PreferService(v), "PreferService.service_id"),
        (lambda v: PreferTemplate(v), "PreferTemplate.template_id"),
        (lambda v: PackTemplate(v, terms(10)), "PackTemplate.id"),
        (lambda v: Service(v, "Physio", aud("1"), HOUR), "Service.id"),
        (lambda v: Practice(v, "UTC"), "Practice.id"),
        (lambda v: terms(10, services=["physio", v]), "PackTerms.eligible_services"),
    ],
)
def test_every_id_is_checked_the_same_way(build: Callable[[Any], object], field: str) -> None:
    build("x" * MAX_ID_LENGTH)
    for bad in ("x" * (MAX_ID_LENGTH + 1), "a\x00", "\ud800", ""):
        refused(functools.partial(build, bad), field, bad)


@pytest.mark.parametrize("services", [{1, 2}, [["physio"]], [None], "physio", b"physio", 3])
def test_eligible_services_of_other_kinds_are_refused(services: Any) -> None:
    refused(
        lambda: PackTerms("T", Allowance.sessions(1), PerPack(aud(1)), eligible_services=services),
        "PackTerms.eligible_services",
    )


# Text -------------------------------------------------------------------------------------------


def test_text_of_up_to_its_limit_is_accepted() -> None:
    assert check_text("reason", "r" * MAX_TEXT_LENGTH) == "r" * MAX_TEXT_LENGTH
    assert check_text("reason", "") == ""
    assert check_text("reason", "two\nlines\tand a \x85") == "two\nlines\tand a \x85"
    assert check_text("name", "n" * 10, max_length=10) == "n" * 10
    described = PackTerms(
        name="n" * MAX_ID_LENGTH,
        allowance=Allowance.sessions(1),
        pricing=PerPack(aud(1)),
        description="d" * MAX_TEXT_LENGTH,
    )
    assert len(described.description) == MAX_TEXT_LENGTH
    assert Service("x", "s" * MAX_ID_LENGTH, aud(1), HOUR).name == "s" * MAX_ID_LENGTH


@pytest.mark.parametrize(
    ("value", "kwargs"),
    [
        ("r" * (MAX_TEXT_LENGTH + 1), {}),
        ("n" * 11, {"max_length": 10}),
        ("a\x00b", {}),
        ("a\ud800b", {}),
        (" ", {"required": True}),
        ("", {"required": True}),
        (None, {}),
        (b"text", {}),
        (3, {}),
    ],
)
def test_text_past_its_limits_is_refused(value: Any, kwargs: dict[str, Any]) -> None:
    refused(lambda: check_text("reason", value, **kwargs), "reason", value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "n" * (MAX_ID_LENGTH + 1)}, "PackTerms.name"),
        ({"name": "ten\x00"}, "PackTerms.name"),
        ({"name": "\t"}, "PackTerms.name"),
        ({"description": "d" * (MAX_TEXT_LENGTH + 1)}, "PackTerms.description"),
        ({"description": "\ud800"}, "PackTerms.description"),
    ],
)
def test_terms_text_past_its_limits_is_refused(changes: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {
        "name": "T",
        "allowance": Allowance.sessions(1),
        "pricing": PerPack(aud(1)),
    }
    refused(lambda: PackTerms(**(fields | changes)), field)


def test_a_service_name_past_its_limit_is_refused() -> None:
    refused(lambda: Service("x", "s" * 201, aud(1), HOUR), "Service.name")
    refused(lambda: Service("x", "a\x00", aud(1), HOUR), "Service.name")


# Money ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["AUD", "JPY", "BHD", "CLF"])
def test_money_of_int64_minor_units_is_accepted_either_way(currency: str) -> None:
    top = Money.from_minor(INT64_MAX, currency)
    assert top.minor == INT64_MAX
    assert (-top).minor == -INT64_MAX
    assert Money(top.amount, currency) == top
    assert Money.rounded(top.amount, currency) == top
    assert top - top == Money.zero(currency)


@pytest.mark.parametrize("currency", ["AUD", "JPY", "BHD"])
def test_money_one_minor_unit_past_int64_is_refused(currency: str) -> None:
    top = Money.from_minor(INT64_MAX, currency)
    unit = Money.from_minor(1, currency)
    past = top.amount + unit.amount
    refused(lambda: Money(past, currency), "Money.amount", past)
    refused(lambda: Money(-past, currency), "Money.amount", -past)
    refused(lambda: top + unit, "Money.amount", past)
    refused(lambda: -top - unit, "Money.amount", -past)
    refused(lambda: Money.from_minor(INT64_MAX + 1, currency), "Money.minor", INT64_MAX + 1)
    refused(lambda: Money.from_minor(-(2**63), currency), "Money.minor", -(2**63))
    refused(lambda: Money.rounded(past, currency), "Money.amount", past)


@pytest.mark.parametrize(
    "amount",
    [Decimal("1E+26"), Decimal("1E+999999"), Decimal("-1E+999999"), "1e30", 10**5000, "9" * 5000],
    ids=shown,
)
def test_huge_money_is_refused_not_overflowed(amount: Any) -> None:
    refused(lambda: Money(amount, "AUD"), "Money.amount")
    refused(lambda: Money.rounded(amount, "AUD"), "Money.amount")


def test_a_tiny_exponent_is_finer_than_the_minor_unit() -> None:
    refused(lambda: Money(Decimal("1E-999999"), "AUD"), "Money.amount")
    assert Money.rounded(Decimal("1E-999999"), "AUD") == aud(0)
    assert Money(Decimal("0E+999999"), "AUD") == aud(0)


@pytest.mark.parametrize("currency", [["AUD"], None, b"AUD", 36, {"AUD"}, "AUD\x00", "\ud800"])
def test_a_currency_of_another_kind_is_refused(currency: Any) -> None:
    refused(lambda: Money("1", currency), "Money.currency", currency)
    refused(lambda: Money.rounded("1", currency), "Money.currency", currency)
    refused(lambda: Money.from_minor(1, currency), "Money.currency", currency)


@pytest.mark.parametrize("minor", [1.0, "100", Decimal(1), None, True])
def test_from_minor_takes_only_an_int(minor: Any) -> None:
    refused(lambda: Money.from_minor(minor, "AUD"), "Money.minor", minor)


def test_money_does_not_depend_on_the_thread_decimal_context() -> None:
    top = Money.from_minor(INT64_MAX, "AUD")
    with localcontext() as context:
        context.prec = 3
        assert Money("92233720368547758.07", "AUD") == top
        assert (top - Money("0.01", "AUD")).minor == INT64_MAX - 1
        assert Money.rounded("1234567.125", "AUD").minor == 123456713


# Counts, durations, periods, versions -------------------------------------------------------------


def test_counts_at_their_bounds() -> None:
    assert check_count("n", 0) == 0
    assert check_count("n", INT64_MAX) == INT64_MAX
    assert check_count("n", -5, minimum=-5, maximum=5) == -5
    for bad in (-1, INT64_MAX + 1, True, 1.0, "1", None, Decimal(1)):
        refused(functools.partial(check_count, "n", bad), "n", bad)


def test_sessions_fit_in_int64() -> None:
    assert Allowance.sessions(INT64_MAX).units == INT64_MAX
    refused(lambda: Allowance.sessions(INT64_MAX + 1), "Allowance.amount", INT64_MAX + 1)
    assert Tier(INT64_MAX, aud(1)).from_session == INT64_MAX
    refused(lambda: Tier(INT64_MAX + 1, aud(1)), "Tier.from_session", INT64_MAX + 1)


def test_durations_fit_in_int64_microseconds() -> None:
    assert check_duration("d", MAX_DURATION) == MAX_DURATION
    assert check_duration("d", -MAX_DURATION, positive=False) == -MAX_DURATION
    assert check_duration("d", timedelta(0), positive=False) == timedelta(0)
    refused(lambda: check_duration("d", PAST_DURATION), "d", PAST_DURATION)
    refused(lambda: check_duration("d", -PAST_DURATION, positive=False), "d", -PAST_DURATION)
    refused(lambda: check_duration("d", timedelta(0)), "d", timedelta(0))
    refused(lambda: check_duration("d", timedelta.max), "d", timedelta.max)
    refused(lambda: check_duration("d", 3600), "d", 3600)
    assert appointment(duration=MAX_DURATION).duration == MAX_DURATION
    refused(lambda: appointment(duration=PAST_DURATION), "Appointment.duration", PAST_DURATION)
    refused(lambda: Service("x", "X", aud(1), PAST_DURATION), "Service.duration")
    assert Allowance.hours(MAX_DURATION).units == INT64_MAX
    refused(lambda: Allowance.hours(PAST_DURATION), "Allowance.amount", PAST_DURATION)
    assert Policies(late_cancel_notice=MAX_DURATION).late_cancel_notice == MAX_DURATION
    refused(lambda: Policies(late_cancel_notice=PAST_DURATION), "Policies.late_cancel_notice")


@pytest.mark.parametrize(
    "threshold", [1.5, "1", Decimal(1), True, INT64_MAX + 1, PAST_DURATION, [1], float("nan")]
)
def test_a_low_balance_threshold_of_another_kind_is_refused(threshold: Any) -> None:
    refused(lambda: Policies(low_balance_at=threshold), "Policies.low_balance_at", threshold)


@pytest.mark.parametrize("field", ["years", "months", "weeks", "days"])
def test_period_counts_are_bounded(field: str) -> None:
    assert getattr(Period(**{field: MAX_PERIOD_COUNT}), field) == MAX_PERIOD_COUNT
    past = MAX_PERIOD_COUNT + 1
    refused(lambda: Period(**{field: past}), f"Period.{field}", past)
    assert Period(**{field: MAX_PERIOD_COUNT}).after(date(2026, 1, 1)) > date(2026, 1, 1)


@pytest.mark.parametrize("text", ["9" * 5000 + " days", "P" + "9" * 5000 + "D", "1234567 weeks"])
def test_a_period_with_a_huge_count_is_refused(text: str) -> None:
    refused(lambda: Period.parse(text), "period", text)


def test_template_versions_fit_in_a_postgres_integer() -> None:
    assert PackTemplate("T", terms(10), INT32_MAX).version == INT32_MAX
    refused(lambda: PackTemplate("T", terms(10), INT32_MAX + 1), "PackTemplate.version")
    refused(lambda: PackTemplate("T", terms(10), INT32_MAX).revise(), "PackTemplate.version")


# Instants and days -------------------------------------------------------------------------------


class _HostileZone(tzinfo):
    """A host's tzinfo whose utcoffset() raises or returns junk."""

    def __init__(self, offset: object) -> None:
        self.offset = offset

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        if isinstance(self.offset, Exception):
            raise self.offset
        return self.offset  # type: ignore[return-value]

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return "hostile"

    def __repr__(self) -> str:
        return f"_HostileZone({self.offset!r})"


@pytest.mark.parametrize(
    "value",
    [
        EARLIEST,
        LATEST - timedelta(microseconds=1),
        datetime(1900, 1, 1, 11, tzinfo=PLUS_11),
        datetime(2199, 12, 31, 12, 59, tzinfo=MINUS_11),
        datetime(1900, 1, 1, 10, tzinfo=ZoneInfo("Australia/Sydney")),
        datetime(2026, 3, 2, tzinfo=timezone(timedelta(hours=5, seconds=7))),
    ],
)
def test_an_instant_within_the_range_is_accepted(value: datetime) -> None:
    assert check_instant("at", value) is value
    assert require_aware("at", value) is value
    assert appointment(start=value).start == value


OUT_OF_RANGE = [
    EARLIEST - timedelta(microseconds=1),
    LATEST,
    datetime(1900, 1, 1, 10, 59, tzinfo=PLUS_11),
    datetime(2199, 12, 31, 13, tzinfo=MINUS_11),
    datetime.min.replace(tzinfo=PLUS_11),
    datetime.min.replace(tzinfo=timezone(ALMOST_A_DAY)),
    datetime.max.replace(tzinfo=MINUS_11),
    datetime.max.replace(tzinfo=timezone(-ALMOST_A_DAY)),
    datetime.max.replace(tzinfo=UTC),
    datetime(9999, 12, 31, tzinfo=ZoneInfo("America/New_York")),
    datetime(1, 1, 1, tzinfo=ZoneInfo("Australia/Sydney")),
]


@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=str)
def test_an_instant_outside_the_range_is_refused(value: datetime) -> None:
    error = refused(lambda: check_instant("at", value), "at", value)
    assert "1900-01-01" in error.reason
    refused(lambda: require_aware("at", value), "at", value)
    refused(lambda: appointment(start=value), "Appointment.start", value)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 3, 2, 10),
        datetime(2026, 3, 2, tzinfo=_HostileZone(RuntimeError("boom"))),
        datetime(2026, 3, 2, tzinfo=_HostileZone("junk")),
        datetime(2026, 3, 2, tzinfo=_HostileZone(timedelta(hours=30))),
        datetime(2026, 3, 2, tzinfo=_HostileZone(None)),
    ],
    ids=repr,
)
def test_a_naive_or_unreadable_instant_is_refused(value: datetime) -> None:
    error = refused(lambda: check_instant("at", value), "at", value)
    assert "timezone-aware" in error.reason


def test_an_offset_finer_than_a_second_is_refused() -> None:
    # datetime.fromisoformat() of Python 3.11 reads "+00:00:00.000001" back as UTC.
    value = datetime(2026, 3, 2, tzinfo=timezone(timedelta(microseconds=1)))
    error = refused(lambda: check_instant("at", value), "at", value)
    assert "whole seconds" in error.reason


@pytest.mark.parametrize("value", [date(2026, 3, 2), "2026-03-02T10:00+11:00", 1.0, None])
def test_an_instant_of_another_kind_is_refused(value: Any) -> None:
    refused(lambda: check_instant("at", value), "at", value)


def test_days_at_their_bounds() -> None:
    assert check_day("d", FIRST_DAY) == FIRST_DAY
    assert ExpiresOn(LAST_DAY).date == LAST_DAY
    bads: list[Any] = [
        FIRST_DAY - timedelta(days=1),
        LAST_DAY + timedelta(days=1),
        date.max,
        date.min,
        datetime(2026, 1, 1),
        "2026-01-01",
    ]
    for bad in bads:
        refused(functools.partial(ExpiresOn, bad), "ExpiresOn.date", bad)


# Time zones ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone", ["Australia/Sydney", "America/Argentina/Buenos_Aires", "Etc/GMT+10", "UTC"]
)
def test_an_iana_zone_is_accepted(zone: str) -> None:
    assert Practice("p", zone).zone == ZoneInfo(zone)


@pytest.mark.parametrize(
    "zone",
    [
        "",
        "a" * 5000,
        "A" * 201,
        "/etc/localtime",
        "../etc/passwd",
        "Etc/../UTC",
        "America",
        "America/",
        "zone.tab",
        "UTC\x00",
        "\ud800",
        " UTC",
        "UTC\n",
        b"UTC",
        ["UTC"],
        None,
    ],
)
def test_a_zone_that_is_not_an_iana_name_is_refused(zone: Any) -> None:
    refused(lambda: Practice("p", zone), "Practice.timezone", zone)


# Error messages ----------------------------------------------------------------------------------


def test_an_error_shows_at_most_80_characters_of_the_value_and_keeps_it_whole() -> None:
    huge = "x" * 100_000
    error = refused(lambda: PreferPack(huge), "PreferPack.pack_id")
    assert error.value is huge
    assert len(shown(huge)) == SHOWN_LENGTH
    assert shown(huge).endswith("...")
    assert len(str(error)) < 200
    assert shown("short") == "'short'"
    assert len(shown("y" * 78)) == SHOWN_LENGTH  # quotes included: exactly 80, not cut
    assert not shown("y" * 78).endswith("...")


def test_an_error_shows_a_value_whose_repr_fails() -> None:
    class Unshowable:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert shown(10**5000).startswith("<int")
    assert "Unshowable" in shown(Unshowable())
    error = SessionPacksError("f", 10**5000, "too big")
    assert error.value == 10**5000
    assert str(error).startswith("f=<int")


# Hostile values to every constructor -----------------------------------------------------------


def _fixed_zones() -> st.SearchStrategy[tzinfo]:
    offsets = st.timedeltas(min_value=-ALMOST_A_DAY, max_value=ALMOST_A_DAY)
    return st.one_of(st.builds(timezone, offsets), st.sampled_from([UTC, PLUS_11, MINUS_11]))


HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "a\udfffb",
    "\x1f",
    "\x85",
    "line\nbreak",
    "x" * 100_000,
    "'\"",
    "Robert'); DROP TABLE packs;--",
    "a" * 5000,
    "../etc/passwd",
    "/etc/localtime",
    "NaN",
    "-Infinity",
    "1e999999",
    "9" * 5000,
    "P" + "9" * 5000 + "D",
]

HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([INT64_MAX, INT64_MAX + 1, -(2**63), INT32_MAX + 1, 10**5000, -(10**5000)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [Decimal("sNaN"), Decimal("1E+26"), Decimal("-1E+999999"), Decimal("1E-999999")]
    ),
    st.text(),
    st.sampled_from(HOSTILE_STRINGS),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.lists(st.lists(st.text(max_size=2), max_size=2), max_size=2),
    st.sets(st.integers(), max_size=3),
    st.frozensets(st.text(max_size=3), max_size=3),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=_fixed_zones()),
    st.sampled_from(OUT_OF_RANGE),
    st.builds(
        lambda offset: datetime(2026, 3, 2, tzinfo=_HostileZone(offset)),
        st.sampled_from([RuntimeError("boom"), "junk", timedelta(hours=30), None]),
    ),
    st.timedeltas(),
    st.sampled_from([timedelta.max, timedelta.min, PAST_DURATION, -PAST_DURATION]),
    st.just(aud("1")),
    st.just(Money.from_minor(INT64_MAX, "JPY")),
    st.sampled_from(list(Metric)),
    st.just(object()),
)


def _or_hostile(valid: Any) -> st.SearchStrategy[Any]:
    """Mostly a valid value, so that later fields are reached; sometimes a hostile one."""
    return st.one_of(st.just(valid), st.just(valid), HOSTILE)


_TERMS = terms(10)
_VALID_ARGS: dict[str, tuple[Callable[..., object], tuple[Any, ...]]] = {
    "Money": (Money, ("120", "AUD")),
    "Money.rounded": (Money.rounded, ("120.005", "AUD")),
    "Money.from_minor": (Money.from_minor, (12000, "AUD")),
    # The left operand is Money: a hostile one on the left is Python's business, not ours.
    "Money +": (lambda b: aud("1") + b, (aud("2"),)),
    "Money -": (lambda b: aud("1") - b, (aud("2"),)),
    "Money <": (lambda b: aud("1") < b, (aud("2"),)),
    "Money <=": (lambda b: aud("1") <= b, (aud("2"),)),
    "Period": (Period, (1, 2, 3, 4)),
    "Period.parse": (Period.parse, ("3 months",)),
    "ExpiresOn": (ExpiresOn, (date(2026, 4, 16),)),
    "ExpiresAfterOpening": (ExpiresAfterOpening, (Period(months=1),)),
    "ExpiresAfterFirstUse": (ExpiresAfterFirstUse, (Period(months=1),)),
    "PerPack": (PerPack, (aud("900"),)),
    "Tier": (Tier, (2, aud("120"))),
    "PerSession": (PerSession, ((Tier(1, aud("150")), Tier(2, aud("120"))),)),
    "Allowance": (Allowance, (Metric.SESSIONS, 10)),
    "Allowance.hours": (Allowance, (Metric.HOURS, timedelta(hours=5))),
    "Allowance.money": (Allowance, (Metric.MONEY, aud("500"))),
    "Policies": (Policies, (timedelta(hours=24), True, False, 1)),
    "PackTerms": (
        PackTerms,
        (
            "10 x Physio",
            Allowance.sessions(10),
            PerPack(aud("900")),
            NoExpiry(),
            frozenset({"physio"}),
            Policies(),
            "ten sessions",
        ),
    ),
    "PackTemplate": (PackTemplate, ("T", _TERMS, 1)),
    "Service": (Service, ("physio", "Physio", aud("120"), HOUR)),
    "Appointment": (Appointment, ("A1", "C1", "physio", START, HOUR, aud("120"))),
    "PreferService": (PreferService, ("physio",)),
    "PreferTemplate": (PreferTemplate, ("T",)),
    "PreferPack": (PreferPack, ("pk1",)),
    "Practice": (Practice, ("clinic-1", "Australia/Sydney")),
    "require_aware": (functools.partial(require_aware, "at"), (START,)),
    "check_id": (functools.partial(check_id, "id"), ("A1",)),
    "check_text": (functools.partial(check_text, "reason"), ("moving",)),
    "check_instant": (functools.partial(check_instant, "at"), (START,)),
    "check_day": (functools.partial(check_day, "day"), (date(2026, 1, 1),)),
    "check_count": (functools.partial(check_count, "n"), (3,)),
    "check_duration": (functools.partial(check_duration, "d"), (HOUR,)),
}


@pytest.mark.parametrize("name", sorted(_VALID_ARGS))
@given(data=st.data())
def test_a_hostile_value_is_built_or_refused_with_our_error(name: str, data: st.DataObject) -> None:
    build, valid = _VALID_ARGS[name]
    args = data.draw(st.tuples(*(_or_hostile(v) for v in valid)), label="args")
    error = _refusal(lambda: build(*args))
    if error is not None:
        assert error.field
        shown_value = shown(error.value)
        assert len(shown_value) <= SHOWN_LENGTH
        assert str(error) == f"{error.field}={shown_value}: {error.reason}"


def _refusal(call: Callable[[], object]) -> InvalidValueError | None:
    """Our error if ``call`` refuses; any other exception propagates and fails the test."""
    try:
        call()
    except InvalidValueError as error:
        return error
    return None


# Accepted values round-trip through the stores' codec ------------------------------------------

_EDGE_IDS = st.one_of(
    st.sampled_from(["A1", "x" * MAX_ID_LENGTH, "é" * MAX_ID_LENGTH, "😀" * MAX_ID_LENGTH]),
    st.text(st.characters(exclude_categories=()), min_size=1, max_size=MAX_ID_LENGTH + 1),
)
_EDGE_TEXT = st.one_of(
    st.sampled_from(["", "n" * MAX_ID_LENGTH, "two\nlines\t\x85", 'O\'Brien "x"']),
    st.text(st.characters(exclude_categories=()), max_size=MAX_ID_LENGTH + 1),
)
_EDGE_INSTANTS = st.one_of(
    st.sampled_from([EARLIEST, LATEST - timedelta(microseconds=1), *OUT_OF_RANGE[:4]]),
    st.datetimes(
        min_value=datetime(1899, 12, 30),
        max_value=datetime(2200, 1, 2),
        timezones=st.one_of(_fixed_zones(), st.timezones()),
    ),
)
_EDGE_DURATIONS = st.one_of(
    st.sampled_from([MAX_DURATION, PAST_DURATION, timedelta(microseconds=1)]),
    st.timedeltas(min_value=timedelta(0)),
)
_EDGE_MINOR = st.one_of(
    st.sampled_from([INT64_MAX, -INT64_MAX, INT64_MAX + 1, 0]),
    st.integers(min_value=-(2**64), max_value=2**64),
)
_EDGE_CURRENCIES = st.sampled_from(["AUD", "JPY", "BHD", "CLF"])


def _attempt(build: Callable[[], Any]) -> Any:
    """``build()``, or ``None`` if the limits refuse it."""
    try:
        return build()
    except InvalidValueError:
        return None


def _round_trips(value: object, kind: Any) -> Any:
    """``value`` through the codec: the same JSON again, as UTF-8 bytes too; the value read."""
    text = _codec.dump(value, kind)
    loaded = _codec.load(text.encode("utf-8"), kind)
    assert _codec.dump(loaded, kind) == text
    return loaded


@given(
    ids=st.tuples(_EDGE_IDS, _EDGE_IDS, _EDGE_IDS),
    start=_EDGE_INSTANTS,
    duration=_EDGE_DURATIONS,
    minor=_EDGE_MINOR,
    currency=_EDGE_CURRENCIES,
)
def test_an_accepted_appointment_round_trips_through_the_codec(
    ids: tuple[str, str, str], start: datetime, duration: timedelta, minor: int, currency: str
) -> None:
    price = _attempt(lambda: Money.from_minor(abs(minor), currency))
    booked = _attempt(lambda: Appointment(*ids, start, duration, price))
    if booked is None:
        return
    for text in ids:
        text.encode("utf-8")  # ids go into TEXT columns as they are
    loaded = _round_trips(booked, Appointment)
    # Compared as instants: an aware datetime whose offset depends on its fold never equals one
    # in another zone (PEP 495), and the codec reads every instant back at a fixed offset.
    assert loaded.start.utcoffset() == booked.start.utcoffset()
    assert attrs.evolve(loaded, start=instant(loaded.start)) == attrs.evolve(
        booked, start=instant(booked.start)
    )


def _expiry(choice: date | int | None) -> ExpiryRule:
    """A fixed expiry on a date, an expiry that many days after first use, or none."""
    if isinstance(choice, date):
        return ExpiresOn(choice)
    return NoExpiry() if choice is None else ExpiresAfterFirstUse(Period(days=choice))


@given(
    template_id=_EDGE_IDS,
    name=_EDGE_TEXT,
    description=st.one_of(st.just("d" * MAX_TEXT_LENGTH), _EDGE_TEXT),
    services=st.frozensets(_EDGE_IDS, max_size=3),
    sessions=st.one_of(st.just(INT64_MAX), st.integers(min_value=2, max_value=2**64)),
    minor=_EDGE_MINOR,
    currency=_EDGE_CURRENCIES,
    version=st.one_of(st.just(INT32_MAX), st.integers(min_value=1, max_value=2**32)),
    expires=st.one_of(
        st.dates(min_value=date(1899, 12, 1), max_value=date(2200, 2, 1)),
        st.integers(1, MAX_PERIOD_COUNT),
        st.none(),
    ),
    notice=_EDGE_DURATIONS,
)
def test_an_accepted_template_round_trips_through_the_codec(
    template_id: str,
    name: str,
    description: str,
    services: frozenset[str],
    sessions: int,
    minor: int,
    currency: str,
    version: int,
    expires: date | int | None,
    notice: timedelta,
) -> None:
    price = _attempt(lambda: Money.from_minor(abs(minor), currency))
    built = _attempt(
        lambda: PackTemplate(
            template_id,
            PackTerms(
                name=name,
                allowance=Allowance.sessions(sessions),
                pricing=PerSession((Tier(1, price), Tier(sessions, price))),
                expiry=_expiry(expires),
                eligible_services=services,
                policies=Policies(late_cancel_notice=notice, low_balance_at=sessions - 1),
                description=description,
            ),
            version,
        )
    )
    if built is not None:
        assert _round_trips(built, PackTemplate) == built


@given(
    kind=st.sampled_from([PreferService, PreferTemplate, PreferPack]),
    target=_EDGE_IDS,
)
def test_an_accepted_preference_round_trips_through_the_codec(kind: Any, target: str) -> None:
    preference = _attempt(lambda: kind(target))
    if preference is not None:
        assert _round_trips(preference, Preference) == preference


@given(minor=_EDGE_MINOR, currency=_EDGE_CURRENCIES, hours=_EDGE_DURATIONS)
def test_accepted_money_and_hours_allowances_round_trip(
    minor: int, currency: str, hours: timedelta
) -> None:
    face = _attempt(lambda: Allowance.money(Money.from_minor(minor, currency)))
    if face is not None:
        assert isinstance(face.amount, Money)
        terms_ = PackTerms("Money", face, PerPack(face.amount))
        money = PackTemplate("M", terms_)
        assert _round_trips(money, PackTemplate) == money
    timed = _attempt(lambda: Allowance.hours(hours))
    if timed is not None:
        hours_template = PackTemplate("H", PackTerms("Hours", timed, PerPack(aud(1))))
        assert _round_trips(hours_template, PackTemplate) == hours_template
