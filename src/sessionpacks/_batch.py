"""Batches: many commands decided one after another, committed in one store transaction.

A :class:`Batch` runs each command (a function of a :class:`~sessionpacks.service.PackService`)
on a service whose repository holds the batch's writes in memory (:class:`Staged`): every
command is decided against the states as the earlier commands of the batch left them, exactly
as it would be one at a time, and nothing reaches the store until :meth:`Batch.flush`, which
commits every command's changes in one ``commit`` (one transaction). So a crash leaves whole
batches, hence whole commands, and a command the domain refuses is left out while the rest of
its batch goes on. The changes to one pack are joined (:meth:`Change.then`) into one change:
its entries and events keep their order, and within a batch the events are grouped by pack,
in the order each pack was first written.

What a commit checks is kept: each pack is written only at the version the batch first read
(R16); a client's default that opened a pack holds only while the client still has the number
of packs the batch first counted (R13a). If another writer got there first, the commit raises
:class:`~sessionpacks.errors.ConcurrencyError`, nothing is written, and the batch decides every
command again on fresh reads (up to the service's ``retries``), then, if it still conflicts or
the store refuses the commit, runs its commands one at a time, each in its own commit.

What cannot be held in memory is run on the store itself, after the commands before it are
committed: a command carrying an idempotency key (its record and result are stored with its
own writes, R27), a template or preference written, and reads of the stream, sweeps and
queries. A command that touches an appointment an earlier command of the batch touched also
starts a new batch, so that each commit holds at most one use or release of an appointment; so
does one that opens a pack for a client the batch opened one for already, so that a client's
packs keep the order they were opened in (a store writes one commit's packs in pack id order).

``live_only`` (what the import and :func:`assign_many` ask) reads a client's usable packs only:
those not exhausted, closed or voided, which are the only ones a decision can choose, plus the
client's preferred pack; a store with a ``count_client_packs`` method (the SQL stores') then
counts the client's packs for R13a without reading them. Decisions then list in ``passed_over``
only the packs read. A pack such a read leaves out that a held change makes usable again (a
release, an adjustment) is not among them either: the next command reading its clients is
decided after a flush.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

import attrs

from sessionpacks._limits import EARLIEST
from sessionpacks.errors import (
    ConcurrencyError,
    InvalidValueError,
    NotFoundError,
    SessionPacksError,
)
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import (
    Entry,
    Opened,
    PackState,
    PackStatus,
    Released,
    Shared,
    Unshared,
    Used,
)
from sessionpacks.model import Appointment, PackTemplate, Practice, Preference, PreferPack
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord, PackPage, PackQuery, PackRepository

if TYPE_CHECKING:
    from sessionpacks.service import Assignment, PackService

__all__ = ["BATCH_ROWS", "BATCH_SECONDS", "Batch", "Outcome", "Staged", "assign_many"]

T = TypeVar("T")

BATCH_ROWS = 1000
"""The most commands a batch holds before it is committed."""
BATCH_SECONDS = 1.0
"""The longest a batch waits, from its first command, before it is committed."""

_LIVE = frozenset((PackStatus.OPEN, PackStatus.EXPIRED))


class _Direct(BaseException):
    """The command needs the store itself: commit the batch, then run it there.

    A BaseException, so that no ``except Exception`` in a command swallows it."""


class _Full(BaseException):
    """The command touches an appointment the batch touched: commit, then start anew."""


@runtime_checkable
class _Counting(Protocol):
    def count_client_packs(self, client_id: str) -> int: ...


@runtime_checkable
class _Knowing(Protocol):
    """A store whose commits check what the states were read at (a repair since is a
    conflict, ``adapters/_sql/known``)."""

    def _known_at(self) -> Any: ...

    def _committing_at(self, token: Any) -> AbstractContextManager[None]: ...


@attrs.frozen
class Outcome(Generic[T]):
    """What one command of a batch came to, once committed: its value, or the library's
    refusal (nothing of that command was written)."""

    value: T | None = None
    error: SessionPacksError | None = None


@attrs.define
class _Undo:
    """What one staged commit changed, to put back if its command fails after it."""

    packs: list[tuple[str, Change | None, PackState | None]]
    holders: list[tuple[str, str | None]]
    clients: list[str]
    touched: set[str]
    checked: set[str]
    revived: set[str] = attrs.field(factory=set)


class Staged:
    """A repository that reads through to ``base`` and holds what is committed to it.

    Reads see the writes held; :meth:`flush` commits them to ``base`` in one commit. Writes it
    cannot hold, and reads it cannot answer from what it holds, raise :class:`_Direct`.
    """

    def __init__(self, base: PackRepository, *, live_only: bool = False) -> None:
        self.base = base
        # The count of a client's packs without reading them, where the store has one (R13a).
        self._count = base.count_client_packs if live_only and isinstance(base, _Counting) else None
        # What the states read from here on are known at, checked when they are committed.
        self._committing: Callable[[], AbstractContextManager[None]] = (
            partial(base._committing_at, base._known_at())
            if isinstance(base, _Knowing)
            else nullcontext
        )
        self._states: dict[str, PackState] = {}
        self._changes: dict[str, Change] = {}
        self._holders: dict[str, str | None] = {}
        self._clients: dict[str, list[str]] = {}
        self._opened: dict[str, list[str]] = {}
        self._counts: dict[str, int] = {}
        self._checked: set[str] = set()
        self._touched: set[str] = set()
        self._templates: dict[str, PackTemplate] | None = None
        self._preferences: dict[str, Preference | None] = {}
        self._undo: list[_Undo] = []
        # Clients a held change gave a usable pack back to (a release, an adjustment), by the
        # staged commit that did: the store's read of usable packs still leaves the pack out,
        # so a later command reading them is decided after a flush.
        self._revived: dict[str, int] = {}
        self._command_from = 0  # the first staged commit of the command being decided

    @property
    def practice(self) -> Practice:
        return self.base.practice

    # Reads -------------------------------------------------------------------------------

    def load(self, pack_id: str) -> PackState:
        state = self._states.get(pack_id)
        if state is None:
            state = self._states[pack_id] = self.base.load(pack_id)
        return state

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        change = self._changes.get(pack_id)
        if change is None:
            return self.base.ledger(pack_id)
        before = self.base.ledger(pack_id) if change.expected_version else ()
        return before + change.entries

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        if former:  # what a client drew on before: a read for the past, not of a batch
            raise _Direct
        if self._revived.get(client_id, self._command_from) < self._command_from:
            raise _Full
        ids = self._clients.get(client_id)
        if ids is None:
            ids = self._read_client(client_id)
        states = [self._states[p] for p in ids]
        if statuses is None:
            return states
        if as_of is None:
            raise InvalidValueError("as_of", as_of, "is required to filter packs by status")
        return [s for s in states if s.status(as_of) in statuses]

    def _read_client(self, client_id: str) -> list[str]:
        """The client's packs as the store has them, then those opened in the batch. The count
        is read first: a pack opened in between makes the commit conflict (R13a)."""
        base = self.base
        if self._count is not None:
            self._counts[client_id] = self._count(client_id)
            found = base.client_packs(client_id, statuses=_LIVE, as_of=EARLIEST)
            found += self._preferred(client_id, {s.pack_id for s in found})
        else:
            found = base.client_packs(client_id)
            # R13a counts the packs the client owns, not those shared with them (R20).
            self._counts[client_id] = sum(s.client_id == client_id for s in found)
        ids = []
        for state in found:
            ids.append(state.pack_id)
            self._states.setdefault(state.pack_id, state)
        self._clients[client_id] = ids + self._opened.get(client_id, [])
        return ids

    def _preferred(self, client_id: str, found: set[str]) -> list[PackState]:
        """The client's preferred pack, if not among ``found``: exhausted, or no longer shared
        with the client (R20), when resolution passes it over for its template (R13.2)."""
        preference = self.preference(client_id)
        if not isinstance(preference, PreferPack) or preference.pack_id in found:
            return []
        try:
            pack = self.base.load(preference.pack_id)
        except NotFoundError:
            return []
        return [pack]

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        if appointment_id in self._holders:
            return self._holders[appointment_id]
        holder = self._holders[appointment_id] = self.base.pack_of_appointment(appointment_id)
        return holder

    def command(self, key: str) -> CommandRecord | None:
        return self.base.command(key)

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        if version is None:
            found = self._all_templates().get(template_id)
            if found is not None:
                return found
        return self.base.template(template_id, version)

    def templates(self) -> list[PackTemplate]:
        return list(self._all_templates().values())

    def _all_templates(self) -> dict[str, PackTemplate]:
        # Read once a batch: a template edited meanwhile is a new version, read by the next.
        if self._templates is None:
            self._templates = {t.id: t for t in self.base.templates()}
        return self._templates

    def preference(self, client_id: str) -> Preference | None:
        if client_id not in self._preferences:
            self._preferences[client_id] = self.base.preference(client_id)
        return self._preferences[client_id]

    def expiry_candidates(self, as_of: date) -> list[PackState]:
        raise _Direct

    def find_packs(
        self, query: PackQuery, *, after: str | None = None, limit: int = 100
    ) -> PackPage:
        raise _Direct

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        raise _Direct

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        raise _Direct

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        raise _Direct

    # Writes ------------------------------------------------------------------------------

    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        """Hold the changes, checked as the store would check them; the events come back at
        position 0 (the store numbers them when the batch is committed)."""
        if command is not None or any(_shares(c) for c in changes):
            raise _Direct
        writing = self._checked_changes(changes)
        touched = _appointments(writing)
        if touched & self._touched or any(self._opened.get(c) for c in _opening(writing)):
            raise _Full
        undo = _Undo([], [], [], touched - self._touched, set())
        self._undo.append(undo)  # first: a failure part-way is put back by rollback
        for change in writing:
            self._hold(change, undo)
        for client_id in client_packs or {}:
            if client_id not in self._counts:
                self._read_client(client_id)
            if client_id not in self._checked:
                undo.checked.add(client_id)
                self._checked.add(client_id)
        self._touched |= touched
        return tuple(RecordedEvent(0, e) for c in writing for e in c.events)

    def _checked_changes(self, changes: Sequence[Change]) -> list[Change]:
        seen: set[str] = set()
        for change in changes:
            if change.pack_id in seen:
                raise InvalidValueError("changes", change.pack_id, "one commit changes a pack once")
            seen.add(change.pack_id)
            current = self._states.get(change.pack_id)
            version = 0 if current is None else current.version
            if change.expected_version and version != change.expected_version:
                raise ConcurrencyError(
                    "pack_id",
                    change.pack_id,
                    f"is at version {version}, not {change.expected_version}",
                )
            if not change.expected_version and current is not None:
                raise ConcurrencyError("pack_id", change.pack_id, "is a pack already")
        return [c for c in changes if c.entries]

    def _hold(self, change: Change, undo: _Undo) -> None:
        pack_id = change.pack_id
        prior = self._changes.get(pack_id)
        undo.packs.append((pack_id, prior, self._states.get(pack_id)))
        self._changes[pack_id] = change if prior is None else prior.then(change)
        self._states[pack_id] = change.after
        if self._count is not None and change.before is not None and _revives(change):
            for client_id in set(change.after.clients) - self._revived.keys():
                self._revived[client_id] = len(self._undo) - 1
                undo.revived.add(client_id)
        if change.expected_version == 0:
            client_id = change.after.client_id
            self._opened.setdefault(client_id, []).append(pack_id)
            if client_id in self._clients:
                self._clients[client_id].append(pack_id)
            undo.clients.append(client_id)
        for entry in change.entries:
            if isinstance(entry, Used | Released):
                appointment_id = _appointment_id(entry)
                undo.holders.append((appointment_id, self.pack_of_appointment(appointment_id)))
                self._holders[appointment_id] = pack_id if isinstance(entry, Used) else None

    def mark(self) -> int:
        """A point to :meth:`rollback` to, where the next command's decision starts."""
        self._command_from = len(self._undo)
        return self._command_from

    def rollback(self, mark: int) -> None:
        """Put back what was held after ``mark``: a command that failed after a commit."""
        while len(self._undo) > mark:
            undo = self._undo.pop()
            for client_id in reversed(undo.clients):
                self._opened[client_id].pop()
                if client_id in self._clients:
                    self._clients[client_id].pop()
            for appointment_id, holder in reversed(undo.holders):
                self._holders[appointment_id] = holder
            for pack_id, change, state in reversed(undo.packs):
                _put(self._changes, pack_id, change)
                _put(self._states, pack_id, state)
            self._touched -= undo.touched
            self._checked -= undo.checked
            for client_id in undo.revived:
                del self._revived[client_id]

    @property
    def holding(self) -> bool:
        """Whether anything is held to commit."""
        return bool(self._changes)

    def flush(self) -> tuple[RecordedEvent, ...]:
        """Commit what is held in one commit of ``base``; returns its events, numbered."""
        if not self._changes:
            return ()
        counts = {c: self._counts[c] for c in sorted(self._checked)}
        with self._committing():
            return self.base.commit(list(self._changes.values()), client_packs=counts or None)


