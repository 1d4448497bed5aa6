"""The clinic proves its store and its own rules with sessionpacks' testing kit.

- ``TestClinicContract``: the contract every ``PackRepository`` passes, on the clinic's tables.
- ``TestClinicMachine``: random days at the clinic driven through ``PackService`` on the
  clinic's store beside the library's reference store; both must agree after every step.
- ``test_a_client_never_pays_twice_for_one_appointment``: the clinic's own rule, as a property
  test drawn from ``sessionpacks.strategies``.

Run with ``pytest examples/host_sqlite``; ``SESSIONPACKS_HYPOTHESIS_PROFILE=ci`` for a long run.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clinic_packs import ClinicPackStore
from front_desk import FrontDesk
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import (
    FixedClock,
    InMemoryStore,
    PackRepository,
    PackService,
    PackTerms,
    PerPack,
    PreferTemplate,
    RefusedError,
    SessionPacksError,
)
from sessionpacks import strategies as sps
from sessionpacks.testing import Opener, RepositoryContract, StoreMachine

SYDNEY = ZoneInfo("Australia/Sydney")


class TestClinicContract(RepositoryContract):
    @pytest.fixture(autouse=True)
    def _file(self, tmp_path: Path) -> None:
        self.path = tmp_path / "clinic.db"

    def make_store(self) -> Opener:
        self.store = ClinicPackStore(self.path)
        return self.store.practice

    def close_store(self) -> None:
        self.store.close()


class ClinicMachine(StoreMachine):
    def open_repository(self, practice_id: str, timezone: str) -> PackRepository:
        self.folder = tempfile.TemporaryDirectory()
        self.store = ClinicPackStore(Path(self.folder.name) / "clinic.db")
        return self.store.practice(practice_id, timezone)

    def close_repository(self) -> None:
        self.store.close()
        self.folder.cleanup()


TestClinicMachine = ClinicMachine.TestCase


@given(terms=sps.pack_terms(service_ids=["physio", "massage"]), data=st.data())
def test_a_client_never_pays_twice_for_one_appointment(
    terms: PackTerms, data: st.DataObject
) -> None:
    """Checkouts, retried checkouts and cancellations in any order: every visit checked out is
    billed once, a retry returns the same charge, and a pack's price is on one charge only."""
    packs = PackService(
        InMemoryStore().practice("clinic-1", "Australia/Sydney"),
        FixedClock(datetime(2026, 1, 15, 9, tzinfo=SYDNEY)),
    )
    packs.add_template("T1", terms)
    packs.set_preference("C1", PreferTemplate("T1"))
    visits = [
        data.draw(sps.appointments("C1", "physio", appointment_id=f"V{n}"), label=f"V{n}")
        for n in range(1, data.draw(st.integers(1, 6), label="visits") + 1)
    ]
    kinds = st.sampled_from(["checkout", "checkout", "cancel"])
    steps = data.draw(st.lists(st.tuples(kinds, st.sampled_from(visits))), label="steps")
    desk = FrontDesk(packs)
    charged = []
    for kind, visit in steps:
        if kind == "checkout":
            charged.append(desk.checkout(visit))
        else:
            with suppress(SessionPacksError):  # a visit not on a pack has nothing to cancel
                packs.cancel(visit.id)

    checked_out = {visit.id for kind, visit in steps if kind == "checkout"}
    assert list(desk.bill) == list(dict.fromkeys(c.appointment_id for c in charged))
    assert set(desk.bill) == checked_out
    for charge in charged:
        assert charge == desk.bill[charge.appointment_id]  # a retry bills nothing new
    on_pack = Counter(c.pack_id for c in desk.bill.values() if c.pack_id is not None)
    with_price = Counter(c.pack_id for c in desk.bill.values() if c.includes_pack_price)
    for pack_id in on_pack:
        priced_per_pack = isinstance(packs.pack(pack_id).terms.pricing, PerPack)
        assert with_price[pack_id] == (1 if priced_per_pack else 0)
    for visit_id, charge in desk.bill.items():
        if charge.pack_id is None:  # billed at its own price: no pack could take it (R13)
            visit = next(v for v in visits if v.id == visit_id)
            with pytest.raises(RefusedError):
                packs.assign(visit, template_id="T1")
