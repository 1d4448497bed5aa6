"""A state machine that drives any store through :class:`~sessionpacks.service.PackService`
beside the reference :class:`~sessionpacks.adapters.memory.InMemoryStore`.

Hypothesis draws a practice's day: templates of every metric, preferences, packs opened from a
template, ad hoc or as migrated from another system (R19), bookings (R13), explicit
assignments, moves, cancellations (late or not), no-shows, reschedules, adjustments,
extensions, holds and their early ends (R22), closes, voids, expiry sweeps, invoice lines, and
a clock moved on between them.
Every call runs on both services. They must give the same result, or refuse with the same
kind of error and the same rule. After every step the machine reads both stores and checks
that they agree on each pack (balance, status, session numbers and labels, marks, invoice
lines, the whole state, the ledger and its replay), on which pack each appointment is active
on, on templates and preferences, and on the new events (ids and kinds in order); and that the
invariants hold: no balance below zero, sessions numbered 1..k (after the sessions a migrated
pack numbered there), no event id twice, positions strictly increasing.

A host subclasses :class:`StoreMachine`, names its store factory, and collects ``.TestCase``::

    class MyStoreMachine(StoreMachine):
        def open_repository(self, practice_id: str, timezone: str) -> PackRepository:
            self.store = MyStore(...)  # a fresh, empty store: called once per run
            return self.store.practice(practice_id, timezone)

        def close_repository(self) -> None:
            self.store.close()

    TestMyStore = MyStoreMachine.TestCase

The number of runs and steps comes from the active hypothesis profile (see
:mod:`sessionpacks.testing.plugin`), or from ``MyStoreMachine.TestCase.settings``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sessionpacks import strategies as sps
from sessionpacks._encoding import make_converter
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.errors import (
    ConcurrencyError,
    InvalidValueError,
    NotFoundError,
    RefusedError,
    SessionPacksError,
    StoreError,
)
from sessionpacks.events import RecordedEvent
from sessionpacks.ledger import PackState, PackStatus, replay
from sessionpacks.model import (
    Appointment,
    Metric,
    PackTerms,
    Preference,
    PreferPack,
    PreferService,
    PreferTemplate,
)
from sessionpacks.ports import PackQuery, PackRepository
from sessionpacks.service import Assignment, PackService

__all__ = ["StoreMachine"]

T = TypeVar("T")

FIRST_DAY = date(2026, 3, 15)
"""Appointments fall between these local dates, which hold both of Sydney's clock changes."""
LAST_DAY = date(2026, 11, 15)
SERVICES = ("physio", "massage")
"""The services templates may be limited to; appointments are also for ``"pilates"`` (R4)."""
UNKNOWN_PACK, UNKNOWN_TEMPLATE, UNKNOWN_APPOINTMENT = "P0", "T0", "A0"
"""Ids that name nothing: both stores must refuse them alike."""

_ERROR_KINDS: tuple[type[SessionPacksError], ...] = (
    RefusedError,
    InvalidValueError,
    NotFoundError,
    ConcurrencyError,
    StoreError,
    SessionPacksError,
)


def _fail(message: str, cause: BaseException | None = None) -> NoReturn:
    raise AssertionError(message) from cause


def _kind(error: SessionPacksError) -> str:
    """The library's class of ``error`` (a store's own subclass counts as its parent)."""
    return next(k.__name__ for k in _ERROR_KINDS if isinstance(error, k))


def _describe(error: SessionPacksError) -> str:
    return f"{_kind(error)} (rule {error.rule}, field {error.field!r}): {error}"


_COMPARING = make_converter(comparing=True)


def _plain(value: Any) -> Any:
    """``value`` as the library's encoding gives it (members of a union tagged with ``"type"``),
    with every instant in UTC.

    A store may give back an instant with a fixed offset where the zone it was written with
    stood (``+11:00`` for Australia/Sydney): the same instant, and the domain compares instants.
    Python's ``==`` says two such values differ inside a repeated hour of a daylight-saving
    change (PEP 495), so the machine compares them in UTC.
    """
    return _COMPARING.unstructure(value)


