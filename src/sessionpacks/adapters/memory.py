"""The in-memory store: the reference implementation of :class:`~sessionpacks.ports.PackRepository`.

Safe to share between threads: one lock guards every read and every commit, and a commit checks
every expected version before it writes anything, exactly as a database transaction would.

>>> from sessionpacks.adapters.memory import InMemoryStore
>>> repo = InMemoryStore().practice("clinic-1", timezone="Australia/Sydney")
>>> repo.practice.timezone
'Australia/Sydney'
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime

import attrs

from sessionpacks._limits import check_id
from sessionpacks.adapters._common import (
    appointment_changes,
    check_distinct,
    check_window,
    client_conflict,
    command_conflict,
    serving,
    sharing_changes,
    with_statuses,
)
from sessionpacks.errors import ConcurrencyError, NotFoundError
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import Entry, PackState, PackStatus
from sessionpacks.model import PackTemplate, Practice, Preference
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord, PackPage, PackQuery

__all__ = ["InMemoryRepository", "InMemoryStore"]


@attrs.define
class _PracticeData:
    practice: Practice
    states: dict[str, PackState] = attrs.Factory(dict)
    ledgers: dict[str, list[Entry]] = attrs.Factory(dict)
    by_client: dict[str, list[str]] = attrs.Factory(dict)
    # R20: the packs shared with each client, beside those they own.
    shared: dict[str, set[str]] = attrs.Factory(dict)
    opened: dict[str, int] = attrs.Factory(dict)
    active: dict[str, str] = attrs.Factory(dict)
    events: list[RecordedEvent] = attrs.Factory(list)
    templates: dict[str, list[PackTemplate]] = attrs.Factory(dict)
    preferences: dict[str, Preference] = attrs.Factory(dict)
    commands: dict[str, CommandRecord] = attrs.Factory(dict)


class InMemoryStore:
    """Holds any number of practices; :meth:`practice` hands out a handle bound to one."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._practices: dict[str, _PracticeData] = {}

    def practice(self, practice_id: str, timezone: str | None = None) -> InMemoryRepository:
        """A repository bound to ``practice_id``; ``timezone`` is required the first time."""
        check_id("practice_id", practice_id)
        with self._lock:
            data = self._practices.get(practice_id)
            if data is None:
                if timezone is None:
                    raise NotFoundError(
                        "practice_id", practice_id, "is a new practice: give its timezone"
                    )
                data = _PracticeData(Practice(practice_id, timezone))
                self._practices[practice_id] = data
            return InMemoryRepository(data, self._lock)


