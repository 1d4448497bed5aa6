"""The one encoding of the library's values as JSON data: stores, command results and the CLI.

One cattrs converter does it all (:mod:`sessionpacks.serialization` is its public face):

- every value of a tagged union (an entry, an event, an expiry rule, a pricing, a preference,
  a decision's action) carries its class under ``"type"``, wherever it appears;
- amounts by their JSON type: whole sessions a number (``3``), durations a string, money an
  object (``{"amount": "120.00", "currency": "AUD"}``), as :class:`~sessionpacks.model.Money`
  is everywhere;
- durations ISO 8601 in hours, minutes and seconds to the microsecond (``"PT1H30M"``,
  ``"-PT0.000001S"``); periods ISO 8601 (``"P1Y2M"``); instants and dates ISO 8601, instants
  with their offset; sets as sorted lists.

It reads the form release 0.1.0 wrote as well (durations as integer microseconds, amounts as
``{"sessions": n}``, ``{"us": n}`` or ``{"money": "1.00", "currency": "AUD"}``, periods as
objects, members of a union without their tag where the field named the class), so stored
JSON of every release loads; it writes only the form above.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from sessionpacks.events import Event
from sessionpacks.ledger import Entry
from sessionpacks.model import Amount, ExpiryRule, Money, Period, Preference, Pricing
from sessionpacks.resolution import NoPack, OpenPack, UsePack

__all__ = ["TAGGED_UNIONS", "converter", "dump", "iso_duration", "load", "make_converter"]

T = TypeVar("T")

TAGGED_UNIONS: tuple[Any, ...] = (
    ExpiryRule,
    Pricing,
    Preference,
    Entry,
    Event,
    UsePack | OpenPack | NoPack,
)
"""The unions whose members carry ``"type"``: a member is tagged even where a field names its
class, so the CLI's JSON of a lone event says what it is."""

_VARIANTS = frozenset(member for union in TAGGED_UNIONS for member in get_args(union))
_NONE = type(None)
_JSON_SCALARS = (str, int, float, bool, _NONE)
_MICROSECONDS = 1_000_000
_ISO_DURATION = re.compile(r"(-?)PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,6}))?S)?")


# Durations and periods ---------------------------------------------------------------------


def iso_duration(value: timedelta) -> str:
    """``PT1H30M``, ``-PT0.5S``, ``PT0S``: exact to the microsecond. Hours are the largest unit,
    since a day of the calendar is not always 24 hours."""
    total = value // timedelta(microseconds=1)
    seconds, micro = divmod(abs(total), _MICROSECONDS)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or micro or not text:
        fraction = f".{micro:06d}".rstrip("0") if micro else ""
        text += f"{secs}{fraction}S"
    return f"{'-' if total < 0 else ''}PT{text}"


def _duration(data: Any) -> timedelta:
    if isinstance(data, int) and not isinstance(data, bool):
        return timedelta(microseconds=data)  # the integer microseconds of release 0.1.0
    found = _ISO_DURATION.fullmatch(data) if isinstance(data, str) else None
    if found is None or not any(found.groups()[1:]):
        raise ValueError(f"{data!r} is not an ISO 8601 duration such as 'PT1H30M'")
    sign, hours, minutes, secs, fraction = found.groups()
    seconds = (int(hours or 0) * 60 + int(minutes or 0)) * 60 + int(secs or 0)
    micro = seconds * _MICROSECONDS + int((fraction or "").ljust(6, "0"))
    return timedelta(microseconds=-micro if sign else micro)


def _iso_period(value: Period) -> str:
    counts = (value.years, value.months, value.weeks, value.days)
    return "P" + "".join(f"{n}{unit}" for n, unit in zip(counts, "YMWD", strict=True) if n)


def _period(conv: cattrs.Converter) -> Callable[[Any, Any], Period]:
    fields = make_dict_structure_fn(Period, conv)

    def structure(data: Any, _: Any) -> Period:
        if isinstance(data, dict):
            return fields(data, Period)  # the object release 0.1.0 wrote
        if not isinstance(data, str) or not data.startswith("P"):
            raise ValueError(f"{data!r} is not an ISO 8601 period such as 'P3M'")
        return Period.parse(data)

    return structure


