"""Rows and library values: the pack projection, the row codecs and the decode caches.

A pack's row holds its folded state (JSON text) and, beside it, the columns the queries read
(:data:`PROJECTION`). Every one of those columns is a function of the state, written here once:
the SQLite commit, the PostgreSQL commit function's arguments, the refold of a migration and the
snapshot check and rebuild all take them from :func:`projection`.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from sessionpacks.adapters._common import query_columns
from sessionpacks.adapters._sql.dialect import Dialect
from sessionpacks.events import Event
from sessionpacks.ledger import Entry, PackState
from sessionpacks.ports import CommandRecord
from sessionpacks.serialization import (
    dumps_entry,
    dumps_event,
    dumps_state,
    loads_preference,
    loads_state,
    loads_template,
)

__all__ = [
    "PROJECTION",
    "PROJECTION_TYPES",
    "V3_PROJECTION",
    "Decoded",
    "active_usages",
    "command",
    "entry_row",
    "event_row",
    "preference",
    "projection",
    "template",
]

_Column = Callable[[Dialect, PackState, str], Any]

_COLUMNS: tuple[tuple[str, str, _Column], ...] = (
    ("client_id", "text", lambda d, s, text: s.client_id),
    ("version", "integer", lambda d, s, text: s.version),
    ("state", "text", lambda d, s, text: text),
    ("expiry_date", "{date}", lambda d, s, text: d.day(s.expiry_date)),
    ("ended", "{bool}", lambda d, s, text: d.flag(s.ended)),
    ("remaining_units", "{bigint}", lambda d, s, text: s.remaining_units),
    ("expired_on", "{date}", lambda d, s, text: d.day(s.expired_on)),
    # What the sweep query compares (R12, R25): the state's next_sweep, under the name schema
    # version 3 gave it before reminders. The columns before it are 0.1.0's projection.
    ("pending_expiry", "{date}", lambda d, s, text: d.day(s.next_sweep)),
    # What find_packs narrows by (schema version 4), from adapters._common.query_columns.
    ("lasting_status", "text", lambda d, s, text: query_columns(s).lasting_status),
    ("open_until", "{date}", lambda d, s, text: d.day(query_columns(s).open_until)),
    ("remaining_unit", "text", lambda d, s, text: query_columns(s).remaining_unit),
    ("template_id", "text", lambda d, s, text: query_columns(s).template_id),
)

PROJECTION: tuple[str, ...] = tuple(name for name, _, _ in _COLUMNS)
"""The columns of a pack's row after its key, in the order :func:`projection` gives them."""

V3_PROJECTION: tuple[str, ...] = PROJECTION[: PROJECTION.index("lasting_status")]
"""The projection of schema version 3, which the steps before version 4 write."""

PROJECTION_TYPES: tuple[str, ...] = tuple(kind for _, kind, _ in _COLUMNS)
"""Their SQL types, as :meth:`Dialect.render` fields (``{date}``) or names both spell alike."""


def projection(dialect: Dialect, state: PackState, text: str | None = None) -> tuple[Any, ...]:
    """The values of :data:`PROJECTION` for ``state``, as ``dialect`` stores them; ``text`` is
    the state's JSON if the caller has it already."""
    text = dumps_state(state) if text is None else text
    return tuple(column(dialect, state, text) for _, _, column in _COLUMNS)


def entry_row(entry: Entry) -> tuple[str, int, str, str]:
    """``(pack_id, sequence, kind, entry)`` of a ledger entry."""
    return (entry.pack_id, entry.sequence, type(entry).__name__, dumps_entry(entry))


def event_row(event: Event) -> tuple[str, str, str, str]:
    """``(event_id, pack_id, kind, event)`` of an event; its position is the store's."""
    return (event.event_id, event.pack_id, type(event).__name__, dumps_event(event))


def command(row: tuple[Any, ...]) -> CommandRecord:
    """A command from ``(key, fingerprint, result, first_position)``."""
    key, fingerprint, result, first = row
    return CommandRecord(key, fingerprint, result, first)


def active_usages(states: Iterable[PackState]) -> dict[str, str]:
    """The active usages the states hold: appointment id -> pack id (R6)."""
    return {u.appointment.id: s.pack_id for s in states for u in s.usages}


# Decoding is a pure function of the stored text and its results are immutable: a workflow
# reading every template on each booking decodes each version once.
template = functools.lru_cache(maxsize=1024)(loads_template)
preference = functools.lru_cache(maxsize=1024)(loads_preference)


class Decoded:
    """Decoded pack states by their stored text, least recently used first out.

    Decoding a state costs in proportion to its active usages, and a workflow reads one pack
    several times (``client_packs``, then ``load``). Keyed by the text itself, so a new version,
    or a state another process rebuilt, is a new key. ``size`` 0 keeps none.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._states: OrderedDict[str, PackState] = OrderedDict()

    def state(self, text: str) -> PackState:
        """The state stored as ``text``."""
        with self._lock:
            cached = self._states.get(text)
            if cached is not None:
                self._states.move_to_end(text)
                return cached
        state = loads_state(text)
        self.remember(text, state)
        return state

    def remember(self, text: str, state: PackState) -> None:
        """Keep ``state``, just written as ``text``, for the reads that follow."""
        with self._lock:
            self._states[text] = state
            self._states.move_to_end(text)
            while len(self._states) > self._size:
                self._states.popitem(last=False)
