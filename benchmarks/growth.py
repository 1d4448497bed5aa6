"""Why the import slows as its file grows: ``python -m benchmarks.growth``.

The same number of rows (``--late``) is imported twice into SQLite, in process: early, into a
fresh file holding only the practice, its templates and preferences; late, into a file that
already holds ``--rows`` rows of the same generated practice, imported first by the same
command (their continuation: rows ``--rows`` to ``--rows`` + ``--late`` of one file). Every
statement the store sends is timed by its text: the connection is wrapped so that a cursor
is stepped to its end inside the timing (``fetchall`` runs the rest of a query). Beside the
time, the bytes and the write calls the process hands the kernel (``/proc/self/io``, Linux
only): WAL frames, and the checkpoints copying them into the file.

It prints one table, statements by how much more they cost a row late than early, and writes
nothing outside its work folder (a temporary one unless ``--work`` is given). With
``--simulate CxW CxW`` it times ``simulate``'s statements at two sizes instead, per commit.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

from . import importing as imp

_KEY = re.compile(
    r"SELECT 'r'|SELECT .{0,60}?FROM \(?\s*\w+|INSERT INTO \w+|UPDATE \w+ SET \w+"
    r"|DELETE FROM \w+|BEGIN \w+|COMMIT|ROLLBACK|PRAGMA \w+|CREATE \w+ \w+|ALTER TABLE \w+"
)


def statement(sql: str) -> str:
    """A statement's name: its verb and table (the first 50 characters otherwise)."""
    text = " ".join(sql.split())
    found = _KEY.match(text)
    return found.group(0) if found else text[:50]


class Spent:
    """Calls and seconds by statement."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, sql: str, seconds: float) -> None:
        name = statement(sql)
        self.calls[name] += 1
        self.seconds[name] += seconds


class _Stepped:
    """A cursor already stepped to its end."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.rows = cursor.fetchall()
        self.rowcount = cursor.rowcount

    def fetchall(self) -> list[Any]:
        return self.rows

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


