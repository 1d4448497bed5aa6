"""``sessionpacks import`` and ``export``: start order in bounded memory, idempotent re-runs,
refused rows with their reasons, and exports of packs, ledgers and events."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from sessionpacks._cli.transfer import COLUMNS, rows_in_start_order

from ..cli_support import ENV, Cli

NOW = "2026-03-01T08:00+11:00"
HEADER = [*COLUMNS, "pack_id", "template_id"]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def row(a: str, client: str, start: str, status: str = "booked", **extra: str) -> list[str]:
    return [
        a, client, extra.get("service", "physio"), start, extra.get("duration", "45m"),
        extra.get("price", "120.00"), extra.get("currency", "AUD"), status,
        extra.get("pack_id", ""), extra.get("template_id", ""),
    ]  # fmt: skip


@pytest.fixture
def desk(tmp_path: Path) -> Cli:
    """Two templates, C1 preferring physio-10 and C2 pilates; the command line in-process on
    them (``tests/cli_support.py``)."""
    desk = Cli(tmp_path, now=NOW)
    for args in (
        ["--timezone", "Australia/Sydney", "template", "add", "physio-10", "--name", "Physio",
         "--sessions", "10", "--price", "1000 AUD", "--service", "physio"],
        ["template", "add", "pilates", "--name", "Pilates", "--sessions", "5", "--per-session",
         "30 AUD", "--late-cancel", "consumes"],
        ["client", "prefer", "C1", "--template", "physio-10"],
        ["client", "prefer", "C2", "--template", "pilates"],
    ):  # fmt: skip
        assert desk(*args)[0] == 0
    return desk


def test_rows_come_in_start_order_in_bounded_runs(tmp_path: Path) -> None:
    rng = random.Random(5)
    starts = [f"2026-03-{d:02d}T{h:02d}:00+11:00" for d in range(1, 29) for h in (9, 13)]
    rows = [row(f"A{n}", "C1", rng.choice(starts)) for n in range(300)]
    rows.insert(7, row("BAD", "C1", "not a date"))
    path = write_csv(tmp_path / "shuffled.csv", rows)
    work = tmp_path / "work"
    work.mkdir()
    ordered = list(rows_in_start_order(path, 40, work))
    assert len(list(work.iterdir())) == 8  # 301 rows in runs of at most 40
    assert ordered[0].row["appointment_id"] == "BAD"  # unreadable starts first, to be refused
    keys = [(r.row["start"], r.line) for r in ordered[1:]]
    assert keys == sorted(keys)  # by start, ties in file order
    assert sorted(r.line for r in ordered) == list(range(2, 303))
    in_order = sorted(rows[:7] + rows[8:], key=lambda r: r[3])
    in_place = write_csv(tmp_path / "sorted.csv", in_order)
    streamed = [(r.line, r.row["appointment_id"]) for r in rows_in_start_order(in_place, 40, work)]
    assert streamed == [(n, r[0]) for n, r in enumerate(in_order, start=2)]
    assert len(list(work.iterdir())) == 8  # a sorted file streams as it is, without new runs


def test_an_import_applies_each_row_once_in_start_order(desk: Cli, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "appointments.csv",
        [
            row("A3", "C1", "2026-03-16T09:00+11:00"),
            row("A1", "C1", "2026-03-02T09:00+11:00"),
            row("A2", "C1", "2026-03-09T09:00+11:00", duration="PT45M"),
            row("P1", "C2", "2026-03-03T18:00+11:00", "late_cancel", service="pilates"),
            row("P2", "C2", "2026-03-04T18:00+11:00", "no-show", service="pilates"),
            row("P3", "C2", "2026-03-05T18:00+11:00", "cancelled", service="pilates"),
            row("N1", "C3", "2026-03-05T10:00+11:00"),
            row("T1", "C3", "2026-03-06T10:00+11:00", template_id="physio-10"),
            row("X1", "C3", "2026-03-07T10:00+11:00", duration="1.5 fortnights"),
            row("X2", "C3", "2026-03-07T10:00+11:00", price="1.001"),
            row("X3", "C3", "2026-03-07T10:00+11:00", status="maybe"),
            row("X4", "C3", "2026-03-07T10:00+11:00", pack_id="p", template_id="t"),
            row("X5", "C3", "2026-03-07T10:00+11:00", currency="USD", template_id="physio-10"),
            row("", "C3", "2026-03-07T10:00+11:00"),
        ],
    )
    rejects = tmp_path / "refused.csv"
    status, out, _ = desk("import", str(path), "--sort-buffer", "4", "--rejects", str(rejects))
    assert status == 1  # some rows were refused
    assert "Rows read: 14" in out
    status, out, _ = desk("import", str(path), "--json")
    summary = json.loads(out)
    assert status == 1
    assert summary["rows"] == 14
    assert (summary["applied"], summary["no_pack"], summary["refused"]) == (0, 1, 6)
    assert summary["skipped"] == 7  # everything the first run applied, and the cancelled row
    first = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert [(r["appointment_id"], r["line"]) for r in first] == [
        ("X1", "10"), ("X2", "11"), ("X3", "12"), ("X4", "13"), ("X5", "14"), ("", "15"),
    ]  # fmt: skip
    assert [r["field"] for r in first] == [
        "duration", "price", "status", "pack_id", "appointment.price.currency", "appointment_id",
    ]  # fmt: skip
    reasons = " | ".join(r["reason"] for r in first)
    for phrase in ("not a duration", "minor unit", "'maybe' must be", "not both", "R4", "empty"):
        assert phrase in reasons
    assert summary["refused_by_field"] == dict.fromkeys((r["field"] for r in first), 1)
    packs = desk.json("pack", "list", "C1")
    assert [s["label"] for s in packs[0]["sessions"]] == [
        "Session 1 of 10",
        "Session 2 of 10",
        "Session 3 of 10",
    ]
    assert [s["appointment_id"] for s in packs[0]["sessions"]] == ["A1", "A2", "A3"]
    pilates = desk.json("pack", "list", "C2")[0]
    assert [(s["appointment_id"], s["mark"]) for s in pilates["sessions"]] == [
        ("P1", "late_cancel")
    ]  # the policy keeps a late cancel; a no-show and a cancellation are not recorded
    assert desk.json("pack", "list", "C3")[0]["sessions"][0]["appointment_id"] == "T1"


def test_a_changed_status_is_applied_on_the_next_run(desk: Cli, tmp_path: Path) -> None:
    booked = write_csv(
        tmp_path / "week.csv",
        [
            row("A1", "C1", "2026-03-02T09:00+11:00"),
            row("A2", "C1", "2026-03-03T09:00+11:00"),
            row("P1", "C2", "2026-03-03T18:00+11:00", service="pilates"),
            row("P2", "C2", "2026-03-04T18:00+11:00", service="pilates"),
        ],
    )
    assert desk.json("import", str(booked))["applied"] == 4
    changed = write_csv(
        tmp_path / "week2.csv",
        [
            row("A1", "C1", "2026-03-02T09:00+11:00", "cancelled"),
            row("A2", "C1", "2026-03-03T09:00+11:00", "no_show"),
            row("P1", "C2", "2026-03-03T18:00+11:00", "late_cancel", service="pilates"),
            row("P2", "C2", "2026-03-04T18:00+11:00", "no_show", service="pilates"),
        ],
    )
    assert desk.json("import", str(changed))["applied"] == 4
    again = desk.json("import", str(changed))
    assert (again["applied"], again["skipped"]) == (0, 4)  # nothing is written twice
    physio = desk.json("pack", "list", "C1")[0]
    assert physio["sessions"] == []
    pilates = desk.json("pack", "list", "C2")[0]
    assert [(s["appointment_id"], s["mark"]) for s in pilates["sessions"]] == [
        ("P1", "late_cancel")
    ]


def test_progress_shows_on_a_terminal_only(desk: Cli, tmp_path: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    path = write_csv(tmp_path / "a.csv", [row("A1", "C1", "2026-03-02T09:00+11:00")])
    shown = Terminal()
    assert desk("import", str(path), err=shown)[0] == 0
    assert shown.getvalue().startswith("\rimporting: 1 rows (1 applied, 0 skipped, 0 refused)")
    assert desk("import", str(path))[2] == ""


def test_a_file_without_the_columns_is_a_usage_error(desk: Cli, tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("id,when\nA1,2026-03-02\n", encoding="utf-8")
    status, out, err = desk("import", str(path))
    assert (status, out) == (2, "")
    assert "missing column(s) appointment_id, client_id" in err


def test_export_writes_packs_ledgers_and_events(desk: Cli, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        [row("A1", "C1", "2026-03-02T09:00+11:00"), row("A2", "C1", "2026-03-09T09:00+11:00")],
    )
    desk("import", str(path))
    status, out, _ = desk("export")
    lines = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert [line["kind"] for line in lines] == ["pack", "entry", "entry", "entry"] + ["event"] * 3
    assert lines[0]["remaining"] == 8
    status, out, _ = desk("export", "--what", "events", "--format", "csv")
    events = list(csv.DictReader(io.StringIO(out)))
    assert [(e["position"], e["type"], e["appointment_id"]) for e in events] == [
        ("1", "PackOpened", ""),
        ("2", "SessionUsed", "A1"),
        ("3", "SessionUsed", "A2"),
    ]
    assert json.loads(events[1]["details"])["number"] == 1
    folder = tmp_path / "export"
    assert desk("export", "--format", "csv", "--output", str(folder))[0] == 0
    packs = list(csv.DictReader((folder / "packs.csv").open(encoding="utf-8")))
    assert [(p["client_id"], p["remaining"], p["status"]) for p in packs] == [("C1", "8", "open")]
    ledger = list(csv.DictReader((folder / "ledgers.csv").open(encoding="utf-8")))
    assert [(e["sequence"], e["type"], e["appointment_id"]) for e in ledger] == [
        ("1", "Opened", ""),
        ("2", "Used", "A1"),
        ("3", "Used", "A2"),
    ]
    single = tmp_path / "packs.jsonl"
    assert desk("export", "--what", "packs", "--output", str(single))[0] == 0
    assert json.loads(single.read_text(encoding="utf-8"))["kind"] == "pack"


def test_the_console_script_imports_from_standard_input(tmp_path: Path) -> None:
    text = io.StringIO()
    csv.writer(text).writerows([HEADER, row("A1", "C1", "2026-03-02T09:00+11:00")])
    command = [sys.executable, "-m", "sessionpacks", "--db", str(tmp_path / "c.db"),
               "--timezone", "Australia/Sydney", "--now", NOW, "import", "-"]  # fmt: skip
    done = subprocess.run(
        command, input=text.getvalue(), capture_output=True, text=True, env=ENV, check=False
    )  # a real process: standard input read as bytes from sys.stdin.buffer
    assert done.returncode == 0, done.stderr
    assert "no pack:  1" in done.stdout
    assert done.stderr == ""  # not a terminal: no progress display
