"""``import`` of appointments from CSV, and ``export`` of packs, ledgers and events.

Import streams: rows are applied in start order one at a time, so memory does not grow with the
file. A file not sorted by start is sorted on disk first (runs of ``--sort-buffer`` rows, then a
merge), in bounded memory (:mod:`.csvrows`). Re-running an import applies only what is missing:
what the store already holds (an appointment already active on a pack) is skipped. A row that
cannot be read or applied is refused with its line, field and reason, and the import goes on.
The file's own headers and spellings (naive local times, ``$110.00``, ``45 min``) are read by
:mod:`.spellings` first. ``--packs`` first opens the packs of another system's packs file as
migrated (R19, :mod:`.packfile`), through the same batches, so the appointments draw on them.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import shutil
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO, TypeVar

import attrs

from sessionpacks._batch import Batch, Command, Outcome
from sessionpacks.errors import SessionPacksError
from sessionpacks.events import PackOpened
from sessionpacks.ledger import PackState
from sessionpacks.model import Appointment, Preference, PreferPack, PreferTemplate
from sessionpacks.operations import AppointmentStatus
from sessionpacks.service import PackService

from .base import Subparsers, add_command
from .context import Context
from .csvrows import Record, RowError, header, records, records_in_order, work_folder
from .packfile import PACK_COLUMNS, PACK_KNOWN, PackRows, column_of, open_row
from .render import jsonable, pack_summary
from .signals import Stops, Terminated, stopping_cleanly
from .spellings import Layout, column_pairs, layout_of
from .store import UsageError
from .stream import events_after
from .values import currency as currency_code
from .values import (
    cut,
    duration,
    identifier,
    instant,
    money,
    nonblank,
    path,
    positive_int,
    shown,
)

__all__ = ["COLUMNS", "RowError", "parse_row", "register", "rows_in_start_order"]

COLUMNS = (
    "appointment_id",
    "client_id",
    "service_id",
    "start",
    "duration",
    "price",
    "currency",
    "status",
)
OPTIONAL = ("pack_id", "template_id")
KNOWN = (*COLUMNS, *OPTIONAL)
STATUSES = {
    "booked": AppointmentStatus.BOOKED,
    "cancelled": AppointmentStatus.CANCELLED,
    "canceled": AppointmentStatus.CANCELLED,
    "late_cancel": AppointmentStatus.LATE_CANCEL,
    "late-cancel": AppointmentStatus.LATE_CANCEL,
    "no_show": AppointmentStatus.NO_SHOW,
    "no-show": AppointmentStatus.NO_SHOW,
}
_NOTES = {AppointmentStatus.LATE_CANCEL: "marked", AppointmentStatus.NO_SHOW: "marked"}
_MAX_EXAMPLES = 20
_KEY_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_INTERNAL = "(row)"

T = TypeVar("T")


# Reading rows in start order ---------------------------------------------------------------


def _key(layout: Layout) -> Callable[[Record], str]:
    """A sortable key: the start in UTC, fixed width; "" for a row whose start is unreadable."""

    def key(record: Record) -> str:
        if record.problem is not None:
            return ""
        try:
            start = instant(layout.start(record.row))
        except (argparse.ArgumentTypeError, RowError):
            return ""
        return start.astimezone(UTC).strftime(_KEY_FORMAT)

    return key


def rows_in_start_order(
    path: Path,
    buffer: int,
    workdir: Path,
    stops: Stops | None = None,
    layout: Layout | None = None,
) -> Iterator[Record]:
    """The rows with their line numbers, by start (ties in file order), in bounded memory.

    A sorted file is streamed as it is. Otherwise runs of ``buffer`` rows are sorted into
    temporary files in ``workdir`` and merged; rows whose start cannot be read come first.
    A signal to ``stops`` stops the scanning, sorting and merging at the next row. ``layout``
    (checked against the header by the caller) maps the file's headers and reads naive starts
    in its zone; without one, the file must have the columns, and naive starts sort first.
    """
    if layout is None:
        header(path, COLUMNS)
        layout = Layout()
    key = _key(layout)
    if stops is None:
        return records_in_order(path, buffer, workdir, key)
    return records_in_order(path, buffer, workdir, key, stops.check)


# Reading one row ---------------------------------------------------------------------------


@attrs.frozen
class Row:
    line: int
    appointment: Appointment
    status: AppointmentStatus
    explicit: Preference | None


def _cell(row: dict[str, str], column: str) -> str:
    # Spreadsheets pad cells with spaces; an id never has them (R18).
    return (row.get(column) or "").strip()


def _read(row: dict[str, str], column: str, reader: Callable[[str], T]) -> T:
    """The cell ``column`` read by ``reader``; its refusal as a RowError naming the column."""
    try:
        return reader(_cell(row, column))
    except argparse.ArgumentTypeError as error:
        raise RowError(column, str(error)) from None


def _status(row: dict[str, str]) -> AppointmentStatus:
    text = _cell(row, "status").lower() or "booked"
    status = STATUSES.get(text)
    if status is None:
        raise RowError("status", f"{shown(text)} must be booked, cancelled, late_cancel or no_show")
    return status


def _explicit(row: dict[str, str]) -> Preference | None:
    pack_id, template_id = _cell(row, "pack_id"), _cell(row, "template_id")
    if pack_id and template_id:
        raise RowError("pack_id", "give pack_id or template_id, not both")
    if pack_id:
        return PreferPack(_read(row, "pack_id", identifier))
    if template_id:
        return PreferTemplate(_read(row, "template_id", identifier))
    return None


def parse_row(line: int, row: dict[str, str]) -> Row:
    """The appointment, status and explicit pack or template a CSV row describes.

    Raises :class:`RowError` naming the column, or the library's
    :class:`~sessionpacks.errors.SessionPacksError` naming its field; nothing else.
    """
    price = _read(row, "price", money)
    code = _read(row, "currency", currency_code)
    try:
        amount = price.resolve(code)
    except argparse.ArgumentTypeError as error:
        raise RowError("price", str(error)) from None
    appointment = Appointment(
        id=_read(row, "appointment_id", identifier),
        client_id=_read(row, "client_id", identifier),
        service_id=_read(row, "service_id", identifier),
        start=_read(row, "start", instant),
        duration=_read(row, "duration", duration),
        price=amount,
    )
    return Row(line, appointment, _status(row), _explicit(row))


# Applying one row --------------------------------------------------------------------------


def apply_row(service: PackService, row: Row) -> tuple[str, str]:
    """Apply one row; returns the outcome (applied, no_pack, skipped) and a note.

    What a status records is the library's decision (:meth:`PackService.record`). The import
    adds one rule of its own: a ``booked`` row whose appointment is already on a pack is
    skipped, whatever it says, so that a re-run applies only what is missing.
    """
    appointment = row.appointment
    if row.status is AppointmentStatus.BOOKED and service.holder(appointment.id) is not None:
        return "skipped", "already on a pack"
    explicit = row.explicit
    assignment = service.record(
        appointment,
        row.status,
        pack_id=explicit.pack_id if isinstance(explicit, PreferPack) else None,
        template_id=explicit.template_id if isinstance(explicit, PreferTemplate) else None,
    )
    if assignment.events:
        return "applied", _NOTES.get(row.status, "") if assignment.label else "released"
    if row.status is AppointmentStatus.BOOKED and assignment.pack is None:
        return "no_pack", ""
    return "skipped", assignment.decision.reason


def _parsed(record: Record, layout: Layout) -> Row:
    """The row a record describes, or a RowError: never another exception."""
    if record.problem is not None:
        raise record.problem
    try:
        return parse_row(record.line, layout.cells(record.row))
    except (RowError, SessionPacksError):
        raise
    except Exception as error:
        # parse_row raises nothing else (tests/cli/test_cli_boundary.py feeds it any text): this
        # is a bug in a value reader. Refuse the row, say so, and go on with the others.
        raise RowError(
            _INTERNAL, f"cannot be read ({type(error).__name__}); please report this"
        ) from None


# The command -------------------------------------------------------------------------------


@attrs.define
class _Refusals:
    """The rows of one file read and refused, the refusals by field and the first ones."""

    KEY = "appointment_id"  # the column that names a row in the examples

    rows: int = 0
    skipped: int = 0
    refused: int = 0
    by_field: Counter[str] = attrs.Factory(Counter)
    examples: list[dict[str, Any]] = attrs.Factory(list)

    def refuse(self, line: int, key: str | None, field: str, reason: str) -> None:
        self.refused += 1
        self.by_field[field] += 1
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append(
                {
                    "line": line,
                    self.KEY: None if key is None else cut(key),
                    "field": field,
                    "reason": reason,
                }
            )

    def refusal_data(self) -> dict[str, Any]:
        return {
            "refused": self.refused,
            "refused_by_field": dict(self.by_field.most_common()),
            "examples": self.examples,
        }

    def refusal_lines(self, title: str) -> list[str]:
        lines = [f"  refused:  {self.refused}"]
        lines += [f"    {count:>7}  {field}" for field, count in self.by_field.most_common()]
        if self.examples:
            lines.append(title)
            lines += [
                f"  line {e['line']} ({_ascii(e[self.KEY] or '')}): {_ascii(e['reason'])}"
                for e in self.examples
            ]
        return lines


@attrs.define
class Summary(_Refusals):
    applied: int = 0
    no_pack: int = 0

    def data(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "applied": self.applied,
            "no_pack": self.no_pack,
            "skipped": self.skipped,
            **self.refusal_data(),
        }

    def lines(self) -> list[str]:
        return [
            f"Rows read: {self.rows}",
            f"  applied:  {self.applied} (recorded on a pack)",
            f"  no pack:  {self.no_pack} (billed without a pack, nothing recorded)",
            f"  skipped:  {self.skipped} (already in the store, or nothing to record)",
            *self.refusal_lines("First refused rows:"),
        ]


@attrs.define
class PackSummary(_Refusals):
    """The packs file's rows: opened as migrated, skipped (open already), refused."""

    KEY = "client_id"

    opened: int = 0

    def data(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "opened": self.opened,
            "skipped": self.skipped,
            **self.refusal_data(),
        }

    def lines(self) -> list[str]:
        return [
            f"Packs read: {self.rows}",
            f"  opened:   {self.opened} (as migrated from the other system)",
            f"  skipped:  {self.skipped} (already in the store)",
            *self.refusal_lines("First refused packs:"),
        ]


