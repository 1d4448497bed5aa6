"""Shared fixtures: a Sydney practice on the in-memory store, a fixed clock, a service with
deterministic pack ids (``pk1``, ``pk2``...), and helpers to build money, instants,
appointments and terms tersely."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryRepository, InMemoryStore
from sessionpacks.ledger import Used
from sessionpacks.model import (
    Allowance,
    Appointment,
    ExpiryRule,
    Money,
    NoExpiry,
    PackTerms,
    PerSession,
    Policies,
    Practice,
    Pricing,
)
from sessionpacks.ports import PackRepository
from sessionpacks.service import PackService

# Registered by its entry point (sessionpacks' pytest11); naming it here asks for its profiles
# (sessionpacks-dev, or sessionpacks-ci under CI=true), and loads it under
# PYTEST_DISABLE_PLUGIN_AUTOLOAD=1.
pytest_plugins = ["sessionpacks.testing.plugin"]

SYDNEY = ZoneInfo("Australia/Sydney")
CLIENTS = ("C1", "C2")


def aud(x: str | int | Decimal) -> Money:
    """``aud("120")`` is 120.00 AUD."""
    return Money(x, "AUD")


def at(text: str) -> datetime:
    """An ISO instant; without an offset it is Sydney local time (``"2026-02-02T10:00"``)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SYDNEY)


def appt(
    appointment_id: str,
    start: str | datetime = "2026-02-02T10:00",
    *,
    client: str = "C1",
    service: str = "physio",
    minutes: int = 60,
    price: Money | str = "120.00",
) -> Appointment:
    """An appointment; ``start`` as for :func:`at`, ``price`` in AUD unless Money is given."""
    return Appointment(
        id=appointment_id,
        client_id=client,
        service_id=service,
        start=at(start) if isinstance(start, str) else start,
        duration=timedelta(minutes=minutes),
        price=price if isinstance(price, Money) else aud(price),
    )


def terms(
    allowance: Allowance | int = 10,
    *,
    name: str = "10 x Physio",
    pricing: Pricing | None = None,
    expiry: ExpiryRule | None = None,
    services: Iterable[str] = (),
    policies: Policies | None = None,
) -> PackTerms:
    """Pack terms; an int ``allowance`` is that many sessions, priced 120.00 AUD each."""
    return PackTerms(
        name=name,
        allowance=Allowance.sessions(allowance) if isinstance(allowance, int) else allowance,
        pricing=pricing or PerSession.flat(aud("120")),
        expiry=expiry or NoExpiry(),
        eligible_services=frozenset(services),
        policies=policies or Policies(),
    )


def snapshot(repo: PackRepository, clients: Iterable[str] = CLIENTS) -> dict[str, Any]:
    """Everything a repository holds, read through its public API, to compare before/after."""
    packs = [p for c in clients for p in repo.client_packs(c)]
    ledgers = {p.pack_id: repo.ledger(p.pack_id) for p in packs}
    appointments = {
        e.appointment.id for entries in ledgers.values() for e in entries if isinstance(e, Used)
    }
    return {
        "states": {p.pack_id: p for p in packs},
        "ledgers": ledgers,
        "active": {a: repo.pack_of_appointment(a) for a in sorted(appointments)},
        "events": repo.events_since(0),
        "templates": {
            t.id: [repo.template(t.id, v) for v in range(1, t.version + 1)]
            for t in repo.templates()
        },
        "preferences": {c: repo.preference(c) for c in clients},
    }


@pytest.fixture
def practice() -> Practice:
    return Practice("clinic-1", "Australia/Sydney")


@pytest.fixture
def repo(practice: Practice) -> InMemoryRepository:
    return InMemoryStore().practice(practice.id, timezone=practice.timezone)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(at("2026-01-15T09:00"))


@pytest.fixture
def service(repo: InMemoryRepository, clock: FixedClock) -> PackService:
    counter = itertools.count(1)
    return PackService(repo, clock, new_pack_id=lambda: f"pk{next(counter)}")
