"""The one error hierarchy of sessionpacks.

Every error the library raises derives from :class:`SessionPacksError` and carries the
``field`` and ``value`` at fault, and for a domain refusal the :class:`Rule` of the spec
(``Rule.R5``, equal to ``"R5"``). A refused operation writes nothing (R17).
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "ConcurrencyError",
    "ConnectionLostError",
    "InvalidValueError",
    "NotFoundError",
    "RefusedError",
    "Rule",
    "SessionPacksError",
    "StoreError",
]


class Rule(enum.StrEnum):
    """A rule of the spec (docs/rules.md), as :attr:`RefusedError.rule` names it.

    A member is its code as a string: ``Rule.R6a == "R6a"``, so a host may compare with
    either. Only refusals carry a rule; the other rules are here so that a test or a log can
    name any of them the same way.
    """

    R1 = "R1"
    R2 = "R2"
    R3 = "R3"
    R4 = "R4"
    R5 = "R5"
    R6 = "R6"
    R6a = "R6a"
    R7 = "R7"
    R7a = "R7a"
    R8 = "R8"
    R9 = "R9"
    R10 = "R10"
    R10a = "R10a"
    R11 = "R11"
    R12 = "R12"
    R12a = "R12a"
    R12b = "R12b"
    R13 = "R13"
    R13a = "R13a"
    R14 = "R14"
    R15 = "R15"
    R15a = "R15a"
    R16 = "R16"
    R17 = "R17"
    R18 = "R18"
    R19 = "R19"
    R20 = "R20"
    R21 = "R21"
    R22 = "R22"
    R23 = "R23"
    R24 = "R24"
    R25 = "R25"
    R26 = "R26"
    R27 = "R27"


SHOWN_LENGTH = 80
"""The longest ``repr`` of a value an error message shows."""


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`SHOWN_LENGTH` characters with ``...`` at the end."""
    try:
        text = repr(value)
    except Exception:
        # An int of more than 4,300 digits refuses repr(); a host's object may raise anything.
        # Building the error must not fail in its turn.
        text = f"<{type(value).__name__} that cannot be shown>"
    if len(text) > SHOWN_LENGTH:
        return text[: SHOWN_LENGTH - 3] + "..."
    return text


class SessionPacksError(Exception):
    """Base of every error sessionpacks raises.

    ``field`` names what was at fault (``"appointment.start"``), ``value`` is the offending
    value, ``rule`` the spec rule that refused it (``"R5"``) or ``None`` for malformed input.
    The message shows the value's ``repr`` cut to :data:`SHOWN_LENGTH` characters (R18), so a
    100,000-character id makes a short log line; ``value`` keeps it whole.
    """

    def __init__(self, field: str, value: Any, message: str, rule: str | None = None) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        self.reason = message
        prefix = f"{rule}: " if rule else ""
        super().__init__(f"{prefix}{field}={shown(value)}: {message}")


class InvalidValueError(SessionPacksError, ValueError):
    """A value that cannot be constructed: a naive datetime, a negative price, a bad code."""


class RefusedError(SessionPacksError):
    """A well-formed request that a rule of the domain refuses (no sessions left, expired...).

    ``rule`` is a :class:`Rule`; a code given as a bare string (``"R5"``) is taken as its
    member, and any other string is kept as it is (a host's own refusal).
    """

    rule: Rule | str

    def __init__(self, rule: Rule | str, field: str, value: Any, message: str) -> None:
        super().__init__(field, value, message, rule=_as_rule(rule))


def _as_rule(code: Rule | str) -> Rule | str:
    try:
        return Rule(code)
    except ValueError:
        return code


class NotFoundError(SessionPacksError, LookupError):
    """An id that names nothing in this practice: a pack, template, usage or appointment."""


class StoreError(SessionPacksError):
    """The database could not do what was asked: a file from a newer release, a closed store,
    an I/O failure. Nothing was written."""


class ConcurrencyError(SessionPacksError):
    """A write whose expected version is no longer current; nothing was written (R16)."""


class ConnectionLostError(StoreError):
    """The connection to the database broke in the middle of a command, so whether its write
    was committed is unknown. :class:`~sessionpacks.service.PackService` sends the command
    again only where a repeat is safe: it carries an idempotency key (R27), or it records an
    appointment, which the same facts again cannot record twice (R6)."""