def _ascii(text: str) -> str:
    """``text`` with any byte that was not UTF-8 written as its escape, printable anywhere."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.active = err.isatty()
        self.started = self.shown = time.monotonic()

    def update(self, summary: Summary, force: bool = False) -> None:
        now = time.monotonic()
        if not self.active or (not force and now - self.shown < 0.25):
            return
        self.shown = now
        rate = summary.rows / max(now - self.started, 1e-9)
        print(
            f"\rimporting: {summary.rows} rows ({summary.applied} applied, {summary.skipped} "
            f"skipped, {summary.refused} refused) {rate:,.0f} rows/s",
            end="",
            file=self.err,
            flush=True,
        )

    def done(self, summary: Summary) -> None:
        if self.active:
            self.update(summary, force=True)
            print(file=self.err)


class _Rejects:
    """The refused rows, as they were (byte for byte), with their line, field and reason."""

    def __init__(self, handle: TextIO, columns: list[str]) -> None:
        fields = ["line", "field", "reason", *columns]
        self.writer = csv.DictWriter(handle, fields, extrasaction="ignore", lineterminator="\n")
        self.writer.writeheader()

    def write(self, record: Record, field: str, reason: str) -> None:
        self.writer.writerow({**record.row, "line": record.line, "field": field, "reason": reason})


Decide = Callable[[Record], Command[tuple[str, str]]]


class _Applying:
    """The rows being applied, in batches (:class:`~sessionpacks._batch.Batch`): each row is
    decided against the states the earlier rows left, and the batch's rows are committed
    together, at most :data:`~sessionpacks._batch.BATCH_ROWS` rows or
    :data:`~sessionpacks._batch.BATCH_SECONDS` at a time. A row counts in the summary, and a
    refused one goes to the rejects file, once its batch is committed, in the order read.

    ``decide`` reads a record into its command (an appointment's by default, or a pack's),
    raising the row's refusal; the command's value names the summary's count to add one to."""

    def __init__(
        self,
        service: PackService,
        summary: _Refusals,
        rejects: _Rejects | None,
        layout: Layout,
        decide: Decide | None = None,
        column: Callable[[str], str] = str,
    ) -> None:
        self.batch: Batch[tuple[str, str]] = Batch(service, live_only=True)
        self.summary = summary
        self.rejects = rejects
        self.layout = layout
        self.decide = decide or partial(_appointment_command, layout=layout)
        self.column = column  # the file's column for a library field
        self.waiting: deque[tuple[Record, tuple[str, str] | None]] = deque()

    def add(self, record: Record) -> None:
        try:
            command = self.decide(record)
        except (RowError, SessionPacksError) as error:
            self.waiting.append((record, _refusal(error)))
            self._settle([])
            return
        self.waiting.append((record, None))
        self._settle(self.batch.add(command))

    def flush(self) -> None:
        self._settle(self.batch.flush())

    def _settle(self, outcomes: list[Outcome[tuple[str, str]]]) -> None:
        """Count the rows now final: refusals read before a committed row, then its outcome."""
        done = iter(outcomes)
        while self.waiting:
            record, problem = self.waiting[0]
            applied = None
            if problem is None:
                outcome = next(done, None)
                if outcome is None:
                    return
                if outcome.error is not None:
                    problem = _refusal(outcome.error)
                elif outcome.value is not None:
                    applied = outcome.value[0]
            self.waiting.popleft()
            self.summary.rows += 1
            if problem is not None:
                self._refuse(record, problem)
            elif applied is not None:
                setattr(self.summary, applied, getattr(self.summary, applied) + 1)

    def _refuse(self, record: Record, problem: tuple[str, str]) -> None:
        key = self.layout.mapped(record.row).get(self.summary.KEY)
        field, reason = problem
        self.summary.refuse(record.line, key, self.column(field), reason)
        if self.rejects is not None:
            self.rejects.write(record, self.column(field), reason)


