"""R20 on the command line: ``pack open --share-with``, ``pack share`` and ``pack unshare``.

A pack has one owner, who paid, and may list other clients who draw on it; its sessions are
numbered across all of them in start order (E26), and taking a client off refuses while an
appointment of theirs still to come uses it. Driven in-process on a SQLite file
(``tests/cli_support.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..cli_support import Cli


@pytest.fixture
def clinic(tmp_path: Path) -> Cli:
    """A Sydney practice with a 10-session physio template, valid six months."""
    cli = Cli(tmp_path, now="2026-03-01T09:00+11:00")
    cli.ok(
        "--timezone", "Australia/Sydney", "template", "add", "physio-10",
        "--name", "10 x Physio", "--sessions", "10", "--price", "1000.00 AUD",
        "--service", "physio", "--valid-for", "6 months",
    )  # fmt: skip
    return cli


def book(cli: Cli, appointment_id: str, client: str, start: str, *extra: str) -> str:
    """Assign an appointment of 45 minutes at 120.00 AUD to pack P1; what it printed."""
    return cli.ok(
        "appointment", "assign", appointment_id, "--client", client, "--service", "physio",
        "--start", start, "--duration", "45m", "--price", "120.00 AUD", "--pack", "P1", *extra,
    ).out  # fmt: skip


def family(cli: Cli, *listed: str) -> str:
    """Pack P1 of C1 (the owner, who pays), shared with ``listed``; what it printed."""
    shared = [word for client in listed for word in ("--share-with", client)]
    return cli.ok("pack", "open", "C1", "--template", "physio-10", "--pack-id", "P1", *shared).out


def test_e26_numbering_runs_across_the_owner_and_the_clients_listed(clinic: Cli) -> None:
    opened = family(clinic, "C2")
    assert "Opened pack P1 for C1: P1  10 x Physio  open" in opened
    assert "shared by C1 with C2" in opened
    assert "A1: Session 1 of 10 on pack P1" in book(clinic, "A1", "C1", "2026-03-02T10:00+11:00")
    assert "A2: Session 2 of 10 on pack P1" in book(clinic, "A2", "C2", "2026-03-03T10:00+11:00")
    assert "A3: Session 3 of 10 on pack P1" in book(clinic, "A3", "C1", "2026-03-04T10:00+11:00")
    shown = clinic.ok("pack", "show", "P1").out
    for line in (
        "P1  10 x Physio  open  7 sessions left of 10 sessions, expires 2026-09-01, "
        "shared by C1 with C2",
        "Session 1 of 10          A1         Mon 02 Mar 2026 10:00  physio for C1",
        "Session 2 of 10          A2         Tue 03 Mar 2026 10:00  physio for C2",
        "Session 3 of 10          A3         Wed 04 Mar 2026 10:00  physio for C1",
        "opened for C1 from template physio-10 v1, charged on its own invoice, shared with C2",
    ):
        assert line in shown
    data = clinic.json("pack", "show", "P1")
    assert (data["client_id"], data["shared_with"]) == ("C1", ["C2"])
    assert [(s["label"], s["client_id"]) for s in data["sessions"]] == [
        ("Session 1 of 10", "C1"),
        ("Session 2 of 10", "C2"),
        ("Session 3 of 10", "C1"),
    ]
    # The listed client sees the pack among theirs, with its owner named.
    assert "shared by C1 with C2" in clinic.ok("client", "show", "C2").out
    assert [p["pack_id"] for p in clinic.json("pack", "list", "C2")] == ["P1"]
    line = clinic.ok("appointment", "invoice", "A2").out
    assert "A2: Session 2 of 10 on pack P1: 0.00 AUD (prepaid)" in line


def test_a_client_not_listed_is_refused_and_a_preference_may_name_the_shared_pack(
    clinic: Cli,
) -> None:
    family(clinic, "C2")
    refused = clinic(
        "appointment", "assign", "A1", "--client", "C3", "--service", "physio",
        "--start", "2026-03-02T10:00+11:00", "--duration", "45m", "--price", "120.00 AUD",
        "--pack", "P1",
    )  # fmt: skip
    assert (refused.code, refused.out) == (1, "")
    assert "pack_id='P1'" in refused.err
    clinic.ok("client", "prefer", "C2", "--pack", "P1")
    booked = clinic.ok(
        "appointment", "book", "A2", "--client", "C2", "--service", "physio",
        "--start", "2026-03-03T10:00+11:00", "--duration", "45m", "--price", "120.00 AUD",
    ).out  # fmt: skip
    assert "A2: Session 1 of 10 on pack P1 (10 x Physio) — preferred pack P1." in booked
    other = clinic("client", "prefer", "C3", "--pack", "P1")
    assert other.code == 1
    assert "R4: preference.pack_id='P1'" in other.err


def test_share_and_unshare_an_open_pack(clinic: Cli) -> None:
    family(clinic)
    shared = clinic.ok("pack", "share", "P1", "C2")
    assert shared.out == (
        "P1 is shared with C2: P1  10 x Physio  open  10 sessions left of 10 sessions, "
        "expires 2026-09-01, shared by C1 with C2\n"
    )
    before = clinic.ok("export").out
    again = clinic.json("pack", "share", "P1", "C2")  # already listed: nothing written
    assert (again["shared_with"], again["version"]) == (["C2"], 2)
    assert clinic.ok("export").out == before
    assert clinic.json("pack", "share", "P1", "C3")["shared_with"] == ["C2", "C3"]
    book(clinic, "A1", "C2", "2026-03-02T10:00+11:00")
    later = "2026-03-05T09:00+11:00"
    removed = clinic.ok("pack", "unshare", "P1", "C2", now=later).out
    assert removed.startswith("P1 is no longer shared with C2: P1  10 x Physio  open  9 sessions")
    assert "shared by C1 with C3" in removed
    assert "What C2 used (1 session) stays used and numbered." in removed
    shown = clinic.ok("pack", "show", "P1", now=later).out
    assert "Session 1 of 10          A1         Mon 02 Mar 2026 10:00  physio for C2" in shown
    assert "shared with C3, who may draw on it from now on" in shown
    assert "no longer shared with C2; the sessions they used stay used" in shown
    assert clinic.json("pack", "list", "C2") == []
    events = clinic.ok("events", "--type", "PackShared", "--type", "PackUnshared").out
    assert events.splitlines() == [
        "#2 PackShared P1 (client C1) now shared with C2; beside the owner: C2",
        "#3 PackShared P1 (client C1) now shared with C3; beside the owner: C2, C3",
        "#5 PackUnshared P1 (client C1) no longer shared with C2; beside the owner: C3",
    ]
    stream = clinic.ok("events", "--since", "4", "--json").lines()
    assert [(e["event"]["type"], e["event"]["with_client_id"]) for e in stream] == [
        ("PackUnshared", "C2")
    ]
    assert stream[0]["event"]["shared_with"] == ["C3"]


def test_unshare_is_refused_while_an_appointment_of_theirs_is_to_come(clinic: Cli) -> None:
    family(clinic, "C2", "C3")
    book(clinic, "A1", "C2", "2026-03-10T10:00+11:00")
    before = clinic.ok("export").out
    refused = clinic("pack", "unshare", "P1", "C2")
    assert (refused.code, refused.out) == (1, "")
    assert refused.err == (
        "sessionpacks: R20: client_id='C2': appointment A1 on 2026-03-10T10:00:00+11:00 uses "
        "pack P1: cancel or move it first\n"
    )
    as_json = clinic("pack", "unshare", "P1", "C2", "--json")
    assert (as_json.code, as_json.out) == (1, "")
    record = json.loads(as_json.err)
    assert (record["error"], record["rule"], record["field"], record["value"]) == (
        "RefusedError",
        "R20",
        "client_id",
        "C2",
    )
    assert clinic.ok("export").out == before  # nothing written
    clinic.ok("appointment", "cancel", "A1")
    assert clinic.json("pack", "unshare", "P1", "C2")["shared_with"] == ["C3"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["pack", "share", "P1", "C1"], 1, "client_id='C1': owns pack P1"),
        (["pack", "unshare", "P1", "C9"], 1,
         "R20: client_id='C9': pack P1 is not shared with them (shared with C2)"),
        (["pack", "share", "nope", "C2"], 1, "pack_id='nope'"),
        (["pack", "share", "P1"], 2, "CLIENT_ID"),
        (["pack", "share", "P1", " C2"], 2, "argument CLIENT_ID: ' C2' must"),
        (["pack", "unshare", "P1", ""], 2, "argument CLIENT_ID: must not be empty"),
        (["pack", "open", "C1", "--template", "physio-10", "--share-with", "C1"], 1,
         "shared_with='C1': is the pack's owner"),
        (["pack", "open", "C1", "--template", "physio-10", "--share-with", "C3",
          "--share-with", "C3"], 1, "shared_with='C3': is listed twice"),
        (["pack", "open", "C1", "--template", "physio-10", "--share-with", "C\x00"], 2,
         "argument --share-with"),
        (["pack", "open", "C1", "--template", "physio-10",
          *[w for n in range(51) for w in ("--share-with", f"K{n}")]], 1,
         "lists 51 clients, more than 50"),
    ],
    ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else str(v),
)  # fmt: skip
def test_refusals_name_the_field_and_value_and_write_nothing(
    clinic: Cli, args: list[str], code: int, says: str
) -> None:
    family(clinic, "C2")
    before = clinic.ok("export").out
    run = clinic(*args)
    assert (run.code, run.out) == (code, "")
    assert says in run.err
    assert clinic.ok("export").out == before


def test_json_output_and_a_retry_with_the_same_key(clinic: Cli) -> None:
    opened = clinic.json(
        "pack", "open", "C1", "--template", "physio-10", "--pack-id", "P1",
        "--share-with", "C2", "--share-with", "C3", "--idempotency-key", "open-1",
    )  # fmt: skip
    assert (opened["client_id"], opened["shared_with"]) == ("C1", ["C2", "C3"])
    first = clinic.json("pack", "unshare", "P1", "C3", "--idempotency-key", "k1")
    assert first["shared_with"] == ["C2"]
    before = clinic.ok("export").out
    assert clinic.json("pack", "unshare", "P1", "C3", "--idempotency-key", "k1") == first
    assert clinic.ok("export").out == before
    other = clinic("pack", "unshare", "P1", "C2", "--idempotency-key", "k1")
    assert other.code == 1
    assert "idempotency_key='k1'" in other.err
    shared = clinic.json("pack", "share", "P1", "C4", "--idempotency-key", "k2")
    assert shared["shared_with"] == ["C2", "C4"]
    opened_again = clinic.json(
        "pack", "open", "C1", "--template", "physio-10", "--pack-id", "P1",
        "--share-with", "C2", "--share-with", "C3", "--idempotency-key", "open-1",
    )  # fmt: skip
    assert opened_again == opened  # the first result again
    [listed] = clinic.json("pack", "list", "C4")
    assert listed["shared_with"] == ["C2", "C4"]


def test_export_names_the_clients_a_pack_is_shared_with(clinic: Cli, tmp_path: Path) -> None:
    family(clinic, "C2", "C3")
    clinic.ok("pack", "open", "C1", "--template", "physio-10", "--pack-id", "P2")
    packs = [line for line in clinic.ok("export").lines() if line["kind"] == "pack"]
    assert [(p["pack_id"], p["shared_with"]) for p in packs] == [("P1", ["C2", "C3"]), ("P2", [])]
    table = clinic.ok("export", "--what", "packs", "--format", "csv").out.splitlines()
    assert table[0].endswith(",shared_with")
    assert table[1].endswith(',"[""C2"", ""C3""]"')
    assert table[2].endswith(",")
