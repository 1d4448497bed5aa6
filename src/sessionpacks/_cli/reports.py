"""``sessionpacks report``: a period's figures and the liability (R26), as a table, JSON or CSV,
the period's journal for the books, and a page to look at (``--html``, see
:mod:`sessionpacks._cli.html_report`)."""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from sessionpacks import _reporting
from sessionpacks.reports import JOURNAL_COLUMNS, JournalAccounts, Report, ReportLine

from . import html_report
from .base import Subparsers, add_command
from .context import Context
from .render import jsonable
from .store import UsageError
from .values import JOURNAL_ACCOUNTS, day, instant, journal_account, path

__all__ = ["register"]

LINE_COLUMNS = (
    "currency",
    "template",
    "packs_sold",
    "sold",
    "sessions_used",
    "hours_used",
    "value_used",
    "opening_unearned",
    "recognised",
    "breakage",
    "refunds",
    "written_off",
    "closing_unearned",
    "balances",
)
_AD_HOC, _TOTAL = "(ad hoc)", "(total)"
_ACCOUNTS = JOURNAL_ACCOUNTS


def _text(value: Any) -> str:
    data = jsonable(value)
    if isinstance(data, dict) and set(data) == {"amount", "currency"}:
        return str(data["amount"])
    return str(data)


def _label(line: ReportLine, total: bool) -> str:
    return _TOTAL if total else line.template_id or _AD_HOC


def _fields(line: ReportLine, total: bool) -> dict[str, str]:
    fields = {name: _text(getattr(line, name)) for name in LINE_COLUMNS if hasattr(line, name)}
    return fields | {"template": _label(line, total), "balances": str(line.balances).lower()}


def _rows(found: Report) -> Iterable[dict[str, str]]:
    for line in found.lines:
        yield _fields(line, False)
    for line in found.totals:
        yield _fields(line, True)


_TABLE = (
    ("template", "template"),
    ("cur", "currency"),
    ("sold", "packs_sold"),
    ("sales", "sold"),
    ("used", "sessions_used"),
    ("opening", "opening_unearned"),
    ("recognised", "recognised"),
    ("breakage", "breakage"),
    ("refunds", "refunds"),
    ("written off", "written_off"),
    ("closing", "closing_unearned"),
)


