"""The command line at its edges: empty and out-of-range values, errors as JSON, messages that
quote a value once and cut it, an import that no row can stop, its temporary files on any exit,
and ``--idempotency-key`` on every verb that writes."""

from __future__ import annotations

import argparse
import contextlib
import csv
import inspect
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import _compose as compose
from sessionpacks import ports
from sessionpacks._cli import csvrows, reference, transfer, values
from sessionpacks._cli.app import build_parser
from sessionpacks._cli.base import GLOBAL_DEFAULTS, keyed
from sessionpacks._cli.signals import Stops, Terminated, stopping_cleanly
from sessionpacks.errors import SessionPacksError
from sessionpacks.service import PackService
from sessionpacks.testing.plugin import scaled

from ..cli_support import ENV, Cli, run_cli, until_rows_landed

NOW = "2026-03-02T08:00+11:00"
APPOINTMENT = ["--client", "C1", "--service", "physio", "--start", "2026-03-03T09:00+11:00",
               "--duration", "45m", "--price", "120.00 AUD"]  # fmt: skip
HEADER = [*transfer.COLUMNS, *transfer.OPTIONAL]
SERVICE_HAS_KEYS = "idempotency_key" in inspect.signature(PackService.book).parameters
needs_keys = pytest.mark.skipif(not SERVICE_HAS_KEYS, reason="needs PackService idempotency_key")


@pytest.fixture
def desk(tmp_path: Path) -> Cli:
    """A Sydney practice: template physio-10, pack P1 of C1's, C1 preferring it, A0 on it; the
    command line in-process on it (``tests/cli_support.py``)."""
    desk = Cli(tmp_path)
    desk.ok("--timezone", "Australia/Sydney", "template", "add", "physio-10", "--name", "Physio",
            "--sessions", "10", "--price", "1000 AUD", "--service", "physio")  # fmt: skip
    desk.ok("pack", "open", "C1", "--template", "physio-10", "--pack-id", "P1")
    desk.ok("client", "prefer", "C1", "--pack", "P1")
    desk.ok("appointment", "assign", "A0", *APPOINTMENT, "--pack", "P1")
    return desk


def stored(desk: Cli) -> Any:
    """What the practice holds, to compare before and after a refused command."""
    return [desk.json("pack", "show", "P1"), desk.json("client", "show", "C1")]


# 1. Empty values are usage errors ----------------------------------------------------------

READERS = {
    values.identifier, values.pack_name, values.description, values.nonblank, values.path,
    values.url, values.instant, values.day, values.duration, values.money, values.period,
    values.timezone, values.currency, values.positive_int, values.whole, values.integer,
    values.within, values.left, values.journal_account,
}  # fmt: skip


def valued_arguments() -> Iterator[tuple[str, list[str]]]:
    """(verb, argv) giving each argument that takes a value an empty one, the verb's earlier
    positionals a placeholder; the common options once, on the first verb."""
    common_seen = False
    for words, parser in reference.leaves(build_parser()):
        earlier: list[str] = []
        for action in parser._actions:
            if action.nargs == 0 or isinstance(action, argparse._HelpAction):
                continue
            if action.dest in GLOBAL_DEFAULTS and common_seen:
                continue
            name = action.option_strings[0] if action.option_strings else action.dest
            if action.option_strings:
                yield f"{words} {name}", [*words.split(), *earlier, f"{name}="]
            else:
                yield f"{words} {name}", [*words.split(), *earlier, ""]
                earlier.append("x1")
        common_seen = True


VALUED = list(valued_arguments())


def test_every_argument_that_takes_a_value_is_read_by_a_checking_reader() -> None:
    for words, parser in reference.leaves(build_parser()):
        for action in parser._actions:
            if action.nargs == 0 or isinstance(action, argparse._HelpAction):
                continue
            if action.choices is not None:
                continue  # argparse refuses anything not listed, "" included
            reader = action.type
            assert reader is not None, f"{words} {action.dest} takes any text"
            name = getattr(reader, "__name__", "")
            assert reader in READERS or name in ("tier", "bundle_line", "_seconds"), (
                f"{words} {action.dest}"
            )


@pytest.mark.parametrize(("name", "argv"), VALUED, ids=[n for n, _ in VALUED])
@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_value_is_a_usage_error_and_nothing_is_opened(
    tmp_path: Path, name: str, argv: list[str], blank: str
) -> None:
    db = tmp_path / "never.db"
    argv = [*argv[:-1], argv[-1] + blank]
    status, _, err = run_cli("--db", str(db), *argv)
    assert status == 2, err
    assert "argument " in err
    assert not db.exists()


