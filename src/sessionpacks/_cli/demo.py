"""``sessionpacks demo``: a receptionist's walkthrough of the library, on a fixed clock.

It keeps its data in its own SQLite file (``sessionpacks-demo.db`` in the current folder, or
``--db``), deleted and recreated on every run so that every run prints the same thing. To keep
a user's database safe it deletes a file only if it holds the demo's practice.
"""

from __future__ import annotations

import argparse
import itertools
import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sessionpacks import _compose as compose
from sessionpacks.clock import FixedClock
from sessionpacks.errors import SessionPacksError
from sessionpacks.events import ExpiringSoon, PackExhausted, PackExpired, RecordedEvent
from sessionpacks.ledger import Migration
from sessionpacks.model import (
    Allowance,
    Appointment,
    BundleLine,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    Money,
    PackTerms,
    Period,
    PerPack,
    PerSession,
    Policies,
    PreferPack,
    PreferTemplate,
    format_amount,
)
from sessionpacks.pricing import figures
from sessionpacks.service import Assignment, PackService

from .appointments import assignment_text
from .base import Subparsers, add_command
from .context import Context
from .render import invoice_text, pack_line, session_line, several_clients, template_lines
from .store import UsageError

__all__ = ["DEMO_DB", "DEMO_PRACTICE", "fresh_file", "register"]

DEMO_DB = "sessionpacks-demo.db"
DEMO_PRACTICE = "demo-clinic"
ZONE = "Australia/Sydney"
SYDNEY = ZoneInfo(ZONE)
CLIENTS = {
    "alice": "Alice Nguyen",
    "ben": "Ben Carter",
    "chloe": "Chloe Park",
    "dev": "Dev Patel",
    "erin": "Erin Walsh",
    "farah": "Farah Haddad",
    "gus": "Gus Haddad",
    "hana": "Hana Kim",
    "leo": "Leo Kim",
    "ivy": "Ivy Chen",
}


def _aud(amount: str) -> Money:
    return Money(amount, "AUD")


def _at(text: str) -> datetime:
    """A Sydney wall-clock time: ``"2026-03-02 09:00"``."""
    return datetime.fromisoformat(text).replace(tzinfo=SYDNEY)