class _Timed:
    """A connection whose statements are timed into ``spent``."""

    def __init__(self, connection: sqlite3.Connection, spent: Spent) -> None:
        self._connection = connection
        self._spent = spent

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Stepped:
        started = time.perf_counter()
        try:
            return _Stepped(self._connection.execute(sql, params))
        finally:
            self._spent.add(sql, time.perf_counter() - started)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        started = time.perf_counter()
        try:
            return self._connection.executemany(sql, rows)
        finally:
            self._spent.add(sql, time.perf_counter() - started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


@contextmanager
def timed(spent: Spent) -> Iterator[None]:
    """SQLite stores opened inside it time their statements into ``spent``."""
    from sessionpacks.adapters import sqlite

    connect = sqlite._Connections._connect

    def wrapped(connections: sqlite._Connections) -> sqlite3.Connection:
        return _Timed(connect(connections), spent)  # type: ignore[return-value]

    sqlite._Connections._connect = wrapped  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        sqlite._Connections._connect = connect  # type: ignore[method-assign]


def written() -> tuple[int, int]:
    """Bytes and write calls this process has handed the kernel (0, 0 where unknown)."""
    try:
        fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    except OSError:
        return 0, 0
    return int(fields["wchar"]), int(fields["syscw"])


def _import(db: Path, csv_file: Path) -> None:
    from sessionpacks._cli.app import main

    argv = ["--db", str(db), "--practice", imp.PRACTICE, "--now", imp.NOW, "--json"]
    with redirect_stdout(io.StringIO()):
        status = main([*argv, "import", str(csv_file)])
    if status not in (0, 1):
        raise RuntimeError(f"import of {csv_file}: exit status {status}")


def measured(db: Path, csv_file: Path) -> tuple[float, Spent, tuple[int, int]]:
    """Seconds, statements and writes of importing ``csv_file`` into ``db``."""
    spent = Spent()
    before = written()
    started = time.perf_counter()
    with timed(spent):
        _import(db, csv_file)
    seconds = time.perf_counter() - started
    after = written()
    return seconds, spent, (after[0] - before[0], after[1] - before[1])


def files(work: Path, rows: int, late: int) -> tuple[Path, Path, Path, Path]:
    """The prepared file, the file holding the first ``rows`` rows, and the CSV files of the
    early and the late rows."""
    lines = imp.generate(work / "all.csv", rows + late).read_text().splitlines(keepends=True)
    head, body = lines[0], lines[1:]
    first, early, later = work / "first.csv", work / "early.csv", work / "late.csv"
    first.write_text(head + "".join(body[:rows]))
    early.write_text(head + "".join(body[:late]))
    later.write_text(head + "".join(body[rows : rows + late]))
    seed = imp.prepared_file(work / "seed.db")
    grown = work / "grown.db"
    shutil.copyfile(seed, grown)
    _import(grown, first)
    return seed, grown, early, later


def _copy(source: Path, target: Path) -> Path:
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    return target


def report(rows: int, late: int, work: Path, say: Callable[[str], None] = print) -> None:
    seed, grown, early_csv, late_csv = files(work, rows, late)
    early = measured(_copy(seed, work / "early.db"), early_csv)
    later = measured(_copy(grown, work / "late.db"), late_csv)
    per = 1e6 / late
    say(f"{late:,} rows early (a fresh file) and late (after {rows:,} rows), µs a row\n")
    say("| | early | late |\n| --- | --- | --- |")
    say(f"| the whole import | {early[0] * per:,.0f} | {later[0] * per:,.0f} |")
    statements = [sum(spent.seconds.values()) * per for spent in (early[1], later[1])]
    say(f"| the statements | {statements[0]:,.0f} | {statements[1]:,.0f} |")
    say(f"| bytes written a row | {early[2][0] / late:,.0f} | {later[2][0] / late:,.0f} |")
    say(f"| write calls a row | {early[2][1] / late:.1f} | {later[2][1] / late:.1f} |\n")
    say("| statement | calls a row early | late | µs a row early | late | more |")
    say("| --- | --- | --- | --- | --- | --- |")
    names = early[1].seconds.keys() | later[1].seconds.keys()
    growth = {n: later[1].seconds.get(n, 0.0) - early[1].seconds.get(n, 0.0) for n in names}
    for name in sorted(names, key=lambda n: (-growth[n], n)):
        calls = (early[1].calls.get(name, 0) / late, later[1].calls.get(name, 0) / late)
        spent = (early[1].seconds.get(name, 0.0) * per, later[1].seconds.get(name, 0.0) * per)
        if max(spent) < 0.05:
            continue
        say(
            f"| `{name}` | {calls[0]:.2f} | {calls[1]:.2f} | {spent[0]:.1f} | {spent[1]:.1f}"
            f" | {growth[name] * per:+.1f} |"
        )


def simulated(db: Path, clients: int, weeks: int) -> tuple[float, Spent]:
    """Seconds and statements of ``simulate --clients C --weeks W`` into ``db``, in process."""
    from sessionpacks._cli.app import main

    spent = Spent()
    started = time.perf_counter()
    with timed(spent), redirect_stdout(io.StringIO()):
        status = main(
            ["--db", str(db), "simulate", "--clients", str(clients), "--weeks", str(weeks)]
        )
    if status != 0:
        raise RuntimeError(f"simulate {clients}x{weeks}: exit status {status}")
    return time.perf_counter() - started, spent


def simulate_report(
    sizes: list[tuple[int, int]], work: Path, say: Callable[[str], None] = print
) -> None:
    """The statements of ``simulate`` at two sizes, per commit (each operation is one)."""
    (small, (s_seconds, s_spent)), (large, (l_seconds, l_spent)) = (
        (size, simulated(work / f"simulate-{size[0]}x{size[1]}.db", *size)) for size in sizes
    )
    s_commits, l_commits = s_spent.calls["COMMIT"], l_spent.calls["COMMIT"]
    names = s_spent.seconds.keys() | l_spent.seconds.keys()
    small_at = {n: 1e6 * s_spent.seconds.get(n, 0.0) / s_commits for n in names}
    large_at = {n: 1e6 * l_spent.seconds.get(n, 0.0) / l_commits for n in names}
    label = [f"{c} clients x {w} weeks" for c, w in (small, large)]
    say(
        f"simulate, µs a commit: {label[0]} ({s_commits:,} commits) against {label[1]}"
        f" ({l_commits:,})\n"
    )
    say(f"| | {label[0]} | {label[1]} |\n| --- | --- | --- |")
    whole = (1e6 * s_seconds / s_commits, 1e6 * l_seconds / l_commits)
    say(f"| the whole run | {whole[0]:,.0f} | {whole[1]:,.0f} |")
    say(f"| the statements | {sum(small_at.values()):,.0f} | {sum(large_at.values()):,.0f} |\n")
    say("| statement | calls a commit small | large | µs a commit small | large | more |")
    say("| --- | --- | --- | --- | --- | --- |")
    for name in sorted(names, key=lambda n: (small_at[n] - large_at[n], n)):
        if max(small_at[name], large_at[name]) < 0.5:
            continue
        calls = (s_spent.calls.get(name, 0) / s_commits, l_spent.calls.get(name, 0) / l_commits)
        say(
            f"| `{name}` | {calls[0]:.2f} | {calls[1]:.2f} | {small_at[name]:.1f}"
            f" | {large_at[name]:.1f} | {large_at[name] - small_at[name]:+.1f} |"
        )


def _size(text: str) -> tuple[int, int]:
    clients, _, weeks = text.partition("x")
    return int(clients), int(weeks)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.growth", description=__doc__)
    p.add_argument("--rows", type=int, default=300_000, help="rows before (default 300000)")
    p.add_argument("--late", type=int, default=20_000, help="rows measured (default 20000)")
    p.add_argument(
        "--simulate",
        nargs=2,
        type=_size,
        metavar="CxW",
        help="instead: simulate's statements at two sizes, per commit (e.g. 500x52 2000x52)",
    )
    p.add_argument("--work", type=Path, help="the work folder (default: a temporary one)")
    args = p.parse_args(argv)

    def run(work: Path) -> None:
        if args.simulate:
            simulate_report(args.simulate, work)
        else:
            report(args.rows, args.late, work)

    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        run(args.work)
        return
    with tempfile.TemporaryDirectory(prefix="sessionpacks-growth-") as work:
        run(Path(work))


if __name__ == "__main__":
    main()