def _revives(change: Change) -> bool:
    """Whether ``change`` makes usable a pack that was not: the store's read of usable packs
    (by their lasting status) does not find it until the change is committed."""
    assert change.before is not None
    live = (change.before.status(EARLIEST), change.after.status(EARLIEST))
    return live[0] not in _LIVE and live[1] in _LIVE


def _shares(change: Change) -> bool:
    """The change lists clients on a pack (R20): the packs of those clients it would change
    are not held, so it goes to the store directly."""
    return any(
        isinstance(e, Shared | Unshared) or (isinstance(e, Opened) and e.shared_with)
        for e in change.entries
    )


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def _appointment_id(entry: Used | Released) -> str:
    return entry.appointment.id if isinstance(entry, Used) else entry.appointment_id


def _opening(changes: Iterable[Change]) -> set[str]:
    """The clients the changes open a pack for."""
    return {c.after.client_id for c in changes if c.expected_version == 0}


def _appointments(changes: Iterable[Change]) -> set[str]:
    """The appointments the changes use or release."""
    return {
        _appointment_id(e) for c in changes for e in c.entries if isinstance(e, Used | Released)
    }


Command = Callable[["PackService"], T]


class Batch(Generic[T]):
    """Commands run against the batch's writes, committed together by :meth:`flush`.

    :meth:`add` decides a command at once and holds its writes; it returns the outcomes that
    became final meanwhile (the batch was full, or the command had to run on the store), in the
    order the commands were added. :meth:`flush` commits what is held and returns the rest.
    ``renumber`` gives a value the positions its events got (by event id) once committed.
    """

    def __init__(
        self,
        service: PackService,
        *,
        size: int = BATCH_ROWS,
        seconds: float = BATCH_SECONDS,
        live_only: bool = False,
        renumber: Callable[[T, Mapping[str, int]], T] | None = None,
    ) -> None:
        if type(size) is not int or not 1 <= size <= 100_000:
            raise InvalidValueError("size", size, "must be a whole number from 1 to 100000")
        if type(seconds) not in (int, float) or not 0 <= seconds <= 3600:
            raise InvalidValueError("seconds", seconds, "must be a number of seconds, 0 to 3600")
        self._service = service
        self._size = size
        self._seconds = float(seconds)
        self._live_only = live_only
        self._renumber = renumber
        self._commands: list[Command[T]] = []
        self._outcomes: list[Outcome[T]] = []
        self._started = 0.0
        self._staged, self._on_staged = self._fresh()

    def _fresh(self) -> tuple[Staged, PackService]:
        staged = Staged(self._service.repository, live_only=self._live_only)
        on_staged = copy.copy(self._service)
        on_staged.repository = staged
        return staged, on_staged

    def __len__(self) -> int:
        return len(self._commands)

    @property
    def due(self) -> bool:
        """Full, or held for its time budget."""
        if not self._commands:
            return False
        held = time.monotonic() - self._started
        return len(self._commands) >= self._size or held >= self._seconds

    def add(self, command: Command[T]) -> list[Outcome[T]]:
        """Decide ``command`` against the batch; returns the outcomes now final."""
        final: list[Outcome[T]] = []
        try:
            outcome = self._decided(command)
        except _Full:
            final = self.flush()
            return final + self.add(command)
        except _Direct:
            return [*self.flush(), self._direct(command)]
        if not self._commands:
            self._started = time.monotonic()
        self._commands.append(command)
        self._outcomes.append(outcome)
        if self.due:
            final += self.flush()
        return final

    def _decided(self, command: Command[T]) -> Outcome[T]:
        mark = self._staged.mark()
        try:
            return Outcome(value=command(self._on_staged))
        except SessionPacksError as error:
            self._staged.rollback(mark)
            return Outcome(error=error)
        except BaseException:
            self._staged.rollback(mark)
            raise

    def _direct(self, command: Command[T]) -> Outcome[T]:
        try:
            return Outcome(value=command(self._service))
        except SessionPacksError as error:
            return Outcome(error=error)

    def flush(self) -> list[Outcome[T]]:
        """Commit the commands held, in one commit; returns their outcomes in order."""
        if not self._commands:
            return []
        outcomes = self._committed()
        self._commands, self._outcomes = [], []
        self._staged, self._on_staged = self._fresh()
        return outcomes

    def _committed(self) -> list[Outcome[T]]:
        for tried in range(self._service.retries + 1):
            try:
                events = self._staged.flush()
            except ConcurrencyError:
                time.sleep(min(0.05, 0.001 * 2**tried))
                if not self._redecided():
                    break
                continue
            except SessionPacksError:
                break
            return self._numbered(self._outcomes, events)
        return [self._direct(command) for command in self._commands]

    def _redecided(self) -> bool:
        """Decide every command again on fresh reads; False if they no longer fit a batch."""
        self._staged, self._on_staged = self._fresh()
        try:
            self._outcomes = [self._decided(command) for command in self._commands]
        except (_Full, _Direct):
            return False
        return True

    def _numbered(
        self, outcomes: list[Outcome[T]], events: Sequence[RecordedEvent]
    ) -> list[Outcome[T]]:
        renumber = self._renumber
        if renumber is None or not events:
            return outcomes
        positions = {r.event.event_id: r.position for r in events}
        return [
            o if o.value is None else Outcome(value=renumber(o.value, positions)) for o in outcomes
        ]