class InMemoryRepository:
    """One practice's view of an :class:`InMemoryStore`."""

    def __init__(self, data: _PracticeData, lock: threading.RLock) -> None:
        self._data = data
        self._lock = lock

    @property
    def practice(self) -> Practice:
        return self._data.practice

    def load(self, pack_id: str) -> PackState:
        with self._lock:
            state = self._data.states.get(pack_id)
        if state is None:
            raise NotFoundError("pack_id", pack_id, "no such pack in this practice")
        return state

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        with self._lock:
            entries = self._data.ledgers.get(pack_id)
            if entries is None:
                raise NotFoundError("pack_id", pack_id, "no such pack in this practice")
            return tuple(entries)

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        with self._lock:
            data = self._data
            ids = data.by_client.get(client_id, [])
            shared = data.shared.get(client_id)
            if shared:
                ids = sorted((*ids, *shared), key=data.opened.__getitem__)
            states = serving((data.states[p] for p in ids), client_id, former)
        return with_statuses(states, statuses, as_of)

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        with self._lock:
            return self._data.active.get(appointment_id)

    def expiry_candidates(self, as_of: date) -> list[PackState]:
        with self._lock:
            states = list(self._data.states.values())
        return [s for s in states if s.due_for_sweep(as_of)]

    def find_packs(
        self, query: PackQuery, *, after: str | None = None, limit: int = 100
    ) -> PackPage:
        # The reference reads every pack: the definition, not an index, is what it shows.
        with self._lock:
            states = list(self._data.states.values())
        return PackPage.scan(states, query, after, limit)

    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        writing = check_distinct(changes)
        with self._lock:
            data = self._data
            self._check_command(command)
            for client_id, seen in (client_packs or {}).items():
                count = len(data.by_client.get(client_id, ()))
                if count != seen:
                    raise client_conflict(client_id, count, seen)
            for change in writing:
                current = data.states.get(change.pack_id)
                version = 0 if current is None else current.version
                if version != change.expected_version:
                    raise ConcurrencyError(
                        "pack_id",
                        change.pack_id,
                        f"is at version {version}, not {change.expected_version}",
                    )
            used, released = appointment_changes(writing)
            for appointment_id, pack_id in used.items():
                holder = data.active.get(appointment_id)
                if holder is not None and holder != pack_id and appointment_id not in released:
                    raise ConcurrencyError(
                        "appointment_id", appointment_id, f"is active on pack {holder} (R6)"
                    )
            first_position = len(data.events)
            recorded = self._write(writing, used, released)
            self._record(command, first_position)
            return recorded

    def _check_command(self, command: CommandRecord | None) -> None:
        if command is not None and command.key in self._data.commands:
            raise command_conflict(command.key)

    def _record(self, command: CommandRecord | None, first_position: int = 0) -> None:
        if command is not None:
            stored = attrs.evolve(command, first_position=first_position)
            self._data.commands[command.key] = stored

    def command(self, key: str) -> CommandRecord | None:
        with self._lock:
            return self._data.commands.get(key)

    def _write(
        self, writing: list[Change], used: dict[str, str], released: set[str]
    ) -> tuple[RecordedEvent, ...]:
        data = self._data
        for appointment_id in released:
            data.active.pop(appointment_id, None)
        data.active.update(used)
        sharing = sharing_changes(writing)
        for pack_id, client_id in sharing.removed:
            data.shared[client_id].discard(pack_id)
        for pack_id, client_id in sharing.added:
            data.shared.setdefault(client_id, set()).add(pack_id)
        recorded: list[RecordedEvent] = []
        for change in writing:
            if change.expected_version == 0:
                data.by_client.setdefault(change.after.client_id, []).append(change.pack_id)
                data.opened[change.pack_id] = len(data.opened)
                data.ledgers[change.pack_id] = []
            data.ledgers[change.pack_id].extend(change.entries)
            data.states[change.pack_id] = change.after
            for event in change.events:
                recorded.append(RecordedEvent(len(data.events) + 1, event))
                data.events.append(recorded[-1])
        return tuple(recorded)

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        check_window(position, limit)
        with self._lock:
            tail = self._data.events[position:]
        return tail if limit is None else tail[:limit]

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        with self._lock:
            self._check_command(command)
            versions = self._data.templates.setdefault(template.id, [])
            if template.version != len(versions) + 1:
                raise ConcurrencyError(
                    "template.version",
                    template.version,
                    f"template {template.id} is at version {len(versions)}",
                )
            versions.append(template)
            self._record(command)

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        with self._lock:
            versions = self._data.templates.get(template_id, [])
        if not versions:
            raise NotFoundError("template_id", template_id, "no such template in this practice")
        if version is None:
            return versions[-1]
        if not 1 <= version <= len(versions):
            raise NotFoundError("version", version, f"template {template_id} has no such version")
        return versions[version - 1]

    def templates(self) -> list[PackTemplate]:
        with self._lock:
            return [versions[-1] for versions in self._data.templates.values()]

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        with self._lock:
            self._check_command(command)
            if preference is None:
                self._data.preferences.pop(client_id, None)
            else:
                self._data.preferences[client_id] = preference
            self._record(command)

    def preference(self, client_id: str) -> Preference | None:
        with self._lock:
            return self._data.preferences.get(client_id)
