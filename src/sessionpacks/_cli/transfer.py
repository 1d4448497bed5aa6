"""``import`` of appointments from CSV, and ``export`` of packs, ledgers and events.

Import streams: rows are applied in start order one at a time, so memory does not grow with the
file. A file not sorted by start is sorted on disk first (runs of ``--sort-buffer`` rows, then a
merge), in bounded memory. Re-running an import applies only what is missing: what the store
already holds (an appointment already active on a pack) is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import heapq
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, TextIO

import attrs

from sessionpacks.errors import SessionPacksError
from sessionpacks.events import PackOpened
from sessionpacks.ledger import Mark, PackState
from sessionpacks.model import Appointment, Money, Preference, PreferPack, PreferTemplate
from sessionpacks.resolution import OpenPack, UsePack
from sessionpacks.service import PackService

from .base import Subparsers, add_command
from .context import Context
from .render import jsonable
from .store import UsageError
from .stream import events_after
from .values import duration, instant, positive_int

__all__ = ["COLUMNS", "register"]

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
STATUSES = {
    "booked": "booked",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "late_cancel": "late_cancel",
    "late-cancel": "late_cancel",
    "no_show": "no_show",
    "no-show": "no_show",
}
_MAX_EXAMPLES = 20
_KEY_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


class RowError(Exception):
    """A row that cannot be read; its message names the column and the value."""


# Reading rows in start order ---------------------------------------------------------------


def _open_csv(path: Path) -> tuple[IO[str], csv.DictReader[str]]:
    handle = path.open(newline="", encoding="utf-8-sig")
    reader = csv.DictReader(handle)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        handle.close()
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)}; see docs/cli.md")
    return handle, reader


def _key(row: dict[str, str]) -> str:
    """A sortable key: the start in UTC, fixed width; "" for a start that cannot be read."""
    try:
        start = instant(row.get("start") or "")
    except argparse.ArgumentTypeError:
        return ""
    return start.astimezone(UTC).strftime(_KEY_FORMAT)


def _is_sorted(path: Path) -> bool:
    handle, reader = _open_csv(path)
    with handle:
        last = ""
        for row in reader:
            key = _key(row)
            if key and key < last:
                return False
            last = max(last, key)
    return True


Numbered = tuple[int, dict[str, str]]


def _numbered(reader: csv.DictReader[str]) -> Iterator[Numbered]:
    for row in reader:
        yield reader.line_num, row


def rows_in_start_order(path: Path, buffer: int, workdir: Path) -> Iterator[Numbered]:
    """The rows with their line numbers, by start (ties in file order), in bounded memory.

    A sorted file is streamed as it is. Otherwise runs of ``buffer`` rows are sorted into
    temporary files in ``workdir`` and merged; rows whose start cannot be read come first.
    """
    if _is_sorted(path):
        handle, reader = _open_csv(path)
        with handle:
            yield from _numbered(reader)
        return
    runs: list[Path] = []
    handle, reader = _open_csv(path)
    with handle:
        chunk: list[tuple[str, int, dict[str, str]]] = []
        for line, row in _numbered(reader):
            chunk.append((_key(row), line, row))
            if len(chunk) >= buffer:
                runs.append(_write_run(chunk, workdir, len(runs)))
                chunk = []
        if chunk:
            runs.append(_write_run(chunk, workdir, len(runs)))
    handles = [run.open(newline="", encoding="utf-8") for run in runs]
    try:
        streams = [_read_run(h) for h in handles]
        for _, line, row in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            yield line, row
    finally:
        for h in handles:
            h.close()


def _write_run(chunk: list[tuple[str, int, dict[str, str]]], workdir: Path, n: int) -> Path:
    chunk.sort(key=lambda item: (item[0], item[1]))
    path = workdir / f"run-{n:05d}.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for key, line, row in chunk:
            out.write(json.dumps([key, line, row], ensure_ascii=False) + "\n")
    return path


def _read_run(handle: IO[str]) -> Iterator[tuple[str, int, dict[str, str]]]:
    for text in handle:
        key, line, row = json.loads(text)
        yield key, line, row


# Applying one row --------------------------------------------------------------------------


@attrs.frozen
class Row:
    line: int
    appointment: Appointment
    status: str
    explicit: Preference | None


def _cell(row: dict[str, str], column: str) -> str:
    value = (row.get(column) or "").strip()
    if not value and column not in OPTIONAL and column != "status":
        raise RowError(f"{column} is empty")
    return value


def parse_row(line: int, row: dict[str, str]) -> Row:
    """The appointment, status and explicit pack or template a CSV row describes."""
    try:
        start = instant(_cell(row, "start"))
        length = duration(_cell(row, "duration"))
    except argparse.ArgumentTypeError as error:
        raise RowError(str(error)) from None
    try:
        amount = Decimal(_cell(row, "price"))
    except InvalidOperation:
        raise RowError(f"price={row.get('price')!r} is not an amount (e.g. 120.00)") from None
    status_text = _cell(row, "status").lower() or "booked"
    status = STATUSES.get(status_text)
    if status is None:
        raise RowError(f"status={status_text!r} must be booked, cancelled, late_cancel or no_show")
    pack_id, template_id = _cell(row, "pack_id"), _cell(row, "template_id")
    if pack_id and template_id:
        raise RowError("give pack_id or template_id, not both")
    explicit: Preference | None = (
        PreferPack(pack_id) if pack_id else PreferTemplate(template_id) if template_id else None
    )
    appointment = Appointment(
        id=_cell(row, "appointment_id"),
        client_id=_cell(row, "client_id"),
        service_id=_cell(row, "service_id"),
        start=start,
        duration=length,
        price=Money(amount, _cell(row, "currency").upper()),
    )
    return Row(line, appointment, status, explicit)


def _record(service: PackService, row: Row) -> str:
    explicit = row.explicit
    if isinstance(explicit, PreferPack):
        assignment = service.assign(row.appointment, pack_id=explicit.pack_id)
    elif isinstance(explicit, PreferTemplate):
        assignment = service.assign(row.appointment, template_id=explicit.template_id)
    else:
        assignment = service.book(row.appointment)
    return "applied" if assignment.label is not None else "no_pack"


def _consumes(service: PackService, row: Row, why: Mark) -> bool | None:
    """Whether the pack the row would use keeps a late cancel or no-show; None: no pack."""
    action = service.decide(row.appointment, row.explicit).action
    if isinstance(action, UsePack):
        policies = service.pack(action.pack_id).terms.policies
    elif isinstance(action, OpenPack):
        policies = service.repository.template(action.template_id).terms.policies
    else:
        return None
    return policies.late_cancel_consumes if why is Mark.LATE_CANCEL else policies.no_show_consumes


def apply_row(service: PackService, row: Row) -> tuple[str, str]:
    """Apply one row; returns the outcome (applied, no_pack, skipped) and a note."""
    appointment_id = row.appointment.id
    holder = service.repository.pack_of_appointment(appointment_id)
    active: PackState | None = service.pack(holder) if holder else None
    if row.status == "booked":
        if active is not None:
            return "skipped", "already on a pack"
        return _record(service, row), ""
    if row.status == "cancelled":
        if active is None:
            return "skipped", "cancelled and not on a pack: nothing to record"
        # A cancellation copied from a spreadsheet is taken as made in good time.
        service.cancel(appointment_id, cancelled_at=datetime.min.replace(tzinfo=UTC))
        return "applied", "released"
    why = Mark.LATE_CANCEL if row.status == "late_cancel" else Mark.NO_SHOW
    if active is not None:
        usage = active.usage(appointment_id)
        if usage is not None and usage.mark is why:
            return "skipped", "already marked"
        state = (
            service.late_cancel(appointment_id)
            if why is Mark.LATE_CANCEL
            else (service.no_show(appointment_id))
        )
        return "applied", "marked" if state.usage(appointment_id) else "released"
    consumes = _consumes(service, row, why)
    if not consumes:
        return "skipped", "nothing to record: no pack keeps it under its policy"
    outcome = _record(service, row)
    if why is Mark.LATE_CANCEL:
        service.late_cancel(appointment_id)
    else:
        service.no_show(appointment_id)
    return outcome, "marked"


# The command -------------------------------------------------------------------------------


@attrs.define
class Summary:
    rows: int = 0
    applied: int = 0
    no_pack: int = 0
    skipped: int = 0
    refused: int = 0
    reasons: Counter[str] = attrs.Factory(Counter)
    examples: list[dict[str, Any]] = attrs.Factory(list)

    def refuse(self, line: int, row: dict[str, str], reason: str, group: str) -> None:
        self.refused += 1
        self.reasons[group] += 1
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append(
                {"line": line, "appointment_id": row.get("appointment_id"), "reason": reason}
            )

    def data(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "applied": self.applied,
            "no_pack": self.no_pack,
            "skipped": self.skipped,
            "refused": self.refused,
            "reasons": dict(self.reasons.most_common()),
            "examples": self.examples,
        }

    def lines(self) -> list[str]:
        lines = [
            f"Rows read: {self.rows}",
            f"  applied:  {self.applied} (recorded on a pack)",
            f"  no pack:  {self.no_pack} (billed without a pack, nothing recorded)",
            f"  skipped:  {self.skipped} (already in the store, or nothing to record)",
            f"  refused:  {self.refused}",
        ]
        lines += [f"    {count:>7}  {reason}" for reason, count in self.reasons.most_common()]
        if self.examples:
            lines.append("First refused rows:")
            lines += [
                f"  line {e['line']} ({e['appointment_id']}): {e['reason']}" for e in self.examples
            ]
        return lines


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


def _group(error: Exception) -> str:
    if isinstance(error, SessionPacksError):
        return f"{error.rule or type(error).__name__}: {error.field}"
    return "unreadable row"


def run_import(ctx: Context, args: argparse.Namespace) -> int:
    service = ctx.service
    summary = Summary()
    progress = Progress(ctx.err)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sessionpacks-")))
        rejects = None
        if args.rejects:
            handle = stack.enter_context(Path(args.rejects).open("w", newline="", encoding="utf-8"))
            rejects = _Rejects(handle)
        source = _source(args.file, work)
        for line, raw in rows_in_start_order(source, args.sort_buffer, work):
            summary.rows += 1
            try:
                outcome, _ = apply_row(service, parse_row(line, raw))
            except (RowError, SessionPacksError) as error:
                summary.refuse(line, raw, str(error), _group(error))
                if rejects:
                    rejects.write(line, raw, str(error))
            else:
                setattr(summary, outcome, getattr(summary, outcome) + 1)
            progress.update(summary)
    progress.done(summary)
    ctx.emit(summary.data(), summary.lines())
    return 1 if summary.refused else 0


def _source(name: str, work: Path) -> Path:
    """The file to read; standard input (``-``) is spooled to disk so it can be read twice."""
    if name != "-":
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"{name}: no such file")
        return path
    spooled = work / "stdin.csv"
    with spooled.open("w", encoding="utf-8", newline="") as out:
        shutil.copyfileobj(sys.stdin, out)
    return spooled


class _Rejects:
    """The refused rows, as they were, with their line number and the reason."""

    def __init__(self, handle: TextIO) -> None:
        self.handle = handle
        self.writer: csv.DictWriter[str] | None = None

    def write(self, line: int, row: dict[str, str], reason: str) -> None:
        if self.writer is None:
            fields = ["line", "reason", *(k for k in row if k is not None)]
            self.writer = csv.DictWriter(
                self.handle, fields, extrasaction="ignore", lineterminator="\n"
            )
            self.writer.writeheader()
        self.writer.writerow({**row, "line": line, "reason": reason})


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
            for entry in service.repository.ledger(pack_id):
                yield jsonable(entry)


def _pack_record(pack: PackState, now: datetime) -> dict[str, Any]:
    return {
        "pack_id": pack.pack_id,
        "client_id": pack.client_id,
        "name": pack.terms.name,
        "metric": pack.metric.value,
        "status": pack.status(now).value,
        "total": jsonable(pack.total),
        "remaining": jsonable(pack.remaining),
        "currency": pack.terms.currency,
        "expiry_date": jsonable(pack.expiry_date),
        "opened_at": pack.opened_at.isoformat(),
        "template_id": pack.template_id,
        "template_version": pack.template_version,
        "sessions_active": len(pack.usages),
        "version": pack.version,
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
        "missing. An unsorted file is sorted on disk in bounded memory. Exit status 1 if any "
        "row was refused.",
        example="sessionpacks --timezone Australia/Sydney import appointments.csv "
        "--rejects refused.csv",
        run=run_import,
        common=common,
    )
    p.add_argument("file", metavar="FILE", help="the CSV file, or - for standard input")
    p.add_argument(
        "--sort-buffer",
        type=positive_int,
        default=100_000,
        metavar="ROWS",
        help="rows sorted in memory at a time when the file is not sorted (default 100000)",
    )
    p.add_argument("--rejects", metavar="PATH", help="write refused rows and why to this CSV")
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
        help="a file (a directory for CSV of several kinds); default standard output",
    )