def _renumbered(assignment: Assignment, positions: Mapping[str, int]) -> Assignment:
    events = tuple(
        RecordedEvent(positions.get(r.event.event_id, r.position), r.event)
        for r in assignment.events
    )
    return attrs.evolve(assignment, events=events)


def assign_many(
    service: PackService,
    appointments: Iterable[Appointment],
    *,
    size: int = BATCH_ROWS,
    seconds: float = BATCH_SECONDS,
) -> list[Assignment | SessionPacksError]:
    """Book each appointment with its client's default (as :meth:`PackService.book`), committed
    in batches of ``size`` (or every ``seconds``): one answer per appointment, in order, the
    :class:`Assignment` or the refusal. A refused appointment writes nothing and the others go
    on; a crash leaves whole batches, and booking the same appointments again writes nothing
    more (R6). See :mod:`sessionpacks._batch`."""
    if isinstance(appointments, str | bytes) or not isinstance(appointments, Iterable):
        raise InvalidValueError("appointments", appointments, "must be an iterable of Appointment")
    batch: Batch[Assignment] = Batch(
        service, size=size, seconds=seconds, live_only=True, renumber=_renumbered
    )
    answers: list[Assignment | SessionPacksError] = []
    for appointment in appointments:
        answers += _answers(batch.add(partial(_book, appointment)))
    return answers + _answers(batch.flush())


def _book(appointment: Appointment, service: PackService) -> Assignment:
    return service.book(appointment)


def _answers(outcomes: list[Outcome[Assignment]]) -> list[Assignment | SessionPacksError]:
    return [o.value if o.error is None else o.error for o in outcomes]  # type: ignore[misc]