def _differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where two plain values differ, down through dicts and lists."""
    if actual == expected:
        return []
    if isinstance(actual, dict) and isinstance(expected, dict):
        keys = [*actual, *(k for k in expected if k not in actual)]
        return [
            d for k in keys for d in _differences(actual.get(k), expected.get(k), f"{path}.{k}")
        ]
    if isinstance(actual, list) and isinstance(expected, list):
        found = [
            d
            for n, (a, e) in enumerate(zip(actual, expected, strict=False))
            for d in _differences(a, e, f"{path}[{n}]")
        ]
        if len(actual) != len(expected):
            counts = f"{len(actual)} items (this store) != {len(expected)} items (reference)"
            found.insert(0, f"  {path or 'value'}: {counts}")
            shorter = min(len(actual), len(expected))
            extra = (actual if len(actual) > shorter else expected)[shorter]
            found.append(f"  {path}[{shorter}]: {extra!r} on one side only")
        return found
    return [f"  {path or 'value'}: {actual!r} (this store) != {expected!r} (reference)"]


def _same(what: str, actual: Any, expected: Any) -> None:
    """Fail unless the store under test shows what the reference store shows."""
    mine, theirs = _plain(actual), _plain(expected)
    if mine != theirs:
        shown = "\n".join(_differences(mine, theirs)[:8])
        _fail(f"{what}: this store and the reference store disagree\n{shown}")


def _comparable(value: Any) -> Any:
    """A result with positions left out: they are checked on the stream itself."""
    if isinstance(value, Assignment):
        return attrs.evolve(value, events=_comparable(value.events))
    if isinstance(value, RecordedEvent):
        return value.event
    if isinstance(value, tuple):
        return tuple(_comparable(v) for v in value)
    return value


def _attempt(
    call: Callable[[PackService], T], service: PackService
) -> tuple[T | None, SessionPacksError | None]:
    try:
        return call(service), None
    except SessionPacksError as error:
        return None, error


def _service(repository: PackRepository, clock: FixedClock) -> PackService:
    # No retries: with one writer a ConcurrencyError is a store's bug, and must show as one.
    counter = itertools.count(1)
    return PackService(repository, clock, retries=0, new_pack_id=lambda: f"P{next(counter)}")


def _terms(metric: Metric | None = None) -> st.SearchStrategy[PackTerms]:
    expiry = sps.expiry_rules(min_date=FIRST_DAY + timedelta(days=10), max_date=date(2026, 12, 31))
    return sps.pack_terms(metric, expiry=expiry, service_ids=SERVICES, max_sessions=8, bundles=True)


def _sorted_window(ends: tuple[date | None, date | None]) -> tuple[date | None, date | None]:
    """A window whose ends, when both are given, are in order."""
    low, high = ends
    if low is not None and high is not None and high < low:
        return high, low
    return low, high


class StoreMachine(RuleBasedStateMachine):
    """Runs every workflow on the store under test and on the reference store, side by side.

    Implement :meth:`open_repository`; override :meth:`close_repository` if the store holds
    resources. A subclass may add rules of its own: :meth:`both` runs a call on both services
    (``self.service`` on the store under test, ``self.reference`` on the reference store) and
    checks that they agree; ``self.clock`` is the :class:`FixedClock` they share.
    """

    practice_id: ClassVar[str] = "clinic-1"
    timezone: ClassVar[str] = "Australia/Sydney"
    """The practice's time zone: appointments fall on its local days, DST changes included."""
    clients: ClassVar[tuple[str, ...]] = ("C1", "C2")

    def __init__(self) -> None:
        super().__init__()
        start = datetime.combine(FIRST_DAY + timedelta(days=5), time(9), ZoneInfo(self.timezone))
        self.clock = FixedClock(start)
        reference = InMemoryStore().practice(self.practice_id, self.timezone)
        self.reference = _service(reference, self.clock)
        self.repository = self.open_repository(self.practice_id, self.timezone)
        self.service = _service(self.repository, self.clock)
        self.appointments: dict[str, Appointment] = {}
        self._made = 0
        self._position = 0
        self._reference_position = 0
        self._event_ids: set[str] = set()
        self._versions: dict[str, int] = {}

    # What a host provides ---------------------------------------------------------------------

    def open_repository(self, practice_id: str, timezone: str) -> PackRepository:
        """A repository bound to ``practice_id`` on a fresh, empty store (once per run)."""
        raise NotImplementedError("name your store: implement open_repository()")

    def close_repository(self) -> None:
        """Release what :meth:`open_repository` acquired; called at the end of every run."""

    def teardown(self) -> None:
        self.close_repository()

    # Running a call on both --------------------------------------------------------------------

    def both(self, what: str, call: Callable[[PackService], T]) -> T | None:
        """Run ``call`` on the reference service, then on the service under test.

        Both must return equal results (event positions aside), or both must refuse with the
        same kind of error and rule. Returns the reference's result, ``None`` if refused.
        """
        expected, refused = _attempt(call, self.reference)
        actual, raised = _attempt(call, self.service)
        if refused is None and raised is not None:
            _fail(
                f"{what}: this store raised {_describe(raised)}; the reference store did not",
                raised,
            )
        if refused is not None and raised is None:
            _fail(
                f"{what}: the reference store refused it with {_describe(refused)}; "
                f"this store accepted it and returned {actual!r}"
            )
        if refused is not None and raised is not None:
            if (_kind(raised), raised.rule) != (_kind(refused), refused.rule):
                _fail(
                    f"{what}: refused differently\n  this store: {_describe(raised)}\n"
                    f"  reference:  {_describe(refused)}",
                    raised,
                )
            return None
        _same(what, _comparable(actual), _comparable(expected))
        return expected

    # Drawing -----------------------------------------------------------------------------------

    @property
    def today(self) -> date:
        return self.clock.now().astimezone(ZoneInfo(self.timezone)).date()

    def _packs(self) -> list[PackState]:
        return _each_once(self.reference.repository, self.clients)

    def _has_packs(self) -> bool:
        return bool(self._packs())

    def _template_ids(self) -> list[str]:
        return [t.id for t in self.reference.repository.templates()]

    def _pick(self, data: st.DataObject, options: Sequence[str], label: str) -> str:
        return data.draw(st.sampled_from(sorted(options)), label=label)

    def _pack(self, data: st.DataObject, client: str | None = None) -> PackState:
        """Any pack; given a client, that client's packs are drawn twice as often."""
        packs = {p.pack_id: p for p in self._packs()}
        mine = [p for p, state in packs.items() if state.client_id == client]
        return packs[self._pick(data, [*packs, *mine], "pack")]

    def _days(self) -> st.SearchStrategy[date]:
        """Local days: the coming weeks, any day of the range, and each pack's expiry date, its
        holds' first and last days and the days before them (R5, R22) drawn often."""
        days = sps.local_days(self.timezone, min_date=FIRST_DAY, max_date=LAST_DAY)
        soon = st.integers(-7, 42).map(lambda n: self.today + timedelta(days=n))
        packs = self._packs()
        expiries = {p.expiry_date for p in packs} - {None}
        expiries |= {day for p in packs for h in p.holds for day in (h.start, h.until)}
        edges = sorted({d - timedelta(days=k) for d in expiries if d is not None for k in (0, 1)})
        return st.one_of(soon, days, st.sampled_from(edges)) if edges else st.one_of(soon, days)

    def _appointment(
        self, data: st.DataObject, client: str | None = None, *, keep: bool = True
    ) -> Appointment:
        """A new appointment (a new id); ``keep`` it for the rules that act on appointments.

        Now and then for a service no template may cover, or priced in another currency (R4).
        """
        self._made += 1
        made = data.draw(
            sps.appointments(
                st.sampled_from(self.clients) if client is None else client,
                st.sampled_from([*SERVICES, *SERVICES, "pilates"]),
                timezone=self.timezone,
                currency=st.sampled_from(["AUD"] * 7 + ["USD"]),
                appointment_id=f"A{self._made}",
                days=self._days(),
            ),
            label="appointment",
        )
        if keep:
            self.appointments[made.id] = made
        return made

    def _known_appointment(self, data: st.DataObject) -> Appointment:
        return self.appointments[self._pick(data, list(self.appointments), "appointment")]

    def _appointment_id(self, data: st.DataObject) -> str:
        """A known appointment, or now and then one that was never made."""
        return self._pick(data, [*self.appointments, UNKNOWN_APPOINTMENT], "appointment_id")

    # Set-up ------------------------------------------------------------------------------------

    @initialize(data=st.data(), clock_in_utc=st.booleans())
    def add_templates(self, data: st.DataObject, clock_in_utc: bool) -> None:
        """A template of each metric, and a preferred template for each client."""
        if clock_in_utc:  # the same instant in UTC must give the same answers
            self.clock.set(self.clock.now().astimezone(UTC))
        for number, metric in enumerate(Metric, start=1):
            self._add_template(f"T{number}", data.draw(_terms(metric), label=f"T{number}"))
        for client in self.clients:
            template_id = self._pick(data, self._template_ids(), f"{client} prefers")
            self._prefer(client, PreferTemplate(template_id))

    def _add_template(self, template_id: str, terms: PackTerms) -> None:
        self.both(f"add_template({template_id!r})", lambda s: s.add_template(template_id, terms))

    def _prefer(self, client: str, preference: Preference | None) -> None:
        self.both(
            f"set_preference({client!r}, {preference!r})",
            lambda s: s.set_preference(client, preference),
        )

    # Templates, preferences, opening -----------------------------------------------------------

    @rule(data=st.data(), terms=_terms())
    def edit_template(self, data: st.DataObject, terms: PackTerms) -> None:
        template_id = self._pick(data, self._template_ids(), "template_id")
        changes = {f.name: getattr(terms, f.name) for f in attrs.fields(PackTerms)}
        self.both(
            f"edit_template({template_id!r})", lambda s: s.edit_template(template_id, **changes)
        )

    @rule(data=st.data())
    def set_preference(self, data: st.DataObject) -> None:
        client = data.draw(st.sampled_from(self.clients), label="client")
        options: list[Preference | None] = [None, PreferService("physio")]
        options += [PreferTemplate(t) for t in [*sorted(self._template_ids()), UNKNOWN_TEMPLATE]]
        options += [PreferPack(p.pack_id) for p in self._packs()] + [PreferPack(UNKNOWN_PACK)]
        self._prefer(client, data.draw(st.sampled_from(options), label="preference"))

    @rule(data=st.data(), pack_id=st.sampled_from([None, None, None, "own-1"]))
    def open_from_template(self, data: st.DataObject, pack_id: str | None) -> None:
        client = data.draw(st.sampled_from(self.clients), label="client")
        template_id = self._pick(data, self._template_ids(), "template_id")
        self.both(
            f"open_pack({client!r}, template_id={template_id!r}, pack_id={pack_id!r})",
            lambda s: s.open_pack(client, template_id=template_id, pack_id=pack_id),
        )

    @rule(data=st.data(), terms=_terms())
    def open_ad_hoc(self, data: st.DataObject, terms: PackTerms) -> None:
        """A pack of one client, now and then shared with others from the start (R20)."""
        client = data.draw(st.sampled_from(self.clients), label="client")
        others = [c for c in self.clients if c != client]
        listed = data.draw(st.just(()) | st.lists(st.sampled_from(others), unique=True))
        self.both(
            f"open_pack({client!r}, terms=..., shared_with={listed!r})",
            lambda s: s.open_pack(client, terms=terms, shared_with=listed),
        )

    @rule(data=st.data(), terms=_terms(), from_template=st.booleans())
    def open_migrated(self, data: st.DataObject, terms: PackTerms, from_template: bool) -> None:
        """A pack brought from another system, ad hoc or from a template (R19)."""
        client = data.draw(st.sampled_from(self.clients), label="client")
        given: dict[str, Any] = {"terms": terms}
        if from_template:
            template_id = self._pick(data, self._template_ids(), "template_id")
            given = {"template_id": template_id}
            terms = self.reference.template(template_id).terms
        drawn = sps.migrations(terms, min_date=date(2025, 6, 1), max_date=self.today)
        migration = data.draw(drawn, label="migrated")
        self.both(
            f"open_pack({client!r}, {', '.join(given)}=..., migrated={migration!r})",
            lambda s: s.open_pack(client, migrated=migration, **given),
        )

    # Appointments ------------------------------------------------------------------------------

    @rule(data=st.data(), count=st.integers(1, 3))
    def book(self, data: st.DataObject, count: int) -> None:
        """A client books one to three appointments; their default decides (R13)."""
        client = data.draw(st.sampled_from(self.clients), label="client")
        for _ in range(count):
            self._book(self._appointment(data, client))

    def _book(self, appointment: Appointment) -> None:
        self.both(f"book({appointment.id!r})", lambda s: s.book(appointment))

    @rule(data=st.data())
    def decide(self, data: st.DataObject) -> None:
        """What booking would do, and the choices offered by hand (R13, R14): reads only."""
        appointment = self._appointment(data, keep=False)
        self.both(f"decide({appointment.id!r})", lambda s: s.decide(appointment))
        self.both(f"choices({appointment.id!r})", lambda s: s.choices(appointment))

    @precondition(_has_packs)
    @rule(data=st.data(), again=st.booleans())
    def assign_to_pack(self, data: st.DataObject, again: bool) -> None:
        """A new appointment, or one already made (the same request repeated, or a move)."""
        if again and self.appointments:
            appointment = self._known_appointment(data)
        else:
            appointment = self._appointment(data)
        pack_id = self._pack(data, appointment.client_id).pack_id
        self.both(
            f"assign({appointment.id!r}, pack_id={pack_id!r})",
            lambda s: s.assign(appointment, pack_id=pack_id),
        )

    @rule(data=st.data())
    def assign_to_template(self, data: st.DataObject) -> None:
        appointment = self._appointment(data)
        template_id = self._pick(data, self._template_ids(), "template_id")
        self.both(
            f"assign({appointment.id!r}, template_id={template_id!r})",
            lambda s: s.assign(appointment, template_id=template_id),
        )

    @rule(data=st.data(), how=st.sampled_from(["book", "pack", "template"]))
    def add_to_invoice(self, data: st.DataObject, how: str) -> None:
        """An appointment recorded after the fact, and its invoice line."""
        appointment = self._appointment(data)
        pack_id = None
        if how == "pack" and self._has_packs():
            pack_id = self._pack(data, appointment.client_id).pack_id
        template_id = None
        if how == "template":
            template_id = self._pick(data, self._template_ids(), "template_id")
        self.both(
            f"add_to_invoice({appointment.id!r}, pack_id={pack_id!r}, template_id={template_id!r})",
            lambda s: s.add_to_invoice(appointment, pack_id=pack_id, template_id=template_id),
        )

    @precondition(lambda self: self.appointments and self._has_packs())
    @rule(data=st.data())
    def move(self, data: st.DataObject) -> None:
        appointment = self._known_appointment(data)
        pack_id = self._pack(data, appointment.client_id).pack_id
        self.both(f"move({appointment.id!r}, {pack_id!r})", lambda s: s.move(appointment, pack_id))

    @rule(data=st.data(), how=st.sampled_from(["cancel", "late_cancel", "no_show"]))
    def cancel(self, data: st.DataObject, how: str) -> None:
        """Cancel as the clock says, call it late, or record a no-show (R7)."""
        appointment_id = self._appointment_id(data)
        self.both(f"{how}({appointment_id!r})", lambda s: getattr(s, how)(appointment_id))

    @precondition(lambda self: self.appointments)
    @rule(data=st.data())
    def reschedule(self, data: st.DataObject) -> None:
        appointment = self._known_appointment(data)
        start = data.draw(sps.local_starts(self.timezone, days=self._days()), label="start")
        done = self.both(
            f"reschedule({appointment.id!r}, {start.isoformat()})",
            lambda s: s.reschedule(appointment.id, start),
        )
        if done is not None:
            self.appointments[appointment.id] = attrs.evolve(appointment, start=start)

    @precondition(lambda self: self.appointments)
    @rule(data=st.data())
    def invoice_line(self, data: st.DataObject) -> None:
        appointment_id = self._appointment_id(data)
        self.both(f"invoice_line({appointment_id!r})", lambda s: s.invoice_line(appointment_id))

    # Packs -------------------------------------------------------------------------------------

    @precondition(_has_packs)
    @rule(data=st.data())
    def adjust(self, data: st.DataObject) -> None:
        """A credit or a debit in the pack's metric (R9)."""
        pack = self._pack(data)
        amount = data.draw(sps.adjustments(pack.terms), label="amount")
        # A bundle's adjustment names its line (R24); now and then none, which is refused.
        names = [line.name for line in pack.terms.lines]
        line = data.draw(st.sampled_from([*names, *names, None]), label="line") if names else None
        self.both(
            f"adjust({pack.pack_id!r}, {amount!r}, line={line!r})",
            lambda s: s.adjust(pack.pack_id, amount, "goodwill", line=line),
        )

    @precondition(_has_packs)
    @rule(data=st.data(), days=st.integers(1, 120))
    def extend(self, data: st.DataObject, days: int) -> None:
        pack = self._pack(data)
        until = (pack.expiry_date or self.today) + timedelta(days=days)
        self.both(
            f"extend({pack.pack_id!r}, {until})",
            lambda s: s.extend(pack.pack_id, until, "client away"),
        )

    @precondition(_has_packs)
    @rule(data=st.data(), days=st.integers(1, 40))
    def hold(self, data: st.DataObject, days: int) -> None:
        """A hold from a day until ``days`` later, the first day usable again (R22)."""
        pack = self._pack(data)
        start = data.draw(self._days(), label="start")
        until = start + timedelta(days=days)
        self.both(
            f"hold({pack.pack_id!r}, {start}, {until})",
            lambda s: s.hold(pack.pack_id, start, until, "travel"),
        )

    @precondition(_has_packs)
    @rule(data=st.data())
    def end_hold(self, data: st.DataObject) -> None:
        """End a hold early, on a day inside one of the pack's holds now and then (R22)."""
        pack = self._pack(data)
        inside = [h.start + timedelta(days=n) for h in pack.holds for n in range(h.days + 1)]
        days = st.one_of(st.sampled_from(inside), self._days()) if inside else self._days()
        on = data.draw(days, label="on")
        self.both(
            f"end_hold({pack.pack_id!r}, {on})",
            lambda s: s.end_hold(pack.pack_id, on, "back early"),
        )

    @precondition(_has_packs)
    @rule(data=st.data())
    def transfer(self, data: st.DataObject) -> None:
        """Transfer what remains of a pack to another client, in one commit of two packs (R21)."""
        pack_id = self._pack(data).pack_id
        to = data.draw(st.sampled_from(self.clients), label="to")
        self.both(
            f"transfer({pack_id!r}, {to!r})",
            lambda s: s.transfer(pack_id, to, reason="given on"),
        )

    @precondition(_has_packs)
    @rule(data=st.data(), unshare=st.booleans())
    def share_or_unshare(self, data: st.DataObject, unshare: bool) -> None:
        """Let another client draw on a pack, or stop them (R20); the owner now and then."""
        pack_id = self._pack(data).pack_id
        client = data.draw(st.sampled_from(self.clients), label="client")
        how = "unshare" if unshare else "share"
        self.both(f"{how}({pack_id!r}, {client!r})", lambda s: getattr(s, how)(pack_id, client))

    @precondition(_has_packs)
    @rule(data=st.data(), void=st.booleans())
    def close_or_void(self, data: st.DataObject, void: bool) -> None:
        """Close early, or void one opened in error (R10)."""
        pack_id = self._pack(data).pack_id
        if void:
            self.both(f"void({pack_id!r})", lambda s: s.void(pack_id, "opened in error"))
        else:
            self.both(f"close({pack_id!r})", lambda s: s.close(pack_id, "moving away"))

    @rule(data=st.data())
    def sweep(self, data: st.DataObject) -> None:
        """The expiry sweep as of a later day, or as of an expiry date in play (R12)."""
        later = st.integers(0, 300).map(lambda n: self.today + timedelta(days=n))
        expiries = sorted({p.expiry_date for p in self._packs() if p.expiry_date is not None})
        days = st.one_of(later, st.sampled_from(expiries)) if expiries else later
        as_of = data.draw(days, label="as_of")
        self.both(f"sweep({as_of})", lambda s: s.sweep(as_of))

    @rule(data=st.data(), limit=st.integers(1, 4))
    def find_packs(self, data: st.DataObject, limit: int) -> None:
        """A query of any filters: its pages hold what a scan of every pack through
        :meth:`PackQuery.matches` finds, in pack id order, each once."""
        query = data.draw(self._queries(), label="query")
        scanned = sorted(p.pack_id for p in self._store_packs() if query.matches(p))
        found: list[str] = []
        after: str | None = None
        for _ in range(len(scanned) + 2):
            page = self.repository.find_packs(query, after=after, limit=limit)
            found.extend(p.pack_id for p in page.packs)
            after = page.next_cursor
            if after is None:
                break
        _same(f"find_packs({query!r}, limit={limit}): every page", found, scanned)

    def _store_packs(self) -> list[PackState]:
        return _each_once(self.repository, self.clients)

    def _queries(self) -> st.SearchStrategy[PackQuery]:
        days = self._days()
        instants = days.map(
            lambda d: datetime.combine(d, time(0), ZoneInfo(self.timezone))
        ) | st.just(self.clock.now())
        left = st.one_of(
            st.none(),
            st.integers(0, 5),
            st.integers(0, 5 * 60).map(lambda m: timedelta(minutes=m)),
        )
        templates = st.none() | st.sampled_from([*self._template_ids(), "none-such"])
        window = st.tuples(st.none() | days, st.none() | days).map(_sorted_window)
        by_status = st.none() | st.tuples(st.sets(st.sampled_from(PackStatus)), instants)
        # Every pack, often: paging bugs show only on answers longer than a page.
        return st.just(PackQuery()) | st.builds(
            lambda status, expiring, at_most, template: PackQuery(
                statuses=None if status is None else status[0],
                as_of=None if status is None else status[1],
                expiring_from=expiring[0],
                expiring_to=expiring[1],
                at_most_left=at_most,
                template_id=template,
            ),
            by_status,
            window,
            left,
            templates,
        )

    @rule(minutes=st.integers(1, 14 * 24 * 60))
    def advance_clock(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    # Checks after every step -------------------------------------------------------------------

    @invariant()
    def stores_agree(self) -> None:
        now = self.clock.now()
        for client in self.clients:
            actual = self.repository.client_packs(client)
            expected = self.reference.repository.client_packs(client)
            _same(
                f"client_packs({client!r}): the packs, in the order opened",
                [p.pack_id for p in actual],
                [p.pack_id for p in expected],
            )
            for mine, theirs in zip(actual, expected, strict=True):
                self._check_pack(mine, theirs, now)
            _same(
                f"client_packs({client!r}, former=True): with those shared with them before",
                [p.pack_id for p in self.repository.client_packs(client, former=True)],
                [p.pack_id for p in self.reference.repository.client_packs(client, former=True)],
            )
        for appointment_id in sorted(self.appointments):
            _same(
                f"pack_of_appointment({appointment_id!r})",
                self.repository.pack_of_appointment(appointment_id),
                self.reference.repository.pack_of_appointment(appointment_id),
            )
        self._check_templates_and_preferences()
        self._check_events()

    def _check_pack(self, mine: PackState, theirs: PackState, now: datetime) -> None:
        where = f"pack {theirs.pack_id}"
        if mine.remaining_units < 0:
            _fail(f"{where}: the balance is below zero: {mine.remaining}")
        ids = [u.appointment.id for u in mine.usages]
        first = theirs.numbered_before + 1  # after the sessions numbered elsewhere (R19)
        # A bundle numbers each line on its own (R24); any other pack has one line, None.
        for line in dict.fromkeys(mine.line_of(u) for u in mine.usages):
            on_line = [u.appointment.id for u in mine.usages if mine.line_of(u) == line]
            numbers = [mine.number(a) for a in on_line]
            if numbers != list(range(first, first + len(on_line))):
                expected = f"{first}..{first + len(on_line) - 1}"
                _fail(f"{where}: sessions are numbered {numbers}, not {expected}")
        _same(f"{where}: version", mine.version, theirs.version)
        _same(f"{where}: remaining", mine.remaining, theirs.remaining)
        _same(f"{where}: status as of {now.isoformat()}", mine.status(now), theirs.status(now))
        _same(
            f"{where}: appointments in session order",
            ids,
            [u.appointment.id for u in theirs.usages],
        )
        _same(f"{where}: labels", [mine.label(a) for a in ids], [theirs.label(a) for a in ids])
        _same(f"{where}: marks", [u.mark for u in mine.usages], [u.mark for u in theirs.usages])
        _same(
            f"{where}: invoice lines issued",
            [u.invoice for u in mine.usages],
            [u.invoice for u in theirs.usages],
        )
        _same(f"{where}: state", mine, theirs)
        if self._versions.get(theirs.pack_id) != theirs.version:
            ledger = self.repository.ledger(theirs.pack_id)
            _same(f"{where}: ledger", ledger, self.reference.repository.ledger(theirs.pack_id))
            _same(f"{where}: load()", self.repository.load(theirs.pack_id), mine)
            _same(f"{where}: the state its ledger replays to", replay(ledger), mine)
            self._versions[theirs.pack_id] = theirs.version

    def _check_templates_and_preferences(self) -> None:
        _same(
            "templates()",
            sorted(self.repository.templates(), key=lambda t: t.id),
            sorted(self.reference.repository.templates(), key=lambda t: t.id),
        )
        for client in self.clients:
            _same(
                f"preference({client!r})",
                self.repository.preference(client),
                self.reference.repository.preference(client),
            )

    def _check_events(self) -> None:
        """The events written since the last step: same ids and kinds in the same order."""
        new = self.repository.events_since(self._position)
        expected = self.reference.repository.events_since(self._reference_position)
        last = self._position
        for recorded in new:
            if recorded.position <= last:
                _fail(f"event positions must strictly increase: {recorded.position} after {last}")
            last = recorded.position
            if recorded.event.event_id in self._event_ids:
                _fail(f"event id {recorded.event.event_id!r} was written twice")
            self._event_ids.add(recorded.event.event_id)
        _same(
            f"events after position {self._position}: (event id, kind) in stream order",
            [(r.event.event_id, type(r.event).__name__) for r in new],
            [(r.event.event_id, type(r.event).__name__) for r in expected],
        )
        _same("events", [r.event for r in new], [r.event for r in expected])
        self._position = last
        if expected:
            self._reference_position = expected[-1].position


def _each_once(repository: PackRepository, clients: Sequence[str]) -> list[PackState]:
    """The packs of ``clients``, each once: a pack shared among them is theirs all (R20)."""
    found = {p.pack_id: p for c in clients for p in repository.client_packs(c)}
    return list(found.values())
