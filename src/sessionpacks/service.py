"""The application layer: each workflow of a practice is one call.

Every write reads the packs it needs, lets the pure domain decide, and commits conditional on the
versions it read. On a :class:`~sessionpacks.errors.ConcurrencyError` it reads and decides again,
up to ``retries`` times (R16). A refusal raises before anything is written (R17).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

import attrs

from sessionpacks import operations as ops
from sessionpacks.adapters.clock import SystemClock
from sessionpacks.errors import ConcurrencyError, InvalidValueError, NotFoundError, RefusedError
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import Mark, PackState, PackStatus
from sessionpacks.model import (
    Amount,
    Appointment,
    Money,
    PackTemplate,
    PackTerms,
    Preference,
    PreferPack,
    PreferService,
    PreferTemplate,
    instant,
    require_aware,
)
from sessionpacks.ports import Clock, PackRepository
from sessionpacks.pricing import InvoiceLine, refundable
from sessionpacks.resolution import Choice, Decision, NoPack, OpenPack, UsePack, choices, resolve

__all__ = ["Assignment", "Closure", "PackService"]

T = TypeVar("T")

_LIVE_ORDER = {
    PackStatus.OPEN: 0,
    PackStatus.EXHAUSTED: 1,
    PackStatus.EXPIRED: 1,
    PackStatus.CLOSED: 2,
    PackStatus.VOIDED: 3,
}


@attrs.frozen
class Assignment:
    """What happened to an appointment: the decision, and the pack it now draws on, if any."""

    appointment_id: str
    decision: Decision
    pack: PackState | None = None
    opened: bool = False
    events: tuple[RecordedEvent, ...] = ()

    @property
    def label(self) -> str | None:
        """``Session n of N`` while the usage is active."""
        if self.pack is None or self.pack.usage(self.appointment_id) is None:
            return None
        return self.pack.label(self.appointment_id)


@attrs.frozen
class Closure:
    """A closed pack, what remained and its refundable value (R10, R15)."""

    pack: PackState
    remaining: Amount
    refundable: Money


def _new_id() -> str:
    return f"pk_{uuid.uuid4().hex[:16]}"


class PackService:
    """The workflows of the spec on top of a :class:`~sessionpacks.ports.PackRepository`."""

    def __init__(
        self,
        repository: PackRepository,
        clock: Clock | None = None,
        *,
        retries: int = 5,
        new_pack_id: Callable[[], str] = _new_id,
    ) -> None:
        if type(retries) is not int or retries < 0:
            raise InvalidValueError("retries", retries, "must be a whole number >= 0")
        self.repository = repository
        self.clock = clock or SystemClock()
        self.retries = retries
        self._new_pack_id = new_pack_id

    def _now(self) -> datetime:
        return require_aware("clock.now()", self.clock.now())

    def _retrying(self, attempt: Callable[[], T]) -> T:
        for _ in range(self.retries):
            try:
                return attempt()
            except ConcurrencyError:
                continue
        return attempt()

    def _commit(self, *changes: ops.Change) -> tuple[RecordedEvent, ...]:
        return self.repository.commit(changes)

    # Templates and preferences ------------------------------------------------------------

    def add_template(self, template_id: str, terms: PackTerms) -> PackTemplate:
        """Save a new template at version 1; an id already in use is refused (edit it instead)."""
        template = PackTemplate(template_id, terms)
        try:
            self.repository.template(template_id)
        except NotFoundError:
            self.repository.save_template(template)
            return template
        raise RefusedError(
            "R2", "template_id", template_id, "already exists: edit it to make a new version"
        )

    def edit_template(self, template_id: str, **changes: object) -> PackTemplate:
        """A new version of a template; packs already open keep their terms (R2)."""

        def attempt() -> PackTemplate:
            revised = self.repository.template(template_id).revise(**changes)
            self.repository.save_template(revised)
            return revised

        return self._retrying(attempt)

    def set_preference(self, client_id: str, preference: Preference | None) -> None:
        """Set or clear a client's preferred service, template or pack (R13)."""
        if isinstance(preference, PreferPack):
            pack = self.repository.load(preference.pack_id)
            if pack.client_id != client_id:
                raise RefusedError(
                    "R4",
                    "preference.pack_id",
                    preference.pack_id,
                    f"belongs to client {pack.client_id}, not {client_id}",
                )
        elif isinstance(preference, PreferTemplate):
            self.repository.template(preference.template_id)
        elif preference is not None and not isinstance(preference, PreferService):
            raise InvalidValueError(
                "preference",
                preference,
                "must be PreferService, PreferTemplate, PreferPack or None",
            )
        self.repository.set_preference(client_id, preference)

    # Opening -------------------------------------------------------------------------------

    def open_pack(
        self,
        client_id: str,
        *,
        template_id: str | None = None,
        terms: PackTerms | None = None,
        pack_id: str | None = None,
        charged_on_open: bool = True,
    ) -> PackState:
        """Open a pack from a client's profile, from a template or ad hoc (R2).

        A pack charged per pack opened this way goes on its own invoice (``charged_on_open``).
        """
        if (template_id is None) == (terms is None):
            raise InvalidValueError(
                "template_id", template_id, "give a template_id or terms, not both"
            )
        if pack_id is not None:
            self._refuse_existing(pack_id)
        change = self._open(
            client_id,
            template_id,
            terms,
            self._new_pack_id() if pack_id is None else pack_id,
            charged_on_open,
        )
        self._commit(change)
        return change.after

    def _refuse_existing(self, pack_id: str) -> None:
        try:
            self.repository.load(pack_id)
        except NotFoundError:
            return
        raise RefusedError("R2", "pack_id", pack_id, "already names a pack in this practice")

    def _open(
        self,
        client_id: str,
        template_id: str | None,
        terms: PackTerms | None,
        pack_id: str,
        charged_on_open: bool,
    ) -> ops.Change:
        version = None
        if template_id is not None:
            template = self.repository.template(template_id)
            terms, version = template.terms, template.version
        assert terms is not None
        return ops.open_pack(
            pack_id,
            client_id,
            terms,
            self.repository.practice,
            self._now(),
            template_id=template_id,
            template_version=version,
            charged_on_open=charged_on_open,
        )

    # Assigning -----------------------------------------------------------------------------

    def decide(self, appointment: Appointment, explicit: Preference | None = None) -> Decision:
        """Which pack the appointment would draw on, and why (R13), without writing."""
        return self._decide(appointment, explicit)[0]

    def _decide(
        self, appointment: Appointment, explicit: Preference | None
    ) -> tuple[Decision, dict[str, PackState]]:
        """The decision, and the packs it was made on (at the versions read)."""
        repo = self.repository
        packs: list[PackState] = []
        templates: dict[str, PackTemplate] = {}
        preference: Preference | None = None
        # An explicit choice needs only what it names: one read instead of four.
        if isinstance(explicit, PreferPack):
            packs = self._client_pack(appointment.client_id, explicit.pack_id)
        elif isinstance(explicit, PreferTemplate):
            templates = self._template_if_any(explicit.template_id)
        elif explicit is None:
            packs = repo.client_packs(appointment.client_id)
            templates = {t.id: t for t in repo.templates()}
            preference = repo.preference(appointment.client_id)
        decision = resolve(
            appointment,
            practice=repo.practice,
            at=self._now(),
            packs=packs,
            templates=templates,
            preference=preference,
            explicit=explicit,
        )
        return decision, {p.pack_id: p for p in packs}

    def _client_pack(self, client_id: str, pack_id: str) -> list[PackState]:
        try:
            pack = self.repository.load(pack_id)
        except NotFoundError:
            return []
        return [pack] if pack.client_id == client_id else []

    def _template_if_any(self, template_id: str) -> dict[str, PackTemplate]:
        try:
            return {template_id: self.repository.template(template_id)}
        except NotFoundError:
            return {}

    def choices(self, appointment: Appointment) -> tuple[Choice, ...]:
        """Usable open packs first, then templates by name (R14)."""
        repo = self.repository
        return choices(
            appointment,
            practice=repo.practice,
            at=self._now(),
            packs=repo.client_packs(appointment.client_id),
            templates={t.id: t for t in repo.templates()},
        )

    def book(self, appointment: Appointment) -> Assignment:
        """Apply the client's default to a new appointment (R13)."""
        return self._retrying(lambda: self._assign(appointment, None))

    def assign(
        self,
        appointment: Appointment,
        *,
        pack_id: str | None = None,
        template_id: str | None = None,
    ) -> Assignment:
        """Assign an open pack, or a template that opens a new one, to an appointment."""
        if (pack_id is None) == (template_id is None):
            raise InvalidValueError("pack_id", pack_id, "give a pack_id or a template_id")
        explicit: Preference = (
            PreferPack(pack_id) if pack_id is not None else PreferTemplate(template_id or "")
        )
        return self._retrying(lambda: self._assign(appointment, explicit))

    def _assign(self, appointment: Appointment, explicit: Preference | None) -> Assignment:
        holder = self.repository.pack_of_appointment(appointment.id)
        if holder is not None:
            return self._already(appointment, holder, explicit)
        decision, packs = self._decide(appointment, explicit)
        action = decision.action
        if isinstance(action, NoPack):
            return Assignment(appointment.id, decision)
        if isinstance(action, OpenPack):
            opened = self._open(
                appointment.client_id,
                action.template_id,
                None,
                self._new_pack_id(),
                charged_on_open=False,
            )
            change = ops.use(opened.after, appointment, self._now())
            merged = ops.Change(
                None, change.after, opened.entries + change.entries, opened.events + change.events
            )
            return Assignment(appointment.id, decision, change.after, True, self._commit(merged))
        change = ops.use(packs[action.pack_id], appointment, self._now())
        return Assignment(appointment.id, decision, change.after, False, self._commit(change))

    def _already(
        self, appointment: Appointment, holder: str, explicit: Preference | None
    ) -> Assignment:
        """The appointment is active on ``holder``: asking again writes nothing (R6).

        Booking again, or naming its pack or the template its pack came from, is the same
        request repeated (a retried call, a double click); naming another is a move.
        """
        pack = self.repository.load(holder)
        repeated = (
            explicit is None
            or explicit == PreferPack(holder)
            or (isinstance(explicit, PreferTemplate) and explicit.template_id == pack.template_id)
        )
        if not repeated:
            raise RefusedError(
                "R6",
                "appointment.id",
                appointment.id,
                f"is already active on pack {holder}; move it instead",
            )
        return Assignment(
            appointment.id, Decision(UsePack(holder), f"already recorded on pack {holder}"), pack
        )

    def move(self, appointment: Appointment, to_pack_id: str) -> Assignment:
        """Release the appointment from its pack and use ``to_pack_id``, atomically (R6)."""

        def attempt() -> Assignment:
            holder = self.repository.pack_of_appointment(appointment.id)
            target = self.repository.load(to_pack_id)
            decision = Decision(UsePack(to_pack_id), f"moved from {holder}")
            if holder is None or holder == to_pack_id:
                return self._assign(appointment, PreferPack(to_pack_id))
            released = ops.release(
                _holding(self.repository.load(holder), appointment.id),
                appointment.id,
                self._now(),
                f"moved to {to_pack_id}",
            )
            used = ops.use(target, appointment, self._now())
            return Assignment(
                appointment.id, decision, used.after, False, self._commit(released, used)
            )

        return self._retrying(attempt)

    def add_to_invoice(
        self,
        appointment: Appointment,
        *,
        pack_id: str | None = None,
        template_id: str | None = None,
    ) -> InvoiceLine:
        """Record an appointment that already happened on a pack and issue its invoice line."""
        if pack_id is None and template_id is None:
            self.book(appointment)
        else:
            self.assign(appointment, pack_id=pack_id, template_id=template_id)
        return self.invoice_line(appointment.id)

    # Changing a usage ----------------------------------------------------------------------

    def _on_holder(
        self, appointment_id: str, decide: Callable[[PackState], ops.Change]
    ) -> PackState:
        def attempt() -> PackState:
            holder = self.repository.pack_of_appointment(appointment_id)
            if holder is None:
                raise NotFoundError("appointment_id", appointment_id, "is not active on any pack")
            change = decide(_holding(self.repository.load(holder), appointment_id))
            self._commit(change)
            return change.after

        return self._retrying(attempt)

    def cancel(self, appointment_id: str, cancelled_at: datetime | None = None) -> PackState:
        """Cancel: late inside the notice window, when the policy decides whether it consumes."""
        at = self._now()
        when = at if cancelled_at is None else require_aware("cancelled_at", cancelled_at)
        return self._on_holder(
            appointment_id, lambda s: ops.cancel(s, appointment_id, self._now(), cancelled_at=when)
        )

    def late_cancel(self, appointment_id: str) -> PackState:
        """A cancellation the receptionist calls late, whatever the clock says (R7)."""
        return self._on_holder(
            appointment_id, lambda s: ops.cancel(s, appointment_id, self._now(), late=True)
        )

    def no_show(self, appointment_id: str) -> PackState:
        """The client did not come: the policy decides whether it consumes (R7)."""
        return self._on_holder(
            appointment_id, lambda s: ops.cancel(s, appointment_id, self._now(), no_show=True)
        )

    def reschedule(self, appointment_id: str, start: datetime) -> PackState:
        """Move the appointment's start, re-checked against the expiry (R5, R7)."""
        require_aware("start", start)
        return self._on_holder(
            appointment_id, lambda s: ops.reschedule(s, appointment_id, start, self._now())
        )

    def mark(self, appointment_id: str, why: Mark) -> PackState:
        return self._on_holder(
            appointment_id, lambda s: ops.mark(s, appointment_id, why, self._now())
        )

    # Changing a pack -----------------------------------------------------------------------

    def _on_pack(
        self, pack_id: str, decide: Callable[[PackState], ops.Change]
    ) -> tuple[ops.Change, tuple[RecordedEvent, ...]]:
        def attempt() -> tuple[ops.Change, tuple[RecordedEvent, ...]]:
            change = decide(self.repository.load(pack_id))
            return change, self._commit(change)

        return self._retrying(attempt)

    def adjust(self, pack_id: str, amount: Amount, reason: str) -> PackState:
        """A credit or debit with a reason (R9)."""
        return self._on_pack(pack_id, lambda s: ops.adjust(s, amount, reason, self._now()))[0].after

    def extend(self, pack_id: str, until: date, reason: str) -> PackState:
        """Move the pack's expiry date later (R5)."""
        return self._on_pack(pack_id, lambda s: ops.extend(s, until, reason, self._now()))[0].after

    def close(self, pack_id: str, reason: str = "") -> Closure:
        """Close early; reports what remained and its refundable value (R10, R15)."""
        change, _ = self._on_pack(pack_id, lambda s: ops.close(s, reason, self._now()))
        return Closure(change.after, change.after.remaining, refundable(change.after))

    def void(self, pack_id: str, reason: str = "") -> PackState:
        """Void a pack opened in error with no active usage (R10)."""
        return self._on_pack(pack_id, lambda s: ops.void(s, reason, self._now()))[0].after

    def sweep(self, as_of: date) -> tuple[RecordedEvent, ...]:
        """The expiry sweep: ``PackExpired`` once per expiry for packs with something left."""
        if type(as_of) is not date:
            raise InvalidValueError("as_of", as_of, "must be a date")
        emitted: list[RecordedEvent] = []
        for candidate in self.repository.expiry_candidates(as_of):
            _, recorded = self._on_pack(
                candidate.pack_id, lambda s: ops.expire(s, as_of, self._now())
            )
            emitted.extend(recorded)
        return tuple(emitted)

    # Reading -------------------------------------------------------------------------------

    def pack(self, pack_id: str) -> PackState:
        return self.repository.load(pack_id)

    def client_packs(self, client_id: str) -> list[PackState]:
        """A client's packs, open ones first, then exhausted or expired, closed, voided."""
        now = self._now()
        packs = self.repository.client_packs(client_id)
        return sorted(packs, key=lambda p: (_LIVE_ORDER[p.status(now)], instant(p.opened_at)))

    def invoice_line(self, appointment_id: str) -> InvoiceLine:
        """Issue (once) and return the invoice line of an appointment on a pack (R8, R15)."""
        lines: list[InvoiceLine] = []

        def decide(state: PackState) -> ops.Change:
            change, line = ops.issue_invoice(state, appointment_id, self._now())
            lines.append(line)
            return change

        self._on_holder(appointment_id, decide)
        return lines[-1]

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        return self.repository.events_since(position, limit)


def _holding(state: PackState, appointment_id: str) -> PackState:
    """``state``, if the appointment is still active on it: a writer that moved or released it
    between our two reads is a conflict to retry, not a refusal (R16)."""
    if state.usage(appointment_id) is None:
        raise ConcurrencyError("appointment_id", appointment_id, f"left pack {state.pack_id}")
    return state
