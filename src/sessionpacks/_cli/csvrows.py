"""Reading the rows of a CSV file for ``import``: every row, whatever it holds, in key order.

A row that cannot be read (a byte that is not UTF-8, a field longer than the csv module takes,
a quote that breaks the record) comes out as a :class:`Record` with its problem, to be refused
with its line number, and reading goes on with the next one. Only the header row must be
readable. A file not in key order is sorted on disk: runs of ``buffer`` rows are sorted in
memory and written to a work folder, then merged, at most :data:`FAN_IN` files at a time, so
memory and open files stay bounded however long the file is.

The work folder is named with the process id (``sessionpacks-import-<pid>-<random>``) and is
removed on any exit; a run killed outright (SIGKILL) leaves its folder, which the next run
removes once that process is gone.
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

import attrs

from .signals import Stops
from .store import UsageError
from .values import cut

__all__ = [
    "ENCODING",
    "FAN_IN",
    "UNREADABLE",
    "WORK_PREFIX",
    "Record",
    "RowError",
    "reclaim",
    "records_in_order",
    "work_folder",
]

ENCODING = "(encoding)"
"""The field of a row refused for a byte that is not UTF-8."""
UNREADABLE = "(csv)"
"""The field of a row the csv module cannot read."""
WORK_PREFIX = "sessionpacks-import-"
FAN_IN = 64
"""The most run files merged at once."""

# Bytes that are not UTF-8 are read as lone surrogates U+DC80..U+DCFF (surrogateescape), so
# that reading never fails and the rejects file can write the row back byte for byte.
_UNDECODED = re.compile("[\udc80-\udcff]")
_OWNED = re.compile(rf"^{re.escape(WORK_PREFIX)}([0-9]{{1,10}})-\w+$")


class RowError(Exception):
    """A row that cannot be applied: the ``field`` at fault and the ``reason``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@attrs.frozen
class Record:
    """One row of the file with its line number, and the problem reading it, if any."""

    line: int
    row: dict[str, str]
    problem: RowError | None = None


# Reading -----------------------------------------------------------------------------------


def _open(path: Path) -> IO[str]:
    return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")


def header(path: Path, required: Iterable[str]) -> list[str]:
    """The columns of ``path``; a usage error if the header row is unreadable or lacks one."""
    with _open(path) as handle:
        try:
            columns = next(csv.reader(handle), [])
        except csv.Error as error:
            raise UsageError(f"{cut(str(path))}: the header row cannot be read: {error}") from None
    if any(_UNDECODED.search(column) for column in columns):
        raise UsageError(f"{cut(str(path))}: the header row is not UTF-8: save the file as UTF-8")
    missing = [c for c in required if c not in columns]
    if missing:
        raise UsageError(
            f"{cut(str(path))}: missing column(s) {', '.join(missing)}; see docs/cli.md"
        )
    return columns


def _cells(row: dict[str | None, str | list[str] | None]) -> dict[str, str]:
    # Cells past the header (under None) are dropped; missing ones are empty.
    return {k: v if isinstance(v, str) else "" for k, v in row.items() if k is not None}


def _encoding_problem(row: dict[str, str]) -> RowError | None:
    for column, value in row.items():
        found = _UNDECODED.search(value)
        if found:
            byte = ord(found.group()) - 0xDC00
            return RowError(
                ENCODING, f"byte 0x{byte:02x} in {cut(column)} is not UTF-8; save the file as UTF-8"
            )
    return None


def records(path: Path) -> Iterator[Record]:
    """Every row of ``path`` after the header, in file order; none raises."""
    with _open(path) as handle:
        reader = csv.DictReader(handle)
        reader.fieldnames  # noqa: B018 - reads the header row, checked by header()
        while True:
            try:
                row = _cells(next(reader))
            except StopIteration:
                return
            except csv.Error as error:
                # The csv module drops the rest of the line and goes on with the next one;
                # the DictReader's own line count is not updated on an error.
                problem = RowError(UNREADABLE, f"cannot be read as CSV: {error}")
                yield Record(reader.reader.line_num, {}, problem)
                continue
            yield Record(reader.line_num, row, _encoding_problem(row))


# Sorting on disk ---------------------------------------------------------------------------

Key = Callable[[Record], str]
_Item = tuple[str, int, Record]


def _go_on() -> None:
    """A check that never stops (a caller with no signals to act on)."""


