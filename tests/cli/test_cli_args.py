"""Every argument's bad input, and the CLI's smaller pieces, run in-process through ``main``.

The same parser and error handling the console script uses, through ``run_cli``
(``tests/cli_support.py``; test_cli.py has the smoke tests of the script itself). A few tests
call ``main`` with no streams, under ``capsys``: they check that it falls back on
``sys.stdout``, ``sys.stderr`` and ``sys.argv``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sessionpacks._cli import app, reference, render, values
from sessionpacks._cli.base import common_options
from sessionpacks._cli.store import open_store
from sessionpacks._encoding import iso_duration
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.cli import build_parser, main
from sessionpacks.model import (
    Allowance,
    Appointment,
    ExpiresOn,
    Metric,
    Money,
    PackTerms,
    Period,
    PerPack,
    Policies,
)
from sessionpacks.service import PackService

from ..cli_support import run_cli

NOW = "2026-03-02T08:00+11:00"
A1 = ["A1", "--client", "C1", "--service", "physio", "--start", "2026-03-03T09:00+11:00",
      "--duration", "45m", "--price", "120.00 AUD"]  # fmt: skip
TERMS = ["--name", "T", "--sessions", "2", "--price", "1 AUD"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Sydney practice with template physio-10, pack P1 for C1 and appointment A0 on it."""
    path = tmp_path_factory.mktemp("args") / "clinic.db"
    base = ["--db", str(path), "--now", NOW]
    for args in (
        ["--timezone", "Australia/Sydney", "template", "add", "physio-10", "--name", "Physio",
         "--sessions", "10", "--price", "1000 AUD", "--service", "physio"],
        ["pack", "open", "C1", "--template", "physio-10", "--pack-id", "P1"],
        ["appointment", "assign", "A0", "--client", "C1", "--service", "physio", "--start",
         "2026-03-02T09:00+11:00", "--duration", "45m", "--price", "120 AUD", "--pack", "P1"],
    ):  # fmt: skip
        assert run_cli(*base, *args).code == 0
    return path