def _appointment_command(record: Record, layout: Layout) -> Command[tuple[str, str]]:
    row = _parsed(record, layout)
    return lambda service: apply_row(service, row)


def _refusal(error: RowError | SessionPacksError) -> tuple[str, str]:
    """The field and the reason a row is refused with."""
    return error.field, str(error)


def run_import(ctx: Context, args: argparse.Namespace) -> int:
    summary = Summary()
    packs = None if args.packs is None else PackSummary()
    progress = Progress(ctx.err)
    pairs = column_pairs(args.column, KNOWN)
    pack_pairs = _pack_pairs(args)
    with contextlib.ExitStack() as stack:
        stops = stack.enter_context(stopping_cleanly())
        work = stack.enter_context(work_folder(stops))
        source = _source(args.file, work, stops)
        columns = header(source, ())  # before anything is written
        found = layout_of(pairs, columns, KNOWN, COLUMNS, str(source))
        found = found.in_zone(ctx.service.practice.zone)
        packs_file = _packs_file(stack, args, pack_pairs, source)
        rejects = _rejects(stack, args.rejects, source, columns)
        try:
            if packs_file is not None and packs is not None:
                _open_packs(ctx, packs_file, stops, packs)
            _import_all(ctx, args, source, work, stops, summary, rejects, progress, found)
        except (KeyboardInterrupt, Terminated):
            progress.done(summary)
            ctx.emit(*_report(summary, packs, interrupted=True))
            if not ctx.json:  # under --json the summary says so, and main reports the signal
                ctx.note(
                    f"import interrupted after {summary.rows} rows; run it again to apply the "
                    "rest (rows already applied are skipped)"
                )
            raise
    progress.done(summary)
    ctx.emit(*_report(summary, packs))
    return 1 if summary.refused or (packs is not None and packs.refused) else 0


