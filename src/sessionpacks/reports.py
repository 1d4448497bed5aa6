"""Reports for the bookkeeper (R26): what a period sold, used and recognised, and the liability.

Every figure is read off the pack ledgers alone, as pure functions of their entries: no store,
no clock. A pack's money at any point is :func:`~sessionpacks.pricing.figures` of its state then
(R15a), split into five parts that always add up to what was sold:

* ``recognised``: revenue earned by the sessions used;
* ``unearned``: value still usable by the client, the liability (``PackFigures.usable``);
* ``breakage``: value an expired pack left unused (once the sweep recorded the expiry);
* ``refunds``: value a closed pack left, refundable to the client;
* ``written_off``: value taken away by debit adjustments, and what a voided pack left.

A period's figure is the change of its part between the period's start and its end, so the
**reconciliation** ``opening unearned + sold - recognised - breakage - refunds - written off =
closing unearned`` holds to the cent by construction. A change can be negative: a released
usage takes back the revenue it recognised, an extension after expiry turns breakage back into
usable value, a pack closed after it expired moves its breakage to refunds.

Which entries count is decided by when they were *recorded* (R23): the state at an instant is
the ledger's entries recorded before it, so a report run later, or ``as_of`` a later instant,
says the same. An entry counts at the latest ``recorded_at`` of the entries up to it, so a
clock that was set back cannot take a ledger's entries out of order.

A pack is sold when it is opened: a pack charged per pack sells its price then. A pack charged
per session is paid as it is used, so its sale is the price of its sessions used, recognised at
once, and it never holds unearned value. Packs are grouped by currency and template (ad-hoc
packs form one group, ``template_id`` ``None``); figures in different currencies are never
added together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta

import attrs

from sessionpacks._limits import check_text
from sessionpacks.errors import InvalidValueError
from sessionpacks.ledger import Entry, Opened, PackState, apply
from sessionpacks.model import Metric, Money, instant, require_aware
from sessionpacks.pricing import figures, recognised_before

__all__ = [
    "JOURNAL_COLUMNS",
    "JournalAccounts",
    "JournalLine",
    "Report",
    "ReportLine",
    "journal",
    "report",
]


@attrs.frozen
class _Position:
    """A pack's cumulative figures at one point, in minor units of its currency (money) and
    microseconds (hours). ``sold == recognised + unearned + breakage + refunds + written_off``."""

    packs: int = 0
    sold: int = 0
    recognised: int = 0
    unearned: int = 0
    breakage: int = 0
    refunds: int = 0
    written_off: int = 0
    sessions: int = 0
    hours: int = 0
    value: int = 0

    def _combined(self, other: _Position, sign: int) -> _Position:
        pairs = zip(attrs.astuple(self), attrs.astuple(other), strict=True)
        return _Position(*(a + sign * b for a, b in pairs))

    def __add__(self, other: _Position) -> _Position:
        return self._combined(other, 1)

    def __sub__(self, other: _Position) -> _Position:
        return self._combined(other, -1)


def _position(state: PackState) -> _Position:
    found = figures(state)
    # A migrated pack's sale here is the value it brought, unearned: what it recognised in the
    # other system is neither sold nor recognised here (R19).
    before = recognised_before(state).minor
    # A transfer moves unearned value from one pack to another (R21): the source's sale shrinks
    # by what it handed on, the new pack is sold at it, so the practice's sales net to nil.
    handed_on = found.transferred.minor
    voided = state.voided_at is not None
    # A void undoes a pack opened in error: what it left is written off, not refunded.
    left = found.refundable.minor
    consumed = state.consumed_units
    return _Position(
        packs=0 if state.transferred_from is not None else 1,  # a transfer sells no new pack
        sold=found.price.minor - before - handed_on,
        recognised=found.recognised.minor - before,
        unearned=found.usable.minor,
        breakage=found.breakage.minor,
        refunds=0 if voided else left,
        written_off=found.written_off.minor + (left if voided else 0),
        sessions=len(state.usages),
        hours=consumed if state.metric is Metric.HOURS else 0,
        value=consumed if state.metric is Metric.MONEY else 0,
    )


@attrs.frozen
class _Movement:
    """What one entry changed: the pack's position after it minus before it."""

    entry: Entry
    at: datetime
    state: PackState
    change: _Position


