"""A clinic's front desk over HTTP: templates, packs, and appointments drawn on them.

The clinic keeps its own ``appointments`` and ``invoices`` tables; sessionpacks keeps the packs
in its tables of the same database, through :mod:`sessionpacks.adapters.sqlalchemy`. Booking
writes the appointment, its pack usage and its invoice in one transaction of the request's
connection: the library commits nothing itself there, so either all three are written or none.

    with engine.begin() as connection:                      # the request's one transaction
        connection.execute(appointments.insert().values(...))
        packs = PackService(store.using(connection).practice(practice_id), clock)
        assigned = packs.book(appointment)                  # a savepoint, no commit
        line = packs.invoice_line(appointment.id)
        connection.execute(invoices.insert().values(...))
    # committed here, all of it; an exception anywhere above rolls all of it back

Errors of the library become responses in :mod:`clinic_errors`, in one handler.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
from clinic_errors import install_error_handler
from fastapi import FastAPI, Header
from pydantic import BaseModel, Field

from sessionpacks import (
    Allowance,
    Appointment,
    Assignment,
    Clock,
    Money,
    NotFoundError,
    PackService,
    PackState,
    PackTerms,
    PerPack,
    PreferPack,
)
from sessionpacks.adapters.sqlalchemy import SqlAlchemyStore, create_metadata

__all__ = [
    "appointments",
    "create_app",
    "create_tables",
    "from_environment",
    "invoices",
    "metadata",
]

# The clinic's own tables ----------------------------------------------------------------------

metadata = sa.MetaData()

appointments = sa.Table(
    "appointments",
    metadata,
    sa.Column("appointment_id", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("service_id", sa.String(64), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # The key of the request that booked it: a retry of that request finds it here.
    sa.Column("idempotency_key", sa.String(255), unique=True),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("invoice_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "appointment_id",
        sa.ForeignKey(appointments.c.appointment_id),
        unique=True,
        nullable=False,
    ),
    sa.Column("pack_id", sa.String(64)),
    sa.Column("description", sa.String(200), nullable=False),
    # Money in minor units (cents): exact on every database.
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("void", sa.Boolean, nullable=False, default=False),
)


def create_tables(engine: sa.Engine, *, schema: str | None = None) -> None:
    """The clinic's tables and sessionpacks', as the clinic's first Alembic revision would make
    them (see docs/embedding-sqlalchemy.md for the recipe). ``schema``: where sessionpacks'
    tables live on PostgreSQL (``"sessionpacks"`` if None); None on SQLite."""
    with engine.begin() as connection:
        metadata.create_all(connection)
        create_metadata(engine.dialect.name, schema=schema).create_all(connection)


# What the API takes and gives ----------------------------------------------------------------
# Plain types: sessionpacks checks the values themselves (an amount, a currency, an aware
# start), and its InvalidValueError names the field at fault in the 422 response.


class TemplateIn(BaseModel):
    template_id: str
    name: str
    sessions: int
    price: str = Field(description="the pack's price, a decimal string: '500.00'")
    currency: str
    services: list[str] = Field(default_factory=list, description="empty: any service")


class TemplateOut(BaseModel):
    template_id: str
    version: int
    name: str


class PackIn(BaseModel):
    client_id: str
    template_id: str
    default: bool = Field(True, description="the client's appointments draw on it by default")


class PackOut(BaseModel):
    pack_id: str
    client_id: str
    name: str
    remaining: int
    total: int
    status: str


class AppointmentIn(BaseModel):
    client_id: str
    service_id: str
    start: datetime = Field(description="ISO 8601 with its UTC offset")
    minutes: int = Field(gt=0, le=24 * 60)
    price: str
    currency: str
    pack_id: str | None = Field(None, description="draw on this pack; none: the client's default")


class InvoiceOut(BaseModel):
    description: str
    amount: str
    currency: str
    prepaid: bool


class BookingOut(BaseModel):
    appointment_id: str
    pack_id: str | None
    label: str | None = Field(description="'Session n of N' when it draws on a pack")
    invoice: InvoiceOut


class CancellationOut(BaseModel):
    appointment_id: str
    status: str
    pack: PackOut | None


IdempotencyKey = Annotated[
    str | None,
    Header(description="the same key again returns the first answer and writes nothing"),
]


# The application -----------------------------------------------------------------------------


def create_app(
    engine: sa.Engine,
    *,
    practice_id: str = "clinic-1",
    timezone: str = "Australia/Sydney",
    schema: str | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The front desk on ``engine``, whose tables :func:`create_tables` made. A real clinic
    passes no ``clock`` (the system's); tests pass a fixed one."""
    store = SqlAlchemyStore(engine, schema=schema)
    # Reads need no transaction of the clinic's: the store runs its own on the engine.
    reads = PackService(store.practice(practice_id, timezone), clock)

    def desk(connection: sa.Connection) -> PackService:
        """The packs on this request's connection: they commit when the clinic's rows do."""
        return PackService(store.using(connection).practice(practice_id), clock)

    def pack_out(pack: PackState) -> PackOut:
        return PackOut(
            pack_id=pack.pack_id,
            client_id=pack.client_id,
            name=pack.terms.name,
            remaining=pack.remaining_units,
            total=pack.total_units,
            status=pack.status(reads.clock.now()).value,
        )

    app = FastAPI(title="Clinic front desk")
    install_error_handler(app)

    @app.post("/templates", status_code=201)
    def add_template(body: TemplateIn, idempotency_key: IdempotencyKey = None) -> TemplateOut:
        terms = PackTerms(
            name=body.name,
            allowance=Allowance.sessions(body.sessions),
            pricing=PerPack(Money(body.price, body.currency)),
            eligible_services=frozenset(body.services),
        )
        template = reads.add_template(body.template_id, terms, idempotency_key=idempotency_key)
        return TemplateOut(
            template_id=template.id, version=template.version, name=template.terms.name
        )

    @app.post("/packs", status_code=201)
    def open_pack(body: PackIn, idempotency_key: IdempotencyKey = None) -> PackOut:
        with engine.begin() as connection:
            packs = desk(connection)
            pack = packs.open_pack(
                body.client_id, template_id=body.template_id, idempotency_key=idempotency_key
            )
            if body.default:
                # Setting the same default again writes nothing: a retry needs no key for it.
                packs.set_preference(body.client_id, PreferPack(pack.pack_id))
        return pack_out(pack)

    @app.get("/packs/{pack_id}")
    def get_pack(pack_id: str) -> PackOut:
        return pack_out(reads.pack(pack_id))

    @app.post("/appointments", status_code=201)
    def book(body: AppointmentIn, idempotency_key: IdempotencyKey = None) -> BookingOut:
        with engine.begin() as connection:
            first_id = _booked_under(connection, idempotency_key)
            appointment = Appointment(
                id=first_id or f"A-{uuid.uuid4().hex[:12]}",
                client_id=body.client_id,
                service_id=body.service_id,
                start=body.start,
                duration=timedelta(minutes=body.minutes),
                price=Money(body.price, body.currency),
            )
            if first_id is None:
                connection.execute(
                    appointments.insert().values(
                        appointment_id=appointment.id,
                        client_id=appointment.client_id,
                        service_id=appointment.service_id,
                        starts_at=appointment.start,
                        status="booked",
                        idempotency_key=idempotency_key,
                    )
                )
            packs = desk(connection)
            # With the key, a retry gets the first answer back, and a different request
            # under the same key is refused (R27): its appointment's facts differ.
            assigned = _draw(packs, appointment, body.pack_id, idempotency_key)
            invoice = _invoice(packs, appointment, assigned)
            if first_id is None:
                connection.execute(
                    invoices.insert().values(
                        appointment_id=appointment.id,
                        pack_id=None if assigned.pack is None else assigned.pack.pack_id,
                        description=invoice.description,
                        amount_minor=Money(invoice.amount, invoice.currency).minor,
                        currency=invoice.currency,
                    )
                )
        return BookingOut(
            appointment_id=appointment.id,
            pack_id=None if assigned.pack is None else assigned.pack.pack_id,
            label=assigned.label,
            invoice=invoice,
        )

    @app.post("/appointments/{appointment_id}/cancel")
    def cancel(appointment_id: str, idempotency_key: IdempotencyKey = None) -> CancellationOut:
        with engine.begin() as connection:
            status, pack = _cancel(connection, desk(connection), appointment_id, idempotency_key)
        return CancellationOut(
            appointment_id=appointment_id,
            status=status,
            pack=None if pack is None else pack_out(pack),
        )

    return app


