"""``sessionpacks import --packs``: packs sold in another system opened as migrated (R19)
before the appointments, which go on from them; an exact re-run; each bad cell refused with its
column and reason while the other packs open; the packs file's own headers; usage errors that
stop the import before anything is written; a SIGKILL and a re-run end as one clean run."""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sessionpacks._cli.packfile import MADE_PREFIX, PACK_KNOWN
from sessionpacks._cli.transfer import COLUMNS, OPTIONAL
from sessionpacks.adapters.sqlite import SqliteStore

from ..cli_support import ENV, Cli

NOW = "2026-01-15T09:00+11:00"
PACK_HEADER = list(PACK_KNOWN)
HEADER = [*COLUMNS, *OPTIONAL]


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def pack(client: str, template: str, opened: str, used: str = "", **more: str) -> list[str]:
    cells = {"client_id": client, "template_id": template, "opened_on": opened, "used": used}
    cells.update(more)
    return [cells.get(c, "") for c in PACK_HEADER]


def visit(a: str, client: str, start: str, pack_id: str = "", **more: str) -> list[str]:
    return [
        a, client, "physio", start, more.get("duration", "45 min"), "$110.00", "AUD", "booked",
        pack_id, "",
    ]  # fmt: skip


@pytest.fixture
def desk(tmp_path: Path) -> Cli:
    """Three templates (E25's 10 sessions valid 3 months, 5 hours, 500.00 of credit); C1 and C4
    prefer the sessions template, C2 the hours one; C3 has no default."""
    desk = Cli(tmp_path, now=NOW)
    for args in (
        ["--timezone", "Australia/Sydney", "template", "add", "physio-10", "--name",
         "10 x Physio", "--sessions", "10", "--price", "900 AUD", "--valid-for", "3 months",
         "--service", "physio"],
        ["template", "add", "hours-5", "--name", "5 hours", "--hours", "5h", "--price",
         "500 AUD"],
        ["template", "add", "credit", "--name", "Credit", "--money", "500 AUD"],
        ["client", "prefer", "C1", "--template", "physio-10"],
        ["client", "prefer", "C2", "--template", "hours-5"],
        ["client", "prefer", "C4", "--template", "physio-10"],
    ):  # fmt: skip
        desk.ok(*args)
    return desk


def migration(tmp_path: Path) -> tuple[Path, Path]:
    packs = write(
        tmp_path / "packs.csv",
        PACK_HEADER,
        [
            pack("C1", "physio-10", "2025-11-01", "6", pack_id="OLD-1"),  # E25
            pack("C2", "hours-5", "2025-12-01", "1:30"),  # no id: one is made
            pack("C3", "physio-10", "2025-12-10", "2", pack_id="OLD-3", expires_on="2026-06-30"),
            pack("C5", "credit", "2025-12-01", "$150.00", pack_id="OLD-5"),
            pack("C4", "physio-10", "2026-01-02", "3", numbered="4", pack_id="OLD-4"),
        ],
    )
    appointments = write(
        tmp_path / "appointments.csv",
        HEADER,
        [
            visit("A1", "C1", "2026-01-20 10:00"),
            visit("A2", "C2", "2026-01-21 10:00", duration="1h"),
            visit("A3", "C3", "2026-01-22 10:00", pack_id="OLD-3"),
            visit("A4", "C1", "2026-02-02 10:00"),  # OLD-1 expired on 2026-02-01 (E25)
            visit("A5", "C5", "2026-01-23 10:00", pack_id="OLD-5"),
            visit("A6", "C4", "2026-01-24 10:00"),
        ],
    )
    return packs, appointments