def _movements(ledger: Sequence[Entry]) -> Iterator[_Movement]:
    state: PackState | None = None
    before, at = _Position(), None
    for entry in ledger:
        state = apply(state, entry)
        recorded = instant(entry.recorded_at)
        at = recorded if at is None or recorded > at else at
        after = _position(state)
        yield _Movement(entry, at, state, after - before)
        before = after


def _check_period(start: datetime, end: datetime, as_of: datetime | None) -> None:
    require_aware("start", start)
    require_aware("end", end)
    if as_of is not None:
        require_aware("as_of", as_of)
    if instant(end) < instant(start):
        raise InvalidValueError("end", end, f"is before the period's start {start.isoformat()}")


def _cut(moment: datetime, as_of: datetime | None) -> datetime:
    moment = instant(moment)
    return moment if as_of is None else min(moment, instant(as_of))


# The report ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReportLine:
    """A period's figures for one group of packs in one currency: a template's packs, the
    ad-hoc packs (``template_id`` ``None``), or, in :attr:`Report.totals`, all of them.

    ``packs_sold`` counts the packs opened in the period and ``sold`` their sales (see the
    module's notes for packs charged per session). ``sessions_used`` counts appointments drawn,
    net of releases, on packs of every metric; ``hours_used`` and ``value_used`` are what hours
    and money packs drew, net of releases. ``opening_unearned`` and ``closing_unearned`` are the
    liability at the period's start and end; ``recognised``, ``breakage``, ``refunds`` and
    ``written_off`` are the period's movements, each possibly negative (a reversal).
    """

    currency: str
    template_id: str | None
    packs_sold: int
    sold: Money
    sessions_used: int
    hours_used: timedelta
    value_used: Money
    opening_unearned: Money
    recognised: Money
    breakage: Money
    refunds: Money
    written_off: Money
    closing_unearned: Money

    @property
    def reconciled(self) -> Money:
        """``opening_unearned + sold - recognised - breakage - refunds - written_off``: what
        the closing liability must be."""
        return (
            self.opening_unearned
            + self.sold
            - self.recognised
            - self.breakage
            - self.refunds
            - self.written_off
        )

    @property
    def balances(self) -> bool:
        """The reconciliation line holds to the cent: :attr:`reconciled` is the closing
        liability."""
        return self.reconciled == self.closing_unearned


@attrs.frozen(kw_only=True)
class Report:
    """A practice's report for the period ``[start, end)``, from the entries recorded before
    ``as_of`` (``None``: every entry given).

    ``lines`` has one :class:`ReportLine` per currency and template, by currency, then template
    id, the ad-hoc packs last; ``totals`` one per currency.
    """

    start: datetime
    end: datetime
    as_of: datetime | None
    lines: tuple[ReportLine, ...]
    totals: tuple[ReportLine, ...]

    @property
    def balances(self) -> bool:
        """Every line and every total reconciles to the cent."""
        return all(line.balances for line in (*self.lines, *self.totals))


@attrs.frozen
class _Group:
    opening: _Position = _Position()
    period: _Position = _Position()

    def __add__(self, other: _Group) -> _Group:
        return _Group(self.opening + other.opening, self.period + other.period)


def _pack_group(ledger: Sequence[Entry], start: datetime, end: datetime) -> _Group | None:
    """A pack's position at ``start`` and its movements in ``[start, end)``, or ``None`` if
    it was not opened before ``end``."""
    group: _Group | None = None
    for moved in _movements(ledger):
        if moved.at >= end:
            break
        group = group or _Group()
        if moved.at < start:
            group = _Group(group.opening + moved.change, group.period)
        else:
            group = _Group(group.opening, group.period + moved.change)
    return group


