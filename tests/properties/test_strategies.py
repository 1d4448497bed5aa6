"""The strategies of :mod:`sessionpacks.strategies` build only valid values, and reach the
corners the property tests rely on (daylight-saving days, every metric and expiry rule)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, find, given
from hypothesis import strategies as st

from sessionpacks import strategies as sps
from sessionpacks._currencies import MINOR_UNITS
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.model import (
    Allowance,
    Appointment,
    BundleLine,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    Metric,
    Money,
    NoExpiry,
    PackTemplate,
    PackTerms,
    PerPack,
    PerSession,
    Practice,
    Service,
    units,
)
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

# Counts scale with the profile (sessionpacks.testing.plugin.scaled): 40 under ci, as pinned
# before; FIND stops at the first match, so its floor of 500 costs only when it misses.
MODEST = scaled(0.2, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _rebuild(value: Any) -> Any:
    """Construct the value again from its fields: runs every validator once more."""
    fields = {a.name: getattr(value, a.name) for a in attrs.fields(type(value))}
    return type(value)(**fields)


@MODEST
@given(st.from_type(Money))
def test_money_from_type_is_exact_to_the_minor_unit(value: Money) -> None:
    assert value.currency in MINOR_UNITS
    assert Money.from_minor(value.minor, value.currency) == value
    assert _rebuild(value) == value


@MODEST
@given(sps.money("JPY", min_amount=-5, max_amount=5))
def test_money_respects_currency_and_bounds(value: Money) -> None:
    assert value.currency == "JPY"
    assert -5 <= value.amount <= 5
    assert value.amount == value.amount.to_integral_value()


@MODEST
@given(st.from_type(PackTerms))
def test_terms_from_type_respect_cross_field_rules(terms: PackTerms) -> None:
    assert _rebuild(terms) == terms
    if terms.metric is Metric.MONEY:
        assert isinstance(terms.pricing, PerPack)
        assert isinstance(terms.allowance.amount, Money)
        assert terms.allowance.amount.currency == terms.currency
    threshold = terms.policies.low_balance_at
    if threshold is not None:
        assert 0 < units(terms.metric, threshold) < terms.allowance.units
    if terms.lines:  # a bundle (R24): its lines add up, of services of their own
        assert sum(line.allowance.units for line in terms.lines) == terms.allowance.units
        services = [s for line in terms.lines for s in line.services]
        assert len(services) == len(set(services))
        assert isinstance(terms.pricing, PerPack)
    if isinstance(terms.pricing, PerSession):
        starts = [t.from_session for t in terms.pricing.tiers]
        assert starts[0] == 1
        assert starts == sorted(set(starts))


@MODEST
@given(st.from_type(PackTemplate))
def test_templates_from_type_are_valid(template: PackTemplate) -> None:
    assert _rebuild(template) == template
    assert template.version >= 1
    assert template.id.strip() == template.id != ""


@MODEST
@given(
    sps.templates(Metric.HOURS, template_id="T-fixed"),
    sps.templates(template_id=st.sampled_from(["T1", "T2"])),
    st.from_type(Service),
)
def test_templates_take_their_id_and_services_construct(
    fixed: PackTemplate, drawn: PackTemplate, service: Service
) -> None:
    assert (fixed.id, fixed.terms.metric) == ("T-fixed", Metric.HOURS)
    assert drawn.id in {"T1", "T2"}
    assert _rebuild(service) == service
    assert service.id in sps.SERVICE_IDS


@MODEST
@given(st.from_type(Appointment))
def test_appointments_from_type_are_aware(appointment: Appointment) -> None:
    assert _rebuild(appointment) == appointment
    assert appointment.start.utcoffset() is not None
    assert appointment.duration > timedelta(0)


@pytest.mark.parametrize("metric", list(Metric))
def test_every_metric_is_reachable_in_terms(metric: Metric) -> None:
    @MODEST
    @given(sps.pack_terms(metric, currency="AUD"))
    def check(terms: PackTerms) -> None:
        assert terms.metric is metric
        assert terms.currency == "AUD"

    check()


@pytest.mark.parametrize("kind", [NoExpiry, ExpiresOn, ExpiresAfterOpening, ExpiresAfterFirstUse])
def test_each_expiry_rule_is_drawn_on_its_own(kind: type) -> None:
    @MODEST
    @given(sps.expiry_rules(kinds=[kind]))
    def check(rule: object) -> None:
        assert type(rule) is kind
        assert _rebuild(rule) == rule

    check()


def test_unknown_expiry_kind_and_currency_are_refused() -> None:
    with pytest.raises(ValueError, match="kinds="):
        sps.expiry_rules(kinds=[int])
    with pytest.raises(ValueError, match="codes="):
        sps.currencies(codes=["XXX"])
    with pytest.raises(ValueError, match="timezone="):
        sps.dst_days("UTC")


@MODEST
@given(sps.allowances(Metric.HOURS), sps.periods(), sps.practices())
def test_allowances_periods_and_practices_construct(
    allowance: Allowance, period: object, practice: Practice
) -> None:
    assert allowance.units > 0
    assert _rebuild(period) == period
    assert ZoneInfo(practice.timezone) is not None


@MODEST
@given(st.data())
def test_appointments_are_for_the_client_service_and_currency(data: st.DataObject) -> None:
    zone = data.draw(sps.timezones())
    appointment = data.draw(sps.appointments("C7", "physio", timezone=zone, currency="BHD"))
    assert (appointment.client_id, appointment.service_id) == ("C7", "physio")
    assert appointment.price.currency == "BHD"
    assert str(appointment.start.tzinfo) == zone


def test_sydney_daylight_saving_days_are_the_first_sundays_of_april_and_october() -> None:
    found = set()

    @scaled(0.15, deadline=None, database=None)
    @given(sps.dst_days("Australia/Sydney", min_date=date(2026, 1, 1), max_date=date(2027, 12, 31)))
    def collect(day: date) -> None:
        found.add(day)

    collect()
    expected = {date(2026, 4, 5), date(2026, 10, 4), date(2027, 4, 4), date(2027, 10, 3)}
    assert found <= expected
    assert all(d.weekday() == 6 and d.day <= 7 for d in found)
    assert found  # the strategy draws something


FIND = scaled(2.5, minimum=500, deadline=None, database=None, derandomize=True)
SYDNEY = ZoneInfo("Australia/Sydney")


@pytest.mark.parametrize("day", [date(2026, 4, 5), date(2026, 10, 4)])
def test_appointment_starts_reach_both_sydney_daylight_saving_days(day: date) -> None:
    found = find(
        sps.appointments(timezone="Australia/Sydney"),
        lambda a: a.local_date(SYDNEY) == day,
        settings=FIND,
    )
    assert found.local_date(SYDNEY) == day


@scaled(0.3, deadline=None, database=None)
@given(sps.local_starts("Australia/Sydney", days=st.just(date(2026, 4, 5))))
def test_starts_on_the_25_hour_day_stay_on_that_local_day(start: datetime) -> None:
    assert start.date() == date(2026, 4, 5)
    # the repeated hour is an instant like any other: it round-trips through UTC
    assert start.astimezone(ZoneInfo("UTC")).astimezone(start.tzinfo) == start


@pytest.mark.parametrize("fold", [0, 1])
def test_both_passes_of_the_repeated_hour_are_reachable(fold: int) -> None:
    found = find(
        sps.local_starts("Australia/Sydney", days=st.just(date(2026, 4, 5))),
        lambda s: s.hour == 2 and s.fold == fold,
        settings=FIND,
    )
    assert (found.hour, found.fold) == (2, fold)


@MODEST
@given(sps.pack_terms().flatmap(lambda t: st.tuples(st.just(t), sps.workflows(t))))
def test_workflow_steps_are_valid_for_their_terms(pair: tuple[PackTerms, list[sps.Step]]) -> None:
    terms, steps = pair
    ids: set[str] = set()
    for step in steps:
        assert _rebuild(step) == step
        if isinstance(step, sps.Book):
            assert step.appointment.price.currency == terms.currency
            assert terms.covers_service(step.appointment.service_id)
            ids.add(step.appointment.id)
        if isinstance(step, sps.Adjust):
            assert units(terms.metric, step.amount) != 0
        if isinstance(step, sps.Reschedule):
            assert step.start.utcoffset() is not None
    booked = [s.appointment for s in steps if isinstance(s, sps.Book)]
    by_id = {a.id: a for a in booked}
    assert all(by_id[a.id] == a for a in booked)  # one appointment per id


@pytest.mark.parametrize("kind", [Money, Appointment, PackTemplate, PackTerms, BundleLine])
def test_type_strategies_are_registered_for_the_main_types(kind: type) -> None:
    assert st.from_type(kind) is not None
    assert isinstance(find(st.from_type(kind), lambda _: True, settings=FIND), kind)


@MODEST
@given(
    sps.pack_terms().flatmap(
        lambda t: st.tuples(st.just(t), sps.workflows(t), sps.workflows(t, invoices=True))
    )
)
def test_invoice_steps_only_when_asked_for(
    triple: tuple[PackTerms, list[sps.Step], list[sps.Step]],
) -> None:
    _, plain, invoiced = triple
    assert not any(isinstance(step, sps.Invoice) for step in plain)
    ids = {s.appointment.id for s in invoiced if isinstance(s, sps.Book)}
    for step in invoiced:
        if isinstance(step, sps.Invoice):
            assert _rebuild(step) == step
            assert step.appointment_id.startswith("A")
    assert ids <= {f"A{n}" for n in range(1, 9)}


def test_invoice_steps_are_drawn() -> None:
    terms = find(sps.pack_terms(), lambda _: True, settings=FIND)
    found = find(
        sps.workflows(terms, invoices=True),
        lambda steps: any(isinstance(s, sps.Invoice) for s in steps),
        settings=FIND,
    )
    assert any(isinstance(s, sps.Invoice) for s in found)


# Opening balances (R19) and holds (R22) -------------------------------------------------------


def _desk(today: date) -> PackService:
    clock = FixedClock(datetime.combine(today, time(9), SYDNEY))
    return PackService(InMemoryStore().practice("clinic-1", "Australia/Sydney"), clock)


@MODEST
@given(st.data(), sps.pack_terms(currency=st.sampled_from(["AUD", "JPY", "BHD"])))
def test_migrations_open_a_pack_of_their_terms(data: st.DataObject, terms: PackTerms) -> None:
    """A migration drawn for terms is accepted by open_pack, on its latest day or later, ad hoc
    and from a template, and the pack goes on after it (R19)."""
    migration = data.draw(sps.migrations(terms, max_date=date(2026, 1, 15)))
    assert _rebuild(migration) == migration
    assert migration.opened_on <= date(2026, 1, 15)
    used = units(terms.metric, migration.used)
    assert 0 <= used < terms.allowance.units
    desk = _desk(date(2026, 1, 15) + timedelta(days=data.draw(st.integers(0, 30))))
    pack = desk.open_pack("C1", terms=terms, migrated=migration)
    assert pack.remaining_units == terms.allowance.units - used
    assert pack.opened_on == migration.opened_on
    desk.add_template("T1", terms)
    again = desk.open_pack("C1", template_id="T1", migrated=migration)
    assert again.migrated == migration


@pytest.mark.parametrize("metric", list(Metric))
def test_migrations_reach_use_numbering_and_expiry_there(metric: Metric) -> None:
    terms = find(sps.pack_terms(metric), lambda t: t.allowance.units > 1, settings=FIND)
    found = find(
        sps.migrations(terms),
        lambda m: units(metric, m.used) > 0 and m.numbered is not None and m.expires_on,
        settings=FIND,
    )
    assert found.expires_on is not None
    assert found.expires_on > found.opened_on


@MODEST
@given(sps.holds(min_date=date(2026, 3, 1), max_date=date(2026, 6, 30), max_days=20))
def test_holds_are_dates_a_pack_can_be_held_for(dates: tuple[date, date]) -> None:
    start, until = dates
    assert date(2026, 3, 1) <= start <= date(2026, 6, 30)
    assert 1 <= (until - start).days <= 20
    desk = _desk(date(2026, 2, 1))
    terms = PackTerms("5 x Physio", Allowance.sessions(5), PerPack(Money("500", "AUD")), NoExpiry())
    desk.open_pack("C1", pack_id="P1", terms=terms)
    held = desk.hold("P1", start, until, "travel")
    assert [(h.start, h.until) for h in held.holds] == [(start, until)]


def test_holds_refuse_an_empty_length() -> None:
    with pytest.raises(ValueError, match="max_days="):
        sps.holds(max_days=0)


@MODEST
@given(
    sps.pack_terms().flatmap(
        lambda t: st.tuples(sps.workflows(t, invoices=True), sps.workflows(t, holds=True))
    )
)
def test_hold_steps_only_when_asked_for(pair: tuple[list[sps.Step], list[sps.Step]]) -> None:
    plain, held = pair
    hold_steps = (sps.PutOnHold, sps.EndHold)
    assert not any(isinstance(step, hold_steps) for step in plain)
    for step in held:
        if isinstance(step, sps.PutOnHold):
            assert _rebuild(step) == step
            assert date(2026, 3, 1) <= step.start < step.until
        if isinstance(step, sps.EndHold):
            assert date(2026, 3, 1) <= step.on <= date(2026, 11, 30)


def test_hold_steps_are_drawn() -> None:
    terms = find(sps.pack_terms(), lambda _: True, settings=FIND)
    found = find(
        sps.workflows(terms, holds=True),
        lambda steps: {sps.PutOnHold, sps.EndHold} <= {type(s) for s in steps},
        settings=FIND,
    )
    assert any(isinstance(s, sps.PutOnHold) for s in found)


@MODEST
@given(
    sps.pack_terms().flatmap(
        lambda t: st.tuples(sps.workflows(t, holds=True), sps.workflows(t, shared_with=("C2",)))
    )
)
def test_sharing_steps_only_when_asked_for(pair: tuple[list[sps.Step], list[sps.Step]]) -> None:
    plain, shared = pair
    assert not any(isinstance(step, sps.Share | sps.Unshare) for step in plain)
    assert all(s.appointment.client_id == "C1" for s in plain if isinstance(s, sps.Book))
    for step in shared:
        if isinstance(step, sps.Share | sps.Unshare):
            assert step.client_id == "C2"
        if isinstance(step, sps.Book):
            assert step.appointment.client_id in ("C1", "C2")


def test_sharing_steps_and_listed_clients_are_drawn() -> None:
    terms = find(sps.pack_terms(), lambda _: True, settings=FIND)
    found = find(
        sps.workflows(terms, shared_with=("C2", "C3")),
        lambda steps: any(isinstance(s, sps.Unshare) for s in steps),
        settings=FIND,
    )
    assert any(isinstance(s, sps.Unshare) for s in found)
    booked = find(
        sps.workflows(terms, shared_with=("C2", "C3")),
        lambda steps: any(
            isinstance(s, sps.Book) and s.appointment.client_id == "C3" for s in steps
        ),
        settings=FIND,
    )
    assert booked
