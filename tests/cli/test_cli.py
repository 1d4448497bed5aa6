"""The ``sessionpacks`` command line, driven as a user drives it, against a SQLite file in
``tmp_path``: in-process through ``main`` (``tests/cli_support.py``), with a few smoke tests
of the console script itself at the end. Each test groups the invocations of one workflow; bad
input is checked for its exit status, its message on stderr and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

import sessionpacks

from ..cli_support import ENV, NOW, Cli, Run, console_script
from ..pg_support import pg_dsn

__all__ = ["pg_dsn"]  # a fixture, imported for pytest to find


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _clinic(cli: Cli) -> Cli:
    cli.ok(
        "--timezone", "Australia/Sydney", "template", "add", "physio-10",
        "--name", "10 x Physio", "--sessions", "10", "--price", "1000.00 AUD",
        "--service", "physio", "--valid-for", "6 months", "--low-balance", "1",
    )  # fmt: skip
    return cli


@pytest.fixture(scope="module")
def shared_clinic(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """One clinic for the tests of bad input, which write nothing."""
    return _clinic(Cli(tmp_path_factory.mktemp("shared")))


@pytest.fixture(scope="module")
def clinic_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The files of a freshly made clinic, to copy: one subprocess instead of one per test."""
    made = _clinic(Cli(tmp_path_factory.mktemp("template")))
    return {
        suffix: Path(f"{made.db}{suffix}").read_bytes()
        for suffix in ("", "-wal")
        if Path(f"{made.db}{suffix}").exists()
    }


@pytest.fixture
def clinic(cli: Cli, clinic_files: dict[str, bytes]) -> Cli:
    """A Sydney practice with a 10-session physio template priced per pack."""
    for suffix, data in clinic_files.items():
        Path(f"{cli.db}{suffix}").write_bytes(data)
    return cli


def appointment(appointment_id: str, start: str, client: str = "C1", **extra: str) -> list[str]:
    """The options of an appointment of 45 minutes at 120.00 AUD."""
    args = [
        appointment_id, "--client", client, "--service", extra.get("service", "physio"),
        "--start", start, "--duration", extra.get("duration", "45m"),
        "--price", extra.get("price", "120.00 AUD"),
    ]  # fmt: skip
    return args


# The store and the practice ---------------------------------------------------------------


def test_a_new_practice_needs_its_time_zone_and_keeps_it(cli: Cli) -> None:
    missing = cli("template", "list")
    assert missing.code == 2
    assert "practice 'default' is new" in missing.err
    assert "--timezone" in missing.err
    assert not missing.out
    assert cli.ok("--timezone", "Australia/Sydney", "template", "list").out.startswith(
        "No templates yet"
    )
    assert cli("template", "list").code == 2  # reading created nothing
    refused = cli("--timezone", "Australia/Sydney", "pack", "show", "P1")
    assert refused.code == 1
    assert cli("template", "list").code == 2  # nor did a refused command
    cli.ok("--timezone", "Australia/Sydney", "client", "prefer", "C1", "--service", "physio")
    assert cli.ok("template", "list").out.startswith("No templates yet")  # the write did
    other = cli("--timezone", "Europe/Paris", "template", "list")
    assert other.code == 2
    assert "keeps its time zone Australia/Sydney" in other.err
    elsewhere = cli("--practice", "clinic-2", "--timezone", "Europe/Paris", "template", "list")
    assert elsewhere.code == 0