def test_an_empty_pack_keeps_the_preference_and_clear_removes_it(desk: Cli) -> None:
    status, out, err = desk("client", "prefer", "C1", "--pack", "")
    assert (status, out) == (2, "")
    assert "argument --pack: must not be empty" in err
    for option in ("--template", "--service"):
        assert desk("client", "prefer", "C1", option, " ")[0] == 2
    assert desk.json("client", "show", "C1")["preference"] == {
        "type": "PreferPack",
        "pack_id": "P1",
    }
    assert desk.ok("client", "prefer", "C1", "--clear").out == "C1: no preference.\n"
    assert desk.json("client", "show", "C1")["preference"] is None


# 2. Every error is one JSON object under --json --------------------------------------------

JSON_ERRORS = [
    (["--json", "bogus"], 2, "UsageError", "COMMAND"),
    (["pack", "show", "--json"], 2, "UsageError", None),  # missing PACK_ID
    (["--json", "pack", "show", "P1", "--colour"], 2, "UsageError", None),
    (["pack", "show", "--json", "P1", "--now", "noon"], 2, "UsageError", "--now"),
    (["--json", "events", "--type", "Nope"], 2, "UsageError", "--type"),
    (["--json", "client", "prefer", "C1", "--pack", ""], 2, "UsageError", "--pack"),
    (["--json", "pack", "open", "C1"], 2, "UsageError", None),  # a usage error of the verb
    (["--js", "pack", "show", "nope"], 1, "NotFoundError", "pack_id"),
    (["--json", "pack", "adjust", "P1", "-20", "--reason", "x"], 1, "RefusedError", "amount"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "code", "kind", "field"), JSON_ERRORS, ids=str)
def test_every_error_is_one_json_object_on_stderr(
    desk: Cli, argv: list[str], code: int, kind: str, field: str | None
) -> None:
    status, out, err = desk(*argv)
    assert (status, out) == (code, "")
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    data = json.loads(err)
    assert list(data)[:5] == ["error", "message", "rule", "field", "value"]
    assert (data["error"], data["field"]) == (kind, field)
    assert data["message"]
    if kind == "UsageError":
        assert data["usage"].startswith("usage: sessionpacks")
    if kind == "RefusedError":
        assert (data["rule"], data["value"]) == ("R9", -20)


def test_without_json_a_usage_error_shows_the_usage(desk: Cli) -> None:
    status, _, err = desk("pack", "show", "--colour")
    assert status == 2
    assert err.startswith("usage: sessionpacks pack show")
    assert err.endswith("pack show: error: the following arguments are required: PACK_ID\n")
    status, _, err = desk("pack", "show", "P1", "--colour")
    assert status == 2
    assert err.endswith("sessionpacks: error: unrecognized arguments: --colour\n")


# 3. Messages quote a value once and cut it -------------------------------------------------


def test_the_json_value_is_the_value_not_its_repr(desk: Cli) -> None:
    status, _, err = desk("pack", "show", "nope", "--json")
    data = json.loads(err)
    assert (status, data["value"]) == (1, "nope")
    assert data["message"] == "pack_id='nope': no such pack in this practice"


@pytest.mark.parametrize(
    "argv",
    [
        ["pack", "show", "p" * 150],
        ["--timezone", "Z" * 5000, "sweep"],
        ["events", "--type", "T" * 500],
        ["pack", "show", "P1", "u" * 500],
        ["appointment", "book", "A9", *APPOINTMENT[:-1], "1" * 300],
        ["--json", "pack", "show", "q" * 150],
    ],
    ids=["library", "reader", "choice", "unrecognized", "money", "json"],
)
def test_values_in_messages_are_cut_to_80_characters(desk: Cli, argv: list[str]) -> None:
    status, _, err = desk(*argv)
    assert status in (1, 2)
    message = err.splitlines()[-1]  # the usage above lists choices, not values
    longest = max(len(run) for run in message.replace('"', " ").replace("'", " ").split())
    assert longest <= 80, err[:300]
    assert "..." in err


def test_a_library_message_is_not_quoted_again(desk: Cli) -> None:
    status, _, err = desk("pack", "show", "nope")
    assert (status, err) == (1, "sessionpacks: pack_id='nope': no such pack in this practice\n")
    status, _, err = desk("template", "add", "t", "--name", "T", "--sessions", "2",
                          "--valid-for", "a while", "--price", "1 AUD")  # fmt: skip
    assert status == 2
    assert err.count("'a while'") == 1


# 6. Values out of range --------------------------------------------------------------------

