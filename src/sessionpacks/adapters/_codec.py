"""JSON-ready encoding of entries, events, states, templates and preferences, for stores.

One cattrs converter does it all. Unions of attrs classes carry a ``"type"`` tag; amounts carry
their metric (``{"sessions": 3}``, ``{"us": 5400000000}``, ``{"money": "1.00", "currency":
"AUD"}``); instants are ISO 8601 with offset, so a round trip gives back equal values.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, get_origin

import cattrs
from cattrs.strategies import configure_tagged_union

from sessionpacks.events import EVENT_TYPES, Event
from sessionpacks.ledger import ENTRY_TYPES, Entry, PackState
from sessionpacks.model import (
    Amount,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    Money,
    NoExpiry,
    PackTemplate,
    PerPack,
    PerSession,
    Preference,
    PreferPack,
    PreferService,
    PreferTemplate,
)

T = TypeVar("T")

_AMOUNT_TYPES = (Amount, Amount | None)


def _unstructure_amount(value: Amount | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Money):
        return {"money": str(value.amount), "currency": value.currency}
    if isinstance(value, timedelta):
        return {"us": value // timedelta(microseconds=1)}
    return {"sessions": value}


def _structure_amount(data: dict[str, Any] | None, _: Any) -> Amount | None:
    if data is None:
        return None
    if "money" in data:
        return Money(Decimal(data["money"]), data["currency"])
    if "us" in data:
        return timedelta(microseconds=data["us"])
    return int(data["sessions"])


def _is_frozenset(kind: Any) -> bool:
    return kind is frozenset or get_origin(kind) is frozenset


def _is_amount(kind: Any) -> bool:
    return any(kind == union for union in _AMOUNT_TYPES)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(datetime, lambda v, _: datetime.fromisoformat(v))
    conv.register_unstructure_hook(date, date.isoformat)
    conv.register_structure_hook(date, lambda v, _: date.fromisoformat(v))
    conv.register_unstructure_hook(timedelta, lambda v: v // timedelta(microseconds=1))
    conv.register_structure_hook(timedelta, lambda v, _: timedelta(microseconds=v))
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, lambda v, _: Decimal(v))
    conv.register_unstructure_hook_func(_is_frozenset, sorted)
    conv.register_unstructure_hook_func(_is_amount, _unstructure_amount)
    conv.register_structure_hook_func(_is_amount, _structure_amount)
    unions: list[Any] = [
        NoExpiry | ExpiresOn | ExpiresAfterOpening | ExpiresAfterFirstUse,
        PerPack | PerSession,
        PreferService | PreferTemplate | PreferPack,
        _union(ENTRY_TYPES),
        _union(EVENT_TYPES),
    ]
    for union in unions:
        configure_tagged_union(union, conv, tag_name="type")
    return conv


def _union(types: tuple[type[Any], ...]) -> Any:
    union: Any = types[0]
    for kind in types[1:]:
        union = union | kind
    return union


converter = _make_converter()


def dump(value: Any, kind: Any) -> str:
    """``value`` as compact JSON."""
    return json.dumps(converter.unstructure(value, kind), separators=(",", ":"), sort_keys=True)


def load(text: str | bytes, kind: type[T]) -> T:
    """The value of type ``kind`` that :func:`dump` wrote."""
    result: T = converter.structure(json.loads(text), kind)
    return result


def dump_entry(entry: Entry) -> str:
    return dump(entry, Entry)


def load_entry(text: str | bytes) -> Entry:
    return load(text, Entry)  # type: ignore[arg-type]


def dump_event(event: Event) -> str:
    return dump(event, Event)


def load_event(text: str | bytes) -> Event:
    return load(text, Event)  # type: ignore[arg-type]


def dump_state(state: PackState) -> str:
    return dump(state, PackState)


def load_state(text: str | bytes) -> PackState:
    return load(text, PackState)


def dump_template(template: PackTemplate) -> str:
    return dump(template, PackTemplate)


def load_template(text: str | bytes) -> PackTemplate:
    return load(text, PackTemplate)


def dump_preference(preference: Preference) -> str:
    return dump(preference, Preference)


def load_preference(text: str | bytes) -> Preference:
    return load(text, Preference)  # type: ignore[arg-type]
