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

A version counts a pack's ledger entries, so ``rebuild_snapshots``, which repairs a row from
its ledger, keeps it. What a process remembers of a practice is therefore also tied to the
practice's ``repairs`` (counted up by each rebuild that rewrites a row), read before any state
it remembers was read: a decision's commit (and its check) names the repairs its states were
known at, and one made since is a conflict, after which the process forgets the practice.
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
from sessionpacks.adapters._sql.schema import Statements
from sessionpacks.errors import ConcurrencyError, SessionPacksError, StoreError
from sessionpacks.ledger import PackState, PackStatus
from sessionpacks.model import PackTemplate, Preference
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord

__all__ = ["Deciding", "Decision", "Known", "Reads", "Token", "check_reads", "repaired"]

T = TypeVar("T")

Token = tuple[int, int]
"""What a practice's remembered states were known at: its ``repairs`` then, and how many times
this process has forgotten the practice (a state read before a forgetting is not kept)."""


def repaired(practice_id: str) -> ConcurrencyError:
    """The conflict of a commit or check that finds the practice repaired since its states
    were read (PostgreSQL's commit function raises the same, by field)."""
    return ConcurrencyError(
        "practice_id", practice_id, "was repaired by rebuild_snapshots since this process read it"
    )


def _is_repair(error: BaseException) -> bool:
    return isinstance(error, ConcurrencyError) and error.field == "practice_id"


class Known:
    """Pack states by ``(practice_id, pack_id)``, least recently used first out, and the pack
    among them holding each appointment; for each practice, the :data:`Token` its states are
    known at. ``size`` 0 keeps none."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._states: OrderedDict[tuple[str, str], PackState] = OrderedDict()
        self._holders: dict[tuple[str, str], str] = {}
        self._repairs: dict[str, int] = {}
        self._forgotten: dict[str, int] = {}

    def token(self, practice_id: str) -> Token | None:
        """What the practice's states are known at; ``None`` until :meth:`learn`."""
        with self._lock:
            repairs = self._repairs.get(practice_id)
            return None if repairs is None else (repairs, self._forgotten.get(practice_id, 0))

    def learn(self, practice_id: str, repairs: int) -> Token:
        """The practice's ``repairs``, just read: states known at another are forgotten."""
        with self._lock:
            if self._repairs.get(practice_id) != repairs:
                self._forget_practice(practice_id)
                self._repairs[practice_id] = repairs
            return repairs, self._forgotten.get(practice_id, 0)

    def unlearn(self, practice_id: str) -> None:
        """Forget the practice's states and its repairs (it was repaired, or found so)."""
        with self._lock:
            self._forget_practice(practice_id)
            self._repairs.pop(practice_id, None)

    def state(self, practice_id: str, pack_id: str) -> PackState | None:
        with self._lock:
            return self._states.get((practice_id, pack_id))

    def holder(self, practice_id: str, appointment_id: str) -> PackState | None:
        """The known state holding ``appointment_id`` active, if any."""
        with self._lock:
            pack_id = self._holders.get((practice_id, appointment_id))
            return None if pack_id is None else self._states.get((practice_id, pack_id))

    def put(self, practice_id: str, states: Iterable[PackState], token: Token | None) -> None:
        """Remember ``states``, read or written when the practice was known at ``token``;
        kept only if it still is."""
        with self._lock:
            repairs = self._repairs.get(practice_id)
            if token is None or token != (repairs, self._forgotten.get(practice_id, 0)):
                return
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

    def _forget_practice(self, practice_id: str) -> None:
        for key in [key for key in self._states if key[0] == practice_id]:
            self._drop(key)
        self._forgotten[practice_id] = self._forgotten.get(practice_id, 0) + 1

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


