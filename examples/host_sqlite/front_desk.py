"""The clinic's front desk: checking out a visit bills it once, from the client's pack if any.

This is host code, not the library's: the rule it keeps, "a client never pays twice for one
appointment", is the clinic's. ``test_host.py`` checks it with a property test drawn from
:mod:`sessionpacks.strategies`.
"""

from __future__ import annotations

import attrs

from sessionpacks import Appointment, Money, NotFoundError, PackService

__all__ = ["Charge", "FrontDesk"]


@attrs.frozen
class Charge:
    """One line of the client's bill: a visit, what it costs, and the pack it drew on."""

    appointment_id: str
    amount: Money
    pack_id: str | None = None
    includes_pack_price: bool = False


class FrontDesk:
    """Checks visits out. ``bill`` holds one charge per visit, in the order billed."""

    def __init__(self, packs: PackService) -> None:
        self.packs = packs
        self.bill: dict[str, Charge] = {}

    def checkout(self, visit: Appointment) -> Charge:
        """Bill a visit that took place; asking again (a retry, a double click) bills nothing
        new and returns the charge already made."""
        if visit.id in self.bill:
            return self.bill[visit.id]
        try:
            # Books the visit by the client's default (R13) and issues its line, once (R15).
            line = self.packs.add_to_invoice(visit)
        except NotFoundError:  # no pack covers the visit: it is billed at its own price
            charge = Charge(visit.id, visit.price)
        else:
            charge = Charge(visit.id, line.total, line.pack_id, line.includes_pack_price)
        self.bill[visit.id] = charge
        return charge