def _report(
    summary: Summary, packs: PackSummary | None, **more: Any
) -> tuple[dict[str, Any], list[str]]:
    """The summary's data and lines: the packs file's first, if there is one."""
    if packs is None:
        return {**summary.data(), **more}, summary.lines()
    return {**summary.data(), "packs": packs.data(), **more}, [*packs.lines(), *summary.lines()]


# The packs file ----------------------------------------------------------------------------


@attrs.frozen
class _PacksFile:
    path: Path
    layout: Layout
    rejects: _Rejects | None


def _pack_pairs(args: argparse.Namespace) -> dict[str, str]:
    """``--packs-column`` as {column: their header}; a usage error for the packs file's
    options without ``--packs``."""
    if args.packs is None:
        for given, option in (
            (args.packs_column, "--packs-column"),
            (args.packs_rejects, "--packs-rejects"),
        ):
            if given:
                raise UsageError(f"{option} needs --packs FILE", argument=option)
        return {}
    return column_pairs(args.packs_column, PACK_KNOWN, option="--packs-column")


def _packs_file(
    stack: contextlib.ExitStack, args: argparse.Namespace, pairs: dict[str, str], source: Path
) -> _PacksFile | None:
    """The packs file, its layout and its rejects file, all checked before anything is
    written; None without ``--packs``."""
    if args.packs is None:
        return None
    path = Path(args.packs)
    if args.packs == "-" or not path.is_file():
        raise UsageError(f"--packs {shown(args.packs)}: no such file", argument="--packs")
    columns = header(path, ())
    layout = layout_of(pairs, columns, PACK_KNOWN, PACK_COLUMNS, str(path), option="--packs-column")
    named = args.packs_rejects
    for other in (source, args.rejects):
        if named is not None and other is not None and _same_file(Path(named), Path(other)):
            raise UsageError(f"--packs-rejects {shown(named)} is a file the import reads or writes")
    rejects = _rejects(stack, named, path, columns, "--packs-rejects")
    return _PacksFile(path, layout, rejects)