def _table(found: Report, start: date | datetime, end: date | datetime) -> list[str]:
    rows = [[title for title, _ in _TABLE]]
    rows += [[fields[name] for _, name in _TABLE] for fields in _rows(found)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_TABLE))]

    def shaped(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        return "  ".join(cells).rstrip()

    lines = [f"Report from {start.isoformat()} to {end.isoformat()} (the end excluded)"]
    if found.as_of is not None:
        lines.append(f"as recorded before {found.as_of.isoformat()}")
    lines += ["", shaped(rows[0]), *(shaped(row) for row in rows[1:])]
    if not found.lines:
        lines.append("(no packs)")
    lines.append("")
    lines += [_reconciliation(total) for total in found.totals]
    return lines


def _reconciliation(total: ReportLine) -> str:
    check = "balances" if total.balances else f"DOES NOT BALANCE ({total.reconciled})"
    return (
        f"{total.currency}: opening {total.opening_unearned.amount} + sold {total.sold.amount}"
        f" - recognised {total.recognised.amount} - breakage {total.breakage.amount}"
        f" - refunds {total.refunds.amount} - written off {total.written_off.amount}"
        f" = closing {total.closing_unearned.amount}: {check}"
    )


def _write_csv(out: TextIO, columns: Iterable[str], rows: Iterable[dict[str, str]]) -> None:
    writer = csv.DictWriter(out, list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _journal(ctx: Context, args: argparse.Namespace, accounts: JournalAccounts) -> None:
    lines = _reporting.journal(
        ctx.service, args.start, args.end, accounts=accounts, as_of=args.report_as_of
    )
    with Path(args.journal).open("w", newline="", encoding="utf-8") as out:
        _write_csv(out, JOURNAL_COLUMNS, (line.row() for line in lines))
    ctx.note(f"{len(lines)} journal line(s) written to {args.journal}")


def _check(args: argparse.Namespace, json_mode: bool) -> None:
    if args.csv and json_mode:
        raise UsageError("argument --csv: not allowed with argument --json", argument="--csv")
    if args.end < args.start:
        raise UsageError(
            f"argument --to: {args.end.isoformat()} is before --from {args.start.isoformat()}",
            argument="--to",
        )
    weeks = len(html_report.week_bounds(args.start, args.end))
    if args.html is not None and weeks > html_report.MAX_WEEKS:
        raise UsageError(
            f"argument --html: the page charts at most {html_report.MAX_WEEKS} weeks, "
            f"and the period has {weeks}",
            argument="--html",
        )


def _html(ctx: Context, args: argparse.Namespace) -> Report:
    """Write the page to ``--html`` (whole or not at all) and return its report."""
    page = html_report.gather(ctx.service, args.start, args.end, as_of=args.report_as_of)
    html_report.write(args.html, html_report.render(page))
    ctx.note(f"HTML report written to {args.html}")
    return page.report


def run(ctx: Context, args: argparse.Namespace) -> int:
    _check(args, ctx.json)
    accounts = JournalAccounts(**dict(args.account or ()))
    if args.html is not None:
        found = _html(ctx, args)
    else:
        found = _reporting.report(ctx.service, args.start, args.end, as_of=args.report_as_of)
    if args.journal is not None:
        _journal(ctx, args, accounts)
    if args.csv:
        _write_csv(ctx.out, LINE_COLUMNS, _rows(found))
    else:
        data = jsonable(found) | {"balances": found.balances}
        ctx.emit(data, _table(found, args.start, args.end))
    return 0


def register(top: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        top,
        "report",
        help="a period's packs sold, sessions used, revenue, breakage, refunds and liability",
        description="A period's figures per template and in total, by currency: packs sold, "
        "sessions used, revenue recognised, breakage, refunds, written off, and the unearned "
        "value (the liability) at the period's start and end, with the reconciliation line. "
        "Dates are the practice's; the period runs from the start of --from to the start of "
        "--to. With --journal, the period's double-entry lines go to a CSV file; with --html, "
        "a page with charts (one self-contained HTML file, no network, no script).",
        example="sessionpacks report --from 2026-03-01 --to 2026-04-01\n"
        "sessionpacks report --from 2026-03-01 --to 2026-04-01 --csv\n"
        "sessionpacks report --from 2026-03-01 --to 2026-04-01 --journal march.csv "
        "--account revenue=4000-Sales\n"
        "sessionpacks report --from 2026-03-01 --to 2026-04-01 --html march.html",
        run=run,
        common=common,
    )
    p.add_argument(
        "--from",
        dest="start",
        type=day,
        required=True,
        metavar="DATE",
        help="the period's first date",
    )
    p.add_argument(
        "--to",
        dest="end",
        type=day,
        required=True,
        metavar="DATE",
        help="the date after the period's last (the period stops at its start)",
    )
    p.add_argument(
        "--as-of",
        dest="report_as_of",
        type=instant,
        metavar="INSTANT",
        help="only entries recorded before this instant: the report as it was then (R23)",
    )
    p.add_argument("--csv", action="store_true", help="print one CSV row per template and total")
    p.add_argument(
        "--journal",
        type=path,
        metavar="FILE",
        help="write the period's journal (double-entry lines) to this CSV file",
    )
    p.add_argument(
        "--html",
        type=path,
        metavar="FILE",
        help="also write the report as one self-contained HTML page with charts to this file "
        f"(unearned value and sessions used per week, packs expiring in the next "
        f"{html_report.EXPIRING_DAYS} days, top templates)",
    )
    p.add_argument(
        "--account",
        action="append",
        type=journal_account,
        metavar="KEY=NAME",
        help=f"a journal account's name ({', '.join(_ACCOUNTS)}); repeat for each",
    )
