"""Which pack an appointment draws on (R13) and the choices offered by hand (R14).

Pure functions: they are given the client's packs, the templates and the preference, and return
a :class:`Decision` with its reason and why every other candidate was passed over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import attrs

from sessionpacks.errors import InvalidValueError, RefusedError, Rule
from sessionpacks.ledger import PackState
from sessionpacks.model import (
    Appointment,
    PackTemplate,
    Practice,
    Preference,
    PreferPack,
    PreferService,
    PreferTemplate,
    instant,
)
from sessionpacks.operations import differing_fact, open_pack, unusable_because

__all__ = [
    "Choice",
    "Decision",
    "NoPack",
    "OpenPack",
    "PassedOver",
    "UsePack",
    "already_recorded",
    "choices",
    "resolve",
    "unpreferable_because",
]


@attrs.frozen
class UsePack:
    """Record the appointment on the open pack ``pack_id``."""

    pack_id: str


@attrs.frozen
class OpenPack:
    """Open a new pack from the template and record the appointment on it."""

    template_id: str


@attrs.frozen
class NoPack:
    """No pack: bill the appointment at ``service_id``'s price, or at its own if ``None``."""

    service_id: str | None = None


@attrs.frozen
class PassedOver:
    """A candidate that was not chosen, and why."""

    candidate: str
    reason: str


@attrs.frozen
class Decision:
    """What to do for an appointment, the reason, and the candidates passed over (R13)."""

    action: UsePack | OpenPack | NoPack
    reason: str
    passed_over: tuple[PassedOver, ...] = ()


def _expiry_key(pack: PackState, appointment: Appointment) -> tuple[date, datetime]:
    expiry = pack.expiry_if_used_on(appointment.local_date(pack.zone))
    return (expiry or date.max, instant(pack.opened_at))


def usable_packs(
    appointment: Appointment,
    packs: Sequence[PackState],
    template_id: str | None = None,
) -> tuple[list[PackState], list[PassedOver]]:
    """The packs that can cover ``appointment``, expiring first first, then oldest (R13.3)."""
    usable: list[PackState] = []
    passed: list[PassedOver] = []
    for pack in packs:
        if template_id is not None and pack.template_id != template_id:
            continue
        refusal = unusable_because(pack, appointment)
        if refusal is None:
            usable.append(pack)
        else:
            passed.append(PassedOver(pack.pack_id, refusal.reason))
    usable.sort(key=lambda p: _expiry_key(p, appointment))
    return usable, passed


def template_refusal(
    template: PackTemplate,
    appointment: Appointment,
    practice: Practice,
    at: datetime,
) -> RefusedError | None:
    """Why a new pack from ``template`` could not cover ``appointment``, or ``None``."""
    trial = open_pack(
        f"(new from {template.id})", appointment.client_id, template.terms, practice, at
    ).after
    return unusable_because(trial, appointment)


@attrs.frozen
class _Given:
    """What a resolution is decided on: the appointment and the client's world around it."""

    appointment: Appointment
    practice: Practice
    at: datetime
    packs: Sequence[PackState]
    templates: Mapping[str, PackTemplate]


def resolve(
    appointment: Appointment,
    *,
    practice: Practice,
    at: datetime,
    packs: Sequence[PackState],
    templates: Mapping[str, PackTemplate],
    preference: Preference | None = None,
    explicit: Preference | None = None,
) -> Decision:
    """Decide which pack covers ``appointment`` (R13). ``packs`` are the client's packs.

    An explicit choice wins: an explicit pack that cannot cover the appointment raises its
    :class:`RefusedError`; an explicit template opens a new pack from it. Otherwise the
    client's preference decides. Each kind of choice has its own small function, found in
    ``_EXPLICIT`` or ``_PREFERRED`` by the choice's class: a new kind is one more function
    and one more line there.
    """
    given = _Given(appointment, practice, at, packs, templates)
    if explicit is not None:
        return _dispatch(_EXPLICIT, "explicit", explicit)(explicit, given)
    return _dispatch(_PREFERRED, "preference", preference)(preference, given)


_Resolver = Callable[[Any, _Given], Decision]


def _dispatch(table: Mapping[type, _Resolver], field: str, choice: object) -> _Resolver:
    for kind in type(choice).__mro__:
        if kind in table:
            return table[kind]
    raise InvalidValueError(
        field, choice, "must be PreferService, PreferTemplate, PreferPack or None"
    )


