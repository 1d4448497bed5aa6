"""R24 on the command line: ``--line NAME=SERVICE[,SERVICE...]:AMOUNT`` wherever terms are
given (``pack open`` ad hoc, ``template add|edit``), ``pack adjust --line``, each line's
remaining in a pack's line, ``pack show`` and ``--json``, the line events as sentences, and
the packs file of ``import --packs``, which refuses a bundle template's rows. Driven in-process
on a SQLite file (``tests/cli_support.py``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sessionpacks._cli.packfile import PACK_KNOWN
from sessionpacks._cli.transfer import COLUMNS, OPTIONAL

from ..cli_support import Cli

LINES = ("--line", "Physio=physio:5", "--line", "Massage=massage:2")
BUNDLE = ("--name", "Physio and massage", "--price", "700.00 AUD", *LINES)


@pytest.fixture
def clinic(tmp_path: Path) -> Cli:
    """A Sydney practice with a bundle template of 5 physio and 2 massage, low at 1 left."""
    cli = Cli(tmp_path, now="2026-03-01T09:00+11:00")
    cli.ok("--timezone", "Australia/Sydney", "template", "add", "rehab", *BUNDLE,
           "--low-balance", "1")  # fmt: skip
    return cli


def book(cli: Cli, appointment_id: str, service: str, start: str, pack: str = "P1") -> str:
    """Assign an appointment of C1 of an hour at 120.00 AUD to ``pack``; what it printed."""
    return cli.ok(
        "appointment", "assign", appointment_id, "--client", "C1", "--service", service,
        "--start", start, "--duration", "60m", "--price", "120.00 AUD", "--pack", pack,
    ).out  # fmt: skip


def test_e30_a_massage_is_massage_1_of_2_and_physio_keeps_its_5(clinic: Cli) -> None:
    template = clinic.ok("template", "show", "rehab").out
    assert "  allowance   7 sessions (sessions)" in template  # the lines' sum
    assert "  lines       Physio: 5 sessions of physio" in template
    assert "              Massage: 2 sessions of massage" in template
    opened = clinic.ok("pack", "open", "C1", "--template", "rehab", "--pack-id", "P1").out
    assert opened.startswith(
        "Opened pack P1 for C1: P1  Physio and massage  open  7 sessions left of 7 sessions "
        "(Physio 5 of 5 left, Massage 2 of 2 left)\n"
    )
    booked = book(clinic, "A1", "massage", "2026-03-02T10:00+11:00")
    assert "A1: Massage 1 of 2 on pack P1 (Physio and massage)" in booked
    assert "LowBalance P1 (client C1) line Massage: 1 session left of 2 sessions" in booked
    shown = clinic.ok("pack", "show", "P1").out
    for line in (
        "P1  Physio and massage  open  6 sessions left of 7 sessions "
        "(Physio 5 of 5 left, Massage 1 of 2 left)",
        "Lines:",
        "  Physio 5 of 5 left           physio",
        "  Massage 1 of 2 left          massage",
        "  Massage 1 of 2           A1         Mon 02 Mar 2026 10:00  massage",
    ):
        assert line in shown
    assert "A2: Physio 1 of 5 on pack P1" in book(clinic, "A2", "physio", "2026-03-03T10:00+11:00")
    invoice = clinic.ok("appointment", "invoice", "A1").out
    assert invoice == "A1: Massage 1 of 2 on pack P1: 0.00 AUD (prepaid)\n"


def test_json_gives_each_line_with_its_services_total_and_remaining(clinic: Cli) -> None:
    clinic.ok("pack", "open", "C1", "--template", "rehab", "--pack-id", "P1")
    book(clinic, "A1", "massage", "2026-03-02T10:00+11:00")
    data = clinic.json("pack", "show", "P1")
    assert data["lines"] == [
        {"name": "Physio", "services": ["physio"], "total": 5, "remaining": 5},
        {"name": "Massage", "services": ["massage"], "total": 2, "remaining": 1},
    ]
    assert [(s["label"], s["line"]) for s in data["sessions"]] == [("Massage 1 of 2", "Massage")]
    assert [line["name"] for line in data["terms"]["lines"]] == ["Physio", "Massage"]
    [listed] = clinic.json("pack", "list", "C1")
    assert listed["lines"][1]["remaining"] == 1
    exported = [r for r in clinic.ok("export").lines() if r["kind"] == "pack"]
    assert exported[0]["lines"] == data["lines"]
    plain = clinic.json("pack", "open", "C2", "--name", "2 x Physio", "--sessions", "2",
                        "--price", "200 AUD")  # fmt: skip
    assert plain["lines"] == []


def test_a_line_used_up_is_refused_and_nothing_is_written(clinic: Cli) -> None:
    clinic.ok("pack", "open", "C1", "--template", "rehab", "--pack-id", "P1")
    book(clinic, "A1", "massage", "2026-03-02T10:00+11:00")
    second = book(clinic, "A2", "massage", "2026-03-03T10:00+11:00")
    assert "A2: Massage 2 of 2 on pack P1" in second
    assert (
        "LineExhausted P1 (client C1) line Massage used up (2 sessions): its services draw on "
        "the pack no more, the other lines go on"
    ) in second
    before = clinic.ok("export").out
    refused = clinic(
        "appointment", "assign", "A3", "--client", "C1", "--service", "massage",
        "--start", "2026-03-04T10:00+11:00", "--duration", "60m", "--price", "120.00 AUD",
        "--pack", "P1",
    )  # fmt: skip
    assert (refused.code, refused.out) == (1, "")
    assert refused.err == (
        "sessionpacks: R24: pack_id='P1': the bundle's line Massage has nothing left\n"
    )
    as_json = clinic(
        "appointment", "assign", "A3", "--client", "C1", "--service", "massage",
        "--start", "2026-03-04T10:00+11:00", "--duration", "60m", "--price", "120.00 AUD",
        "--pack", "P1", "--json",
    )  # fmt: skip
    record = json.loads(as_json.err)
    assert (record["rule"], record["field"], record["value"]) == ("R24", "pack_id", "P1")
    assert clinic.ok("export").out == before  # nothing written
    assert "Physio 1 of 5" in book(clinic, "A4", "physio", "2026-03-05T10:00+11:00")
    assert "Physio 4 of 5 left, Massage 0 of 2 left" in clinic.ok("pack", "show", "P1").out


def test_adjust_names_the_line_of_a_bundle(clinic: Cli) -> None:
    clinic.ok("pack", "open", "C1", "--template", "rehab", "--pack-id", "P1")
    clinic.ok("pack", "open", "C1", "--name", "2 x Physio", "--sessions", "2",
              "--price", "200 AUD", "--pack-id", "P2")  # fmt: skip
    book(clinic, "A1", "massage", "2026-03-02T10:00+11:00")
    book(clinic, "A2", "massage", "2026-03-03T10:00+11:00")
    before = clinic.ok("export").out
    for args, says in (
        ([], "line=None: must name a line of the bundle (Physio, Massage)"),
        (["--line", "Pilates"], "line='Pilates': must name a line of the bundle (Physio, Massage)"),
        (["--line", "massage"], "line='massage': must name a line"),
    ):
        run = clinic("pack", "adjust", "P1", "+1", "--reason", "goodwill", *args)
        assert (run.code, run.out) == (1, "")
        assert says in run.err
    plain = clinic("pack", "adjust", "P2", "+1", "--reason", "goodwill", "--line", "Massage")
    assert plain.code == 1
    assert "line='Massage': must name a line of the bundle (none: the pack is not a bundle)" in (
        plain.err
    )
    below = clinic("pack", "adjust", "P1", "-1", "--reason", "fix", "--line", "Massage")
    assert below.code == 1
    assert "R9: amount=-1: a debit may not take line Massage of P1 below zero" in below.err
    empty = clinic("pack", "adjust", "P1", "+1", "--reason", "goodwill", "--line", "")
    assert empty.code == 2
    assert "argument --line: must not be empty" in empty.err
    assert clinic.ok("export").out == before
    adjusted = clinic.ok("pack", "adjust", "P1", "+1", "--reason", "goodwill", "--line", "Massage")
    assert adjusted.out == (
        "Adjusted. P1  Physio and massage  open  6 sessions left of 8 sessions "
        "(Physio 5 of 5 left, Massage 1 of 3 left)\n"
    )
    assert "adjusted by +1 session on line Massage: goodwill" in clinic.ok("pack", "show", "P1").out
    events = clinic.ok("events", "--type", "PackAdjusted").out
    assert events == (
        "#7 PackAdjusted P1 (client C1) +1 session (goodwill) on line Massage, 1 session left "
        "of it, 6 sessions left\n"
    )
    [event] = [e["event"] for e in clinic.ok("events", "--json", "--since", "6").lines()]
    assert (event["type"], event["line"], event["line_remaining"]) == ("PackAdjusted", "Massage", 1)
    entry = clinic.json("pack", "show", "P1")["ledger"][-1]
    assert (entry["type"], entry["line"]) == ("Adjusted", "Massage")
    assert "Massage 3 of 3" in book(clinic, "A3", "massage", "2026-03-04T10:00+11:00")
    keyed = ("pack", "adjust", "P1", "+1", "--reason", "goodwill", "--line", "Physio",
             "--idempotency-key", "k1")  # fmt: skip
    first = clinic.json(*keyed)
    assert clinic.json(*keyed) == first  # a retry: the first result
    other = clinic("pack", "adjust", "P1", "+1", "--reason", "goodwill", "--line", "Massage",
                   "--idempotency-key", "k1")  # fmt: skip
    assert other.code == 1
    assert "idempotency_key='k1'" in other.err


def test_ad_hoc_bundles_in_every_metric(clinic: Cli) -> None:
    hours = clinic.ok(
        "pack", "open", "C1", "--name", "Rehab hours", "--price", "500 AUD", "--pack-id", "H1",
        "--line", "Physio=physio:3h", "--line", "Massage=massage, remedial:90m",
    ).out  # fmt: skip
    assert "4h30m left of 4h30m (Physio 3h of 3h left, Massage 1h30m of 1h30m left)" in hours
    booked = book(clinic, "A1", "remedial", "2026-03-02T10:00+11:00", pack="H1")
    assert "A1: Massage 1, 30m left on pack H1" in booked
    money = clinic.json(
        "pack", "open", "C1", "--name", "Wellness", "--pack-id", "M1", "--currency", "AUD",
        "--line", "Treatment=physio,massage:300.00", "--line", "Shop=retail:50",
    )  # fmt: skip
    assert money["total"] == {"amount": "350.00", "currency": "AUD"}
    assert money["terms"]["pricing"]["price"] == {"amount": "350.00", "currency": "AUD"}
    assert money["lines"][1] == {
        "name": "Shop",
        "services": ["retail"],
        "total": {"amount": "50.00", "currency": "AUD"},
        "remaining": {"amount": "50.00", "currency": "AUD"},
    }
    own = clinic.json("pack", "open", "C1", "--name", "W", "--pack-id", "M2",
                      "--line", "A=physio:300.00 AUD", "--line", "B=massage:50")  # fmt: skip
    assert own["total"] == {"amount": "350.00", "currency": "AUD"}  # the line's own currency
    given = clinic.json("pack", "open", "C1", "--name", "S", "--sessions", "3", "--price",
                        "300 AUD", "--pack-id", "S1", "--line", "A=physio:1",
                        "--line", "B=massage:2")  # fmt: skip
    assert [line["total"] for line in given["lines"]] == [1, 2]


def test_template_edit_replaces_or_removes_the_lines(clinic: Cli) -> None:
    clinic.ok("pack", "open", "C1", "--template", "rehab", "--pack-id", "P1")
    edited = clinic.ok("template", "edit", "rehab", "--line", "Physio=physio:8",
                       "--line", "Massage=massage,remedial:2").out  # fmt: skip
    assert "Template rehab is now at version 2" in edited
    assert "  allowance   10 sessions (sessions)" in edited
    assert "              Massage: 2 sessions of massage, remedial" in edited
    assert "Physio 5 of 5 left" in clinic.ok("pack", "show", "P1").out  # keeps its terms
    wrong = clinic("template", "edit", "rehab", "--sessions", "9")
    assert wrong.code == 1
    assert "PackTerms.allowance=" in wrong.err
    assert "must be the sum of the lines' allowances" in wrong.err
    hours = clinic("template", "edit", "rehab", "--line", "Physio=physio:2h")
    assert hours.code == 2  # the template's metric: sessions
    assert "argument --line: '2h' is not a whole number of sessions" in hours.err
    plain = clinic.ok("template", "edit", "rehab", "--no-lines", "--service", "physio").out
    assert "  services    physio" in plain
    assert "lines" not in plain
    both = clinic("template", "edit", "rehab", "--no-lines", "--line", "A=physio:1")
    assert both.code == 2
    assert "not allowed with argument" in both.err
    clinic.ok("template", "add", "physio-10", "--name", "10 x Physio", "--sessions", "10",
              "--price", "900 AUD", "--service", "physio")  # fmt: skip
    named = clinic("template", "edit", "physio-10", *LINES)
    assert named.code == 1  # its services are the lines' now
    assert "PackTerms.eligible_services=" in named.err
    bundled = clinic.ok("template", "edit", "physio-10", *LINES, "--any-service").out
    assert "  allowance   7 sessions (sessions)" in bundled
    assert "  lines       Physio: 5 sessions of physio" in bundled


@pytest.mark.parametrize(
    ("extra", "code", "says"),
    [
        (["--sessions", "8"], 1,
         "PackTerms.allowance=Allowance(metric=<Metric.SESSIONS: 'sessions'>, amount=8): must be "
         "the sum of the lines' allowances"),
        (["--line", "Extra=massage:1"], 1,
         "BundleLine.services='massage': is on two lines of the bundle"),
        (["--line", "Massage=pilates:1"], 1, "PackTerms.lines="),
        (["--service", "physio"], 1, "PackTerms.eligible_services="),
        (["--per-session", "100 AUD"], 1, "PackTerms.pricing="),
        (["--line", "Pilates=pilates:0"], 1, "Allowance.amount=0"),
        (["--line", "Pilates=pilates:2h"], 2, "argument --line: '2h' is not a whole number"),
        (["--line", "Pilates=pilates:-1"], 2, "argument --line: '-1' must not be negative"),
        (["--line", "Pilates=pilates"], 2, "is not a bundle line: write NAME=SERVICE"),
        (["--line", "pilates:1"], 2, "is not a bundle line"),
        (["--line", "Pilates=:1"], 2, "a service must not be empty"),
        (["--line", "Pilates=pilates,,x:1"], 2, "a service must not be empty"),
        (["--line", "=pilates:1"], 2, "must not be empty"),
        (["--line", "Pilates=pilates:"], 2, "must not be empty"),
        (["--line", "Pilates=pil\x00ates:1"], 2, "a service"),
        (["--line", "Pilates=pilates:lots"], 2, "is not a whole number of sessions"),
        ([w for n in range(19) for w in ("--line", f"L{n}=s{n}:1")], 1,
         "PackTerms.lines=21: holds more than 20 lines"),
        (["--template", "rehab"], 2, "give --template ID, or the terms of an ad hoc pack"),
        (["--opened-on", "2026-01-10"], 1,
         "migrated=Migration(opened_on=datetime.date(2026, 1, 10)"),
    ],
    ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else str(v),
)  # fmt: skip
def test_terms_that_do_not_add_up_are_refused_naming_the_field(
    clinic: Cli, extra: list[str], code: int, says: str
) -> None:
    before = clinic.ok("export").out
    # --per-session instead of the bundle's --price (the two exclude each other).
    terms = [
        w for w in BUNDLE if "--per-session" not in extra or w not in ("--price", "700.00 AUD")
    ]
    run = clinic("pack", "open", "C1", *terms, *extra)
    assert (run.code, run.out) == (code, "")
    assert says in run.err
    assert "Traceback" not in run.err
    assert clinic.ok("export").out == before


def test_the_metric_of_lines_alone_and_what_they_cannot_add_up_to(clinic: Cli) -> None:
    no_currency = clinic("pack", "open", "C1", "--name", "W", "--line", "A=physio:300.00",
                         "--line", "B=massage:50.00")  # fmt: skip
    assert no_currency.code == 2
    assert "has no currency" in no_currency.err
    mixed = clinic("pack", "open", "C1", "--name", "W", "--price", "1 AUD",
                   "--line", "A=physio:3", "--line", "B=massage:2h")  # fmt: skip
    assert mixed.code == 2  # the first line's metric, sessions
    assert "'2h' is not a whole number of sessions" in mixed.err
    currencies = clinic("pack", "open", "C1", "--name", "W", "--currency", "AUD",
                        "--line", "A=physio:300.00 USD", "--line", "B=massage:50")  # fmt: skip
    assert currencies.code == 2
    assert "is in USD but --currency says AUD" in currencies.err
    huge = [w for n in range(3) for w in ("--line", f"L{n}=s{n}:PT2562047788H")]
    past = clinic("pack", "open", "C1", "--name", "W", "--price", "1 AUD", *huge)
    assert past.code == 2
    assert "the lines add up to more than 9223372036854775807" in past.err
    nothing = clinic("pack", "open", "C1", "--name", "W", "--line", "A=physio:much")
    assert nothing.code == 2
    assert "'much' is not an amount: write sessions (5), a duration (90m) or money" in nothing.err
    assert clinic.ok("pack", "list", "C1").out == "C1 has no packs.\n"


def test_a_transfer_carries_what_remains_of_each_line(clinic: Cli) -> None:
    clinic.ok("pack", "open", "C1", "--template", "rehab", "--pack-id", "P1")
    book(clinic, "A1", "massage", "2026-02-27T10:00+11:00")
    book(clinic, "A2", "physio", "2026-02-28T10:00+11:00")
    moved = clinic.ok("pack", "transfer", "P1", "C3", "--pack-id", "P9").out
    assert moved == (
        "Transferred P1 to C3: P9  Physio and massage  open  5 sessions left of 5 sessions "
        "(Physio 4 of 4 left, Massage 1 of 1 left)\n"
    )


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_the_packs_file_refuses_a_bundle_template_naming_its_column(
    clinic: Cli, tmp_path: Path
) -> None:
    clinic.ok("template", "add", "physio-10", "--name", "10 x Physio", "--sessions", "10",
              "--price", "900 AUD", "--service", "physio")  # fmt: skip
    header = list(PACK_KNOWN)

    def row(pack_id: str, template: str) -> list[str]:
        cells = {"pack_id": pack_id, "client_id": "C1", "template_id": template,
                 "opened_on": "2026-01-10", "used": "1"}  # fmt: skip
        return [cells.get(c, "") for c in header]

    packs = _write(
        tmp_path / "packs.csv", header, [row("OLD-1", "rehab"), row("OLD-2", "physio-10")]
    )
    appointments = _write(tmp_path / "appointments.csv", [*COLUMNS, *OPTIONAL], [])
    rejects = tmp_path / "rejects.csv"
    done = clinic("--json", "import", str(appointments), "--packs", str(packs),
                  "--packs-rejects", str(rejects))  # fmt: skip
    assert done.code == 1
    summary = done.json()["packs"]
    assert (summary["opened"], summary["refused"]) == (1, 1)
    assert summary["refused_by_field"] == {"template_id": 1}
    [refused] = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert (refused["field"], refused["pack_id"]) == ("template_id", "OLD-1")
    assert refused["reason"] == (
        "template_id: 'rehab' is a bundle (Physio, Massage): a bundle cannot be opened as "
        "migrated; open it with 'pack open --line', each line with what is left of it"
    )
    assert [p["pack_id"] for p in clinic.json("pack", "list", "C1")] == ["OLD-2"]
