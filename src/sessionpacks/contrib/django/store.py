"""The store on the app's models, in the host's transactions.

:class:`DjangoStore` is bound to one of the project's databases (``using``, ``"default"``
unless told otherwise); :meth:`DjangoStore.practice` hands out a :class:`DjangoRepository`,
which implements :class:`~sessionpacks.ports.PackRepository`.

Transactions: every write (a commit, a template, a preference) is one ``transaction.atomic()``
block. Inside the host's own ``atomic()`` that block is a savepoint: the write commits with the
host's rows or rolls back with them, and a command refused or in conflict rolls back only its
savepoint, so the service can retry it and the host's transaction goes on. Outside one, the
block is the command's own transaction. The store never commits the host's transaction.

Guarantees rest on the database, not on reading first:

* a pack's row is updated only ``WHERE version = expected`` (zero rows: another writer got
  there first) and a new pack's row has a unique ``(practice, pack_id)``;
* an appointment is active on one pack at a time: unique ``(practice, appointment_id)``;
* a template version and an idempotency key are unique per practice;
* event positions come from the practice's counter row, incremented as the commit's last write
  to the packs: its row lock makes the commits of one practice take their positions in turn,
  gap-free, visible in position order;
* the count of a client's packs (R13a) is taken under a lock on that client: on PostgreSQL a
  transaction-level advisory lock keyed by schema, practice and client, as the library's
  PostgreSQL store keys its own, so writers on other clients never wait; on SQLite the
  database's write lock, which a commit takes first.

Needs READ COMMITTED (PostgreSQL's and Django's default) in the host's transactions: a count
taken in an older snapshot could miss a pack committed before the lock was granted. On SQLite,
give the database ``"OPTIONS": {"transaction_mode": "IMMEDIATE"}`` (Django 5.1 and later) when
several processes or threads write, so a transaction holds the write lock from its start and
waits for it instead of failing.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import attrs
from django.db import connections, transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Collate

from sessionpacks._limits import check_id
from sessionpacks.adapters._common import (
    Bounds,
    Sharing,
    appointment_changes,
    bounds,
    check_distinct,
    check_window,
    client_conflict,
    command_conflict,
    query_columns,
    serving,
    sharing_changes,
    with_statuses,
)
from sessionpacks.contrib.django._errors import translated
from sessionpacks.contrib.django.models import (
    ActiveUsage,
    SharedPack,
    StoredCommand,
    StoredEntry,
    StoredEvent,
    StoredPack,
    StoredPractice,
    StoredPreference,
    StoredTemplate,
)
from sessionpacks.errors import ConcurrencyError, InvalidValueError, NotFoundError
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import Entry, PackState, PackStatus
from sessionpacks.model import PackTemplate, Practice, Preference
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord, PackPage, PackQuery, check_page
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

__all__ = ["DjangoRepository", "DjangoStore"]

# Decoding is a pure function of the stored text and its results are immutable: a workflow
# reading one pack several times decodes it once.
_state = functools.lru_cache(maxsize=4096)(loads_state)
_template = functools.lru_cache(maxsize=1024)(loads_template)
_preference = functools.lru_cache(maxsize=1024)(loads_preference)

# R13a on PostgreSQL: the key of a client's lock, as the PostgreSQL store builds it (namespace,
# practice and client, joined by \x1f, hashed with seed 7), its namespace being the schema and
# table the Django packs live in.
_CLIENT_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "current_schema() || '.' || %s || chr(31) || %s || chr(31) || %s, 7))"
)


class DjangoStore:
    """The library's storage in the Django database ``using`` (an alias of ``DATABASES``).

    Holds nothing but the alias: Django gives each thread its own connection, so a store (and
    its repositories) may be shared between threads. There is nothing to close.
    """

    def __init__(self, using: str = "default") -> None:
        if not isinstance(using, str) or using not in connections:
            raise InvalidValueError("using", using, "must be an alias of settings.DATABASES")
        self._using = using

    @property
    def using(self) -> str:
        """The alias of the database the store reads and writes."""
        return self._using

    def practice(self, practice_id: str, timezone: str | None = None) -> DjangoRepository:
        """A repository bound to ``practice_id``; ``timezone`` is required the first time."""
        check_id("practice_id", practice_id)
        rows = StoredPractice.objects.using(self._using)
        with translated("practice_id", practice_id):
            stored = rows.filter(pk=practice_id).values_list("timezone", flat=True).first()
            if stored is None:
                if timezone is None:
                    raise NotFoundError(
                        "practice_id", practice_id, "is a new practice: give its timezone"
                    )
                Practice(practice_id, timezone)  # refuses a bad id or zone before writing
                # get_or_create: a concurrent first opener of the same practice is no error.
                created, _ = rows.get_or_create(pk=practice_id, defaults={"timezone": timezone})
                stored = created.timezone
        return DjangoRepository(self._using, Practice(practice_id, str(stored)))


class DjangoRepository:
    """One practice's view of a :class:`DjangoStore`; every query is scoped to it."""

    def __init__(self, using: str, practice: Practice) -> None:
        self._using = using
        self._practice = practice
        self._id = practice.id

    @property
    def practice(self) -> Practice:
        return self._practice

    def _of(self, model: Any) -> Any:
        """``model``'s rows of this practice, on the store's database."""
        return model.objects.using(self._using).filter(practice_id=self._id)

    @contextmanager
    def _writing(self, field: str, value: Any) -> Iterator[Any]:
        """One write: a savepoint in the host's transaction, else a transaction of its own;
        anything raised rolls back the block (only), as the library's error. Yields the
        connection."""
        with translated(field, value), transaction.atomic(using=self._using):
            yield connections[self._using]

    # Reading -------------------------------------------------------------------------------

    def load(self, pack_id: str) -> PackState:
        with translated("pack_id", pack_id):
            found = self._of(StoredPack).filter(pack_id=pack_id).values_list("state", flat=True)
            text = found.first()
        if text is None:
            raise NotFoundError("pack_id", pack_id, "no such pack in this practice")
        return _state(text)

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        with translated("pack_id", pack_id):
            found = list(
                self._of(StoredEntry)
                .filter(pack_id=pack_id)
                .order_by("sequence")
                .values_list("entry", flat=True)
            )
        if not found:
            raise NotFoundError("pack_id", pack_id, "no such pack in this practice")
        return tuple(loads_entry(text) for text in found)

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        with translated("client_id", client_id):
            shared = self._of(SharedPack).filter(client_id=client_id).values("pack_id")
            found = list(
                self._of(StoredPack)
                .filter(Q(client_id=client_id) | Q(pack_id__in=shared))
                .order_by("id")
                .values_list("state", flat=True)
            )
        return with_statuses(serving(map(_state, found), client_id, former), statuses, as_of)

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        with translated("appointment_id", appointment_id):
            found = self._of(ActiveUsage).filter(appointment_id=appointment_id)
            holder = found.values_list("pack_id", flat=True).first()
        return None if holder is None else str(holder)

    def expiry_candidates(self, as_of: date) -> list[PackState]:
        if type(as_of) is not date:
            raise InvalidValueError("as_of", as_of, "must be a date")
        with translated("as_of", as_of):
            found = list(
                self._of(StoredPack)
                .filter(pending_expiry__lte=as_of)
                .order_by("id")
                .values_list("state", flat=True)
            )
        # The column is what the query can compare; the definition decides.
        return [s for s in map(_state, found) if s.due_for_sweep(as_of)]

    def find_packs(
        self, query: PackQuery, *, after: str | None = None, limit: int = 100
    ) -> PackPage:
        start, limit = check_page(query, after, limit)
        # Pack ids sort by code point on every store: SQLite's BINARY, PostgreSQL's "C".
        vendor = connections[self._using].vendor
        key = Collate("pack_id", "C") if vendor == "postgresql" else F("pack_id")
        found = self._of(StoredPack).filter(_candidates(bounds(query))).alias(key=key)
        candidates = self._batches(found, start or "", limit + 1)
        return PackPage.of((s for s in candidates if query.matches(s)), limit)

    def _batches(self, found: Any, start: str, batch: int) -> Iterator[PackState]:
        """The candidates after ``start`` in order, ``batch`` at a time (a few may not match:
        the columns are a day wide on the safe side)."""
        while True:
            with translated("query", start):
                rows = list(
                    found.filter(key__gt=start)
                    .order_by("key")
                    .values_list("pack_id", "state")[:batch]
                )
            yield from (_state(text) for _, text in rows)
            if len(rows) < batch:
                return
            start = str(rows[-1][0])

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        check_window(position, limit)
        with translated("position", position):
            found = (
                self._of(StoredEvent)
                .filter(position__gt=position)
                .order_by("position")
                .values_list("position", "event")
            )
            rows = list(found if limit is None else found[:limit])
        return [RecordedEvent(int(at), loads_event(text)) for at, text in rows]

    def command(self, key: str) -> CommandRecord | None:
        with translated("idempotency_key", key):
            found = self._of(StoredCommand).filter(key=key)
            row = found.values_list("fingerprint", "result", "first_position").first()
        return None if row is None else CommandRecord(key, row[0], row[1], int(row[2]))

    # The commit ----------------------------------------------------------------------------

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
        counts = dict(client_packs or {})
        used, released = appointment_changes(writing)
        first = writing[0].pack_id if writing else self._id
        with self._writing("pack_id" if writing else "practice_id", first) as connection:
            self._take_locks(connection, writing, counts)
            for client_id, seen in sorted(counts.items()):
                self._check_count(client_id, seen)
            # Pack rows in id order: two commits on the same packs lock them in the same order.
            for change in sorted(writing, key=lambda c: c.pack_id):
                self._write_pack(change)
            self._move_usages(used, released)
            self._share(sharing_changes(writing))
            recorded = self._append_events(writing)
            self._record(command, recorded[0].position - 1 if recorded else 0)
        return recorded

    def _take_locks(
        self, connection: Any, writing: list[Change], counts: Mapping[str, int]
    ) -> None:
        """What the count of a client's packs needs (R13a): SQLite's write lock, or on
        PostgreSQL the advisory lock of each client counted or given a new pack, in order."""
        if connection.vendor == "sqlite":
            # A write as the first statement takes the database's write lock (or waits for it).
            self._of(StoredPractice).update(last_position=F("last_position"))
        elif connection.vendor == "postgresql":
            opened = {c.after.client_id for c in writing if c.expected_version == 0}
            table = StoredPack._meta.db_table
            with connection.cursor() as cursor:
                for client_id in sorted(opened | counts.keys()):
                    with translated("client_id", client_id):
                        cursor.execute(_CLIENT_LOCK, [table, self._id, client_id])

    def _check_count(self, client_id: str, seen: int) -> None:
        with translated("client_id", client_id):
            count = self._of(StoredPack).filter(client_id=client_id).count()
        if count != seen:
            raise client_conflict(client_id, count, seen)

    def _write_pack(self, change: Change) -> None:
        """The pack's row, written only at the expected version, and its entries."""
        state = change.after
        columns = {
            "client_id": state.client_id,
            "version": state.version,
            "state": dumps_state(state),
            "expiry_date": state.expiry_date,
            "ended": state.ended,
            "remaining_units": state.remaining_units,
            "expired_on": state.expired_on,
            "pending_expiry": state.next_sweep,
            **attrs.asdict(query_columns(state)),
        }
        expected = change.expected_version
        with translated("pack_id", change.pack_id, "is at a version already (opened by another)"):
            if expected == 0:
                StoredPack.objects.using(self._using).create(
                    practice_id=self._id, pack_id=change.pack_id, **columns
                )
            elif (
                self._of(StoredPack)
                .filter(pack_id=change.pack_id, version=expected)
                .update(**columns)
                != 1
            ):
                found = self._of(StoredPack).filter(pack_id=change.pack_id)
                version = found.values_list("version", flat=True).first() or 0
                raise ConcurrencyError(
                    "pack_id", change.pack_id, f"is at version {version}, not {expected}"
                )
            StoredEntry.objects.using(self._using).bulk_create(
                StoredEntry(
                    practice_id=self._id,
                    pack_id=e.pack_id,
                    sequence=e.sequence,
                    kind=type(e).__name__,
                    entry=dumps_entry(e),
                )
                for e in change.entries
            )

    def _share(self, sharing: Sharing) -> None:
        """Index each pack by the clients it is shared with (R20)."""
        for pack_id, client_id in sharing.removed:
            self._of(SharedPack).filter(client_id=client_id, pack_id=pack_id).delete()
        if sharing.added:
            with translated("client_id", sharing.added[0][1]):
                SharedPack.objects.using(self._using).bulk_create(
                    SharedPack(practice_id=self._id, client_id=c, pack_id=p)
                    for p, c in sharing.added
                )

    def _move_usages(self, used: Mapping[str, str], released: Collection[str]) -> None:
        """Releases first, so a move in one commit frees the appointment before it is taken;
        an appointment already active on the same pack stays, on another is a conflict (R6)."""
        with translated("appointment_id", sorted(released)):
            if released:
                self._of(ActiveUsage).filter(appointment_id__in=list(released)).delete()
            held = dict(
                self._of(ActiveUsage)
                .filter(appointment_id__in=list(used))
                .values_list("appointment_id", "pack_id")
            )
        taken = []
        for appointment_id, pack_id in sorted(used.items()):
            holder = held.get(appointment_id)
            if holder is not None and holder != pack_id:
                raise ConcurrencyError(
                    "appointment_id", appointment_id, f"is active on pack {holder} (R6)"
                )
            if holder is None:
                taken.append(
                    ActiveUsage(
                        practice_id=self._id, appointment_id=appointment_id, pack_id=pack_id
                    )
                )
        for usage in taken:  # one by one, so a conflict names its appointment
            with translated(
                "appointment_id", usage.appointment_id, "is active on another pack (R6)"
            ):
                usage.save(using=self._using, force_insert=True)

    def _append_events(self, writing: list[Change]) -> tuple[RecordedEvent, ...]:
        events = [event for change in writing for event in change.events]
        if not events:
            return ()
        with translated("practice_id", self._id):
            # The counter row stays locked until the transaction ends (module docstring).
            practice = self._of(StoredPractice)
            practice.update(last_position=F("last_position") + len(events))
            last = int(practice.values_list("last_position", flat=True).get())
        recorded = tuple(
            RecordedEvent(position, event)
            for position, event in enumerate(events, start=last - len(events) + 1)
        )
        with translated("event_id", [r.event.event_id for r in recorded]):
            StoredEvent.objects.using(self._using).bulk_create(
                StoredEvent(
                    practice_id=self._id,
                    position=r.position,
                    event_id=r.event.event_id,
                    pack_id=r.event.pack_id,
                    kind=type(r.event).__name__,
                    event=dumps_event(r.event),
                )
                for r in recorded
            )
        return recorded

    def _record(self, command: CommandRecord | None, first_position: int = 0) -> None:
        """Store ``command`` (R27) in the write's transaction; ``first_position`` is the
        stream position before its first event."""
        if command is None:
            return
        try:
            with translated("idempotency_key", command.key):
                StoredCommand.objects.using(self._using).create(
                    practice_id=self._id,
                    key=command.key,
                    fingerprint=command.fingerprint,
                    result=command.result,
                    first_position=first_position,
                )
        except ConcurrencyError as error:
            raise command_conflict(command.key) from error

    # Templates and preferences -------------------------------------------------------------

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        if not isinstance(template, PackTemplate):
            raise InvalidValueError("template", template, "must be a PackTemplate")
        with self._writing("template.version", template.version):
            versions = self._of(StoredTemplate).filter(template_id=template.id)
            latest = versions.aggregate(latest=Max("version"))["latest"] or 0
            if template.version != latest + 1:
                raise ConcurrencyError(
                    "template.version",
                    template.version,
                    f"template {template.id} is at version {latest}",
                )
            # Two writers of one version meet the unique key.
            StoredTemplate.objects.using(self._using).create(
                practice_id=self._id,
                template_id=template.id,
                version=template.version,
                template=dumps_template(template),
            )
            self._record(command)

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        with translated("template_id", template_id):
            versions = self._of(StoredTemplate).filter(template_id=template_id)
            chosen = versions if version is None else versions.filter(version=version)
            text = chosen.order_by("-version").values_list("template", flat=True).first()
            known = text is not None or versions.exists()
        if text is not None:
            return _template(text)
        if version is not None and known:
            raise NotFoundError("version", version, f"template {template_id} has no such version")
        raise NotFoundError("template_id", template_id, "no such template in this practice")

    def templates(self) -> list[PackTemplate]:
        with translated("practice_id", self._id):
            latest: dict[
                str, tuple[int, int]
            ] = {}  # template id -> (version, row), first saved first
            for template_id, version, row in (
                self._of(StoredTemplate).order_by("id").values_list("template_id", "version", "id")
            ):
                if template_id not in latest or version > latest[template_id][0]:
                    latest[template_id] = (version, row)
            texts = StoredTemplate.objects.using(self._using).in_bulk(
                [row for _, row in latest.values()]
            )
        return [_template(texts[row].template) for _, row in latest.values()]

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        with self._writing("client_id", client_id):
            rows = self._of(StoredPreference).filter(client_id=client_id)
            if preference is None:
                rows.delete()
            elif not rows.update(preference=dumps_preference(preference)):
                StoredPreference.objects.using(self._using).create(
                    practice_id=self._id,
                    client_id=client_id,
                    preference=dumps_preference(preference),
                )
            self._record(command)

    def preference(self, client_id: str) -> Preference | None:
        with translated("client_id", client_id):
            found = self._of(StoredPreference).filter(client_id=client_id)
            text = found.values_list("preference", flat=True).first()
        return None if text is None else _preference(text)


def _candidates(within: Bounds) -> Q:
    """The rows within ``within``: the SQL core's conditions, as Django's."""
    condition = Q()
    if within.by_status:
        either = Q(pk__in=[])
        if within.lasting:
            either |= Q(lasting_status__in=within.lasting)
        if within.open_after is not None:
            either |= Q(open_until__gt=within.open_after)
        if within.expired_by is not None:
            either |= Q(open_until__lte=within.expired_by)
        condition &= either
    if within.expiring_from is not None:
        condition &= Q(expiry_date__gte=within.expiring_from)
    if within.expiring_to is not None:
        condition &= Q(expiry_date__lte=within.expiring_to)
    if within.template_id is not None:
        condition &= Q(template_id=within.template_id)
    if within.left is not None:
        condition &= Q(remaining_unit=within.left[0], remaining_units__lte=within.left[1])
    return condition
