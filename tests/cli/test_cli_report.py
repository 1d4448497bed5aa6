"""``sessionpacks report``: the table, ``--json``, ``--csv``, ``--journal``, ``--as-of``, and
refusals of bad periods and account names (in-process, through ``tests/cli_support.py``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from sessionpacks.reports import JOURNAL_COLUMNS

from ..cli_support import Cli

MARCH = ("--from", "2026-03-01", "--to", "2026-04-01")


def appointment(appointment_id: str, start: str) -> list[str]:
    return [
        appointment_id, "--client", "C1", "--service", "physio", "--start", start,
        "--duration", "45m", "--price", "120.00 AUD",
    ]  # fmt: skip


@pytest.fixture
def clinic(tmp_path: Path) -> Cli:
    """A 3-session pack sold for 100.00 on 2 March, 2 sessions used then; on 2 April the second
    is cancelled and the pack closed, its remaining value refundable."""
    cli = Cli(tmp_path)
    cli.ok(
        "--timezone", "Australia/Sydney", "template", "add", "physio-3", "--name", "3 x Physio",
        "--sessions", "3", "--price", "100.00 AUD", "--valid-for", "6 months",
    )  # fmt: skip
    cli.ok("pack", "open", "C1", "--template", "physio-3", "--pack-id", "P1")
    cli.ok("appointment", "assign", "--pack", "P1", *appointment("A1", "2026-03-03T10:00+11:00"))
    cli.ok("appointment", "assign", "--pack", "P1", *appointment("A2", "2026-04-03T10:00+11:00"))
    april = "2026-04-02T09:00+11:00"
    cli.ok("appointment", "cancel", "A2", now=april)
    cli.ok("pack", "close", "P1", "--reason", "moved away", now=april)
    return cli


def test_the_table_shows_each_template_the_total_and_the_reconciliation(clinic: Cli) -> None:
    shown = clinic.ok("report", *MARCH).out
    assert "Report from 2026-03-01 to 2026-04-01" in shown
    assert "physio-3" in shown
    assert "(total)" in shown
    assert (
        "AUD: opening 0.00 + sold 100.00 - recognised 66.66 - breakage 0.00 - refunds 0.00"
        " - written off 0.00 = closing 33.34: balances"
    ) in shown


def test_json_is_one_object_in_the_library_encoding(clinic: Cli) -> None:
    data = clinic.json("report", *MARCH)
    assert data["balances"] is True
    (line,) = data["lines"]
    assert line["template_id"] == "physio-3"
    assert line["packs_sold"] == 1
    assert line["sold"] == {"amount": "100.00", "currency": "AUD"}
    assert line["recognised"] == {"amount": "66.66", "currency": "AUD"}
    assert line["closing_unearned"] == {"amount": "33.34", "currency": "AUD"}
    assert line["sessions_used"] == 2
    april = clinic.json("report", "--from", "2026-04-01", "--to", "2026-05-01")
    (total,) = april["totals"]
    assert total["recognised"] == {"amount": "-33.33", "currency": "AUD"}  # A2 released
    assert total["refunds"] == {"amount": "66.67", "currency": "AUD"}
    assert total["closing_unearned"] == {"amount": "0.00", "currency": "AUD"}


def test_csv_has_a_row_per_template_and_a_total(clinic: Cli) -> None:
    rows = list(csv.DictReader(io.StringIO(clinic.ok("report", *MARCH, "--csv").out)))
    assert [r["template"] for r in rows] == ["physio-3", "(total)"]
    assert rows[0]["opening_unearned"] == "0.00"
    assert rows[0]["closing_unearned"] == "33.34"
    assert rows[0]["balances"] == "true"


def test_as_of_reports_what_was_recorded_then(clinic: Cli) -> None:
    whole = ("--from", "2026-03-01", "--to", "2026-05-01")
    before = clinic.json("report", *whole, "--as-of", "2026-04-01T00:00+11:00")
    (total,) = before["totals"]
    assert total["closing_unearned"] == {"amount": "33.34", "currency": "AUD"}
    assert total["refunds"] == {"amount": "0.00", "currency": "AUD"}


def test_the_journal_is_written_as_balanced_double_entry_lines(clinic: Cli) -> None:
    target = clinic.folder / "april.csv"
    ran = clinic.ok(
        "report", "--from", "2026-04-01", "--to", "2026-05-01", "--journal", str(target),
        "--account", "revenue=4000 Sales",
    )  # fmt: skip
    assert "journal line(s) written" in ran.err
    with target.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == JOURNAL_COLUMNS
        rows = list(reader)
    assert {"4000 Sales", "Deferred revenue", "Refunds payable"} <= {r["account"] for r in rows}
    debits = sum(float(r["debit"] or 0) for r in rows)
    credits = sum(float(r["credit"] or 0) for r in rows)
    assert round(debits, 2) == round(credits, 2)
    assert {r["date"] for r in rows} == {"2026-04-02"}


def test_an_empty_practice_reports_no_packs(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    shown = cli.ok("--timezone", "Australia/Sydney", "report", *MARCH).out
    assert "(no packs)" in shown


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--from", "2026-04-01", "--to", "2026-03-01"), "--to"),
        ((*MARCH, "--csv", "--json"), "--csv"),
        ((*MARCH, "--account", "bogus=X"), "--account"),
        ((*MARCH, "--account", "revenue="), "--account"),
        (("--from", "2026-13-01", "--to", "2026-04-01"), "--from"),
        (
            (
                "--to",
                "2026-04-01",
            ),
            "--from",
        ),
    ],
)
def test_bad_periods_and_accounts_are_usage_errors(
    clinic: Cli, args: tuple[str, ...], field: str
) -> None:
    ran = clinic("report", *args)
    assert ran.code == 2, ran.err
    assert field in ran.err