BAD_INPUT = [
    # common options
    (["--now", "2026-03-02T08:00", "sweep"], 2, "has no UTC offset"),
    (["--now", "yesterday", "sweep"], 2, "is not an ISO 8601 date and time"),
    (["--timezone", "Mars/Olympus", "sweep"], 2, "not an IANA time zone"),
    (["--practice", "new-one", "sweep"], 2, "practice 'new-one' is new"),
    (["--practice", " x", "--timezone", "UTC", "sweep"], 2, "without surrounding spaces"),
    # template add / edit / show
    (["template", "add", "t", "--name", "T", "--sessions", "0", "--price", "1 AUD"], 2,
     "at least 1"),
    (["template", "add", "t", "--name", "T", "--sessions", "two", "--price", "1 AUD"], 2,
     "not a whole number"),
    (["template", "add", "t", "--name", "T", "--sessions", "2"], 2, "--price"),
    (["template", "add", "t", "--sessions", "2", "--price", "1 AUD"], 2, "--name"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--hours", "1h"], 2,
     "not allowed with argument"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--price", "1"], 2,
     "has no currency"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--price", "1 AUD",
      "--currency", "USD"], 2, "but --currency says USD"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--price", "1.001 AUD"], 2,
     "minor unit"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--price", "1 XXY"], 2,
     "ISO 4217"),
    (["template", "add", "t", *TERMS, "--currency", "XXY"], 2, "ISO 4217"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--price", "1 2 AUD"], 2,
     "not an amount of money"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--price", "NaN AUD"], 2,
     "not an amount of money"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--price", "-1 AUD"], 1,
     "must be Money >= 0"),
    (["template", "add", "t", "--name", "T", "--hours", "soon", "--price", "1 AUD"], 2,
     "not a duration"),
    (["template", "add", "t", "--name", "T", "--hours", "0m", "--price", "1 AUD"], 2,
     "longer than zero"),
    (["template", "add", "t", "--name", "T", "--money", "lots", "--price", "1 AUD"], 2,
     "not an amount of money"),
    (["template", "add", "t", "--name", "T", "--money", "500 AUD", "--per-session", "1 AUD"],
     1, "a money pack is charged per pack"),
    (["template", "add", "t", *TERMS, "--valid-for", "a while"], 2, "3 months"),
    (["template", "add", "t", *TERMS, "--valid-after-first-use", "P"], 2, "3 months"),
    (["template", "add", "t", *TERMS, "--expires-on", "tomorrow"], 2, "ISO 8601 date"),
    (["template", "add", "t", *TERMS, "--valid-for", "P1M", "--expires-on", "2026-01-01"], 2,
     "not allowed with argument"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--per-session", "1 AUD",
      "--tier", "2:1"], 2, "FROM_SESSION=PRICE"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--per-session", "1 AUD",
      "--tier", "0=1"], 2, "at least 1"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--per-session", "1 AUD",
      "--tier", "1=2 AUD"], 1, "increasing session numbers"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--reduced-rate", "1 AUD"], 2,
     "need --per-session"),
    (["template", "add", "t", *TERMS, "--low-balance", "5"], 1, "low_balance_at"),
    (["template", "add", "t", *TERMS, "--low-balance", "x"], 2, "not a whole number"),
    (["template", "add", "t", *TERMS, "--remind-days", "0"], 2, "at least 1"),
    (["template", "add", "t", *TERMS, "--remind-days", "367"], 1, "remind_days_before_expiry"),
    (["template", "add", "t", *TERMS, "--remind-days", "soon"], 2, "not a whole number"),
    (["template", "add", "t", *TERMS, "--late-cancel", "maybe"], 2, "invalid choice"),
    (["template", "add", "t", *TERMS, "--no-show", "maybe"], 2, "invalid choice"),
    (["template", "add", "t", *TERMS, "--late-cancel-notice", "a day"], 2, "not a duration"),
    (["template", "add", "t", *TERMS, "--no-expiry"], 2, "unrecognized arguments"),
    (["template", "add", " t", *TERMS], 2, "without surrounding spaces"),
    (["template", "add", "physio-10", *TERMS], 1, "already exists"),
    (["template", "edit", "physio-10"], 2, "nothing to change"),
    (["template", "edit", "nope", "--name", "X"], 1, "template_id='nope'"),
    (["template", "edit", "physio-10", "--money", "5 AUD", "--per-session", "1 AUD"], 1,
     "a money pack is charged"),
    (["template", "show", "physio-10", "--version", "9"], 1, "has no such version"),
    (["template", "show", "physio-10", "--version", "x"], 2, "not a whole number"),
    (["template", "show"], 2, "TEMPLATE_ID"),
    # pack
    (["pack", "open", "C1"], 2, "give --template ID"),
    (["pack", "open", "C1", "--template", "physio-10", *TERMS], 2, "give --template ID"),
    (["pack", "open", "C1", "--template", "nope"], 1, "template_id='nope'"),
    (["pack", "open", "C1", "--template", "physio-10", "--pack-id", "P1"], 1,
     "already names a pack"),
    (["pack", "open", "C1", "--name", "X", "--sessions", "1"], 2, "--price"),
    (["pack", "list"], 2, "CLIENT_ID"),
    (["pack", "show", "nope"], 1, "pack_id='nope'"),
    (["pack", "adjust", "P1", "1"], 2, "--reason"),
    (["pack", "adjust", "P1", "one", "--reason", "x"], 2, "not a whole number of sessions"),
    (["pack", "adjust", "P1", "0", "--reason", "x"], 1, "must not be zero"),
    (["pack", "adjust", "P1", "1", "--reason", " "], 2, "argument --reason: must not be empty"),
    (["pack", "adjust", "P1", "1", "--reason", "x", "--currency", "EURO"], 2, "ISO 4217"),
    (["pack", "adjust", "nope", "1", "--reason", "x"], 1, "pack_id='nope'"),
    (["pack", "extend", "P1", "someday", "--reason", "x"], 2, "ISO 8601 date"),
    (["pack", "extend", "P1", "2026-05-01"], 2, "--reason"),
    (["pack", "extend", "P1", "2026-05-01", "--reason", "x"], 1, "no expiry date to extend"),
    (["pack", "close"], 2, "PACK_ID"),
    (["pack", "close", "nope"], 1, "pack_id='nope'"),
    (["pack", "void", "P1"], 1, "active usage"),
    (["pack", "open", "C1", "--template", "physio-10", "--share-with", ""], 2,
     "argument --share-with: must not be empty"),
    (["pack", "open", "C1", "--template", "physio-10", "--share-with", "C1"], 1,
     "shared_with='C1': is the pack's owner"),
    (["pack", "share", "P1"], 2, "CLIENT_ID"),
    (["pack", "share", "P1", "C1"], 1, "client_id='C1': owns pack P1"),
    (["pack", "share", "nope", "C2"], 1, "pack_id='nope'"),
    (["pack", "unshare", "P1", "C2"], 1, "R20: client_id='C2': pack P1 is not shared with them"),
    (["pack", "unshare", "P1", " C2"], 2, "argument CLIENT_ID: ' C2' must"),
    # client
    (["client", "prefer", "C1"], 2, "one of the arguments"),
    (["client", "prefer", "C1", "--pack", "P1", "--service", "s"], 2, "not allowed with"),
    (["client", "prefer", "C1", "--pack", "nope"], 1, "pack_id='nope'"),
    (["client", "prefer", "C2", "--pack", "P1"], 1, "belongs to client C1"),
    (["client", "prefer", "C1", "--template", "nope"], 1, "template_id='nope'"),
    (["client", "show"], 2, "CLIENT_ID"),
    # appointment
    (["appointment", "book", "A1", "--client", "C1"], 2, "required"),
    (["appointment", "book", *A1[:6], "2026-03-03 09:00", *A1[7:]], 2, "has no UTC offset"),
    (["appointment", "book", *A1[:8], "0m", *A1[9:]], 2, "longer than zero"),
    (["appointment", "book", *A1[:8], "ninety", *A1[9:]], 2, "not a duration"),
    (["appointment", "book", *A1[:10], "lots"], 2, "not an amount of money"),
    (["appointment", "book", *A1[:10], "120"], 2, "has no currency"),
    (["appointment", "book", " A1", *A1[1:]], 2, "argument APPOINTMENT_ID: ' A1' must"),
    (["appointment", "book", *A1[:2], " C1", *A1[3:]], 2, "argument --client: ' C1' must"),
    (["appointment", "choices", *A1[:4], " s", *A1[5:]], 2, "argument --service: ' s' must"),
    (["appointment", "assign", *A1], 2, "one of the arguments --pack --template is required"),
    (["appointment", "assign", *A1, "--pack", "P1", "--template", "t"], 2, "not allowed with"),
    (["appointment", "assign", *A1, "--pack", "nope"], 1, "is not a pack of client C1"),
    (["appointment", "assign", *A1[:10], "120 USD", "--pack", "P1"], 1, "R4"),
    (["appointment", "add-to-invoice", *A1, "--template", "nope"], 1, "no such template"),
    (["appointment", "invoice", "nope"], 1, "is not active on any pack"),
    (["appointment", "cancel", "A1", "--at", "noon"], 2, "ISO 8601"),
    (["appointment", "cancel", "nope"], 1, "is not active on any pack"),
    (["appointment", "late-cancel", "nope"], 1, "is not active on any pack"),
    (["appointment", "no-show", "nope"], 1, "is not active on any pack"),
    (["appointment", "reschedule", "A0"], 2, "--to"),
    (["appointment", "reschedule", "A0", "--to", "2026-03-03T09:00"], 2, "has no UTC offset"),
    (["appointment", "reschedule", "nope", "--to", NOW], 1, "is not active on any pack"),
    (["appointment", "move", "A0"], 2, "--to"),
    (["appointment", "move", "A0", "--to", "nope"], 1, "pack_id='nope'"),
    (["appointment", "move", "A0", "--client", "C1", "--to", "P1"], 2, "missing --service"),
    # events, sweep
    (["events", "--since", "-1"], 2, "must not be negative"),
    (["events", "--since", "x"], 2, "not a whole number"),
    (["events", "--limit", "0"], 2, "at least 1"),
    (["events", "--follow", "--interval", "x"], 2, "number of seconds"),
    (["events", "--follow", "--interval", "-1"], 2, "number of seconds"),
    (["events", "--follow", "--max-polls", "0"], 2, "at least 1"),
    (["events", "--type", "Nope"], 2, "invalid choice"),
    (["sweep", "May"], 2, "ISO 8601 date"),
    # import, export, simulate, demo
    (["import"], 2, "FILE"),
    (["import", "missing.csv"], 2, "no such file"),
    (["import", "x.csv", "--sort-buffer", "0"], 2, "at least 1"),
    (["export", "--format", "xml"], 2, "invalid choice"),
    (["export", "--what", "clients"], 2, "invalid choice"),
    (["export", "--format", "csv"], 2, "needs --output DIRECTORY"),
    (["simulate", "--clients", "0"], 2, "at least 1"),
    (["simulate", "--weeks", "x"], 2, "not a whole number"),
    (["simulate", "--seed", "x"], 2, "'x' is not a whole number"),
    (["simulate", "--start", "monday"], 2, "ISO 8601 date"),
    (["demo", "--database-url", "postgresql://127.0.0.1/x"], 2, "SQLite file"),
    (["bogus"], 2, "invalid choice"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "code", "message"), BAD_INPUT, ids=lambda v: str(v)[:50])