def check_reads(
    reads: Reads, found: Sequence[Sequence[Any]], practice_id: str, repairs: int | None
) -> None:
    """Raise :class:`ConcurrencyError` unless what the database holds agrees with ``reads``
    and the practice's ``repairs`` (``None``: not checked): ``found`` are the rows of a store's
    check query, ``('r', practice_id, repairs)``, ``('p', pack_id, version)`` for each pack
    read and ``('u', appointment_id, pack_id)`` for each appointment said to be free that a
    pack holds."""
    versions = {str(key): int(value) for kind, key, value in found if kind == "p"}
    holders = {str(key): str(value) for kind, key, value in found if kind == "u"}
    if repairs is not None and [int(v) for kind, _, v in found if kind == "r"] != [repairs]:
        raise repaired(practice_id)
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
    (the decision after a failed one). ``token``: what the practice was known at when the
    decision began, which its commit and checks name."""

    fresh: bool
    token: Token
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

    def restart(self, token: Token) -> None:
        """Start again after a conflict, reading everything from the database, the practice
        known at ``token``."""
        self.fresh = True
        self.token = token
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
    versions and holders of ``reads`` and the practice's repairs) and wraps its commit in
    :meth:`_committing`."""

    _id: str
    _local: threading.local
    _sql: Statements
    _text: Callable[[str, str], str]
    _rows: Callable[..., list[Any]]

    def _check(self, reads: Reads, repairs: int | None) -> None:
        """Check ``reads`` and ``repairs`` against the database in one read
        (:func:`check_reads`)."""
        raise NotImplementedError

    def _memory(self) -> Known:
        """What the store's process knows (one :class:`Known` per store and process)."""
        raise NotImplementedError

    def _token(self) -> Token:
        """What the practice is known at, read from the database if this process does not
        know (before any state it will remember is read)."""
        memory = self._memory()
        token = memory.token(self._id)
        if token is None:
            found = self._rows("practice_id", self._id, self._sql.repairs)
            token = memory.learn(self._id, int(found[0][0]) if found else 0)
        return token

    @contextmanager
    def deciding(self) -> Iterator[None]:
        """A decision and its commit on this thread: inside it, ``load`` and
        ``pack_of_appointment`` may answer from the states this process last wrote or read,
        without asking the database. Every such answer is checked against the database by the
        commit (its version check, R16, and its R6 check) or, for what the commit does not
        cover or when nothing is committed, by one read before the commit or at the end; one
        found stale, or a practice repaired by ``rebuild_snapshots`` since its states were
        read, raises :class:`~sessionpacks.errors.ConcurrencyError`, so that the caller
        decides again, and the next decision on this thread reads everything from the
        database. Nested, it is the enclosing one; a conflict inside it starts that one
        again, reading from the database (what it had been told is left unchecked: the
        commit that failed was deciding on it)."""
        enclosing = self._decision()
        if enclosing is not None:
            try:
                yield
            except (ConcurrencyError, StoreError) as error:
                self._distrust(enclosing, error)
                enclosing.restart(self._token())
                raise
            return
        fresh = self._local.__dict__.pop("fresh", False)
        decision = Decision(fresh=fresh, token=self._token())
        self._local.decision = decision
        try:
            yield
            self._settle(decision)
        except (ConcurrencyError, StoreError) as error:
            self._distrust(decision, error)
            raise
        except SessionPacksError as error:
            self._settle_before(decision, error)
            raise
        except BaseException as error:
            self._distrust(decision, error)
            raise
        finally:
            self._local.decision = None

    def _decision(self) -> Decision | None:
        decision: Decision | None = getattr(self._local, "decision", None)
        return decision

    def _settle(self, decision: Decision) -> None:
        if decision.reads:
            self._check(decision.reads, decision.token[0])
            decision.reads = Reads()

    def _settle_before(self, decision: Decision, error: SessionPacksError) -> None:
        """A refusal (or a missing pack) decided on answers from memory leaves only if they
        were right; otherwise it is a conflict, decided again."""
        try:
            self._settle(decision)
        except (ConcurrencyError, StoreError) as stale:
            self._distrust(decision, stale)
            raise stale from error

    def _settle_early(self) -> None:
        """Writes other than the commit check what the decision read first: a write decided
        on a stale answer must not happen at all (R17), not be followed by a conflict."""
        decision = self._decision()
        if decision is not None:
            self._settle(decision)

    def _distrust(self, decision: Decision, error: BaseException) -> None:
        memory = self._memory()
        if _is_repair(error):
            memory.unlearn(self._id)
        memory.forget(self._id, decision.reads.packs.keys() | decision.handed.keys())
        self._local.fresh = True

    def _reading(self) -> Token:
        """What states read or written now are known at: the decision's, else the
        practice's (learnt first if this process does not know it)."""
        decision = self._decision()
        return self._token() if decision is None else decision.token

    def _known_at(self) -> Token:
        """What states read from now on are known at, for a caller that holds them outside a
        decision and commits later under :meth:`_committing_at` (a batch)."""
        return self._reading()

    @contextmanager
    def _committing_at(self, token: Token) -> Iterator[None]:
        """Commits on this thread outside a decision, of states read at ``token`` (from
        :meth:`_known_at`), checked against its repairs as a decision's are."""
        self._local.known_at = token
        try:
            yield
        finally:
            self._local.known_at = None

    def load(self, pack_id: str) -> PackState:
        decision = self._decision()
        known = (
            None if decision is None or decision.fresh else self._memory().state(self._id, pack_id)
        )
        if decision is not None and known is not None:
            decision.hand([known])
            decision.reads.packs[pack_id] = known.version
            return known
        token = self._reading()
        state: PackState = super().load(pack_id)  # type: ignore[misc]
        self._handed([state], token)
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
        token = self._reading()
        found: list[PackState] = super().client_packs(  # type: ignore[misc]
            client_id, statuses=statuses, as_of=as_of, former=former
        )
        self._handed(found, token)
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
        if rebuilt:  # counted as a repair: what this process knew is as stale as any other's
            self._memory().unlearn(self._id)
        return rebuilt

    def _handed(self, states: list[PackState], token: Token | None) -> None:
        """States just read from the database when the practice was known at ``token``:
        remembered, and noted by the decision."""
        self._memory().put(self._id, states, token)
        decision = self._decision()
        if decision is not None:
            decision.hand(states)

    def _committing(
        self, writing: list[Change], commit: Callable[[Reads | None, int | None], T]
    ) -> T:
        """``commit(uncovered, repairs)``: ``uncovered`` is what the decision read that the
        commit does not check by itself (``None``: nothing), to be checked first by the store,
        and ``repairs`` the practice's the decision (or :meth:`_committing_at`) knew
        (``None``: neither), which the commit checks after its pack rows are written. The
        states written are remembered, and a failed commit forgets them and distrusts the
        decision."""
        decision = self._decision()
        uncovered = None
        if decision is not None and decision.reads:
            uncovered = decision.reads.uncovered(writing, decision.versions()) or None
        held: Token | None = getattr(self._local, "known_at", None)
        token = decision.token if decision is not None else held or self._reading()
        checked = decision is not None or held is not None
        try:
            recorded = commit(uncovered, token[0] if checked else None)
        except BaseException as error:
            self._memory().forget(self._id, [change.pack_id for change in writing])
            if decision is not None:
                self._distrust(decision, error)
                decision.fresh = True
            elif _is_repair(error):
                self._memory().unlearn(self._id)
            raise
        self._memory().put(self._id, [change.after for change in writing], token)
        if decision is not None:
            decision.committed()
        return recorded