def from_environment() -> FastAPI:
    """The front desk on ``CLINIC_DATABASE_URL`` (``sqlite:///clinic.db`` if unset), its tables
    made if need be: what a server runs, ``uvicorn --factory clinic_api:from_environment``."""
    engine = sa.create_engine(os.environ.get("CLINIC_DATABASE_URL", "sqlite:///clinic.db"))
    schema = os.environ.get("CLINIC_PACKS_SCHEMA")  # PostgreSQL only
    create_tables(engine, schema=schema)
    return create_app(engine, schema=schema)


def _booked_under(connection: sa.Connection, key: str | None) -> str | None:
    """The appointment a first request with this key booked, if it committed."""
    if key is None:
        return None
    return connection.execute(
        sa.select(appointments.c.appointment_id).where(appointments.c.idempotency_key == key)
    ).scalar_one_or_none()


def _cancel(
    connection: sa.Connection, packs: PackService, appointment_id: str, key: str | None
) -> tuple[str, PackState | None]:
    """Cancel the appointment, its usage if it has one, and void its invoice unless the
    session stays used (a late cancellation, if the pack's policy says so)."""
    booked = connection.execute(
        sa.select(invoices.c.pack_id).where(invoices.c.appointment_id == appointment_id)
    ).one_or_none()
    if booked is None:
        raise NotFoundError("appointment_id", appointment_id, "is not booked here")
    pack = None if booked.pack_id is None else packs.cancel(appointment_id, idempotency_key=key)
    kept = pack is not None and pack.usage(appointment_id) is not None
    status = "cancelled_late" if kept else "cancelled"
    connection.execute(
        appointments.update()
        .where(appointments.c.appointment_id == appointment_id)
        .values(status=status)
    )
    connection.execute(
        invoices.update().where(invoices.c.appointment_id == appointment_id).values(void=not kept)
    )
    return status, pack


def _draw(
    packs: PackService, appointment: Appointment, pack_id: str | None, key: str | None
) -> Assignment:
    if pack_id is None:
        return packs.book(appointment, idempotency_key=key)  # the client's default (R13)
    return packs.assign(appointment, pack_id=pack_id, idempotency_key=key)


def _invoice(packs: PackService, appointment: Appointment, assigned: Assignment) -> InvoiceOut:
    """The appointment's invoice line: the pack's (issued once, so a retry gets the same one)
    or, on no pack, the appointment's own price."""
    if assigned.pack is None:
        price = appointment.price
        return InvoiceOut(
            description=appointment.service_id,
            amount=str(price.amount),
            currency=price.currency,
            prepaid=False,
        )
    line = packs.invoice_line(appointment.id)
    return InvoiceOut(
        description=line.label,
        amount=str(line.total.amount),
        currency=line.total.currency,
        prepaid=line.prepaid,
    )