def _same_file(one: Path, other: Path) -> bool:
    return one.exists() and other.exists() and one.resolve() == other.resolve()


def _pack_command(record: Record, reader: PackRows) -> Command[tuple[str, str]]:
    row = reader.parse(record)
    return lambda service: (open_row(service, row), "")


def _open_packs(ctx: Context, plan: _PacksFile, stops: Stops, packs: PackSummary) -> None:
    """Open the packs file's packs, in file order, in batches; committed before it returns."""
    reader = PackRows(plan.layout, lambda template_id: ctx.service.template(template_id).terms)
    decide = partial(_pack_command, reader=reader)
    opening = _Applying(ctx.service, packs, plan.rejects, plan.layout, decide, column_of)
    try:
        for record in records(plan.path):
            opening.add(record)
            stops.check()
    except (KeyboardInterrupt, Terminated):
        opening.flush()
        raise
    opening.flush()


def _import_all(
    ctx: Context,
    args: argparse.Namespace,
    source: Path,
    work: Path,
    stops: Stops,
    summary: Summary,
    rejects: _Rejects | None,
    progress: Progress,
    layout: Layout,
) -> None:
    applying = _Applying(ctx.service, summary, rejects, layout)
    try:
        for record in rows_in_start_order(source, args.sort_buffer, work, stops, layout):
            applying.add(record)  # a signal waits for the next check: rows are never cut short
            progress.update(summary)
            stops.check()
    except (KeyboardInterrupt, Terminated):
        applying.flush()  # the rows decided are committed, and counted, before stopping
        raise
    applying.flush()


