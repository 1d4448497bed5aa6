"""``sessionpacks import`` reads a spreadsheet's own spellings (issue 9, item 1;
``sessionpacks._cli.spellings``): naive local times in the practice's zone with the DST rule,
money with symbols and grouped thousands, durations as people write them, and ``--column``
mappings of the file's headers."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, Inexact
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks._cli.spellings import local_instant, read_duration, read_price
from sessionpacks._cli.transfer import COLUMNS, OPTIONAL
from sessionpacks._limits import INT64_MAX
from sessionpacks.model import Money
from sessionpacks.testing.plugin import scaled

from ..cli_support import Cli, run_cli

SYDNEY = ZoneInfo("Australia/Sydney")
NOW = "2026-03-01T08:00+11:00"
HEADER = [*COLUMNS, *OPTIONAL]
THEIRS = ["Appointment ID", "Client", "Service", "When", "Length", "Fee", "Currency", "Status"]
MAPPING = [f"{t}={o}" for t, o in zip(THEIRS, COLUMNS, strict=True)]


@pytest.fixture
def desk(tmp_path: Path) -> Cli:
    """A Sydney practice with an hours pack template, C1 preferring it."""
    desk = Cli(tmp_path, now=NOW)
    desk.ok("--timezone", "Australia/Sydney", "template", "add", "hours-10", "--name", "Hours",
            "--hours", "10h", "--price", "1000 AUD", "--service", "physio")  # fmt: skip
    desk.ok("client", "prefer", "C1", "--template", "hours-10")
    return desk


def write_csv(path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([header, *rows])
    return path


def row(a: str, start: str, duration: str = "45m", price: str = "110.00") -> list[str]:
    return [a, "C1", "physio", start, duration, price, "AUD", "booked", "", ""]


def used(desk: Cli) -> dict[str, Any]:
    """Each appointment recorded on a pack, by id: its start, duration and price as stored."""
    found = {}
    for line in desk("export", "--what", "ledgers").lines():
        if line["type"] == "Used":
            found[line["appointment"]["id"]] = line["appointment"]
    return found


def refusals(path: Path) -> dict[str, tuple[str, str]]:
    return {
        r["appointment_id"]: (r["field"], r["reason"])
        for r in csv.DictReader(path.open(encoding="utf-8"))
    }


# Naive times and daylight saving ------------------------------------------------------------


def test_a_naive_start_is_read_in_the_practice_zone(desk: Cli, tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "in.csv",
        [
            row("N1", "2026-03-02 09:00"),
            row("N2", "2026-03-03T09:00:00"),
            row("N3", "2026-06-02 09:00"),  # winter: +10:00
            row("O1", "2026-03-04T09:00+11:00"),  # with an offset: as it always was
            row("O2", "2026-03-04T22:00Z"),
        ],
    )
    assert desk.json("import", str(source))["applied"] == 5
    starts = {a: u["start"] for a, u in used(desk).items()}
    assert starts == {
        "N1": "2026-03-02T09:00:00+11:00",
        "N2": "2026-03-03T09:00:00+11:00",
        "N3": "2026-06-02T09:00:00+10:00",
        "O1": "2026-03-04T09:00:00+11:00",
        "O2": "2026-03-04T22:00:00+00:00",
    }


def test_a_repeated_local_time_is_its_first_occurrence(desk: Cli, tmp_path: Path) -> None:
    # 2026-04-05 in Sydney: 03:00 daylight time goes back to 02:00 standard time.
    source = write_csv(
        tmp_path / "in.csv",
        [
            row("R1", "2026-04-05 02:00"),
            row("R2", "2026-04-05 02:30"),
            row("R3", "2026-04-05T02:30+10:00"),  # the second 02:30, written with its offset
            row("R4", "2026-04-05 03:00"),
        ],
    )
    assert desk.json("import", str(source))["applied"] == 4
    starts = {a: u["start"] for a, u in used(desk).items()}
    assert starts == {
        "R1": "2026-04-05T02:00:00+11:00",
        "R2": "2026-04-05T02:30:00+11:00",
        "R3": "2026-04-05T02:30:00+10:00",
        "R4": "2026-04-05T03:00:00+10:00",
    }
    labels = [s["appointment_id"] for s in desk.json("pack", "list", "C1")[0]["sessions"]]
    assert labels == ["R1", "R2", "R3", "R4"]  # in the order the instants came


def test_a_skipped_local_time_refuses_its_row(desk: Cli, tmp_path: Path) -> None:
    # 2026-10-04 in Sydney: 02:00 standard time jumps to 03:00 daylight time.
    source = write_csv(
        tmp_path / "in.csv",
        [
            row("S0", "2026-10-04 01:59"),
            row("S1", "2026-10-04 02:00"),
            row("S2", "2026-10-04 02:30"),
            row("S3", "2026-10-04 02:59:59"),
            row("S4", "2026-10-04 03:00"),
        ],
    )
    rejects = tmp_path / "refused.csv"
    status, out, _ = desk("import", str(source), "--rejects", str(rejects), "--json")
    assert status == 1
    summary = json.loads(out)
    assert (summary["applied"], summary["refused_by_field"]) == (2, {"start": 3})
    refused = refusals(rejects)
    assert sorted(refused) == ["S1", "S2", "S3"]
    field, reason = refused["S2"]
    assert field == "start"
    assert reason == (
        "start: '2026-10-04 02:30' does not exist in Australia/Sydney: the clocks went forward "
        "over it (UTC+10:00 to UTC+11:00); write the start with its UTC offset, or the time "
        "the session really began"
    )
    starts = {a: u["start"] for a, u in used(desk).items()}
    assert starts == {"S0": "2026-10-04T01:59:00+10:00", "S4": "2026-10-04T03:00:00+11:00"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-04-05 01:59", "2026-04-05T01:59:00+11:00"),
        ("2026-04-05 02:00", "2026-04-05T02:00:00+11:00"),
        ("2026-04-05 02:59:59", "2026-04-05T02:59:59+11:00"),
        ("2026-04-05 03:00", "2026-04-05T03:00:00+10:00"),
        ("2026-10-04 01:59:59", "2026-10-04T01:59:59+10:00"),
        ("2026-10-04 03:00", "2026-10-04T03:00:00+11:00"),
        ("2026-03-02T09:00+11:00", None),  # has its offset: not a naive time
        ("2026-03-02", None),  # a date alone is no start
        ("not a time", None),
    ],
)
def test_local_instant_around_the_changes(text: str, expected: str | None) -> None:
    found = local_instant(text, SYDNEY)
    assert (found and found.isoformat()) == expected


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("2026-10-04 02:00", "does not exist in Australia/Sydney"),
        ("1899-12-31 12:00", "must be from 1900-01-01T00:00Z"),
        ("0001-01-01 00:00", "must be from 1900-01-01T00:00Z"),
        ("9999-12-31 23:59", "must be from 1900-01-01T00:00Z"),
    ],
)
def test_local_instant_refuses(text: str, phrase: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=phrase):
        local_instant(text, SYDNEY)


def test_local_instant_agrees_with_zoneinfo_on_every_hour_of_2026() -> None:
    hour = datetime(2026, 1, 1)
    skipped = []
    while hour.year == 2026:
        for minute in (0, 30):
            naive = hour.replace(minute=minute)
            try:
                found = local_instant(naive.isoformat(), SYDNEY)
            except argparse.ArgumentTypeError:
                skipped.append(naive)
                continue
            assert found == naive.replace(tzinfo=SYDNEY)  # fold=0
            assert found is not None
            assert found.astimezone(UTC).astimezone(SYDNEY).replace(tzinfo=None) == naive
        hour += timedelta(hours=1)
    assert skipped == [datetime(2026, 10, 4, 2), datetime(2026, 10, 4, 2, 30)]


# Money ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("110", "110.00"),
        ("110.5", "110.50"),
        ("110.00", "110.00"),
        ("$110.00", "110.00"),
        ("$ 110", "110.00"),
        ("A$110", "110.00"),
        ("AU$ 110.00", "110.00"),
        ("AUD 110.00", "110.00"),
        ("110.00 AUD", "110.00"),
        ("$110.00 AUD", "110.00"),
        ("1,100.00", "1100.00"),
        ("$1,100.00", "1100.00"),
        ("$1,234,567.89", "1234567.89"),
        ("-$5.00", "-5.00"),
        ("0", "0.00"),
    ],
)
def test_money_spellings_read_exactly(text: str, amount: str) -> None:
    assert read_price(text, "AUD") == Money(Decimal(amount), "AUD")


@pytest.mark.parametrize(
    ("text", "currency", "phrase"),
    [
        ("$110.00", "EUR", "is written with $, which is not EUR's symbol"),
        ("€110.00", "AUD", "is written with €, which is not AUD's symbol"),
        ("US$110.00", "AUD", "is written with US$, which is not AUD's symbol"),
        ("$110.00 USD", "AUD", "is in USD but the row's currency is AUD"),
        ("$110.001", "AUD", "more decimal places than AUD's minor unit"),
        ("¥110.5", "JPY", "more decimal places than JPY's minor unit"),
        ("12,50", "AUD", "a comma that does not group thousands"),
        ("1,1000.00", "AUD", "a comma that does not group thousands"),
        ("1,100,00", "AUD", "a comma that does not group thousands"),
        ("Rs 110", "AUD", "not a currency symbol"),
        ("AUD 110 AUD", "AUD", "names two currencies"),
        ("$", "AUD", "not an amount of money"),
        ("$-5", "AUD", "not an amount of money"),
        ("$1e3", "AUD", "not an amount of money"),
        ("$XXX 5", "AUD", "not an amount of money"),
        ("5 XXX", "AUD", "not an ISO 4217 currency code"),
    ],
)
def test_money_spellings_refused(text: str, currency: str, phrase: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=phrase.replace("$", r"\$")):
        read_price(text, currency)


def grouped(amount: Decimal) -> str:
    """``amount`` with its thousands grouped by commas: 1234567.5 as 1,234,567.5."""
    whole, _, fraction = str(abs(amount)).partition(".")
    digits = f"{int(whole):,}"
    return f"{'-' if amount < 0 else ''}{digits}{'.' + fraction if fraction else ''}"


AMOUNTS = st.decimals(
    min_value=Decimal(-(10**15)), max_value=Decimal(10**15), places=2, allow_nan=False
)


@scaled(1)
@given(AMOUNTS, st.sampled_from(["plain", "code after", "code before", "$", "A$", "grouped"]))
def test_any_amount_in_any_spelling_reads_back_exactly(amount: Decimal, spelling: str) -> None:
    sign, body = ("-" if amount < 0 else ""), str(abs(amount))
    text = {
        "plain": f"{amount}",
        "code after": f"{amount} AUD",
        "code before": f"AUD {amount}",
        "$": f"{sign}${body}",
        "A$": f"{sign}A${grouped(abs(amount))}",
        "grouped": grouped(amount),
    }[spelling]
    assert read_price(text, "AUD") == Money(amount, "AUD")


def test_a_price_with_a_symbol_is_recorded_in_the_rows_currency(desk: Cli, tmp_path: Path) -> None:
    rows = [
        row("M1", "2026-03-02T09:00+11:00", price="$110.00"),
        row("M2", "2026-03-03T09:00+11:00", price="$1,100.50"),
        row("M3", "2026-03-04T09:00+11:00", price="€110.00"),
        row("M4", "2026-03-05T09:00+11:00", price="12,50"),
        row("M5", "2026-03-06T09:00+11:00", price="$110.005"),
    ]
    rows[4][6] = "JPY"  # a $ price and a currency that is not a dollar: refused
    rows.append(row("M6", "2026-03-07T09:00+11:00", price="$5"))
    rows[5][6] = "JPY"
    rejects = tmp_path / "refused.csv"
    status, _, _ = desk("import", str(write_csv(tmp_path / "in.csv", rows)),
                        "--rejects", str(rejects))  # fmt: skip
    assert status == 1
    prices = {a: u["price"] for a, u in used(desk).items()}
    assert prices == {
        "M1": {"amount": "110.00", "currency": "AUD"},
        "M2": {"amount": "1100.50", "currency": "AUD"},
    }
    refused = refusals(rejects)
    assert {a: f for a, (f, _) in refused.items()} == dict.fromkeys(
        ("M3", "M4", "M5", "M6"), "price"
    )
    assert "not AUD's symbol" in refused["M3"][1]
    assert "not JPY's symbol" in refused["M5"][1]


# Durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("45m", 45),
        ("45 m", 45),
        ("45 min", 45),
        ("45 mins", 45),
        ("45 Minutes", 45),
        ("0:45", 45),
        ("1:30", 90),
        ("1:30:00", 90),
        ("1.5h", 90),
        ("1.5 h", 90),
        ("1.5 hours", 90),
        ("1 hr 30 min", 90),
        ("1h30m", 90),
        ("0.75h", 45),
        ("22.5 min", 22.5),
        ("PT45M", 45),
        ("PT1H30M", 90),
    ],
)
def test_duration_spellings_read_exactly(text: str, minutes: float) -> None:
    assert read_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("90", "has no unit"),
        ("1.5", "has no unit"),
        ("-1.5h", "longer than zero"),
        ("-45 min", "longer than zero"),
        ("0:00", "longer than zero"),
        ("0 min", "longer than zero"),
        ("0m", "longer than zero"),
        ("1:75", "is not a duration"),
        ("1:5", "is not a duration"),
        ("0.001 min", "whole number of seconds"),
        ("1.0000000000000000000000000001h", "whole number of seconds"),
        ("99999999999999h", "microseconds"),
        ("2562048000 hours", "microseconds"),
        ("99999999999:00", "microseconds"),
        ("an hour", "is not a duration"),
    ],
)
def test_duration_spellings_refused(text: str, phrase: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=phrase):
        read_duration(text)


LONGEST = INT64_MAX // 1_000_000  # whole seconds within R18's limit
EXACT = Context(prec=60, traps=[Inexact])


def spellings_of(seconds: int) -> list[str]:
    """Every accepted spelling of ``seconds`` that writes it exactly."""
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    found = [f"{h}:{m:02d}:{s:02d}", f"PT{seconds}S"]
    if s == 0:
        minutes = seconds // 60
        found += [f"{minutes}m", f"{minutes} min", f"{minutes} mins", f"{h}:{m:02d}"]
        found += [f"{h} hr {m} min", f"{minutes} minutes"]
    try:
        hours = EXACT.divide(Decimal(seconds), 3600)
    except Inexact:
        return found  # no decimal writes it exactly
    return [*found, f"{hours}h", f"{hours} h", f"{hours} hours"]


@scaled(1)
@given(
    st.integers(1, LONGEST) | st.integers(1, 3 * 86400) | st.integers(1, 2000).map(lambda n: n * 36)
)
def test_any_duration_in_any_spelling_reads_back_exactly(seconds: int) -> None:
    expected = timedelta(seconds=seconds)
    for text in spellings_of(seconds):
        assert read_duration(text) == expected, text


def test_a_duration_spelling_is_recorded_exactly(desk: Cli, tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "in.csv",
        [
            row("D1", "2026-03-02T09:00+11:00", duration="1.5h"),
            row("D2", "2026-03-03T09:00+11:00", duration="45 min"),
            row("D3", "2026-03-04T09:00+11:00", duration="0:45"),
            row("D4", "2026-03-05T09:00+11:00", duration="90"),
        ],
    )
    rejects = tmp_path / "refused.csv"
    assert desk("import", str(source), "--rejects", str(rejects))[0] == 1
    durations = {a: u["duration"] for a, u in used(desk).items()}
    assert durations == {"D1": "PT1H30M", "D2": "PT45M", "D3": "PT45M"}
    assert refusals(rejects)["D4"] == (
        "duration",
        "duration: '90' has no unit: write 45m, 45 min, 1h30m, 1:30, 1.5h or PT45M",
    )
    pack = desk.json("pack", "list", "C1")[0]
    assert pack["remaining"] == "PT7H"  # 10 hours less 3 exactly


# Header mappings ----------------------------------------------------------------------------


def test_column_maps_the_files_headers(desk: Cli, tmp_path: Path) -> None:
    rows = [
        ["1001", "C1", "physio", "2026-03-02 10:00", "45 min", "$110.00", "AUD", "booked", "x"],
        ["1002", "C1", "physio", "2026-03-09 10:00", "0:45", "$110.00", "AUD", "", "x"],
        ["1003", "C1", "physio", "2026-10-04 02:15", "1.5h", "$110.00", "AUD", "booked", "x"],
    ]
    source = write_csv(tmp_path / "sheet.csv", rows, [*THEIRS, "Notes"])
    options = [word for mapping in MAPPING for word in ("--column", mapping)]
    rejects = tmp_path / "refused.csv"
    status, out, _ = desk("import", str(source), *options, "--rejects", str(rejects), "--json")
    assert status == 1
    summary = json.loads(out)
    assert (summary["applied"], summary["refused"]) == (2, 1)
    assert summary["examples"][0]["appointment_id"] == "1003"  # read through the mapping
    assert summary["examples"][0]["field"] == "start"
    with rejects.open(encoding="utf-8") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["line", "field", "reason", *THEIRS, "Notes"]  # the row as it was
    assert written[1][3:] == rows[2]
    assert set(used(desk)) == {"1001", "1002"}
    again = json.loads(desk("import", str(source), *options, "--json").out)
    assert (again["applied"], again["skipped"], again["refused"]) == (0, 2, 1)


def test_an_identity_mapping_changes_nothing(desk: Cli, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [row("A1", "2026-03-02T09:00+11:00")])
    assert desk.json("import", str(source), "--column", "start=start")["applied"] == 1


MAPPING_ERRORS = [
    (["Fee=prise"], "'prise' is not a column of the import"),
    (["Fee"], "--column 'Fee' must be 'Their header=column'"),
    (["=price"], "must be 'Their header=column'"),
    (["Fee=price", "Currency=price"], "--column maps 'Fee' and 'Currency' both to price"),
    (["Fee=price", "Fee=currency"], "--column maps the header 'Fee' twice"),
    (["Cost=price"], "--column names the header 'Cost', which the file does not have"),
    (["Client=client_id"], "missing column(s) appointment_id, service_id"),
]


@pytest.mark.parametrize(("mapping", "phrase"), MAPPING_ERRORS, ids=[p for _, p in MAPPING_ERRORS])
def test_a_wrong_mapping_is_a_usage_error_and_nothing_is_written(
    tmp_path: Path, mapping: list[str], phrase: str
) -> None:
    rows = [["1001", "C1", "physio", "2026-03-02 10:00", "45 min", "$110.00", "AUD", "booked"]]
    source = write_csv(tmp_path / "sheet.csv", rows, THEIRS)
    db, rejects = tmp_path / "new.db", tmp_path / "refused.csv"
    options = [word for m in mapping for word in ("--column", m)]
    done = run_cli("--db", str(db), "--timezone", "Australia/Sydney", "import", str(source),
                   *options, "--rejects", str(rejects))  # fmt: skip
    assert done.code == 2, done.err
    assert phrase in done.err
    assert not rejects.exists()
    assert run_cli("--db", str(db), "template", "list").code == 2  # no practice was created


def test_a_column_the_file_has_and_a_mapping_to_it_too_is_a_usage_error(
    desk: Cli, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "in.csv", [row("A1", "2026-03-02T09:00+11:00")])
    status, _, err = desk("import", str(source), "--column", "template_id=pack_id")
    assert status == 2
    assert "the file has a column pack_id, and --column maps 'template_id' to it too" in err
    assert desk.json("pack", "list", "C1") == []