def _in_order(path: Path, key: Key, check: Callable[[], None]) -> bool:
    last = ""
    for record in records(path):
        check()
        found = key(record)
        if found and found < last:
            return False
        last = max(last, found)
    return True


def records_in_order(
    path: Path, buffer: int, workdir: Path, key: Key, check: Callable[[], None] = _go_on
) -> Iterator[Record]:
    """The records of ``path`` by ``key`` (ties in file order), in bounded memory.

    A file in order is streamed as it is. Otherwise runs of ``buffer`` records are sorted into
    files in ``workdir`` and merged. Records whose key is ``""`` (unreadable) come first.
    ``check`` is called before each record is read or written while the file is scanned,
    sorted and merged (:meth:`.signals.Stops.check`, which raises to stop); the records
    yielded are the caller's to check between.
    """
    if _in_order(path, key, check):
        yield from records(path)
        return
    runs: list[Path] = []
    chunk: list[_Item] = []
    for record in records(path):
        check()
        chunk.append((key(record), record.line, record))
        if len(chunk) >= buffer:
            runs.append(_write_run(sorted(chunk, key=_order), _run_file(workdir, runs), check))
            chunk = []
    if chunk:
        runs.append(_write_run(sorted(chunk, key=_order), _run_file(workdir, runs), check))
    runs = _merge_down(runs, workdir, check)
    with contextlib.ExitStack() as stack:
        streams = [_read_run(stack.enter_context(run.open(encoding="utf-8"))) for run in runs]
        for _, _, record in heapq.merge(*streams, key=_order):
            yield record


def _order(item: _Item) -> tuple[str, int]:
    return item[0], item[1]


def _run_file(workdir: Path, runs: list[Path]) -> Path:
    return workdir / f"run-{len(runs):05d}"


def _merge_down(runs: list[Path], workdir: Path, check: Callable[[], None]) -> list[Path]:
    """Merge runs :data:`FAN_IN` at a time until at most that many are left."""
    level = 0
    while len(runs) > FAN_IN:
        merged = []
        for n in range(0, len(runs), FAN_IN):
            group = runs[n : n + FAN_IN]
            with contextlib.ExitStack() as stack:
                streams = [_read_run(stack.enter_context(r.open(encoding="utf-8"))) for r in group]
                target = workdir / f"merge-{level}-{n // FAN_IN:05d}"
                merged.append(_write_run(heapq.merge(*streams, key=_order), target, check))
            for run in group:
                run.unlink()
        runs, level = merged, level + 1
    return runs


def _write_run(items: Iterable[_Item], path: Path, check: Callable[[], None]) -> Path:
    target = path.with_suffix(".jsonl")
    with target.open("w", encoding="utf-8") as out:
        for key, line, record in items:
            check()
            problem = record.problem
            fault = [problem.field, problem.reason] if problem else None
            # ensure_ascii: a lone surrogate (a byte that was not UTF-8) survives the trip.
            out.write(json.dumps([key, line, record.row, fault]) + "\n")
    return target


def _read_run(handle: IO[str]) -> Iterator[_Item]:
    for text in handle:
        key, line, row, fault = json.loads(text)
        problem = RowError(*fault) if fault else None
        yield key, line, Record(line, row, problem)


# The work folder ---------------------------------------------------------------------------


@contextlib.contextmanager
def work_folder(stops: Stops) -> Iterator[Path]:
    """A new work folder in the temporary directory, removed on any exit.

    Folders that runs killed outright left behind are removed first.
    """
    parent = Path(tempfile.gettempdir())
    reclaim(parent)
    folder = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-", dir=parent))
    try:
        yield folder
    finally:
        with stops.deferred():  # a signal now must not cut the clean-up short
            shutil.rmtree(folder, ignore_errors=True)


def reclaim(parent: Path) -> list[Path]:
    """Remove the work folders in ``parent`` of runs whose process is gone; returns them.

    Only this user's folders are touched, and only those named with a process id that is not
    running (a reused id keeps its folder until that process ends too).
    """
    if os.name != "posix":  # pragma: no cover - os.kill(pid, 0) is a test only on POSIX
        return []
    removed = []
    for folder in _leftovers(parent):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _leftovers(parent: Path) -> Iterator[Path]:
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        owned = _OWNED.match(entry.name)
        if owned is None or int(owned.group(1)) == os.getpid() or _alive(int(owned.group(1))):
            continue
        try:
            if entry.is_symlink() or not entry.is_dir() or entry.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        yield entry


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process, or no such id at all: keep it
        return True
    return True
