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
* A pack charged per session charges the n-th line issued *that still stands* at the n-th
  session's tier, while its label keeps the session number: the first-session price is charged
  once even when an earlier appointment, recorded after the fact, becomes session 1. A released
  line no longer counts (R7a): the host credits it, and the next line takes its place.
* A per-pack price whose line is released goes on the next line issued, for the same reason.
* A pack charged per session is paid as it is used: nothing is prepaid, so there is no
  breakage and nothing to refund. Its :func:`figures` report the price of the sessions used,
  all recognised.
* The money of a pack charged per pack adds up (R15a): its paid allowance is split into the
  units used, those left, and those written off by debits (net of credits), and each part's
  value is read off one cumulative scale, ``floor(price * k / N)`` after ``k`` of ``N`` paid
  units, so the parts add up to the price to the cent. What is left is usable, breakage once
  the expiry is recorded (or at ``as_of``), or refundable once the pack is closed or voided.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import attrs

from sessionpacks.ledger import PackState, PackStatus, Usage
from sessionpacks.model import Amount, Metric, Money, PerPack, PerSession

__all__ = [
    "InvoiceLine",
    "PackFigures",
    "Recognised",
    "breakage",
    "figures",
    "invoice_line",
    "recognised",
    "recognised_before",
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
        charge, prepaid, includes = pricing.price_of(state.next_tier), False, False
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
    first = 1 + state.numbered_before  # a migrated pack's sessions here follow its others (R19)
    if isinstance(pricing, PerSession):
        return tuple(
            Recognised(u.appointment.id, n, pricing.price_of(n))
            for n, u in enumerate(state.usages, start=first)
        )
    price = pricing.price.minor
    paid = state.terms.allowance.units
    shares: list[Recognised] = []
    used = state.used_before_units
    before = price * min(used, paid) // paid
    for n, usage in enumerate(state.usages, start=first):
        used += usage.consumed
        upto = price * min(used, paid) // paid
        # A bundle's sessions are numbered by line (R24).
        number = state.number(usage.appointment.id) if state.is_bundle else n
        shares.append(
            Recognised(
                usage.appointment.id, number, Money.from_minor(upto - before, pricing.currency)
            )
        )
        before = upto
    return tuple(shares)


@attrs.frozen(kw_only=True)
class PackFigures:
    """A pack's money at one point (R15a), in its currency.

    ``price == recognised + unearned`` and ``unearned == usable + breakage + refundable +
    written_off + transferred``, to the cent. ``usable`` is what is left while the pack is
    open, ``breakage`` what an expired pack left, ``refundable`` what a closed (or voided) pack
    left, ``written_off`` the value debit adjustments took away, and ``transferred`` what a
    pack closed by a transfer left to the pack that holds it now (R21). For a pack charged per
    session, ``price`` is the tier price of its sessions used, all recognised, and the rest is
    zero.
    """

    price: Money
    recognised: Money
    unearned: Money
    usable: Money
    breakage: Money
    refundable: Money
    written_off: Money
    transferred: Money


def _paid_parts(state: PackState, pricing: PerPack) -> tuple[int, int, int]:
    """The per-pack price in minor units, split: (recognised, left unused, written off).

    Of the ``N`` paid units, ``written`` are taken by the net debit (credits beyond the paid
    allowance are goodwill, worth nothing) and ``used`` are used; each part is a stretch of one
    cumulative scale, so the three add up to the price exactly.
    """
    price, paid = pricing.price.minor, state.terms.allowance.units
    written = max(0, -state.adjustment_units)
    used = min(state.used_before_units + state.consumed_units, paid - written)

    def scale(k: int) -> int:
        return price * k // paid

    return scale(used), scale(paid - written) - scale(used), price - scale(paid - written)


def _expired(state: PackState, as_of: datetime | None) -> bool:
    if as_of is None:
        # The sweep's record: the expiry it recorded stands until an extension moves it.
        return state.expired_on is not None and state.expired_on == state.expiry_date
    return state.status(as_of) is PackStatus.EXPIRED


def figures(state: PackState, as_of: datetime | None = None) -> PackFigures:
    """The pack's money (R15a). Expiry is judged at ``as_of`` like :meth:`PackState.status`;
    without it, by the expiry the sweep recorded, so the figures are the ledger's alone."""
    pricing = state.terms.pricing
    zero = Money.zero(pricing.currency)
    if isinstance(pricing, PerSession):
        used = sum((r.amount.minor for r in recognised(state)), 0)
        paid = Money.from_minor(used, pricing.currency)
        return PackFigures(
            price=paid,
            recognised=paid,
            unearned=zero,
            usable=zero,
            breakage=zero,
            refundable=zero,
            written_off=zero,
            transferred=zero,
        )
    earned, unused, written = _paid_parts(state, pricing)
    left = Money.from_minor(unused, pricing.currency)
    closed, expired = state.ended, not state.ended and _expired(state, as_of)
    moved = closed and state.transferred_to is not None
    return PackFigures(
        price=pricing.price,
        recognised=Money.from_minor(earned, pricing.currency),
        unearned=Money.from_minor(unused + written, pricing.currency),
        usable=zero if closed or expired else left,
        breakage=left if expired else zero,
        refundable=left if closed and not moved else zero,
        written_off=Money.from_minor(written, pricing.currency),
        transferred=left if moved else zero,
    )


def recognised_before(state: PackState) -> Money:
    """What a migrated pack charged per pack recognised in the other system, for what it used
    there (R19): part of :func:`figures`' ``recognised``, earned before the pack came here."""
    pricing = state.terms.pricing
    if not isinstance(pricing, PerPack) or state.used_before_units == 0:
        return Money.zero(pricing.currency)
    paid = state.terms.allowance.units
    share = pricing.price.minor * min(state.used_before_units, paid) // paid
    return Money.from_minor(share, pricing.currency)


def _unused(state: PackState) -> Money:
    pricing = state.terms.pricing
    if not isinstance(pricing, PerPack):
        return Money.zero(pricing.currency)
    return Money.from_minor(_paid_parts(state, pricing)[1], pricing.currency)


def breakage(state: PackState, as_of: datetime) -> Money:
    """The price of what an expired pack left unused; zero unless expired at ``as_of``."""
    if state.status(as_of) is not PackStatus.EXPIRED:
        return Money.zero(state.terms.currency)
    return _unused(state)


def refundable(state: PackState) -> Money:
    """The price of what is not yet used, debits written off aside: what a closed pack
    refunds (R10, R15a); nothing for a pack whose remainder was transferred (R21)."""
    if state.transferred_to is not None:
        return Money.zero(state.terms.currency)
    return _unused(state)
