"""R24: a pack may grant several services with their own allowances (5 physio and 2 massage).
Each line numbers its own sessions ("Massage 1 of 2"); eligibility, exhaustion and low balance
work per line and the pack is exhausted when every line is."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import events as ev
from sessionpacks import operations as ops
from sessionpacks.errors import InvalidValueError, RefusedError
from sessionpacks.ledger import Migration, PackState, replay
from sessionpacks.model import (
    Allowance,
    BundleLine,
    Money,
    PackTemplate,
    PackTerms,
    PerPack,
    PerSession,
    Policies,
    Practice,
    Tier,
)
from sessionpacks.pricing import figures, recognised
from sessionpacks.serialization import dumps_state, dumps_template, loads_state, loads_template
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

from ..conftest import appt, at

SYDNEY = Practice("clinic-1", "Australia/Sydney")
NOW = at("2026-03-01T09:00")
PRICE = PerPack(Money.from_minor(70000, "AUD"))


def lines(physio: int = 5, massage: int = 2) -> tuple[BundleLine, ...]:
    return (
        BundleLine("Physio", {"physio"}, Allowance.sessions(physio)),
        BundleLine("Massage", {"massage"}, Allowance.sessions(massage)),
    )


def bundle(physio: int = 5, massage: int = 2, low: int | None = None) -> PackTerms:
    return PackTerms(
        name="Physio and massage",
        allowance=Allowance.sessions(physio + massage),
        pricing=PRICE,
        lines=lines(physio, massage),
        policies=Policies(low_balance_at=low),
    )


def opened(**given: int | None) -> PackState:
    return ops.open_pack("pk1", "C1", bundle(**given), SYDNEY, NOW).after  # type: ignore[arg-type]


def used(state: PackState, appointment_id: str, service: str, day: int = 2) -> ops.Change:
    start = at(f"2026-03-{day:02d}T10:00")
    return ops.use(state, appt(appointment_id, start, service=service), NOW)


def test_e30_a_massage_appointment_is_massage_1_of_2_and_physio_keeps_its_5(
    service: PackService,
) -> None:
    service.open_pack("C1", terms=bundle())
    booked = service.assign(appt("A1", "2026-03-02T10:00", service="massage"), pack_id="pk1")
    assert booked.label == "Massage 1 of 2"
    pack = service.pack("pk1")
    assert (pack.line_remaining(0), pack.line_total(0)) == (5, 5)
    assert pack.line_remaining(1) == 1
    assert pack.remaining == 6
    physio = service.assign(appt("A2", "2026-03-01T10:00", service="physio"), pack_id="pk1")
    assert physio.label == "Physio 1 of 5"
    assert service.invoice_line("A1").label == "Massage 1 of 2"


def test_each_line_numbers_its_own_sessions_in_start_order() -> None:
    state = opened()
    for n, (service, day) in enumerate(
        [("physio", 9), ("massage", 5), ("physio", 3), ("massage", 4)]
    ):
        state = used(state, f"A{n}", service, day).after
    assert [state.label(a) for a in ("A2", "A0", "A3", "A1")] == [
        "Physio 1 of 5",
        "Physio 2 of 5",
        "Massage 1 of 2",
        "Massage 2 of 2",
    ]


def test_a_line_used_up_refuses_its_services_while_the_others_go_on() -> None:
    state = used(used(opened(), "A1", "massage").after, "A2", "massage").after
    with pytest.raises(RefusedError) as refused:
        used(state, "A3", "massage")
    assert (refused.value.rule, refused.value.field) == ("R24", "pack_id")
    assert "line Massage has nothing left" in str(refused.value)
    assert used(state, "A4", "physio").after.label("A4") == "Physio 1 of 5"
    with pytest.raises(RefusedError) as other:
        used(state, "A5", "pilates")
    assert other.value.field == "appointment.service_id"


def test_line_events_once_per_line_and_the_pack_exhausted_when_every_line_is() -> None:
    state = opened(physio=2, massage=2, low=1)
    kinds: list[str] = []
    for n, service in enumerate(["massage", "massage", "physio", "physio"]):
        change = used(state, f"A{n}", service, n + 2)
        kinds += [type(e).__name__ for e in change.events[1:]]
        state = change.after
    assert kinds == [
        "LowBalance",
        "LineExhausted",
        "LowBalance",
        "LineExhausted",
        "PackExhausted",
    ]
    released = ops.release(state, "A1", NOW).after
    again = ops.use(released, appt("A9", at("2026-03-20T10:00"), service="massage"), NOW)
    assert [type(e).__name__ for e in again.events] == ["SessionUsed"]  # R12b: once
    first = used(opened(low=1), "A1", "massage")
    low = first.events[1]
    assert isinstance(low, ev.LowBalance)
    assert (low.line, low.remaining, low.total, low.occurrence) == (
        "Massage",
        1,
        2,
        "pk1:LowBalance:Massage:2:1",
    )
    opening = ops.open_pack("pk1", "C1", bundle(low=1), SYDNEY, NOW)
    assert replay((*opening.entries, *first.entries)) == first.after


def test_an_adjustment_of_a_bundle_names_its_line() -> None:
    state = used(used(opened(), "A1", "massage").after, "A2", "massage").after
    credited = ops.adjust(state, 1, "goodwill", NOW, line="Massage")
    event = credited.events[0]
    assert isinstance(event, ev.PackAdjusted)
    assert (event.line, event.line_remaining, event.remaining) == ("Massage", 1, 6)
    assert credited.after.line_total(1) == 3
    assert used(credited.after, "A3", "massage").after.label("A3") == "Massage 3 of 3"
    with pytest.raises(
        InvalidValueError, match=r"must name a line of the bundle \(Physio, Massage\)"
    ):
        ops.adjust(state, 1, "goodwill", NOW)
    with pytest.raises(RefusedError, match="below zero"):
        ops.adjust(state, -1, "correction", NOW, line="Massage")
    ten = PackTerms(name="10 x Physio", allowance=Allowance.sessions(10), pricing=PRICE)
    plain = ops.open_pack("pk2", "C1", ten, SYDNEY, NOW).after
    with pytest.raises(InvalidValueError) as refused:
        ops.adjust(plain, 1, "goodwill", NOW, line="Massage")
    assert refused.value.field == "line"


def test_money_is_recognised_by_the_units_of_every_line() -> None:
    state = used(used(opened(), "A1", "massage").after, "A2", "physio").after
    money = figures(state)
    assert str(money.recognised) == "200.00 AUD"
    assert money.price.minor == money.recognised.minor + money.unearned.minor


def test_a_transfer_carries_what_remains_of_each_line() -> None:
    state = used(used(opened(), "A1", "massage", 1).after, "A2", "massage", 1).after
    moment = at("2026-03-05T09:00")
    state = ops.issue_invoice(state, "A1", moment)[0].after
    source, target = ops.transfer(state, "pk9", "C2", SYDNEY, "moved", moment)
    assert [(line.name, line.allowance.amount) for line in target.after.terms.lines] == [
        ("Physio", 5)
    ]
    assert target.after.remaining == 5
    assert source.after.transferred_to == "pk9"


def test_bundle_terms_refuse_what_does_not_add_up() -> None:
    physio, massage = lines()
    cases: list[tuple[dict[str, object], str]] = [
        ({"allowance": Allowance.sessions(8)}, "PackTerms.allowance"),
        (
            {"lines": (physio, BundleLine("Massage", {"physio"}, Allowance.sessions(2)))},
            "BundleLine.services",
        ),
        (
            {"lines": (physio, BundleLine("Physio", {"massage"}, Allowance.sessions(2)))},
            "PackTerms.lines",
        ),
        (
            {
                "lines": (
                    physio,
                    BundleLine("Hours", {"massage"}, Allowance.hours(timedelta(hours=2))),
                )
            },
            "BundleLine.allowance",
        ),
        ({"eligible_services": {"physio"}}, "PackTerms.eligible_services"),
        ({"pricing": PerSession((Tier(1, Money.from_minor(100, "AUD")),))}, "PackTerms.pricing"),
        ({"lines": "Physio"}, "PackTerms.lines"),
        ({"lines": (physio,) * 21}, "PackTerms.lines"),
    ]
    for changes, field in cases:
        given: dict[str, object] = {
            "name": "B",
            "allowance": Allowance.sessions(7),
            "pricing": PRICE,
            "lines": (physio, massage),
            **changes,
        }
        with pytest.raises(InvalidValueError) as refused:
            PackTerms(**given)  # type: ignore[arg-type]
        assert refused.value.field == field, (changes, refused.value)
    with pytest.raises(InvalidValueError) as empty:
        BundleLine("Nothing", set(), Allowance.sessions(1))
    assert empty.value.field == "BundleLine.services"


def test_a_bundle_is_not_opened_as_migrated() -> None:
    with pytest.raises(InvalidValueError) as refused:
        ops.open_pack(
            "pk1", "C1", bundle(), SYDNEY, NOW, migrated=Migration(date(2026, 1, 1), used=1)
        )
    assert refused.value.field == "migrated"


def test_bundles_round_trip() -> None:
    state = used(opened(low=1), "A1", "massage").after
    assert loads_state(dumps_state(state)) == state
    template = PackTemplate("T", bundle())
    assert loads_template(dumps_template(template)) == template


_SERVICES = st.sampled_from(["physio", "massage"])


@given(
    steps=st.lists(st.tuples(_SERVICES, st.integers(1, 28), st.booleans()), max_size=14),
)
@scaled(1.0)
def test_every_line_numbers_1_to_k_and_never_goes_below_zero(
    steps: list[tuple[str, int, bool]],
) -> None:
    state = opened(physio=3, massage=2, low=1)
    for n, (service, day, release) in enumerate(steps):
        booking = appt(f"A{n}", at(f"2026-03-{day:02d}T10:00"), service=service)
        refusal = ops.unusable_because(state, booking)
        if refusal is not None:
            assert refusal.rule == "R24"  # only a line used up refuses here
            continue
        state = ops.use(state, booking, NOW).after
        if release:
            state = ops.release(state, f"A{n}", NOW).after
    for line in range(2):
        mine = sorted((u for u in state.usages if state.line_of(u) == line), key=lambda u: u.key)
        assert [state.number(u.appointment.id) for u in mine] == list(range(1, len(mine) + 1))
        assert 0 <= state.line_remaining_units(line) == state.line_total_units(line) - len(mine)
    assert state.remaining_units == state.line_remaining_units(0) + state.line_remaining_units(1)
    # Exhausted once every line is, and only then (R24).
    assert (state.remaining_units == 0) == all(state.line_remaining_units(i) == 0 for i in (0, 1))
    if state.remaining_units == 0:
        assert state.exhausted_totals == (5,)


def test_choices_and_recognised_revenue_speak_of_the_line(service: PackService) -> None:
    service.open_pack("C1", terms=bundle())
    service.assign(appt("A1", "2026-03-02T10:00", service="physio"), pack_id="pk1")
    [choice] = service.choices(appt("A2", "2026-03-03T10:00", service="massage"))
    assert choice.label == "Physio and massage (pk1), Massage 2 left"
    service.assign(appt("A2", "2026-03-03T10:00", service="massage"), pack_id="pk1")
    shares = recognised(service.pack("pk1"))
    assert [(r.appointment_id, r.number) for r in shares] == [("A1", 1), ("A2", 1)]
    with pytest.raises(InvalidValueError) as refused:
        PackTerms(
            name="Credit",
            allowance=Allowance.money(Money.from_minor(50000, "AUD")),
            pricing=PerPack(Money.from_minor(50000, "AUD")),
            lines=(
                BundleLine("Physio", {"physio"}, Allowance.money(Money.from_minor(30000, "USD"))),
                BundleLine("Massage", {"massage"}, Allowance.money(Money.from_minor(20000, "AUD"))),
            ),
        )
    assert refused.value.field == "BundleLine.allowance"


def test_a_service_on_no_line_is_refused_naming_the_lines_services() -> None:
    with pytest.raises(RefusedError) as refused:
        used(opened(), "A1", "yoga")
    assert refused.value.rule == "R4"
    assert "covers only ['massage', 'physio']" in str(refused.value)
