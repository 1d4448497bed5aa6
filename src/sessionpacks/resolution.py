"""Which pack an appointment draws on (R13) and the choices offered by hand (R14).

Pure functions: they are given the client's packs, the templates and the preference, and return
a :class:`Decision` with its reason and why every other candidate was passed over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

import attrs

from sessionpacks.errors import RefusedError
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
from sessionpacks.operations import open_pack, unusable_because

__all__ = [
    "Choice",
    "Decision",
    "NoPack",
    "OpenPack",
    "PassedOver",
    "UsePack",
    "choices",
    "resolve",
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
    :class:`RefusedError`; an explicit template opens a new pack from it.
    """
    if explicit is not None:
        return _explicit(appointment, explicit, practice, at, packs, templates)
    if isinstance(preference, PreferPack):
        pack = next((p for p in packs if p.pack_id == preference.pack_id), None)
        if pack is None:
            return Decision(NoPack(), f"preferred pack {preference.pack_id} is not this client's")
        refusal = unusable_because(pack, appointment)
        if refusal is None:
            return Decision(UsePack(pack.pack_id), f"preferred pack {pack.pack_id}")
        passed = PassedOver(pack.pack_id, refusal.reason)
        if pack.template_id is None or pack.template_id not in templates:
            return Decision(NoPack(), f"preferred pack {pack.pack_id} cannot be used", (passed,))
        # The preferred pack was already passed over: do not list it twice.
        others = [p for p in packs if p.pack_id != pack.pack_id]
        found = _from_template(appointment, templates[pack.template_id], practice, at, others)
        return attrs.evolve(found, passed_over=(passed, *found.passed_over))
    if isinstance(preference, PreferTemplate):
        template = templates.get(preference.template_id)
        if template is None:
            return Decision(NoPack(), f"preferred template {preference.template_id} does not exist")
        return _from_template(appointment, template, practice, at, packs)
    if isinstance(preference, PreferService):
        return Decision(
            NoPack(preference.service_id),
            f"preferred service {preference.service_id}: billed at its price",
        )
    return Decision(NoPack(), "no explicit choice and no preference")


def _from_template(
    appointment: Appointment,
    template: PackTemplate,
    practice: Practice,
    at: datetime,
    packs: Sequence[PackState],
) -> Decision:
    usable, passed = usable_packs(appointment, packs, template.id)
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
    refusal = template_refusal(template, appointment, practice, at)
    if refusal is not None:
        return Decision(
            NoPack(), f"template {template.id} cannot cover it: {refusal.reason}", tuple(passed)
        )
    return Decision(
        OpenPack(template.id),
        f"no usable open pack from template {template.id}: a new pack is opened",
        tuple(passed),
    )


def _explicit(
    appointment: Appointment,
    explicit: Preference,
    practice: Practice,
    at: datetime,
    packs: Sequence[PackState],
    templates: Mapping[str, PackTemplate],
) -> Decision:
    if isinstance(explicit, PreferPack):
        pack = next((p for p in packs if p.pack_id == explicit.pack_id), None)
        if pack is None:
            raise RefusedError(
                "R4",
                "pack_id",
                explicit.pack_id,
                f"is not a pack of client {appointment.client_id}",
            )
        refusal = unusable_because(pack, appointment)
        if refusal is not None and pack.usage(appointment.id) is None:
            raise refusal
        return Decision(UsePack(pack.pack_id), f"chosen pack {pack.pack_id}")
    if isinstance(explicit, PreferTemplate):
        template = templates.get(explicit.template_id)
        if template is None:
            raise RefusedError("R2", "template_id", explicit.template_id, "no such template")
        refusal = template_refusal(template, appointment, practice, at)
        if refusal is not None:
            raise refusal
        return Decision(
            OpenPack(template.id), f"chosen template {template.id}: a new pack is opened"
        )
    return Decision(NoPack(explicit.service_id), f"chosen service {explicit.service_id}")


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
        Choice(UsePack(p.pack_id), f"{p.terms.name} ({p.pack_id}), {p.remaining!s} left")
        for p in usable
    ]
    for template in sorted(templates.values(), key=lambda t: (t.name.casefold(), t.id)):
        if template_refusal(template, appointment, practice, at) is None:
            offered.append(Choice(OpenPack(template.id), f"new pack: {template.name}"))
    return tuple(offered)
