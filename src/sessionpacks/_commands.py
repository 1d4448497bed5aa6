"""Idempotency keys (R27): what a keyed command is, and its result as stored JSON text.

A command's *fingerprint* says which command ran with which arguments, so that the same key
sent with other arguments can be refused. Its *result* is stored as JSON text beside its writes
and decoded when a retry with the same key comes in; the events in it are numbered from 1, and
the store's ``first_position`` turns them back into stream positions.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.strategies import configure_tagged_union

from sessionpacks.adapters._codec import _make_converter as _store_converter
from sessionpacks.errors import shown
from sessionpacks.events import Event, RecordedEvent
from sessionpacks.ports import CommandRecord
from sessionpacks.resolution import NoPack, OpenPack, UsePack

__all__ = ["decode_result", "encode_result", "fingerprint", "numbered"]

T = TypeVar("T")


def _make_converter() -> cattrs.Converter:
    # A converter of our own (``copy()`` drops the store converter's tagged unions).
    conv = _store_converter()
    configure_tagged_union(UsePack | OpenPack | NoPack, conv, tag_name="type")
    conv.register_structure_hook(type(None), lambda value, _: None)
    return conv


_converter = _make_converter()


def _plain(value: Any) -> str:
    """An argument as JSON text, tagged with its type so that 3 sessions and 3 µs differ."""
    try:
        return json.dumps([type(value).__name__, _converter.unstructure(value)], sort_keys=True)
    except Exception:
        # An argument the command refuses anyway (an int too long to print, an object of the
        # host's): any text that names it will do, so long as making it cannot fail.
        return json.dumps([type(value).__name__, shown(value)])


def fingerprint(command: str, arguments: dict[str, Any]) -> str:
    """A digest of the command's name and arguments: equal for a repeated call."""
    text = json.dumps(
        {"command": command, "arguments": {k: _plain(v) for k, v in arguments.items()}},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode("ascii", "backslashreplace")).hexdigest()


def numbered(events: tuple[Event, ...]) -> tuple[RecordedEvent, ...]:
    """``events`` at positions counted from 1, as a result stored before the commit has them."""
    return tuple(RecordedEvent(n, event) for n, event in enumerate(events, start=1))


def encode_result(result: Any, kind: Any) -> str:
    """The result of a command, as the JSON text a :class:`CommandRecord` keeps."""
    return json.dumps(_converter.unstructure(result, kind), separators=(",", ":"))


def decode_result(record: CommandRecord, kind: type[T]) -> T:
    """The result the first run of the command returned, its events at their positions."""
    result: T = _shifted(
        _converter.structure(json.loads(record.result), kind), record.first_position
    )
    return result


def _shifted(result: Any, base: int) -> Any:
    if isinstance(result, tuple) and all(isinstance(r, RecordedEvent) for r in result):
        return tuple(attrs.evolve(r, position=base + r.position) for r in result)
    events = getattr(result, "events", None)
    if isinstance(events, tuple) and attrs.has(type(result)):
        return attrs.evolve(result, events=_shifted(events, base))
    return result
