"""The application layer: each workflow of a practice is one call.

Every write reads the packs it needs, lets the pure domain decide, and commits conditional on the
versions it read. On a :class:`~sessionpacks.errors.ConcurrencyError` it reads and decides again,
up to ``retries`` times (R16). A refusal raises before anything is written (R17).
"""

from __future__ import annotations

import random
import time
import types
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from functools import partial
from typing import Any, Generic, TypeVar

import attrs

from sessionpacks import _batch, _reporting
from sessionpacks import operations as ops
from sessionpacks._commands import decode_result, encode_result, fingerprint, numbered
from sessionpacks._limits import check_count, check_day, check_id, check_instant
from sessionpacks.clock import SystemClock
from sessionpacks.errors import (
    ConcurrencyError,
    ConnectionLostError,
    InvalidValueError,
    NotFoundError,
    RefusedError,
    Rule,
    SessionPacksError,
)
from sessionpacks.events import Event, RecordedEvent
from sessionpacks.ledger import (
    Entry,
    Mark,
    Migration,
    PackState,
    PackStatus,
    Released,
    replay_as_of,
)
from sessionpacks.model import (
    Amount,
    Appointment,
    Money,
    PackTemplate,
    PackTerms,
    Practice,
    Preference,
    PreferPack,
    PreferService,
    PreferTemplate,
    instant,
    require_aware,
)
from sessionpacks.operations import AppointmentStatus
from sessionpacks.ports import (
    Clock,
    CommandRecord,
    PackPage,
    PackQuery,
    PackRepository,
    check_page,
)
from sessionpacks.pricing import InvoiceLine, PackFigures, figures, refundable
from sessionpacks.pricing import invoice_line as line_of
from sessionpacks.reports import JournalAccounts, JournalLine, Report
from sessionpacks.resolution import (
    Choice,
    Decision,
    NoPack,
    OpenPack,
    UsePack,
    already_recorded,
    choices,
    resolve,
    unpreferable_because,
)

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
    """A closed pack, what remained and its refundable value (R10, R15).

    ``released`` names the appointments after the closing instant that the close released in
    the same change (R10a); ``figures`` are the pack's money figures after it (R15a), which
    nothing changes afterwards.
    """

    pack: PackState
    remaining: Amount
    refundable: Money
    released: tuple[str, ...] = ()
    figures: PackFigures | None = None


@attrs.frozen
class _Assigned:
    """An assignment decided and not yet written: the change to write (``None``: nothing), the
    state the appointment is then on, and the clients' packs the decision holds on (R13a)."""

    decision: Decision
    change: ops.Change | None = None
    pack: PackState | None = None
    opened: bool = False
    client_packs: Mapping[str, int] | None = None


@attrs.frozen
class _Recorded:
    """The status an appointment is recorded with (R7): booked, unless a host's records say
    it was cancelled, cancelled late or not attended."""

    status: AppointmentStatus = AppointmentStatus.BOOKED
    cancelled_at: datetime | None = None

    def draws_on(self, terms: PackTerms, appointment: Appointment) -> bool:
        return ops.draws_on(terms, appointment, self.status, self.cancelled_at)


_BOOKED = _Recorded()


def _given_back(decision: Decision, where: str) -> Decision:
    """Nothing to record: ``where`` (the pack or template decided on) gives it back (R7)."""
    return Decision(
        NoPack(),
        f"{where} gives such a session back under its policy: nothing to record",
        decision.passed_over,
    )


@attrs.frozen
class _Plan(Generic[T]):
    """A decided write: how to commit it, and the command's result once its events have
    positions. ``events`` are the events the write will record, for a result stored before
    the store has numbered them (R27)."""

    write: Callable[[CommandRecord | None], tuple[RecordedEvent, ...]]
    result: Callable[[tuple[RecordedEvent, ...]], T]
    events: tuple[Event, ...] = ()


# Commands that record an appointment: the same facts again return the usage already recorded
# (R6, R6a), so sending one again after a lost connection cannot record it twice.
_SAFE_TO_REPEAT = frozenset({"book", "assign", "move", "add_to_invoice", "invoice_line", "record"})


def _new_id() -> str:
    return f"pk_{uuid.uuid4().hex[:16]}"


def _require(field: str, value: Any, kind: type[Any] | types.UnionType) -> None:
    if not isinstance(value, kind):
        raise InvalidValueError(field, value, f"must be {getattr(kind, '__name__', kind)}")