def test_a_migration_with_both_files_goes_on_from_the_packs(desk: Cli, tmp_path: Path) -> None:
    packs, appointments = migration(tmp_path)
    done = desk("import", str(appointments), "--packs", str(packs))
    assert done.code == 0, done.out + done.err
    assert done.out.splitlines()[:4] == [
        "Packs read: 5",
        "  opened:   5 (as migrated from the other system)",
        "  skipped:  0 (already in the store)",
        "  refused:  0",
    ]
    assert "  applied:  6 (recorded on a pack)" in done.out
    old = desk.json("pack", "show", "OLD-1")
    assert (old["expiry_date"], old["remaining"]) == ("2026-02-01", 3)  # E25: 10 - 6 - A1
    assert desk.ok("appointment", "invoice", "A1").out == (
        "A1: Session 7 of 10 on pack OLD-1: 0.00 AUD (prepaid)\n"
    )
    assert "Session 1 of 10" in desk.ok("appointment", "invoice", "A4").out  # a new pack
    assert "on pack OLD-1" not in desk.ok("appointment", "invoice", "A4").out
    assert "Session 3 of 10 on pack OLD-3" in desk.ok("appointment", "invoice", "A3").out
    assert desk.json("pack", "show", "OLD-3")["expiry_date"] == "2026-06-30"  # its own expiry
    assert "Session 5 of 10 on pack OLD-4" in desk.ok("appointment", "invoice", "A6").out
    hours = desk.json("pack", "list", "C2")
    assert [p["pack_id"][: len(MADE_PREFIX)] for p in hours] == [MADE_PREFIX]
    assert hours[0]["remaining"] == "PT2H30M"  # 5h - 1:30 there - 1h here
    assert desk.json("pack", "show", "OLD-5")["remaining"]["amount"] == "240.00"  # 500 - 150 - 110
    events = [line["event"] for line in desk.ok("events", "--json").lines()]
    opened = [e["migrated"] for e in events if e["type"] == "PackOpened"]
    assert opened == [True] * 5 + [False]  # A4's pack is new here
    assert [e["type"] for e in events].count("SessionUsed") == 6  # none for what was used there


def test_a_rerun_changes_nothing(desk: Cli, tmp_path: Path) -> None:
    packs, appointments = migration(tmp_path)
    assert desk("import", str(appointments), "--packs", str(packs)).code == 0
    before = desk.ok("export").out
    again = desk("--json", "import", str(appointments), "--packs", str(packs)).json()
    assert again["packs"] == {
        "rows": 5, "opened": 0, "skipped": 5, "refused": 0, "refused_by_field": {},
        "examples": [],
    }  # fmt: skip
    assert (again["applied"], again["skipped"]) == (0, 6)
    assert desk.ok("export").out == before


def import_refusing(
    desk: Cli, tmp_path: Path, body: list[list[str]], bad: list[tuple[list[str], str, str]]
) -> dict[str, Any]:
    """Import the packs file ``body``; the packs summary, once each ``bad`` row (row, column,
    phrase) is in the rejects file, in order, naming its column, its reason with the phrase."""
    source = write(tmp_path / "bad.csv", PACK_HEADER, body)
    empty = write(tmp_path / "none.csv", HEADER, [])
    rejects = tmp_path / "refused-packs.csv"
    done = desk(
        "--json", "import", str(empty), "--packs", str(source), "--packs-rejects", str(rejects)
    )
    assert done.code == 1
    refused = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert list(refused[0])[:3] == ["line", "field", "reason"]
    assert [r["field"] for r in refused] == [b[1] for b in bad]
    for row, (_, field, phrase) in zip(refused, bad, strict=True):
        assert phrase in row["reason"], (field, row["reason"])
    summary: dict[str, Any] = done.json()["packs"]
    return summary


def test_each_bad_value_is_refused_with_its_column_and_the_others_open(
    desk: Cli, tmp_path: Path
) -> None:
    packs, appointments = migration(tmp_path)
    assert desk("import", str(appointments), "--packs", str(packs)).code == 0
    bad = [
        (pack("", "physio-10", "2025-11-01"), "client_id", "empty"),
        (pack("C9", "no-such", "2025-11-01"), "template_id", "no such template"),
        (pack("C9", "physio-10", "01/11/2025"), "opened_on", "not an ISO 8601 date"),
        (pack("C9", "physio-10", "2026-02-01"), "opened_on", "after today"),
        (pack("C9", "physio-10", "2025-11-01", "ten"), "used", "whole number of sessions"),
        (pack("C9", "physio-10", "2025-11-01", "10"), "used", "less than the allowance"),
        (pack("C9", "physio-10", "2025-11-01", "-1"), "used", "negative"),
        (pack("C9", "hours-5", "2025-11-01", "90"), "used", "has no unit"),
        (pack("C9", "credit", "2025-11-01", "€5.00"), "used", "not AUD's symbol"),
        (pack("C9", "credit", "2025-11-01", "-$5"), "used", "negative"),
        (pack("C9", "physio-10", "2025-11-01", numbered="-1"), "numbered", "-1"),
        (pack("C9", "physio-10", "2025-11-01", expires_on="soon"), "expires_on", "ISO 8601"),
        (pack("C9", "physio-10", "2025-11-01", pack_id="a\x00b"), "pack_id", "control"),
        (pack("C1", "physio-10", "2025-11-01", "5", pack_id="OLD-1"), "used", "R19"),
        (pack("C9", "physio-10", "2025-11-01", "6", pack_id="OLD-1"), "client_id", "open already"),
        (pack("C3", "physio-10", "2025-12-10", "2", pack_id="OLD-3"), "expires_on", "2026-06-30"),
    ]
    good = [pack(f"G{n}", "physio-10", "2025-12-01", "1", pack_id=f"NEW-{n}") for n in range(3)]
    body = [good[0], *(b[0] for b in bad[:8]), good[1], *(b[0] for b in bad[8:]), good[2]]
    summary = import_refusing(desk, tmp_path, body, bad)
    assert (summary["rows"], summary["opened"], summary["refused"]) == (19, 3, 16)
    for n in range(3):
        assert desk.json("pack", "show", f"NEW-{n}")["remaining"] == 9
    assert desk.json("pack", "list", "C9") == []  # nothing of a refused row was written
    assert desk.json("pack", "show", "OLD-1")["remaining"] == 3  # nor changed


