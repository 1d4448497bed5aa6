"""What a process knows of its packs, and reads answered from it inside a decision.

A store keeps the states it has written or read (:class:`Known`), by practice and pack, with the
pack of them holding each active appointment. Outside a decision every read goes to the database,
as before, and fills this. Inside one (:class:`Decision`, entered by the repository's
``deciding()``), ``load`` and ``pack_of_appointment`` may answer from it without a round trip.
Such an answer is never taken as valid: the decision keeps what it was told (:class:`Reads`),
and before anything decided on it leaves the decision it is checked against the database:

* by the commit itself, where the commit covers it: a pack read at version ``v`` and written
  with ``expected_version == v`` (R16), and an appointment said to be on no pack that the
  commit puts on a pack whose state, handed out in this decision, did not hold it (the
  commit's R6 check then refuses it if another pack holds it);
* otherwise by one read of the versions and holders concerned, before the commit or, when
  nothing is committed (a refusal, a repeat, nothing to record), when the decision ends.

A check that fails is a :class:`~sessionpacks.errors.ConcurrencyError`: the service decides
again, and the decision after a failed one reads everything from the database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import attrs

from sessionpacks.adapters._common import appointment_changes
from sessionpacks.errors import ConcurrencyError, SessionPacksError, StoreError
from sessionpacks.ledger import PackState, PackStatus
from sessionpacks.model import PackTemplate, Preference
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord

__all__ = ["Deciding", "Decision", "Known", "Reads", "check_reads"]

T = TypeVar("T")


class Known:
    """Pack states by ``(practice_id, pack_id)``, least recently used first out, and the pack
    among them holding each appointment. ``size`` 0 keeps none."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._states: OrderedDict[tuple[str, str], PackState] = OrderedDict()
        self._holders: dict[tuple[str, str], str] = {}

    def state(self, practice_id: str, pack_id: str) -> PackState | None:
        with self._lock:
            return self._states.get((practice_id, pack_id))

    def holder(self, practice_id: str, appointment_id: str) -> PackState | None:
        """The known state holding ``appointment_id`` active, if any."""
        with self._lock:
            pack_id = self._holders.get((practice_id, appointment_id))
            return None if pack_id is None else self._states.get((practice_id, pack_id))

    def put(self, practice_id: str, states: Iterable[PackState]) -> None:
        with self._lock:
            for state in states:
                self._drop((practice_id, state.pack_id))
                self._states[(practice_id, state.pack_id)] = state
                for usage in state.usages:
                    self._holders[(practice_id, usage.appointment.id)] = state.pack_id
            while len(self._states) > self._size:
                self._drop(next(iter(self._states)))

    def forget(self, practice_id: str, pack_ids: Iterable[str]) -> None:
        with self._lock:
            for pack_id in pack_ids:
                self._drop((practice_id, pack_id))

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
            self._holders.clear()

    def _drop(self, key: tuple[str, str]) -> None:
        state = self._states.pop(key, None)
        if state is None:
            return
        for usage in state.usages:
            held = (key[0], usage.appointment.id)
            if self._holders.get(held) == state.pack_id:
                del self._holders[held]


@attrs.define
class Reads:
    """What a decision was told without asking the database, still to be checked: the version
    of each pack answered from memory, and the appointments said to be on no pack."""

    packs: dict[str, int] = attrs.field(factory=dict)
    unheld: set[str] = attrs.field(factory=set)

    def __bool__(self) -> bool:
        return bool(self.packs or self.unheld)

    def uncovered(self, writing: Sequence[Change], handed: Mapping[str, int]) -> Reads:
        """What a commit of ``writing`` does not check by itself (module docstring)."""
        expected = {change.pack_id: change.expected_version for change in writing}
        used, _ = appointment_changes(writing)
        return Reads(
            {p: v for p, v in self.packs.items() if expected.get(p) != v},
            {a for a in self.unheld if not _taken_safely(used.get(a), expected, handed)},
        )


def _taken_safely(
    pack_id: str | None, expected: Mapping[str, int], handed: Mapping[str, int]
) -> bool:
    """Whether the commit puts the appointment on ``pack_id`` at a version whose state this
    decision saw without it (or on a new pack), so that its R6 check settles the rest."""
    if pack_id is None:
        return False
    version = expected[pack_id]
    return version == 0 or handed.get(pack_id) == version


