"""The one place sessionpacks' errors become HTTP responses.

Every error the library raises is a :class:`~sessionpacks.errors.SessionPacksError` carrying
``rule``, ``field`` and ``value``, so one handler on the base class answers them all with the
same JSON body::

    {"error": "RefusedError", "rule": "R5", "field": "pack_id", "value": "P1",
     "message": "has no sessions left", "retryable": false}

=====================  ======  ===========================================================
error                  status  why
=====================  ======  ===========================================================
RefusedError R27       422     the request itself is wrong: its Idempotency-Key was used by
                               another request, so sending it again can never succeed
RefusedError (other)   409     a well-formed request the packs' state refuses now (used up,
                               expired, already booked elsewhere...)
InvalidValueError      422     a value that cannot be (a naive start, a negative price)
NotFoundError          404     an id that names nothing in this practice
ConcurrencyError       409     another request won the race, retries included; retryable
ConnectionLostError    503     unknown whether it committed; retryable with the same key
StoreError             503     the database could not do it; nothing was written
=====================  ======  ===========================================================

``retryable`` tells a client whether sending the same request again may succeed.
"""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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

__all__ = ["error_body", "install_error_handler", "status_of"]

# Checked in order, so that a subclass comes before its base.
_STATUS: tuple[tuple[type[SessionPacksError], int, bool], ...] = (
    (RefusedError, 409, False),
    (InvalidValueError, 422, False),
    (NotFoundError, 404, False),
    (ConcurrencyError, 409, True),
    (ConnectionLostError, 503, True),
    (StoreError, 503, False),
)

_LONGEST_VALUE = 200
"""A value is echoed back cut to this many characters: a client may have sent 100,000."""


def status_of(error: SessionPacksError) -> tuple[int, bool]:
    """The HTTP status of ``error`` and whether the same request may succeed if sent again."""
    if isinstance(error, RefusedError) and error.rule == Rule.R27:
        return 422, False
    for kind, status, retryable in _STATUS:
        if isinstance(error, kind):
            return status, retryable
    return 500, False


def _json_value(value: Any) -> Any:
    """``value`` as JSON can carry it: numbers and strings as they are, dates and times in
    ISO 8601, anything else (a Money, a host's object) as its ``repr``."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, date | time):
        text = value.isoformat()
    else:
        text = str(value) if isinstance(value, str | Decimal) else repr(value)
    return text if len(text) <= _LONGEST_VALUE else text[: _LONGEST_VALUE - 3] + "..."


def error_body(error: SessionPacksError) -> dict[str, Any]:
    _, retryable = status_of(error)
    return {
        "error": type(error).__name__,
        "rule": None if error.rule is None else str(error.rule),
        "field": error.field,
        "value": _json_value(error.value),
        "message": error.reason,
        "retryable": retryable,
    }


async def _respond(request: Request, error: SessionPacksError) -> JSONResponse:
    status, _ = status_of(error)
    return JSONResponse(error_body(error), status_code=status)


def install_error_handler(app: FastAPI) -> None:
    """Answer every sessionpacks error raised by an endpoint of ``app`` through one handler
    (Starlette finds it by the error's class hierarchy)."""
    app.exception_handler(SessionPacksError)(_respond)
