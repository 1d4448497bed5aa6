"""Rows and library values: the pack projection, the row codecs and the decode caches.

A pack's row holds its folded state (JSON text) and, beside it, the columns the queries read
(:data:`PROJECTION`). Every one of those columns is a function of the state, written here once:
the SQLite commit, the PostgreSQL commit function's arguments, the refold of a migration and the
snapshot check and rebuild all take them from :func:`projection`.

From schema version 6 a pack's terms, which never change, are stored once, in ``packs.terms``
(written when the pack is opened), and the state this release writes leaves them out
(:func:`lean_state`): only the counters, usages and the rest are rewritten on each commit. A
row read joins the two (:meth:`Decoded.state`). A writer of an earlier release, during a
rolling upgrade, writes whole states (and opens packs with no ``terms``): a state holding its
terms is read as it is, whatever the column holds.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from cattrs.gen import make_dict_unstructure_fn, override

from sessionpacks._encoding import converter
from sessionpacks.adapters._common import QueryColumns, query_columns
from sessionpacks.adapters._sql.dialect import Dialect
from sessionpacks.errors import StoreError
from sessionpacks.events import Event
from sessionpacks.ledger import Entry, PackState
from sessionpacks.model import PackTerms
from sessionpacks.ports import CommandRecord
from sessionpacks.serialization import (
    dumps_entry,
    dumps_event,
    dumps_state,
    loads_preference,
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
    "lean_state",
    "loads_row",
    "loads_terms",
    "preference",
    "projection",
    "split_state",
    "template",
    "terms_text",
]

_Column = Callable[[Dialect, PackState, str, QueryColumns], Any]

# Each column from the state, its text and its QueryColumns (computed once a projection: the
# status and expiry date behind them are folded from the state's dates on every call).
_COLUMNS: tuple[tuple[str, str, _Column], ...] = (
    ("client_id", "text", lambda d, s, text, q: s.client_id),
    ("version", "integer", lambda d, s, text, q: s.version),
    ("state", "text", lambda d, s, text, q: text),
    ("expiry_date", "{date}", lambda d, s, text, q: d.day(s.expiry_date)),
    ("ended", "{bool}", lambda d, s, text, q: d.flag(s.ended)),
    ("remaining_units", "{bigint}", lambda d, s, text, q: s.remaining_units),
    ("expired_on", "{date}", lambda d, s, text, q: d.day(s.expired_on)),
    # What the sweep query compares (R12, R25): the state's next_sweep, under the name schema
    # version 3 gave it before reminders. The columns before it are 0.1.0's projection.
    ("pending_expiry", "{date}", lambda d, s, text, q: d.day(s.next_sweep)),
    # What find_packs narrows by (schema version 4), from adapters._common.query_columns.
    ("lasting_status", "text", lambda d, s, text, q: q.lasting_status),
    ("open_until", "{date}", lambda d, s, text, q: d.day(q.open_until)),
    ("remaining_unit", "text", lambda d, s, text, q: q.remaining_unit),
    ("template_id", "text", lambda d, s, text, q: q.template_id),
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
    query = query_columns(state)
    return tuple(column(dialect, state, text, query) for _, _, column in _COLUMNS)


# The state's own encoding (serialization.dumps_state) with its terms left out: the same fields,
# each unstructured alike, so the join of the two (loads_row) is the state dumps_state gives.
_LEAN = make_dict_unstructure_fn(PackState, converter, terms=override(omit=True))


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def lean_state(state: PackState) -> str:
    """``state`` as JSON text without its terms: what this release writes to ``packs.state``."""
    return _json(_LEAN(state))


def terms_text(terms: PackTerms) -> str:
    """The terms as JSON text: what ``packs.terms`` holds, written when the pack is opened."""
    return _json(converter.unstructure(terms, PackTerms))


def loads_terms(text: str) -> PackTerms:
    """The terms :func:`terms_text` wrote."""
    terms: PackTerms = converter.structure(json.loads(text), PackTerms)
    return terms


def split_state(text: str) -> tuple[str, str | None]:
    """A whole state's text as ``(state without terms, terms)``; a state without terms is
    returned as it is, with ``None``."""
    data = json.loads(text)
    if "terms" not in data:
        return text, None
    terms = data.pop("terms")
    return _json(data), _json(terms)


def loads_row(text: str, terms: str | None) -> PackState:
    """The state of a row: ``text`` as it is if it holds its terms (as every release before
    schema version 6 wrote it, and writers of those releases still do during an upgrade),
    else ``text`` joined with ``terms``, the row's terms column."""
    data = json.loads(text)
    if "terms" not in data:
        if terms is None:
            raise StoreError("state", text[:80], "holds no terms, and its row has none")
        data["terms"] = json.loads(terms)
    state: PackState = converter.structure(data, PackState)
    return state


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
    """Decoded pack states by their practice and stored text, least recently used first out.

    Decoding a state costs in proportion to its active usages, and a workflow reads one pack
    several times (``client_packs``, then ``load``). Keyed by the state's text itself, so a new
    version, or a state another process rebuilt, is a new key, and by its practice: a state
    stored without its terms names its pack, whose terms (the row's ``terms``) never change,
    but another practice may have a pack of the same id and text on other terms.
    ``size`` 0 keeps none.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._states: OrderedDict[tuple[str, str], PackState] = OrderedDict()

    def state(self, text: str, terms: str | None = None, *, practice: str = "") -> PackState:
        """The state stored as ``text`` in a row of ``practice`` whose terms column holds
        ``terms``."""
        key = (practice, text)
        with self._lock:
            cached = self._states.get(key)
            if cached is not None:
                self._states.move_to_end(key)
                return cached
        state = loads_row(text, terms)
        self.remember(text, state, practice=practice)
        return state

    def remember(self, text: str, state: PackState, *, practice: str = "") -> None:
        """Keep ``state``, just written as ``text`` in ``practice``, for the reads that follow."""
        key = (practice, text)
        with self._lock:
            self._states[key] = state
            self._states.move_to_end(key)
            while len(self._states) > self._size:
                self._states.popitem(last=False)
