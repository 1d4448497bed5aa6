"""``sessionpacks packs``: the practice's packs by status, expiry window, balance and template,
in-process through ``main`` (``tests/cli_support.py``) against a SQLite file in ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..cli_support import Cli

# NOW is 2026-03-02 in Sydney: physio-10 packs opened then expire on 2026-09-02.


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A template, two packs from it, and ad hoc packs: nearly used up, expiring soon, by the
    hour and closed. The tests only read it."""
    cli = Cli(tmp_path_factory.mktemp("packs"))
    cli.ok(
        "--timezone", "Australia/Sydney", "template", "add", "physio-10",
        "--name", "10 x Physio", "--sessions", "10", "--price", "1000.00 AUD",
        "--valid-for", "6 months",
    )  # fmt: skip
    cli.ok("pack", "open", "C1", "--template", "physio-10", "--pack-id", "pk-t1")
    cli.ok("pack", "open", "C2", "--template", "physio-10", "--pack-id", "pk-t2")
    cli.ok("pack", "adjust", "pk-t2", "-9", "--reason", "moved over")
    adhoc = ("--price", "100.00 AUD")
    cli.ok("pack", "open", "C3", "--pack-id", "pk-soon", "--name", "Soon", "--sessions", "2",
           "--expires-on", "2026-03-20", *adhoc)  # fmt: skip
    cli.ok("pack", "open", "C3", "--pack-id", "pk-hours", "--name", "Hours", "--hours", "2h",
           *adhoc)  # fmt: skip
    cli.ok("pack", "open", "C4", "--pack-id", "pk-closed", "--name", "Gone", "--sessions", "1",
           *adhoc)  # fmt: skip
    cli.ok("pack", "close", "pk-closed", "--reason", "moved away")
    return cli


def _ids(cli: Cli, *args: str) -> list[str]:
    return [p["pack_id"] for p in cli.json("packs", *args)["packs"]]


def test_every_pack_by_pack_id_without_filters(clinic: Cli) -> None:
    assert _ids(clinic) == ["pk-closed", "pk-hours", "pk-soon", "pk-t1", "pk-t2"]


def test_each_filter(clinic: Cli) -> None:
    assert _ids(clinic, "--status", "open") == ["pk-hours", "pk-soon", "pk-t1", "pk-t2"]
    assert _ids(clinic, "--status", "closed", "--status", "exhausted") == ["pk-closed"]
    assert _ids(clinic, "--expiring-within", "30d") == ["pk-soon"]
    assert _ids(clinic, "--expiring-within", "6 months") == ["pk-soon", "pk-t1", "pk-t2"]
    assert _ids(clinic, "--low", "1") == ["pk-closed", "pk-t2"]
    assert _ids(clinic, "--low", "2h") == ["pk-hours"]
    assert _ids(clinic, "--template", "physio-10") == ["pk-t1", "pk-t2"]


def test_filters_combine(clinic: Cli) -> None:
    assert _ids(clinic, "--status", "open", "--low", "1") == ["pk-t2"]
    assert _ids(clinic, "--status", "open", "--low", "2", "--template", "physio-10") == ["pk-t2"]
    assert _ids(clinic, "--status", "open", "--expiring-within", "1w") == []


def test_status_as_of_another_instant(clinic: Cli) -> None:
    later = ("--as-of", "2026-03-20T09:00+11:00")
    assert _ids(clinic, "--status", "expired", *later) == ["pk-soon"]
    assert _ids(clinic, "--status", "open", *later) == ["pk-hours", "pk-t1", "pk-t2"]
    data = clinic.json("packs", "--status", "expired", *later)
    assert data["packs"][0]["status"] == "expired"


def test_pages_with_a_cursor(clinic: Cli) -> None:
    first = clinic.json("packs", "--limit", "2")
    assert [p["pack_id"] for p in first["packs"]] == ["pk-closed", "pk-hours"]
    seen = [p["pack_id"] for p in first["packs"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = clinic.json("packs", "--limit", "2", "--after", cursor)
        seen += [p["pack_id"] for p in page["packs"]]
        cursor = page["next_cursor"]
    assert seen == _ids(clinic)
    text = clinic.ok("packs", "--limit", "2").out
    assert text.splitlines()[-1].startswith("More: --after p1.")


def test_text_output(clinic: Cli) -> None:
    out = clinic.ok("packs", "--status", "open", "--low", "1").out
    assert out.splitlines() == ["pk-t2  10 x Physio  open  1 session left of 1 session, expires"
                                " 2026-09-02"]  # fmt: skip
    assert clinic.ok("packs", "--template", "none-such").out.strip() == "No packs match."


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--status", "live"), "invalid choice"),
        (("--low", "-1"), "--low"),
        (("--low", "lots"), "--low"),
        (("--expiring-within", "soon"), "--expiring-within"),
        (("--limit", "0"), "--limit"),
        (("--limit", "1001"), "limit"),
        (("--after", "pk-t1"), "after"),
        (("--as-of", "2026-03-20T09:00+11:00"), "--status"),
        (("--template", ""), "--template"),
    ],
)
def test_bad_input_is_refused(clinic: Cli, args: tuple[str, ...], says: str) -> None:
    run = clinic("packs", *args)
    assert run.code != 0
    assert says in run.err


def test_an_empty_practice(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    found = cli.json("packs", "--status", "open", "--timezone", "Australia/Sydney")
    assert found == {"packs": [], "next_cursor": None}