def test_bad_input_names_what_is_wrong(db: Path, args: list[str], code: int, message: str) -> None:
    before = db.read_bytes() if code == 1 else None
    run = run_cli("--db", str(db), "--now", NOW, *args, cwd=db.parent)
    assert (run.code, run.out) == (code, "")
    assert message in run.err
    assert "Traceback" not in run.err
    if before is not None:  # a refusal writes nothing (WAL files aside, the database is as it was)
        shown = run_cli("--db", str(db), "pack", "show", "P1", "--json")
        assert shown.code == 0
        assert [e["type"] for e in shown.json()["ledger"]] == ["Opened", "Used"]


def test_every_verb_has_help_with_an_example_and_the_common_options() -> None:
    common = {a.dest for a in common_options()._actions if a.dest != "help"}
    leaves = list(reference.leaves(build_parser()))
    assert len(leaves) == 36
    for name, parser in leaves:
        text = parser.format_help()
        assert "example:\n  sessionpacks " in text, name
        assert common <= {a.dest for a in parser._actions}, name


# The smaller pieces ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("1h30m", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("PT1H30M", timedelta(minutes=90)),
        ("pt45m", timedelta(minutes=45)),
        ("PT30S", timedelta(seconds=30)),
        (" 1h 30m ", timedelta(minutes=90)),
    ],
)
def test_durations_are_read_in_three_spellings(text: str, expected: timedelta) -> None:
    assert values.duration(text) == expected


