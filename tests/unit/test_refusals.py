"""Every refusal path of the operations and the service (R17): the error derives from
SessionPacksError, names the field and value at fault, and the repository is exactly as it was
(every pack's state and ledger, active appointments, the event stream, templates, preferences).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionpacks import operations as ops
from sessionpacks.adapters.clock import FixedClock
from sessionpacks.errors import (
    InvalidValueError,
    NotFoundError,
    RefusedError,
    Rule,
    SessionPacksError,
)
from sessionpacks.ledger import Mark
from sessionpacks.model import (
    ExpiresAfterFirstUse,
    ExpiresOn,
    Money,
    Period,
    PreferPack,
    PreferService,
    PreferTemplate,
)
from sessionpacks.operations import AppointmentStatus
from sessionpacks.service import PackService

from ..conftest import appt, at, snapshot, terms

NAIVE = datetime(2026, 2, 20, 10)
LATER = at("2026-02-20T10:00")


@pytest.fixture
def world(service: PackService, clock: FixedClock) -> PackService:
    """C1: pk1 (physio only, expires 2026-06-30, A1 and A2), pk2 (exhausted by A3), pk4 (closed,
    A4), pk5 (voided), pk6 (a month after first use, A6 on 2026-03-20), pk7 (plain).
    C2: pk3 (B1). C1 prefers template physio10, C2 the massage service."""
    physio = terms(10, expiry=ExpiresOn(date(2026, 6, 30)), services=["physio"])
    service.add_template("physio10", physio)
    service.add_template("single", terms(1, name="Single"))
    service.open_pack("C1", template_id="physio10")
    service.assign(appt("A1", "2026-02-02T10:00"), pack_id="pk1")
    service.assign(appt("A2", "2026-02-09T10:00"), pack_id="pk1")
    service.open_pack("C1", template_id="single")
    service.assign(appt("A3", "2026-02-03T10:00"), pack_id="pk2")
    service.open_pack("C2", terms=terms(5))
    service.assign(appt("B1", client="C2"), pack_id="pk3")
    service.open_pack("C1", terms=terms(5))
    service.assign(appt("A4", "2026-02-04T10:00"), pack_id="pk4")
    today = clock.now()
    clock.set(at("2026-02-05T09:00"))  # A4 is past, so the close keeps it (R10a)
    service.close("pk4", "moving")
    clock.set(today)
    service.open_pack("C1", terms=terms(5))
    service.void("pk5", "typo")
    service.open_pack("C1", terms=terms(5, expiry=ExpiresAfterFirstUse(Period(months=1))))
    service.assign(appt("A6", "2026-03-20T10:00"), pack_id="pk6")
    service.open_pack("C1", terms=terms(5))
    service.set_preference("C1", PreferTemplate("physio10"))
    service.set_preference("C2", PreferService("massage"))
    return service


def refused(
    world: PackService,
    call: Callable[[PackService], object],
    kind: type[SessionPacksError],
    field: str,
    value: Any,
    rule: str | None = None,
) -> SessionPacksError:
    before = snapshot(world.repository)
    with pytest.raises(kind) as caught:
        call(world)
    error = caught.value
    assert isinstance(error, SessionPacksError)
    assert (error.field, error.value, error.rule) == (field, value, rule)
    if rule is not None:  # the library's refusals name their rule by the enum
        assert isinstance(error.rule, Rule)
    assert f"{field}={repr(value)[:77]}" in str(error)  # long values are cut to 80 (R18)
    assert error.reason
    assert snapshot(world.repository) == before
    return error


Case = tuple[Callable[[PackService], object], type[SessionPacksError], str, Any, str | None]

USING: dict[str, Case] = {
    "voided pack": (
        lambda s: s.assign(appt("A9"), pack_id="pk5"),
        RefusedError,
        "pack_id",
        "pk5",
        "R10",
    ),
    "closed pack": (
        lambda s: s.assign(appt("A9"), pack_id="pk4"),
        RefusedError,
        "pack_id",
        "pk4",
        "R10",
    ),
    "pack of another client chosen": (
        lambda s: s.assign(appt("A9"), pack_id="pk3"),
        RefusedError,
        "pack_id",
        "pk3",
        "R4",
    ),
    "move to a pack of another client": (
        lambda s: s.move(appt("A1", "2026-02-02T10:00"), "pk3"),
        RefusedError,
        "appointment.client_id",
        "C1",
        "R4",
    ),
    "service not covered": (
        lambda s: s.assign(appt("A9", service="massage"), pack_id="pk1"),
        RefusedError,
        "appointment.service_id",
        "massage",
        "R4",
    ),
    "another currency": (
        lambda s: s.assign(appt("A9", price=Money("120", "USD")), pack_id="pk1"),
        RefusedError,
        "appointment.price.currency",
        "USD",
        "R4",
    ),
    "on the expiry date": (
        lambda s: s.assign(appt("A9", "2026-06-30T10:00"), pack_id="pk1"),
        RefusedError,
        "appointment.start",
        "2026-06-30T10:00:00+10:00",
        "R5",
    ),
    "nothing left": (
        lambda s: s.assign(appt("A9"), pack_id="pk2"),
        RefusedError,
        "pack_id",
        "pk2",
        "R3",
    ),
    "earlier first use would expire a later usage": (
        lambda s: s.assign(appt("A9", "2026-02-10T10:00"), pack_id="pk6"),
        RefusedError,
        "appointment.start",
        "2026-02-10T10:00:00+11:00",
        "R5",
    ),
    "active on another pack": (
        lambda s: s.assign(appt("A1", "2026-02-02T10:00"), pack_id="pk7"),
        RefusedError,
        "appointment.id",
        "A1",
        "R6",
    ),
    "active on another pack, asked by another template": (
        lambda s: s.assign(appt("A1", "2026-02-02T10:00"), template_id="single"),
        RefusedError,
        "appointment.id",
        "A1",
        "R6",
    ),
    "unknown template chosen": (
        lambda s: s.assign(appt("A9"), template_id="nope"),
        RefusedError,
        "template_id",
        "nope",
        "R2",
    ),
    "chosen template cannot cover": (
        lambda s: s.assign(appt("A9", service="massage"), template_id="physio10"),
        RefusedError,
        "appointment.service_id",
        "massage",
        "R4",
    ),
    "neither pack nor template": (
        lambda s: s.assign(appt("A9")),
        InvalidValueError,
        "pack_id",
        None,
        None,
    ),
    "both pack and template": (
        lambda s: s.assign(appt("A9"), pack_id="pk7", template_id="single"),
        InvalidValueError,
        "pack_id",
        "pk7",
        None,
    ),
    "move to an unknown pack": (
        lambda s: s.move(appt("A1", "2026-02-02T10:00"), "pk99"),
        NotFoundError,
        "pack_id",
        "pk99",
        None,
    ),
    "add to invoice on a pack with nothing left": (
        lambda s: s.add_to_invoice(appt("A9"), pack_id="pk2"),
        RefusedError,
        "pack_id",
        "pk2",
        "R3",
    ),
}

USAGES: dict[str, Case] = {
    "cancel an appointment on no pack": (
        lambda s: s.cancel("A9"),
        NotFoundError,
        "appointment_id",
        "A9",
        None,
    ),
    "invoice an appointment on no pack": (
        lambda s: s.invoice_line("A9"),
        NotFoundError,
        "appointment_id",
        "A9",
        None,
    ),
    "naive cancellation instant": (
        lambda s: s.cancel("A1", cancelled_at=NAIVE),
        InvalidValueError,
        "cancelled_at",
        NAIVE,
        None,
    ),
    "naive new start": (
        lambda s: s.reschedule("A1", NAIVE),
        InvalidValueError,
        "start",
        NAIVE,
        None,
    ),
    "reschedule on a closed pack": (
        lambda s: s.reschedule("A4", at("2026-02-05T10:00")),
        RefusedError,
        "pack_id",
        "pk4",
        "R10",
    ),
    "reschedule onto the expiry date": (
        lambda s: s.reschedule("A1", at("2026-06-30T10:00")),
        RefusedError,
        "start",
        "2026-06-30T10:00:00+10:00",
        "R5",
    ),
    "mark an appointment on no pack": (
        lambda s: s.mark("A9", Mark.NO_SHOW),
        NotFoundError,
        "appointment_id",
        "A9",
        None,
    ),
}

PACKS: dict[str, Case] = {
    "adjust in another metric": (
        lambda s: s.adjust("pk1", timedelta(hours=1), "fix"),
        InvalidValueError,
        "amount",
        timedelta(hours=1),
        None,
    ),
    "adjust by zero": (
        lambda s: s.adjust("pk1", 0, "fix"),
        InvalidValueError,
        "amount",
        0,
        None,
    ),
    "adjust without a reason": (
        lambda s: s.adjust("pk1", 1, " "),
        InvalidValueError,
        "reason",
        " ",
        None,
    ),
    "adjust a closed pack": (
        lambda s: s.adjust("pk4", 1, "goodwill"),
        RefusedError,
        "pack_id",
        "pk4",
        "R10",
    ),
    "debit below zero": (
        lambda s: s.adjust("pk1", -9, "correction"),
        RefusedError,
        "amount",
        -9,
        "R9",
    ),
    "adjust an unknown pack": (
        lambda s: s.adjust("pk99", 1, "goodwill"),
        NotFoundError,
        "pack_id",
        "pk99",
        None,
    ),
    "extend to a datetime": (
        lambda s: s.extend("pk1", at("2026-07-01T00:00"), "away"),
        InvalidValueError,
        "until",
        at("2026-07-01T00:00"),
        None,
    ),
    "extend without a reason": (
        lambda s: s.extend("pk1", date(2026, 7, 1), ""),
        InvalidValueError,
        "reason",
        "",
        None,
    ),
    "extend a voided pack": (
        lambda s: s.extend("pk5", date(2026, 7, 1), "away"),
        RefusedError,
        "pack_id",
        "pk5",
        "R10",
    ),
    "extend a pack that never expires": (
        lambda s: s.extend("pk7", date(2026, 7, 1), "away"),
        RefusedError,
        "until",
        "2026-07-01",
        "R5",
    ),
    "extend to no later date": (
        lambda s: s.extend("pk1", date(2026, 6, 30), "away"),
        RefusedError,
        "until",
        "2026-06-30",
        "R5",
    ),
    "close a closed pack": (
        lambda s: s.close("pk4"),
        RefusedError,
        "pack_id",
        "pk4",
        "R10",
    ),
    "void a pack in use": (
        lambda s: s.void("pk1"),
        RefusedError,
        "pack_id",
        "pk1",
        "R10",
    ),
    "void a voided pack": (
        lambda s: s.void("pk5"),
        RefusedError,
        "pack_id",
        "pk5",
        "R10",
    ),
    "sweep as of a datetime": (
        lambda s: s.sweep(at("2026-07-01T00:00")),
        InvalidValueError,
        "as_of",
        at("2026-07-01T00:00"),
        None,
    ),
}

SETUP: dict[str, Case] = {
    "open from a template and terms": (
        lambda s: s.open_pack("C1", template_id="single", terms=terms(1)),
        InvalidValueError,
        "template_id",
        "single",
        None,
    ),
    "open from nothing": (
        lambda s: s.open_pack("C1"),
        InvalidValueError,
        "template_id",
        None,
        None,
    ),
    "open from an unknown template": (
        lambda s: s.open_pack("C1", template_id="nope"),
        NotFoundError,
        "template_id",
        "nope",
        None,
    ),
    "open with a pack id in use": (
        lambda s: s.open_pack("C2", terms=terms(1), pack_id="pk1"),
        RefusedError,
        "pack_id",
        "pk1",
        "R2",
    ),
    "open with a malformed pack id": (
        lambda s: s.open_pack("C1", terms=terms(1), pack_id=""),
        InvalidValueError,
        "pack_id",
        "",
        None,
    ),
    "open for a malformed client id": (
        lambda s: s.open_pack(" C1", terms=terms(1)),
        InvalidValueError,
        "client_id",
        " C1",
        None,
    ),
    "open with terms that are not terms": (
        lambda s: s.open_pack("C1", terms="10 sessions"),  # type: ignore[arg-type]
        InvalidValueError,
        "terms",
        "10 sessions",
        None,
    ),
    "add a template with an id in use": (
        lambda s: s.add_template("single", terms(2)),
        RefusedError,
        "template_id",
        "single",
        "R2",
    ),
    "add a template with terms that are not terms": (
        lambda s: s.add_template("new", "x"),  # type: ignore[arg-type]
        InvalidValueError,
        "PackTemplate.terms",
        "x",
        None,
    ),
    "edit an unknown template": (
        lambda s: s.edit_template("nope", name="x"),
        NotFoundError,
        "template_id",
        "nope",
        None,
    ),
    "edit a term that does not exist": (
        lambda s: s.edit_template("single", colour="red"),
        InvalidValueError,
        "changes",
        "colour",
        None,
    ),
    "edit a term to an invalid value": (
        lambda s: s.edit_template("single", name=""),
        InvalidValueError,
        "PackTerms.name",
        "",
        None,
    ),
    "prefer another client's pack": (
        lambda s: s.set_preference("C1", PreferPack("pk3")),
        RefusedError,
        "preference.pack_id",
        "pk3",
        "R4",
    ),
    "prefer an unknown pack": (
        lambda s: s.set_preference("C1", PreferPack("pk99")),
        NotFoundError,
        "pack_id",
        "pk99",
        None,
    ),
    "prefer an unknown template": (
        lambda s: s.set_preference("C1", PreferTemplate("nope")),
        NotFoundError,
        "template_id",
        "nope",
        None,
    ),
    "prefer something that is not a preference": (
        lambda s: s.set_preference("C1", "physio"),  # type: ignore[arg-type]
        InvalidValueError,
        "preference",
        "physio",
        None,
    ),
    "negative retries": (
        lambda s: PackService(s.repository, s.clock, retries=-1),
        InvalidValueError,
        "retries",
        -1,
        None,
    ),
}

RECORDING: dict[str, Case] = {
    "record a status that is none": (
        lambda s: s.record(appt("A9"), "maybe"),  # type: ignore[arg-type]
        InvalidValueError,
        "status",
        "maybe",
        None,
    ),
    "record a cancellation instant for a no-show": (
        lambda s: s.record(appt("A9"), AppointmentStatus.NO_SHOW, cancelled_at=LATER),
        InvalidValueError,
        "cancelled_at",
        LATER,
        None,
    ),
    "record a naive cancellation instant": (
        lambda s: s.record(appt("A9"), AppointmentStatus.CANCELLED, cancelled_at=NAIVE),
        InvalidValueError,
        "cancelled_at",
        NAIVE,
        None,
    ),
    "record a late cancel on a closed pack": (
        lambda s: s.record(appt("A9"), AppointmentStatus.LATE_CANCEL, pack_id="pk4"),
        RefusedError,
        "pack_id",
        "pk4",
        "R10",
    ),
    "record a booking again with another start": (
        lambda s: s.record(appt("A1", "2026-02-02T11:00"), AppointmentStatus.BOOKED),
        RefusedError,
        "appointment.start",
        "2026-02-02T11:00:00+11:00",
        "R6a",
    ),
    "record a booking again on another pack": (
        lambda s: s.record(appt("A1", "2026-02-02T10:00"), AppointmentStatus.BOOKED, pack_id="pk7"),
        RefusedError,
        "appointment.id",
        "A1",
        "R6",
    ),
}

ALL = {**USING, **USAGES, **PACKS, **SETUP, **RECORDING}


@pytest.mark.parametrize("case", ALL.values(), ids=ALL.keys())
def test_refusal_names_field_and_value_and_writes_nothing(world: PackService, case: Case) -> None:
    refused(world, *case)


def test_refused_move_leaves_the_appointment_where_it_was(world: PackService) -> None:
    refused(
        world,
        lambda s: s.move(appt("A1", "2026-02-02T10:00"), "pk2"),
        RefusedError,
        "pack_id",
        "pk2",
        "R3",
    )
    assert world.repository.pack_of_appointment("A1") == "pk1"


# Refusals of the pure operations the service cannot reach: a usage that is not active --------


@pytest.mark.parametrize(
    "call",
    [
        lambda s: ops.release(s, "A9", at("2026-02-20T10:00")),
        lambda s: ops.reschedule(s, "A9", at("2026-02-21T10:00"), at("2026-02-20T10:00")),
        lambda s: ops.mark(s, "A9", Mark.NO_SHOW, at("2026-02-20T10:00")),
        lambda s: ops.cancel(s, "A9", at("2026-02-20T10:00")),
        lambda s: ops.issue_invoice(s, "A9", at("2026-02-20T10:00")),
    ],
    ids=["release", "reschedule", "mark", "cancel", "issue_invoice"],
)
def test_operations_on_an_inactive_usage_are_refused(
    world: PackService, call: Callable[[Any], object]
) -> None:
    state = world.pack("pk1")
    with pytest.raises(RefusedError) as caught:
        call(state)
    assert (caught.value.rule, caught.value.field, caught.value.value) == (
        "R7",
        "appointment_id",
        "A9",
    )
    assert "has no active usage on pack pk1" in str(caught.value)
    assert world.pack("pk1") == state


def test_an_operation_refuses_a_naive_instant(world: PackService) -> None:
    state = world.pack("pk1")
    with pytest.raises(InvalidValueError) as caught:
        ops.adjust(state, 1, "goodwill", NAIVE)
    assert (caught.value.field, caught.value.value) == ("recorded_at", NAIVE)
    with pytest.raises(InvalidValueError) as start:
        ops.reschedule(state, "A1", NAIVE, at("2026-02-20T10:00"))
    assert start.value.field == "start"


# Rule codes (R17) ---------------------------------------------------------------------------


def test_a_rule_is_its_code_as_a_string() -> None:
    assert Rule.R6a == "R6a"
    assert Rule("R12a") is Rule.R12a
    error = RefusedError("R5", "start", "x", "not valid")
    assert error.rule is Rule.R5
    assert str(error).startswith("R5: start='x'")
    assert RefusedError(Rule.R27, "k", "x", "used").rule == "R27"
    assert RefusedError("H1", "k", "x", "a host's own rule").rule == "H1"


def test_every_rule_of_the_spec_has_a_member() -> None:
    spec = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    written = set(re.findall(r"\bR\d+[a-z]?\b", spec))
    assert written <= {rule.value for rule in Rule}


def test_no_rule_code_is_written_as_a_bare_string_in_the_library() -> None:
    source = Path(ops.__file__).resolve().parent
    bare = re.compile(r"""RefusedError\(\s*["']R\d""")
    found = [
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if "testing" not in path.parts and bare.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []
