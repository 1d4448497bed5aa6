"""``sessionpacks import`` of generated appointments into SQLite, against a bare ``executemany``.

:func:`generate` writes a CSV file of ``rows`` appointments in start order: about 2,000
clients, each preferring one of four templates (sessions and money, per pack and per session),
mostly booked, with a few cancellations, late cancellations and no-shows. The practice, its
templates and the preferences are written once (:func:`prepared_file`) and copied for each
round, so that a round times the import alone.

The import runs as the real command in a child process: its time from start to exit, its peak
memory (``ru_maxrss`` of that child, from ``os.wait4``), and its progress line read through a
pseudo-terminal, from which the rate in the first and in the last tenth of the run are taken.
A run longer than ``timeout`` seconds is stopped with SIGTERM (the import then finishes its
row and reports what it did), and its rate is that of the rows it applied.

The baseline reads the same file with the csv module and inserts its rows with one
``executemany`` in one transaction, on a file with the same pragmas (WAL, ``synchronous =
FULL``): the floor of any import into SQLite.
"""

from __future__ import annotations

import csv
import json
import os
import pty
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sessionpacks._cli import transfer
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.model import (
    Allowance,
    Money,
    PackTerms,
    PerPack,
    PerSession,
    Policies,
    PreferTemplate,
)
from sessionpacks.service import PackService

from .harness import Metrics

PRACTICE = "bench-import"
TIMEZONE = "Australia/Sydney"
ZONE = ZoneInfo(TIMEZONE)
FIRST = datetime(2024, 1, 1, 8, tzinfo=ZONE)
NOW = "2030-01-01T09:00+11:00"
# The import's own header, required columns then optional ones: the file the CLI reads.
COLUMNS = (*transfer.COLUMNS, *transfer.OPTIONAL)
STATUSES = (("booked", 0.93), ("cancelled", 0.03), ("late_cancel", 0.02), ("no_show", 0.02))

# template id: (terms, service, price, duration)
TEMPLATES: dict[str, tuple[PackTerms, str, str, str]] = {
    "physio-10": (
        PackTerms(
            name="10 x Physio",
            allowance=Allowance.sessions(10),
            pricing=PerPack(Money("1000.00", "AUD")),
            eligible_services=frozenset({"physio"}),
        ),
        "physio",
        "110.00",
        "45m",
    ),
    "pilates-5": (
        PackTerms(
            name="Pilates 5-class pass",
            allowance=Allowance.sessions(5),
            pricing=PerSession.flat(Money("150.00", "AUD")),
            eligible_services=frozenset({"pilates"}),
            policies=Policies(late_cancel_consumes=True),
        ),
        "pilates",
        "150.00",
        "1h",
    ),
    "massage-500": (
        PackTerms(
            name="500 of massage",
            allowance=Allowance.money(Money("500.00", "AUD")),
            pricing=PerPack(Money("450.00", "AUD")),
            eligible_services=frozenset({"massage"}),
        ),
        "massage",
        "95.00",
        "1h",
    ),
    "rehab-20": (
        PackTerms(
            name="20 x Rehab",
            allowance=Allowance.sessions(20),
            pricing=PerSession.flat(Money("80.00", "AUD")),
            eligible_services=frozenset({"rehab"}),
            policies=Policies(no_show_consumes=True),
        ),
        "rehab",
        "80.00",
        "30m",
    ),
}


def client_template(client: int) -> str:
    return list(TEMPLATES)[client % len(TEMPLATES)]


def generate(path: Path, rows: int, clients: int = 2000, seed: int = 1) -> Path:
    """A CSV file of ``rows`` appointments of ``clients`` clients, in start order."""
    chooser = random.Random(seed)
    statuses = [s for s, _ in STATUSES]
    weights = [w for _, w in STATUSES]
    step = timedelta(minutes=3)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for n in range(rows):
            client = chooser.randrange(clients)
            _, service, price, duration = TEMPLATES[client_template(client)]
            status = chooser.choices(statuses, weights)[0]
            start = (FIRST + n * step).isoformat(timespec="minutes")
            writer.writerow(
                (
                    f"a{n:08d}",
                    f"c{client:05d}",
                    service,
                    start,
                    duration,
                    price,
                    "AUD",
                    status,
                    "",
                    "",
                )
            )
    return path


def prepared_file(path: Path, clients: int = 2000) -> Path:
    """A SQLite file with the practice, the templates and every client's preferred template."""
    with SqliteStore(path) as store:
        clock = FixedClock(datetime(2023, 12, 1, 9, tzinfo=ZONE))
        service = PackService(store.practice(PRACTICE, TIMEZONE), clock)
        for template_id, (terms, *_) in TEMPLATES.items():
            service.add_template(template_id, terms)
        for client in range(clients):
            service.set_preference(f"c{client:05d}", PreferTemplate(client_template(client)))
    return path