@pytest.mark.parametrize("text", ["", "PT", "h", "90", "1.5h", "-", "P1D", "1m1h"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a duration"):
        values.duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=90), "PT1H30M"),
        (timedelta(hours=2), "PT2H"),
        (timedelta(seconds=5), "PT5S"),
        (timedelta(0), "PT0S"),
        (-timedelta(minutes=30), "-PT30M"),
    ],
)
def test_durations_print_as_iso_8601(value: timedelta, text: str) -> None:
    assert iso_duration(value) == text


def test_money_is_read_with_or_without_its_currency() -> None:
    assert values.money("AUD 1,200.50").resolve(None) == Money("1200.50", "AUD")
    assert values.money("120").resolve("JPY") == Money("120", "JPY")
    assert values.currency(" aud ") == "AUD"


def test_amounts_follow_the_metric() -> None:
    assert values.amount_of(Metric.SESSIONS, "-2", "AUD", signed=True) == -2
    assert values.amount_of(Metric.HOURS, "-30m", "AUD", signed=True) == -timedelta(minutes=30)
    assert values.amount_of(Metric.MONEY, "-5.50", "AUD", signed=True) == Money("-5.50", "AUD")
    for metric, text in ((Metric.SESSIONS, "-1"), (Metric.HOURS, "-1h"), (Metric.MONEY, "-1")):
        with pytest.raises(argparse.ArgumentTypeError, match="must not be negative"):
            values.amount_of(metric, text, "AUD")