def test_the_packs_file_may_keep_its_own_headers(desk: Cli, tmp_path: Path) -> None:
    source = write(
        tmp_path / "theirs.csv",
        ["Client", "Kind", "Bought", "Sessions used", "Notes"],
        [["C1", "physio-10", "2025-11-01", "6", "paid cash"]],
    )
    visits = write(tmp_path / "a.csv", HEADER, [visit("A1", "C1", "2026-01-20 10:00")])
    mapping = ["Client=client_id", "Kind=template_id", "Bought=opened_on", "Sessions used=used"]
    columns = [w for m in mapping for w in ("--packs-column", m)]
    assert desk("import", str(visits), "--packs", str(source), *columns).code == 0
    assert "Session 7 of 10" in desk.ok("appointment", "invoice", "A1").out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--packs-column", "Bought=opened_on"], "--packs-column needs --packs FILE"),
        (["--packs-rejects", "r.csv"], "--packs-rejects needs --packs FILE"),
        (["--packs", "nowhere.csv"], "no such file"),
        (["--packs", "{wrong}"], "missing column(s) opened_on"),
        (["--packs", "{packs}", "--packs-column", "Bought=opened"], "not a column"),
        (["--packs", "{packs}", "--packs-column", "Bought=opened_on"], "does not have"),
        (["--packs", "{packs}", "--packs-rejects", "{packs}"], "is the file being imported"),
        (["--packs", "{packs}", "--packs-rejects", "{appointments}"], "reads or writes"),
    ],
)
def test_a_packs_file_that_cannot_be_read_stops_before_anything_is_written(
    desk: Cli, tmp_path: Path, options: list[str], message: str
) -> None:
    packs, appointments = migration(tmp_path)
    wrong = write(tmp_path / "wrong.csv", ["client_id", "template_id"], [["C1", "physio-10"]])
    given = [o.format(packs=packs, wrong=wrong, appointments=appointments) for o in options]
    done = desk("import", str(appointments), *given)
    assert (done.code, done.out) == (2, "")
    assert message in done.err
    assert desk.json("pack", "list", "C1") == []


def _picture(db: Path) -> list[tuple[object, ...]]:
    with SqliteStore(db) as store:
        repo = store.practice("default")
        packs = [repo.load(e.event.pack_id) for e in repo.events_since(0)
                 if type(e.event).__name__ == "PackOpened"]  # fmt: skip
        assert repo.check_snapshots() == []
        return sorted(
            (p.pack_id, p.client_id, p.remaining_units, p.migrated, len(p.usages)) for p in packs
        )