def _line(currency: str, template_id: str | None, group: _Group) -> ReportLine:
    def money(minor: int) -> Money:
        return Money.from_minor(minor, currency)

    period, opening = group.period, group.opening
    return ReportLine(
        currency=currency,
        template_id=template_id,
        packs_sold=period.packs,
        sold=money(period.sold),
        sessions_used=period.sessions,
        hours_used=timedelta(microseconds=period.hours),
        value_used=money(period.value),
        opening_unearned=money(opening.unearned),
        recognised=money(period.recognised),
        breakage=money(period.breakage),
        refunds=money(period.refunds),
        written_off=money(period.written_off),
        closing_unearned=money(opening.unearned + period.unearned),
    )


def _opened(ledger: Sequence[Entry]) -> Opened:
    first = ledger[0] if ledger else None
    if not isinstance(first, Opened):
        raise InvalidValueError("ledger", first, "a ledger starts with its Opened entry")
    return first


def _group_order(key: tuple[str, str | None]) -> tuple[str, bool, str]:
    currency, template_id = key
    return (currency, template_id is None, template_id or "")


def report(
    ledgers: Iterable[Sequence[Entry]],
    start: datetime,
    end: datetime,
    *,
    as_of: datetime | None = None,
) -> Report:
    """The report (R26) for the period ``[start, end)`` over the packs whose ``ledgers`` are
    given (each a whole ledger, oldest entry first), from the entries recorded before ``as_of``
    (R23; ``None``: all of them). ``start``, ``end`` and ``as_of`` are timezone-aware instants;
    a period given as local dates starts at local midnight of its first day and ends at local
    midnight of the day after its last.
    """
    _check_period(start, end, as_of)
    start_cut, end_cut = _cut(start, as_of), _cut(end, as_of)
    groups: dict[tuple[str, str | None], _Group] = {}
    for ledger in ledgers:
        opened = _opened(ledger)
        pack = _pack_group(ledger, start_cut, end_cut)
        if pack is None:
            continue
        key = (opened.terms.currency, opened.template_id)
        groups[key] = groups[key] + pack if key in groups else pack
    lines = tuple(_line(*key, groups[key]) for key in sorted(groups, key=_group_order))
    totals: dict[str, _Group] = {}
    for (currency, _), group in sorted(groups.items(), key=lambda item: _group_order(item[0])):
        totals[currency] = totals[currency] + group if currency in totals else group
    return Report(
        start=start,
        end=end,
        as_of=as_of,
        lines=lines,
        totals=tuple(_line(currency, None, group) for currency, group in totals.items()),
    )


# The journal ---------------------------------------------------------------------------------


