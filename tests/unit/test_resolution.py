"""Resolution (R13) and the choices offered by hand (R14): pure functions of packs and templates."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import attrs
import pytest

from sessionpacks import operations as ops
from sessionpacks.errors import InvalidValueError, RefusedError, Rule
from sessionpacks.ledger import PackState
from sessionpacks.model import (
    Allowance,
    Appointment,
    ExpiresAfterFirstUse,
    ExpiresOn,
    PackTemplate,
    Period,
    PerPack,
    Practice,
    Preference,
    PreferPack,
    PreferService,
    PreferTemplate,
)
from sessionpacks.resolution import (
    Decision,
    NoPack,
    OpenPack,
    PassedOver,
    UsePack,
    already_recorded,
    choices,
    resolve,
    unpreferable_because,
)

from ..conftest import appt, at, aud, terms

SYDNEY = Practice("clinic-1", "Australia/Sydney")
NOW = at("2026-01-15T09:00")
PHYSIO = PackTemplate("T", terms(10, name="Physio ten", services=["physio"]))
YOGA = PackTemplate("Y", terms(5, name="yoga five", services=["yoga"]))
TEMPLATES = {t.id: t for t in (PHYSIO, YOGA)}


def pack(
    pack_id: str,
    template: PackTemplate | None = None,
    *,
    minutes: int = 0,
    used: int = 0,
    **kwargs: Any,
) -> PackState:
    """A C1 pack opened ``minutes`` after NOW, from ``template`` or ad hoc, with ``used`` uses."""
    pack_terms = template.terms if template else terms(**kwargs)
    state = ops.open_pack(
        pack_id,
        "C1",
        pack_terms,
        SYDNEY,
        NOW + timedelta(minutes=minutes),
        template_id=template.id if template else None,
    ).after
    for n in range(used):
        state = ops.use(state, appt(f"{pack_id}-U{n}", "2026-01-20T10:00"), NOW).after
    return state


def decide(
    appointment: Appointment,
    packs: list[PackState],
    preference: Preference | None = None,
    explicit: Preference | None = None,
) -> Decision:
    return resolve(
        appointment,
        practice=SYDNEY,
        at=NOW,
        packs=packs,
        templates=TEMPLATES,
        preference=preference,
        explicit=explicit,
    )


# R13 step by step ----------------------------------------------------------------------------


def test_no_preference_no_pack() -> None:
    decision = decide(appt("A1"), [pack("pk1")])
    assert decision == Decision(NoPack(), "no explicit choice and no preference")


def test_explicit_choice_wins_over_preference() -> None:
    packs = [pack("pk1"), pack("pk2")]
    decision = decide(appt("A1"), packs, PreferPack("pk1"), explicit=PreferPack("pk2"))
    assert decision == Decision(UsePack("pk2"), "chosen pack pk2")
    by_template = decide(appt("A1"), packs, PreferPack("pk1"), explicit=PreferTemplate("T"))
    assert by_template.action == OpenPack("T")
    by_service = decide(appt("A1"), packs, PreferPack("pk1"), explicit=PreferService("massage"))
    assert by_service == Decision(NoPack("massage"), "chosen service massage")


def test_explicit_pack_already_holding_the_appointment_is_kept() -> None:
    full = ops.use(pack("pk1", allowance=1), appt("A1"), NOW).after
    assert decide(appt("A1"), [full], explicit=PreferPack("pk1")).action == UsePack("pk1")


def test_preferred_pack_when_usable() -> None:
    decision = decide(appt("A1"), [pack("pk1"), pack("pk2")], PreferPack("pk2"))
    assert decision == Decision(UsePack("pk2"), "preferred pack pk2")


def test_preferred_pack_of_someone_else_is_no_pack() -> None:
    decision = decide(appt("A1"), [pack("pk1")], PreferPack("pk9"))
    assert decision.action == NoPack()
    assert "pk9" in decision.reason


def test_unusable_preferred_ad_hoc_pack_is_no_pack() -> None:
    exhausted = pack("pk1", allowance=1, used=1)
    decision = decide(appt("A1"), [exhausted, pack("pk2")], PreferPack("pk1"))
    assert decision.action == NoPack()
    assert decision.passed_over == (PassedOver("pk1", "the pack has nothing left"),)


def test_unusable_preferred_pack_from_a_deleted_template_is_no_pack() -> None:
    gone = PackTemplate("G", terms(1))
    exhausted = pack("pk1", gone, used=1)
    decision = decide(appt("A1"), [exhausted], PreferPack("pk1"))
    assert decision.action == NoPack()
    assert "pk1 cannot be used" in decision.reason


def test_unusable_preferred_pack_goes_on_with_its_template() -> None:
    exhausted = pack("pk1", PHYSIO, used=10)
    sibling = pack("pk2", PHYSIO, minutes=5)
    decision = decide(appt("A1"), [exhausted, sibling], PreferPack("pk1"))
    assert decision.action == UsePack("pk2")
    assert [p.candidate for p in decision.passed_over] == ["pk1"]
    fresh = decide(appt("A1"), [exhausted], PreferPack("pk1"))
    assert fresh.action == OpenPack("T")
    assert "a new pack is opened" in fresh.reason


def test_preferred_template_picks_the_pack_expiring_first_then_the_oldest() -> None:
    fixed = PackTemplate("T", terms(10, expiry=ExpiresOn(date(2026, 6, 30))))
    endless = PackTemplate("T", terms(10))
    first_use = PackTemplate("T", terms(10, expiry=ExpiresAfterFirstUse(Period(months=1))))
    packs = [
        pack("pk4", endless, minutes=4),
        ops.extend(pack("pk2", fixed, minutes=2), date(2026, 7, 31), "away", NOW).after,
        pack("pk3", endless, minutes=3),
        pack("pk1", fixed, minutes=1),
        pack("pk5", first_use, minutes=5),  # this appointment would start it: expires 03-02
        pack("pk6", YOGA),
    ]
    decision = decide(appt("A1", "2026-02-02T10:00"), packs, PreferTemplate("T"))
    assert decision.action == UsePack("pk5")
    assert decision.reason == "open pack pk5 from template T"
    assert [p.candidate for p in decision.passed_over] == ["pk1", "pk2", "pk3", "pk4"]
    assert decision.passed_over[0].reason == "pk5 expires first or is older"


def test_preferred_template_lists_its_unusable_packs_as_passed_over() -> None:
    packs = [pack("pk1", PHYSIO, used=10), pack("pk2", YOGA)]
    decision = decide(appt("A1"), packs, PreferTemplate("T"))
    assert decision.action == OpenPack("T")
    assert decision.passed_over == (PassedOver("pk1", "the pack has nothing left"),)


def test_preferred_template_that_cannot_cover_is_no_pack() -> None:
    decision = decide(appt("A1", service="massage"), [pack("pk1", PHYSIO)], PreferTemplate("T"))
    assert decision.action == NoPack()
    assert decision.reason.startswith("template T cannot cover it: ")
    assert decision.reason.endswith("covers only ['physio']")
    assert [p.candidate for p in decision.passed_over] == ["pk1"]


def test_preferred_template_that_does_not_exist_is_no_pack() -> None:
    decision = decide(appt("A1"), [], PreferTemplate("X"))
    assert decision == Decision(NoPack(), "preferred template X does not exist")


def test_preferred_service_bills_at_its_price() -> None:
    decision = decide(appt("A1"), [pack("pk1")], PreferService("physio"))
    assert decision == Decision(NoPack("physio"), "preferred service physio: billed at its price")


# Explicit choices that cannot be honoured -----------------------------------------------------


@pytest.mark.parametrize(
    ("explicit", "rule", "field", "value"),
    [
        (PreferPack("pk9"), "R4", "pack_id", "pk9"),
        (PreferPack("pk1"), "R3", "pack_id", "pk1"),
        (PreferTemplate("X"), "R2", "template_id", "X"),
        (PreferTemplate("Y"), "R4", "appointment.service_id", "physio"),
    ],
)
def test_explicit_choice_that_cannot_cover_raises(
    explicit: Preference, rule: str, field: str, value: str
) -> None:
    packs = [pack("pk1", allowance=1, used=1)]
    with pytest.raises(RefusedError) as refused:
        decide(appt("A1"), packs, explicit=explicit)
    assert (refused.value.rule, refused.value.field, refused.value.value) == (rule, field, value)


# R14 -----------------------------------------------------------------------------------------


def test_choices_list_usable_packs_then_usable_templates_by_name() -> None:
    any_service = PackTemplate("A", terms(3, name="any three"))
    money = PackTemplate(
        "M", terms(Allowance.money(aud("500")), name="Credit", pricing=PerPack(aud("450")))
    )
    templates = {t.id: t for t in (PHYSIO, YOGA, any_service, money)}
    packs = [
        pack("pk1", PHYSIO),
        pack("pk2", PHYSIO, used=10),
        pack("pk3", PHYSIO, minutes=-5),
    ]
    offered = choices(appt("A1"), practice=SYDNEY, at=NOW, packs=packs, templates=templates)
    assert [c.action for c in offered] == [
        UsePack("pk3"),
        UsePack("pk1"),
        OpenPack("A"),
        OpenPack("M"),
        OpenPack("T"),
    ]
    assert [c.label for c in offered] == [
        "Physio ten (pk3), 10 left",
        "Physio ten (pk1), 10 left",
        "new pack: any three",
        "new pack: Credit",
        "new pack: Physio ten",
    ]


def test_a_pack_an_earlier_first_use_would_expire_is_passed_over_for_a_new_one() -> None:
    monthly = PackTemplate(
        "M", terms(10, name="Monthly", expiry=ExpiresAfterFirstUse(Period(months=1)))
    )
    state = ops.open_pack("pk1", "C1", monthly.terms, SYDNEY, NOW, template_id="M").after
    state = ops.use(state, appt("A1", "2026-03-10T10:00"), NOW).after
    decision = resolve(
        appt("A0", "2026-02-01T10:00"),
        practice=SYDNEY,
        at=NOW,
        packs=[state],
        templates={"M": monthly},
        preference=PreferTemplate("M"),
    )
    assert decision.action == OpenPack("M")
    assert [p.candidate for p in decision.passed_over] == ["pk1"]


# Dispatch by kind of choice -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["preference", "explicit"])
def test_an_unknown_kind_of_choice_is_refused_naming_it(field: str) -> None:
    choice: Any = {field: "pk1"}  # as a host without a type checker may pass it
    with pytest.raises(InvalidValueError) as bad:
        resolve(appt("A1"), practice=SYDNEY, at=NOW, packs=[], templates={}, **choice)
    assert (bad.value.field, bad.value.value) == (field, "pk1")


def test_a_subclass_of_a_kind_of_choice_resolves_as_that_kind() -> None:
    @attrs.frozen
    class Favourite(PreferTemplate):
        pass

    decision = decide(appt("A1"), [], Favourite("T"))
    assert decision.action == OpenPack("T")


# An appointment already recorded (R6, R6a) ---------------------------------------------------


HELD = appt("A1")


def holding() -> PackState:
    return ops.use(pack("pk1", PHYSIO), HELD, NOW).after


@pytest.mark.parametrize(
    "asked", [None, PreferPack("pk1"), PreferTemplate("T")], ids=["again", "pack", "template"]
)
def test_asking_again_for_a_recorded_appointment_is_a_repeat(asked: Preference | None) -> None:
    decision = already_recorded(holding(), HELD, asked)
    assert decision == Decision(UsePack("pk1"), "already recorded on pack pk1")
    assert already_recorded(holding(), HELD, asked, move=True) == decision


def test_another_pack_for_a_recorded_appointment_is_a_move_or_refused() -> None:
    moved = already_recorded(holding(), HELD, PreferPack("pk2"), move=True)
    assert moved == Decision(UsePack("pk2"), "moved from pk1")
    for asked in (PreferPack("pk2"), PreferTemplate("Y"), PreferService("physio")):
        with pytest.raises(RefusedError) as refused:
            already_recorded(holding(), HELD, asked)
        assert (refused.value.rule, refused.value.field) == (Rule.R6, "appointment.id")
    with pytest.raises(RefusedError) as not_a_pack:
        already_recorded(holding(), HELD, PreferTemplate("Y"), move=True)
    assert not_a_pack.value.rule == "R6"


def test_other_facts_for_a_recorded_appointment_are_refused_first() -> None:
    other = attrs.evolve(HELD, duration=timedelta(minutes=30))
    for asked in (None, PreferPack("pk2")):
        with pytest.raises(RefusedError) as refused:
            already_recorded(holding(), other, asked, move=True)
        assert (refused.value.rule, refused.value.field) == ("R6a", "appointment.duration")


def test_already_recorded_needs_the_pack_that_holds_it() -> None:
    with pytest.raises(InvalidValueError) as wrong:
        already_recorded(pack("pk2"), HELD)
    assert (wrong.value.field, wrong.value.value) == ("holder", "pk2")


def test_a_client_may_prefer_only_their_own_pack() -> None:
    own = pack("pk1")
    assert unpreferable_because("C1", own) is None
    refusal = unpreferable_because("C2", own)
    assert refusal is not None
    assert (refusal.rule, refusal.field, refusal.value) == ("R4", "preference.pack_id", "pk1")
    assert "belongs to client C1, not C2" in refusal.reason
