"""What both SQL stores do the same way: schema upgrades, opening a practice, and every
repository method but the commit (:class:`SqlRepository`).

A store supplies its driver through :class:`~sessionpacks.adapters._sql.session.Session` and
its transactions through the four hooks of :class:`SqlRepository`; it keeps its own commit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from itertools import groupby
from types import TracebackType
from typing import Any, Self

from sessionpacks._limits import check_id
from sessionpacks.adapters._common import (
    bounds,
    check_distinct,
    check_window,
    command_conflict,
    serving,
    with_statuses,
)
from sessionpacks.adapters._sql import rows
from sessionpacks.adapters._sql.rows import (
    PROJECTION,
    Decoded,
    lean_state,
    loads_terms,
    projection,
    terms_text,
)
from sessionpacks.adapters._sql.schema import Statements, find_packs
from sessionpacks.adapters._sql.session import Session, Step
from sessionpacks.errors import ConcurrencyError, InvalidValueError, NotFoundError, StoreError
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import Entry, PackState, PackStatus, replay
from sessionpacks.model import PackTemplate, Practice, Preference
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord, PackPage, PackQuery, check_page
from sessionpacks.serialization import (
    dumps_preference,
    dumps_state,
    dumps_template,
    loads_entry,
    loads_event,
)

__all__ = ["SqlRepository", "SqlStore", "migrate", "open_practice", "require_current"]

Transaction = Callable[[], AbstractContextManager[Session]]
"""A store's write transaction on one connection: the session inside it, committed at exit."""


def _schema_version(session: Session, sql: Statements) -> int:
    if not session.rows(sql.has_version_table):
        return 0
    return int(session.rows(sql.schema_version)[0][0] or 0)


def _refuse_newer(version: int, known: int, where: str) -> None:
    if version > known:
        raise StoreError(
            "schema_version",
            version,
            f"{where} was written by a newer release of sessionpacks (schema version "
            f"{version}); this one knows versions up to {known}: upgrade sessionpacks to open it",
        )


def migrate(session: Session, upgrade: Transaction, steps: Sequence[Step], where: str) -> int:
    """Bring the database to ``len(steps)``; returns the version found under the upgrade's
    lock (0: this call created the tables). ``upgrade`` is a write transaction that admits
    one upgrader at a time; ``where`` names the database in the errors."""
    sql = Statements(session.dialect)
    known = len(steps)
    before = _schema_version(session, sql)
    _refuse_newer(before, known, where)
    if before == known:
        return before
    with upgrade() as writing:
        writing.run(sql.version_table)
        # Read again under the lock: another process may have upgraded meanwhile.
        current = _schema_version(writing, sql)
        _refuse_newer(current, known, where)
        for number in range(current + 1, known + 1):
            step = writing.about("schema_version", number)
            steps[number - 1](step)
            step.run(sql.add_version, (number, session.dialect.instant(datetime.now(UTC))))
    return current


def require_current(session: Session, steps: Sequence[Step], where: str) -> int:
    """The database's schema version, which must be ``len(steps)``: a store told not to
    upgrade refuses an older database as it refuses a newer one."""
    version = _schema_version(session, Statements(session.dialect))
    _refuse_newer(version, len(steps), where)
    if version < len(steps):
        raise StoreError(
            "schema_version",
            version,
            f"{where} is at schema version {version}, not {len(steps)}: upgrade it first",
        )
    return version


def open_practice(
    session: Session, write: Transaction, practice_id: str, timezone: str | None
) -> Practice:
    """The practice ``practice_id``, created with ``timezone`` if it is new (required then)."""
    check_id("practice_id", practice_id)
    session.dialect.text("practice_id", practice_id)
    sql = Statements(session.dialect)
    stored = session.rows(sql.timezone, (practice_id,))
    if not stored:
        if timezone is None:
            raise NotFoundError("practice_id", practice_id, "is a new practice: give its timezone")
        Practice(practice_id, timezone)  # refuses a bad id or zone before writing
        with write() as writing:
            writing.run(sql.add_practice, (practice_id, timezone))
        stored = session.rows(sql.timezone, (practice_id,))
    return Practice(practice_id, str(stored[0][0]))


