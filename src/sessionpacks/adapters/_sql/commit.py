"""The commit as the core's statements, one after another in the caller's transaction.

The SQLite store runs it inside ``BEGIN IMMEDIATE``; the SQLAlchemy store inside its own
transaction or a savepoint of the host's, on SQLite and PostgreSQL. (The PostgreSQL store sends
the same writes as one call of its ``commit_changes`` function instead.) Its order is what
keeps concurrent commits apart without deadlocks: the clients' locks first, in client order
(R13a), then the pack rows in pack id order, the usages, and the practice's event counter last.
"""

from __future__ import annotations

from collections.abc import Mapping

from sessionpacks.adapters._common import appointment_changes, client_conflict, sharing_changes
from sessionpacks.adapters._sql.core import SqlRepository
from sessionpacks.adapters._sql.dialect import Dialect
from sessionpacks.adapters._sql.known import repaired
from sessionpacks.adapters._sql.rows import (
    PROJECTION,
    entry_row,
    event_row,
    lean_state,
    projection,
    terms_text,
)
from sessionpacks.adapters._sql.session import Session
from sessionpacks.errors import ConcurrencyError, NotFoundError
from sessionpacks.events import RecordedEvent
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord

__all__ = ["StatementRepository"]


class StatementRepository(SqlRepository):
    """A :class:`~.core.SqlRepository` whose commit is :meth:`_write` in a transaction the
    subclass opens (its :meth:`_commit`)."""

    def _write(
        self,
        session: Session,
        writing: list[Change],
        client_packs: Mapping[str, int],
        command: CommandRecord | None,
        repairs: int | None = None,
    ) -> tuple[RecordedEvent, ...]:
        """Write the changes and ``command`` in the session's transaction; raises
        :class:`~sessionpacks.errors.ConcurrencyError` at the first conflict (the practice
        found repaired since ``repairs``, when given, among them), leaving the caller to roll
        back. Returns the events with their positions."""
        used, released = appointment_changes(writing)
        opening = {c.after.client_id for c in writing if c.expected_version == 0}
        self._lock_clients(session, sorted(opening | client_packs.keys()))
        for client_id, seen in client_packs.items():
            self._check_client(session, client_id, seen)
        written = [
            (self._write_pack(session, change), change.after)
            for change in sorted(writing, key=lambda change: change.pack_id)
        ]
        self._move_usages(session, used, released)
        self._share(session, writing)
        recorded, repaired_now = self._append_events(session, writing)
        if repairs is not None:
            if repaired_now is None:
                repaired_now = int(session.rows(self._sql.repairs, (self._id,))[0][0])
            if repaired_now != repairs:
                raise repaired(self._id)
        self._record(session, command, recorded[0].position - 1 if recorded else 0)
        for text, state in written:
            self._decoded.remember(text, state, practice=self._id)
        return recorded

    def _lock_clients(self, session: Session, clients: list[str]) -> None:
        """Hold each client's lock, where the dialect has one, until the transaction ends, so
        the next commit counting the client's packs counts after this one (R13a). Without one
        (SQLite) the transaction holds the database's write lock already."""
        dialect = self._sql.dialect
        lock = dialect.render(dialect.tokens["client_lock"])
        if not lock:
            return
        schema = dialect.tokens["schema"]
        for client_id in clients:
            key = "\x1f".join((schema, self._id, self._text("client_id", client_id)))
            session.about("client_id", client_id).rows(lock, (key,))

    def _check_client(self, session: Session, client_id: str, seen: int) -> None:
        client = self._text("client_id", client_id)
        found = session.about("client_id", client_id).rows(
            self._sql.count_client, (self._id, client)
        )
        if found[0][0] != seen:
            raise client_conflict(client_id, found[0][0], seen)

    def _write_pack(self, session: Session, change: Change) -> str:
        """Write the pack's row and entries; returns the state's stored text (without its
        terms, which are written once, with the pack's opening)."""
        pack = session.about("pack_id", self._text("pack_id", change.pack_id))
        self._text("client_id", change.after.client_id)
        columns = projection(self._sql.dialect, change.after, lean_state(change.after))
        if change.expected_version == 0:
            # A second opener of the same id fails on the key (practice_id, pack_id).
            terms = terms_text(change.after.terms)
            pack.run(self._sql.insert_pack, (self._id, change.pack_id, *columns, terms))
        else:
            key = (self._id, change.pack_id, change.expected_version)
            names, values = _changed(self._sql.dialect, change, columns)
            if pack.run(self._sql.update_pack(names), (*values, *key)) != 1:
                found = pack.rows(self._sql.version, key[:2])
                raise ConcurrencyError(
                    "pack_id",
                    change.pack_id,
                    f"is at version {found[0][0] if found else 0}, not {change.expected_version}",
                )
        pack.run_many(self._sql.add_entry, [(self._id, *entry_row(e)) for e in change.entries])
        return str(columns[2])

    def _move_usages(self, session: Session, used: dict[str, str], released: set[str]) -> None:
        """Releases first, so a move in one commit frees the appointment before it is taken."""
        for appointment_id in sorted(released):
            session.about("appointment_id", appointment_id).run(
                self._sql.release, (self._id, self._text("appointment_id", appointment_id))
            )
        for appointment_id in sorted(used):
            about = session.about("appointment_id", appointment_id)
            appointment = self._text("appointment_id", appointment_id)
            # Taken only if free: a failed statement would end a PostgreSQL transaction, and
            # the holder is read for the message.
            if about.run(self._sql.take, (self._id, appointment, used[appointment_id])) != 1:
                holder = about.rows(self._sql.holder, (self._id, appointment))
                raise ConcurrencyError(
                    "appointment_id",
                    appointment_id,
                    f"is active on pack {holder[0][0] if holder else '?'} (R6)",
                )

    def _share(self, session: Session, writing: list[Change]) -> None:
        """Index each pack by the clients it is shared with (R20), after its row is written."""
        sharing = sharing_changes(writing)
        for pack_id, client_id in sharing.removed:
            session.run(self._sql.unshare, (self._id, client_id, pack_id))
        for pack_id, client_id in sharing.added:
            client = self._text("client_id", client_id)
            session.about("client_id", client_id).run(self._sql.share, (self._id, client, pack_id))

    def _append_events(
        self, session: Session, writing: list[Change]
    ) -> tuple[tuple[RecordedEvent, ...], int | None]:
        """The events with their positions, and the practice's repairs read on the way
        (``None`` when there were no events)."""
        events = [event for change in writing for event in change.events]
        if not events:
            return (), None
        # The practice's counter row serialises positions: gap-free, one stream per practice.
        advanced = session.rows(self._sql.advance, (len(events), self._id))
        if not advanced:
            raise NotFoundError(
                "practice_id", self._id, "no such practice (was its creation rolled back?)"
            )
        last, repairs = advanced[0][0], int(advanced[0][1])
        recorded = tuple(
            RecordedEvent(position, event)
            for position, event in enumerate(events, start=last - len(events) + 1)
        )
        session.run_many(
            self._sql.add_event, [(self._id, r.position, *event_row(r.event)) for r in recorded]
        )
        return recorded, repairs


def _changed(
    dialect: Dialect, change: Change, columns: tuple[object, ...]
) -> tuple[tuple[str, ...], tuple[object, ...]]:
    """The projection's columns whose values ``change`` alters, with those values: the state
    and its version always. Every column is a function of the state, and the row holds the
    projection of the state the change was decided on (``before``, read from it or written by
    the change before it in the same transaction), so a column equal in both is left as the
    row has it. A row written otherwise (by hand) is what ``check_snapshots`` finds."""
    assert change.before is not None
    old = projection(dialect, change.before, "")
    names: list[str] = []
    values: list[object] = []
    for name, was, now in zip(PROJECTION, old, columns, strict=True):
        if name in _ALWAYS or was != now:
            names.append(name)
            values.append(now)
    return tuple(names), tuple(values)


_ALWAYS = frozenset({"version", "state"})