def _account_name(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    check_text(f"JournalAccounts.{attribute.name}", value, max_length=200, required=True)


@attrs.frozen(kw_only=True)
class JournalAccounts:
    """The names of the accounts the :func:`journal` posts to, as the practice's books call
    them: non-blank text of at most 200 characters."""

    receivable: str = attrs.field(default="Cash / receivable", validator=_account_name)
    """Debited by a sale."""
    unearned: str = attrs.field(default="Deferred revenue", validator=_account_name)
    """The liability: credited by a sale, debited as its value is earned or leaves."""
    revenue: str = attrs.field(default="Revenue", validator=_account_name)
    """Credited by revenue recognised."""
    breakage: str = attrs.field(default="Breakage income", validator=_account_name)
    """Credited by what expired packs left unused."""
    refunds: str = attrs.field(default="Refunds payable", validator=_account_name)
    """Credited by what closed packs left, owed back to the client."""
    written_off: str = attrs.field(default="Pack value written off", validator=_account_name)
    """Credited by debit adjustments and what voided packs left."""


JOURNAL_COLUMNS = ("date", "account", "debit", "credit", "currency", "template", "pack_id", "memo")
"""The columns of :meth:`JournalLine.row`, in order: the journal's CSV header."""


@attrs.frozen(kw_only=True)
class JournalLine:
    """One side of a journal entry: ``debit`` or ``credit`` is the amount, the other zero.

    Lines come in balanced pairs, one pair per movement of one ledger entry, dated with the
    local date (in the practice's time zone) on which the entry was recorded.
    """

    day: date
    account: str
    debit: Money
    credit: Money
    template_id: str | None
    pack_id: str
    memo: str

    @property
    def currency(self) -> str:
        return self.debit.currency

    def row(self) -> dict[str, str]:
        """The line as CSV fields, keyed by :data:`JOURNAL_COLUMNS`; a zero side is empty."""
        return {
            "date": self.day.isoformat(),
            "account": self.account,
            "debit": str(self.debit.amount) if self.debit.minor else "",
            "credit": str(self.credit.amount) if self.credit.minor else "",
            "currency": self.currency,
            "template": self.template_id or "",
            "pack_id": self.pack_id,
            "memo": self.memo,
        }


def _postings(accounts: JournalAccounts) -> dict[str, tuple[str, str, str]]:
    """For each part that moves: the account debited, the account credited, and the memo."""
    return {
        "sold": (accounts.receivable, accounts.unearned, "pack sold"),
        "recognised": (accounts.unearned, accounts.revenue, "revenue recognised"),
        "breakage": (accounts.unearned, accounts.breakage, "breakage: expired unused"),
        "refunds": (accounts.unearned, accounts.refunds, "refundable on close"),
        "written_off": (accounts.unearned, accounts.written_off, "written off"),
    }


def _entry_text(entry: Entry) -> str:
    name = type(entry).__name__.lower()
    appointment = getattr(entry, "appointment_id", None)
    used = getattr(entry, "appointment", None)
    appointment = appointment or getattr(used, "id", None)
    return f"{name} {appointment}" if appointment else name


def _journal_pair(
    moved: _Movement, part: str, posting: tuple[str, str, str], template_id: str | None
) -> tuple[JournalLine, JournalLine]:
    minor: int = getattr(moved.change, part)
    debit, credit, memo = posting
    if minor < 0:  # a reversal posts the other way round
        debit, credit, memo, minor = credit, debit, f"reversal: {memo}", -minor
    currency = moved.state.terms.currency
    amount, zero = Money.from_minor(minor, currency), Money.zero(currency)
    line = JournalLine(
        day=moved.at.astimezone(moved.state.zone).date(),
        account=debit,
        debit=amount,
        credit=zero,
        template_id=template_id,
        pack_id=moved.state.pack_id,
        memo=f"{memo} ({_entry_text(moved.entry)})",
    )
    return line, attrs.evolve(line, account=credit, debit=zero, credit=amount)


def journal(
    ledgers: Iterable[Sequence[Entry]],
    start: datetime,
    end: datetime,
    *,
    accounts: JournalAccounts | None = None,
    as_of: datetime | None = None,
) -> tuple[JournalLine, ...]:
    """The period's movements as double-entry lines, for the practice's books.

    Over the same ledgers, period and ``as_of`` as :func:`report`, each entry recorded in the
    period posts one balanced pair of lines per part of the money it moved: a sale debits
    ``receivable`` and credits ``unearned``; revenue, breakage, refunds and write-offs debit
    ``unearned`` and credit their own account. A negative movement (a reversal) posts the other
    way round. So each pair's debit equals its credit, and the ``unearned`` account moves by the
    report's ``closing_unearned - opening_unearned``. Lines are in the order of the ledgers
    given, then of their entries.
    """
    _check_period(start, end, as_of)
    if accounts is not None and not isinstance(accounts, JournalAccounts):
        raise InvalidValueError("accounts", accounts, "must be JournalAccounts or None")
    start_cut, end_cut = _cut(start, as_of), _cut(end, as_of)
    postings = _postings(accounts or JournalAccounts())
    lines: list[JournalLine] = []
    for ledger in ledgers:
        template_id = _opened(ledger).template_id
        for moved in _movements(ledger):
            if moved.at >= end_cut:
                break
            if moved.at < start_cut:
                continue
            for part, posting in postings.items():
                if getattr(moved.change, part):
                    lines.extend(_journal_pair(moved, part, posting, template_id))
    return tuple(lines)
