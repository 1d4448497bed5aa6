"""JSON text for the values a store keeps, for hosts writing a store of their own.

Each ``dumps_*`` gives compact JSON text (a ``str``) and the matching ``loads_*`` gives back an
equal value: entries, events, pack states, templates and preferences. The library's own stores
write the same text, so a host's columns can hold it as they are (TEXT, JSON or JSONB).

Unions carry a ``"type"`` tag (``{"type": "Used", ...}``); amounts carry their metric
(``{"sessions": 3}``, ``{"us": 5400000000}`` for a duration in microseconds, ``{"money":
"120.00", "currency": "AUD"}``); instants are ISO 8601 with their offset. Text holding a field
this release does not know does not load (cattrs raises), rather than losing it silently.

>>> from sessionpacks import PreferTemplate
>>> text = dumps_preference(PreferTemplate("physio-10"))
>>> text
'{"template_id":"physio-10","type":"PreferTemplate"}'
>>> loads_preference(text)
PreferTemplate(template_id='physio-10')
"""

from __future__ import annotations

from sessionpacks.adapters import _codec
from sessionpacks.events import Event
from sessionpacks.ledger import Entry, PackState
from sessionpacks.model import PackTemplate, Preference

__all__ = [
    "dumps_entry",
    "dumps_event",
    "dumps_preference",
    "dumps_state",
    "dumps_template",
    "loads_entry",
    "loads_event",
    "loads_preference",
    "loads_state",
    "loads_template",
]


def dumps_entry(entry: Entry) -> str:
    """A ledger entry (``Opened``, ``Used``, ... ``Invoiced``) as JSON text."""
    return _codec.dump_entry(entry)


def loads_entry(text: str | bytes) -> Entry:
    """The entry :func:`dumps_entry` wrote."""
    return _codec.load_entry(text)


def dumps_event(event: Event) -> str:
    """A domain event (``PackOpened``, ``SessionUsed``, ...) as JSON text, without its position."""
    return _codec.dump_event(event)


def loads_event(text: str | bytes) -> Event:
    """The event :func:`dumps_event` wrote."""
    return _codec.load_event(text)


def dumps_state(state: PackState) -> str:
    """A pack's folded state (a snapshot of its ledger at ``state.version``) as JSON text."""
    return _codec.dump_state(state)


def loads_state(text: str | bytes) -> PackState:
    """The state :func:`dumps_state` wrote."""
    return _codec.load_state(text)


def dumps_template(template: PackTemplate) -> str:
    """One version of a template as JSON text."""
    return _codec.dump_template(template)


def loads_template(text: str | bytes) -> PackTemplate:
    """The template :func:`dumps_template` wrote."""
    return _codec.load_template(text)


def dumps_preference(preference: Preference) -> str:
    """A client's preferred service, template or pack as JSON text."""
    return _codec.dump_preference(preference)


def loads_preference(text: str | bytes) -> Preference:
    """The preference :func:`dumps_preference` wrote."""
    return _codec.load_preference(text)