class _Walkthrough:
    """The demo's script: each step acts through :class:`PackService` and says what happened."""

    def __init__(self, ctx: Context, service: PackService, clock: FixedClock) -> None:
        self.ctx = ctx
        self.desk = service
        self.clock = clock
        self.steps: list[dict[str, Any]] = []
        self.tasks: list[dict[str, str]] = []
        self.position = 0

    # Output --------------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.steps.append({"title": title, "at": self.clock.now().isoformat(), "lines": []})
        if not self.ctx.json:
            when = self.clock.now().astimezone(SYDNEY)
            print(f"\n== {len(self.steps)}. {title}  [{when:%a %d %b %Y %H:%M}]", file=self.ctx.out)

    def say(self, *lines: str) -> None:
        self.steps[-1]["lines"].extend(lines)
        if not self.ctx.json:
            for line in lines:
                print(f"   {line}", file=self.ctx.out)

    def at(self, text: str) -> None:
        self.clock.set(_at(text))

    # Helpers -------------------------------------------------------------------------------

    def appointment(
        self,
        appointment_id: str,
        client: str,
        service: str,
        start: str,
        price: str,
        minutes: int | None = None,
    ) -> Appointment:
        minutes = minutes or {"physio": 45, "pilates": 60, "massage": 60}[service]
        return Appointment(
            appointment_id, client, service, _at(start), timedelta(minutes=minutes), _aud(price)
        )

    def booked(self, assignment: Assignment) -> None:
        self.say(*assignment_text(assignment))

    def invoice(self, appointment_id: str) -> None:
        self.say("Invoice line  " + invoice_text(self.desk.invoice_line(appointment_id)))

    def show_pack(self, pack_id: str) -> None:
        pack = self.desk.pack(pack_id)
        self.say(pack_line(pack, self.clock.now()))
        whose = several_clients(pack)
        self.say(*(session_line(pack, u, whose).strip() for u in pack.usages))

    # The script ----------------------------------------------------------------------------

    def run(self) -> None:
        self.templates()
        self.from_profile()
        self.preferred_pack()
        self.assign_open_pack()
        self.template_on_appointment()
        self.after_the_fact()
        self.late_cancel()
        self.exhaustion()
        self.hours_and_money()
        self.migrated_pack()
        self.hold_and_transfer()
        self.family_pack()
        self.family_member_leaves()
        self.bundle()
        self.reminders()
        self.expiry()
        self.turn_events_into_tasks()

    def templates(self) -> None:
        self.at("2026-03-02 08:30")
        self.step("The practice's pack templates")
        desk = self.desk
        desk.add_template(
            "physio-10",
            PackTerms(
                "10 x Physio",
                Allowance.sessions(10),
                PerPack(_aud("1000.00")),
                ExpiresAfterOpening(Period(months=6)),
                {"physio"},
                Policies(low_balance_at=1),
                "Ten physiotherapy sessions, paid up front",
            ),
        )
        desk.add_template(
            "pilates-5",
            PackTerms(
                "Pilates 5-class pass",
                Allowance.sessions(5),
                PerSession.reduced(_aud("150.00"), _aud("120.00")),
                ExpiresAfterFirstUse(Period(months=3)),
                {"pilates"},
                Policies(late_cancel_notice=timedelta(hours=24), late_cancel_consumes=True),
                "First class 150.00, then the reduced rate of 120.00",
            ),
        )
        desk.add_template(
            "massage-3",
            PackTerms(
                "3 x Massage",
                Allowance.sessions(3),
                PerPack(_aud("270.00")),
                ExpiresAfterFirstUse(Period(months=1)),
                {"massage"},
                Policies(remind_days_before_expiry=7),
            ),
        )
        for template in desk.templates():
            self.say(*template_lines(template))

    def from_profile(self) -> None:
        self.at("2026-03-02 09:00")
        self.step("Way 1: Alice buys a pack at the desk (opened from her client profile)")
        pack = self.desk.open_pack("alice", template_id="physio-10")
        price = pack.terms.pricing
        assert isinstance(price, PerPack)
        self.say(f"Opened {pack_line(pack, self.clock.now())}")
        self.say(f"The pack goes on its own invoice: {price.price}. Its sessions are prepaid.")
        self.desk.set_preference("alice", PreferPack(pack.pack_id))
        self.say(f"Alice's profile: preferred pack {pack.pack_id} for new appointments.")
        self.alice_pack = pack.pack_id

    def preferred_pack(self) -> None:
        self.at("2026-03-02 09:05")
        self.step("A preferred pack on new appointments")
        for appointment_id, start in (
            ("A-101", "2026-03-03 10:00"),
            ("A-102", "2026-03-10 10:00"),
            ("A-103", "2026-03-17 10:00"),
        ):
            appointment = self.appointment(appointment_id, "alice", "physio", start, "110.00")
            self.booked(self.desk.book(appointment))
        self.at("2026-03-03 11:00")
        self.say("After her first session:")
        self.invoice("A-101")

    def assign_open_pack(self) -> None:
        self.at("2026-03-04 14:00")
        self.step("Way 2: assign an open pack to an appointment (Ben)")
        pack = self.desk.open_pack("ben", template_id="massage-3")
        self.say(f"Ben bought {pack.terms.name} last visit: {pack.pack_id}.")
        appointment = self.appointment("B-201", "ben", "massage", "2026-03-05 15:00", "95.00")
        self.booked(self.desk.book(appointment))
        self.say("The receptionist opens the pack list for the appointment:")
        for n, choice in enumerate(self.desk.choices(appointment), start=1):
            self.say(f"  {n}. {choice.label}")
        self.booked(self.desk.assign(appointment, pack_id=pack.pack_id))
        self.ben_pack = pack.pack_id

    def template_on_appointment(self) -> None:
        self.at("2026-03-05 08:00")
        self.step("A template opens a new pack on an appointment (Chloe)")
        first = self.appointment("C-301", "chloe", "pilates", "2026-03-05 18:00", "150.00")
        self.booked(self.desk.assign(first, template_id="pilates-5"))
        self.desk.set_preference("chloe", PreferTemplate("pilates-5"))
        self.say("Chloe's profile: preferred template pilates-5.")
        second = self.appointment("C-302", "chloe", "pilates", "2026-03-12 18:00", "150.00")
        self.booked(self.desk.book(second))
        self.at("2026-03-12 19:00")
        self.say("Invoices, per session with a reduced rate after the first:")
        self.invoice("C-301")
        self.invoice("C-302")

    def after_the_fact(self) -> None:
        self.at("2026-03-13 09:00")
        self.step("Way 3: add a pack to the invoice of an appointment that already happened")
        past = self.appointment("D-401", "dev", "physio", "2026-03-06 16:00", "110.00")
        self.say("Dev came last Friday and was not invoiced yet; he takes a 10 x Physio:")
        self.say(
            "Invoice line  " + invoice_text(self.desk.add_to_invoice(past, template_id="physio-10"))
        )
        earlier = self.appointment("A-100", "alice", "physio", "2026-02-24 10:00", "110.00")
        self.say("Alice's visit of 24 February goes on her pack too; it becomes session 1:")
        self.say(
            "Invoice line  "
            + invoice_text(self.desk.add_to_invoice(earlier, pack_id=self.alice_pack))
        )
        self.say("Her sessions renumber; lines already invoiced keep their label:")
        self.show_pack(self.alice_pack)

    def late_cancel(self) -> None:
        self.at("2026-03-19 15:00")
        self.step("A late cancellation under the pilates policy (24 hours' notice)")
        late = self.appointment("C-303", "chloe", "pilates", "2026-03-19 18:00", "150.00")
        self.booked(self.desk.book(late))
        after = self.desk.cancel("C-303")
        usage = after.usage("C-303")
        state = "still used, marked late-cancel" if usage and usage.mark else "released"
        self.say(f"Chloe cancels 3 hours before: C-303 is {state} ({after.label('C-303')}).")

    def exhaustion(self) -> None:
        self.at("2026-03-20 09:00")
        self.step("Ben uses up his massage pack")
        self.desk.set_preference("ben", PreferPack(self.ben_pack))
        self.say(f"Ben's profile: preferred pack {self.ben_pack}.")
        for appointment_id, start in (("B-202", "2026-03-20 15:00"), ("B-203", "2026-03-27 15:00")):
            appointment = self.appointment(appointment_id, "ben", "massage", start, "95.00")
            self.booked(self.desk.book(appointment))
        appointment = self.appointment("B-204", "ben", "massage", "2026-04-03 15:00", "95.00")
        self.say(
            "His next booking: the preferred pack is used up, so its template opens a new one."
        )
        self.booked(self.desk.book(appointment))
        self.ben_second = self.desk.holder("B-204")

    def hours_and_money(self) -> None:
        self.at("2026-04-06 09:00")
        self.step("An hours pack with a shortfall, and a money pack (Erin)")
        hours = PackTerms(
            name="2 hours of massage",
            allowance=Allowance.hours(timedelta(hours=2)),
            pricing=PerPack(_aud("180.00")),
            eligible_services={"massage"},
        )
        credit = PackTerms(
            name="Wellness credit",
            allowance=Allowance.money(_aud("300.00")),
            pricing=PerPack(_aud("270.00")),
        )
        self.desk.open_pack("erin", terms=hours)
        self.desk.open_pack("erin", terms=credit)
        for appointment_id, start, minutes in (
            ("E-501", "2026-04-06 10:00", 60),
            ("E-502", "2026-04-13 10:00", 90),
        ):
            appointment = self.appointment(
                appointment_id, "erin", "massage", start, "95.00", minutes
            )
            self.booked(self.desk.assign(appointment, pack_id=self._erin("2 hours of massage")))
        self.say("The 90-minute massage had only an hour left: 30 minutes to bill.")
        self.invoice("E-502")
        for appointment_id, start in (
            ("E-503", "2026-04-07 09:00"),
            ("E-504", "2026-04-14 09:00"),
            ("E-505", "2026-04-21 09:00"),
        ):
            appointment = self.appointment(appointment_id, "erin", "physio", start, "110.00")
            self.booked(self.desk.assign(appointment, pack_id=self._erin("Wellness credit")))
        self.invoice("E-505")

    def _erin(self, name: str) -> str:
        return next(p.pack_id for p in self.desk.client_packs("erin") if p.terms.name == name)

    def migrated_pack(self) -> None:
        self.at("2026-04-08 09:00")
        self.step("A pack sold in the old system continues here (Farah)")
        moved = Migration(date(2026, 1, 10), used=6)
        pack = self.desk.open_pack("farah", template_id="physio-10", migrated=moved)
        self.farah_pack = pack.pack_id
        self.say(
            "Opened as migrated: bought 2026-01-10, 6 used there; "
            + pack_line(pack, self.clock.now())
        )
        self.booked(
            self.desk.assign(
                self.appointment("F-601", "farah", "physio", "2026-04-08 11:00", "110.00"),
                pack_id=self.farah_pack,
            )
        )
        self.invoice("F-601")

    def hold_and_transfer(self) -> None:
        self.at("2026-04-09 09:00")
        self.step("Farah goes on hold while she travels, then gives the rest to Gus")
        held = self.desk.hold(self.farah_pack, date(2026, 4, 13), date(2026, 4, 27), "travel")
        self.say(f"On hold 13 to 27 April: {pack_line(held, self.clock.now())}")
        during = self.appointment("F-602", "farah", "physio", "2026-04-20 11:00", "110.00")
        try:
            self.desk.assign(during, pack_id=self.farah_pack)
        except SessionPacksError as refused:
            self.say(f"A booking on 20 April is refused: {refused.reason}.")
        new = self.desk.transfer(self.farah_pack, "gus", reason="given to her husband")
        self.say(f"Transferred to Gus: {pack_line(new, self.clock.now())}")
        money = figures(new)
        self.say(f"It carries {money.usable} unearned; Farah's pack refunds nothing.")

    def family_pack(self) -> None:
        self.at("2026-04-10 09:00")
        self.step("A family pack: Hana pays, she and her son Leo both draw on it")
        pack = self.desk.open_pack("hana", template_id="physio-10", shared_with=("leo",))
        self.family = pack.pack_id
        self.say(f"Opened {pack_line(pack, self.clock.now())}")
        self.desk.set_preference("leo", PreferPack(self.family))
        self.say(f"Leo's profile: preferred pack {self.family}, his mother's.")
        hana = self.appointment("H-701", "hana", "physio", "2026-04-13 10:00", "110.00")
        self.booked(self.desk.assign(hana, pack_id=self.family))
        for appointment_id, start in (("L-801", "2026-04-14 16:00"), ("L-802", "2026-04-21 16:00")):
            leo = self.appointment(appointment_id, "leo", "physio", start, "110.00")
            self.booked(self.desk.book(leo))
        self.say("One count for the family: the sessions are numbered across both of them.")

    def family_member_leaves(self) -> None:
        self.at("2026-04-16 09:00")
        self.step("Leo's treatment is done: he comes off the family pack")
        try:
            self.desk.unshare(self.family, "leo")
        except SessionPacksError as refused:
            self.say(f"Not yet: {refused.reason}.")
        kept = self.desk.cancel("L-802").usage("L-802")
        self.say(f"L-802 is cancelled 5 days ahead: {'kept' if kept else 'released'}.")
        self.desk.unshare(self.family, "leo")
        self.say("Leo is off the pack; the session he used stays used and numbered:")
        self.show_pack(self.family)

    def bundle(self) -> None:
        self.at("2026-04-17 09:00")
        self.step("A bundle: 5 physio and 2 massage, each line numbered on its own (Ivy)")
        terms = PackTerms(
            name="Physio and massage",
            allowance=Allowance.sessions(7),
            pricing=PerPack(_aud("700.00")),
            lines=(
                BundleLine("Physio", {"physio"}, Allowance.sessions(5)),
                BundleLine("Massage", {"massage"}, Allowance.sessions(2)),
            ),
        )
        pack = self.desk.open_pack("ivy", terms=terms)
        self.say(f"Opened {pack_line(pack, self.clock.now())}")
        first = self.appointment("I-901", "ivy", "massage", "2026-04-20 11:00", "95.00")
        self.booked(self.desk.assign(first, pack_id=pack.pack_id))
        after = self.desk.pack(pack.pack_id)
        self.say(f"Physio keeps its 5: {pack_line(after, self.clock.now())}")
        second = self.appointment("I-902", "ivy", "massage", "2026-04-27 11:00", "95.00")
        self.booked(self.desk.assign(second, pack_id=pack.pack_id))
        third = self.appointment("I-903", "ivy", "massage", "2026-05-04 11:00", "95.00")
        try:
            self.desk.assign(third, pack_id=pack.pack_id)
        except SessionPacksError as refused:
            self.say(f"A third massage is refused: {refused.reason}; physio goes on:")
        physio = self.appointment("I-904", "ivy", "physio", "2026-04-21 11:00", "110.00")
        self.booked(self.desk.assign(physio, pack_id=pack.pack_id))
        self.show_pack(pack.pack_id)

    def reminders(self) -> None:
        self.at("2026-04-27 07:00")
        self.step("The nightly sweep: reminders before expiry")
        as_of = date(2026, 4, 27)
        reminded = self.desk.sweep(as_of)
        self.say(
            f"Sweep as of {as_of}: {len(reminded)} reminder(s) due "
            "(massage packs remind 7 days before they expire)."
        )

    def expiry(self) -> None:
        self.at("2026-05-03 07:00")
        self.step("The nightly expiry sweep, a month later")
        as_of = date(2026, 5, 3)
        expired = self.desk.sweep(as_of)
        self.say(f"Sweep as of {as_of}: {len(expired)} pack(s) expired.")
        again = self.desk.sweep(as_of)
        self.say(f"The same sweep again: {len(again)} more (once per expiry).")
        if self.ben_second:
            self.say(pack_line(self.desk.pack(self.ben_second), self.clock.now()))

    def turn_events_into_tasks(self) -> None:
        self.step("The host turns PackExhausted, ExpiringSoon and PackExpired events into tasks")
        self.say(f"Reading the event stream after position {self.position}:")
        self.read_tasks()
        self.say(f"Saved position: {self.position}. Reading again finds nothing new:")
        before = len(self.tasks)
        self.read_tasks()
        self.say(f"{len(self.tasks) - before} new task(s): each event becomes one task, once.")

    def read_tasks(self) -> None:
        # Tasks are keyed by the event's occurrence (R12b): the same thing told twice (a
        # stream read again, a pack used up again at the same total) is one task.
        known = {task["occurrence"] for task in self.tasks}
        for recorded in self.desk.events_since(self.position):
            task = _task(recorded, self.desk)
            if task is not None and task["occurrence"] not in known:
                known.add(task["occurrence"])
                self.tasks.append(task)
                self.say(f"Task {task['occurrence']}: {task['task']}")
            self.position = recorded.position