@pytest.mark.slow
def test_a_sigkill_during_the_packs_and_a_rerun_end_as_one_clean_run(tmp_path: Path) -> None:
    seed = Cli(tmp_path)
    seed.ok("--timezone", "Australia/Sydney", "template", "add", "physio-10", "--name", "P",
            "--sessions", "10", "--price", "900 AUD")  # fmt: skip
    rows = [pack(f"C{n}", "physio-10", "2025-12-01", str(n % 9)) for n in range(4000)]
    rows += [pack(f"C{n}", "physio-10", "2025-12-01", "1") for n in range(0, 4000, 7)]  # 2nd
    source = write(tmp_path / "packs.csv", PACK_HEADER, rows)
    empty = write(tmp_path / "none.csv", HEADER, [])

    def command(db: Path) -> list[str]:
        return [sys.executable, "-m", "sessionpacks", "--db", str(db), "--now", NOW, "import",
                str(empty), "--packs", str(source)]  # fmt: skip

    clean = tmp_path / "clean.db"
    shutil.copy(seed.db, clean)
    assert subprocess.run(command(clean), env=ENV, check=False).returncode == 0
    expected = _picture(clean)
    assert len(expected) == 4000 + len(range(0, 4000, 7))
    for attempt in range(2):
        db = tmp_path / f"killed-{attempt}.db"
        shutil.copy(seed.db, db)
        running = subprocess.Popen(command(db), env=ENV)
        time.sleep(random.uniform(0.3, 2.0))
        running.kill()
        running.wait()
        again = subprocess.run(command(db), env=ENV, capture_output=True, check=False)
        assert again.returncode == 0, again.stderr
        assert _picture(db) == expected


# A pack with no template here: its terms in the row ------------------------------------------


def terms(client: str, opened: str, used: str = "", **more: str) -> list[str]:
    """A row that gives its pack's terms instead of a template_id."""
    cells = {"name": "10 x Physio (old)", "allowance": "10", "price": "$900.00",
             "currency": "AUD", **more}  # fmt: skip
    return pack(client, "", opened, used, **cells)


def terms_migration(tmp_path: Path) -> tuple[Path, Path]:
    packs = write(
        tmp_path / "terms.csv",
        PACK_HEADER,
        [
            terms(
                "C7",
                "2025-11-01",
                "6",
                services="physio; massage",
                expires_after="3 months",
                pack_id="OLD-7",
            ),
            terms(
                "C8",
                "2025-12-01",
                "45 min",
                name="Hours",
                allowance="5h",
                price="500.00 AUD",
                currency="",
            ),
            terms("C9", "2025-12-01", "$100", name="Credit", allowance="$300.00", price=""),
            terms("C1", "2025-11-01", name="physio-10"),  # named as the template of the next
            pack("C1", "physio-10", "2025-11-01", "2"),
        ],
    )
    appointments = write(
        tmp_path / "since.csv",
        HEADER,
        [visit("A1", "C7", "2026-01-20 10:00", pack_id="OLD-7")],
    )
    return packs, appointments


def test_a_row_with_terms_opens_a_migrated_pack_on_them(desk: Cli, tmp_path: Path) -> None:
    packs, appointments = terms_migration(tmp_path)
    done = desk("import", str(appointments), "--packs", str(packs))
    assert done.code == 0, done.out + done.err
    assert done.out.splitlines()[1] == "  opened:   5 (as migrated from the other system)"
    assert desk.ok("appointment", "invoice", "A1").out == (
        "A1: Session 7 of 10 on pack OLD-7: 0.00 AUD (prepaid)\n"
    )
    old = desk.json("pack", "show", "OLD-7")
    assert (old["name"], old["template_id"], old["remaining"]) == ("10 x Physio (old)", None, 3)
    assert old["expiry_date"] == "2026-02-01"  # 3 months from its opening there
    assert old["terms"]["pricing"]["price"] == {"amount": "900.00", "currency": "AUD"}
    assert old["terms"]["eligible_services"] == ["massage", "physio"]
    assert [p["remaining"] for p in desk.json("pack", "list", "C8")] == ["PT4H15M"]
    credit = desk.json("pack", "list", "C9")
    assert credit[0]["remaining"] == {"amount": "200.00", "currency": "AUD"}  # priced at face
    both = desk.json("pack", "list", "C1")  # a name like a template's id is another pack
    assert sorted((p["template_id"] or "", p["remaining"]) for p in both) == [
        ("", 10),
        ("physio-10", 8),
    ]
    assert {p["pack_id"][: len(MADE_PREFIX)] for p in [*both, *credit]} == {MADE_PREFIX}


def test_a_rerun_of_rows_with_terms_opens_nothing_twice(desk: Cli, tmp_path: Path) -> None:
    packs, appointments = terms_migration(tmp_path)
    assert desk("import", str(appointments), "--packs", str(packs)).code == 0
    before = desk.ok("export").out
    again = desk("--json", "import", str(appointments), "--packs", str(packs)).json()
    assert (again["packs"]["opened"], again["packs"]["skipped"]) == (0, 5)
    assert again["packs"]["refused"] == 0
    assert desk.ok("export").out == before