def _find(packs: Sequence[PackState], pack_id: str) -> PackState | None:
    return next((p for p in packs if p.pack_id == pack_id), None)


# The client's preference (R13.2 to R13.4) ---------------------------------------------------


def _preferred_pack(preference: PreferPack, given: _Given) -> Decision:
    """R13.2: the pack if usable; if not, its template as in R13.3; otherwise no pack."""
    pack = _find(given.packs, preference.pack_id)
    if pack is None:
        return Decision(NoPack(), f"preferred pack {preference.pack_id} is not this client's")
    refusal = unusable_because(pack, given.appointment)
    if refusal is None:
        return Decision(UsePack(pack.pack_id), f"preferred pack {pack.pack_id}")
    passed = PassedOver(pack.pack_id, refusal.reason)
    if pack.template_id is None or pack.template_id not in given.templates:
        return Decision(NoPack(), f"preferred pack {pack.pack_id} cannot be used", (passed,))
    # The preferred pack was already passed over: do not list it twice.
    others = attrs.evolve(given, packs=[p for p in given.packs if p.pack_id != pack.pack_id])
    found = _from_template(given.templates[pack.template_id], others)
    return attrs.evolve(found, passed_over=(passed, *found.passed_over))


def _preferred_template(preference: PreferTemplate, given: _Given) -> Decision:
    """R13.3: the template's usable open packs, expiring first first, or a new one."""
    template = given.templates.get(preference.template_id)
    if template is None:
        return Decision(NoPack(), f"preferred template {preference.template_id} does not exist")
    return _from_template(template, given)


def _preferred_service(preference: PreferService, given: _Given) -> Decision:
    """R13.4: no pack; billed at the service's price."""
    return Decision(
        NoPack(preference.service_id),
        f"preferred service {preference.service_id}: billed at its price",
    )


def _no_preference(preference: None, given: _Given) -> Decision:
    return Decision(NoPack(), "no explicit choice and no preference")


_PREFERRED: Mapping[type, _Resolver] = {
    PreferPack: _preferred_pack,
    PreferTemplate: _preferred_template,
    PreferService: _preferred_service,
    type(None): _no_preference,
}


def _from_template(template: PackTemplate, given: _Given) -> Decision:
    appointment = given.appointment
    usable, passed = usable_packs(appointment, given.packs, template.id)
    if usable:
        chosen = usable[0]
        others = [
            PassedOver(p.pack_id, f"{chosen.pack_id} expires first or is older") for p in usable[1:]
        ]
        return Decision(
            UsePack(chosen.pack_id),
            f"open pack {chosen.pack_id} from template {template.id}",
            (*passed, *others),
        )
    frozen = _held_back(template, given)
    if frozen is not None:
        return Decision(NoPack(), frozen, tuple(passed))
    refusal = template_refusal(template, appointment, given.practice, given.at)
    if refusal is not None:
        return Decision(
            NoPack(), f"template {template.id} cannot cover it: {refusal.reason}", tuple(passed)
        )
    return Decision(
        OpenPack(template.id),
        f"no usable open pack from template {template.id}: a new pack is opened",
        tuple(passed),
    )


def _held_back(template: PackTemplate, given: _Given) -> str | None:
    """R22 with R13.3: a client whose pack from the template is on hold that day, and would
    cover the appointment but for the hold, is not sold a new pack meanwhile: the reason."""
    for pack in given.packs:
        if pack.template_id != template.id or not pack.holds:
            continue
        refusal = unusable_because(pack, given.appointment)
        if (
            refusal is not None
            and refusal.rule == Rule.R22
            and unusable_because(attrs.evolve(pack, holds=()), given.appointment) is None
        ):
            return f"{refusal.reason}: no new pack is opened during a hold"
    return None


# An explicit choice on the appointment (R13.1) ----------------------------------------------


def _explicit_pack(explicit: PreferPack, given: _Given) -> Decision:
    """The pack, which must be the client's and usable (unless it already holds the
    appointment, R6)."""
    appointment = given.appointment
    pack = _find(given.packs, explicit.pack_id)
    if pack is None:
        raise RefusedError(
            Rule.R4,
            "pack_id",
            explicit.pack_id,
            f"is not a pack of client {appointment.client_id}",
        )
    refusal = unusable_because(pack, appointment)
    if refusal is not None and pack.usage(appointment.id) is None:
        raise refusal
    return Decision(UsePack(pack.pack_id), f"chosen pack {pack.pack_id}")