def test_json_of_values_the_cli_prints() -> None:
    assert render.jsonable(Period(years=1, weeks=2)) == "P1Y2W"
    assert render.jsonable({"a": {1, 2}, "b": (Metric.HOURS,)}) == {"a": [1, 2], "b": ["hours"]}
    assert render.dumps(Money("1", "AUD")) == '{"amount": "1.00", "currency": "AUD"}'
    with pytest.raises(TypeError, match="cannot show object"):
        render.jsonable(object())


def test_a_database_failure_is_reported_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: argparse.Namespace) -> object:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr("sessionpacks._cli.store.open_store", broken)
    assert main(["--db", str(tmp_path / "x.db"), "sweep"]) == 1
    assert capsys.readouterr().err == "sessionpacks: disk I/O error\n"
    assert main(["--db", str(tmp_path / "x.db"), "sweep", "--json"]) == 1
    assert json.loads(capsys.readouterr().err) == {
        "error": "DatabaseError",
        "message": "disk I/O error",
        "rule": None,
        "field": None,
        "value": None,
    }


def test_unexpected_errors_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(args: argparse.Namespace) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr("sessionpacks._cli.store.open_store", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["sweep"])


def test_interrupt_and_closed_pipe_end_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    for error, status in ((KeyboardInterrupt(), 130), (BrokenPipeError(), 0)):

        def stop(args: argparse.Namespace, error: BaseException = error) -> object:
            raise error

        monkeypatch.setattr("sessionpacks._cli.store.open_store", stop)
        assert main(["sweep"]) == status


def test_postgres_urls_open_the_postgres_store(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []

    class FakeStore:
        def __init__(self, dsn: str, *, timeout: float) -> None:
            opened.append(dsn)
            assert timeout == 10.0

    monkeypatch.setattr("sessionpacks.adapters.postgres.PostgresStore", FakeStore, raising=False)
    monkeypatch.setenv("SESSIONPACKS_DATABASE_URL", "postgresql://127.0.0.1/clinic")
    args = argparse.Namespace(db=None, database_url=None)
    assert isinstance(open_store(args), FakeStore)
    assert opened == ["postgresql://127.0.0.1/clinic"]


def test_main_reads_sys_argv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["sessionpacks", "--help"])
    assert app.main() == 0
    assert "usage: sessionpacks" in capsys.readouterr().out


def test_the_cli_reference_in_the_docs_is_generated_from_the_parsers() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text("utf-8")
    assert reference.reference() in page, (
        "docs/cli.md is out of date: run python -m sessionpacks._cli.reference docs/cli.md"
    )
    for words, _ in reference.leaves(build_parser()):
        assert f"### `sessionpacks {words}`" in page


def test_the_reference_generator_rewrites_only_its_part(tmp_path: Path) -> None:
    page = tmp_path / "cli.md"
    page.write_text(f"intro\n{reference.BEGIN}\nold\n{reference.END}\noutro\n", "utf-8")
    assert reference.update(page) is True
    assert page.read_text("utf-8") == f"intro\n{reference.reference()}outro\n"
    assert reference.update(page) is False


