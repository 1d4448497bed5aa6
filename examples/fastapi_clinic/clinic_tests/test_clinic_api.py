"""The front desk, tested as the clinic runs it: HTTP requests through FastAPI's TestClient,
on SQLite and (with ``SESSIONPACKS_PG_DSN``) PostgreSQL.

Run with ``pytest examples/fastapi_clinic`` (``SESSIONPACKS_PG_DSN=postgresql://...`` for
PostgreSQL too).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from clinic_api import appointments, from_environment, invoices
from clinic_errors import install_error_handler
from fastapi import FastAPI
from fastapi.testclient import TestClient

from clinic_tests.conftest import Clinic
from sessionpacks import (
    ConcurrencyError,
    ConnectionLostError,
    InvalidValueError,
    NotFoundError,
    RefusedError,
    Rule,
    SessionPacksError,
    StoreError,
)

VISIT = {
    "client_id": "C1",
    "service_id": "physio",
    "start": "2026-03-03T10:00:00+11:00",
    "minutes": 60,
    "price": "120.00",
    "currency": "AUD",
}


def open_pack(clinic: Clinic, sessions: int = 5) -> str:
    """A template of ``sessions`` physio sessions, and a pack of it that C1 draws on."""
    template = {
        "template_id": "T-physio",
        "name": f"{sessions} x Physio",
        "sessions": sessions,
        "price": "500.00",
        "currency": "AUD",
        "services": ["physio"],
    }
    assert clinic.client.post("/templates", json=template).status_code == 201
    opened = clinic.client.post("/packs", json={"client_id": "C1", "template_id": "T-physio"})
    assert opened.status_code == 201, opened.text
    pack_id: str = opened.json()["pack_id"]
    return pack_id


def visit(**changes: Any) -> dict[str, Any]:
    return {**VISIT, **changes}


# The happy path ------------------------------------------------------------------------------


def test_booking_writes_the_appointment_its_usage_and_its_invoice(clinic: Clinic) -> None:
    pack_id = open_pack(clinic)

    booked = clinic.client.post("/appointments", json=visit())

    assert booked.status_code == 201, booked.text
    body = booked.json()
    assert body["pack_id"] == pack_id
    assert body["label"] == "Session 1 of 5"
    assert body["invoice"] == {
        "description": "Session 1 of 5",
        "amount": "0.00",  # prepaid: the pack was charged when it was opened
        "currency": "AUD",
        "prepaid": True,
    }
    pack = clinic.client.get(f"/packs/{pack_id}").json()
    assert (pack["remaining"], pack["total"], pack["status"]) == (4, 5, "open")
    assert clinic.packs.holder(body["appointment_id"]) == pack_id
    assert clinic.count(appointments) == clinic.count(invoices) == 1

    second = clinic.client.post("/appointments", json=visit(start="2026-03-10T10:00:00+11:00"))
    assert second.json()["label"] == "Session 2 of 5"


def test_a_client_without_a_pack_pays_the_visit_price(clinic: Clinic) -> None:
    open_pack(clinic)

    booked = clinic.client.post("/appointments", json=visit(client_id="C2"))

    assert booked.status_code == 201, booked.text
    assert (booked.json()["pack_id"], booked.json()["label"]) == (None, None)
    assert booked.json()["invoice"]["amount"] == "120.00"
    assert clinic.count(invoices) == 1


def test_cancelling_in_good_time_gives_the_session_back(clinic: Clinic) -> None:
    pack_id = open_pack(clinic)
    appointment_id = clinic.client.post("/appointments", json=visit()).json()["appointment_id"]

    cancelled = clinic.client.post(f"/appointments/{appointment_id}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["pack"]["remaining"] == 5
    assert clinic.packs.holder(appointment_id) is None
    with clinic.engine.connect() as connection:
        row = connection.execute(sa.select(appointments.c.status, invoices.c.void).join(invoices))
        assert row.one() == ("cancelled", True)
    assert clinic.client.get(f"/packs/{pack_id}").json()["remaining"] == 5


# One transaction: a failure after the usage undoes everything ---------------------------------


class InjectedInvoiceError(Exception):
    """The fault injected where the clinic writes its invoice."""


class FailingInvoices:
    """While ``on``, every ``INSERT INTO invoices`` fails, as a full disk or a broken
    constraint would make it fail; ``sent`` collects the parameters it was given."""

    INSERT = re.compile(r"\s*INSERT INTO (\w+\.)?invoices\b", re.IGNORECASE)

    def __init__(self) -> None:
        self.on = True
        self.sent: list[Any] = []

    def __call__(
        self,
        connection: sa.Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if self.on and self.INSERT.match(statement):
            self.sent.append(parameters)
            raise InjectedInvoiceError(statement)


@pytest.fixture
def failing_invoices(clinic: Clinic) -> Iterator[FailingInvoices]:
    fault = FailingInvoices()
    sa.event.listen(clinic.engine, "before_cursor_execute", fault)
    yield fault
    sa.event.remove(clinic.engine, "before_cursor_execute", fault)


def test_a_failure_after_the_usage_rolls_back_the_appointment_and_the_usage(
    clinic: Clinic, failing_invoices: FailingInvoices
) -> None:
    pack_id = open_pack(clinic)
    before = clinic.packs.pack(pack_id)
    ledger_before = clinic.packs.ledger(pack_id)
    events_before = clinic.packs.events_since()
    key = {"Idempotency-Key": "booking-1"}

    failed = clinic.client.post("/appointments", json=visit(), headers=key)

    assert failed.status_code == 500
    # The invoice carried the usage's label: book and invoice_line had returned, with the
    # usage written in the transaction, when the invoice failed.
    assert len(failing_invoices.sent) == 1
    assert "Session 1 of 5" in repr(failing_invoices.sent[0])
    # Nothing of it is left: no appointment, no invoice, no usage, no event.
    assert clinic.count(appointments) == clinic.count(invoices) == 0
    after = clinic.packs.pack(pack_id)
    assert after == before
    assert (after.remaining_units, after.usages) == (5, ())
    assert clinic.packs.ledger(pack_id) == ledger_before
    assert clinic.packs.events_since() == events_before

    # The idempotency record went with it: the same request again books for the first time
    # (a record left behind would refuse it, R27, under a new appointment id).
    failing_invoices.on = False
    retried = clinic.client.post("/appointments", json=visit(), headers=key)
    assert retried.status_code == 201, retried.text
    assert retried.json()["label"] == "Session 1 of 5"
    assert clinic.count(appointments) == clinic.count(invoices) == 1
    assert clinic.packs.pack(pack_id).remaining_units == 4


def test_a_refusal_rolls_back_the_appointment_written_before_it(clinic: Clinic) -> None:
    pack_id = open_pack(clinic, sessions=1)
    assert clinic.client.post("/appointments", json=visit(pack_id=pack_id)).status_code == 201

    refused = clinic.client.post(
        "/appointments", json=visit(start="2026-03-10T10:00:00+11:00", pack_id=pack_id)
    )

    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert (body["error"], body["rule"], body["retryable"]) == ("RefusedError", "R3", False)
    assert (body["field"], body["value"]) == ("pack_id", pack_id)
    assert body["message"]
    assert clinic.count(appointments) == clinic.count(invoices) == 1


# Errors as responses -------------------------------------------------------------------------


def test_a_value_that_cannot_be_is_422_naming_the_field(clinic: Clinic) -> None:
    open_pack(clinic)

    naive = clinic.client.post("/appointments", json=visit(start="2026-03-03T10:00:00"))
    negative = clinic.client.post("/appointments", json=visit(price="-1.00"))
    currency = clinic.client.post("/appointments", json=visit(currency="XYZ"))

    assert naive.status_code == 422, naive.text
    assert naive.json()["field"] == "Appointment.start"
    assert naive.json()["value"] == "2026-03-03T10:00:00"
    assert naive.json()["rule"] is None
    assert (negative.status_code, negative.json()["field"]) == (422, "Appointment.price")
    assert (currency.status_code, currency.json()["value"]) == (422, "XYZ")
    assert clinic.count(appointments) == 0


def test_an_unknown_id_is_404(clinic: Clinic) -> None:
    missing = clinic.client.get("/packs/no-such-pack")
    assert missing.status_code == 404
    assert (missing.json()["field"], missing.json()["value"]) == ("pack_id", "no-such-pack")
    assert clinic.client.post("/appointments/A-none/cancel").status_code == 404


def test_a_key_reused_for_another_request_is_422(clinic: Clinic) -> None:
    open_pack(clinic)
    key = {"Idempotency-Key": "booking-1"}
    assert clinic.client.post("/appointments", json=visit(), headers=key).status_code == 201

    other = clinic.client.post("/appointments", json=visit(minutes=30), headers=key)

    assert other.status_code == 422, other.text
    assert (other.json()["rule"], other.json()["field"]) == ("R27", "idempotency_key")
    assert clinic.count(appointments) == 1


@pytest.mark.parametrize(
    ("error", "status", "retryable"),
    [
        (RefusedError(Rule.R5, "pack_id", "P1", "has no sessions left"), 409, False),
        (RefusedError(Rule.R27, "idempotency_key", "k", "was used"), 422, False),
        (InvalidValueError("Money.currency", "XYZ", "is not a currency"), 422, False),
        (NotFoundError("pack_id", "P9", "is not a pack"), 404, False),
        (ConcurrencyError("pack_id", "P1", "changed meanwhile"), 409, True),
        (ConnectionLostError("store", None, "connection lost"), 503, True),
        (StoreError("store", None, "disk full"), 503, False),
    ],
)
def test_every_library_error_has_its_status_and_body(
    error: SessionPacksError, status: int, retryable: bool
) -> None:
    app = FastAPI()
    install_error_handler(app)

    @app.get("/fails")
    def fails() -> None:
        raise error

    answer = TestClient(app).get("/fails")

    assert answer.status_code == status
    assert answer.json() == {
        "error": type(error).__name__,
        "rule": error.rule,
        "field": error.field,
        "value": error.value,
        "message": error.reason,
        "retryable": retryable,
    }


# Idempotent retries --------------------------------------------------------------------------


def test_a_retried_booking_creates_nothing_twice(clinic: Clinic) -> None:
    pack_id = open_pack(clinic)
    key = {"Idempotency-Key": "booking-1"}
    first = clinic.client.post("/appointments", json=visit(), headers=key)
    events = clinic.packs.events_since()

    again = clinic.client.post("/appointments", json=visit(), headers=key)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert clinic.count(appointments) == clinic.count(invoices) == 1
    assert clinic.packs.pack(pack_id).remaining_units == 4
    assert clinic.packs.events_since() == events


def test_a_retried_opening_opens_one_pack(clinic: Clinic) -> None:
    pack_id = open_pack(clinic)
    key = {"Idempotency-Key": "open-1"}
    request = {"client_id": "C2", "template_id": "T-physio"}

    first = clinic.client.post("/packs", json=request, headers=key)
    again = clinic.client.post("/packs", json=request, headers=key)

    assert again.json() == first.json()
    assert [p.pack_id for p in clinic.packs.client_packs("C2")] == [first.json()["pack_id"]]
    assert first.json()["pack_id"] != pack_id


def test_a_retried_cancellation_cancels_once(clinic: Clinic) -> None:
    open_pack(clinic)
    appointment_id = clinic.client.post("/appointments", json=visit()).json()["appointment_id"]
    key = {"Idempotency-Key": "cancel-1"}

    first = clinic.client.post(f"/appointments/{appointment_id}/cancel", headers=key)
    again = clinic.client.post(f"/appointments/{appointment_id}/cancel", headers=key)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    # Without the key the second cancellation finds no usage to cancel.
    assert clinic.client.post(f"/appointments/{appointment_id}/cancel").status_code == 404


# Serving it ----------------------------------------------------------------------------------


def test_a_server_builds_it_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLINIC_DATABASE_URL", f"sqlite:///{tmp_path / 'served.db'}")
    client = TestClient(from_environment())

    assert client.get("/packs/P1").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "Clinic front desk"