OUT_OF_RANGE = [
    (["--now", "0001-01-01T00:00+11:00", "appointment", "book", "A1", *APPOINTMENT],
     "--now", "up to but not including 2200"),
    (["--now", "9999-12-31T23:59+00:00", "sweep"], "--now", "1900-01-01T00:00Z"),
    (["appointment", "book", "A1", *APPOINTMENT[:5], "1899-12-31T23:59Z", *APPOINTMENT[6:]],
     "--start", "1900"),
    (["appointment", "book", "A1", *APPOINTMENT[:7], "99999999999999h", *APPOINTMENT[8:]],
     "--duration", "microseconds"),
    (["appointment", "book", "A1", *APPOINTMENT[:7], "PT99999999999999H", *APPOINTMENT[8:]],
     "--duration", "microseconds"),
    (["appointment", "book", "A1", *APPOINTMENT[:9], "1E+26 AUD"], "--price", "too large"),
    (["appointment", "book", "A" * 201, *APPOINTMENT], "APPOINTMENT_ID", "200 characters"),
    (["appointment", "book", "A\x01", *APPOINTMENT], "APPOINTMENT_ID", "control characters"),
    (["appointment", "book", "A\udcff", *APPOINTMENT], "APPOINTMENT_ID", "lone surrogates"),
    (["pack", "adjust", "P1", "+1", "--reason", "r" * 1001], "--reason", "1000 characters"),
    (["pack", "extend", "P1", "2200-01-01", "--reason", "x"], "DATE", "2199-12-31"),
    (["sweep", "0001-01-01"], "DATE", "1900-01-01"),
    (["events", "--since", "99999999999999999999999"], "--since", "too large"),
    (["events", "--since", "9" * 5000], "--since", "not a whole number"),
    (["template", "add", "t", "--name", "T", "--sessions", "9" * 20, "--price", "1 AUD"],
     "--sessions", "too large"),
    (["template", "add", "t", "--name", "T", "--sessions", "2", "--price", "1 AUD",
      "--valid-for", "99999999999999999999 years"], "--valid-for", "100000"),
    (["--timezone", "Z" * 5000, "sweep"], "--timezone", "IANA"),
    (["--timezone", "é" * 200, "sweep"], "--timezone", "IANA"),
    (["--db", "x\x00y", "sweep"], "--db", "NUL"),
    (["--database-url", "", "sweep"], "--database-url", "must not be empty"),
    (["simulate", "--weeks", "99999"], None, "runs past 2199-12-31"),
    (["simulate", "--clients", "9999999"], None, "at most 100,000"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "argument", "message"), OUT_OF_RANGE, ids=lambda v: str(v)[:40])
def test_values_outside_the_limits_are_usage_errors(
    desk: Cli, argv: list[str], argument: str | None, message: str
) -> None:
    before = stored(desk)
    status, out, err = desk(*argv)
    assert (status, out) == (2, ""), err
    assert message in err
    if argument is not None:
        assert f"argument {argument}:" in err
    assert "Traceback" not in err
    assert stored(desk) == before  # nothing committed, nothing poisoned
    desk.ok("appointment", "book", "A2", *APPOINTMENT)  # and the pack still works


def test_a_file_name_the_system_refuses_is_an_error_without_a_traceback(desk: Cli) -> None:
    status, _, err = desk("pack", "show", "P1", "--db", "/" + "d" * 5000 + "/x.db")
    assert status == 1
    assert err.startswith("sessionpacks: ")
    assert len(err) < 400


# 4. An import no row can stop --------------------------------------------------------------


def good(appointment_id: str, day: int) -> list[str]:
    return [appointment_id, "C1", "physio", f"2026-03-{day:02d}T09:00+11:00", "45m", "120.00",
            "AUD", "booked", "", ""]  # fmt: skip


def write_bytes(path: Path, rows: list[list[str]]) -> Path:
    """The rows as CSV; a lone surrogate in a cell is written as the byte it stands for."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([HEADER, *rows])
    path.write_bytes(text.getvalue().encode("utf-8", "surrogateescape"))
    return path


def with_cell(column: str, value: str, appointment_id: str = "BAD") -> list[str]:
    row = good(appointment_id, 10)
    row[HEADER.index(column)] = value
    return row


HOSTILE_ROWS = [
    (with_cell("duration", "99999999999999h"), "duration", "microseconds"),
    (with_cell("duration", "PT99999999999999H"), "duration", "microseconds"),
    (with_cell("start", "0001-01-01T00:00+11:00"), "start", "1900-01-01T00:00Z"),
    (with_cell("start", "9999-12-31T23:59-11:00"), "start", "1900-01-01T00:00Z"),
    (with_cell("client_id", "C\udcff"), "(encoding)", "byte 0xff in client_id is not UTF-8"),
    (with_cell("client_id", "x" * 131_073), "(csv)", "field larger than field limit"),
    (with_cell("service_id", "s\x00"), "service_id", "control characters"),
    (with_cell("price", "1e309"), "price", "too large"),
    (with_cell("price", "NaN"), "price", "not an amount of money"),
    (with_cell("price", "92233720368547758.08"), "price", "too large"),
    (with_cell("currency", "ZZZ"), "currency", "ISO 4217"),
    (with_cell("appointment_id", "A" * 201), "appointment_id", "200 characters"),
    (with_cell("status", "maybe"), "status", "must be booked"),
    (with_cell("pack_id", "\udc80"), "(encoding)", "byte 0x80"),
]


@pytest.mark.parametrize(
    ("bad", "field", "reason"), HOSTILE_ROWS, ids=[f for _, f, _ in HOSTILE_ROWS]
)
@pytest.mark.parametrize("buffer", ["1", "100000"], ids=["sorted on disk", "streamed"])
def test_a_bad_row_is_refused_and_the_import_goes_on(
    desk: Cli, tmp_path: Path, bad: list[str], field: str, reason: str, buffer: str
) -> None:
    rows = (
        [good("G1", 4), bad, good("G2", 5)]
        if buffer != "1"
        else [good("G2", 5), bad, good("G1", 4)]
    )
    source = write_bytes(tmp_path / "in.csv", rows)
    rejects = tmp_path / "rejects.csv"
    status, out, err = desk("import", str(source), "--sort-buffer", buffer,
                            "--rejects", str(rejects), "--json")  # fmt: skip
    assert status == 1, err
    assert "Traceback" not in err
    summary = json.loads(out)
    assert (summary["rows"], summary["applied"], summary["refused"]) == (3, 2, 1)
    assert summary["refused_by_field"] == {field: 1}
    [refused] = list(csv.DictReader(rejects.open(encoding="utf-8", errors="surrogateescape")))
    assert (refused["line"], refused["field"]) == ("3", field)
    assert reason in refused["reason"]
    labels = [s["appointment_id"] for s in desk.json("pack", "show", "P1")["sessions"]]
    assert labels == ["A0", "G1", "G2"]


def test_a_refused_row_is_written_back_byte_for_byte(desk: Cli, tmp_path: Path) -> None:
    source = write_bytes(tmp_path / "in.csv", [good("G1", 4), with_cell("client_id", "C\udcff")])
    rejects = tmp_path / "rejects.csv"
    assert desk("import", str(source), "--rejects", str(rejects))[0] == 1
    line = rejects.read_bytes().splitlines()[1]
    assert line.startswith(b"3,(encoding),")
    assert line.endswith(b",BAD,C\xff,physio,2026-03-10T09:00+11:00,45m,120.00,AUD,booked,,")


def test_the_summary_counts_refusals_by_field(desk: Cli, tmp_path: Path) -> None:
    rows = [with_cell("start", "someday", f"S{n}") for n in range(3)]
    massage = with_cell("service_id", "massage", "M1")
    massage[HEADER.index("template_id")] = "physio-10"  # a physio pack: refused (R4)
    rows += [massage, with_cell("duration", "long", "D1")]
    status, out, _ = desk("import", str(write_bytes(tmp_path / "in.csv", rows)))
    assert status == 1
    assert "        3  start\n" in out
    assert "        1  appointment.service_id\n" in out  # a rule of the library: its field
    assert "        1  duration\n" in out


def test_an_unreadable_header_is_a_usage_error_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    db = tmp_path / "new.db"
    rejects = tmp_path / "rejects.csv"
    for name, data in (
        ("latin1.csv", ",".join(HEADER).replace("status", "st\xe4tus").encode("latin-1")),
        ("huge.csv", b"x" * 140_000 + b"\n"),
        ("empty.csv", b""),
    ):
        argv = ["--db", str(db), "--timezone", "UTC", "import", str(tmp_path / name)]
        (tmp_path / name).write_bytes(data)
        status, _, err = run_cli(*argv, "--rejects", str(rejects))
        assert status == 2, err
        assert "header row" in err or "missing column" in err
        assert not rejects.exists()
        # A new practice is created by the first write: there was none.
        assert run_cli("--db", str(db), "template", "list").code == 2


def test_rejects_must_not_overwrite_the_file_imported(desk: Cli, tmp_path: Path) -> None:
    source = write_bytes(tmp_path / "in.csv", [good("G1", 4)])
    before = source.read_bytes()
    status, _, err = desk("import", str(source), "--rejects", str(source))
    assert status == 2
    assert "is the file being imported" in err
    assert source.read_bytes() == before


def test_standard_input_with_a_bad_byte_refuses_only_its_row(tmp_path: Path) -> None:
    source = write_bytes(tmp_path / "in.csv", [good("G1", 4), with_cell("client_id", "\udcfe")])
    command = [sys.executable, "-m", "sessionpacks", "--db", str(tmp_path / "c.db"),
               "--timezone", "Australia/Sydney", "--now", NOW, "import", "-", "--json"]  # fmt: skip
    done = subprocess.run(
        command, input=source.read_bytes(), capture_output=True, env=ENV, check=False
    )
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["no_pack"], summary["refused_by_field"]) == (1, {"(encoding)": 1})


def test_in_process_standard_input_is_read_too(
    desk: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = write_bytes(tmp_path / "in.csv", [good("G1", 4)]).read_text(encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert desk.json("import", "-")["applied"] == 1


@scaled(1.5, deadline=None)  # 300 under ci
@given(st.dictionaries(st.sampled_from(HEADER), st.text(max_size=40), max_size=len(HEADER)))
def test_parse_row_raises_only_its_own_refusals(row: dict[str, str]) -> None:
    with contextlib.suppress(csvrows.RowError, SessionPacksError):
        transfer.parse_row(2, row)


def test_a_bug_in_a_value_reader_refuses_the_row_and_says_so(
    desk: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(line: int, row: dict[str, str]) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(transfer, "parse_row", broken)
    source = write_bytes(tmp_path / "in.csv", [good("G1", 4)])
    status, out, _ = desk("import", str(source))
    assert status == 1
    assert "(row): cannot be read (ZeroDivisionError); please report this" in out


# 5. Temporary files on any exit ------------------------------------------------------------


def leftovers(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{csvrows.WORK_PREFIX}*"))


def test_the_work_folder_is_removed_when_a_row_raises(
    desk: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))

    def interrupted(*args: Any) -> Any:
        assert len(leftovers(temp)) == 1  # the folder is there while rows are applied
        raise KeyboardInterrupt

    monkeypatch.setattr(transfer, "apply_row", interrupted)
    rows = [good(f"G{n}", 4 + n) for n in (2, 1)]
    source = write_bytes(tmp_path / "in.csv", rows)
    status, out, err = desk("import", str(source), "--sort-buffer", "1", "--json")
    assert status == 130
    assert json.loads(out)["interrupted"] is True
    assert json.loads(err)["error"] == "Interrupted"  # one JSON object, as for every error
    assert leftovers(temp) == []


def test_leftovers_of_dead_runs_are_reclaimed_and_others_kept(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f"{csvrows.WORK_PREFIX}{done.stdout.strip()}-abc123"
    alive = tmp_path / f"{csvrows.WORK_PREFIX}{os.getppid()}-def456"
    unrelated = tmp_path / "sessionpacks-other"
    for folder in (dead, alive, unrelated):
        folder.mkdir()
        (folder / "run-00000.jsonl").write_text("[]\n")
    assert csvrows.reclaim(tmp_path) == [dead]
    assert leftovers(tmp_path) == [alive]
    assert unrelated.exists()


def test_signals_are_handled_only_for_the_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stopping_cleanly() as stops:
        assert signal.getsignal(signal.SIGTERM) == stops.handle
        reached = []
        # The signal is held until the block ends: every statement in it runs.
        with pytest.raises(Terminated) as stopped, stops.deferred():  # noqa: PT012
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            reached.append(True)
        assert reached == [True]
        assert stopped.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before
    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stopping_cleanly():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # left as the caller set it
    finally:
        signal.signal(signal.SIGINT, ignored)


def test_off_the_main_thread_signals_are_left_alone() -> None:
    import threading

    seen: list[object] = []

    def work() -> None:
        with stopping_cleanly() as stops:
            seen.append(isinstance(stops, Stops))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [True]


@pytest.fixture
def sigint_heard() -> Iterator[None]:
    """SIGINT handled as Python handles it by default: a run started in the background (a
    shell's ``&``, ``nohup``) inherits it ignored, which the command rightly leaves alone."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("sigint_heard")
def test_a_signal_is_raised_only_where_the_command_checks() -> None:
    # Not wherever the main thread is: a stop raised between a lock's acquire and its release
    # (coverage's tracer takes one in Python on every call of a measured function) left the
    # lock held, and the import's next call waited for it forever.
    import threading

    lock = threading.Lock()
    with stopping_cleanly() as stops:
        lock.acquire()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler has run
        lock.release()
        with pytest.raises(Terminated):
            stops.check()
        stops.check()  # acted on once
    assert lock.acquire(blocking=False)
    with pytest.raises(KeyboardInterrupt), stopping_cleanly():  # noqa: PT012
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # received after the last check: raised as the block ends


@pytest.mark.usefixtures("sigint_heard")
def test_a_signal_in_an_interruptible_block_raises_at_once() -> None:
    with stopping_cleanly() as stops:
        begun = time.monotonic()
        with pytest.raises(KeyboardInterrupt), stops.interruptible():  # noqa: PT012
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)  # a wait that reaches no check
        assert time.monotonic() - begun < 10
        assert not stops.immediate
        stops.check()  # nothing left over


def big_import(tmp_path: Path, count: int = 3000) -> tuple[list[str], dict[str, str], Path]:
    """A slow import (``count`` unsorted rows, sorted in runs of 20): its command and
    environment."""
    db = tmp_path / "clinic.db"
    setup = ["--db", str(db), "--timezone", "Australia/Sydney", "--now", NOW]
    assert run_cli(*setup, "template", "add", "t", "--name", "T", "--sessions", "9999",
                   "--price", "1 AUD").code == 0  # fmt: skip
    rows = [good(f"R{n}", 1 + n % 28) for n in range(count)]
    for n, row in enumerate(rows):
        row[3] = f"2026-03-{1 + (n * 7919) % 28:02d}T{8 + n % 10:02d}:{n % 60:02d}+11:00"
        row[HEADER.index("template_id")] = "t"
    source = write_bytes(tmp_path / "big.csv", rows)
    temp = tmp_path / "tmp"
    temp.mkdir()
    command = [sys.executable, "-m", "sessionpacks", *setup, "import", str(source),
               "--sort-buffer", "20"]  # fmt: skip
    # PYTHONFAULTHANDLER: a child that does not exit is sent SIGABRT by finished(), and its
    # threads' tracebacks land on its stderr, for the failure to show where it was stuck.
    return command, {**ENV, "TMPDIR": str(temp), "PYTHONFAULTHANDLER": "1"}, temp


def finished(running: subprocess.Popen[bytes], timeout: float = 60) -> tuple[bytes, bytes]:
    """The child's stdout and stderr once it exits; if it is still running after ``timeout``
    seconds, fail with where it is stuck (its tracebacks, dumped on SIGABRT by faulthandler)."""
    try:
        return running.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        running.send_signal(signal.SIGABRT)
        try:
            out, err = running.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            running.kill()
            out, err = running.communicate()
        pytest.fail(
            f"the child did not exit in {timeout} s; its stderr after SIGABRT:\n"
            f"{err.decode(errors='replace')}\nits stdout:\n{out.decode(errors='replace')}"
        )


def _signals_as_by_default() -> None:
    # A shell that starts pytest in the background without job control (``pytest &`` in a
    # script) has it ignore SIGINT, and a child inherits that; the import leaves an ignored
    # signal ignored, which is not what these tests are about.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawned(command: list[str], env: dict[str, str], **options: Any) -> subprocess.Popen[bytes]:
    """``command`` running, its stdout and stderr piped, SIGINT not ignored."""
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_signals_as_by_default, **options)  # fmt: skip


def started(command: list[str], env: dict[str, str], temp: Path) -> subprocess.Popen[bytes]:
    """The import, once its work folder holds sorted runs."""
    running = spawned(command, env)
    deadline = time.monotonic() + 60
    while not any(any(f.iterdir()) for f in leftovers(temp)):
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return running


@pytest.mark.slow
def test_a_killed_import_leaves_a_folder_the_next_one_removes(tmp_path: Path) -> None:
    command, env, temp = big_import(tmp_path)
    running = started(command, env, temp)
    running.kill()
    running.wait()
    [left] = leftovers(temp)
    assert left.name.startswith(f"{csvrows.WORK_PREFIX}{running.pid}-")
    mine = temp / f"{csvrows.WORK_PREFIX}{os.getpid()}-live"  # a running process's: kept
    mine.mkdir()
    small = write_bytes(tmp_path / "small.csv", [good("S1", 2)])
    again = subprocess.run([*command[:-3], str(small)], env=env, capture_output=True, check=False)
    assert again.returncode == 0, again.stderr
    assert leftovers(temp) == [mine]


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signalled_import_removes_its_folder_and_says_so(
    tmp_path: Path, signum: int, status: int
) -> None:
    command, env, temp = big_import(tmp_path)
    running = started(command, env, temp)
    running.send_signal(signum)
    out, err = finished(running)
    assert running.returncode == status, err
    assert b"Traceback" not in err
    assert b"import interrupted after" in err
    assert err.endswith(f"sessionpacks: interrupted by {signal.Signals(signum).name}\n".encode())
    assert out.startswith(b"Rows read: ")
    assert leftovers(temp) == []


@pytest.mark.slow
def test_an_import_waiting_for_standard_input_stops_on_a_signal(tmp_path: Path) -> None:
    command, env, temp = big_import(tmp_path)
    reading, writing = os.pipe()  # held open and never written: no row ever comes
    running = spawned([*command[:-3], "-"], env, stdin=reading)
    os.close(reading)
    try:
        deadline = time.monotonic() + 60
        while not leftovers(temp):
            assert running.poll() is None, running.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        running.send_signal(signal.SIGINT)
        _, err = finished(running)
    finally:
        os.close(writing)
    assert running.returncode == 130, err
    assert b"Traceback" not in err
    assert err.endswith(b"sessionpacks: interrupted by SIGINT\n")
    assert leftovers(temp) == []


def test_many_runs_are_merged_a_few_at_a_time(tmp_path: Path) -> None:
    rows = [good(f"R{n}", 1 + (n * 13) % 28) for n in range(200)]
    source = write_bytes(tmp_path / "in.csv", rows)
    work = tmp_path / "work"
    work.mkdir()
    ordered = [r.row["start"] for r in transfer.rows_in_start_order(source, 1, work)]
    assert ordered == sorted(r[3] for r in rows)
    assert len(list(work.iterdir())) <= csvrows.FAN_IN  # 200 runs merged down


