"""Ports: what the application layer needs from the outside world.

A :class:`PackRepository` is bound to one practice (tenant): nothing it reads or writes crosses
into another practice. Stores (``sessionpacks.adapters``) implement it; every store passes the
contract suite in :mod:`sessionpacks.testing.contract`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from sessionpacks.errors import ConcurrencyError
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import Entry, PackState, PackStatus
from sessionpacks.model import PackTemplate, Practice, Preference
from sessionpacks.operations import Change

__all__ = ["Clock", "ConcurrencyError", "PackRepository"]


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

    def commit(self, changes: Sequence[Change]) -> tuple[RecordedEvent, ...]:
        """Append every change's entries and events in one atomic transaction.

        Each change is written only if its pack is still at ``change.expected_version`` (0 for
        a new pack); otherwise :class:`ConcurrencyError` is raised and nothing is written. An
        appointment active on one pack cannot be recorded on another unless the same commit
        releases it (R6). Returns the events with their positions.
        """

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        """Events after ``position`` (exclusive), in stream order."""

    def save_template(self, template: PackTemplate) -> None:
        """Store a template version; it must be 1 for a new id, else the latest plus one."""

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        """A template's latest version, or the given one."""

    def templates(self) -> list[PackTemplate]:
        """The latest version of every template."""

    def set_preference(self, client_id: str, preference: Preference | None) -> None:
        """Set, or with ``None`` clear, the client's preferred service, template or pack."""

    def preference(self, client_id: str) -> Preference | None:
        """The client's preference, if any."""