class PackService:
    """The workflows of the spec on top of a :class:`~sessionpacks.ports.PackRepository`.

    Every method that writes takes an ``idempotency_key`` (R27): a retry with the same key
    returns the first call's result and writes nothing; the same key with other arguments is
    refused. The key is stored in the same atomic change as the command's writes.
    """

    def __init__(
        self,
        repository: PackRepository,
        clock: Clock | None = None,
        *,
        retries: int = 10,
        new_pack_id: Callable[[], str] = _new_id,
    ) -> None:
        if type(retries) is not int or not 0 <= retries <= 10_000:
            raise InvalidValueError("retries", retries, "must be a whole number from 0 to 10000")
        if not isinstance(repository, PackRepository):
            raise InvalidValueError("repository", repository, "must be a PackRepository")
        if clock is not None and not isinstance(clock, Clock):
            raise InvalidValueError("clock", clock, "must be a Clock (with a now() method)")
        if not callable(new_pack_id):
            raise InvalidValueError("new_pack_id", new_pack_id, "must be a function of no argument")
        self.repository = repository
        self.clock = clock or SystemClock()
        self.retries = retries
        self._new_pack_id = new_pack_id
        self._jitter = random.Random()

    def _now(self) -> datetime:
        return require_aware("clock.now()", self.clock.now())

    def _retrying(
        self, attempt: Callable[[], T], again: tuple[type[Exception], ...] = (ConcurrencyError,)
    ) -> T:
        deciding = getattr(self.repository, "deciding", None)
        if deciding is not None:  # a store that checks answers from memory (PostgreSQL)
            attempt = partial(_within, deciding, attempt)
        for tried in range(self.retries):
            try:
                return attempt()
            except again:
                # A random pause, growing with each try, so that writers who collided do not
                # collide again in lockstep: the one that lost to all the others still wins.
                time.sleep(self._jitter.uniform(0, min(0.05, 0.001 * 2**tried)))
        return attempt()

    def _run(
        self,
        key: str | None,
        command: str,
        arguments: dict[str, Any],
        kind: Any,
        decide: Callable[[], _Plan[T]],
    ) -> T:
        """Decide and write, again on a conflict (R16); with a key, at most once (R27).

        A command that lost its connection to the store is sent again only where a repeat
        cannot write twice: with a key, or when it records an appointment (R6)."""
        again: tuple[type[Exception], ...] = (ConcurrencyError,)
        if key is not None or command in _SAFE_TO_REPEAT:
            again = (ConcurrencyError, ConnectionLostError)
        if key is None:
            return self._retrying(lambda: self._write(decide(), None), again)
        check_id("idempotency_key", key)
        digest = fingerprint(command, arguments)

        def attempt() -> T:
            stored = self.repository.command(key)
            if stored is not None:
                repeated: T = self._repeat(stored, digest, command, kind)
                return repeated
            plan = decide()
            first = encode_result(plan.result(numbered(plan.events)), kind)
            return self._write(plan, CommandRecord(key, digest, first))

        return self._retrying(attempt, again)

    @staticmethod
    def _write(plan: _Plan[T], record: CommandRecord | None) -> T:
        return plan.result(plan.write(record))

    @staticmethod
    def _repeat(stored: CommandRecord, digest: str, command: str, kind: type[T]) -> T:
        if stored.fingerprint != digest:
            raise RefusedError(
                Rule.R27,
                "idempotency_key",
                stored.key,
                f"was used by another command or other arguments, not this {command}",
            )
        result: T = decode_result(stored, kind)
        return result

    def _commit_plan(
        self,
        changes: Sequence[ops.Change],
        result: Callable[[tuple[RecordedEvent, ...]], T],
        client_packs: Mapping[str, int] | None = None,
    ) -> _Plan[T]:
        def write(record: CommandRecord | None) -> tuple[RecordedEvent, ...]:
            return self.repository.commit(changes, client_packs=client_packs, command=record)

        return _Plan(write, result, tuple(e for change in changes for e in change.events))

    # Templates and preferences ------------------------------------------------------------

    def add_template(
        self, template_id: str, terms: PackTerms, *, idempotency_key: str | None = None
    ) -> PackTemplate:
        """Save a new template at version 1; an id already in use is refused (edit it instead)."""
        template = PackTemplate(template_id, terms)

        def decide() -> _Plan[PackTemplate]:
            try:
                self.repository.template(template_id)
            except NotFoundError:
                return self._template_plan(template)
            raise RefusedError(
                Rule.R2, "template_id", template_id, "already exists: edit it to make a new version"
            )

        arguments = {"template_id": template_id, "terms": terms}
        return self._run(idempotency_key, "add_template", arguments, PackTemplate, decide)

    def _template_plan(self, template: PackTemplate) -> _Plan[PackTemplate]:
        def write(record: CommandRecord | None) -> tuple[RecordedEvent, ...]:
            self.repository.save_template(template, command=record)
            return ()

        return _Plan(write, lambda _: template)

    def edit_template(
        self, template_id: str, *, idempotency_key: str | None = None, **changes: object
    ) -> PackTemplate:
        """A new version of a template; packs already open keep their terms (R2)."""
        check_id("template_id", template_id)

        def decide() -> _Plan[PackTemplate]:
            return self._template_plan(self.repository.template(template_id).revise(**changes))

        arguments = {"template_id": template_id, **changes}
        return self._run(idempotency_key, "edit_template", arguments, PackTemplate, decide)

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Set or clear a client's preferred service, template or pack (R13)."""
        check_id("client_id", client_id)
        if preference is not None and not isinstance(
            preference, PreferService | PreferTemplate | PreferPack
        ):
            raise InvalidValueError(
                "preference",
                preference,
                "must be PreferService, PreferTemplate, PreferPack or None",
            )

        def decide() -> _Plan[None]:
            if isinstance(preference, PreferPack):
                refusal = unpreferable_because(client_id, self.repository.load(preference.pack_id))
                if refusal is not None:
                    raise refusal
            elif isinstance(preference, PreferTemplate):
                self.repository.template(preference.template_id)

            def write(record: CommandRecord | None) -> tuple[RecordedEvent, ...]:
                self.repository.set_preference(client_id, preference, command=record)
                return ()

            return _Plan(write, lambda _: None)

        arguments = {"client_id": client_id, "preference": preference}
        self._run(idempotency_key, "set_preference", arguments, type(None), decide)

    # Opening -------------------------------------------------------------------------------

    def open_pack(
        self,
        client_id: str,
        *,
        template_id: str | None = None,
        terms: PackTerms | None = None,
        pack_id: str | None = None,
        charged_on_open: bool = True,
        migrated: Migration | None = None,
        shared_with: Sequence[str] = (),
        idempotency_key: str | None = None,
    ) -> PackState:
        """Open a pack from a client's profile, from a template or ad hoc (R2).

        A pack charged per pack opened this way goes on its own invoice (``charged_on_open``),
        unless it is ``migrated``: brought from another system, where it was paid, opened on
        ``migrated.opened_on`` (its expiry counts from it) with ``migrated.used`` used and
        ``migrated.numbered`` sessions numbered there, so it goes on at the next number (R19).
        ``shared_with`` lists other clients who may draw on it, ``client_id`` its owner (R20).
        """
        if (template_id is None) == (terms is None):
            raise InvalidValueError(
                "template_id", template_id, "give a template_id or terms, not both"
            )
        if type(charged_on_open) is not bool:
            raise InvalidValueError("charged_on_open", charged_on_open, "must be a bool")
        check_id("client_id", client_id)
        if pack_id is not None:
            check_id("pack_id", pack_id)
        if template_id is not None:
            check_id("template_id", template_id)
        listed = ops.check_shared_with(client_id, shared_with)

        def decide() -> _Plan[PackState]:
            if pack_id is not None:
                self._refuse_existing(pack_id)
            change = self._open(
                client_id,
                template_id,
                terms,
                self._made_pack_id() if pack_id is None else pack_id,
                charged_on_open and migrated is None,
                migrated,
                listed,
            )
            return self._commit_plan([change], lambda _: change.after)

        arguments = {
            "client_id": client_id,
            "template_id": template_id,
            "terms": terms,
            "pack_id": pack_id,
            "charged_on_open": charged_on_open,
            "migrated": migrated,
            **({"shared_with": listed} if listed else {}),
        }
        return self._run(idempotency_key, "open_pack", arguments, PackState, decide)

    def _made_pack_id(self) -> str:
        return check_id("new_pack_id()", self._new_pack_id())

    def _refuse_existing(self, pack_id: str) -> None:
        try:
            self.repository.load(pack_id)
        except NotFoundError:
            return
        raise RefusedError(Rule.R2, "pack_id", pack_id, "already names a pack in this practice")

    def _open(
        self,
        client_id: str,
        template_id: str | None,
        terms: PackTerms | None,
        pack_id: str,
        charged_on_open: bool,
        migrated: Migration | None = None,
        shared_with: tuple[str, ...] = (),
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
            migrated=migrated,
            shared_with=shared_with,
        )

    # Assigning -----------------------------------------------------------------------------

    def decide(self, appointment: Appointment, explicit: Preference | None = None) -> Decision:
        """Which pack the appointment would draw on, and why (R13), without writing."""
        _require("appointment", appointment, Appointment)
        if explicit is not None:
            _require("explicit", explicit, PreferService | PreferTemplate | PreferPack)
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
            packs += self._preferred_elsewhere(preference, packs)
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

    def _preferred_elsewhere(
        self, preference: Preference | None, packs: list[PackState]
    ) -> list[PackState]:
        """The preferred pack when it is no longer among the client's (no longer shared with
        them, R20): resolution passes it over and goes on with its template (R13.2)."""
        if not isinstance(preference, PreferPack) or any(
            p.pack_id == preference.pack_id for p in packs
        ):
            return []
        try:
            return [self.repository.load(preference.pack_id)]
        except NotFoundError:
            return []

    def _client_pack(self, client_id: str, pack_id: str) -> list[PackState]:
        try:
            pack = self.repository.load(pack_id)
        except NotFoundError:
            return []
        return [pack] if pack.serves(client_id) else []

    def _template_if_any(self, template_id: str) -> dict[str, PackTemplate]:
        try:
            return {template_id: self.repository.template(template_id)}
        except NotFoundError:
            return {}

    def choices(self, appointment: Appointment) -> tuple[Choice, ...]:
        """Usable open packs first, then templates by name (R14)."""
        _require("appointment", appointment, Appointment)
        repo = self.repository
        return choices(
            appointment,
            practice=repo.practice,
            at=self._now(),
            packs=repo.client_packs(appointment.client_id),
            templates={t.id: t for t in repo.templates()},
        )

    def book(self, appointment: Appointment, *, idempotency_key: str | None = None) -> Assignment:
        """Apply the client's default to a new appointment (R13)."""
        _require("appointment", appointment, Appointment)
        return self._run(
            idempotency_key,
            "book",
            {"appointment": appointment},
            Assignment,
            lambda: self._assign(appointment, None),
        )

    def assign(
        self,
        appointment: Appointment,
        *,
        pack_id: str | None = None,
        template_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Assignment:
        """Assign an open pack, or a template that opens a new one, to an appointment."""
        explicit = self._explicit(appointment, pack_id, template_id)
        arguments = {"appointment": appointment, "explicit": explicit}
        return self._run(
            idempotency_key,
            "assign",
            arguments,
            Assignment,
            lambda: self._assign(appointment, explicit),
        )

    @staticmethod
    def _explicit(
        appointment: Appointment, pack_id: str | None, template_id: str | None
    ) -> Preference:
        _require("appointment", appointment, Appointment)
        if (pack_id is None) == (template_id is None):
            raise InvalidValueError("pack_id", pack_id, "give a pack_id or a template_id")
        if pack_id is not None:
            return PreferPack(check_id("pack_id", pack_id))
        return PreferTemplate(check_id("template_id", template_id))

    def _assign(
        self,
        appointment: Appointment,
        explicit: Preference | None,
        recorded: _Recorded = _BOOKED,
    ) -> _Plan[Assignment]:
        return self._assigned_plan(
            appointment.id, self._assignment(appointment, explicit, recorded)
        )

    def _assigned_plan(self, appointment_id: str, assigned: _Assigned) -> _Plan[Assignment]:
        return self._commit_plan(
            [] if assigned.change is None else [assigned.change],
            lambda events: Assignment(
                appointment_id, assigned.decision, assigned.pack, assigned.opened, events
            ),
            assigned.client_packs,
        )

    def _assignment(
        self, appointment: Appointment, explicit: Preference | None, recorded: _Recorded = _BOOKED
    ) -> _Assigned:
        """What recording ``appointment`` with its status does: on the pack already holding
        it, or on the pack the domain decides (R6, R13)."""
        holder = self.repository.pack_of_appointment(appointment.id)
        if holder is not None:
            return self._held(appointment, holder, explicit, recorded)
        if not ops.may_draw(recorded.status, recorded.cancelled_at):
            return _Assigned(Decision(NoPack(), "cancelled in good time: nothing to record"))
        decision, packs = self._decide(appointment, explicit)
        action = decision.action
        if isinstance(action, NoPack):
            return _Assigned(decision)
        if isinstance(action, OpenPack):
            # R13a counts the packs the client owns: a pack shared with them opens no pack.
            owned = sum(p.client_id == appointment.client_id for p in packs.values())
            seen = None if explicit is not None else {appointment.client_id: owned}
            return self._open_and_use(appointment, decision, action, recorded, seen)
        pack = packs[action.pack_id]
        if not recorded.draws_on(pack.terms, appointment):
            return _Assigned(_given_back(decision, f"pack {pack.pack_id}"))
        # Resolution chose this very state as usable (R13, R14): not checked a second time.
        change = ops.record(
            pack,
            appointment,
            recorded.status,
            self._now(),
            cancelled_at=recorded.cancelled_at,
            usable=True,
        )
        return _Assigned(decision, change, change.after)

    def _held(
        self,
        appointment: Appointment,
        holder: str,
        explicit: Preference | None,
        recorded: _Recorded,
    ) -> _Assigned:
        """The appointment is active on ``holder``. Booked, asking again is the same request
        repeated or refused, as the domain decides (R6, R6a); another status acts on the usage
        there."""
        pack = _holding(self.repository.load(holder), appointment.id)
        if recorded.status is AppointmentStatus.BOOKED:
            return _Assigned(already_recorded(pack, appointment, explicit), None, pack)
        change = ops.record(
            pack, appointment, recorded.status, self._now(), cancelled_at=recorded.cancelled_at
        )
        decision = Decision(UsePack(holder), f"{recorded.status.value} on pack {holder}")
        return _Assigned(decision, change if change.entries else None, change.after)

    def _open_and_use(
        self,
        appointment: Appointment,
        decision: Decision,
        action: OpenPack,
        recorded: _Recorded,
        seen_packs: Mapping[str, int] | None,
    ) -> _Assigned:
        """Open a pack and use it in one change. A default's decision to open holds only while
        the client has the packs it was made on (R13a); an explicit template always opens."""
        template = self.repository.template(action.template_id)
        if not recorded.draws_on(template.terms, appointment):
            return _Assigned(_given_back(decision, f"template {template.id}"))
        change = ops.open_and_use(
            self._made_pack_id(),
            appointment,
            template.terms,
            self.repository.practice,
            self._now(),
            template_id=template.id,
            template_version=template.version,
            status=recorded.status,
            cancelled_at=recorded.cancelled_at,
        )
        return _Assigned(decision, change, change.after, True, seen_packs)

    def record(
        self,
        appointment: Appointment,
        status: AppointmentStatus,
        *,
        cancelled_at: datetime | None = None,
        pack_id: str | None = None,
        template_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Assignment:
        """Record an appointment whose status is already known, in one atomic change (R3 to R7):
        what an import from another system, or a host catching up, does.

        ``booked`` is :meth:`book`, or :meth:`assign` with ``pack_id`` or ``template_id``. A
        cancellation in good time (no ``cancelled_at``), a late cancellation or a no-show of an
        appointment not on a pack is used and marked on the pack R13 decides only if its policy
        keeps such a session, and nothing is recorded otherwise; of an appointment on a pack, it
        is :meth:`cancel`, :meth:`late_cancel` or :meth:`no_show` there. ``cancelled_at``, for
        ``cancelled`` only, judges lateness against the notice window. Asking again with the
        same arguments writes nothing, so it is safe to send again.
        """
        _require("appointment", appointment, Appointment)
        recorded = _Recorded(AppointmentStatus.of(status), cancelled_at)
        ops.may_draw(recorded.status, cancelled_at)  # refuses a malformed cancelled_at now
        explicit = None
        if pack_id is not None or template_id is not None:
            explicit = self._explicit(appointment, pack_id, template_id)
        arguments = {
            "appointment": appointment,
            "status": recorded.status.value,
            "cancelled_at": cancelled_at,
            "explicit": explicit,
        }
        return self._run(
            idempotency_key,
            "record",
            arguments,
            Assignment,
            lambda: self._assign(appointment, explicit, recorded),
        )

    def move(
        self, appointment: Appointment, to_pack_id: str, *, idempotency_key: str | None = None
    ) -> Assignment:
        """Release the appointment from its pack and use ``to_pack_id``, atomically (R6)."""
        _require("appointment", appointment, Appointment)
        check_id("to_pack_id", to_pack_id)

        def decide() -> _Plan[Assignment]:
            holder = self.repository.pack_of_appointment(appointment.id)
            target = self.repository.load(to_pack_id)
            if holder is None:
                return self._assign(appointment, PreferPack(to_pack_id))
            source = _holding(self.repository.load(holder), appointment.id)
            asked = PreferPack(to_pack_id)
            decision = already_recorded(source, appointment, asked, move=True)
            if decision.action == UsePack(holder):
                return self._assigned_plan(appointment.id, _Assigned(decision, None, source))
            released, used = ops.move(source, target, appointment, self._now())
            return self._commit_plan(
                [released, used],
                lambda events: Assignment(appointment.id, decision, used.after, False, events),
            )

        arguments = {"appointment": appointment, "to_pack_id": to_pack_id}
        return self._run(idempotency_key, "move", arguments, Assignment, decide)

    def add_to_invoice(
        self,
        appointment: Appointment,
        *,
        pack_id: str | None = None,
        template_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> InvoiceLine:
        """Record an appointment that already happened on a pack and issue its invoice line."""
        _require("appointment", appointment, Appointment)
        explicit = None
        if pack_id is not None or template_id is not None:
            explicit = self._explicit(appointment, pack_id, template_id)

        def decide() -> _Plan[InvoiceLine]:
            # The usage and its line are one change to one pack, so a key covers both (R27).
            assigned = self._assignment(appointment, explicit)
            if assigned.pack is None:
                raise NotFoundError("appointment_id", appointment.id, "is not active on any pack")
            invoiced, line = ops.issue_invoice(assigned.pack, appointment.id, self._now())
            change = invoiced if assigned.change is None else assigned.change.then(invoiced)
            return self._commit_plan([change], lambda _: line, assigned.client_packs)

        arguments = {"appointment": appointment, "explicit": explicit}
        return self._run(idempotency_key, "add_to_invoice", arguments, InvoiceLine, decide)

    # Changing a usage ----------------------------------------------------------------------

    def _on_holder(
        self,
        appointment_id: str,
        decide: Callable[[PackState], ops.Change],
        key: str | None,
        command: str,
        arguments: dict[str, Any],
    ) -> PackState:
        check_id("appointment_id", appointment_id)

        def plan() -> _Plan[PackState]:
            change = decide(self._holder_state(appointment_id))
            return self._commit_plan([change], lambda _: change.after)

        return self._run(
            key, command, {"appointment_id": appointment_id, **arguments}, PackState, plan
        )

    def _holder_state(self, appointment_id: str) -> PackState:
        holder = self.repository.pack_of_appointment(appointment_id)
        if holder is None:
            raise NotFoundError("appointment_id", appointment_id, "is not active on any pack")
        return _holding(self.repository.load(holder), appointment_id)

    def cancel(
        self,
        appointment_id: str,
        cancelled_at: datetime | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> PackState:
        """Cancel: late inside the notice window, when the policy decides whether it consumes."""
        when = self._now() if cancelled_at is None else require_aware("cancelled_at", cancelled_at)
        return self._on_holder(
            appointment_id,
            lambda s: ops.cancel(s, appointment_id, self._now(), cancelled_at=when),
            idempotency_key,
            "cancel",
            {"cancelled_at": cancelled_at},
        )

    def late_cancel(self, appointment_id: str, *, idempotency_key: str | None = None) -> PackState:
        """A cancellation the receptionist calls late, whatever the clock says (R7)."""
        return self._on_holder(
            appointment_id,
            lambda s: ops.cancel(s, appointment_id, self._now(), late=True),
            idempotency_key,
            "late_cancel",
            {},
        )

    def no_show(self, appointment_id: str, *, idempotency_key: str | None = None) -> PackState:
        """The client did not come: the policy decides whether it consumes (R7)."""
        return self._on_holder(
            appointment_id,
            lambda s: ops.cancel(s, appointment_id, self._now(), no_show=True),
            idempotency_key,
            "no_show",
            {},
        )

    def reschedule(
        self, appointment_id: str, start: datetime, *, idempotency_key: str | None = None
    ) -> PackState:
        """Move the appointment's start, re-checked against the expiry (R5, R7)."""
        require_aware("start", start)
        return self._on_holder(
            appointment_id,
            lambda s: ops.reschedule(s, appointment_id, start, self._now()),
            idempotency_key,
            "reschedule",
            {"start": start},
        )

    def mark(
        self, appointment_id: str, why: Mark, *, idempotency_key: str | None = None
    ) -> PackState:
        """Keep a usage consumed, marked late-cancelled or no-show (R7)."""
        _require("why", why, Mark)
        return self._on_holder(
            appointment_id,
            lambda s: ops.mark(s, appointment_id, why, self._now()),
            idempotency_key,
            "mark",
            {"why": why.value},
        )

    # Changing a pack -----------------------------------------------------------------------

    def _on_pack(
        self,
        pack_id: str,
        decide: Callable[[PackState], ops.Change],
        result: Callable[[ops.Change], T],
        key: str | None,
        command: str,
        arguments: dict[str, Any],
        kind: Any = PackState,
    ) -> T:
        check_id("pack_id", pack_id)

        def plan() -> _Plan[T]:
            change = decide(self.repository.load(pack_id))
            return self._commit_plan([change], lambda _: result(change))

        return self._run(key, command, {"pack_id": pack_id, **arguments}, kind, plan)

    def adjust(
        self,
        pack_id: str,
        amount: Amount,
        reason: str,
        *,
        line: str | None = None,
        idempotency_key: str | None = None,
    ) -> PackState:
        """A credit or debit with a reason (R9); of a bundle, of the ``line`` it names (R24)."""
        return self._on_pack(
            pack_id,
            lambda s: ops.adjust(s, amount, reason, self._now(), line=line),
            _after,
            idempotency_key,
            "adjust",
            {"amount": amount, "reason": reason, **({"line": line} if line is not None else {})},
        )

    def extend(
        self, pack_id: str, until: date, reason: str, *, idempotency_key: str | None = None
    ) -> PackState:
        """Move the pack's expiry date later (R5)."""
        check_day("until", until)
        return self._on_pack(
            pack_id,
            lambda s: ops.extend(s, until, reason, self._now()),
            _after,
            idempotency_key,
            "extend",
            {"until": until, "reason": reason},
        )

    def hold(
        self,
        pack_id: str,
        start: date,
        until: date,
        reason: str = "",
        *,
        idempotency_key: str | None = None,
    ) -> PackState:
        """Put the pack on hold from ``start`` until ``until``, the first date usable again:
        usages dated inside it are refused and the expiry date moves later by its days (R22)."""
        check_day("start", start)
        check_day("until", until)
        return self._on_pack(
            pack_id,
            lambda s: ops.hold(s, start, until, reason, self._now()),
            _after,
            idempotency_key,
            "hold",
            {"start": start, "until": until, "reason": reason},
        )

    def end_hold(
        self, pack_id: str, on: date, reason: str = "", *, idempotency_key: str | None = None
    ) -> PackState:
        """End the pack's hold early: usable again from ``on``, and the expiry date moves back
        by the days not used (R22)."""
        check_day("on", on)
        return self._on_pack(
            pack_id,
            lambda s: ops.end_hold(s, on, reason, self._now()),
            _after,
            idempotency_key,
            "end_hold",
            {"on": on, "reason": reason},
        )

    def share(
        self, pack_id: str, client_id: str, *, idempotency_key: str | None = None
    ) -> PackState:
        """Let ``client_id`` draw on the pack beside its owner (R20): their appointments may
        use it, their preference may name it, and their bookings consider it (R13, R14).
        Numbering runs across every client in start order. Sharing it again writes nothing."""
        check_id("client_id", client_id)
        return self._on_pack(
            pack_id,
            lambda s: ops.share(s, client_id, self._now()),
            _after,
            idempotency_key,
            "share",
            {"client_id": client_id},
        )

    def unshare(
        self, pack_id: str, client_id: str, *, idempotency_key: str | None = None
    ) -> PackState:
        """Stop ``client_id`` drawing on the pack (R20); refused while an appointment of theirs
        still to come uses it. Their past sessions stay used and numbered."""
        check_id("client_id", client_id)
        return self._on_pack(
            pack_id,
            lambda s: ops.unshare(s, client_id, self._now()),
            _after,
            idempotency_key,
            "unshare",
            {"client_id": client_id},
        )

    def transfer(
        self,
        pack_id: str,
        client_id: str,
        *,
        new_pack_id: str | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> PackState:
        """Transfer what remains of a pack to a new pack for ``client_id`` (R21), in one atomic
        commit: the source is closed with the remainder marked transferred (not refundable);
        the new pack, returned, holds the remainder with the same terms and expiry date and,
        charged per pack, the unearned value. Both ledgers name the other pack."""
        check_id("pack_id", pack_id)
        check_id("client_id", client_id)
        if new_pack_id is not None:
            check_id("new_pack_id", new_pack_id)

        def decide() -> _Plan[PackState]:
            target = self._made_pack_id() if new_pack_id is None else new_pack_id
            self._refuse_existing(target)
            source, opened = ops.transfer(
                self.repository.load(pack_id),
                target,
                client_id,
                self.repository.practice,
                reason,
                self._now(),
            )
            return self._commit_plan([source, opened], lambda _: opened.after)

        arguments = {
            "pack_id": pack_id,
            "client_id": client_id,
            "new_pack_id": new_pack_id,
            "reason": reason,
        }
        return self._run(idempotency_key, "transfer", arguments, PackState, decide)

    def close(
        self, pack_id: str, reason: str = "", *, idempotency_key: str | None = None
    ) -> Closure:
        """Close early; reports what remained and its refundable value (R10, R15).

        Usages after the closing instant are released in the same change (R10a)."""
        return self._on_pack(
            pack_id,
            lambda s: ops.close(s, reason, self._now()),
            _closure,
            idempotency_key,
            "close",
            {"reason": reason},
            Closure,
        )

    def void(
        self, pack_id: str, reason: str = "", *, idempotency_key: str | None = None
    ) -> PackState:
        """Void a pack opened in error with no active usage (R10)."""
        return self._on_pack(
            pack_id,
            lambda s: ops.void(s, reason, self._now()),
            _after,
            idempotency_key,
            "void",
            {"reason": reason},
        )

    def sweep(
        self, as_of: date, *, idempotency_key: str | None = None
    ) -> tuple[RecordedEvent, ...]:
        """The expiry sweep: ``PackExpired`` once per expiry for packs with something left.

        A sweep as of a date after the practice's today is refused (R12a): it cannot look
        ahead. Each pack is written on its own, so a pack being written meanwhile delays only
        itself; with an idempotency key the whole sweep is one change, so that the key is
        stored with all of it (R27).
        """
        check_day("as_of", as_of)
        kind = tuple[RecordedEvent, ...]
        if idempotency_key is not None:
            return self._run(
                idempotency_key, "sweep", {"as_of": as_of}, kind, lambda: self._sweep_plan(as_of)
            )
        self._refuse_a_later_day(as_of, self._now())
        emitted: list[RecordedEvent] = []
        for candidate in self.repository.expiry_candidates(as_of):
            plan: Callable[[], _Plan[tuple[RecordedEvent, ...]]] = partial(
                self._expire_plan, candidate, as_of
            )
            swept: tuple[RecordedEvent, ...] = self._run(None, "sweep", {}, kind, plan)
            emitted.extend(swept)
        return tuple(emitted)

    def _expire_plan(self, candidate: PackState, as_of: date) -> _Plan[tuple[RecordedEvent, ...]]:
        change = ops.expire(self.repository.load(candidate.pack_id), as_of, self._now())
        return self._commit_plan([change], lambda events: events)

    def _sweep_plan(self, as_of: date) -> _Plan[tuple[RecordedEvent, ...]]:
        now = self._now()
        self._refuse_a_later_day(as_of, now)
        changes = [ops.expire(c, as_of, now) for c in self.repository.expiry_candidates(as_of)]
        return self._commit_plan(changes, lambda events: events)

    def _refuse_a_later_day(self, as_of: date, now: datetime) -> None:
        zone = self.repository.practice.zone
        today = now.astimezone(zone).date()
        if as_of > today:
            raise RefusedError(
                Rule.R12a,
                "as_of",
                as_of.isoformat(),
                f"is after today ({today.isoformat()} in {zone.key}): a sweep cannot look ahead",
            )

    # Reading -------------------------------------------------------------------------------

    def assign_many(
        self, appointments: Iterable[Appointment], *, size: int = 1000, seconds: float = 1.0
    ) -> list[Assignment | SessionPacksError]:
        """Book each appointment with its client's default (as :meth:`book`), committed in
        batches of ``size`` appointments or every ``seconds``: one answer per appointment, in
        order, the :class:`Assignment` or its refusal, which writes nothing while the others go
        on. A crash leaves whole batches; booking the same appointments again writes nothing
        more (R6). Within a batch the events are grouped by pack. See
        ``docs/performance.md``."""
        return _batch.assign_many(self, appointments, size=size, seconds=seconds)

    def pack(self, pack_id: str, *, as_of: datetime | None = None) -> PackState:
        """The pack as its ledger says now, or as it said at the instant ``as_of``: from the
        entries recorded up to it (R23; :func:`~sessionpacks.ledger.replay_as_of`). A pack
        not yet opened at ``as_of`` is :class:`NotFoundError`."""
        check_id("pack_id", pack_id)
        if as_of is None:
            return self.repository.load(pack_id)
        then = replay_as_of(self.repository.ledger(pack_id), check_instant("as_of", as_of))
        if then is None:
            raise NotFoundError("pack_id", pack_id, f"was not opened by {as_of.isoformat()}")
        return then

    def client_packs(self, client_id: str, *, as_of: datetime | None = None) -> list[PackState]:
        """A client's packs, open ones first, then exhausted or expired, closed, voided; with
        ``as_of``, each as its ledger said at that instant (R23), those opened later left
        out. It reads the client's own ledgers only. Packs shared with the client are among
        them (R20); with ``as_of``, those shared with them then, even if not now."""
        check_id("client_id", client_id)
        moment = self._now() if as_of is None else check_instant("as_of", as_of)
        packs = self.repository.client_packs(client_id, former=as_of is not None)
        if as_of is not None:
            then = (replay_as_of(self.repository.ledger(p.pack_id), moment) for p in packs)
            packs = [p for p in then if p is not None and p.serves(client_id)]
        return sorted(packs, key=lambda p: (_LIVE_ORDER[p.status(moment)], instant(p.opened_at)))

    def figures(self, pack_id: str, *, as_of: datetime | None = None) -> PackFigures:
        """The pack's money figures (R15a), now or as its ledger said at ``as_of`` (R23)."""
        # Expiry as the ledger recorded it by then, as the reports count it (R23, R26).
        return figures(self.pack(pack_id, as_of=as_of))

    def find_packs(
        self, query: PackQuery, *, after: str | None = None, limit: int = 100
    ) -> PackPage:
        """One page of the practice's packs that match ``query``, in pack id order; pass the
        page's ``next_cursor`` as ``after`` for the next (``None`` on the last page).

        The query, the cursor and ``limit`` (1 to :data:`~sessionpacks.ports.MAX_PAGE`) are
        checked before the store sees them (:class:`InvalidValueError`)."""
        check_page(query, after, limit)
        return self.repository.find_packs(query, after=after, limit=limit)

    def report(
        self, start: date | datetime, end: date | datetime, *, as_of: datetime | None = None
    ) -> Report:
        """The practice's figures for ``[start, end)`` (R26): sold, used, recognised, unearned
        at the end, breakage, refunds and written off, per template and in total, each line
        reconciled to the cent. Dates are the practice's local midnights; ``as_of`` reads the
        ledgers as they were recorded up to that instant (R23). See ``docs/reports.md``."""
        return _reporting.report(self, start, end, as_of=as_of)

    def journal(
        self,
        start: date | datetime,
        end: date | datetime,
        *,
        accounts: JournalAccounts | None = None,
        as_of: datetime | None = None,
    ) -> tuple[JournalLine, ...]:
        """The period's movements as double-entry lines for accounting, under ``accounts``'
        names (:func:`sessionpacks.reports.journal`)."""
        return _reporting.journal(self, start, end, accounts=accounts, as_of=as_of)

    def invoice_line(
        self,
        appointment_id: str,
        *,
        as_of: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> InvoiceLine:
        """Issue (once) and return the invoice line of an appointment on a pack (R8, R15).

        With ``as_of``, the line as the ledger of the pack holding the appointment then said at
        that instant (R23): the pack holding it now, or one of its client's packs it was moved
        from. A read that writes nothing, so it takes no idempotency key."""
        check_id("appointment_id", appointment_id)
        if as_of is not None:
            return self._line_as_of(appointment_id, check_instant("as_of", as_of), idempotency_key)
        return self._run(
            idempotency_key,
            "invoice_line",
            {"appointment_id": appointment_id},
            InvoiceLine,
            lambda: self._invoice_plan(appointment_id),
        )

    def _line_as_of(self, appointment_id: str, as_of: datetime, key: str | None) -> InvoiceLine:
        if key is not None:
            raise InvalidValueError(
                "idempotency_key", key, "an invoice line as of an instant writes nothing"
            )
        then = self._holder_as_of(appointment_id, as_of)
        if then is None:
            raise NotFoundError(
                "appointment_id", appointment_id, f"was not active on a pack at {as_of.isoformat()}"
            )
        return line_of(then, appointment_id)

    def _holder_as_of(self, appointment_id: str, as_of: datetime) -> PackState | None:
        """The pack holding the appointment at ``as_of``, as its ledger said then: the pack
        holding it now, or, if it was moved since, another pack of its client, one shared with
        them then included (R23). An appointment no pack holds now is not looked for."""
        holder = self.repository.pack_of_appointment(appointment_id)
        if holder is None:
            return None
        now = self.repository.load(holder)
        usage = now.usage(appointment_id)
        client = now.client_id if usage is None else usage.appointment.client_id
        former = self.repository.client_packs(client, former=True)
        others = [p.pack_id for p in former if p.pack_id != holder]
        for pack_id in (holder, *others):
            then = replay_as_of(self.repository.ledger(pack_id), as_of)
            if then is not None and then.usage(appointment_id) is not None:
                return then
        return None

    def _invoice_plan(self, appointment_id: str) -> _Plan[InvoiceLine]:
        change, line = ops.issue_invoice(
            self._holder_state(appointment_id), appointment_id, self._now()
        )
        return self._commit_plan([change], lambda _: line)

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        return self.repository.events_since(position, limit)

    @property
    def practice(self) -> Practice:
        """The practice this service keeps packs for (its id and time zone)."""
        return self.repository.practice

    def today(self) -> date:
        """The practice's date now, in its own time zone."""
        return self._now().astimezone(self.practice.zone).date()

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        """Every entry of a pack's ledger, oldest first."""
        return self.repository.ledger(check_id("pack_id", pack_id))

    def holder(self, appointment_id: str) -> str | None:
        """The id of the pack that holds a usage of ``appointment_id``, or None (R5)."""
        return self.repository.pack_of_appointment(check_id("appointment_id", appointment_id))

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        """A template's latest version, or the ``version`` asked for."""
        check_id("template_id", template_id)
        if version is not None:
            check_count("version", version, minimum=1)
        return self.repository.template(template_id, version)

    def templates(self) -> list[PackTemplate]:
        """The latest version of every template, by name."""
        return sorted(self.repository.templates(), key=lambda t: (t.name.casefold(), t.id))

    def preference(self, client_id: str) -> Preference | None:
        """A client's default (R13), or None."""
        return self.repository.preference(check_id("client_id", client_id))


def _after(change: ops.Change) -> PackState:
    return change.after


def _closure(change: ops.Change) -> Closure:
    after = change.after
    released = tuple(e.appointment_id for e in change.entries if isinstance(e, Released))
    return Closure(after, after.remaining, refundable(after), released, figures(after))


def _holding(state: PackState, appointment_id: str) -> PackState:
    """``state``, if the appointment is still active on it: a writer that moved or released it
    between our two reads is a conflict to retry, not a refusal (R16)."""
    if state.usage(appointment_id) is None:
        raise ConcurrencyError("appointment_id", appointment_id, f"left pack {state.pack_id}")
    return state


def _within(deciding: Callable[[], AbstractContextManager[object]], attempt: Callable[[], T]) -> T:
    """``attempt`` inside the store's decision scope (``PostgresRepository.deciding``)."""
    with deciding():
        return attempt()
