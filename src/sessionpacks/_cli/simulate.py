"""``sessionpacks simulate``: a made-up practice run week by week through a real store.

Templates of every metric, clients with preferences, weekly bookings, cancellations, late
cancels, no-shows, reschedules, invoices and a weekly expiry sweep, all on a fixed clock and a
seeded random generator: the same seed gives the same practice and the same counts.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from sessionpacks import _compose as compose
from sessionpacks._limits import LAST_DAY
from sessionpacks.clock import FixedClock
from sessionpacks.errors import SessionPacksError
from sessionpacks.model import (
    Allowance,
    Appointment,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    Money,
    NoExpiry,
    PackTerms,
    Period,
    PerPack,
    PerSession,
    Policies,
    Preference,
    PreferService,
    PreferTemplate,
    Tier,
)
from sessionpacks.resolution import UsePack
from sessionpacks.service import PackService

from . import store as stores
from .base import Subparsers, add_command
from .context import Context
from .demo import fresh_file
from .store import UsageError
from .stream import events_after
from .values import day, integer, positive_int

__all__ = ["register"]

SIM_DB = "sessionpacks-simulate.db"
SIM_PRACTICE = "simulated-clinic"
MAX_CLIENTS = 100_000
ZONE = ZoneInfo("Australia/Sydney")


def _aud(amount: str) -> Money:
    return Money(amount, "AUD")


# service id -> (duration, price)
SERVICES = {
    "physio": (timedelta(minutes=45), _aud("120.00")),
    "pilates": (timedelta(minutes=60), _aud("35.00")),
    "massage": (timedelta(minutes=60), _aud("110.00")),
    "massage-long": (timedelta(minutes=90), _aud("150.00")),
}

TEMPLATES = {
    "physio-10": PackTerms(
        "10 x Physio",
        Allowance.sessions(10),
        PerPack(_aud("1000.00")),
        ExpiresAfterOpening(Period(months=6)),
        {"physio"},
        Policies(low_balance_at=2),
    ),
    "pilates-8": PackTerms(
        "Pilates 8-class pass",
        Allowance.sessions(8),
        PerSession((Tier(1, _aud("35.00")), Tier(2, _aud("28.00")))),
        ExpiresAfterFirstUse(Period(weeks=8)),
        {"pilates"},
        Policies(late_cancel_consumes=True, no_show_consumes=True, low_balance_at=1),
    ),
    "massage-5h": PackTerms(
        "5 hours of massage",
        Allowance.hours(timedelta(hours=5)),
        PerPack(_aud("550.00")),
        ExpiresAfterOpening(Period(months=2)),
        {"massage", "massage-long"},
        Policies(no_show_consumes=True),
    ),
    "wellness-500": PackTerms(
        "Wellness credit 500",
        Allowance.money(_aud("500.00")),
        PerPack(_aud("450.00")),
        NoExpiry(),
    ),
}


@attrs.frozen
class Client:
    id: str
    preference: Preference | None
    services: tuple[str, ...]
    visits: float  # chance of a booking in a given week


@attrs.define
class Tally:
    counts: Counter[str] = attrs.Factory(Counter)
    refused: Counter[str] = attrs.Factory(Counter)
    operations: int = 0

    def attempt(self, what: str, action: Callable[[], Any]) -> Any:
        self.operations += 1
        try:
            return action()
        except SessionPacksError as error:
            self.refused[f"{what}: {error.rule or type(error).__name__} {error.field}"] += 1
            return None


class Simulation:
    def __init__(self, service: PackService, clock: FixedClock, seed: int) -> None:
        self.desk = service
        self.clock = clock
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.serial = itertools.count(1)

    def clients(self, count: int) -> list[Client]:
        made = []
        for n in range(1, count + 1):
            roll = self.rng.random()
            template = self.rng.choice(sorted(TEMPLATES))
            if roll < 0.6:
                preference: Preference | None = PreferTemplate(template)
                services = tuple(sorted(TEMPLATES[template].eligible_services)) or ("physio",)
            elif roll < 0.75:
                service = self.rng.choice(sorted(SERVICES))
                preference, services = PreferService(service), (service,)
            else:
                preference, services = None, tuple(sorted(SERVICES))
            client = Client(f"c{n:05d}", preference, services, self.rng.uniform(0.3, 1.0))
            if preference is not None:
                self.desk.set_preference(client.id, preference)
            made.append(client)
        return made

    def week(self, monday: date, clients: list[Client]) -> None:
        self.clock.set(datetime.combine(monday, datetime.min.time(), ZONE) + timedelta(hours=7))
        booked = [self.book(c, monday) for c in clients if self.rng.random() < c.visits]
        for appointment, on_pack in sorted(
            (b for b in booked if b is not None), key=lambda b: b[0].start
        ):
            self.outcome(appointment, on_pack)
        # The sweep as of the next Monday, run just after midnight: a sweep cannot look ahead.
        next_monday = monday + timedelta(days=7)
        self.clock.set(datetime.combine(next_monday, datetime.min.time(), ZONE))
        swept = self.tally.attempt("sweep", lambda: self.desk.sweep(next_monday))
        self.tally.counts["packs expired by the sweep"] += len(swept or ())

    def book(self, client: Client, monday: date) -> tuple[Appointment, bool] | None:
        service = self.rng.choice(client.services)
        length, price = SERVICES[service]
        start = datetime.combine(
            monday + timedelta(days=self.rng.randrange(6)),
            datetime.min.time(),
            ZONE,
        ) + timedelta(hours=self.rng.randrange(8, 18), minutes=self.rng.choice((0, 30)))
        appointment = Appointment(
            f"a{next(self.serial):07d}", client.id, service, start, length, price
        )
        self.tally.counts["appointments booked"] += 1
        assignment = self.tally.attempt("book", lambda: self.desk.book(appointment))
        if assignment is not None and assignment.label is None and client.preference is None:
            offered = self.desk.choices(appointment)
            if offered and self.rng.random() < 0.5:  # the receptionist picks the first choice
                action = offered[0].action
                pack_id = action.pack_id if isinstance(action, UsePack) else None
                template_id = None if pack_id else getattr(action, "template_id", None)
                assignment = self.tally.attempt(
                    "assign",
                    lambda: self.desk.assign(appointment, pack_id=pack_id, template_id=template_id),
                )
        on_pack = assignment is not None and assignment.label is not None
        if assignment is not None and assignment.opened:
            self.tally.counts["packs opened on an appointment"] += 1
        self.tally.counts["on a pack" if on_pack else "without a pack"] += 1
        return appointment, on_pack

    def outcome(self, appointment: Appointment, on_pack: bool) -> None:
        roll = self.rng.random()
        if not on_pack:
            return
        a = appointment.id
        if roll < 0.07:
            self.clock.set(appointment.start - timedelta(days=3))
            self.tally.attempt("cancel", lambda: self.desk.cancel(a))
            self.tally.counts["cancelled"] += 1
        elif roll < 0.11:
            self.clock.set(appointment.start - timedelta(hours=3))
            self.tally.attempt("cancel", lambda: self.desk.cancel(a))
            self.tally.counts["late cancels"] += 1
        elif roll < 0.14:
            self.clock.set(appointment.start + timedelta(hours=1))
            self.tally.attempt("no-show", lambda: self.desk.no_show(a))
            self.tally.counts["no-shows"] += 1
        else:
            if roll < 0.17:
                moved = appointment.start + timedelta(days=self.rng.randrange(1, 4))
                self.clock.set(appointment.start - timedelta(days=1))
                self.tally.attempt("reschedule", lambda: self.desk.reschedule(a, moved))
                self.tally.counts["rescheduled"] += 1
            self.clock.set(max(self.clock.now(), appointment.start + appointment.duration))
            line = self.tally.attempt("invoice", lambda: self.desk.invoice_line(a))
            self.tally.counts["invoice lines"] += line is not None


def _events(service: PackService) -> Counter[str]:
    return Counter(type(r.event).__name__ for r in events_after(service))


def _check_size(args: argparse.Namespace) -> None:
    """Refuse a run that would leave the dates the library accepts (R18) or never end."""
    if args.clients > MAX_CLIENTS:
        raise UsageError(f"--clients {args.clients}: at most {MAX_CLIENTS:,}")
    # Bookings, reschedules and the sweep reach two weeks past the last week's Monday.
    weeks_left = ((LAST_DAY - timedelta(weeks=2)) - args.start).days // 7
    if args.weeks > weeks_left:
        raise UsageError(
            f"--weeks {args.weeks} from {args.start} runs past {LAST_DAY}, the last date "
            f"the library accepts: at most {max(weeks_left, 0)} weeks"
        )


def simulate(ctx: Context, args: argparse.Namespace) -> int:
    _check_size(args)
    started = time.perf_counter()
    if args.database_url:
        store = stores.open_store(args)
        practice = f"simulated-{args.seed}-{uuid.uuid4().hex[:8]}"
        where = f"{args.database_url} (practice {practice})"
    else:
        path = Path(args.db or SIM_DB).resolve()
        fresh_file(path, SIM_PRACTICE, "simulation")
        args.db = str(path)
        store, practice, where = stores.open_store(args), SIM_PRACTICE, str(path)
    try:
        clock = FixedClock(datetime.combine(args.start, datetime.min.time(), ZONE))
        counter = itertools.count(1)
        service = compose.open_service(
            store, practice, ZONE.key, clock, new_pack_id=lambda: f"sp{next(counter):06d}"
        )
        for template_id, terms in TEMPLATES.items():
            service.add_template(template_id, terms)
        sim = Simulation(service, clock, args.seed)
        clients = sim.clients(args.clients)
        monday = args.start - timedelta(days=args.start.weekday())
        for week in range(args.weeks):
            sim.week(monday + timedelta(weeks=week), clients)
        events = _events(service)
    finally:
        compose.close(store)
    seconds = time.perf_counter() - started
    _report(ctx, args, sim.tally, events, where, seconds)
    return 0


def _report(
    ctx: Context,
    args: argparse.Namespace,
    tally: Tally,
    events: Counter[str],
    where: str,
    seconds: float,
) -> None:
    data = {
        "clients": args.clients,
        "weeks": args.weeks,
        "seed": args.seed,
        "database": where,
        "counts": dict(sorted(tally.counts.items())),
        "refused": dict(sorted(tally.refused.items())),
        "events": dict(sorted(events.items())),
        "operations": tally.operations,
        "seconds": round(seconds, 3),
    }
    rate = tally.operations / seconds if seconds else 0.0
    lines = [
        f"Simulated {args.clients} clients over {args.weeks} weeks (seed {args.seed}) in {where}",
        *(f"  {name:<32} {count:>8,}" for name, count in sorted(tally.counts.items())),
        f"Refused by the rules: {sum(tally.refused.values()):,}",
        *(f"  {name:<40} {count:>8,}" for name, count in tally.refused.most_common()),
        f"Events: {sum(events.values()):,}",
        *(f"  {name:<32} {count:>8,}" for name, count in sorted(events.items())),
        f"Took {seconds:.2f} s for {tally.operations:,} operations ({rate:,.0f} per second).",
    ]
    ctx.emit(data, lines)


def register(top: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        top,
        "simulate",
        help="run a made-up practice through the store and time it",
        description="Generate a practice (templates of every metric, clients with preferences, "
        "weekly bookings, cancellations, late cancels, no-shows, reschedules, expiries) and run "
        "it through the store. With SQLite it uses its own file, sessionpacks-simulate.db (or "
        "--db), recreated on every run; with --database-url it adds a new practice.",
        example="sessionpacks simulate --clients 200 --weeks 12 --seed 7",
        run=simulate,
        common=common,
    )
    p.add_argument("--clients", type=positive_int, default=50, metavar="N", help="default 50")
    p.add_argument("--weeks", type=positive_int, default=8, metavar="W", help="default 8")
    p.add_argument("--seed", type=integer, default=1, metavar="S", help="random seed (default 1)")
    p.add_argument(
        "--start",
        type=day,
        default=date(2026, 3, 2),
        metavar="DATE",
        help="the first week's date (default 2026-03-02)",
    )