# 7. --idempotency-key on every verb that writes --------------------------------------------

WRITING = {
    "template add", "template edit", "pack open", "pack adjust", "pack extend", "pack close",
    "pack void", "pack hold", "pack end-hold", "pack transfer", "pack share", "pack unshare",
    "client prefer",
    "appointment book",
    "appointment assign",
    "appointment add-to-invoice", "appointment invoice", "appointment late-cancel",
    "appointment no-show", "appointment cancel", "appointment reschedule", "appointment move",
    "sweep",
}  # fmt: skip


def test_every_writing_verb_takes_an_idempotency_key() -> None:
    keyed = {
        words
        for words, parser in reference.leaves(build_parser())
        if any(a.dest == "idempotency_key" for a in parser._actions)
    }
    assert keyed == WRITING


KEYED_CALLS = [
    ("template add", ["template", "add", "t2", "--name", "T", "--sessions", "1",
                      "--price", "1 AUD"], "add_template"),
    ("template edit", ["template", "edit", "physio-10", "--late-cancel", "consumes"],
     "edit_template"),
    ("pack open", ["pack", "open", "C2", "--template", "physio-10"], "open_pack"),
    ("pack adjust", ["pack", "adjust", "P1", "+1", "--reason", "x"], "adjust"),
    ("pack close", ["pack", "close", "P1"], "close"),
    ("pack share", ["pack", "share", "P1", "C2"], "share"),
    ("client prefer", ["client", "prefer", "C1", "--service", "physio"], "set_preference"),
    ("appointment book", ["appointment", "book", "A1", *APPOINTMENT], "book"),
    ("appointment assign", ["appointment", "assign", "A1", *APPOINTMENT, "--pack", "P1"],
     "assign"),
    ("appointment add-to-invoice", ["appointment", "add-to-invoice", "A1", *APPOINTMENT,
                                    "--pack", "P1"], "add_to_invoice"),
    ("appointment invoice", ["appointment", "invoice", "A0"], "invoice_line"),
    ("appointment cancel", ["appointment", "cancel", "A0"], "cancel"),
    ("appointment late-cancel", ["appointment", "late-cancel", "A0"], "late_cancel"),
    ("appointment no-show", ["appointment", "no-show", "A0"], "no_show"),
    ("appointment reschedule", ["appointment", "reschedule", "A0", "--to",
                                "2026-03-04T09:00+11:00"], "reschedule"),
    ("appointment move", ["appointment", "move", "A0", "--to", "P2"], "move"),
    ("sweep", ["sweep"], "sweep"),
]  # fmt: skip