def _rejects(
    stack: contextlib.ExitStack,
    name: str | None,
    source: Path,
    columns: list[str],
    option: str = "--rejects",
) -> _Rejects | None:
    if name is None:
        return None
    target = Path(name)
    if _same_file(target, source):
        raise UsageError(f"{option} {shown(name)} is the file being imported")
    # surrogateescape: a row refused for a byte that is not UTF-8 is written back as it was.
    handle = stack.enter_context(
        target.open("w", newline="", encoding="utf-8", errors="surrogateescape")
    )
    return _Rejects(handle, columns)


def _source(name: str, work: Path, stops: Stops) -> Path:
    """The file to read; standard input (``-``) is spooled to disk so it can be read twice."""
    if name != "-":
        source = Path(name)
        if not source.is_file():
            raise UsageError(f"{shown(name)}: no such file")
        return source
    spooled = work / "stdin.csv"
    binary = getattr(sys.stdin, "buffer", None)
    # Interruptible: standard input may never end (a terminal), and no check is reached while
    # a read waits; the signal raises at once, and the spooled part goes with the work folder.
    with spooled.open("wb") as out, stops.interruptible():
        if binary is not None:  # bytes as they are: a byte that is not UTF-8 refuses its row
            shutil.copyfileobj(binary, out)
        else:
            for text in sys.stdin:
                out.write(text.encode("utf-8", "surrogateescape"))
    return spooled


# Export ------------------------------------------------------------------------------------

KINDS = ("packs", "ledgers", "events")


def _pack_ids(service: PackService) -> Iterator[str]:
    for recorded in events_after(service):
        if isinstance(recorded.event, PackOpened):
            yield recorded.event.pack_id


def _text(value: Any) -> str:
    data = jsonable(value)
    if isinstance(data, dict) and set(data) == {"amount", "currency"}:
        return str(data["amount"])
    return "" if data is None else data if isinstance(data, str) else json.dumps(data)


def _records(service: PackService, kind: str, now: datetime) -> Iterator[dict[str, Any]]:
    if kind == "events":
        for recorded in events_after(service):
            event = jsonable(recorded.event)
            yield {"position": recorded.position, **event}
        return
    for pack_id in _pack_ids(service):
        if kind == "packs":
            yield _pack_record(service.pack(pack_id), now)
        else:
            for entry in service.ledger(pack_id):
                yield jsonable(entry)


def _pack_record(pack: PackState, now: datetime) -> dict[str, Any]:
    return {
        **pack_summary(pack, now),
        "currency": pack.terms.currency,
        "sessions_active": len(pack.usages),
    }


_CSV_FIELDS = {
    "packs": [
        "pack_id",
        "client_id",
        "name",
        "metric",
        "status",
        "total",
        "remaining",
        "currency",
        "expiry_date",
        "opened_at",
        "template_id",
        "template_version",
        "sessions_active",
        "version",
        "shared_with",
    ],
    "ledgers": ["pack_id", "sequence", "type", "recorded_at", "appointment_id", "details"],
    "events": [
        "position",
        "event_id",
        "type",
        "pack_id",
        "client_id",
        "occurred_at",
        "appointment_id",
        "details",
    ],
}


def _csv_row(kind: str, record: dict[str, Any]) -> dict[str, str]:
    fields = _CSV_FIELDS[kind]
    row = {k: _text(record.get(k)) for k in fields if k != "details"}
    if kind == "packs" and not record.get("shared_with"):
        row["shared_with"] = ""  # a pack of its owner alone: an empty cell, not "[]"
    if kind != "packs":
        appointment = record.get("appointment")
        if isinstance(appointment, dict):
            row["appointment_id"] = str(appointment.get("id", ""))
        rest = {k: v for k, v in record.items() if k not in fields}
        row["details"] = json.dumps(rest, ensure_ascii=False, sort_keys=True)
    return row


