"""The pure reports (R26): each figure on a hand-made ledger, grouping, as-of, the journal, and
refusals of bad periods and account names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest

from sessionpacks import operations as ops
from sessionpacks.errors import InvalidValueError
from sessionpacks.ledger import Entry, PackState
from sessionpacks.model import (
    Allowance,
    Appointment,
    ExpiresOn,
    Money,
    PackTerms,
    PerPack,
    PerSession,
    Practice,
    Tier,
)
from sessionpacks.reports import JournalAccounts, ReportLine, journal, report

SYDNEY = ZoneInfo("Australia/Sydney")
PRACTICE = Practice("clinic-1", "Australia/Sydney")
MARCH = datetime(2026, 3, 1, tzinfo=SYDNEY)
APRIL = datetime(2026, 4, 1, tzinfo=SYDNEY)
MAY = datetime(2026, 5, 1, tzinfo=SYDNEY)


def aud(amount: str, currency: str = "AUD") -> Money:
    return Money(amount, currency)


def terms(price: str = "300.00", currency: str = "AUD", sessions: int = 3) -> PackTerms:
    return PackTerms(
        name="3 x Physio",
        allowance=Allowance.sessions(sessions),
        pricing=PerPack(aud(price, currency)),
        expiry=ExpiresOn(datetime(2026, 4, 10).date()),
    )


def visit(n: int, day: datetime, currency: str = "AUD") -> Appointment:
    return Appointment(f"A{n}", "C1", "physio", day, timedelta(hours=1), aud("120.00", currency))


Step = Callable[[PackState, datetime], ops.Change]


def ledger(
    pack_terms: PackTerms, steps: Sequence[tuple[datetime, Step]], *, pack_id: str = "P1"
) -> list[Entry]:
    """A pack opened on 2 March with ``pack_terms``, then each step at its instant."""
    opened = ops.open_pack(pack_id, "C1", pack_terms, PRACTICE, datetime(2026, 3, 2, tzinfo=SYDNEY))
    state, entries = opened.after, list(opened.entries)
    for at, step in steps:
        change = step(state, at)
        state, entries = change.after, entries + list(change.entries)
    return entries


def on(day: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, 9, tzinfo=SYDNEY)


def use(n: int, day: datetime) -> Step:
    return lambda s, at: ops.use(s, visit(n, day), at)


def only(lines: Sequence[ReportLine]) -> ReportLine:
    (line,) = lines
    return line


def test_a_sale_and_its_sessions_in_one_period() -> None:
    entries = ledger(terms(), [(on(3), use(1, on(3))), (on(4), use(2, on(4)))])
    line = only(report([entries], MARCH, APRIL).lines)
    assert (line.template_id, line.packs_sold, line.sessions_used) == (None, 1, 2)
    assert (line.sold, line.recognised) == (aud("300.00"), aud("200.00"))
    assert (line.opening_unearned, line.closing_unearned) == (aud("0.00"), aud("100.00"))
    assert line.balances


def test_breakage_is_counted_when_the_sweep_records_the_expiry() -> None:
    expire: Step = lambda s, at: ops.expire(s, at.date(), at)  # noqa: E731
    entries = ledger(terms(), [(on(3), use(1, on(3))), (on(11, 4), expire)])
    april = only(report([entries], APRIL, MAY).totals)
    assert april.opening_unearned == aud("200.00")
    assert april.breakage == aud("200.00")
    assert april.closing_unearned == aud("0.00")
    assert april.balances


def test_closing_makes_what_is_left_a_refund_and_a_void_writes_it_off() -> None:
    close: Step = lambda s, at: ops.close(s, "moved away", at)  # noqa: E731
    void: Step = lambda s, at: ops.void(s, "opened in error", at)  # noqa: E731
    closed = ledger(terms(), [(on(3), use(1, on(3))), (on(5), close)])
    voided = ledger(terms(), [(on(5), void)], pack_id="P2")
    line = only(report([closed, voided], MARCH, APRIL).totals)
    assert (line.sold, line.recognised) == (aud("600.00"), aud("100.00"))
    assert (line.refunds, line.written_off) == (aud("200.00"), aud("300.00"))
    assert line.closing_unearned == aud("0.00")
    assert line.balances


def test_a_debit_is_written_off_and_a_release_reverses_revenue() -> None:
    debit: Step = lambda s, at: ops.adjust(s, -1, "correction", at)  # noqa: E731
    cancel: Step = lambda s, at: ops.cancel(s, "A1", at)  # noqa: E731
    entries = ledger(terms(), [(on(3), use(1, on(9, 4))), (on(5), debit), (on(2, 4), cancel)])
    march = only(report([entries], MARCH, APRIL).lines)
    assert (march.recognised, march.written_off) == (aud("100.00"), aud("100.00"))
    april = only(report([entries], APRIL, MAY).lines)
    assert (april.recognised, april.sessions_used) == (aud("-100.00"), -1)
    assert april.closing_unearned == aud("200.00")
    assert april.balances
    reversal = [line for line in journal([entries], APRIL, MAY) if line.account == "Revenue"]
    assert [(line.debit, line.memo) for line in reversal] == [
        (aud("100.00"), "reversal: revenue recognised (released A1)")
    ]


def test_a_pack_charged_per_session_sells_and_recognises_as_it_is_used() -> None:
    per_session = attrs.evolve(
        terms(),
        pricing=PerSession((Tier(1, aud("150.00")), Tier(2, aud("120.00")))),
        expiry=ExpiresOn(datetime(2027, 1, 1).date()),
    )
    entries = ledger(per_session, [(on(3), use(1, on(3))), (on(4), use(2, on(4)))])
    line = only(report([entries], MARCH, APRIL).lines)
    assert line.sold == line.recognised == aud("270.00")
    assert line.closing_unearned == aud("0.00")


def test_currencies_and_templates_are_grouped_and_never_added() -> None:
    nzd = ledger(terms("450.00", "NZD"), [], pack_id="P2")
    aud_pack = ledger(terms(), [])
    found = report([nzd, aud_pack], MARCH, APRIL)
    assert [(t.currency, t.sold) for t in found.totals] == [
        ("AUD", aud("300.00")),
        ("NZD", aud("450.00", "NZD")),
    ]


def test_entries_recorded_after_the_period_or_as_of_do_not_count() -> None:
    entries = ledger(terms(), [(on(3), use(1, on(3))), (on(20), use(2, on(20)))])
    found = report([entries], MARCH, APRIL, as_of=on(10))
    assert only(found.lines).sessions_used == 1
    assert report([entries[:2]], MARCH, APRIL) == attrs.evolve(found, as_of=None)
    opening = datetime(2026, 3, 2, tzinfo=SYDNEY)
    assert report([entries], MARCH, opening).lines == ()  # [start, end): not yet opened


def test_a_clock_set_back_counts_an_entry_at_the_latest_instant_before_it() -> None:
    entries = ledger(terms(), [(on(20), use(1, on(20))), (on(5), use(2, on(5)))])
    early = report([entries], MARCH, on(10))
    assert only(early.lines).sessions_used == 0
    assert only(report([entries], MARCH, APRIL).lines).sessions_used == 2


def test_the_journal_balances_and_names_the_practices_accounts() -> None:
    entries = ledger(terms(), [(on(3), use(1, on(3)))])
    accounts = JournalAccounts(receivable="1100 Bank", unearned="2400 Prepaid")
    lines = journal([entries], MARCH, APRIL, accounts=accounts)
    assert [(line.account, line.debit.minor, line.credit.minor) for line in lines] == [
        ("1100 Bank", 30000, 0),
        ("2400 Prepaid", 0, 30000),
        ("2400 Prepaid", 10000, 0),
        ("Revenue", 0, 10000),
    ]
    assert lines[0].row() == {
        "date": "2026-03-02",
        "account": "1100 Bank",
        "debit": "300.00",
        "credit": "",
        "currency": "AUD",
        "template": "",
        "pack_id": "P1",
        "memo": "pack sold (opened)",
    }


@pytest.mark.parametrize(
    ("start", "end", "as_of", "field"),
    [
        (APRIL, MARCH, None, "end"),
        (MARCH.replace(tzinfo=None), APRIL, None, "start"),
        (MARCH, APRIL.replace(tzinfo=None), None, "end"),
        (MARCH, APRIL, datetime(2026, 4, 2), "as_of"),
    ],
)
def test_a_bad_period_is_refused_naming_its_field(
    start: datetime, end: datetime, as_of: datetime | None, field: str
) -> None:
    with pytest.raises(InvalidValueError) as refused:
        report([], start, end, as_of=as_of)
    assert refused.value.field == field


def test_a_ledger_must_start_with_its_opening() -> None:
    entries = ledger(terms(), [(on(3), use(1, on(3)))])
    with pytest.raises(InvalidValueError, match="Opened"):
        report([entries[1:]], MARCH, APRIL)


@pytest.mark.parametrize("name", ["", " ", "x" * 201, "a\x00b", 7])
def test_an_account_name_must_be_text(name: object) -> None:
    with pytest.raises(InvalidValueError) as refused:
        JournalAccounts(revenue=name)  # type: ignore[arg-type]
    assert refused.value.field == "JournalAccounts.revenue"


def test_journal_accounts_that_are_not_journal_accounts_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="accounts"):
        journal([], MARCH, APRIL, accounts=1.5)  # type: ignore[arg-type]