def check_reads(reads: Reads, found: Sequence[Sequence[Any]]) -> None:
    """Raise :class:`ConcurrencyError` unless what the database holds agrees with ``reads``:
    ``found`` are the rows of a store's check query, ``('p', pack_id, version)`` for each pack
    read and ``('u', appointment_id, pack_id)`` for each appointment said to be free that a
    pack holds."""
    versions = {str(key): int(value) for kind, key, value in found if kind == "p"}
    holders = {str(key): str(value) for kind, key, value in found if kind == "u"}
    for pack_id, version in sorted(reads.packs.items()):
        if versions.get(pack_id) != version:
            at = versions.get(pack_id, 0)
            raise ConcurrencyError("pack_id", pack_id, f"is at version {at}, not {version}")
    for appointment_id in sorted(reads.unheld):
        if appointment_id in holders:
            raise ConcurrencyError(
                "appointment_id",
                appointment_id,
                f"is active on pack {holders[appointment_id]} (R6)",
            )


@attrs.define
class Decision:
    """One thread's decision in progress: the states handed out, what each appointment was
    said to be on, and what is still to be checked. ``fresh``: answer nothing from memory
    (the decision after a failed one)."""

    fresh: bool
    reads: Reads = attrs.field(factory=Reads)
    handed: dict[str, PackState] = attrs.field(factory=dict)
    holders: dict[str, str | None] = attrs.field(factory=dict)

    def versions(self) -> dict[str, int]:
        return {pack_id: state.version for pack_id, state in self.handed.items()}

    def hand(self, states: Iterable[PackState]) -> None:
        """Note states given to the decision. One that disagrees with what the decision was
        told before (another version of a pack, another holder) means that something it was
        told is stale: a conflict, decided again."""
        for state in states:
            seen = self.handed.setdefault(state.pack_id, state)
            if seen.version != state.version:
                raise ConcurrencyError(
                    "pack_id", state.pack_id, f"read at version {seen.version} and {state.version}"
                )
            for appointment_id, holder in self.holders.items():
                _agree(state, appointment_id, holder)

    def answer(self, appointment_id: str, holder: str | None) -> None:
        """Note that ``appointment_id`` was said to be on ``holder`` (``None``: on no pack)."""
        self.holders[appointment_id] = holder
        for state in self.handed.values():
            _agree(state, appointment_id, holder)

    def restart(self) -> None:
        """Start again after a conflict, reading everything from the database."""
        self.fresh = True
        self.committed()

    def committed(self) -> None:
        """The commit checked everything so far, and changed what was handed out."""
        self.reads = Reads()
        self.handed.clear()
        self.holders.clear()


def _agree(state: PackState, appointment_id: str, holder: str | None) -> None:
    if (state.usage(appointment_id) is not None) != (holder == state.pack_id):
        raise ConcurrencyError(
            "appointment_id", appointment_id, f"was read on pack {holder} and in {state.pack_id}"
        )