def run_export(ctx: Context, args: argparse.Namespace) -> int:
    kinds = args.what or list(KINDS)
    now = ctx.now()
    if args.format == "csv" and len(kinds) > 1:
        if not args.output:
            raise UsageError("CSV of several kinds needs --output DIRECTORY (one file each)")
        folder = Path(args.output)
        folder.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            with (folder / f"{kind}.csv").open("w", newline="", encoding="utf-8") as out:
                _write(ctx, kind, out, "csv", now)
        ctx.note(f"wrote {', '.join(f'{k}.csv' for k in kinds)} in {folder}")
        return 0
    if args.output:
        with Path(args.output).open("w", newline="", encoding="utf-8") as out:
            for kind in kinds:
                _write(ctx, kind, out, args.format, now)
        return 0
    for kind in kinds:
        _write(ctx, kind, ctx.out, args.format, now)
    return 0


def _write(ctx: Context, kind: str, out: TextIO, fmt: str, now: datetime) -> None:
    records = _records(ctx.service, kind, now)
    if fmt == "jsonl":
        singular = kind.rstrip("s").replace("ledger", "entry")
        for record in records:
            out.write(json.dumps({"kind": singular, **record}, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, _CSV_FIELDS[kind], lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(_csv_row(kind, record))


def register(top: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        top,
        "import",
        help="apply appointments from a CSV file, in start order, idempotently",
        description="Apply appointments from a CSV file (see docs/cli.md for the columns) in "
        "start order, each with the client's default unless the row names a pack_id or "
        "template_id. Rows already in the store are skipped, so a re-run applies only what is "
        "missing. An unsorted file is sorted on disk in bounded memory. With --packs, the packs "
        "of another system (one row a pack) are opened as migrated first (R19), so the "
        "appointments go on from them. Exit status 1 if any row was refused.",
        example="sessionpacks --timezone Australia/Sydney import appointments.csv "
        "--rejects refused.csv\n"
        "sessionpacks import appointments.csv --packs packs.csv --packs-rejects refused-packs.csv",
        run=run_import,
        common=common,
    )
    p.add_argument("file", metavar="FILE", type=path, help="the CSV file, or - for standard input")
    p.add_argument(
        "--sort-buffer",
        type=positive_int,
        default=100_000,
        metavar="ROWS",
        help="rows sorted in memory at a time when the file is not sorted (default 100000)",
    )
    p.add_argument(
        "--rejects",
        metavar="PATH",
        type=path,
        help="write refused rows with their line, field and reason to this CSV",
    )
    p.add_argument(
        "--column",
        action="append",
        type=nonblank,
        metavar="'HEADER=COLUMN'",
        help="read the file's column HEADER as the import's COLUMN, e.g. "
        "'Appointment ID=appointment_id' (repeatable)",
    )
    packs = p.add_argument_group("packs sold in another system (R19)")
    packs.add_argument(
        "--packs",
        metavar="PATH",
        type=path,
        help="a CSV of packs (one row a pack: client_id, template_id or the pack's terms "
        "(name, allowance, price, ...), opened_on, used, ...), opened as migrated before the "
        "appointments are read",
    )
    packs.add_argument(
        "--packs-rejects",
        metavar="PATH",
        type=path,
        help="write refused pack rows with their line, field and reason to this CSV",
    )
    packs.add_argument(
        "--packs-column",
        action="append",
        type=nonblank,
        metavar="'HEADER=COLUMN'",
        help="read the packs file's column HEADER as its COLUMN, e.g. 'Opened=opened_on' "
        "(repeatable)",
    )
    p = add_command(
        top,
        "export",
        help="write packs, ledgers and events as JSON Lines or CSV",
        example="sessionpacks export --what packs --format csv > packs.csv\n"
        "sessionpacks export --format csv --output export/\n"
        "sessionpacks export --output everything.jsonl",
        run=run_export,
        common=common,
    )
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default jsonl")
    p.add_argument(
        "--what", action="append", choices=KINDS, help="what to write (repeatable; default all)"
    )
    p.add_argument(
        "--output",
        metavar="PATH",
        type=path,
        help="a file (a directory for CSV of several kinds); default standard output",
    )
