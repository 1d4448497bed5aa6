"""Idempotency keys (R27): what a keyed command is, and its result as stored JSON text.

A command's *fingerprint* says which command ran with which arguments, so that the same key
sent with other arguments can be refused. It has a form of its own (``fp1``), apart from the
encoding of values, so that no change to that encoding changes a stored fingerprint. Its
*result* is stored as JSON text beside its writes and decoded when a retry with the same key
comes in; the events in it are numbered from 1, and the store's ``first_position`` turns them
back into stream positions.
"""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from sessionpacks._encoding import dump, load
from sessionpacks.errors import shown
from sessionpacks.events import Event, RecordedEvent
from sessionpacks.model import instant
from sessionpacks.ports import CommandRecord

__all__ = ["decode_result", "encode_result", "fingerprint", "numbered"]

T = TypeVar("T")

FINGERPRINT_VERSION = "fp1"
"""The form of a fingerprint; a release that changes the form keeps computing this one for
the records stored before it."""

_DEPTH = 32  # deeper than any argument of a command: the rest is named by its type only


def fingerprint(command: str, arguments: dict[str, Any]) -> str:
    """A digest of the command's name and arguments: equal for calls that mean the same."""
    text = json.dumps([command, _canonical(arguments, 0)], sort_keys=True, ensure_ascii=True)
    return f"{FINGERPRINT_VERSION}:{hashlib.sha256(text.encode('ascii')).hexdigest()}"


def _canonical(value: Any, depth: int) -> Any:
    """``value`` as JSON-ready data that is equal for equal arguments: instants in UTC, sets
    sorted, every value tagged with its type (3 sessions and 3 µs differ), attrs fields left
    out at their default (a field added later with a default keeps old fingerprints)."""
    if value is None or isinstance(value, bool | str):
        return value
    if depth > _DEPTH:
        return [type(value).__name__]
    kind = type(value).__name__
    deeper = depth + 1
    if isinstance(value, int):
        return [kind, hex(value)]  # hex has no digit limit, unlike str()
    if isinstance(value, float | Decimal | date | timedelta | enum.Enum):
        return [kind, _scalar(value)]
    if isinstance(value, set | frozenset):
        return [kind, sorted(json.dumps(_canonical(v, deeper), sort_keys=True) for v in value)]
    if isinstance(value, list | tuple):
        return [kind, [_canonical(v, deeper) for v in value]]
    if isinstance(value, dict):
        items = [[_canonical(k, deeper), _canonical(v, deeper)] for k, v in value.items()]
        return [kind, sorted(items, key=lambda item: json.dumps(item, sort_keys=True))]
    if attrs.has(type(value)):
        return [kind, _fields(value, deeper)]
    return [kind, shown(value)]  # a host's object: refused by the command anyway


def _scalar(value: float | Decimal | date | timedelta | enum.Enum) -> Any:
    if isinstance(value, enum.Enum):
        return _canonical(value.value, 0)
    if isinstance(value, timedelta):
        return [value.days, value.seconds, value.microseconds]
    if isinstance(value, datetime):
        try:
            return (
                instant(value).isoformat() if value.utcoffset() is not None else value.isoformat()
            )
        except (OverflowError, ValueError):  # out of range: refused by the command anyway
            return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def _fields(value: Any, depth: int) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field in attrs.fields(type(value)):
        current = getattr(value, field.name)
        default = field.default
        if isinstance(default, attrs.Factory) and not default.takes_self:  # type: ignore[arg-type]
            default = default.factory()
        try:
            if default is not attrs.NOTHING and current == default:
                continue
        except Exception:  # a value that cannot be compared is not the default
            pass
        fields[field.name] = _canonical(current, depth)
    return fields


def numbered(events: tuple[Event, ...]) -> tuple[RecordedEvent, ...]:
    """``events`` at positions counted from 1, as a result stored before the commit has them."""
    return tuple(RecordedEvent(n, event) for n, event in enumerate(events, start=1))


def encode_result(result: Any, kind: Any) -> str:
    """The result of a command, as the JSON text a :class:`CommandRecord` keeps (the library's
    one encoding, so a result stored by an earlier release decodes too)."""
    return dump(result, kind)


def decode_result(record: CommandRecord, kind: type[T]) -> T:
    """The result the first run of the command returned, its events at their positions."""
    result: T = _shifted(load(record.result, kind), record.first_position)
    return result


def _shifted(result: Any, base: int) -> Any:
    if isinstance(result, tuple) and all(isinstance(r, RecordedEvent) for r in result):
        return tuple(attrs.evolve(r, position=base + r.position) for r in result)
    events = getattr(result, "events", None)
    if isinstance(events, tuple) and attrs.has(type(result)):
        return attrs.evolve(result, events=_shifted(events, base))
    return result