def _explicit_template(explicit: PreferTemplate, given: _Given) -> Decision:
    """A new pack from the template, which must exist and be able to cover the appointment."""
    template = given.templates.get(explicit.template_id)
    if template is None:
        raise RefusedError(Rule.R2, "template_id", explicit.template_id, "no such template")
    refusal = template_refusal(template, given.appointment, given.practice, given.at)
    if refusal is not None:
        raise refusal
    return Decision(OpenPack(template.id), f"chosen template {template.id}: a new pack is opened")


def _explicit_service(explicit: PreferService, given: _Given) -> Decision:
    return Decision(NoPack(explicit.service_id), f"chosen service {explicit.service_id}")


_EXPLICIT: Mapping[type, _Resolver] = {
    PreferPack: _explicit_pack,
    PreferTemplate: _explicit_template,
    PreferService: _explicit_service,
}


# An appointment already recorded (R6) and a preferred pack (R4) -----------------------------


def already_recorded(
    holder: PackState,
    appointment: Appointment,
    asked: Preference | None = None,
    *,
    move: bool = False,
) -> Decision:
    """What asking for ``appointment`` means when ``holder`` already holds it (R6, R6a).

    A fact that differs from the recorded one is refused (R6a), naming the first such fact.
    With the same facts, asking again with no choice, naming ``holder`` or the template it
    came from is the same request repeated (a retry, a double click): ``UsePack(holder)``,
    nothing to write. Naming another pack is a move when ``move`` is asked (``UsePack`` of
    that pack, "moved from" ``holder``), and refused otherwise (R6).
    """
    recorded = holder.usage(appointment.id)
    if recorded is None:
        raise InvalidValueError(
            "holder", holder.pack_id, f"does not hold appointment {appointment.id}"
        )
    differing = differing_fact(recorded.appointment, appointment)
    if differing is not None:
        raise differing
    here = holder.pack_id
    if (
        asked is None
        or asked == PreferPack(here)
        or (isinstance(asked, PreferTemplate) and asked.template_id == holder.template_id)
    ):
        return Decision(UsePack(here), f"already recorded on pack {here}")
    if move and isinstance(asked, PreferPack):
        return Decision(UsePack(asked.pack_id), f"moved from {here}")
    raise RefusedError(
        Rule.R6,
        "appointment.id",
        appointment.id,
        f"is already active on pack {here}; move it instead",
    )


def unpreferable_because(client_id: str, pack: PackState) -> RefusedError | None:
    """Why ``client_id`` may not prefer ``pack`` (R4: it is another client's, not shared with
    them, R20), or ``None``."""
    if pack.serves(client_id):
        return None
    shared = f" (shared with {', '.join(pack.shared_with)})" if pack.shared_with else ""
    return RefusedError(
        Rule.R4,
        "preference.pack_id",
        pack.pack_id,
        f"belongs to client {pack.client_id}{shared}, not {client_id}",
    )


def _left(pack: PackState, appointment: Appointment) -> str:
    """What ``pack`` has left for ``appointment``: of its line, in a bundle (R24)."""
    line = pack.terms.line_of(appointment.service_id)
    if line is None:
        return str(pack.remaining)
    return f"{pack.terms.lines[line].name} {pack.line_remaining(line)!s}"


@attrs.frozen
class Choice:
    """One line of the list offered by hand: an open pack, or a template to open one from."""

    action: UsePack | OpenPack
    label: str


def choices(
    appointment: Appointment,
    *,
    practice: Practice,
    at: datetime,
    packs: Sequence[PackState],
    templates: Mapping[str, PackTemplate],
) -> tuple[Choice, ...]:
    """The client's usable open packs in R13.3's order, then usable templates by name (R14)."""
    usable, _ = usable_packs(appointment, packs)
    offered = [
        Choice(UsePack(p.pack_id), f"{p.terms.name} ({p.pack_id}), {_left(p, appointment)} left")
        for p in usable
    ]
    for template in sorted(templates.values(), key=lambda t: (t.name.casefold(), t.id)):
        if template_refusal(template, appointment, practice, at) is None:
            offered.append(Choice(OpenPack(template.id), f"new pack: {template.name}"))
    return tuple(offered)
