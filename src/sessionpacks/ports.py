"""Ports: what the application layer needs from the outside world.

A :class:`PackRepository` is bound to one practice (tenant): nothing it reads or writes crosses
into another practice. Stores (``sessionpacks.adapters``) implement it; every store passes the
contract suite in :mod:`sessionpacks.testing.contract`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Protocol, runtime_checkable

import attrs

from sessionpacks.errors import ConcurrencyError
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import Entry, PackState, PackStatus
from sessionpacks.model import PackTemplate, Practice, Preference
from sessionpacks.operations import Change

__all__ = ["Clock", "CommandRecord", "ConcurrencyError", "PackRepository"]


@attrs.frozen
class CommandRecord:
    """What a command carrying an idempotency key did (R27), kept by the store for good.

    The service writes it in the same atomic change as the command's own writes, so a command
    either happened and is recorded, or neither. ``fingerprint`` identifies the command and its
    arguments; ``result`` is the command's result as JSON text, opaque to the store, with the
    positions of the events it recorded counted from 1. The store sets ``first_position``: the
    stream position just before the commit's first event (0 when it recorded none), so a
    repeated command can report the positions the first one got.
    """

    key: str
    fingerprint: str
    result: str
    first_position: int = 0


@runtime_checkable
class Clock(Protocol):
    """Where the application layer gets "now": always timezone-aware."""

    def now(self) -> datetime: ...


@runtime_checkable
class PackRepository(Protocol):
    """Storage for one practice's packs, ledgers, events, templates and preferences.

    Writes go through :meth:`commit` only, conditional on versions (R16). Reads of unknown ids
    raise :class:`~sessionpacks.errors.NotFoundError`.
    """

    @property
    def practice(self) -> Practice:
        """The practice this handle is bound to."""

    def load(self, pack_id: str) -> PackState:
        """The pack's current state; its ``version`` is what a write must expect."""

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        """Every entry of the pack's ledger, in order."""

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
    ) -> list[PackState]:
        """The client's packs in the order opened; with ``statuses``, only those whose status
        as of ``as_of`` is one of them (``as_of`` is then required)."""

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        """The pack the appointment is active on, if any (R6)."""

    def expiry_candidates(self, as_of: date) -> list[PackState]:
        """Packs an expiry sweep as of ``as_of`` must look at: not closed or voided, with
        something left, an expiry date on or before ``as_of``, and no expiry recorded for it."""

    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        """Append every change's entries and events in one atomic transaction.

        Each change is written only if its pack is still at ``change.expected_version`` (0 for
        a new pack); otherwise :class:`ConcurrencyError` is raised and nothing is written. An
        appointment active on one pack cannot be recorded on another unless the same commit
        releases it (R6).

        ``client_packs`` maps a client to the number of packs the client had when the decision
        was made: the commit conflicts if the client has another number now, so two bookings
        that each decided to open a pack cannot both open one (R13a). Checking it must not make
        writers on other clients wait.

        ``command`` is stored in the same transaction (R27), even when no change writes
        anything; a key already stored conflicts. Returns the events with their positions.
        """

    def command(self, key: str) -> CommandRecord | None:
        """The command stored under idempotency key ``key``, if any (R27)."""

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        """Events after ``position`` (exclusive), in stream order."""

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        """Store a template version; it must be 1 for a new id, else the latest plus one.

        ``command`` is stored with it, as in :meth:`commit`."""

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        """A template's latest version, or the given one."""

    def templates(self) -> list[PackTemplate]:
        """The latest version of every template."""

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        """Set, or with ``None`` clear, the client's preferred service, template or pack.

        ``command`` is stored with it, as in :meth:`commit`."""

    def preference(self, client_id: str) -> Preference | None:
        """The client's preference, if any."""