# Amounts -----------------------------------------------------------------------------------


def _is_amount(kind: Any) -> bool:
    return bool(kind == Amount or kind == Amount | None)


def _amount_out(conv: cattrs.Converter) -> Callable[[Amount | None], Any]:
    def unstructure(value: Amount | None) -> Any:
        if isinstance(value, timedelta):
            return iso_duration(value)
        if isinstance(value, Money):
            return conv.unstructure(value, Money)
        return value

    return unstructure


def _amount_in(conv: cattrs.Converter, kind: Any) -> Callable[[Any, Any], Amount | None]:
    optional = _NONE in get_args(kind)

    def structure(data: Any, _: Any) -> Amount | None:
        if data is None and optional:
            return None
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        if isinstance(data, str):
            return _duration(data)
        if isinstance(data, dict) and set(data) == {"amount", "currency"}:
            return conv.structure(data, Money)
        return _old_amount(data)

    return structure


def _old_amount(data: Any) -> Amount:
    """An amount as release 0.1.0 wrote it, tagged by its metric."""
    keys = set(data) if isinstance(data, dict) else set()
    if keys == {"sessions"} and type(data["sessions"]) is int:
        return int(data["sessions"])
    if keys == {"us"} and type(data["us"]) is int:
        return timedelta(microseconds=data["us"])
    if keys == {"money", "currency"}:
        return Money(_decimal(data["money"]), data["currency"])
    raise ValueError(f"{data!r} is not an amount: a number, a duration or money")


def _decimal(data: Any) -> Decimal:
    if not isinstance(data, str):
        raise TypeError(f"{data!r} is not a decimal in a string")
    return Decimal(data)


# Tagged unions -----------------------------------------------------------------------------


def _is_variant(kind: Any) -> bool:
    return kind in _VARIANTS


def _is_tagged_union(kind: Any) -> bool:
    # One class or None (``Invoiced | None``) is left to cattrs: release 0.1.0 wrote no tag there.
    members = [a for a in get_args(kind) if a is not _NONE]
    union = get_origin(kind) in (Union, types.UnionType)
    return union and len(members) > 1 and all(m in _VARIANTS for m in members)


def _variant_out(conv: cattrs.Converter, kind: type[Any]) -> Callable[[Any], dict[str, Any]]:
    fields = make_dict_unstructure_fn(kind, conv)
    tag = kind.__name__

    def unstructure(value: Any) -> dict[str, Any]:
        return {"type": tag, **fields(value)}

    return unstructure


def _variant_in(conv: cattrs.Converter, kind: type[T]) -> Callable[[Any, Any], T]:
    fields = make_dict_structure_fn(kind, conv)
    tag = kind.__name__

    def structure(data: Any, _: Any) -> T:
        if isinstance(data, dict) and "type" in data:
            if data["type"] != tag:
                raise ValueError(f"type {data['type']!r} where {tag!r} belongs")
            data = {k: v for k, v in data.items() if k != "type"}
        return fields(data, kind)

    return structure


def _union_out(conv: cattrs.Converter) -> Callable[[Any], Any]:
    def unstructure(value: Any) -> Any:
        return None if value is None else conv.unstructure(value, type(value))

    return unstructure


def _union_in(conv: cattrs.Converter, kind: Any) -> Callable[[Any, Any], Any]:
    members = {m.__name__: m for m in get_args(kind) if m is not _NONE}
    optional = _NONE in get_args(kind)

    def structure(data: Any, _: Any) -> Any:
        if data is None and optional:
            return None
        tag = data.get("type") if isinstance(data, dict) else None
        if not isinstance(tag, str) or tag not in members:
            raise ValueError(f"{data!r} names none of {sorted(members)} under 'type'")
        return conv.structure(data, members[tag])

    return structure


# The converter -----------------------------------------------------------------------------