def test_every_ledger_entry_and_event_reads_as_a_sentence() -> None:
    zone = ZoneInfo("Australia/Sydney")
    clock = FixedClock(datetime(2026, 3, 1, 9, tzinfo=zone))
    desk = PackService(InMemoryStore().practice("p", timezone="Australia/Sydney"), clock)
    terms = PackTerms(
        "Massage",
        Allowance.hours(timedelta(hours=2)),
        PerPack(Money("200", "AUD")),
        ExpiresOn(date(2026, 6, 1)),
        policies=Policies(no_show_consumes=True, low_balance_at=timedelta(minutes=30)),
    )
    pack = desk.open_pack("C1", terms=terms, pack_id="H1")

    def visit(appointment_id: str, day: int, minutes: int) -> Appointment:
        start = datetime(2026, 3, day, 10, tzinfo=zone)
        return Appointment(appointment_id, "C1", "massage", start, timedelta(minutes=minutes),
                           Money("100", "AUD"))  # fmt: skip

    desk.assign(visit("A1", 2, 60), pack_id="H1")
    desk.reschedule("A1", datetime(2026, 3, 3, 10, tzinfo=zone))
    desk.assign(visit("A2", 4, 60), pack_id="H1")
    desk.no_show("A2")
    desk.invoice_line("A2")
    desk.cancel("A1")
    desk.adjust("H1", -timedelta(minutes=30), "correction")
    desk.assign(visit("A3", 5, 90), pack_id="H1")
    desk.extend("H1", date(2026, 7, 1), "holiday")
    clock.set(datetime(2026, 3, 6, 9, tzinfo=zone))  # after A3: closing keeps past usages
    desk.close("H1", "moved")
    desk.open_pack("C1", terms=terms, pack_id="E1")
    clock.set(datetime(2026, 6, 1, 9, tzinfo=zone))  # a sweep cannot look ahead (R12a)
    desk.sweep(date(2026, 6, 1))
    desk.open_pack("C1", terms=terms, pack_id="V1")
    desk.void("V1", "typo")
    entries = [render.describe_entry(e) for e in desk.repository.ledger("H1")]
    assert entries == [
        "opened for C1 ad hoc, charged on its own invoice",
        "used by A1: 1h",
        "rescheduled A1 to 2026-03-03T10:00:00+11:00",
        "used by A2: 1h",
        "A2 marked no-show",
        "invoiced A2 as 'Session 2, 0m left': 0.00 AUD",
        "released A1 (cancelled)",
        "adjusted by -30m: correction",
        "used by A3: 30m, shortfall 1h",
        "expiry extended to 2026-07-01: holiday",
        "closed: moved",
    ]
    assert pack.pack_id == "H1"
    events = [render.describe_event(e) for e in desk.events_since(0)]
    assert events[1:] == [
        "#2 SessionUsed H1 (client C1) A1 is session 1, 1h left",
        "#3 UsageRescheduled H1 (client C1) A1 moved to 2026-03-03T10:00:00+11:00",
        "#4 SessionUsed H1 (client C1) A2 is session 2, 0m left",
        "#5 PackExhausted H1 (client C1)",
        "#6 UsageMarked H1 (client C1) A2 no-show",
        "#7 UsageReleased H1 (client C1) A1 released, 1h left",
        "#8 PackAdjusted H1 (client C1) -30m (correction), 30m left",
        "#9 LowBalance H1 (client C1) 30m left",
        "#10 SessionUsed H1 (client C1) A3 is session 2, 0m left",
        "#11 PackExhausted H1 (client C1)",
        "#12 ExpiryExtended H1 (client C1) to 2026-07-01",
        "#13 PackClosed H1 (client C1) with 0m left",
        "#14 PackOpened E1 (client C1) 'Massage'",
        "#15 PackExpired E1 (client C1) on 2026-06-01, 2h unused",
        "#16 PackOpened V1 (client C1) 'Massage'",
        "#17 PackVoided V1 (client C1)",
    ]
    expired = [render.describe_entry(e) for e in desk.repository.ledger("E1")]
    assert expired[1] == "expired on 2026-06-01 (sweep as of 2026-06-01)"
    voided = [render.describe_entry(e) for e in desk.repository.ledger("V1")]
    assert voided[1] == "voided: typo"
    state = desk.pack("H1")
    assert render.pack_line(state, clock.now()) == (
        "H1  Massage  closed  0m left of 1h30m, expires 2026-07-01"
    )
    clock.set(datetime(2026, 6, 2, 9, tzinfo=zone))
    assert render.pack_line(desk.pack("E1"), clock.now()) == (
        "E1  Massage  expired  2h left of 2h, expired on 2026-06-01"
    )
