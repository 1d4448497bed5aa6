"""A host's own store for sessionpacks: packs kept in the clinic's SQLite tables.

The clinic's database already has its own naming (locations, patients, bookings), so this
store does not use the library's SQLite adapter: it implements the ``PackRepository`` port
from scratch on tables of its own, and keeps the library's values as JSON text written by
:mod:`sessionpacks.serialization`. ``test_host.py`` proves it with the library's contract
suite and its state machine.

How it keeps the port's promises:

- a pack's row holds its folded state (``snapshot_json``) and its ``revision``; a write
  updates the row only ``WHERE revision = expected`` (R16), in one ``BEGIN IMMEDIATE``
  transaction with the ledger lines, the booking credits and the outbox rows;
- ``clinic_booking_credit`` has one row per active booking (``PRIMARY KEY (location_ref,
  booking_ref)``): a booking cannot be active on two packs (R6);
- ``clinic_outbox`` numbers events per location from ``clinic_location.event_counter``;
- a commit conditional on a patient's number of packs counts those they own inside its
  ``BEGIN IMMEDIATE`` transaction, where writers take turns (R13a);
- ``clinic_pack_sharer`` lists the patients each pack is shared with beside its owner, kept
  in step with the states' ``shared_with`` in the same transaction (R20);
- ``clinic_request`` keeps each idempotency key with the writes it came with (R27).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sessionpacks import (
    CommandRecord,
    ConcurrencyError,
    InvalidValueError,
    NotFoundError,
    PackPage,
    PackQuery,
    PackState,
    PackStatus,
    PackTemplate,
    Practice,
    RecordedEvent,
    StoreError,
)
from sessionpacks.ledger import Entry
from sessionpacks.model import Preference
from sessionpacks.operations import Change
from sessionpacks.ports import check_page
from sessionpacks.serialization import (
    dumps_entry,
    dumps_event,
    dumps_preference,
    dumps_state,
    dumps_template,
    loads_entry,
    loads_event,
    loads_preference,
    loads_state,
    loads_template,
)

__all__ = ["ClinicPackRepository", "ClinicPackStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS clinic_location (
    location_ref TEXT PRIMARY KEY,
    tz_name TEXT NOT NULL,
    event_counter INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS clinic_pack (  -- rowid: the order packs were opened in
    location_ref TEXT NOT NULL,
    pack_ref TEXT NOT NULL,
    patient_ref TEXT NOT NULL,
    revision INTEGER NOT NULL,
    snapshot_json TEXT NOT NULL,
    expires_on TEXT,
    finished INTEGER NOT NULL,
    units_left INTEGER NOT NULL,
    expiry_recorded_for TEXT,
    sweep_on TEXT,  -- PackState.next_sweep: the day a sweep next has something to record
    UNIQUE (location_ref, pack_ref)
);
CREATE TABLE IF NOT EXISTS clinic_pack_sharer (  -- R20: patients beside the owner on a pack
    location_ref TEXT NOT NULL,
    patient_ref TEXT NOT NULL,
    pack_ref TEXT NOT NULL,
    PRIMARY KEY (location_ref, patient_ref, pack_ref)
);
CREATE TABLE IF NOT EXISTS clinic_pack_history (
    location_ref TEXT NOT NULL,
    pack_ref TEXT NOT NULL,
    line_no INTEGER NOT NULL,
    entry_json TEXT NOT NULL,
    PRIMARY KEY (location_ref, pack_ref, line_no)
);
CREATE TABLE IF NOT EXISTS clinic_booking_credit (
    location_ref TEXT NOT NULL,
    booking_ref TEXT NOT NULL,
    pack_ref TEXT NOT NULL,
    PRIMARY KEY (location_ref, booking_ref)
);
CREATE TABLE IF NOT EXISTS clinic_outbox (
    location_ref TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_ref TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    PRIMARY KEY (location_ref, seq),
    UNIQUE (location_ref, event_ref)
);
CREATE TABLE IF NOT EXISTS clinic_pack_plan (  -- rowid: the order plans were first saved in
    location_ref TEXT NOT NULL,
    plan_ref TEXT NOT NULL,
    revision INTEGER NOT NULL,
    plan_json TEXT NOT NULL,
    UNIQUE (location_ref, plan_ref, revision)
);
CREATE TABLE IF NOT EXISTS clinic_request (
    location_ref TEXT NOT NULL,
    request_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result_json TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    PRIMARY KEY (location_ref, request_key)
);
CREATE TABLE IF NOT EXISTS clinic_patient_default (
    location_ref TEXT NOT NULL,
    patient_ref TEXT NOT NULL,
    default_json TEXT NOT NULL,
    PRIMARY KEY (location_ref, patient_ref)
);
"""


