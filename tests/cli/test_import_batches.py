"""``sessionpacks import`` in batches: a refused row leaves the rest of its batch, a SIGKILL at
any moment and a re-run end where one clean run does, and SIGTERM commits what was decided."""

from __future__ import annotations

import csv
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sessionpacks._cli.transfer import COLUMNS, OPTIONAL
from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.ledger import Used

from ..cli_support import ENV, run_cli, until_rows_landed

NOW = "2026-03-01T08:00+11:00"
HEADER = [*COLUMNS, *OPTIONAL]
PRACTICE = "default"
FIRST = datetime(2026, 3, 1, 8, tzinfo=timezone(timedelta(hours=11)))


def setup_db(db: Path) -> None:
    base = ["--db", str(db), "--now", NOW]
    for args in (
        ["--timezone", "Australia/Sydney", "template", "add", "physio-5", "--name", "Physio",
         "--sessions", "5", "--price", "500 AUD", "--service", "physio"],
        ["template", "add", "pilates", "--name", "Pilates", "--sessions", "3", "--per-session",
         "30 AUD", "--late-cancel", "consumes", "--service", "physio"],
    ):  # fmt: skip
        assert run_cli(*base, *args).code == 0
    for n in range(40):
        template = "physio-5" if n % 2 else "pilates"
        assert run_cli(*base, "client", "prefer", f"C{n}", "--template", template).code == 0


def rows(count: int, seed: int = 7) -> list[list[str]]:
    chooser = random.Random(seed)
    made = []
    for n in range(count):
        status = chooser.choices(["booked", "no_show", "late_cancel", "cancelled"], [90, 4, 4, 2])
        start = (FIRST + timedelta(minutes=3 * n)).isoformat(timespec="minutes")
        made.append([f"A{n:06d}", f"C{chooser.randrange(40)}", "physio", start, "45m",
                     "120.00", "AUD", status[0], "", ""])  # fmt: skip
    return made


def write_csv(path: Path, body: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows([HEADER, *body])
    return path


def import_command(db: Path, source: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sessionpacks", "--db", str(db), "--now", NOW, "import",
            str(source), *extra]  # fmt: skip


def picture(db: Path) -> dict[str, Any]:
    """What the file holds, pack ids aside (they are random): each client's packs in the order
    opened, each with its template, figures and ledger; the appointments active; the events of
    each pack in order, and the stream's positions 1..n."""
    with SqliteStore(db) as store:
        repo = store.practice(PRACTICE)
        clients: dict[str, list[Any]] = {}
        names: dict[str, str] = {}
        for n in range(40):
            packs = repo.client_packs(f"C{n}")
            for k, pack in enumerate(packs):
                names[pack.pack_id] = f"C{n}/{k}"
            clients[f"C{n}"] = [
                (
                    p.template_id,
                    p.remaining_units,
                    p.version,
                    [
                        (type(e).__name__, getattr(e, "appointment_id", None) or _used(e))
                        for e in repo.ledger(p.pack_id)
                    ],
                    [u.appointment.id for u in p.usages],
                )
                for p in packs
            ]
        events = repo.events_since(0)
        by_pack: dict[str, list[str]] = {}
        for recorded in events:
            event = recorded.event
            by_pack.setdefault(names[event.pack_id], []).append(type(event).__name__)
        positions = [r.position for r in events]
        assert positions == list(range(1, len(events) + 1))
        assert repo.check_snapshots() == []
    return {"clients": clients, "events": by_pack}


def _used(entry: Any) -> str | None:
    return entry.appointment.id if isinstance(entry, Used) else None


def test_a_refused_row_in_the_middle_of_a_batch_leaves_the_others(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    setup_db(db)
    body = rows(60)
    body[30][1] = "C1"
    body[30][-2] = "no-such-pack"  # refused by the domain (R4), in the middle of the batch
    body[31][-1] = "no-such-template"  # refused by the domain (R2)
    body[32][3] = "2026-10-04 02:30"  # refused by the reader: a local time DST skips
    source = write_csv(tmp_path / "in.csv", body)
    rejects = tmp_path / "refused.csv"
    base = ["--db", str(db), "--now", NOW]
    done = run_cli(*base, "--json", "import", str(source), "--rejects", str(rejects))
    summary = json.loads(done.out)
    assert summary["rows"] == 60
    assert summary["refused"] == 3
    assert summary["applied"] + summary["skipped"] + summary["no_pack"] == 57
    refused = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert sorted(r["appointment_id"] for r in refused) == ["A000030", "A000031", "A000032"]
    with SqliteStore(db) as store:
        repo = store.practice(PRACTICE)
        for n, line in enumerate(body):
            holder = repo.pack_of_appointment(line[0])
            if n in (30, 31, 32):
                assert holder is None
            elif line[7] == "booked":
                assert holder is not None, line
    # a row per commit gives the same file
    one_by_one = tmp_path / "one.db"
    setup_db(one_by_one)
    for line in body:
        single = write_csv(tmp_path / "single.csv", [line])
        run_cli("--db", str(one_by_one), "--now", NOW, "import", str(single))
    assert picture(db) == picture(one_by_one)


@pytest.mark.slow
def test_a_sigkill_at_any_moment_and_a_rerun_end_as_one_clean_run(tmp_path: Path) -> None:
    seed = tmp_path / "seed.db"
    setup_db(seed)
    body = rows(6000)
    source = write_csv(tmp_path / "in.csv", body)
    clean = tmp_path / "clean.db"
    shutil.copy(seed, clean)
    assert subprocess.run(import_command(clean, source), env=ENV, check=False).returncode == 0
    expected = picture(clean)
    chooser = random.Random()
    for attempt in range(3):
        db = tmp_path / f"killed-{attempt}.db"
        shutil.copy(seed, db)
        running = subprocess.Popen(import_command(db, source), env=ENV)
        time.sleep(chooser.uniform(0.3, 2.5))
        running.kill()
        running.wait()
        again = subprocess.run(
            import_command(db, source, "--json"), env=ENV, capture_output=True, check=False
        )
        assert again.returncode == 0, again.stderr
        assert picture(db) == expected


@pytest.mark.slow
def test_sigterm_commits_the_rows_decided_and_a_rerun_applies_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    setup_db(db)
    body = [[*line[:7], "booked", "", ""] for line in rows(20000)]
    source = write_csv(tmp_path / "in.csv", body)
    running = subprocess.Popen(
        import_command(db, source), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    until_rows_landed(db, running)  # a wait on the clock alone can see none landed yet
    running.send_signal(signal.SIGTERM)
    out, err = running.communicate(timeout=60)
    assert running.returncode == 143, err
    read = int(out.decode().split("Rows read: ")[1].split()[0])
    assert 0 < read < 20000
    first = json.loads(
        subprocess.run(
            import_command(db, source, "--json"), env=ENV, capture_output=True, check=False
        ).stdout
    )
    assert first["skipped"] == read  # every row counted was committed
    assert first["applied"] + first["no_pack"] == 20000 - read