@needs_keys
@pytest.mark.parametrize(
    ("verb", "argv", "method"), KEYED_CALLS, ids=[v for v, _, _ in KEYED_CALLS]
)
def test_the_key_reaches_the_service_and_a_retry_writes_nothing(
    desk: Cli, monkeypatch: pytest.MonkeyPatch, verb: str, argv: list[str], method: str
) -> None:
    desk.ok("pack", "open", "C1", "--template", "physio-10", "--pack-id", "P2")
    real = getattr(PackService, method)
    keys: list[object] = []

    def spy(self: PackService, *args: Any, **kwargs: Any) -> Any:
        keys.append(kwargs.get("idempotency_key"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PackService, method, spy)
    first = desk.ok(*argv, "--idempotency-key", f"k-{method}").out
    events = desk.ok("events", "--json").out
    assert desk.ok(*argv, "--idempotency-key", f"k-{method}").out == first
    assert desk.ok("events", "--json").out == events  # the retry wrote nothing
    assert keys == [f"k-{method}", f"k-{method}"]


def test_without_the_option_no_key_is_passed() -> None:
    assert keyed(argparse.Namespace(idempotency_key=None)) == {}
    assert keyed(argparse.Namespace()) == {}
    assert keyed(argparse.Namespace(idempotency_key="k")) == {"idempotency_key": "k"}


@needs_keys
def test_the_same_key_with_other_arguments_is_refused(desk: Cli) -> None:
    desk.ok("appointment", "book", "A1", *APPOINTMENT, "--idempotency-key", "req-1")
    status, _, err = desk("appointment", "book", "A2", *APPOINTMENT, "--idempotency-key", "req-1")
    assert status == 1
    assert err.startswith("sessionpacks: R27: idempotency_key='req-1'")
    assert desk("pack", "show", "P1", "--idempotency-key", "k")[0] == 2  # reading takes none
    assert desk("sweep", "--idempotency-key", "")[0] == 2


# 8. Smaller pieces -------------------------------------------------------------------------


def test_a_new_practice_writes_through_exactly_the_writing_methods() -> None:
    writing = {
        name
        for name, member in inspect.getmembers(ports.PackRepository, inspect.isfunction)
        if "command" in inspect.signature(member).parameters and name != "command"
    }
    assert writing == compose._NewPractice._WRITES


@scaled(1.5, deadline=None)  # 300 under ci
@given(st.text(max_size=120))
def test_the_value_readers_raise_nothing_but_usage_errors(text: str) -> None:
    for reader in sorted(READERS, key=lambda r: r.__name__):
        with contextlib.suppress(argparse.ArgumentTypeError):
            reader(text)


def test_reclaim_leaves_what_it_cannot_judge(tmp_path: Path) -> None:
    assert csvrows.reclaim(tmp_path / "missing") == []
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    a_file = tmp_path / f"{csvrows.WORK_PREFIX}{done.stdout.strip()}-file"
    a_file.write_text("not a folder")
    no_such_process = tmp_path / f"{csvrows.WORK_PREFIX}9999999999-x"
    no_such_process.mkdir()
    assert csvrows.reclaim(tmp_path) == []
    assert a_file.exists()
    assert no_such_process.exists()


@pytest.mark.parametrize(
    ("reader", "text", "message"),
    [
        (values.instant, "2026" * 30, "not an ISO 8601 date and time"),
        (values.day, "2026" * 30, "not an ISO 8601 date"),
        (values.period, "1 month " * 20, "is not a period"),
        (values.money, "12abc AUD", "not an amount of money"),
        (values.money, "NaN AUD", "not an amount of money"),
        (values.duration, "1h" * 60, "not a duration"),
        (values.positive_int, "0", "at least 1"),
    ],
)
def test_readers_refuse_with_a_message(reader: Any, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        reader(text)


def test_amounts_take_one_sign_at_most() -> None:
    from sessionpacks.model import Metric

    for metric, text in ((Metric.MONEY, "--5"), (Metric.SESSIONS, "--5"), (Metric.HOURS, "--5m")):
        with pytest.raises(argparse.ArgumentTypeError):
            values.amount_of(metric, text, "AUD", signed=True)


def test_a_value_too_long_to_show_is_named_instead() -> None:
    assert values.shown(10**5000) == "<int too long to show>"
    assert values.shown("x" * 100) == "'" + "x" * 76 + "..."
    assert len(values.shown("x" * 100)) == 80


def test_json_errors_show_values_of_any_kind(desk: Cli) -> None:
    status, _, err = desk("--json", "template", "add", "t", "--name", "T", "--sessions", "2",
                          "--price", "1 AUD", "--low-balance", "5")  # fmt: skip
    assert (status, json.loads(err)["value"]) == (1, 5)
    big = str(-(2**63 - 1))
    status, _, err = desk("--json", "pack", "adjust", "P1", "--reason", "x", "--", big)
    assert (status, json.loads(err)["value"]) == (1, big)  # past what JSON numbers hold exactly
    assert desk("pack", "show", "P1", "--", "--json")[0] == 2  # after --, a word, not the flag


def test_a_file_the_system_refuses_is_an_os_error(desk: Cli, tmp_path: Path) -> None:
    source = write_bytes(tmp_path / "in.csv", [with_cell("start", "someday")])
    status, out, err = desk("import", str(source), "--rejects", str(tmp_path), "--json")
    assert (status, out) == (1, "")
    data = json.loads(err)
    assert data["error"] == "OSError"
    assert data["message"].startswith("Is a directory: '")


@pytest.mark.slow
def test_a_signal_while_rows_are_applied_finishes_the_row_and_a_rerun_the_rest(
    tmp_path: Path,
) -> None:
    rows = 12_000  # rows land in batches of 1,000 (or a second's worth): several, not all
    command, env, temp = big_import(tmp_path, rows)
    running = started(command, env, temp)
    until_rows_landed(tmp_path / "clinic.db", running)  # well into applying the rows
    running.terminate()
    out, err = finished(running)
    assert running.returncode == 143, err
    first = out.decode()
    read = int(first.split("Rows read: ")[1].split()[0])
    assert 0 < read < rows
    assert f"applied:  {read} " in first  # every row begun was applied whole
    again = subprocess.run([*command, "--json"], env=env, capture_output=True, check=False)
    summary = json.loads(again.stdout)
    assert (summary["applied"], summary["skipped"]) == (rows - read, read)
    assert leftovers(temp) == []


def test_looking_a_new_practice_over_creates_nothing(tmp_path: Path) -> None:
    from sessionpacks.adapters.sqlite import SqliteStore

    with SqliteStore(tmp_path / "x.db") as opened:
        repository = compose.open_practice(opened, "new", "UTC")
        assert isinstance(repository, ports.PackRepository)  # looks every method up
        assert repository.templates() == []
        with pytest.raises(SessionPacksError):
            opened.practice("new")  # still new
        repository.set_preference("C1", None)
        assert opened.practice("new").practice.timezone == "UTC"
