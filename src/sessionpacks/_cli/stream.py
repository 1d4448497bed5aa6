"""The event stream and the expiry sweep."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from datetime import date

from sessionpacks.events import EVENT_TYPES, RecordedEvent
from sessionpacks.service import PackService

from .base import Subparsers, add_command, add_idempotency_key, keyed
from .context import Context
from .render import describe_event, jsonable
from .values import day, positive_int, shown, whole

__all__ = ["events_after", "register"]

_EVENT_NAMES = sorted(kind.__name__ for kind in EVENT_TYPES)
_PAGE = 500


def _seconds(text: str) -> float:
    try:
        value = float(text) if len(text) <= 100 else -1.0
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:  # NaN fails too
        raise argparse.ArgumentTypeError(
            f"{shown(text)} must be a number of seconds from 0 to 3600"
        )
    return value


def _event_data(recorded: RecordedEvent) -> object:
    return {"position": recorded.position, "event": jsonable(recorded.event)}


def _print(ctx: Context, recorded: RecordedEvent) -> None:
    if ctx.json:
        print(json.dumps(_event_data(recorded), ensure_ascii=False), file=ctx.out)
    else:
        print(describe_event(recorded), file=ctx.out)


def events_after(service: PackService, position: int = 0) -> Iterator[RecordedEvent]:
    """Every event after ``position``, read a page at a time."""
    while True:
        page = service.events_since(position, _PAGE)
        yield from page
        if len(page) < _PAGE:
            return
        position = page[-1].position


def events(ctx: Context, args: argparse.Namespace) -> int:
    """Print events after ``--since``; with ``--follow``, keep polling."""
    position: int = args.since
    wanted = set(args.type or ())
    printed = polls = 0
    while True:
        polls += 1
        for recorded in events_after(ctx.service, position):
            position = recorded.position
            if args.limit is not None and printed >= args.limit:
                return 0
            if not wanted or type(recorded.event).__name__ in wanted:
                _print(ctx, recorded)
                printed += 1
        ctx.out.flush()
        if not args.follow or (args.max_polls is not None and polls >= args.max_polls):
            break
        time.sleep(args.interval)
    if not ctx.json and not args.follow:
        ctx.note(f"(up to position {position}: continue with --since {position})")
    return 0


def sweep(ctx: Context, args: argparse.Namespace) -> int:
    as_of: date = args.as_of or ctx.service.today()
    expired = ctx.service.sweep(as_of, **keyed(args))
    lines = [f"Expiry sweep as of {as_of.isoformat()}: {len(expired)} pack(s) expired."]
    lines += [f"  {describe_event(e)}" for e in expired]
    ctx.emit({"as_of": as_of, "events": [_event_data(e) for e in expired]}, lines)
    return 0


def register(top: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        top,
        "events",
        help="the event stream after a position (JSON Lines with --json)",
        example="sessionpacks events --since 120 --type PackExhausted --type PackExpired\n"
        "sessionpacks events --follow --interval 2 --json",
        run=events,
        common=common,
    )
    p.add_argument(
        "--since",
        type=whole,
        default=0,
        metavar="POSITION",
        help="print events after this position (default 0: all)",
    )
    p.add_argument("--type", action="append", choices=_EVENT_NAMES, help="only these kinds")
    p.add_argument("--limit", type=positive_int, metavar="N", help="stop after N events")
    p.add_argument("--follow", action="store_true", help="keep polling for new events")
    p.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between polls with --follow (default 1)",
    )
    p.add_argument(
        "--max-polls", type=positive_int, metavar="N", help="with --follow, stop after N polls"
    )
    p = add_command(
        top,
        "sweep",
        help="expiry sweep: PackExpired once per expired pack with something left",
        example="sessionpacks sweep 2026-04-16",
        run=sweep,
        common=common,
    )
    p.add_argument(
        "as_of",
        nargs="?",
        type=day,
        metavar="DATE",
        help="the date to sweep as of (default: today in the practice's time zone)",
    )
    add_idempotency_key(p)