def _task(recorded: RecordedEvent, desk: PackService) -> dict[str, str] | None:
    event = recorded.event
    name = CLIENTS.get(event.client_id, event.client_id)
    pack = desk.pack(event.pack_id).terms.name
    if isinstance(event, PackExhausted):
        text = f"call {name}: '{pack}' ({event.pack_id}) is used up; offer a new pack"
    elif isinstance(event, ExpiringSoon):
        text = (
            f"remind {name}: '{pack}' ({event.pack_id}) expires on {event.expiry_date} "
            f"with {format_amount(event.remaining)} left; offer a booking before then"
        )
    elif isinstance(event, PackExpired):
        text = (
            f"tell {name}: '{pack}' ({event.pack_id}) expired on {event.expiry_date} "
            f"with {format_amount(event.remaining)} unused"
        )
    else:
        return None
    return {
        "occurrence": event.occurrence,
        "event_id": event.event_id,
        "position": str(recorded.position),
        "task": text,
    }


def fresh_file(path: Path, practice: str, owner: str) -> None:
    """Delete ``owner``'s file from an earlier run; refuse a file without its ``practice``."""
    if not path.exists():
        return
    if not compose.holds_practice(path, practice):
        raise UsageError(
            f"{path} exists and is not a {owner} database; the {owner} deletes only its own "
            "file: choose another --db"
        )
    for suffix in ("", "-wal", "-shm", "-journal"):
        sidecar = Path(f"{path}{suffix}")
        if sidecar.exists():
            os.remove(sidecar)