def _strict(kind: Any) -> Callable[[Any], Any]:
    if isinstance(kind, type) and issubclass(kind, _JSON_SCALARS):
        return lambda value: value
    name = getattr(kind, "__name__", repr(kind))

    def refuse(value: Any) -> Any:
        raise TypeError(f"cannot show {name} as JSON: the encoding knows no such value")

    return refuse


def _lenient(_: Any) -> Callable[[Any], Any]:
    return lambda value: value


def _in_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _scalars(conv: cattrs.Converter, *, comparing: bool) -> None:
    conv.register_unstructure_hook(datetime, _in_utc if comparing else datetime.isoformat)
    conv.register_structure_hook(datetime, lambda v, _: datetime.fromisoformat(_text(v)))
    conv.register_unstructure_hook(date, date.isoformat)
    conv.register_structure_hook(date, lambda v, _: date.fromisoformat(_text(v)))
    conv.register_unstructure_hook(timedelta, iso_duration)
    conv.register_structure_hook(timedelta, lambda v, _: _duration(v))
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, lambda v, _: _decimal(v))
    conv.register_unstructure_hook(Period, _iso_period)
    conv.register_structure_hook(Period, _period(conv))
    conv.register_structure_hook(_NONE, lambda v, _: _nothing(v))


def _text(data: Any) -> str:
    if not isinstance(data, str):
        raise TypeError(f"{data!r} is not ISO 8601 text")
    return data


def _nothing(data: Any) -> None:
    if data is not None:
        raise ValueError(f"{data!r} where nothing belongs")


def make_converter(*, comparing: bool = False) -> cattrs.Converter:
    """A new converter of the one encoding, for a host to add hooks of its own to.

    Unstructuring refuses a value it has no form for (``TypeError``), so the data it gives is
    always JSON. With ``comparing`` the data is for comparing, not for keeping: instants are
    written in UTC (the domain holds an instant the same whatever its offset), each field is
    encoded by its value's own class rather than the one it declares (a test may put events
    where recorded events belong), and unknown values pass through as they are.
    """
    conv = cattrs.Converter(
        forbid_extra_keys=True, unstructure_fallback_factory=_lenient if comparing else _strict
    )
    _scalars(conv, comparing=comparing)
    conv.register_unstructure_hook_func(_is_set, lambda value: sorted(map(conv.unstructure, value)))
    conv.register_unstructure_hook_factory(_is_amount, lambda _: _amount_out(conv))
    conv.register_structure_hook_factory(_is_amount, lambda kind: _amount_in(conv, kind))
    conv.register_unstructure_hook_factory(_is_variant, lambda kind: _variant_out(conv, kind))
    conv.register_structure_hook_factory(_is_variant, lambda kind: _variant_in(conv, kind))
    conv.register_unstructure_hook_factory(_is_tagged_union, lambda _: _union_out(conv))
    conv.register_structure_hook_factory(_is_tagged_union, lambda kind: _union_in(conv, kind))
    if comparing:
        conv.register_unstructure_hook_factory(attrs.has, lambda kind: _by_value(conv, kind))
    return conv


def _by_value(conv: cattrs.Converter, kind: type[Any]) -> Callable[[Any], dict[str, Any]]:
    # The same data as the declared types give, since every form here follows the value's class.
    names = [field.name for field in attrs.fields(kind)]
    tag = {"type": kind.__name__} if kind in _VARIANTS else {}

    def unstructure(value: Any) -> dict[str, Any]:
        return {**tag, **{name: conv.unstructure(getattr(value, name)) for name in names}}

    return unstructure


def _is_set(kind: Any) -> bool:
    return kind in (set, frozenset) or get_origin(kind) in (set, frozenset)


converter = make_converter()


def dump(value: Any, kind: Any) -> str:
    """``value`` of type ``kind`` as compact JSON text: ASCII only, keys sorted."""
    return json.dumps(converter.unstructure(value, kind), separators=(",", ":"), sort_keys=True)


def load(text: str | bytes, kind: type[T]) -> T:
    """The value of type ``kind`` that :func:`dump` (of this release or an earlier one) wrote."""
    result: T = converter.structure(json.loads(text), kind)
    return result