class ClinicPackStore:
    """The clinic's database file; :meth:`practice` gives a repository for one location."""

    def __init__(self, path: str | Path) -> None:
        # One connection shared under a lock; autocommit, with explicit write transactions.
        self.path = str(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()

    def practice(self, practice_id: str, timezone: str | None = None) -> ClinicPackRepository:
        with self._lock:
            row = self._db.execute(
                "SELECT tz_name FROM clinic_location WHERE location_ref = ?", (practice_id,)
            ).fetchone()
            if row is None:
                if timezone is None:
                    raise NotFoundError("practice_id", practice_id, "new location: give its tz")
                Practice(practice_id, timezone)  # refuses a bad id or zone before writing
                self._db.execute(
                    "INSERT INTO clinic_location (location_ref, tz_name) VALUES (?, ?)",
                    (practice_id, timezone),
                )
                row = (timezone,)
        return ClinicPackRepository(self, Practice(practice_id, row[0]))

    def close(self) -> None:
        self._db.close()

    def rows(self, sql: str, *params: Any) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything in it is written, or nothing."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:  # another process held it too long
                raise ConcurrencyError("database", self.path, str(error)) from error
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as error:
                self._db.execute("ROLLBACK")
                if isinstance(error, sqlite3.Error):
                    raise StoreError("database", self.path, str(error)) from error
                raise


class ClinicPackRepository:
    """sessionpacks' ``PackRepository`` for one clinic location."""

    def __init__(self, store: ClinicPackStore, practice: Practice) -> None:
        self._store = store
        self._practice = practice
        self._loc = practice.id

    @property
    def practice(self) -> Practice:
        return self._practice

    # Reading ---------------------------------------------------------------------------------

    def load(self, pack_id: str) -> PackState:
        found = self._store.rows(
            "SELECT snapshot_json FROM clinic_pack WHERE location_ref = ? AND pack_ref = ?",
            self._loc,
            pack_id,
        )
        if not found:
            raise NotFoundError("pack_id", pack_id, "no such pack at this location")
        return loads_state(found[0][0])

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        lines = self._store.rows(
            "SELECT entry_json FROM clinic_pack_history WHERE location_ref = ? AND pack_ref = ?"
            " ORDER BY line_no",
            self._loc,
            pack_id,
        )
        if not lines:
            raise NotFoundError("pack_id", pack_id, "no such pack at this location")
        return tuple(loads_entry(text) for (text,) in lines)

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        if statuses is not None and (as_of is None or as_of.tzinfo is None):
            raise InvalidValueError("as_of", as_of, "a timezone-aware instant is required")
        packs = [
            loads_state(text)
            for (text,) in self._store.rows(
                "SELECT snapshot_json FROM clinic_pack AS p WHERE location_ref = ?"
                " AND (patient_ref = ? OR pack_ref IN (SELECT pack_ref FROM clinic_pack_sharer"
                " AS s WHERE s.location_ref = p.location_ref AND s.patient_ref = ?))"
                " ORDER BY rowid",
                self._loc,
                client_id,
                client_id,
            )
        ]
        # A patient taken off a pack stays in clinic_pack_sharer: what they drew on (R20, R23).
        packs = [p for p in packs if former or p.serves(client_id)]
        if statuses is None or as_of is None:
            return packs
        return [p for p in packs if p.status(as_of) in statuses]

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        found = self._store.rows(
            "SELECT pack_ref FROM clinic_booking_credit WHERE location_ref = ? AND booking_ref = ?",
            self._loc,
            appointment_id,
        )
        return str(found[0][0]) if found else None

    def expiry_candidates(self, as_of: date) -> list[PackState]:
        # sweep_on is the state's next_sweep (an expiry to record, R12, or a reminder, R25);
        # the state's own definition decides.
        rows = self._store.rows(
            "SELECT snapshot_json FROM clinic_pack WHERE location_ref = ? AND sweep_on <= ?"
            " ORDER BY rowid",
            self._loc,
            as_of.isoformat(),
        )
        states = [loads_state(text) for (text,) in rows]
        return [s for s in states if s.due_for_sweep(as_of)]

    def find_packs(
        self, query: PackQuery, *, after: str | None = None, limit: int = 100
    ) -> PackPage:
        # A clinic's few thousand packs are read in pack order and the definition keeps the
        # matches; a store of many more would give the filters columns and indexes, as the
        # library's SQL stores do, and still let query.matches decide.
        start, limit = check_page(query, after, limit)
        rows = self._store.rows(
            "SELECT snapshot_json FROM clinic_pack WHERE location_ref = ? AND pack_ref > ?"
            " ORDER BY pack_ref",
            self._loc,
            start or "",
        )
        states = (loads_state(text) for (text,) in rows)
        return PackPage.of((s for s in states if query.matches(s)), limit)

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        if type(position) is not int or position < 0:
            raise InvalidValueError("position", position, "must be a whole number >= 0")
        if limit is not None and (type(limit) is not int or limit < 0):
            raise InvalidValueError("limit", limit, "must be a whole number >= 0, or None")
        rows = self._store.rows(
            "SELECT seq, payload_json FROM clinic_outbox WHERE location_ref = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            self._loc,
            position,
            -1 if limit is None else limit,
        )
        return [RecordedEvent(seq, loads_event(text)) for seq, text in rows]

    # Writing ---------------------------------------------------------------------------------

    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        if len({c.pack_id for c in changes}) != len(changes):
            raise InvalidValueError("changes", changes, "one commit changes a pack once")
        writing = [c for c in changes if c.entries]
        if not writing and command is None:
            return ()
        with self._store.writing() as db:
            for patient, seen in (client_packs or {}).items():
                (count,) = db.execute(
                    "SELECT count(*) FROM clinic_pack WHERE location_ref = ? AND patient_ref = ?",
                    (self._loc, patient),
                ).fetchone()
                if count != seen:
                    raise ConcurrencyError("client_id", patient, f"has {count} packs, not {seen}")
            for change in writing:
                self._write_pack(db, change)
            self._move_credits(db, writing)
            recorded = self._append_events(db, writing)
            self._remember(db, command, recorded[0].position - 1 if recorded else 0)
            return recorded

    def _remember(self, db: sqlite3.Connection, command: CommandRecord | None, first: int) -> None:
        if command is None:
            return
        try:
            db.execute(
                "INSERT INTO clinic_request (location_ref, request_key, fingerprint,"
                " result_json, first_seq) VALUES (?, ?, ?, ?, ?)",
                (self._loc, command.key, command.fingerprint, command.result, first),
            )
        except sqlite3.IntegrityError as error:
            raise ConcurrencyError("idempotency_key", command.key, "already used") from error

    def command(self, key: str) -> CommandRecord | None:
        found = self._store.rows(
            "SELECT request_key, fingerprint, result_json, first_seq FROM clinic_request"
            " WHERE location_ref = ? AND request_key = ?",
            self._loc,
            key,
        )
        return CommandRecord(*found[0]) if found else None

    def _write_pack(self, db: sqlite3.Connection, change: Change) -> None:
        state = change.after
        expiry = state.expiry_date
        columns = (
            state.version,
            dumps_state(state),
            None if expiry is None else expiry.isoformat(),
            int(state.ended),
            state.remaining_units,
            None if state.expired_on is None else state.expired_on.isoformat(),
            None if state.next_sweep is None else state.next_sweep.isoformat(),
        )
        if change.expected_version == 0:
            try:
                db.execute(
                    "INSERT INTO clinic_pack (location_ref, pack_ref, patient_ref, revision,"
                    " snapshot_json, expires_on, finished, units_left, expiry_recorded_for,"
                    " sweep_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (self._loc, change.pack_id, state.client_id, *columns),
                )
            except sqlite3.IntegrityError as error:
                raise ConcurrencyError("pack_id", change.pack_id, "already exists") from error
        else:
            updated = db.execute(
                "UPDATE clinic_pack SET revision = ?, snapshot_json = ?, expires_on = ?,"
                " finished = ?, units_left = ?, expiry_recorded_for = ?, sweep_on = ?"
                " WHERE location_ref = ? AND pack_ref = ? AND revision = ?",
                (*columns, self._loc, change.pack_id, change.expected_version),
            )
            if updated.rowcount != 1:
                raise ConcurrencyError(
                    "pack_id", change.pack_id, f"is no longer at {change.expected_version}"
                )
        db.executemany(
            "INSERT INTO clinic_pack_history (location_ref, pack_ref, line_no, entry_json)"
            " VALUES (?, ?, ?, ?)",
            [(self._loc, change.pack_id, e.sequence, dumps_entry(e)) for e in change.entries],
        )
        self._share(db, change)

    def _share(self, db: sqlite3.Connection, change: Change) -> None:
        """The patients the pack is shared with, as its new state lists them (R20)."""
        before = set() if change.before is None else set(change.before.ever_shared_with)
        after = set(change.after.ever_shared_with)
        rows = [(self._loc, p, change.pack_id) for p in sorted(before - after)]
        db.executemany(
            "DELETE FROM clinic_pack_sharer WHERE location_ref = ? AND patient_ref = ?"
            " AND pack_ref = ?",
            rows,
        )
        db.executemany(
            "INSERT INTO clinic_pack_sharer (location_ref, patient_ref, pack_ref) VALUES (?, ?, ?)",
            [(self._loc, p, change.pack_id) for p in sorted(after - before)],
        )

    def _move_credits(self, db: sqlite3.Connection, changes: list[Change]) -> None:
        """A booking is active on a pack while the pack's state lists it (R6)."""
        gained: dict[str, str] = {}
        for change in changes:
            before = {u.appointment.id for u in change.before.usages} if change.before else set()
            after = {u.appointment.id for u in change.after.usages}
            for booking in before - after:
                db.execute(
                    "DELETE FROM clinic_booking_credit WHERE location_ref = ? AND booking_ref = ?",
                    (self._loc, booking),
                )
            for booking in after - before:
                if booking in gained:
                    raise ConcurrencyError("appointment_id", booking, "on two packs at once")
                gained[booking] = change.pack_id
        for booking, pack_id in gained.items():
            try:
                db.execute(
                    "INSERT INTO clinic_booking_credit (location_ref, booking_ref, pack_ref)"
                    " VALUES (?, ?, ?)",
                    (self._loc, booking, pack_id),
                )
            except sqlite3.IntegrityError as error:
                raise ConcurrencyError("appointment_id", booking, "is on another pack") from error

    def _append_events(
        self, db: sqlite3.Connection, changes: list[Change]
    ) -> tuple[RecordedEvent, ...]:
        (position,) = db.execute(
            "SELECT event_counter FROM clinic_location WHERE location_ref = ?", (self._loc,)
        ).fetchone()
        recorded = []
        for event in (e for change in changes for e in change.events):
            position += 1
            db.execute(
                "INSERT INTO clinic_outbox (location_ref, seq, event_ref, payload_json)"
                " VALUES (?, ?, ?, ?)",
                (self._loc, position, event.event_id, dumps_event(event)),
            )
            recorded.append(RecordedEvent(position, event))
        db.execute(
            "UPDATE clinic_location SET event_counter = ? WHERE location_ref = ?",
            (position, self._loc),
        )
        return tuple(recorded)

    # Templates and preferences ------------------------------------------------------------------

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        with self._store.writing() as db:
            self._remember(db, command, 0)
            (latest,) = db.execute(
                "SELECT coalesce(max(revision), 0) FROM clinic_pack_plan"
                " WHERE location_ref = ? AND plan_ref = ?",
                (self._loc, template.id),
            ).fetchone()
            if template.version != latest + 1:
                raise ConcurrencyError(
                    "template.version", template.version, f"{template.id} is at {latest}"
                )
            db.execute(
                "INSERT INTO clinic_pack_plan (location_ref, plan_ref, revision, plan_json)"
                " VALUES (?, ?, ?, ?)",
                (self._loc, template.id, template.version, dumps_template(template)),
            )

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        revisions = self._revisions(template_id)
        if not revisions:
            raise NotFoundError("template_id", template_id, "no such plan at this location")
        if version is None:
            return revisions[-1]
        if not 1 <= version <= len(revisions):
            raise NotFoundError("version", version, f"{template_id} has no such revision")
        return revisions[version - 1]

    def _revisions(self, template_id: str) -> list[PackTemplate]:
        rows = self._store.rows(
            "SELECT plan_json FROM clinic_pack_plan WHERE location_ref = ? AND plan_ref = ?"
            " ORDER BY revision",
            self._loc,
            template_id,
        )
        return [loads_template(text) for (text,) in rows]

    def templates(self) -> list[PackTemplate]:
        latest: dict[str, PackTemplate] = {}
        rows = self._store.rows(
            "SELECT plan_json FROM clinic_pack_plan WHERE location_ref = ? ORDER BY rowid",
            self._loc,
        )
        for (text,) in rows:
            template = loads_template(text)
            latest[template.id] = template  # a dict keeps the order first saved
        return list(latest.values())

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        with self._store.writing() as db:
            self._remember(db, command, 0)
            db.execute(
                "DELETE FROM clinic_patient_default WHERE location_ref = ? AND patient_ref = ?",
                (self._loc, client_id),
            )
            if preference is not None:
                db.execute(
                    "INSERT INTO clinic_patient_default (location_ref, patient_ref, default_json)"
                    " VALUES (?, ?, ?)",
                    (self._loc, client_id, dumps_preference(preference)),
                )

    def preference(self, client_id: str) -> Preference | None:
        found = self._store.rows(
            "SELECT default_json FROM clinic_patient_default"
            " WHERE location_ref = ? AND patient_ref = ?",
            self._loc,
            client_id,
        )
        return loads_preference(found[0][0]) if found else None