def demo(ctx: Context, args: argparse.Namespace) -> int:
    if args.database_url:
        raise UsageError("the demo keeps its data in a SQLite file: give --db PATH, not a URL")
    path = Path(args.db or DEMO_DB).resolve()
    fresh_file(path, DEMO_PRACTICE, "demo")
    clock = FixedClock(_at("2026-03-02 08:30"))
    counter = itertools.count(1)
    store = compose.open_store(None, path)
    try:
        service = compose.open_service(
            store, DEMO_PRACTICE, ZONE, clock, new_pack_id=lambda: f"PK-{next(counter):04d}"
        )
        if not ctx.json:
            print(
                f"sessionpacks demo: a receptionist's walkthrough (practice {DEMO_PRACTICE},"
                f" {ZONE}).",
                file=ctx.out,
            )
            print(f"Data: {path} (deleted and recreated on every run).", file=ctx.out)
        walk = _Walkthrough(ctx, service, clock)
        walk.run()
    finally:
        compose.close(store)
    explore = f"sessionpacks --db {path} --practice {DEMO_PRACTICE}"
    if ctx.json:
        ctx.emit(
            {
                "database": str(path),
                "practice": DEMO_PRACTICE,
                "steps": walk.steps,
                "tasks": walk.tasks,
            },
            "",
        )
    else:
        print(f"\nDone. Explore the data: {explore} pack show PK-0001", file=ctx.out)
    return 0


def register(top: Subparsers, common: argparse.ArgumentParser) -> None:
    add_command(
        top,
        "demo",
        help="a receptionist's walkthrough in its own SQLite file (recreated on each run)",
        description="A receptionist's walkthrough on a fixed clock: the three ways to assign a "
        "pack, a preferred pack, 'Session n of N' on invoices, a reduced rate, exhaustion, a "
        "hold and a transfer, a family pack two clients share, a bundle of physio and massage "
        "numbered line by line, and expiry tasks. It keeps its data in sessionpacks-demo.db in "
        "the current folder (or --db), which it deletes and recreates on every run; it refuses "
        "to delete a file that is not a demo database.",
        example="sessionpacks demo\nsessionpacks demo --db /tmp/demo.db --json",
        run=demo,
        common=common,
    )
