"""The contract every :class:`~sessionpacks.ports.PackRepository` passes.

A store's test module subclasses :class:`RepositoryContract` under a name pytest collects and
implements :meth:`~RepositoryContract.make_store`::

    class TestSqliteContract(RepositoryContract):
        @pytest.fixture(autouse=True)
        def _file(self, tmp_path):
            self.path = tmp_path / "packs.db"

        def make_store(self):
            self.store = SqliteStore(self.path)
            return self.store.practice

        def close_store(self):
            self.store.close()

``make_store`` is called once per test and returns an *opener*: ``opener(practice_id,
timezone)`` is a repository bound to that practice on one fresh underlying store, so a test can
open several practices of the same store (tenant isolation) or the same practice twice.

Changes are built with the public operations (:mod:`sessionpacks.operations`) and the
workflows of :class:`~sessionpacks.service.PackService`; a property test runs random workflows
on the store and on the reference :class:`~sessionpacks.adapters.memory.InMemoryStore` and holds
everything readable equal.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from sessionpacks import operations as ops
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.errors import (
    ConcurrencyError,
    InvalidValueError,
    NotFoundError,
    RefusedError,
    SessionPacksError,
)
from sessionpacks.events import EVENT_TYPES, RecordedEvent
from sessionpacks.ledger import ENTRY_TYPES, Mark, PackState, PackStatus, replay
from sessionpacks.model import (
    Allowance,
    Appointment,
    BundleLine,
    ExpiresAfterFirstUse,
    ExpiresOn,
    ExpiryRule,
    Money,
    NoExpiry,
    PackTemplate,
    PackTerms,
    Period,
    PerPack,
    PerSession,
    Policies,
    PreferPack,
    PreferService,
    PreferTemplate,
)
from sessionpacks.ports import MAX_PAGE, CommandRecord, PackPage, PackQuery, PackRepository
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

__all__ = ["Opener", "RepositoryContract"]

Opener = Callable[[str, str], PackRepository]
"""``opener(practice_id, timezone)``: a repository bound to that practice of one store."""

SYDNEY = "Australia/Sydney"
_ZONE = ZoneInfo(SYDNEY)
_OPENED = datetime(2026, 1, 10, 9, tzinfo=_ZONE)
_practice_ids = itertools.count(1)


def _at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=_ZONE)


def _aud(text: str) -> Money:
    return Money(text, "AUD")


def _appointment(
    appointment_id: str,
    start: datetime,
    *,
    client: str = "C1",
    minutes: int = 60,
    price: str = "120.00",
    service: str = "physio",
) -> Appointment:
    return Appointment(
        id=appointment_id,
        client_id=client,
        service_id=service,
        start=start,
        duration=timedelta(minutes=minutes),
        price=_aud(price),
    )


def _sessions(
    count: int = 10,
    *,
    expiry: ExpiryRule | None = None,
    low: int | None = None,
    late_consumes: bool = False,
    name: str = "Physio",
    remind: int | None = None,
) -> PackTerms:
    return PackTerms(
        name=name,
        allowance=Allowance.sessions(count),
        pricing=PerSession.reduced(_aud("150.00"), _aud("120.00")),
        expiry=expiry or NoExpiry(),
        policies=Policies(
            late_cancel_consumes=late_consumes, low_balance_at=low, remind_days_before_expiry=remind
        ),
    )


def _hours(hours: int) -> PackTerms:
    return PackTerms(
        name=f"{hours} hours",
        allowance=Allowance.hours(timedelta(hours=hours)),
        pricing=PerPack(_aud("500.00")),
    )


def _money(face: str, price: str) -> PackTerms:
    return PackTerms(
        name=f"{face} credit", allowance=Allowance.money(_aud(face)), pricing=PerPack(_aud(price))
    )


def _bundle() -> PackTerms:
    """5 physio and 1 massage (R24)."""
    return PackTerms(
        name="Physio and massage",
        allowance=Allowance.sessions(6),
        pricing=PerPack(_aud("600.00")),
        lines=(
            BundleLine("Physio", {"physio"}, Allowance.sessions(5)),
            BundleLine("Massage", {"massage"}, Allowance.sessions(1)),
        ),
    )


def _open(repo: PackRepository, pack_id: str, terms: PackTerms, client: str = "C1") -> ops.Change:
    change = ops.open_pack(pack_id, client, terms, repo.practice, _OPENED)
    repo.commit([change])
    return change


def _use(repo: PackRepository, pack_id: str, appointment: Appointment) -> ops.Change:
    change = ops.use(repo.load(pack_id), appointment, _OPENED)
    repo.commit([change])
    return change


def _readable(
    repo: PackRepository, pack_ids: list[str], appointment_ids: list[str]
) -> dict[str, Any]:
    """What the repository shows about these packs and appointments, to compare over time."""
    return {
        "states": [repo.load(p) for p in pack_ids],
        "ledgers": [repo.ledger(p) for p in pack_ids],
        "active": [repo.pack_of_appointment(a) for a in appointment_ids],
        "events": repo.events_since(0),
    }


class _Recorder:
    """Commits changes one at a time, keeping what was committed and what came back."""

    def __init__(self, repo: PackRepository) -> None:
        self.repo = repo
        self.changes: list[ops.Change] = []
        self.recorded: list[RecordedEvent] = []

    def __call__(self, change: ops.Change) -> PackState:
        assert change.entries, "the contract only records changes that write"
        self.recorded.extend(self.repo.commit([change]))
        self.changes.append(change)
        assert self.repo.load(change.pack_id) == change.after
        return change.after

    def together(self, changes: Sequence[ops.Change]) -> None:
        """Commit several changes in one commit (a transfer's two, R21)."""
        self.recorded.extend(self.repo.commit(list(changes)))
        self.changes.extend(changes)
        for change in changes:
            assert self.repo.load(change.pack_id) == change.after


def _every_kind(record: _Recorder) -> None:
    """A workflow whose changes contain every entry kind and every event kind, in every metric."""
    repo, at = record.repo, _OPENED
    rule = ExpiresOn(date(2026, 3, 1))
    terms = _sessions(3, expiry=rule, low=1, remind=7)
    s = record(ops.open_pack("sessions", "C1", terms, repo.practice, at))
    s = record(ops.use(s, _appointment("a1", _at(2, 2)), at))
    s = record(ops.issue_invoice(s, "a1", at)[0])
    s = record(ops.reschedule(s, "a1", datetime(2026, 2, 3, 1, 30, tzinfo=UTC), at))
    s = record(ops.use(s, _appointment("a2", _at(2, 4)), at))  # LowBalance
    s = record(ops.mark(s, "a2", Mark.LATE_CANCEL, at))
    s = record(ops.use(s, _appointment("a3", _at(2, 5)), at))  # PackExhausted
    s = record(ops.release(s, "a3", at, "cancelled"))
    s = record(ops.adjust(s, 1, "goodwill", at))
    s = record(ops.hold(s, date(2026, 2, 20), date(2026, 2, 27), "travel", at))
    s = record(ops.end_hold(s, date(2026, 2, 23), "back early", at))
    s = record(ops.extend(s, date(2026, 4, 1), "holiday", at))
    s = record(ops.expire(s, date(2026, 3, 25), at))  # ExpiringSoon
    s = record(ops.expire(s, date(2026, 4, 1), at))
    record(ops.close(s, "moved away", at))
    h = record(ops.open_pack("hours", "C1", _hours(5), repo.practice, at))
    h = record(ops.use(h, _appointment("h1", _at(2, 2), minutes=90), at))
    h = record(ops.share(h, "C4", at))
    h = record(ops.unshare(h, "C4", at))
    h = record(ops.adjust(h, timedelta(minutes=-30), "correction", at))
    record(ops.use(h, _appointment("h2", _at(2, 9), minutes=240), at))  # shortfall 1h
    m = record(ops.open_pack("money", "C2", _money("500.00", "450.00"), repo.practice, at))
    m = record(ops.use(m, _appointment("m1", _at(2, 2), client="C2", price="120.50"), at))
    m = record(ops.adjust(m, _aud("-10.25"), "correction", at))
    m = record(ops.issue_invoice(m, "m1", at)[0])  # the price invoiced: transferable (R21)
    record.together(ops.transfer(m, "money-to-c3", "C3", repo.practice, "partner", at))
    b = record(ops.open_pack("bundle", "C3", _bundle(), repo.practice, at))
    b = record(ops.use(b, _appointment("b1", _at(2, 2), client="C3", service="massage"), at))
    b = record(ops.adjust(b, 1, "goodwill", at, line="Massage"))
    record(ops.use(b, _appointment("b2", _at(2, 3), client="C3", service="massage"), at))
    v = record(ops.open_pack("oops", "C2", _sessions(5), repo.practice, at, shared_with=("C1",)))
    record(ops.void(v, "opened in error", at))


def _found(repo: PackRepository, query: PackQuery, limit: int = MAX_PAGE) -> list[str]:
    """Every pack id ``query`` finds, page after page of ``limit``."""
    ids: list[str] = []
    after: str | None = None
    while True:
        page = repo.find_packs(query, after=after, limit=limit)
        assert len(page.packs) <= limit
        ids.extend(p.pack_id for p in page.packs)
        if page.next_cursor is None:
            return ids
        assert len(page.packs) == limit, "a page before the last is full"
        after = page.next_cursor


def _statuses(*statuses: PackStatus, at: datetime) -> PackQuery:
    return PackQuery(statuses=statuses, as_of=at)


def _queries(sweeps: list[date]) -> list[PackQuery]:
    """Queries of every kind, for the random workflows to answer."""
    found = [PackQuery(), PackQuery(template_id="t4"), PackQuery(at_most_left=1)]
    found.append(PackQuery(at_most_left=timedelta(hours=1)))
    for day in sweeps[::3]:
        at = datetime.combine(day, datetime.min.time(), _ZONE)
        found.extend(_statuses(status, at=at) for status in PackStatus)
        found.append(PackQuery(expiring_from=day, expiring_to=day + timedelta(days=20)))
    return found


def _commit_use(
    repo: PackRepository, pack_id: str, appointment: Appointment
) -> tuple[RecordedEvent, ...]:
    return repo.commit([ops.use(repo.load(pack_id), appointment, _OPENED)])


# Random workflows --------------------------------------------------------------------------

_CLIENTS = ("C1", "C2")
_index = st.integers(min_value=0, max_value=50)
_day = st.integers(min_value=0, max_value=90)
_STEPS = st.one_of(
    st.tuples(st.just("book"), st.sampled_from(_CLIENTS), _day, st.sampled_from([30, 60, 90])),
    st.tuples(st.just("assign"), st.sampled_from(_CLIENTS), _day, st.sampled_from(["t4", "h3"])),
    st.tuples(st.sampled_from(["cancel", "late_cancel", "no_show", "invoice"]), _index),
    st.tuples(st.just("reschedule"), _index, _day),
    st.tuples(st.just("move"), _index, _index),
    st.tuples(st.just("adjust"), _index, st.sampled_from([-1, 1, 2])),
    st.tuples(st.just("extend"), _index, _day),
    st.tuples(st.sampled_from(["close", "void"]), _index),
    st.tuples(st.just("sweep"), _day),
    st.tuples(st.just("open"), st.sampled_from(_CLIENTS), st.sampled_from(["t4", "h3"])),
)
_START = date(2026, 2, 1)


class _World:
    """A practice driven through :class:`PackService` with a fixed clock and pack ids."""

    def __init__(self, repo: PackRepository) -> None:
        self.repo = repo
        self.clock = FixedClock(_OPENED)
        counter = itertools.count(1)
        self.service = PackService(repo, self.clock, new_pack_id=lambda: f"pk{next(counter)}")
        self.appointments: list[Appointment] = []
        expiry = ExpiresAfterFirstUse(Period(months=1))
        self.service.add_template("t4", _sessions(4, expiry=expiry, low=1, late_consumes=True))
        self.service.add_template("h3", _hours(3))
        self.service.set_preference("C1", PreferTemplate("t4"))

    def pack_ids(self) -> list[str]:
        return [p.pack_id for c in _CLIENTS for p in self.repo.client_packs(c)]

    def _appointment(self, client: str, day: int, minutes: int) -> Appointment:
        number = len(self.appointments) + 1
        start = datetime.combine(_START + timedelta(days=day), datetime.min.time(), _ZONE)
        made = _appointment(
            f"a{number}", start + timedelta(hours=8 + number % 9), client=client, minutes=minutes
        )
        self.appointments.append(made)
        return made

    def _pick(self, index: int) -> Appointment | None:
        return self.appointments[index % len(self.appointments)] if self.appointments else None

    def _pack(self, index: int) -> str | None:
        ids = self.pack_ids()
        return ids[index % len(ids)] if ids else None

    def run(self, step: tuple[Any, ...]) -> Any:
        self.clock.advance(timedelta(hours=1))
        try:
            return self._run(step)
        except SessionPacksError as error:
            return (type(error).__name__, error.rule, error.field, str(error.value))

    def _run(self, step: tuple[Any, ...]) -> Any:
        kind, service = step[0], self.service
        if kind == "book":
            return service.book(self._appointment(step[1], step[2], step[3]))
        if kind == "assign":
            appointment = self._appointment(step[1], step[2], 60)
            return service.assign(appointment, template_id=step[3])
        if kind == "open":
            return service.open_pack(step[1], template_id=step[2])
        if kind == "sweep":
            return service.sweep(_START + timedelta(days=step[1]))
        if kind in ("adjust", "extend", "close", "void"):
            return self._on_pack(step)
        return self._on_appointment(step)

    def _on_pack(self, step: tuple[Any, ...]) -> Any:
        kind, service, pack_id = step[0], self.service, self._pack(step[1])
        if pack_id is None:
            return None
        if kind == "adjust":
            state = service.pack(pack_id)
            return service.adjust(pack_id, state.amount(step[2]), "random")
        if kind == "extend":
            return service.extend(pack_id, _START + timedelta(days=step[2] + 30), "random")
        if kind == "close":
            return service.close(pack_id, "random")
        return service.void(pack_id, "random")

    def _on_appointment(self, step: tuple[Any, ...]) -> Any:
        kind, service, appointment = step[0], self.service, self._pick(step[1])
        if appointment is None:
            return None
        if kind == "cancel":
            return service.cancel(appointment.id)
        if kind == "late_cancel":
            return service.late_cancel(appointment.id)
        if kind == "no_show":
            return service.no_show(appointment.id)
        if kind == "invoice":
            return service.invoice_line(appointment.id)
        if kind == "reschedule":
            start = appointment.start + timedelta(days=step[2] - 45)
            return service.reschedule(appointment.id, start)
        target = self._pack(step[2])
        return None if target is None else service.move(appointment, target)

    def everything(self) -> dict[str, Any]:
        repo, ids = self.repo, self.pack_ids()
        sweeps = [_START + timedelta(days=d) for d in range(0, 150, 15)]
        return {
            "packs": [repo.client_packs(c) for c in _CLIENTS],
            "ledgers": {p: repo.ledger(p) for p in ids},
            "active": {a.id: repo.pack_of_appointment(a.id) for a in self.appointments},
            "events": repo.events_since(0),
            "candidates": [[p.pack_id for p in repo.expiry_candidates(d)] for d in sweeps],
            "found": [_found(repo, q, limit=2) for q in _queries(sweeps)],
            "templates": sorted(repo.templates(), key=lambda t: t.id),
            "preferences": [repo.preference(c) for c in _CLIENTS],
        }


class RepositoryContract:
    """The tests every store passes. Subclass it as ``Test<Store>Contract``.

    Implement :meth:`make_store`; override :meth:`close_store` if the store holds resources.
    """

    def make_store(self) -> Opener:
        """A fresh, empty store: returns ``opener(practice_id, timezone) -> PackRepository``."""
        raise NotImplementedError

    def close_store(self) -> None:
        """Called after each test to release what :meth:`make_store` acquired."""

    @pytest.fixture
    def store_opener(self) -> Iterator[Opener]:
        opener = self.make_store()
        try:
            yield opener
        finally:
            self.close_store()

    @pytest.fixture
    def store_repo(self, store_opener: Opener) -> PackRepository:
        return store_opener("practice-a", SYDNEY)

    # Round trips ---------------------------------------------------------------------------

    def test_practice_is_the_one_opened(self, store_opener: Opener) -> None:
        repo = store_opener("practice-a", SYDNEY)
        assert repo.practice.id == "practice-a"
        assert repo.practice.timezone == SYDNEY
        assert store_opener("practice-a", SYDNEY).practice == repo.practice

    def test_every_entry_kind_round_trips(self, store_repo: PackRepository) -> None:
        record = _Recorder(store_repo)
        _every_kind(record)
        assert {type(e) for c in record.changes for e in c.entries} == set(ENTRY_TYPES)
        for pack_id in dict.fromkeys(c.pack_id for c in record.changes):
            mine = [c for c in record.changes if c.pack_id == pack_id]
            ledger = store_repo.ledger(pack_id)
            assert ledger == tuple(e for c in mine for e in c.entries)
            assert [e.sequence for e in ledger] == list(range(1, len(ledger) + 1))
            assert store_repo.load(pack_id) == mine[-1].after == replay(ledger)
            assert store_repo.load(pack_id).version == len(ledger)

    def test_every_event_kind_round_trips(self, store_repo: PackRepository) -> None:
        record = _Recorder(store_repo)
        _every_kind(record)
        events = [e for c in record.changes for e in c.events]
        assert {type(e) for e in events} == set(EVENT_TYPES)
        stored = store_repo.events_since(0)
        assert [r.event for r in stored] == events
        assert stored == record.recorded
        assert len({r.event.event_id for r in stored}) == len(stored)

    def test_a_reopened_handle_sees_the_same_data(self, store_opener: Opener) -> None:
        _open(store_opener("practice-a", SYDNEY), "p1", _sessions())
        again = store_opener("practice-a", SYDNEY)
        assert again.load("p1").pack_id == "p1"
        assert len(again.events_since(0)) == 1

    # Unknown ids ---------------------------------------------------------------------------

    def test_unknown_pack_raises_not_found(self, store_repo: PackRepository) -> None:
        with pytest.raises(NotFoundError) as raised:
            store_repo.load("nope")
        assert raised.value.field == "pack_id"
        assert raised.value.value == "nope"
        with pytest.raises(NotFoundError):
            store_repo.ledger("nope")
        assert store_repo.pack_of_appointment("nope") is None
        assert store_repo.client_packs("nobody") == []
        assert store_repo.preference("nobody") is None

    def test_unknown_template_raises_not_found(self, store_repo: PackRepository) -> None:
        with pytest.raises(NotFoundError) as raised:
            store_repo.template("nope")
        assert raised.value.field == "template_id"
        store_repo.save_template(PackTemplate("t1", _sessions()))
        for version in (0, 2):
            with pytest.raises(NotFoundError) as raised:
                store_repo.template("t1", version)
            assert raised.value.field == "version"
        with pytest.raises(NotFoundError):
            store_repo.template("nope", 1)

    # Versions and atomicity (R16) ----------------------------------------------------------

    def test_stale_version_conflicts_and_writes_nothing(self, store_repo: PackRepository) -> None:
        state = _open(store_repo, "p1", _sessions()).after
        first = ops.use(state, _appointment("a1", _at(2, 2)), _OPENED)
        second = ops.use(state, _appointment("a2", _at(2, 3)), _OPENED)
        store_repo.commit([first])
        before = _readable(store_repo, ["p1"], ["a1", "a2"])
        with pytest.raises(ConcurrencyError) as raised:
            store_repo.commit([second])
        assert raised.value.field == "pack_id"
        assert raised.value.value == "p1"
        assert _readable(store_repo, ["p1"], ["a1", "a2"]) == before
        assert store_repo.load("p1").version == 2

    def test_opening_an_existing_pack_id_conflicts(self, store_repo: PackRepository) -> None:
        _open(store_repo, "p1", _sessions())
        before = _readable(store_repo, ["p1"], [])
        with pytest.raises(ConcurrencyError):
            _open(store_repo, "p1", _sessions(5), client="C2")
        assert _readable(store_repo, ["p1"], []) == before
        assert store_repo.client_packs("C2") == []

    def test_a_version_ahead_conflicts(self, store_repo: PackRepository) -> None:
        state = _open(store_repo, "p1", _sessions()).after
        ahead = ops.use(state, _appointment("a1", _at(2, 2)), _OPENED)
        beyond = ops.use(ahead.after, _appointment("a2", _at(2, 3)), _OPENED)
        before = _readable(store_repo, ["p1"], ["a1", "a2"])
        with pytest.raises(ConcurrencyError):
            store_repo.commit([beyond])
        assert _readable(store_repo, ["p1"], ["a1", "a2"]) == before

    @pytest.mark.parametrize("stale_first", [False, True])
    def test_a_failing_multi_pack_commit_writes_nothing(
        self, store_repo: PackRepository, stale_first: bool
    ) -> None:
        p1 = _open(store_repo, "p1", _sessions()).after
        p2 = _open(store_repo, "p2", _sessions()).after
        good = ops.use(p1, _appointment("a1", _at(2, 2)), _OPENED)
        stale = ops.use(p2, _appointment("a2", _at(2, 3)), _OPENED)
        _use(store_repo, "p2", _appointment("a3", _at(2, 4)))
        before = _readable(store_repo, ["p1", "p2"], ["a1", "a2", "a3"])
        with pytest.raises(ConcurrencyError):
            store_repo.commit([stale, good] if stale_first else [good, stale])
        assert _readable(store_repo, ["p1", "p2"], ["a1", "a2", "a3"]) == before

    def test_a_multi_pack_commit_writes_every_pack(self, store_repo: PackRepository) -> None:
        p1 = _open(store_repo, "p1", _sessions()).after
        p2 = _open(store_repo, "p2", _sessions()).after
        one = ops.use(p1, _appointment("a1", _at(2, 2)), _OPENED)
        two = ops.use(p2, _appointment("a2", _at(2, 3)), _OPENED)
        new = ops.open_pack("p3", "C1", _sessions(), store_repo.practice, _OPENED)
        recorded = store_repo.commit([one, two, new])
        assert [r.event for r in recorded] == [*one.events, *two.events, *new.events]
        for change in (one, two, new):
            assert store_repo.load(change.pack_id) == change.after
        assert store_repo.pack_of_appointment("a1") == "p1"
        assert store_repo.pack_of_appointment("a2") == "p2"

    def test_one_commit_changes_a_pack_once(self, store_repo: PackRepository) -> None:
        state = _open(store_repo, "p1", _sessions()).after
        one = ops.use(state, _appointment("a1", _at(2, 2)), _OPENED)
        two = ops.use(one.after, _appointment("a2", _at(2, 3)), _OPENED)
        with pytest.raises(InvalidValueError):
            store_repo.commit([one, two])
        assert store_repo.load("p1").version == 1

    # Idempotence (E12) ---------------------------------------------------------------------

    def test_changes_without_entries_write_nothing(self, store_repo: PackRepository) -> None:
        _open(store_repo, "p1", _sessions())
        _open(store_repo, "p2", _sessions())
        appointment = _appointment("a1", _at(2, 2))
        _use(store_repo, "p1", appointment)
        before = _readable(store_repo, ["p1", "p2"], ["a1"])
        again = ops.use(store_repo.load("p1"), appointment, _OPENED + timedelta(days=1))
        assert again.entries == ()
        assert store_repo.commit([again]) == ()
        assert store_repo.commit([]) == ()
        swept = ops.expire(store_repo.load("p2"), date(2026, 6, 1), _OPENED)
        assert store_repo.commit([swept, again]) == ()
        assert _readable(store_repo, ["p1", "p2"], ["a1"]) == before

    # The event stream (R12) ----------------------------------------------------------------

    def test_event_positions_are_gap_free_and_increasing(self, store_repo: PackRepository) -> None:
        returned: list[RecordedEvent] = []
        for n in range(1, 4):
            state = ops.open_pack(f"p{n}", "C1", _sessions(2), store_repo.practice, _OPENED)
            returned.extend(store_repo.commit([state]))
            for k in range(2):
                returned.extend(
                    _commit_use(store_repo, f"p{n}", _appointment(f"a{n}{k}", _at(2, 2 + k)))
                )
        stored = store_repo.events_since(0)
        assert stored == returned
        assert [r.position for r in stored] == list(range(1, len(stored) + 1))

    def test_events_since_reads_after_a_position(self, store_repo: PackRepository) -> None:
        _open(store_repo, "p1", _sessions(3))
        for k in range(3):
            _use(store_repo, "p1", _appointment(f"a{k}", _at(2, 2 + k)))
        everything = store_repo.events_since()
        assert len(everything) == 5  # opened, 3 used, exhausted
        for position in range(len(everything) + 2):
            assert store_repo.events_since(position) == everything[position:]
            for limit in (0, 1, 2, 10):
                assert store_repo.events_since(position, limit) == everything[position:][:limit]
        assert store_repo.events_since(2, None) == everything[2:]

    @pytest.mark.parametrize(("position", "limit"), [(-1, None), (0, -1), (1.5, None), (0, "2")])
    def test_events_since_refuses_a_bad_window(
        self, store_repo: PackRepository, position: Any, limit: Any
    ) -> None:
        with pytest.raises(InvalidValueError):
            store_repo.events_since(position, limit)

    # Tenant isolation ----------------------------------------------------------------------

    def test_practices_do_not_see_each_other(self, store_opener: Opener) -> None:
        a = store_opener("practice-a", SYDNEY)
        b = store_opener("practice-b", "Europe/London")
        assert b.practice.timezone == "Europe/London"
        rule = ExpiresOn(date(2026, 3, 1))
        _open(a, "p1", _sessions(expiry=rule))
        _use(a, "p1", _appointment("a1", _at(2, 2)))
        a.save_template(PackTemplate("t1", _sessions()))
        a.set_preference("C1", PreferTemplate("t1"))
        with pytest.raises(NotFoundError):
            b.load("p1")
        with pytest.raises(NotFoundError):
            b.ledger("p1")
        with pytest.raises(NotFoundError):
            b.template("t1")
        assert b.client_packs("C1") == []
        assert b.pack_of_appointment("a1") is None
        assert b.expiry_candidates(date(2026, 6, 1)) == []
        assert a.expiry_candidates(date(2026, 6, 1)) != []
        assert b.events_since(0) == []
        assert b.templates() == []
        assert b.preference("C1") is None

    def test_practices_have_their_own_ids_and_streams(self, store_opener: Opener) -> None:
        a = store_opener("practice-a", SYDNEY)
        b = store_opener("practice-b", SYDNEY)
        _open(a, "p1", _sessions())
        _use(a, "p1", _appointment("a1", _at(2, 2)))
        _open(b, "p1", _sessions(5), client="C9")
        _use(b, "p1", _appointment("a1", _at(2, 2), client="C9"))
        b.save_template(PackTemplate("t1", _sessions(3)))
        a.save_template(PackTemplate("t1", _sessions(4)))
        b.set_preference("C1", PreferService("massage"))
        assert a.load("p1").client_id == "C1"
        assert b.load("p1").client_id == "C9"
        assert [r.position for r in b.events_since(0)] == [1, 2]
        assert [r.position for r in a.events_since(0)] == [1, 2]
        assert a.template("t1").terms.allowance.amount == 4
        assert b.template("t1").terms.allowance.amount == 3
        assert a.preference("C1") is None
        assert b.pack_of_appointment("a1") == "p1"

    def test_a_practice_cannot_change_another_practices_pack(self, store_opener: Opener) -> None:
        a = store_opener("practice-a", SYDNEY)
        b = store_opener("practice-b", SYDNEY)
        state = _open(a, "p1", _sessions()).after
        before = _readable(a, ["p1"], ["a1"])
        with pytest.raises(ConcurrencyError):
            b.commit([ops.use(state, _appointment("a1", _at(2, 2)), _OPENED)])
        b.set_preference("C1", None)
        assert _readable(a, ["p1"], ["a1"]) == before
        assert b.events_since(0) == []

    # Templates and preferences -------------------------------------------------------------

    def test_template_versions(self, store_repo: PackRepository) -> None:
        v1 = PackTemplate("t1", _sessions(10))
        store_repo.save_template(v1)
        v2 = v1.revise(name="Physio, revised")
        store_repo.save_template(v2)
        other = PackTemplate("t0", _hours(5))
        store_repo.save_template(other)
        assert store_repo.template("t1") == v2
        assert store_repo.template("t1", 1) == v1
        assert store_repo.template("t1", 2) == v2
        assert sorted(store_repo.templates(), key=lambda t: t.id) == [other, v2]
        for stale in (v2, v1, PackTemplate(v2.id, v2.terms, 4), PackTemplate("t9", _sessions(), 2)):
            with pytest.raises(ConcurrencyError):
                store_repo.save_template(stale)
        assert store_repo.template("t1") == v2
        with pytest.raises(NotFoundError):
            store_repo.template("t9")

    def test_preferences_set_replace_clear(self, store_repo: PackRepository) -> None:
        assert store_repo.preference("C1") is None
        for preference in (PreferService("massage"), PreferTemplate("t1"), PreferPack("p1")):
            store_repo.set_preference("C1", preference)
            assert store_repo.preference("C1") == preference
        store_repo.set_preference("C2", PreferService("physio"))
        store_repo.set_preference("C1", None)
        assert store_repo.preference("C1") is None
        store_repo.set_preference("C1", None)
        assert store_repo.preference("C1") is None
        assert store_repo.preference("C2") == PreferService("physio")

    # Queries ---------------------------------------------------------------------------------

    def test_client_packs_in_the_order_opened(self, store_repo: PackRepository) -> None:
        for pack_id in ("zeta", "alpha", "mid"):
            _open(store_repo, pack_id, _sessions())
        _open(store_repo, "other", _sessions(), client="C2")
        _use(store_repo, "alpha", _appointment("a1", _at(2, 2)))
        assert [p.pack_id for p in store_repo.client_packs("C1")] == ["zeta", "alpha", "mid"]
        assert store_repo.client_packs("C1")[1] == store_repo.load("alpha")
        assert [p.pack_id for p in store_repo.client_packs("C2")] == ["other"]

    def test_client_packs_include_those_shared_with_the_client(
        self, store_repo: PackRepository
    ) -> None:
        """R20: a client's packs are those they own and those shared with them, in the order
        opened, whoever owns them; unsharing takes one out of them again."""
        at = _OPENED
        family = ops.open_pack(
            "family", "C1", _sessions(), store_repo.practice, at, shared_with=("C2",)
        )
        store_repo.commit([family])
        _open(store_repo, "own", _sessions(), client="C2")
        later = _open(store_repo, "later", _sessions()).after
        store_repo.commit([ops.share(later, "C2", at)])
        _open(store_repo, "other", _sessions(), client="C3")
        assert [p.pack_id for p in store_repo.client_packs("C2")] == ["family", "own", "later"]
        assert [p.pack_id for p in store_repo.client_packs("C1")] == ["family", "later"]
        assert store_repo.client_packs("C2")[2] == store_repo.load("later")
        used = _use(store_repo, "family", _appointment("a1", _at(2, 2), client="C2")).after
        store_repo.commit([ops.close(store_repo.load("later"), "", at)])
        live = store_repo.client_packs("C2", statuses=[PackStatus.OPEN], as_of=_at(2, 3))
        assert [p.pack_id for p in live] == ["family", "own"]
        released = ops.release(used, "a1", at)
        store_repo.commit([released.then(ops.unshare(released.after, "C2", at))])
        assert [p.pack_id for p in store_repo.client_packs("C2")] == ["own", "later"]
        assert store_repo.load("family").shared_with == ()
        # What C2 drew on before stays found, for a figure as of then (R23).
        before = store_repo.client_packs("C2", former=True)
        assert [p.pack_id for p in before] == ["family", "own", "later"]
        assert store_repo.client_packs("C1", former=True) == store_repo.client_packs("C1")

    def test_a_count_of_packs_counts_those_the_client_owns(
        self, store_repo: PackRepository
    ) -> None:
        """R13a counts the packs a client owns: one shared with them changes no count."""
        shared = ops.open_pack(
            "family", "C1", _sessions(), store_repo.practice, _OPENED, shared_with=("C2",)
        )
        store_repo.commit([shared])
        opened = ops.open_pack("own", "C2", _sessions(), store_repo.practice, _OPENED)
        store_repo.commit([opened], client_packs={"C1": 1, "C2": 0})
        assert [p.pack_id for p in store_repo.client_packs("C2")] == ["family", "own"]

    def test_client_packs_filtered_by_status(self, store_repo: PackRepository) -> None:
        at = _OPENED
        _open(store_repo, "open", _sessions())
        _open(store_repo, "used-up", _sessions(1))
        _use(store_repo, "used-up", _appointment("a1", _at(2, 2)))
        _open(store_repo, "late", _sessions(expiry=ExpiresOn(date(2026, 3, 1))))
        store_repo.commit([ops.close(_open(store_repo, "closed", _sessions()).after, "", at)])
        store_repo.commit([ops.void(_open(store_repo, "voided", _sessions()).after, "", at)])
        as_of = _at(3, 5)

        def ids(*statuses: PackStatus) -> list[str]:
            found = store_repo.client_packs("C1", statuses=statuses, as_of=as_of)
            return [p.pack_id for p in found]

        assert ids(PackStatus.OPEN) == ["open"]
        assert ids(PackStatus.EXHAUSTED, PackStatus.EXPIRED) == ["used-up", "late"]
        assert ids(PackStatus.CLOSED, PackStatus.VOIDED) == ["closed", "voided"]
        assert ids() == []
        with pytest.raises(InvalidValueError):
            store_repo.client_packs("C1", statuses=[PackStatus.OPEN])

    def test_a_pack_usable_again_is_among_the_usable_ones(self, store_repo: PackRepository) -> None:
        """A used-up pack given a session back (a release, an adjustment) is read as open again:
        the SQL stores read a client's usable packs by an index of their lasting status."""
        as_of = _at(3, 5)
        _open(store_repo, "one", _sessions(1))
        used = _use(store_repo, "one", _appointment("a1", _at(2, 2))).after
        assert store_repo.client_packs("C1", statuses=[PackStatus.OPEN], as_of=as_of) == []
        released = ops.release(used, "a1", _OPENED, "cancelled")
        store_repo.commit([released])
        found = store_repo.client_packs("C1", statuses=[PackStatus.OPEN], as_of=as_of)
        assert found == [released.after]
        again = _use(store_repo, "one", _appointment("a2", _at(2, 3))).after
        store_repo.commit([ops.adjust(again, 1, "goodwill", _OPENED)])
        found = store_repo.client_packs(
            "C1", statuses=[PackStatus.OPEN, PackStatus.EXPIRED], as_of=as_of
        )
        assert [p.pack_id for p in found] == ["one"]

    def test_expiry_candidates(self, store_repo: PackRepository) -> None:
        at, day = _OPENED, date(2026, 3, 1)
        for pack_id in ("due", "exhausted", "closed", "swept", "extended", "credited"):
            _open(store_repo, pack_id, _sessions(1, expiry=ExpiresOn(day)))
        _open(store_repo, "later", _sessions(expiry=ExpiresOn(day + timedelta(days=1))))
        _open(store_repo, "never", _sessions())
        _open(store_repo, "first-use", _sessions(expiry=ExpiresAfterFirstUse(Period(months=1))))
        _use(store_repo, "first-use", _appointment("f1", _at(1, 20)))
        _use(store_repo, "exhausted", _appointment("a1", _at(2, 2)))
        store_repo.commit([ops.close(store_repo.load("closed"), "", at)])
        store_repo.commit([ops.expire(store_repo.load("swept"), day, at)])
        store_repo.commit([ops.extend(store_repo.load("extended"), date(2026, 5, 1), "away", at)])
        store_repo.commit([ops.adjust(store_repo.load("credited"), 1, "goodwill", at)])

        def ids(as_of: date) -> set[str]:
            return {p.pack_id for p in store_repo.expiry_candidates(as_of)}

        assert ids(date(2026, 2, 19)) == set()
        assert ids(day - timedelta(days=1)) == {"first-use"}
        assert ids(day) == {"due", "credited", "first-use"}
        assert ids(day + timedelta(days=1)) == {"due", "credited", "first-use", "later"}
        assert ids(date(2026, 5, 1)) == {"due", "credited", "first-use", "later", "extended"}
        states = {p.pack_id: p for p in store_repo.expiry_candidates(day)}
        assert states["credited"] == store_repo.load("credited")

    def test_expiry_candidates_include_reminders_due(self, store_repo: PackRepository) -> None:
        """R25: a pack whose reminder is due is a candidate from that day, until the sweep
        records the reminder; an extension re-arms it for the new expiry date."""
        at, day = _OPENED, date(2026, 3, 1)
        _open(store_repo, "remind", _sessions(2, expiry=ExpiresOn(day), remind=10))
        _open(store_repo, "quiet", _sessions(2, expiry=ExpiresOn(day)))

        def ids(as_of: date) -> set[str]:
            return {p.pack_id for p in store_repo.expiry_candidates(as_of)}

        assert ids(date(2026, 2, 18)) == set()
        assert ids(date(2026, 2, 19)) == {"remind"}
        store_repo.commit([ops.expire(store_repo.load("remind"), date(2026, 2, 20), at)])
        assert ids(date(2026, 2, 28)) == set()
        assert ids(day) == {"remind", "quiet"}
        store_repo.commit([ops.extend(store_repo.load("remind"), date(2026, 4, 1), "away", at)])
        assert ids(date(2026, 3, 21)) == {"quiet"}
        assert ids(date(2026, 3, 22)) == {"quiet", "remind"}

    # find_packs ------------------------------------------------------------------------------

    def _opened_kinds(self, repo: PackRepository) -> None:
        """Packs of every status on 2026-03-05 and of three metrics, two from a template."""
        at, day = _OPENED, date(2026, 3, 1)
        service = PackService(repo, FixedClock(_OPENED))
        service.add_template("ten", _sessions(10, expiry=ExpiresOn(date(2026, 6, 1))))
        service.open_pack("C1", template_id="ten", pack_id="tpl-1")
        service.open_pack("C2", template_id="ten", pack_id="tpl-2")
        _open(repo, "open", _sessions(2))
        _open(repo, "used-up", _sessions(1))
        _use(repo, "used-up", _appointment("a1", _at(2, 2)))
        _open(repo, "late", _sessions(expiry=ExpiresOn(day)))
        repo.commit([ops.close(_open(repo, "closed", _sessions()).after, "", at)])
        repo.commit([ops.void(_open(repo, "voided", _sessions()).after, "", at)])
        _open(repo, "hours", _hours(1))
        _open(repo, "money", _money("20.00", "20.00"))

    def test_find_packs_by_status_as_of_an_instant(self, store_repo: PackRepository) -> None:
        self._opened_kinds(store_repo)
        before, on = _at(2, 28, 23), _at(3, 1, 0)  # the eve and the first hour of expiry

        def ids(*statuses: PackStatus, at: datetime) -> list[str]:
            return _found(store_repo, _statuses(*statuses, at=at))

        live = ["hours", "money", "open", "tpl-1", "tpl-2"]
        assert ids(PackStatus.OPEN, at=before) == sorted(["late", *live])
        assert ids(PackStatus.OPEN, at=on) == live
        assert ids(PackStatus.EXPIRED, at=before) == []
        assert ids(PackStatus.EXPIRED, at=on) == ["late"]
        assert ids(PackStatus.EXHAUSTED, at=on) == ["used-up"]
        assert ids(PackStatus.CLOSED, PackStatus.VOIDED, at=on) == ["closed", "voided"]
        assert ids(at=on) == []
        assert ids(*PackStatus, at=on) == _found(store_repo, PackQuery())
        assert ids(PackStatus.EXPIRED, at=_at(6, 1, 0)) == ["late", "tpl-1", "tpl-2"]
        states = store_repo.find_packs(_statuses(PackStatus.EXHAUSTED, at=on)).packs
        assert states == (store_repo.load("used-up"),)

    def test_find_packs_expiring_in_a_window(self, store_repo: PackRepository) -> None:
        self._opened_kinds(store_repo)
        _open(store_repo, "first-use", _sessions(expiry=ExpiresAfterFirstUse(Period(months=1))))

        def ids(low: date | None, high: date | None) -> list[str]:
            return _found(store_repo, PackQuery(expiring_from=low, expiring_to=high))

        march, june = date(2026, 3, 1), date(2026, 6, 1)
        assert ids(march, march) == ["late"]
        assert ids(march + timedelta(days=1), june - timedelta(days=1)) == []
        assert ids(march, june) == ["late", "tpl-1", "tpl-2"]
        assert ids(None, march) == ["late"]
        assert ids(june, None) == ["tpl-1", "tpl-2"]
        _use(store_repo, "first-use", _appointment("f1", _at(2, 10)))
        store_repo.commit([ops.extend(store_repo.load("late"), june, "away", _OPENED)])
        assert ids(date(2026, 3, 10), date(2026, 3, 10)) == ["first-use"]
        assert ids(june, june) == ["late", "tpl-1", "tpl-2"]

    def test_find_packs_with_at_most_left(self, store_repo: PackRepository) -> None:
        self._opened_kinds(store_repo)

        def ids(left: Any) -> list[str]:
            return _found(store_repo, PackQuery(at_most_left=left))

        assert ids(0) == ["used-up"]
        assert ids(2) == ["open", "used-up"]
        assert ids(10) == sorted(["closed", "late", "open", "tpl-1", "tpl-2", "used-up", "voided"])
        assert ids(timedelta(minutes=59)) == []
        assert ids(timedelta(hours=1)) == ["hours"]
        assert ids(_aud("20.00")) == ["money"]
        assert ids(_aud("19.99")) == []
        assert ids(Money("20.00", "NZD")) == []
        _use(store_repo, "open", _appointment("a2", _at(2, 3)))
        assert ids(1) == ["open", "used-up"]

    def test_find_packs_of_a_template(self, store_repo: PackRepository) -> None:
        self._opened_kinds(store_repo)
        assert _found(store_repo, PackQuery(template_id="ten")) == ["tpl-1", "tpl-2"]
        assert _found(store_repo, PackQuery(template_id="none-such")) == []

    def test_find_packs_combines_filters(self, store_repo: PackRepository) -> None:
        self._opened_kinds(store_repo)
        _use(store_repo, "tpl-2", _appointment("a2", _at(2, 3), client="C2"))
        on = _at(3, 5)
        open_ones = {"statuses": [PackStatus.OPEN], "as_of": on}
        assert _found(store_repo, PackQuery(**open_ones, at_most_left=9)) == ["open", "tpl-2"]
        query = PackQuery(**open_ones, at_most_left=9, template_id="ten")
        assert _found(store_repo, query) == ["tpl-2"]
        window = {"expiring_from": date(2026, 3, 1), "expiring_to": date(2026, 6, 1)}
        assert _found(store_repo, PackQuery(**open_ones, **window)) == ["tpl-1", "tpl-2"]
        late = _statuses(PackStatus.EXPIRED, at=on)
        assert _found(store_repo, attrs.evolve(late, at_most_left=10, **window)) == ["late"]
        assert _found(store_repo, attrs.evolve(late, template_id="ten")) == []

    def test_find_packs_pages_in_pack_id_order(self, store_repo: PackRepository) -> None:
        # Code point order, whatever the database's collation: upper case before lower case,
        # accents and other scripts after ASCII.
        ids = ["Zeta", "alpha", "beta", "b\u00e9ta", "\u00c4rzte", "\u4e2d", "a b", "a-b", "a_b"]
        for pack_id in ids:
            _open(store_repo, pack_id, _sessions())
        for limit in (1, 2, 3, len(ids), MAX_PAGE):
            assert _found(store_repo, PackQuery(), limit=limit) == sorted(ids), limit
        first = store_repo.find_packs(PackQuery(), limit=4)
        assert [p.pack_id for p in first.packs] == sorted(ids)[:4]
        assert isinstance(first.next_cursor, str)
        again = store_repo.find_packs(PackQuery(), limit=4, after=first.next_cursor)
        assert [p.pack_id for p in again.packs] == sorted(ids)[4:8]
        last = store_repo.find_packs(PackQuery(), limit=len(ids))
        assert last.next_cursor is None

    def test_find_packs_page_of_a_filter_skips_what_does_not_match(
        self, store_repo: PackRepository
    ) -> None:
        for n in range(12):
            _open(store_repo, f"p{n:02}", _sessions(1 if n % 3 == 0 else 5))
        low = PackQuery(at_most_left=1)
        assert _found(store_repo, low, limit=1) == ["p00", "p03", "p06", "p09"]
        assert _found(store_repo, low, limit=3) == ["p00", "p03", "p06", "p09"]
        page = store_repo.find_packs(low, limit=4)
        assert page.next_cursor is None, "no empty page follows the last match"

    def test_find_packs_on_an_empty_practice(self, store_repo: PackRepository) -> None:
        assert store_repo.find_packs(PackQuery()) == PackPage(())
        assert store_repo.find_packs(_statuses(PackStatus.OPEN, at=_OPENED)) == PackPage(())

    def test_find_packs_never_answers_with_another_practices_packs(
        self, store_opener: Opener
    ) -> None:
        mine, theirs = store_opener("practice-a", SYDNEY), store_opener("practice-b", SYDNEY)
        _open(mine, "a1", _sessions(1))
        _open(theirs, "b1", _sessions(1))
        _open(theirs, "a2", _sessions(1))
        for query in (PackQuery(), PackQuery(at_most_left=1), _statuses(*PackStatus, at=_OPENED)):
            assert _found(mine, query, limit=1) == ["a1"]
            assert _found(theirs, query, limit=1) == ["a2", "b1"]
        cursor = theirs.find_packs(PackQuery(), limit=1).next_cursor
        assert mine.find_packs(PackQuery(), after=cursor).packs == ()

    @pytest.mark.parametrize(
        ("arguments", "field"),
        [
            ({"query": None}, "query"),
            ({"query": {"statuses": ["open"]}}, "query"),
            ({"after": "not a cursor"}, "after"),
            ({"after": ""}, "after"),
            ({"after": 7}, "after"),
            ({"after": PackPage.cursor("a") + "=="}, "after"),
            ({"after": "p1.AA"}, "after"),
            ({"limit": 0}, "limit"),
            ({"limit": MAX_PAGE + 1}, "limit"),
            ({"limit": True}, "limit"),
            ({"limit": "10"}, "limit"),
        ],
    )
    def test_find_packs_refuses_bad_arguments(
        self, store_repo: PackRepository, arguments: dict[str, Any], field: str
    ) -> None:
        _open(store_repo, "p1", _sessions())
        before = _readable(store_repo, ["p1"], [])
        call = {"query": PackQuery(), **arguments}
        with pytest.raises(InvalidValueError) as refused:
            store_repo.find_packs(call.pop("query"), **call)
        assert refused.value.field == field
        assert refused.value.value == arguments[field]
        assert _readable(store_repo, ["p1"], []) == before

    # One pack per appointment (R6) -----------------------------------------------------------

    def test_an_active_appointment_cannot_go_on_another_pack(
        self, store_repo: PackRepository
    ) -> None:
        _open(store_repo, "p1", _sessions())
        _open(store_repo, "p2", _sessions())
        appointment = _appointment("a1", _at(2, 2))
        _use(store_repo, "p1", appointment)
        before = _readable(store_repo, ["p1", "p2"], ["a1"])
        with pytest.raises(ConcurrencyError) as raised:
            _use(store_repo, "p2", appointment)
        assert raised.value.field == "appointment_id"
        assert raised.value.value == "a1"
        assert _readable(store_repo, ["p1", "p2"], ["a1"]) == before

    def test_one_commit_cannot_use_an_appointment_twice(self, store_repo: PackRepository) -> None:
        p1 = _open(store_repo, "p1", _sessions()).after
        p2 = _open(store_repo, "p2", _sessions()).after
        appointment = _appointment("a1", _at(2, 2))
        with pytest.raises(ConcurrencyError):
            store_repo.commit(
                [ops.use(p1, appointment, _OPENED), ops.use(p2, appointment, _OPENED)]
            )
        assert store_repo.pack_of_appointment("a1") is None
        assert store_repo.load("p1").version == store_repo.load("p2").version == 1

    @pytest.mark.parametrize("release_first", [True, False])
    def test_a_move_in_one_commit_is_allowed(
        self, store_repo: PackRepository, release_first: bool
    ) -> None:
        _open(store_repo, "p1", _sessions())
        _open(store_repo, "p2", _sessions())
        appointment = _appointment("a1", _at(2, 2))
        _use(store_repo, "p1", appointment)
        release = ops.release(store_repo.load("p1"), "a1", _OPENED, "moved")
        use = ops.use(store_repo.load("p2"), appointment, _OPENED)
        store_repo.commit([release, use] if release_first else [use, release])
        assert store_repo.pack_of_appointment("a1") == "p2"
        assert store_repo.load("p1").usage("a1") is None
        assert store_repo.load("p2").usage("a1") is not None

    def test_a_released_appointment_is_free(self, store_repo: PackRepository) -> None:
        _open(store_repo, "p1", _sessions())
        _open(store_repo, "p2", _sessions())
        appointment = _appointment("a1", _at(2, 2))
        _use(store_repo, "p1", appointment)
        store_repo.commit([ops.release(store_repo.load("p1"), "a1", _OPENED)])
        assert store_repo.pack_of_appointment("a1") is None
        _use(store_repo, "p2", appointment)
        assert store_repo.pack_of_appointment("a1") == "p2"
        _use(store_repo, "p1", attrs.evolve(appointment, id="a2"))
        assert store_repo.pack_of_appointment("a2") == "p1"

    # A decision on a client's packs (R13a) ---------------------------------------------------

    def test_an_opening_on_a_stale_count_of_packs_conflicts(
        self, store_repo: PackRepository
    ) -> None:
        _open(store_repo, "p1", _sessions())
        late = ops.open_pack("p2", "C1", _sessions(), store_repo.practice, _OPENED)
        before = _readable(store_repo, ["p1"], [])
        with pytest.raises(ConcurrencyError) as raised:
            store_repo.commit([late], client_packs={"C1": 0})
        assert (raised.value.field, raised.value.value) == ("client_id", "C1")
        assert _readable(store_repo, ["p1"], []) == before
        assert [p.pack_id for p in store_repo.client_packs("C1")] == ["p1"]
        store_repo.commit([late], client_packs={"C1": 1})
        assert [p.pack_id for p in store_repo.client_packs("C1")] == ["p1", "p2"]

    def test_a_count_of_packs_is_per_client(self, store_repo: PackRepository) -> None:
        _open(store_repo, "p1", _sessions(), client="C2")
        opened = ops.open_pack("p2", "C1", _sessions(), store_repo.practice, _OPENED)
        store_repo.commit([opened], client_packs={"C1": 0, "C3": 0})
        assert store_repo.load("p2") == opened.after

    def test_concurrent_openings_on_one_count_open_one_pack(
        self, store_repo: PackRepository
    ) -> None:
        barrier = threading.Barrier(8)
        outcomes: list[str] = []

        def open_one(n: int) -> None:
            change = ops.open_pack(f"p{n}", "C1", _sessions(), store_repo.practice, _OPENED)
            barrier.wait()
            try:
                store_repo.commit([change], client_packs={"C1": 0})
                outcomes.append("opened")
            except ConcurrencyError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=open_one, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["conflict"] * 7 + ["opened"]
        assert len(store_repo.client_packs("C1")) == 1

    # Idempotency keys (R27) ----------------------------------------------------------------

    def test_a_command_is_stored_with_its_commit(self, store_repo: PackRepository) -> None:
        assert store_repo.command("k1") is None
        _open(store_repo, "p0", _sessions())  # one event first, so positions start past 1
        opened = ops.open_pack("p1", "C1", _sessions(), store_repo.practice, _OPENED)
        record = CommandRecord("k1", "f" * 64, '{"any": "json"}')
        recorded = store_repo.commit([opened], command=record)
        assert store_repo.command("k1") == attrs.evolve(
            record, first_position=recorded[0].position - 1
        )
        assert recorded[0].position - 1 == 1

    def test_a_command_without_changes_is_stored(self, store_repo: PackRepository) -> None:
        assert store_repo.commit([], command=CommandRecord("k1", "f", "null")) == ()
        assert store_repo.command("k1") == CommandRecord("k1", "f", "null", 0)

    def test_a_stored_key_conflicts_and_writes_nothing(self, store_repo: PackRepository) -> None:
        store_repo.commit([], command=CommandRecord("k1", "f", "null"))
        again = ops.open_pack("p1", "C1", _sessions(), store_repo.practice, _OPENED)
        with pytest.raises(ConcurrencyError) as raised:
            store_repo.commit([again], command=CommandRecord("k1", "g", "null"))
        assert (raised.value.field, raised.value.value) == ("idempotency_key", "k1")
        assert store_repo.client_packs("C1") == []
        assert store_repo.events_since(0) == []
        assert store_repo.command("k1") == CommandRecord("k1", "f", "null", 0)

    def test_a_conflicting_commit_does_not_store_its_command(
        self, store_repo: PackRepository
    ) -> None:
        _open(store_repo, "p1", _sessions())
        for condition in ({}, {"client_packs": {"C1": 0}}):
            stale = ops.open_pack("p1", "C1", _sessions(), store_repo.practice, _OPENED)
            with pytest.raises(ConcurrencyError):
                store_repo.commit([stale], command=CommandRecord("k", "f", "null"), **condition)
            assert store_repo.command("k") is None

    def test_keys_are_per_practice(self, store_opener: Opener) -> None:
        one, other = store_opener("keys-a", SYDNEY), store_opener("keys-b", SYDNEY)
        one.commit([], command=CommandRecord("k", "fa", "null"))
        assert other.command("k") is None
        other.commit([], command=CommandRecord("k", "fb", "null"))
        assert [r.command("k") for r in (one, other)] == [
            CommandRecord("k", "fa", "null"),
            CommandRecord("k", "fb", "null"),
        ]

    def test_templates_and_preferences_store_their_command(
        self, store_repo: PackRepository
    ) -> None:
        template = PackTemplate("t1", _sessions())
        store_repo.save_template(template, command=CommandRecord("k1", "f", "{}"))
        store_repo.set_preference(
            "C1", PreferService("physio"), command=CommandRecord("k2", "f", "null")
        )
        assert store_repo.command("k1") == CommandRecord("k1", "f", "{}", 0)
        assert store_repo.command("k2") == CommandRecord("k2", "f", "null", 0)
        with pytest.raises(ConcurrencyError):
            store_repo.save_template(
                attrs.evolve(template, version=2), command=CommandRecord("k1", "g", "{}")
            )
        with pytest.raises(ConcurrencyError):
            store_repo.set_preference("C1", None, command=CommandRecord("k2", "g", "null"))
        assert store_repo.template("t1") == template
        assert store_repo.preference("C1") == PreferService("physio")

    def test_a_keyed_booking_repeats_its_result(self, store_repo: PackRepository) -> None:
        desk = PackService(store_repo, FixedClock(_OPENED), new_pack_id=lambda: "p1")
        desk.add_template("t1", _sessions(), idempotency_key="k0")
        desk.set_preference("C1", PreferTemplate("t1"), idempotency_key="k1")
        first = desk.book(_appointment("a1", _at(2, 2)), idempotency_key="k2")
        events = store_repo.events_since(0)
        assert desk.book(_appointment("a1", _at(2, 2)), idempotency_key="k2") == first
        assert desk.add_template("t1", _sessions(), idempotency_key="k0").version == 1
        desk.set_preference("C1", PreferTemplate("t1"), idempotency_key="k1")
        assert store_repo.events_since(0) == events
        assert [r.position for r in first.events] == [r.position for r in events]
        with pytest.raises(RefusedError) as raised:
            desk.book(_appointment("a2", _at(2, 3)), idempotency_key="k2")
        assert (raised.value.rule, raised.value.field) == ("R27", "idempotency_key")
        assert store_repo.events_since(0) == events

    # Everything at once, against the reference store ----------------------------------------

    @scaled(
        0.15,  # 30 examples under the ci profile, the minimum of 5 under dev
        deadline=None,
        # Each store's subclass runs this test: differing executors are the point.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(steps=st.lists(_STEPS, min_size=3, max_size=30))
    def test_random_workflows_match_the_reference_store(
        self, store_opener: Opener, steps: list[tuple[Any, ...]]
    ) -> None:
        practice_id = f"random-{next(_practice_ids)}"
        reference = _World(InMemoryStore().practice(practice_id, SYDNEY))
        world = _World(store_opener(practice_id, SYDNEY))
        for step in steps:
            assert world.run(step) == reference.run(step), step
        assert world.everything() == reference.everything()
        for pack_id in world.pack_ids():
            assert replay(world.repo.ledger(pack_id)) == world.repo.load(pack_id)