def test_each_bad_row_of_terms_is_refused_with_its_column(desk: Cli, tmp_path: Path) -> None:
    packs, appointments = terms_migration(tmp_path)
    assert desk("import", str(appointments), "--packs", str(packs)).code == 0
    bad = [
        (pack("X1", "", "2025-11-01"), "template_id", "must not be empty"),
        (terms("X2", "2025-11-01", template_id="physio-10"), "name", "not both"),
        (pack("X3", "physio-10", "2025-11-01", price="$5"), "price", "not both"),
        (pack("X4", "physio-10", "2025-11-01", currency="USD"), "currency", "in AUD"),
        (terms("X5", "2025-11-01", name=""), "name", "empty"),
        (terms("X6", "2025-11-01", allowance=""), "allowance", "empty"),
        (terms("X7", "2025-11-01", allowance="ten"), "allowance", "'ten' is not an allowance"),
        (terms("X8", "2025-11-01", allowance="0"), "allowance", "at least 1"),
        (terms("X9", "2025-11-01", "10"), "used", "less than the allowance"),
        (terms("X10", "2025-11-01", allowance="0h"), "allowance", "longer than zero"),
        (terms("X11", "2025-11-01", price=""), "price", "empty"),
        (terms("X12", "2025-11-01", price="€900.00"), "price", "not AUD's symbol"),
        (terms("X13", "2025-11-01", price="-$5"), "price", "negative"),
        (terms("X14", "2025-11-01", price="$900", currency=""), "price", "no currency"),
        (terms("X15", "2025-11-01", currency="ZZZ"), "currency", "ISO 4217"),
        (terms("X16", "2025-11-01", "1:30", allowance="$50", price=""), "used", "'1:30'"),
        (terms("X17", "2025-11-01", services="physio,,a\x00b"), "services", "control"),
        (terms("X18", "2025-11-01", services=" ; "), "services", "names no service"),
        (terms("X19", "2025-11-01", expires_after="soon"), "expires_after", "3 months"),
        (
            terms("X20", "2025-11-01", expires_after="3 months", expires_on="2026-06-30"),
            "expires_after",
            "not both",
        ),
        (terms("C7", "2025-11-01", "6", allowance="12", pack_id="OLD-7"), "allowance", "12"),
        (
            terms("C7", "2025-11-01", "6", services="physio", pack_id="OLD-7"),
            "services",
            "massage",
        ),
    ]
    good = [terms(f"G{n}", "2025-12-01", "1", pack_id=f"NEW-{n}") for n in range(2)]
    summary = import_refusing(desk, tmp_path, [good[0], *(b[0] for b in bad), good[1]], bad)
    assert (summary["opened"], summary["refused"]) == (2, len(bad))
    for n in range(2):
        assert desk.json("pack", "show", f"NEW-{n}")["remaining"] == 9
    for n in range(1, 21):
        assert desk.json("pack", "list", f"X{n}") == []  # nothing of a refused row was written
    assert desk.json("pack", "show", "OLD-7")["total"] == 10  # nor changed


def test_a_packs_file_of_terms_only_may_keep_its_own_headers(desk: Cli, tmp_path: Path) -> None:
    source = write(
        tmp_path / "theirs.csv",
        ["Client", "Bought", "Used", "Pack", "Sessions", "Paid", "Currency", "Covers", "Valid"],
        [["C7", "2025-11-01", "6", "Old physio", "10", "$900", "AUD", "physio", "3 months"]],
    )
    visits = write(tmp_path / "a.csv", HEADER, [visit("A1", "C7", "2026-01-20 10:00")])
    mapping = ["Client=client_id", "Bought=opened_on", "Used=used", "Pack=name",
               "Sessions=allowance", "Paid=price", "Currency=currency", "Covers=services",
               "Valid=expires_after"]  # fmt: skip
    columns = [w for m in mapping for w in ("--packs-column", m)]
    done = desk("--json", "import", str(visits), "--packs", str(source), *columns)
    assert done.json()["packs"]["opened"] == 1, done.out
    (made,) = desk.json("pack", "list", "C7")
    assert (made["name"], made["remaining"], made["expiry_date"]) == ("Old physio", 4, "2026-02-01")