class SqlStore(ABC):
    """A store to close, or to use as a context manager."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection; the store and its repositories are unusable afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class SqlRepository(ABC):
    """One practice's view of a SQL store: every statement is scoped to it. Subclasses give
    the driver's transactions (the four hooks) and the commit."""

    def __init__(self, practice: Practice, sql: Statements, decoded: Decoded) -> None:
        self._practice = practice
        self._id = practice.id
        self._sql = sql
        self._decoded = decoded
        self._text = sql.dialect.text

    @property
    def practice(self) -> Practice:
        return self._practice

    @abstractmethod
    def _read(self, field: str, value: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        """The rows of one statement on its own; ``field`` and ``value`` name it in errors."""

    @abstractmethod
    def _writing(self, field: str, value: Any) -> AbstractContextManager[Session]:
        """A write transaction; concurrent writes conflict or wait, never interleave."""

    @abstractmethod
    def _snapshot(self, field: str, value: Any) -> AbstractContextManager[Session]:
        """A read transaction: its statements see one state of the database."""

    @abstractmethod
    def _exclusive(self, field: str, value: Any) -> AbstractContextManager[Session]:
        """A write transaction no commit runs beside, from its first read on."""

    @abstractmethod
    def _commit(
        self,
        writing: list[Change],
        client_packs: Mapping[str, int],
        command: CommandRecord | None,
    ) -> tuple[RecordedEvent, ...]:
        """Write the changes that write something, and ``command``, in one transaction."""

    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        writing = check_distinct(changes)
        if not writing and command is None:
            return ()
        return self._commit(writing, client_packs or {}, command)

    def _rows(self, field: str, value: Any, sql: str, *params: Any) -> list[Any]:
        return self._read(field, value, sql, (self._id, *params))

    def _state(self, row: Sequence[Any]) -> PackState:
        """The state of a ``(state, terms)`` row."""
        return self._decoded.state(row[0], row[1], practice=self._id)

    # Reading -------------------------------------------------------------------------------

    def load(self, pack_id: str) -> PackState:
        found = self._rows("pack_id", pack_id, self._sql.load, self._text("pack_id", pack_id))
        if not found:
            raise NotFoundError("pack_id", pack_id, "no such pack in this practice")
        return self._state(found[0])

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        found = self._rows("pack_id", pack_id, self._sql.ledger, self._text("pack_id", pack_id))
        if not found:
            raise NotFoundError("pack_id", pack_id, "no such pack in this practice")
        return tuple(loads_entry(row[0]) for row in found)

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        """Packs asked for as open or expired only are read by the index of the client's live
        packs (``packs_live_by_client``), without visiting or decoding the others."""
        client = self._text("client_id", client_id)
        sql = self._sql.live_client_packs if _only_live(statuses) else self._sql.client_packs
        found = self._rows("client_id", client_id, sql, client, self._id, client)
        states = serving(map(self._state, found), client_id, former)
        return with_statuses(states, statuses, as_of)

    def count_client_packs(self, client_id: str) -> int:
        """How many packs the client owns, whatever their status: what R13a counts."""
        client = self._text("client_id", client_id)
        return int(self._rows("client_id", client_id, self._sql.count_client, client)[0][0])

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        appointment = self._text("appointment_id", appointment_id)
        found = self._rows("appointment_id", appointment_id, self._sql.holder, appointment)
        return str(found[0][0]) if found else None

    def expiry_candidates(self, as_of: date) -> list[PackState]:
        if type(as_of) is not date:
            raise InvalidValueError("as_of", as_of, "must be a date")
        day = self._sql.dialect.day(as_of)
        found = self._rows("as_of", as_of, self._sql.expiry_candidates, day)
        # The column is the state's next_sweep, but a writer of an earlier release during
        # a rolling upgrade stores another bound (its expiry date): the definition decides.
        return [s for s in map(self._state, found) if s.due_for_sweep(as_of)]

    def find_packs(
        self, query: PackQuery, *, after: str | None = None, limit: int = 100
    ) -> PackPage:
        start, limit = check_page(query, after, limit)
        sql, params = find_packs(self._sql.dialect, bounds(query))
        candidates = self._candidates(sql, params, start or "", limit + 1)
        return PackPage.of((s for s in candidates if query.matches(s)), limit)

    def _candidates(
        self, sql: str, params: tuple[object, ...], start: str, batch: int
    ) -> Iterator[PackState]:
        """The candidates after ``start`` in order, read ``batch`` at a time: the indexed
        columns are a day wide on the safe side, so a batch may hold a few that do not match."""
        while True:
            found = self._rows("query", start, sql, *params, start, batch)
            yield from map(self._state, (row[1:] for row in found))
            if len(found) < batch:
                return
            start = str(found[-1][0])

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        check_window(position, limit)
        bound = self._sql.dialect.no_limit if limit is None else limit
        found = self._rows("position", position, self._sql.events_since, position, bound)
        return [RecordedEvent(row[0], loads_event(row[1])) for row in found]

    def command(self, key: str) -> CommandRecord | None:
        text = self._text("idempotency_key", key)
        found = self._rows("idempotency_key", key, self._sql.command, text)
        return rows.command(found[0]) if found else None

    def _record(self, session: Session, command: CommandRecord | None, first: int = 0) -> None:
        """Write ``command`` (R27) in the session's transaction; ``first`` is the position
        before its first event."""
        if command is None:
            return
        key = self._text("idempotency_key", command.key)
        recorded = session.about("idempotency_key", key).run(
            self._sql.record_command, (self._id, key, command.fingerprint, command.result, first)
        )
        if recorded != 1:
            raise command_conflict(command.key)

    # Templates and preferences -------------------------------------------------------------

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        if not isinstance(template, PackTemplate):
            raise InvalidValueError("template", template, "must be a PackTemplate")
        template_id = self._text("template.id", template.id)
        # Written only if the latest version is the one before it (see the statement).
        latest = (self._id, template_id, template.version - 1)
        with self._writing("template.id", template_id) as session:
            self._record(session, command)
            saved = session.about("template.version", template.version).run(
                self._sql.save_template,
                (self._id, template_id, template.version, dumps_template(template), *latest),
            )
            if saved != 1:
                found = session.rows(self._sql.latest_template_version, (self._id, template_id))
                raise ConcurrencyError(
                    "template.version",
                    template.version,
                    f"template {template.id} is at version {found[0][0]}",
                )

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        text = self._text("template_id", template_id)
        if version is None:
            found = self._rows("template_id", template_id, self._sql.latest_template, text)
        else:
            found = self._rows("version", version, self._sql.template_version, text, version)
        if found:
            return rows.template(found[0][0])
        if version is not None and self._rows(
            "template_id", template_id, self._sql.latest_template, text
        ):
            raise NotFoundError("version", version, f"template {template_id} has no such version")
        raise NotFoundError("template_id", template_id, "no such template in this practice")

    def templates(self) -> list[PackTemplate]:
        found = self._rows("practice_id", self._id, self._sql.templates, self._id)
        return [rows.template(row[0]) for row in found]

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        client = self._text("client_id", client_id)
        with self._writing("client_id", client_id) as session:
            self._record(session, command)
            if preference is None:
                session.run(self._sql.clear_preference, (self._id, client))
            else:
                session.run(
                    self._sql.set_preference, (self._id, client, dumps_preference(preference))
                )

    def preference(self, client_id: str) -> Preference | None:
        client = self._text("client_id", client_id)
        found = self._rows("client_id", client_id, self._sql.preference, client)
        return rows.preference(found[0][0]) if found else None

    # The folded state is derived: it can always be checked and rebuilt from the ledger ---------

    def check_snapshots(self) -> list[str]:
        """Pack ids whose stored row (state and projection) or active usages differ from the
        replay of their ledger (a row without a ledger counts too); empty when the store is
        sound. Reads one state of the database, so concurrent commits show no differences."""
        with self._snapshot("practice_id", self._id) as session:
            return sorted(self._differing(session, self._replay_all(session)))

    def rebuild_snapshots(self) -> list[str]:
        """Rewrite the rows and active usages that differ from the ledgers, in one transaction
        no commit runs beside, counting up the practice's ``repairs`` if any did; returns the
        pack ids that differed."""
        with self._exclusive("practice_id", self._id) as session:
            replayed = self._replay_all(session)
            differing = self._differing(session, replayed)
            # Usages and shares first: PostgreSQL's refer to packs, and a pack row may go.
            session.run(self._sql.clear_active, (self._id,))
            session.run(self._sql.clear_shared, (self._id,))
            for pack_id in sorted(differing):
                self._rewrite(session.about("pack_id", pack_id), pack_id, replayed.get(pack_id))
            session.run_many(
                self._sql.take,
                [(self._id, a, p) for a, p in rows.active_usages(replayed.values()).items()],
            )
            session.run_many(
                self._sql.share,
                [(self._id, c, p) for p, c in sorted(_shared(replayed.values()))],
            )
            if differing:  # what other processes remember of the practice is no longer trusted
                session.run(self._sql.repaired, (self._id,))
        return sorted(differing)

    def _replay_all(self, session: Session) -> dict[str, PackState]:
        entries = session.rows(self._sql.all_entries, (self._id,))
        return {
            str(pack_id): replay(loads_entry(row[1]) for row in ledger)
            for pack_id, ledger in groupby(entries, key=lambda row: row[0])
        }

    def _differing(self, session: Session, replayed: dict[str, PackState]) -> set[str]:
        stored = {str(row[0]): row[1:] for row in session.rows(self._sql.all_packs, (self._id,))}
        differing = {
            p for p in stored.keys() | replayed.keys() if not self._sound(stored, replayed, p)
        }
        actual = dict(session.rows(self._sql.all_active, (self._id,)))
        expected = rows.active_usages(replayed.values())
        for appointment_id in actual.keys() | expected.keys():
            holders = (actual.get(appointment_id), expected.get(appointment_id))
            if holders[0] != holders[1]:
                differing.update(str(p) for p in holders if p)
        listed = {(str(p), str(c)) for p, c in session.rows(self._sql.all_shared, (self._id,))}
        differing.update(p for p, _ in listed ^ _shared(replayed.values()))
        return differing

    def _sound(
        self, stored: Mapping[str, Sequence[Any]], replayed: Mapping[str, PackState], pack_id: str
    ) -> bool:
        """Whether the row ``(terms, *projection)`` is the replayed state's: its columns, its
        state joined with its terms, and its terms, where it has them (a pack an earlier
        release's writer opened has none, and a whole state)."""
        row, state = stored.get(pack_id), replayed.get(pack_id)
        if row is None or state is None:
            return False
        terms, columns = row[0], row[1:]
        at = PROJECTION.index("state")
        derived = projection(self._sql.dialect, state, "")
        same = tuple(columns[:at]) + tuple(columns[at + 1 :]) == derived[:at] + derived[at + 1 :]
        try:
            # Compared as encoded: a state the store remembers from its commit holds the
            # caller's datetimes (a ZoneInfo), the replay fixed offsets, and Python never finds
            # two such datetimes equal inside an hour a zone repeats (DST's end, PEP 495).
            return (
                same
                and (terms is None or loads_terms(terms) == state.terms)
                and dumps_state(self._decoded.state(columns[at], terms, practice=self._id))
                == dumps_state(state)
            )
        except StoreError:  # a state without terms in a row without them
            return False

    def _rewrite(self, session: Session, pack_id: str, state: PackState | None) -> None:
        if state is None:  # a row with no ledger behind it is not derived from anything
            session.run(self._sql.delete_pack, (self._id, pack_id))
        else:
            columns = projection(self._sql.dialect, state, lean_state(state))
            session.run(self._sql.put_pack, (self._id, pack_id, *columns, terms_text(state.terms)))


_LIVE = frozenset((PackStatus.OPEN, PackStatus.EXPIRED))


def _only_live(statuses: object) -> bool:
    """Whether ``statuses`` is a collection of open or expired, and nothing else."""
    if not isinstance(statuses, frozenset | set | tuple | list) or not statuses:
        return False
    return all(isinstance(s, PackStatus) and s in _LIVE for s in statuses)


def _shared(states: Iterable[PackState]) -> set[tuple[str, str]]:
    """The rows of ``shared_packs`` the states give: (pack, client) for each client listed."""
    return {(s.pack_id, client) for s in states for client in s.ever_shared_with}
