"""Pricing (R15): invoice lines, revenue recognised per session, breakage and refunds.

All functions are pure functions of a :class:`~sessionpacks.ledger.PackState`.

Rules this module chose where the spec is silent (see ``docs/rules.md``):

* A pack charged per pack carries its price on the first invoice line *issued* for it, unless
  it was charged on its own invoice at opening; every other line is zero and "prepaid". So the
  price is charged exactly once even when an earlier appointment is invoiced later.
* Revenue of a pack charged per pack is recognised in proportion to the paid allowance used:
  after ``u`` of ``N`` units, ``floor(price * min(u, N) / N)`` minor units are recognised, so the
  shares add up to the price exactly with the remainders on the later sessions. Goodwill credits
  beyond the paid allowance recognise nothing.
* A pack charged per session charges the n-th line *issued* at the n-th session's tier, while
  its label keeps the session number: the first-session price is charged once even when an
  earlier appointment, recorded after the fact, becomes session 1.
* A pack charged per session is paid as it is used: nothing is prepaid, so there is no
  breakage and nothing to refund.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import attrs

from sessionpacks.ledger import PackState, PackStatus, Usage
from sessionpacks.model import Amount, Metric, Money, PerPack, PerSession

__all__ = [
    "InvoiceLine",
    "Recognised",
    "breakage",
    "invoice_line",
    "recognised",
    "refundable",
]


@attrs.frozen(kw_only=True)
class InvoiceLine:
    """The line for one appointment drawn on a pack.

    ``amount`` is what the pack charges on this line (its price, a tier's price, or zero when
    ``prepaid``); ``shortfall`` is the part of an hours or money usage the pack did not cover and
    ``shortfall_amount`` its price, for the host to bill (R3). ``total`` adds the two.
    """

    appointment_id: str
    pack_id: str
    number: int
    label: str
    amount: Money
    prepaid: bool
    includes_pack_price: bool
    shortfall: Amount
    shortfall_amount: Money

    @property
    def total(self) -> Money:
        return self.amount + self.shortfall_amount


def _shortfall_amount(state: PackState, usage: Usage) -> Money:
    currency = state.terms.currency
    if usage.shortfall == 0:
        return Money.zero(currency)
    if state.metric is Metric.MONEY:
        return Money.from_minor(usage.shortfall, currency)
    # An hours shortfall is billed pro rata at the appointment's own price.
    whole = usage.appointment.duration // timedelta(microseconds=1)
    share = usage.appointment.price.amount * Decimal(usage.shortfall) / Decimal(whole)
    return Money.rounded(share, currency)


def invoice_line(state: PackState, appointment_id: str) -> InvoiceLine:
    """The invoice line of an active usage: the issued one if there is one, else as of now."""
    usage = state.usage(appointment_id)
    number = state.number(appointment_id)
    assert usage is not None
    shortfall = state.amount(usage.shortfall)
    shortfall_amount = _shortfall_amount(state, usage)
    if usage.invoice is not None:
        issued = usage.invoice
        return InvoiceLine(
            appointment_id=appointment_id,
            pack_id=state.pack_id,
            number=issued.number,
            label=issued.label,
            amount=issued.amount,
            prepaid=issued.prepaid,
            includes_pack_price=issued.includes_pack_price,
            shortfall=shortfall,
            shortfall_amount=shortfall_amount,
        )
    pricing = state.terms.pricing
    if isinstance(pricing, PerSession):
        charge, prepaid, includes = pricing.price_of(state.lines_issued + 1), False, False
    elif state.price_charged:
        charge, prepaid, includes = Money.zero(pricing.currency), True, False
    else:
        charge, prepaid, includes = pricing.price, False, True
    return InvoiceLine(
        appointment_id=appointment_id,
        pack_id=state.pack_id,
        number=number,
        label=state.label(appointment_id),
        amount=charge,
        prepaid=prepaid,
        includes_pack_price=includes,
        shortfall=shortfall,
        shortfall_amount=shortfall_amount,
    )


@attrs.frozen
class Recognised:
    """Revenue recognised for one session (R15)."""

    appointment_id: str
    number: int
    amount: Money


def recognised(state: PackState) -> tuple[Recognised, ...]:
    """Revenue recognised by each active usage, in session-number order."""
    pricing = state.terms.pricing
    if isinstance(pricing, PerSession):
        return tuple(
            Recognised(u.appointment.id, n, pricing.price_of(n))
            for n, u in enumerate(state.usages, start=1)
        )
    price = pricing.price.minor
    paid = state.terms.allowance.units
    shares: list[Recognised] = []
    used = before = 0
    for n, usage in enumerate(state.usages, start=1):
        used += usage.consumed
        upto = price * min(used, paid) // paid
        shares.append(
            Recognised(usage.appointment.id, n, Money.from_minor(upto - before, pricing.currency))
        )
        before = upto
    return tuple(shares)


def _unrecognised(state: PackState) -> Money:
    pricing = state.terms.pricing
    if not isinstance(pricing, PerPack):
        return Money.zero(pricing.currency)
    total = sum((r.amount.minor for r in recognised(state)), 0)
    return Money.from_minor(pricing.price.minor - total, pricing.currency)


def breakage(state: PackState, as_of: datetime) -> Money:
    """The price of what an expired pack left unused; zero unless expired at ``as_of``."""
    if state.status(as_of) is not PackStatus.EXPIRED:
        return Money.zero(state.terms.currency)
    return _unrecognised(state)


def refundable(state: PackState) -> Money:
    """The price of what is not yet used: what closing the pack would refund (R10, R15)."""
    return _unrecognised(state)