def test_the_store_comes_from_db_or_the_environment(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    env_db = tmp_path / "from-env.db"
    done = cli.raw("--timezone", "UTC", "template", "list", env={"SESSIONPACKS_DB": str(env_db)})
    assert done.code == 0
    assert env_db.exists()
    assert not (tmp_path / "sessionpacks.db").exists()
    assert cli.raw("--timezone", "UTC", "template", "list").code == 0
    assert (tmp_path / "sessionpacks.db").exists()
    both = cli.raw("--db", "x.db", "--database-url", "postgresql://127.0.0.1/x", "sweep")
    assert both.code == 2
    assert "not both" in both.err
    bad_url = cli.raw("--database-url", "mysql://127.0.0.1/x", "sweep")
    assert bad_url.code == 2
    assert "postgresql://" in bad_url.err
    (tmp_path / "junk.db").write_text("not a database at all, just text" * 100)
    junk = cli.raw("--db", "junk.db", "--timezone", "UTC", "template", "list")
    assert junk.code == 1
    assert junk.err.startswith("sessionpacks:")


def test_help_everywhere_with_an_example(cli: Cli) -> None:
    top = cli.raw("--help")
    assert top.code == 0
    assert "demo" in top.out
    assert "example:" in top.out
    verb = cli.raw("appointment", "book", "--help")
    assert verb.code == 0
    assert "example:" in verb.out
    assert "--duration" in verb.out
    nothing = cli.raw()
    assert nothing.code == 2
    assert "required" in nothing.err
    group = cli.raw("pack")
    assert group.code == 2
    assert "VERB" in group.err


# Templates -------------------------------------------------------------------------------


def test_templates_add_list_show_and_edit_into_versions(clinic: Cli) -> None:
    shown = clinic.ok("template", "show", "physio-10", "--json").json()
    assert shown["version"] == 1
    assert shown["terms"]["pricing"] == {
        "type": "PerPack",
        "price": {"amount": "1000.00", "currency": "AUD"},
    }
    assert shown["terms"]["expiry"] == {"type": "ExpiresAfterOpening", "period": "P6M"}
    edited = clinic.ok("template", "edit", "physio-10", "--price", "950", "--json").json()
    assert edited["version"] == 2
    assert edited["terms"]["pricing"]["price"]["amount"] == "950.00"
    old = clinic.ok("template", "show", "physio-10", "--version", "1").out
    assert "1000.00 AUD per pack" in old
    clinic.ok(
        "template", "add", "pilates-5", "--name", "Pilates 5", "--sessions", "5",
        "--per-session", "150", "--reduced-rate", "120", "--currency", "AUD",
        "--valid-after-first-use", "P3M", "--late-cancel", "consumes",
    )  # fmt: skip
    clinic.ok(
        "template", "add", "massage-5h", "--name", "Massage 5h", "--hours", "5h",
        "--price", "550 AUD", "--expires-on", "2026-12-31", "--no-show", "consumes",
        "--late-cancel-notice", "PT48H", "--description", "five hours",
    )  # fmt: skip
    clinic.ok(
        "template", "add", "credit", "--name", "Credit 500", "--money", "500 AUD",
        "--price", "450 AUD", "--low-balance", "50.00",
    )  # fmt: skip
    listed = clinic.ok("template", "list", "--json").json()
    assert [t["id"] for t in listed] == [
        "physio-10",
        "credit",
        "massage-5h",
        "pilates-5",
    ]  # by name
    text = clinic.ok("template", "show", "pilates-5").out
    assert "150.00 AUD for session 1, 120.00 AUD from session 2" in text
    assert "valid 3 months after first use" in text
    assert "late cancel within 24h: consumes" in text
    edit = clinic.ok(
        "template", "edit", "massage-5h", "--no-expiry", "--any-service", "--low-balance", "1h"
    ).out
    assert "never expires" in edit
    assert "any service" in edit
    assert "low balance at 1h" in edit
    reminded = clinic.ok("template", "edit", "massage-5h", "--remind-days", "14").out
    assert "reminder 14 days before expiry" in reminded
    quiet = clinic.ok("template", "edit", "massage-5h", "--remind-days", "none").out
    assert "reminder" not in quiet
    again = clinic("template", "add", "physio-10", "--name", "X", "--sessions", "1",
                   "--price", "1 AUD")  # fmt: skip
    assert again.code == 1
    assert "physio-10" in again.err
    nothing = clinic("template", "edit", "physio-10")
    assert nothing.code == 2
    assert "nothing to change" in nothing.err
    unknown = clinic("template", "show", "nope")
    assert unknown.code == 1
    assert "template_id='nope'" in unknown.err


# Packs -----------------------------------------------------------------------------------


def test_a_pack_opened_as_migrated_goes_on_at_its_next_number(clinic: Cli) -> None:
    opened = clinic.ok(
        "--now", "2026-01-15T09:00+11:00", "pack", "open", "C1", "--template", "physio-10",
        "--pack-id", "P1", "--opened-on", "2025-11-01", "--used-elsewhere", "6",
    ).out  # fmt: skip
    assert "the next session here is number 7" in opened
    assert "Invoice the pack" not in opened  # paid in the other system
    clinic.ok("--now", "2026-01-20T11:00+11:00", "appointment", "assign",
              *appointment("A1", "2026-01-20T10:00+11:00"), "--pack", "P1")  # fmt: skip
    shown = clinic.ok("pack", "show", "P1", "--json").json()
    assert [s["label"] for s in shown["sessions"]] == ["Session 7 of 10"]
    assert shown["migrated"] == {
        "opened_on": "2025-11-01",
        "used": 6,
        "numbered": None,
        "expires_on": None,
    }
    text = clinic.ok("pack", "show", "P1").out
    assert "migrated: opened 2025-11-01 elsewhere, 6 sessions used there" in text
    bad = clinic("pack", "open", "C2", "--template", "physio-10", "--used-elsewhere", "2")
    assert bad.code == 2
    assert "--opened-on" in bad.err
    over = clinic("pack", "open", "C2", "--template", "physio-10", "--opened-on", "2025-11-01",
                  "--used-elsewhere", "10")  # fmt: skip
    assert over.code == 1
    assert "migrated.used" in over.err


def test_as_of_reads_the_ledger_as_it_was(clinic: Cli) -> None:
    clinic.ok("--now", "2026-03-01T09:00+11:00", "pack", "open", "C1", "--template",
              "physio-10", "--pack-id", "P1")  # fmt: skip
    clinic.ok("--now", "2026-03-02T11:00+11:00", "appointment", "assign",
              *appointment("A1", "2026-03-02T10:00+11:00"), "--pack", "P1")  # fmt: skip
    clinic.ok("--now", "2026-03-09T11:00+11:00", "appointment", "assign",
              *appointment("A2", "2026-03-09T10:00+11:00"), "--pack", "P1")  # fmt: skip
    then = clinic.ok("pack", "show", "P1", "--as-of", "2026-03-05T12:00+11:00", "--json").json()
    assert then["remaining"] == 9
    assert [s["label"] for s in then["sessions"]] == ["Session 1 of 10"]
    assert [e["type"] for e in then["ledger"]] == ["Opened", "Used"]
    listed = clinic.ok("pack", "list", "C1", "--as-of", "2026-02-01T00:00+11:00").out
    assert "C1 has no packs." in listed
    line = clinic.ok("appointment", "invoice", "A1", "--as-of", "2026-03-05T12:00+11:00").out
    assert "Session 1 of 10" in line
    naive = clinic("pack", "show", "P1", "--as-of", "2026-03-05T12:00")
    assert naive.code == 2


def test_pack_hold_and_end_hold(clinic: Cli) -> None:
    clinic.ok("pack", "open", "C1", "--template", "physio-10", "--pack-id", "P1")
    clinic.ok("pack", "extend", "P1", "2026-10-01", "--reason", "to a date")
    held = clinic.ok("pack", "hold", "P1", "2026-04-01", "2026-04-15", "--reason", "travel")
    assert "On hold." in held.out
    assert "expires 2026-10-15, on hold 2026-04-01 to 2026-04-15" in held.out
    refused = clinic("appointment", "assign", *appointment("A1", "2026-04-10T09:00+10:00"),
                     "--pack", "P1")  # fmt: skip
    assert refused.code == 1
    assert "R22" in refused.err
    assert "on hold from 2026-04-01 until 2026-04-15 (travel)" in refused.err
    ended = clinic.ok("pack", "end-hold", "P1", "2026-04-08", "--json").json()
    assert ended["expiry_date"] == "2026-10-08"
    assert ended["holds"] == [
        {"start": "2026-04-01", "until": "2026-04-08", "reason": "travel", "counted": True}
    ]
    text = clinic.ok("pack", "show", "P1").out
    assert "on hold from 2026-04-01 until 2026-04-15: travel" in text
    assert "hold from 2026-04-01 ended, usable again from 2026-04-08" in text
    none = clinic("pack", "end-hold", "P1", "2026-05-01")
    assert none.code == 1
    assert "no hold running after it" in none.err


def test_packs_open_list_show_adjust_extend_close_void(clinic: Cli) -> None:
    opened = clinic.ok("pack", "open", "C1", "--template", "physio-10", "--pack-id", "P1")
    assert "Invoice the pack on its own: 1000.00 AUD" in opened.out
    clinic.ok(
        "pack", "open", "C1", "--pack-id", "P2", "--name", "Goodwill", "--sessions", "2",
        "--price", "0 AUD", "--not-charged",
    )  # fmt: skip
    clinic.ok("appointment", "assign", *appointment("A1", "2026-03-03T09:00+11:00"),
              "--pack", "P1")  # fmt: skip
    credited = clinic.ok("pack", "adjust", "P1", "+1", "--reason", "goodwill", "--json").json()
    assert credited["total"] == 11
    assert credited["remaining"] == 10
    debit = clinic("pack", "adjust", "P1", "-20", "--reason", "oops")
    assert debit.code == 1
    assert debit.err.startswith("sessionpacks: R9: amount=-20")
    extended = clinic.ok("pack", "extend", "P1", "2026-12-01", "--reason", "surgery", "--json")
    assert extended.json()["expiry_date"] == "2026-12-01"
    shown = clinic.ok("pack", "show", "P1", "--json").json()
    assert [s["label"] for s in shown["sessions"]] == ["Session 1 of 11"]
    assert [e["type"] for e in shown["ledger"]] == ["Opened", "Used", "Adjusted", "Extended"]
    text = clinic.ok("pack", "show", "P1").out
    assert "Session 1 of 11" in text
    assert "adjusted by +1 session: goodwill" in text
    busy = clinic("pack", "void", "P1")
    assert busy.code == 1
    assert "R10" in busy.err
    assert "active usage" in busy.err
    closed = clinic.ok("pack", "close", "P2", "--reason", "moved away")
    assert "Closed P2: 2 sessions unused" in closed.out
    clinic.ok("pack", "open", "C1", "--template", "physio-10", "--pack-id", "P3")
    clinic.ok("pack", "void", "P3", "--reason", "opened in error")
    listed = clinic.ok("pack", "list", "C1", "--json").json()
    assert [(p["pack_id"], p["status"]) for p in listed] == [
        ("P1", "open"),
        ("P2", "closed"),
        ("P3", "voided"),
    ]
    assert clinic.ok("pack", "list", "C9").out.strip() == "C9 has no packs."
    missing = clinic("pack", "show", "nope", "--json")
    assert missing.code == 1
    assert json.loads(missing.err)["field"] == "pack_id"


def test_hours_and_money_packs_take_amounts_in_their_metric(clinic: Cli) -> None:
    clinic.ok("pack", "open", "C1", "--pack-id", "H", "--name", "Massage", "--hours", "5h",
              "--price", "500 AUD")  # fmt: skip
    clinic.ok("pack", "open", "C1", "--pack-id", "M", "--name", "Credit", "--money", "500",
              "--price", "450", "--currency", "AUD")  # fmt: skip
    hours = clinic.ok("pack", "adjust", "H", "--reason", "fix", "--json", "--", "-30m").json()
    assert hours["remaining"] == "PT4H30M"
    money = clinic.ok("pack", "adjust", "M", "+50.00", "--reason", "bonus", "--json").json()
    assert money["remaining"] == {"amount": "550.00", "currency": "AUD"}
    used = clinic.ok("appointment", "assign",
                     *appointment("A1", "2026-03-03T09:00+11:00", duration="1h30m"),
                     "--pack", "H").out  # fmt: skip
    assert "Session 1, 3h left on pack H" in used
    wrong = clinic("pack", "adjust", "H", "two", "--reason", "x")
    assert wrong.code == 2
    assert "not a duration" in wrong.err


# Preferences and appointments ------------------------------------------------------------


def test_booking_with_a_preferred_pack_numbers_the_sessions(clinic: Cli) -> None:
    clinic.ok("pack", "open", "C1", "--template", "physio-10", "--pack-id", "P1")
    assert clinic.ok("client", "prefer", "C1", "--pack", "P1").out == "C1: preferred pack P1.\n"
    labels = [
        clinic.ok("appointment", "book", *appointment(a, start), "--json").json()["label"]
        for a, start in (("A1", "2026-03-03T09:00+11:00"), ("A2", "2026-03-10T09:00+11:00"))
    ]
    assert labels == ["Session 1 of 10", "Session 2 of 10"]
    early = clinic.ok("appointment", "book", *appointment("A0", "2026-02-24T09:00+11:00")).out
    assert early.startswith("A0: Session 1 of 10 on pack P1")
    line = clinic.ok("appointment", "invoice", "A2", "--json").json()
    assert line["label"] == "Session 3 of 10"
    assert line["prepaid"] is True
    assert line["amount"] == {"amount": "0.00", "currency": "AUD"}
    cancelled = clinic.ok("appointment", "cancel", "A1").out
    assert cancelled == "A1 released from pack P1; its session is given back.\n"
    assert (
        "A2: Session 3 of 10 on pack P1: 0.00 AUD (prepaid)"
        in clinic.ok("appointment", "invoice", "A2").out
    )  # an issued line keeps its label (R8)
    moved = clinic.ok("appointment", "reschedule", "A0", "--to", "2026-03-20T09:00+11:00").out
    assert moved == "A0 is now Session 2 of 10 on pack P1.\n"
    shown = clinic.ok("client", "show", "C1", "--json").json()
    assert shown["preference"] == {"type": "PreferPack", "pack_id": "P1"}
    assert shown["packs"][0]["remaining"] == 8
    assert clinic.ok("client", "prefer", "C1", "--clear").out == "C1: no preference.\n"
    unbooked = clinic.ok("appointment", "book", *appointment("A5", "2026-03-25T09:00+11:00"))
    assert "no pack applies (no explicit choice and no preference)" in unbooked.out
    clinic.ok("client", "prefer", "C2", "--service", "physio")
    service = clinic.ok("appointment", "book", *appointment("B1", "2026-03-03T10:00+11:00", "C2"))
    assert "billed at service physio's price" in service.out


def test_assign_choices_move_and_add_to_invoice(clinic: Cli) -> None:
    clinic.ok("pack", "open", "C1", "--template", "physio-10", "--pack-id", "P1")
    offered = clinic.ok("appointment", "choices", *appointment("A1", "2026-03-03T09:00+11:00"))
    assert "1. 10 x Physio (P1), 10 left  [--pack P1]" in offered.out
    assert "2. new pack: 10 x Physio  [--template physio-10]" in offered.out
    new = clinic.ok("appointment", "assign", *appointment("A1", "2026-03-03T09:00+11:00"),
                    "--template", "physio-10", "--json").json()  # fmt: skip
    assert new["opened"] is True
    assert new["label"] == "Session 1 of 10"
    assert [e["event"]["type"] if "event" in e else e["type"] for e in new["events"]] == [
        "PackOpened",
        "SessionUsed",
    ]
    moved = clinic.ok("appointment", "move", "A1", "--to", "P1").out
    assert moved.startswith("A1: Session 1 of 10 on pack P1")
    twice = clinic("appointment", "assign", *appointment("A1", "2026-03-03T09:00+11:00"),
                   "--pack", new["pack_id"])  # fmt: skip
    assert twice.code == 1
    assert "R6" in twice.err
    assert "move it instead" in twice.err
    line = clinic.ok("appointment", "add-to-invoice",
                     *appointment("D1", "2026-02-27T16:00+11:00", "C2"),
                     "--template", "physio-10").out  # fmt: skip
    assert "Session 1 of 10" in line
    assert "1000.00 AUD (includes the pack price)" in line
    full = clinic.ok("appointment", "move", *appointment("A2", "2026-03-04T09:00+11:00"),
                     "--to", "P1").out  # fmt: skip
    assert full.startswith("A2: Session 2 of 10 on pack P1")
    partial = clinic("appointment", "move", "A2", "--client", "C1", "--to", "P1")
    assert partial.code == 2
    assert "missing --service" in partial.err
    nowhere = clinic("appointment", "move", "Z9", "--to", "P1")
    assert nowhere.code == 1
    assert "is not on any pack" in nowhere.err
    not_on_pack = clinic("appointment", "invoice", "Z9")
    assert not_on_pack.code == 1
    assert "appointment_id='Z9'" in not_on_pack.err


def test_late_cancel_and_no_show_follow_the_policy(clinic: Cli) -> None:
    clinic.ok(
        "template",
        "add",
        "pilates-5",
        "--name",
        "Pilates 5",
        "--sessions",
        "5",
        "--per-session",
        "150 AUD",
        "--tier",
        "2=120 AUD",
        "--late-cancel",
        "consumes",
    )
    clinic.ok("client", "prefer", "C1", "--template", "pilates-5")
    for a, day in (("A1", "03"), ("A2", "10"), ("A3", "17")):
        clinic.ok(
            "appointment", "book", *appointment(a, f"2026-03-{day}T18:00+11:00", service="pilates")
        )
    late = clinic.ok("appointment", "cancel", "A1", "--at", "2026-03-03T15:00+11:00").out
    assert "still uses Session 1 of 5" in late
    assert "marked late-cancel" in late
    called = clinic.ok("appointment", "late-cancel", "A2").out
    assert "marked late-cancel" in called
    released = clinic.ok("appointment", "no-show", "A3", "--json").json()
    assert released["active"] is False
    prices = [
        clinic.ok("appointment", "invoice", a, "--json").json()["amount"]["amount"]
        for a in ("A1", "A2")
    ]
    assert prices == ["150.00", "120.00"]  # a reduced rate after the first session (E4)


# Events and the sweep --------------------------------------------------------------------


def test_events_since_a_position_and_the_expiry_sweep(clinic: Cli) -> None:
    clinic.ok("template", "add", "short", "--name", "Short", "--sessions", "2",
              "--price", "200 AUD", "--expires-on", "2026-04-16")  # fmt: skip
    clinic.ok("pack", "open", "C1", "--template", "short", "--pack-id", "S1")
    clinic.ok("appointment", "assign", *appointment("A1", "2026-03-03T09:00+11:00"),
              "--pack", "S1")  # fmt: skip
    swept = clinic.ok("sweep", "2026-04-16", "--json", now="2026-04-16T09:00+10:00").json()
    assert [e["event"]["type"] for e in swept["events"]] == ["PackExpired"]
    assert clinic.ok("sweep", "2026-04-16", now="2026-04-16T09:00+10:00").out.startswith(
        "Expiry sweep as of 2026-04-16: 0 pack(s) expired."
    )
    today = clinic.ok("sweep", now="2026-04-20T09:00+10:00").out
    assert "as of 2026-04-20" in today
    stream = clinic.ok("events", "--json").lines()
    assert [e["position"] for e in stream] == [1, 2, 3]
    assert [e["event"]["type"] for e in stream] == ["PackOpened", "SessionUsed", "PackExpired"]
    tail = clinic.ok("events", "--since", "2", "--json").lines()
    assert [e["event"]["event_id"] for e in tail] == ["S1#3.1"]
    only = clinic.ok("events", "--type", "PackExpired").out
    assert only.startswith("#3 PackExpired S1 (client C1) on 2026-04-16, 1 session unused")
    first = clinic.ok("events", "--limit", "1", "--json").lines()
    assert len(first) == 1
    followed = clinic.ok(
        "events", "--since", "1", "--follow", "--interval", "0", "--max-polls", "3", "--json"
    ).lines()
    assert [e["position"] for e in followed] == [2, 3]
    text = clinic.ok("events")
    assert "continue with --since 3" in text.err


# The demo and the simulation -------------------------------------------------------------


def test_the_demo_is_a_deterministic_walkthrough_in_its_own_file(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    first = cli.raw("demo")
    assert first.code == 0, first.err
    path = tmp_path / "sessionpacks-demo.db"
    assert f"Data: {path} (deleted and recreated on every run)." in first.out
    for phrase in (
        "Way 1: Alice buys a pack",
        "Way 2: assign an open pack",
        "Way 3: add a pack to the invoice of an appointment that already happened",
        "A template opens a new pack on an appointment (Chloe)",
        "Session 2, 0m left on pack PK-0006 (2 hours of massage)",
        "plus 31.67 AUD for 30m not covered",
        "plus 30.00 AUD for 30.00 AUD not covered",
        "F-601: Session 7 of 10 on pack PK-0008",
        "A booking on 20 April is refused: pack PK-0008 is on hold",
        "It carries 300.00 AUD unearned",
        "shared by hana with leo",
        "H-701: Session 1 of 10 on pack PK-0010",
        "L-801: Session 2 of 10 on pack PK-0010 (10 x Physio) — preferred pack PK-0010.",
        "Not yet: appointment L-802 on 2026-04-21T16:00:00+10:00 uses pack PK-0010",
        "Session 2 of 10          L-801      Tue 14 Apr 2026 16:00  physio for leo",
        "I-901: Massage 1 of 2 on pack PK-0011 (Physio and massage)",
        "6 sessions left of 7 sessions (Physio 5 of 5 left, Massage 1 of 2 left)",
        "A third massage is refused: the bundle's line Massage has nothing left",
        "I-904: Physio 1 of 5 on pack PK-0011",
        "A-102: Session 2 of 10 on pack PK-0001 (10 x Physio) — preferred pack PK-0001.",
        "C-302: Session 2 of 5 on pack PK-0003: 120.00 AUD",
        "#17 PackExhausted PK-0002 (client ben)",
        "Task PK-0002:PackExhausted:3: call Ben Carter",
        "Task PK-0005:ExpiringSoon:2026-05-03: remind Ben Carter",
        "Task PK-0005:PackExpired:2026-05-03: tell Ben Carter",
        "0 new task(s)",
    ):
        assert phrase in first.out
    second = cli.raw("demo")
    assert second.out == first.out  # it starts clean every time
    shown = cli.raw("--db", str(path), "--practice", "demo-clinic", "pack", "show", "PK-0001")
    assert "Session 1 of 10" in shown.out
    data = cli.raw("demo", "--db", "other.db", "--json")
    assert data.code == 0
    assert [(t["occurrence"], t["event_id"]) for t in data.json()["tasks"]] == [
        ("PK-0002:PackExhausted:3", "PK-0002#4.2"),
        ("PK-0006:PackExhausted:7200000000", "PK-0006#3.2"),
        ("PK-0007:PackExhausted:30000", "PK-0007#4.2"),
        ("PK-0005:ExpiringSoon:2026-05-03", "PK-0005#3.1"),
        ("PK-0005:PackExpired:2026-05-03", "PK-0005#4.1"),
    ]
    mine = tmp_path / "mine.db"
    made = cli.raw("--db", str(mine), "--timezone", "UTC", "client", "prefer", "C1", "--clear")
    assert made.code == 0
    refused = cli.raw("demo", "--db", str(mine))
    assert refused.code == 2
    assert "is not a demo database" in refused.err
    assert cli.raw("--db", str(mine), "template", "list").code == 0  # left alone
    url = cli.raw("demo", "--database-url", "postgresql://127.0.0.1/x")
    assert url.code == 2
    assert "SQLite file" in url.err


def test_simulate_is_reproducible_from_its_seed(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    args = ("simulate", "--clients", "12", "--weeks", "10", "--seed", "3", "--json")
    first, second = cli.raw(*args).json(), cli.raw(*args).json()
    for run in (first, second):
        run.pop("seconds")
    assert first == second
    assert first["counts"]["appointments booked"] > 40
    assert first["events"]["PackOpened"] >= 3
    assert first["events"]["SessionUsed"] > 20
    assert {"PackExhausted", "PackExpired"} <= set(first["events"])
    text = cli.raw("simulate", "--clients", "3", "--weeks", "1", "--db", "s.db")
    assert text.code == 0
    assert "Took " in text.out
    assert "operations" in text.out


# Bad input: exit 2 for the command line, 1 for the library's refusal ---------------------
# Every argument's bad input is checked in test_cli_args.py; these few show each kind reported
# on stderr with its exit status, no traceback (the console script's own: the smoke tests).

BAD_INPUT = [
    (["--now", "2026-03-02T08:00", "sweep"], 2, "has no UTC offset"),
    (["template", "add", "t", "--name", "T", "--sessions", "2"], 2, "--price"),
    (["appointment", "book", *appointment("A1", "2026-03-03T09:00+11:00", price="lots")], 2,
     "not an amount of money"),
    (["pack", "open", "C1", "--template", "nope"], 1, "sessionpacks: template_id='nope'"),
    (["appointment", "no-show", "A1"], 1, "is not active on any pack"),
    (["events", "--since", "-1"], 2, "must not be negative"),
    (["bogus"], 2, "invalid choice"),
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_input_runs(shared_clinic: Cli) -> dict[tuple[str, ...], Run]:
    """Every case of BAD_INPUT, run once on the shared clinic: they write nothing."""
    cases = [tuple(args) for args, _, _ in BAD_INPUT]
    return {case: shared_clinic(*case) for case in cases}


@pytest.mark.parametrize(("args", "code", "message"), BAD_INPUT, ids=lambda v: str(v)[:40])
def test_bad_input_is_an_error_on_stderr_without_a_traceback(
    bad_input_runs: dict[tuple[str, ...], Run], args: list[str], code: int, message: str
) -> None:
    run = bad_input_runs[tuple(args)]
    assert (run.code, run.out) == (code, "")
    assert message in run.err


def test_errors_are_json_on_stderr_with_json(shared_clinic: Cli) -> None:
    run = shared_clinic("pack", "extend", "nope", "2026-05-01", "--reason", "x", "--json")
    assert run.code == 1
    assert json.loads(run.err) == {
        "error": "NotFoundError",
        "message": "pack_id='nope': no such pack in this practice",
        "rule": None,
        "field": "pack_id",
        "value": "nope",  # the value itself: the message quotes it, the JSON does not again
    }


# PostgreSQL ------------------------------------------------------------------------------


def _url(dsn: str) -> str:
    """``dsn`` as a postgresql:// URL, which is what --database-url takes."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    params = conninfo_to_dict(dsn)
    user, host = params.get("user", "postgres"), params.get("host", "127.0.0.1")
    port, name = params.get("port", 5432), params.get("dbname", "postgres")
    return f"postgresql://{user}@{host}:{port}/{name}"


@pytest.mark.postgres
def test_the_command_line_works_on_postgresql(tmp_path: Path, pg_dsn: str) -> None:
    cli = Cli(tmp_path)
    # The throwaway server's rows of this run only: a name kept apart from earlier runs' on a
    # server left running, not test data (nothing asserted depends on it).
    practice = f"cli-{uuid.uuid4().hex[:12]}"
    base = ("--database-url", _url(pg_dsn), "--practice", practice, "--now", NOW)
    added = cli.raw(*base, "--timezone", "Australia/Sydney", "template", "add", "t1",
                    "--name", "Three", "--sessions", "3", "--price", "90 AUD")  # fmt: skip
    assert added.code == 0, added.err
    assert cli.raw(*base, "client", "prefer", "C1", "--template", "t1").code == 0
    booked = cli.raw(*base, "appointment", "book",
                     *appointment("A1", "2026-03-03T09:00+11:00"), "--json")  # fmt: skip
    assert booked.json()["label"] == "Session 1 of 3"
    events = cli.raw(*base, "events", "--json").lines()
    assert [e["event"]["type"] for e in events] == ["PackOpened", "SessionUsed"]
    assert not (tmp_path / "sessionpacks.db").exists()


# The console script itself: a few smoke tests in a real process ----------------------------
# Everything above runs in-process; these check that the installed entry point and
# ``python -m sessionpacks`` reach the same ``main``, with its exit statuses.


def _script(*args: str, cwd: Path, module: bool = False) -> Run:
    command = [sys.executable, "-m", "sessionpacks"] if module else [console_script()]
    done = subprocess.run(
        [*command, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return Run(done.returncode, done.stdout, done.stderr)


def test_the_console_script_prints_its_version(tmp_path: Path) -> None:
    run = _script("--version", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (0, f"sessionpacks {sessionpacks.__version__}\n", "")


def test_the_console_script_prints_its_help(tmp_path: Path) -> None:
    run = _script("--help", cwd=tmp_path)
    assert run.code == 0
    assert run.out.startswith("usage: sessionpacks")
    assert "example:" in run.out


def test_the_console_script_writes_and_reads_a_sqlite_file(tmp_path: Path) -> None:
    base = ("--db", "clinic.db", "--now", NOW)
    terms = ("--name", "Three", "--sessions", "3", "--price", "90 AUD")
    added = _script(*base, "--timezone", "UTC", "template", "add", "t1", *terms, cwd=tmp_path)
    assert added.code == 0, added.err
    shown = _script(*base, "template", "show", "t1", "--json", cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert (shown.json()["version"], shown.json()["terms"]["name"]) == (1, "Three")
    assert (tmp_path / "clinic.db").exists()


def test_python_m_sessionpacks_exits_with_the_status_of_the_error(tmp_path: Path) -> None:
    usage = _script("bogus", cwd=tmp_path, module=True)
    assert (usage.code, usage.out) == (2, "")
    assert "invalid choice" in usage.err
    refused = _script("--db", "c.db", "--timezone", "UTC", "pack", "show", "nope",
                      cwd=tmp_path, module=True)  # fmt: skip
    assert (refused.code, refused.out) == (1, "")
    assert refused.err == "sessionpacks: pack_id='nope': no such pack in this practice\n"