_PROGRESS = re.compile(r"importing: (\d+) rows")


def _progress(master: int, samples: list[tuple[float, int]]) -> None:
    """Read the child's progress line from the pseudo-terminal until it closes."""
    buffer = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            return
        if not chunk:
            return
        now = time.perf_counter()
        buffer = (buffer + chunk)[-4096:]
        found = _PROGRESS.findall(buffer.decode("utf-8", "replace"))
        if found:
            samples.append((now, int(found[-1])))
            buffer = b""


def _rows_at(samples: list[tuple[float, int]], moment: float) -> float:
    """The rows done at ``moment``, between the samples on either side of it."""
    before = max((s for s in samples if s[0] <= moment), default=samples[0])
    after = min((s for s in samples if s[0] >= moment), default=samples[-1])
    if after[0] == before[0]:
        return float(before[1])
    share = (moment - before[0]) / (after[0] - before[0])
    return before[1] + share * (after[1] - before[1])


def tenths(samples: list[tuple[float, int]]) -> Metrics:
    """Rows per second in the first and in the last tenth of the time the progress covers."""
    if len(samples) < 3:
        return {}
    begin, end = samples[0][0], samples[-1][0]
    tenth = (end - begin) / 10
    if tenth <= 0:
        return {}
    first = (_rows_at(samples, begin + tenth) - _rows_at(samples, begin)) / tenth
    last = (_rows_at(samples, end) - _rows_at(samples, end - tenth)) / tenth
    return {"first_rate": first, "last_rate": last}


class Import:
    """``sessionpacks import`` of ``csv_file`` into a copy of ``seed`` in a child process."""

    name = "sessionpacks import"

    def __init__(self, csv_file: Path, seed: Path, work: Path, timeout: float) -> None:
        self.csv_file, self.seed, self.work, self.timeout = csv_file, seed, work, timeout
        self.number = 0

    def round(self) -> Metrics:
        self.number += 1
        db = self.work / f"import-{self.number}.db"
        shutil.copyfile(self.seed, db)
        command = [sys.executable, "-m", "sessionpacks", "--db", str(db), "--practice", PRACTICE]
        command += ["--now", NOW, "--json", "import", str(self.csv_file)]
        master, slave = pty.openpty()
        samples: list[tuple[float, int]] = []
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave
        )
        os.close(slave)
        reader = threading.Thread(target=_progress, args=(master, samples), daemon=True)
        reader.start()
        stopper = threading.Timer(self.timeout, child.send_signal, (signal.SIGTERM,))
        stopper.start()
        assert child.stdout is not None
        output = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        stopper.cancel()
        reader.join(timeout=5)
        os.close(master)
        db.unlink()
        for extra in ("-wal", "-shm"):
            Path(f"{db}{extra}").unlink(missing_ok=True)
        summary = json.loads(output)
        if child.returncode not in (0, 1, 143) or "rows" not in summary:
            raise RuntimeError(f"import failed ({child.returncode}): {output[-2000:]!r}")
        rows = float(summary["rows"])
        peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024) / 1e6
        return {
            "rate": rows / elapsed,
            "rows": rows,
            "seconds": elapsed,
            "peak_mb": peak,
            "refused": float(summary["refused"]),
            "stopped": float(bool(summary.get("interrupted"))),
            **tenths(samples),
        }

    def close(self) -> None:
        pass


class Executemany:
    """The same rows read with the csv module and inserted by one ``executemany``."""

    name = "bare executemany"

    def __init__(self, csv_file: Path, work: Path) -> None:
        self.csv_file, self.work = csv_file, work
        self.number = 0

    def _rows(self) -> Iterator[list[str]]:
        with self.csv_file.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            yield from reader

    def round(self) -> Metrics:
        self.number += 1
        db = self.work / f"executemany-{self.number}.db"
        connection = sqlite3.connect(db, isolation_level=None)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        names = ", ".join(f"{c} text" for c in COLUMNS)
        connection.execute(f"CREATE TABLE appointments (id INTEGER PRIMARY KEY, {names})")
        insert = (
            f"INSERT INTO appointments ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in COLUMNS)})"
        )
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        cursor = connection.executemany(insert, self._rows())
        connection.execute("COMMIT")
        elapsed = time.perf_counter() - started
        rows = cursor.rowcount
        connection.close()
        db.unlink()
        return {"rate": rows / elapsed, "rows": float(rows), "seconds": elapsed}

    def close(self) -> None:
        pass