class Deciding:
    """What a repository over the SQL core adds to answer reads from what its process knows
    (put first among its bases, before the core's :class:`~.core.SqlRepository`): ``deciding()``,
    ``load`` and ``pack_of_appointment`` answered from :class:`Known` inside a decision, and
    the bookkeeping around the commit. The store gives :meth:`_check` (one read of the
    versions and holders of ``reads``) and wraps its commit in :meth:`_committing`."""

    _id: str
    _local: threading.local
    _text: Callable[[str, str], str]

    def _check(self, reads: Reads) -> None:
        """Check ``reads`` against the database in one read (:func:`check_reads`)."""
        raise NotImplementedError

    def _memory(self) -> Known:
        """What the store's process knows (one :class:`Known` per store and process)."""
        raise NotImplementedError

    @contextmanager
    def deciding(self) -> Iterator[None]:
        """A decision and its commit on this thread: inside it, ``load`` and
        ``pack_of_appointment`` may answer from the states this process last wrote or read,
        without asking the database. Every such answer is checked against the database by the
        commit (its version check, R16, and its R6 check) or, for what the commit does not
        cover or when nothing is committed, by one read before the commit or at the end; one
        found stale raises :class:`~sessionpacks.errors.ConcurrencyError`, so that the caller
        decides again, and the next decision on this thread reads everything from the
        database. Nested, it is the enclosing one; a conflict inside it starts that one
        again, reading from the database (what it had been told is left unchecked: the
        commit that failed was deciding on it)."""
        enclosing = self._decision()
        if enclosing is not None:
            try:
                yield
            except (ConcurrencyError, StoreError):
                self._distrust(enclosing)
                enclosing.restart()
                raise
            return
        decision = Decision(fresh=self._local.__dict__.pop("fresh", False))
        self._local.decision = decision
        try:
            yield
            self._settle(decision)
        except (ConcurrencyError, StoreError):
            self._distrust(decision)
            raise
        except SessionPacksError as error:
            self._settle_before(decision, error)
            raise
        except BaseException:
            self._distrust(decision)
            raise
        finally:
            self._local.decision = None

    def _decision(self) -> Decision | None:
        decision: Decision | None = getattr(self._local, "decision", None)
        return decision

    def _settle(self, decision: Decision) -> None:
        if decision.reads:
            self._check(decision.reads)
            decision.reads = Reads()

    def _settle_before(self, decision: Decision, error: SessionPacksError) -> None:
        """A refusal (or a missing pack) decided on answers from memory leaves only if they
        were right; otherwise it is a conflict, decided again."""
        try:
            self._settle(decision)
        except (ConcurrencyError, StoreError) as stale:
            self._distrust(decision)
            raise stale from error

    def _settle_early(self) -> None:
        """Writes other than the commit check what the decision read first: a write decided
        on a stale answer must not happen at all (R17), not be followed by a conflict."""
        decision = self._decision()
        if decision is not None:
            self._settle(decision)

    def _distrust(self, decision: Decision) -> None:
        self._memory().forget(self._id, decision.reads.packs.keys() | decision.handed.keys())
        self._local.fresh = True

    def load(self, pack_id: str) -> PackState:
        decision = self._decision()
        known = (
            None if decision is None or decision.fresh else self._memory().state(self._id, pack_id)
        )
        if decision is not None and known is not None:
            decision.hand([known])
            decision.reads.packs[pack_id] = known.version
            return known
        state: PackState = super().load(pack_id)  # type: ignore[misc]
        self._handed([state])
        return state

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        decision = self._decision()
        if decision is None or decision.fresh:
            holder: str | None = super().pack_of_appointment(appointment_id)  # type: ignore[misc]
            if decision is not None:
                decision.answer(appointment_id, holder)
            return holder
        state = self._memory().holder(self._id, appointment_id)
        if state is None:
            self._text("appointment_id", appointment_id)
            decision.answer(appointment_id, None)
            decision.reads.unheld.add(appointment_id)
            return None
        decision.hand([state])
        decision.answer(appointment_id, state.pack_id)
        decision.reads.packs[state.pack_id] = state.version
        return state.pack_id

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        found: list[PackState] = super().client_packs(  # type: ignore[misc]
            client_id, statuses=statuses, as_of=as_of, former=former
        )
        self._handed(found)
        return found

    # Writes other than the commit check what the decision read first (_settle_early).

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        self._settle_early()
        super().save_template(template, command=command)  # type: ignore[misc]

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        self._settle_early()
        super().set_preference(client_id, preference, command=command)  # type: ignore[misc]

    def rebuild_snapshots(self) -> list[str]:
        rebuilt: list[str] = super().rebuild_snapshots()  # type: ignore[misc]
        self._memory().clear()
        return rebuilt

    def _handed(self, states: list[PackState]) -> None:
        """States just read from the database: remembered, and noted by the decision."""
        self._memory().put(self._id, states)
        decision = self._decision()
        if decision is not None:
            decision.hand(states)

    def _committing(self, writing: list[Change], commit: Callable[[Reads | None], T]) -> T:
        """``commit(uncovered)``, where ``uncovered`` is what the decision read that the commit
        does not check by itself (``None``: nothing), to be checked first by the store; the
        states written are remembered, and a failed commit forgets them and distrusts the
        decision."""
        decision = self._decision()
        uncovered = None
        if decision is not None and decision.reads:
            uncovered = decision.reads.uncovered(writing, decision.versions()) or None
        try:
            recorded = commit(uncovered)
        except BaseException:
            self._memory().forget(self._id, [change.pack_id for change in writing])
            if decision is not None:
                self._distrust(decision)
                decision.fresh = True
            raise
        self._memory().put(self._id, [change.after for change in writing])
        if decision is not None:
            decision.committed()
        return recorded
